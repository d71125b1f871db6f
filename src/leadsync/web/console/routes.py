"""The console's pages: server-rendered HTML and plain forms (docs/runbook.md, "The console").

One router under /console: the overview and the static files here, the other pages in their
modules (login, leads, pause, erasures), the plumbing they share in `common`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from leadsync.usecases import console, privacy
from leadsync.web.console import erasures, leads, login, pause
from leadsync.web.console.common import ctx_of, logged_in, render

router = APIRouter(prefix="/console", include_in_schema=False)

STATIC: Final = {"console.css": "text/css", "console.js": "text/javascript"}


def chart(values: list[int], *, width: int = 600, height: int = 120) -> dict[str, Any]:
    """Bars of the synced-per-minute chart as SVG coordinates (drawn by the template)."""
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    bars = []
    for index, value in enumerate(values):
        bar_height = 0.0 if value == 0 else max(1.0, value / top * (height - 14))
        bars.append(
            {
                "x": round(index * step + 1, 1),
                "y": round(height - bar_height, 1),
                "w": round(max(step - 2, 1), 1),
                "h": round(bar_height, 1),
                "value": value,
                "minutes_ago": len(values) - 1 - index,
            }
        )
    return {"bars": bars, "width": width, "height": height, "top": top, "total": sum(values)}


@router.get("")
async def overview_page(request: Request) -> Response:
    """Leads by status, the backlog, synced per minute, the gate, the workers."""
    session = logged_in(request)
    if isinstance(session, Response):
        return session
    ctx = ctx_of(request)
    view = await console.overview_of(ctx.sessions, settings=ctx.settings)
    erasure_counts = await privacy.erasure_counts(ctx.sessions)
    return render(
        request,
        "overview.html",
        session=session,
        title="Overview",
        page="overview",
        view=view,
        erasures=erasure_counts,
        chart=chart(view.synced_per_minute),
    )


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet and the small live-refresh script, from the package."""
    if name not in STATIC:
        return Response(status_code=404)
    body = resources.files("leadsync.web.console").joinpath("static", name).read_bytes()
    response = Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


for _pages in (login, leads, pause, erasures):
    router.include_router(_pages.router)
