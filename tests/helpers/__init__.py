"""Helpers shared by the test suites; fixtures live in the conftest.py files, helpers here.

``waiting``   ``wait_for``: await a condition with a deadline, never ``sleep`` over a race
``app``       the internal token and its headers, the ``client_factory`` fixture's type
``postgres``  the test PostgreSQL database (``LEADSYNC_TEST_DATABASE_URL``), ``in_ci()``
``leads``     lead rows: ``lead_row``, ``failed_row``, insert and read them
``clock``     ``FakeClock``: the sandbox's ``ManualClock``, read as a UTC datetime too
``logs``      ``saved_logging()``: what the ``restore_logging`` fixture puts back
``hubspot``   ``SandboxHubSpot`` (the sandbox through its control API), ``RecordingTransport``
              (what a client sent), ``Observed``, HubSpot's error bodies
``worker``    run a ``Worker`` for a block, submit leads, wait for a lead's status
``openapi``   ``SpecChecker``: sandbox answers against HubSpot's published OpenAPI spec
``cli``       ``leadsync(db_url, *args)``: the command in a process of its own
``console``   log in to the console, read its forms, the FAILED rows it shows

The most used names are importable from ``tests.helpers`` itself.
"""

from tests.helpers.app import INTERNAL_HEADERS, INTERNAL_TOKEN, ClientFactory
from tests.helpers.waiting import WaitTimeout, wait_for

__all__ = ["INTERNAL_HEADERS", "INTERNAL_TOKEN", "ClientFactory", "WaitTimeout", "wait_for"]
