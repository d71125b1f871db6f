"""Bearer-token guard of the `/internal/*` routes, declared in /openapi.json as `internalToken`."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadsync.web.context import AppContext, get_context

# Declares the scheme in the spec (and on every operation that depends on it). The check
# itself is below: auto_error=False so that every refusal is our 401 with our error shape.
bearer = HTTPBearer(
    scheme_name="internalToken",
    description="`Authorization: Bearer $LEADSYNC_INTERNAL_TOKEN`. Without the variable the "
    "internal routes answer 503.",
    auto_error=False,
)


async def require_internal_token(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with `Authorization: Bearer $LEADSYNC_INTERNAL_TOKEN`."""
    expected = ctx.settings.internal_token
    if expected is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "internal routes are disabled: set LEADSYNC_INTERNAL_TOKEN to enable them",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest on bytes: constant time whatever the first differing character is.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


InternalAuth = Depends(require_internal_token)
