"""The canonical form of an email address: the one form leadsync stores and HubSpot receives.

The sync engine groups leads by the stored email with plain SQL equality and HubSpot upserts
by email, so two spellings of one address must become one string before storage. The rule
(docs/api.md, "Email addresses"):

1. The address is one `local@domain` with no quoting, comments or IP-literal domain.
2. The local part is ASCII (letters, digits and ``.!#$%&'*+-/=?^_`{|}~``), at most 64
   characters. A non-ASCII local part (SMTPUTF8, e.g. ``İstanbul@``) is refused, not bent:
   HubSpot does not document accepting one, and case-folding it is not well defined
   (``İ`` lowercases to two characters).
3. The domain is a valid internationalised domain name; it is stored in its ASCII form
   (IDNA 2008 with UTS #46 mapping, as browsers do): ``bücher.de`` becomes
   ``xn--bcher-kva.de`` and ``xn--bcher-kva.de`` stays as it is. Special-use names
   (``.test``, ``.invalid``, ``.local``, ``.localhost``, ``.onion``, ``.arpa``) and dotless
   domains are refused.
4. ASCII letters are lowercased in both parts (HubSpot treats emails case-insensitively);
   nothing else changes.
5. The result is at most 254 characters (RFC 5321), counted after the domain became ASCII.

`canonical_email` is idempotent: a canonical address maps to itself.
"""

from __future__ import annotations

from typing import Final

from email_validator import EmailNotValidError, validate_email

MAX_LOCAL_PART: Final = 64
MAX_EMAIL: Final = 254
LOCAL_PART_CHARACTERS: Final = "letters, digits and . ! # $ % & ' * + - / = ? ^ _ ` { | } ~"
# email_validator's special-use names (RFC 6761 and others): no mail is delivered there.
SPECIAL_USE_DOMAINS: Final = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


# Published with `format: email` in the schema: a dot after the @, and not a special-use
# domain, which the format alone allows (JSON Schema regexes have no case-insensitive flag,
# hence [Tt][Ee]...).
EMAIL_PATTERN: Final = (
    r"^(?=[\s\S]*@[\s\S]*\.)"
    r"(?![\s\S]*[.@](?:" + "|".join(map(_any_case, SPECIAL_USE_DOMAINS)) + r")$)"
)


def canonical_email(value: str) -> str:
    """Return the canonical form of `value`, or raise ValueError with a readable reason.

    `value` must already be free of control characters and surrounding whitespace.
    """
    local, at, _domain = value.rpartition("@")
    if not at:
        raise ValueError("is not an email address: it has no @")
    if not local.isascii():
        raise ValueError(
            f"must use only ASCII before the @ ({LOCAL_PART_CHARACTERS}): addresses with "
            "other characters there, such as ñ or İ, are not accepted"
        )
    if len(local) > MAX_LOCAL_PART:
        raise ValueError(
            f"has {len(local)} characters before the @; at most {MAX_LOCAL_PART} are allowed"
        )
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None
    # email_validator has checked the whole address against 254 characters in its ASCII form.
    return f"{checked.local_part}@{checked.ascii_domain}".lower()
