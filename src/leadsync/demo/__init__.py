"""`leadsync demo`: the whole system in one process against a misbehaving HubSpot sandbox.

command.py (options, exit status) -> run.py (the two passes) -> harness.py (one run's state,
started by services.py), trouble.py (forced trouble), view.py (what the user sees); the data:
report.py (what the demo saw, its verdict), traffic.py (leadsync's metrics). The leads it
submits and the audit of lost or doubled ones come from kit/, the scenario kit the end-to-end
tests and the chaos benchmark use too.
"""

from leadsync.demo.command import register

__all__ = ["register"]
