"""Every bound the API and the CLI put on a number or a list, in one place (docs/api.md)."""

from __future__ import annotations

from typing import Final

# Lead ids are PostgreSQL BIGINTs: 1 to 2**63 - 1.
MAX_ID: Final = 2**63 - 1

# GET /internal/leads?limit= and /internal/erasures?limit=
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500

# POST /internal/leads/resync-failed (and `leadsync resync-failed`).
# 1,000 of the largest ids take about 20 KB of JSON, well inside the default 64 KiB body limit,
# so a list the schema allows is never refused for its size.
MAX_RESYNC_IDS: Final = 1_000
# 100 years of 365 days: older than any lead, and far from the datetime range's end
# (around 6.4e10 s before now), where a larger value used to overflow into a 500.
MAX_OLDER_THAN_SECONDS: Final = 3_153_600_000
MAX_RESYNC_LIMIT: Final = 1_000_000

# A lead's history as GET /internal/leads/{id}, `leadsync lead` and the console show it: the
# newest rows, oldest first.
HISTORY_SHOWN: Final = 100
