"""The pause switch: its state, and the forms to pause or resume every worker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from leadsync.store.db import utcnow
from leadsync.usecases.sync import MAX_PAUSE_NOTE, gate_report, pause_sync, resume_sync
from leadsync.web.console.common import (
    ctx_of,
    logged_in,
    one,
    posted_form,
    problem,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)


@router.get("/pause")
async def pause_page(request: Request) -> Response:
    """The pause switch: its state, and the forms to pause or resume."""
    session = logged_in(request)
    if isinstance(session, Response):
        return session
    ctx = ctx_of(request)
    gate, budget = await gate_report(ctx.sessions, settings=ctx.settings, now=utcnow())
    done = {
        "paused": "The sync is paused: no worker calls HubSpot until it is resumed.",
        "resumed": "The sync is running again.",
        "not-paused": "The sync was not paused.",
        "hubspot": "This pause is HubSpot's (a rate limit): it ends by itself.",
    }.get(request.query_params.get("done", ""))
    return render(
        request,
        "pause.html",
        session=session,
        title="Pause controls",
        page="pause",
        gate=gate,
        budget=budget,
        flash=done,
        max_note=MAX_PAUSE_NOTE,
    )


@router.post("/pause")
async def pause_action(request: Request) -> Response:
    """Pause or resume the sync for every worker, after a confirmation."""
    posted = await posted_form(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    action = one(form, "action")
    note = one(form, "note")
    if action not in ("pause", "resume"):
        return problem(request, 400, "Bad request", "Choose pause or resume.", session=session)
    if len(note) > MAX_PAUSE_NOTE:
        return problem(
            request,
            400,
            "Bad request",
            f"The note must be at most {MAX_PAUSE_NOTE} characters.",
            session=session,
        )
    if one(form, "confirm") != "yes":
        return render(
            request,
            "confirm_pause.html",
            session=session,
            title="Confirm",
            page="pause",
            action=action,
            note=note,
        )
    ctx = ctx_of(request)
    if action == "pause":
        await pause_sync(ctx.sessions, settings=ctx.settings, actor=session.actor, note=note)
        return redirect("/console/pause?done=paused")
    result = await resume_sync(ctx.sessions, settings=ctx.settings, actor=session.actor)
    if result.lifted is not None:
        ctx.wake_worker()
        return redirect("/console/pause?done=resumed")
    return redirect("/console/pause?done=" + ("hubspot" if result.still_paused else "not-paused"))
