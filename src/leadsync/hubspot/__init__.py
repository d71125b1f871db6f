"""HubSpot CRM contacts: the HTTP client, its classified errors and the lead -> payload map."""

from leadsync.hubspot.client import MAX_BATCH_INPUTS, HubSpotClient, Observer, TokenProvider
from leadsync.hubspot.errors import (
    AuthError,
    ConflictError,
    HubSpotError,
    PermanentError,
    RateLimitedError,
    TransientError,
    parse_retry_after,
    scrub,
    truncate_error,
)
from leadsync.hubspot.models import (
    BatchInputError,
    BatchUpsertResult,
    Contact,
    RateLimitInfo,
    UpsertedContact,
    UpsertInput,
)
from leadsync.hubspot.payload import DEFAULT_PROPERTY_MAP, lead_properties, property_map

__all__ = [
    "DEFAULT_PROPERTY_MAP",
    "MAX_BATCH_INPUTS",
    "AuthError",
    "BatchInputError",
    "BatchUpsertResult",
    "ConflictError",
    "Contact",
    "HubSpotClient",
    "HubSpotError",
    "Observer",
    "PermanentError",
    "RateLimitInfo",
    "RateLimitedError",
    "TokenProvider",
    "TransientError",
    "UpsertInput",
    "UpsertedContact",
    "lead_properties",
    "parse_retry_after",
    "property_map",
    "scrub",
    "truncate_error",
]
