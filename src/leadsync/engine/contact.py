"""Lead -> HubSpot contact properties, derived from the lead's field list.

Every field of LEAD_FIELDS (store/tables.py) whose name is one of HubSpot's default contact
properties is sent under that name; the others (`source`) only when HUBSPOT_EXTRA_PROPERTIES
maps them to a property of the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Final

from leadsync.hubspot.client import DEFAULT_CONTACT_PROPERTIES
from leadsync.store.tables import LEAD_FIELDS

DEFAULT_PROPERTY_MAP: Final[Mapping[str, str]] = MappingProxyType(
    {field: field for field in LEAD_FIELDS if field in DEFAULT_CONTACT_PROPERTIES}
)

_NO_EXTRA: Final[Mapping[str, str]] = MappingProxyType({})


def property_map(*, extra: Mapping[str, str] = _NO_EXTRA) -> dict[str, str]:
    """Return lead field -> HubSpot property: the defaults, overridden and extended by `extra`."""
    mapping = {**DEFAULT_PROPERTY_MAP, **extra}
    targets = list(mapping.values())
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
        # Two fields writing one property would make the contact depend on dict order.
        raise ValueError(f"several lead fields map to the HubSpot properties {clashes}")
    return mapping


def property_value(value: object) -> str | None:
    """Return a lead value as HubSpot's property string, or None when it is empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    text = text.strip()
    return text or None


def lead_properties(
    fields: Mapping[str, object],
    *,
    extra: Mapping[str, str] = _NO_EXTRA,
    mapping: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map a lead's fields to HubSpot contact properties, leaving empty values out.

    `mapping`: a property_map() computed once by the caller (the writer maps every lead of
    every batch with the same one); otherwise it is built from `extra`.
    """
    properties: dict[str, str] = {}
    for field, prop in (mapping if mapping is not None else property_map(extra=extra)).items():
        text = property_value(fields.get(field))
        if text is None:
            continue
        # HubSpot matches emails case-insensitively; lowercase keeps our dedupe keys equal to its.
        properties[prop] = text.lower() if prop == "email" else text
    return properties
