"""The one secret scrubber: every log line and every HubSpot error text goes through it.

Two rules, applied in this order:
1. each known secret, and the forms it takes inside JSON or a URL should a server echo it, is
   replaced by [REDACTED] (longest first, so a secret containing another goes whole);
2. whatever follows the word "Bearer" is a credential, whoever wrote it and whether or not we
   know it (an old, rotated token echoed back by a proxy is still a secret).

Log lines also go through `mask_personal` (docs/privacy.md): an email address becomes
[email] and an international phone number [phone], wherever they come from (HubSpot quotes
the values it refuses in its error texts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "[REDACTED]"
# Shorter "secrets" would shred ordinary words; config refuses such tokens anyway.
MIN_SECRET_LENGTH = 8
# The credential runs to white space, a quote, a separator or a bracket; it stops at a
# backslash too, so that a JSON-escaped quote after it survives. One already redacted is left.
_BEARER_RE = re.compile(
    r"(?i)\b(bearer)(\s*[:=]\s*|\s+|%20|\+)(?!\[REDACTED\])[^\s\"'`,;&<>(){}\[\]\\]+"
)


def secret_forms(secrets: Iterable[str | None]) -> list[str]:
    """Return every form of the secrets to replace, longest first (blank ones are skipped)."""
    forms: set[str] = set()
    for secret in secrets:
        if secret and secret.strip():
            forms.update({secret, quote(secret, safe=""), secret.replace("/", "\\/")})
    return sorted(forms, key=len, reverse=True)


def scrub_forms(text: str, forms: Iterable[str]) -> str:
    """Apply both rules with forms prepared by secret_forms()."""
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def scrub(text: str, *, secrets: Iterable[str | None]) -> str:
    """Return text with every secret and every bearer credential replaced by [REDACTED]."""
    return scrub_forms(text, secret_forms(secrets))


EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
# Anything shaped like an address: a local part, @, a domain with a dot. Broader than the
# intake's rule on purpose (a log must not leak an address the intake would refuse either).
_EMAIL_RE = re.compile(r"[^\s@\"'<>(),;:\[\]{}]+@[^\s@\"'<>(),;:\[\]{}]+\.[^\s@\"'<>(),;:\[\]{}]+")
# A number in international form: + then at least 7 digits, spaces or ( ) - . between them.
_PHONE_RE = re.compile(r"\+\d(?:[\s().-]*\d){6,}")


def mask_personal(text: str) -> str:
    """Return text with email addresses and international phone numbers masked."""
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL_MASK, text)
    if "+" in text:
        text = _PHONE_RE.sub(PHONE_MASK, text)
    return text


# Shorter values (a two-letter name) would shred ordinary words of an error text.
MIN_MASKED_VALUE = 3
VALUE_MASK = "[personal data]"


def mask_values(text: str, values: Iterable[str | None]) -> str:
    """Return text with each of these values (a lead's own fields) masked, longest first."""
    for value in sorted(
        {v for v in values if v and len(v) >= MIN_MASKED_VALUE}, key=len, reverse=True
    ):
        if value in text:
            text = text.replace(value, VALUE_MASK)
    return text
