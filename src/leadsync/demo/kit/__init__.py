"""The exactly-once scenario kit: the lead mix, the audit and the worker fleet.

One kit for every run that proves "exactly one contact per email, never lost, never
duplicated": `leadsync demo` (in one process), the end-to-end tests (tests/e2e) and the chaos
benchmark (bench/chaos.py). Each user keeps its own pace, faults and view; what they share is
here:

- mix.py: `lead_mix()` -> `LeadMix`, the leads to submit (some repeat an earlier email in
  another casing, some use an address the sandbox refuses under `REJECT_REGEX`).
- audit.py: read the leads as the internal API shows them (`LeadDetail`; `read_leads` from a
  running service, `read_leads_from_db`) and the sandbox's contacts (`read_contacts`);
  `audit()` -> `Audit`, every check (`CHECKS`) with its offenders; `settled()` /
  `unfinished()` on counts by status.
- fleet.py: `Fleet` of `leadsync` processes (workers, a server) with their own settings
  (`leadsync_env()`) and log files, to kill and restart at will.
"""

from leadsync.demo.kit.audit import (
    CHECKS,
    STATUSES,
    Audit,
    audit,
    count_by_status,
    leased,
    read_contacts,
    read_leads,
    read_leads_from_db,
    settled,
    unfinished,
)
from leadsync.demo.kit.fleet import Fleet, LeadsyncProcess, leadsync_env, leadsync_executable
from leadsync.demo.kit.mix import REJECT_REGEX, REJECTED_DOMAIN, LeadMix, lead_mix
from leadsync.usecases.schemas import LeadDetail  # a stored lead, as the audit reads it

__all__ = [
    "CHECKS",
    "REJECTED_DOMAIN",
    "REJECT_REGEX",
    "STATUSES",
    "Audit",
    "Fleet",
    "LeadDetail",
    "LeadMix",
    "LeadsyncProcess",
    "audit",
    "count_by_status",
    "lead_mix",
    "leadsync_env",
    "leadsync_executable",
    "leased",
    "read_contacts",
    "read_leads",
    "read_leads_from_db",
    "settled",
    "unfinished",
]
