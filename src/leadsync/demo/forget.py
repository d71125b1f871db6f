"""The demo's last act: one person asks to be forgotten (docs/privacy.md).

Through the API, as an operator would: the erasure is requested, the workers send HubSpot's
GDPR delete, and the demo checks that the contact is gone from the sandbox and that the
person's lead rows keep no personal data.
"""

from __future__ import annotations

import asyncio

from leadsync.demo.harness import Harness
from leadsync.demo.options import DemoError
from leadsync.demo.report import Forgotten

ERASURE_TIMEOUT = 30.0


def mask(email: str) -> str:
    """Show an address the way the demo prints it: first letter and domain only."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


async def forget_one(run: Harness) -> Forgotten:
    """Erase the address of the newest SYNCED lead; check HubSpot and the rows."""
    done = Forgotten()
    answer = await run.api.get(
        "/internal/leads", params={"status": "SYNCED", "limit": 1}, headers=run.auth
    )
    items = answer.json().get("items", []) if answer.status_code == 200 else []
    if not items:
        raise DemoError(f"no SYNCED lead to erase (GET /internal/leads: {answer.status_code})")
    email = str(items[0]["email"])
    done.masked_email = mask(email)
    subject = await run.api.post(
        "/internal/subjects/lookup", json={"email": email}, headers=run.auth
    )
    done.lead_ids = [int(lead["id"]) for lead in subject.json()["leads"]]
    requested = await run.api.post("/internal/erasures", json={"email": email}, headers=run.auth)
    if requested.status_code != 202:
        raise DemoError(f"POST /internal/erasures answered {requested.status_code}")
    done.erasure_id = int(requested.json()["id"])
    run.event(f"erasure {done.erasure_id} requested for {done.masked_email}")
    location = requested.headers["Location"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ERASURE_TIMEOUT
    while True:
        erasure = (await run.api.get(location, headers=run.auth)).json()
        if erasure["status"] == "COMPLETED":
            break
        if loop.time() > deadline:
            done.problems.append(
                f"erasure {done.erasure_id} still {erasure['status']} after {ERASURE_TIMEOUT} s"
            )
            return done
        await asyncio.sleep(0.1)
    contacts = (await run.sandbox.get("/_sandbox/contacts")).json()["results"]
    done.contact_deleted = all(
        (c.get("properties") or {}).get("email", "").lower() != email for c in contacts
    )
    if not done.contact_deleted:
        done.problems.append(f"the sandbox still has a contact for {done.masked_email}")
    for lead_id in done.lead_ids:
        lead = (await run.api.get(f"/internal/leads/{lead_id}", headers=run.auth)).json()
        personal = [name for name in ("email", "firstname", "lastname", "phone") if lead[name]]
        if lead["hubspot_sync_status"] == "ERASED" and not personal:
            done.rows_scrubbed += 1
        else:
            done.problems.append(f"lead {lead_id} still holds {personal or 'a status'}")
    return done
