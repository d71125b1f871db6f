"""Property validation as HubSpot reports it: error codes inside a 'Property values' list."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from leadsync.sandbox.replies import batch_error
from leadsync.sandbox.settings import READ_ONLY_PROPERTIES, SandboxConfig

# Close to what HubSpot accepts: one @, a dotted domain, no spaces.
_EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class PropertyError:
    """One property HubSpot would refuse, with its inner error code."""

    name: str
    code: str
    message: str

    def as_hubspot(self) -> dict[str, Any]:
        """Render as one entry of HubSpot's validation list."""
        return {
            "isValid": False,
            "message": self.message,
            "error": self.code,
            "name": self.name,
            "localizedErrorMessage": self.message,
        }

    def as_detail(self) -> dict[str, Any]:
        """Render as the spec's ErrorDetail."""
        return {
            "message": self.message,
            "code": self.code,
            "context": {"propertyName": [self.name]},
        }


class BadInput(ValueError):
    """The request body does not have the shape HubSpot expects."""


def coerce_properties(raw: object) -> dict[str, str]:
    """Return the properties as strings, as HubSpot coerces numbers and booleans."""
    if not isinstance(raw, dict):
        raise BadInput("properties must be an object of property name to value")
    props: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            props[name] = value
        elif value is None:
            props[name] = ""
        elif isinstance(value, bool):
            props[name] = "true" if value else "false"
        elif isinstance(value, _SCALARS):
            props[name] = str(value)
        else:
            raise BadInput(f"property {name!r} must be a string")
    return props


def check_email(email: str, *, config: SandboxConfig) -> PropertyError | None:
    """Return the INVALID_EMAIL error for a malformed or rejected email, else None."""
    pattern = config.reject_pattern
    if not _EMAIL_RE.match(email) or (pattern is not None and pattern.search(email)):
        return PropertyError("email", "INVALID_EMAIL", f"Email address {email} is invalid")
    return None


def check_properties(props: dict[str, str], *, config: SandboxConfig) -> list[PropertyError]:
    """Return every error HubSpot would report for these property values."""
    errors: list[PropertyError] = []
    writable = config.writable_properties
    for name in props:
        if name in READ_ONLY_PROPERTIES:
            errors.append(
                PropertyError(
                    name,
                    "READ_ONLY_VALUE",
                    f'"{name}" is a read only property; its value cannot be set.',
                )
            )
        elif name not in writable:
            errors.append(
                PropertyError(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
            )
    email = props.get("email", "")
    # An empty email clears the property, which HubSpot allows.
    if email and (error := check_email(email.strip(), config=config)) is not None:
        errors.append(error)
    return errors


def validation_message(errors: list[PropertyError]) -> str:
    """HubSpot's message: the validation list serialised inside the text."""
    listed = json.dumps([e.as_hubspot() for e in errors], separators=(",", ":"))
    return f"Property values were not valid: {listed}"


def input_error(
    errors: list[PropertyError], *, input_id: str, trace_id: str | None
) -> dict[str, Any]:
    """Build the StandardError for one batch input refused for its property values."""
    details = [e.as_detail() for e in errors]
    message = validation_message(errors)
    return batch_error(
        "VALIDATION_ERROR", message, ids=[input_id], trace_id=trace_id, details=details
    )
