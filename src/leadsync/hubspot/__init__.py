"""HubSpot CRM contacts: the HTTP client and its classified errors."""

from leadsync.hubspot.client import MAX_BATCH_INPUTS, HubSpotClient, Observer, TokenProvider
from leadsync.hubspot.errors import (
    AuthError,
    ConflictError,
    HubSpotError,
    PermanentError,
    RateLimitedError,
    TransientError,
    parse_retry_after,
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

__all__ = [
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
    "parse_retry_after",
    "truncate_error",
]
