"""`leadsync demo`: the whole system in one process against a misbehaving HubSpot sandbox.

command.py (options, exit status) -> run.py (the two passes) -> harness.py (one run's state,
started by services.py), chaos.py (forced trouble), view.py (what the user sees); the data:
leads.py (what is submitted), audit.py (lost or doubled?), traffic.py (leadsync's metrics).
"""

from leadsync.demo.command import register

__all__ = ["register"]
