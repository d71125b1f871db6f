"""The exactly-once scenario kit: what every run that proves "exactly one contact per email,
never lost, never duplicated" shares.

Its users: `leadsync demo` (in one process), the end-to-end tests (tests/e2e) and the chaos
benchmark (bench/chaos.py). Each keeps its own pace, faults and view; what they share is here:

- mix.py: `lead_mix()` -> `LeadMix`, the leads to submit (some repeat an earlier email in
  another casing, some use an address the sandbox refuses under `REJECT_REGEX`).
"""

from leadsync.demo.kit.mix import REJECT_REGEX, REJECTED_DOMAIN, LeadMix, lead_mix

__all__ = ["REJECTED_DOMAIN", "REJECT_REGEX", "LeadMix", "lead_mix"]
