"""The canonical email form: ASCII domain, ASCII letters lowercased, RFC 5321 lengths."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadsync.emails import EMAIL_PATTERN, SPECIAL_USE_DOMAINS, canonical_email
from leadsync.engine.contact import lead_properties


@pytest.mark.parametrize(
    ("given_as", "canonical"),
    [
        ("ana@example.com", "ana@example.com"),
        ("Ana.Garcia+Leads@Example.COM", "ana.garcia+leads@example.com"),
        # A punycode domain stays punycode (it used to be stored as user@bücher.de).
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
        ("USER@XN--BCHER-KVA.DE", "user@xn--bcher-kva.de"),
        # A Unicode domain becomes its punycode (IDNA 2008, UTS #46 mapping).
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("User@BÜCHER.de", "user@xn--bcher-kva.de"),
        ("a@straße.de", "a@xn--strae-oqa.de"),
        ("a@\u0391\u0392\u0393.gr", "a@xn--mxacd.gr"),  # Greek capitals
        ("a@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com", "a@example.com"),  # full-width
        ("!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ],
)
def test_canonical_form(given_as: str, canonical: str) -> None:
    assert canonical_email(given_as) == canonical
    assert canonical_email(canonical) == canonical  # idempotent


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        # The local part is never case-folded beyond ASCII: İ would become two characters.
        ("İstanbul@example.com", "must use only ASCII before the @"),
        ("josé@example.com", "must use only ASCII before the @"),
        ("ß@example.com", "must use only ASCII before the @"),
        ("a" * 65 + "@example.com", "has 65 characters before the @; at most 64 are allowed"),
        ("no-at-sign.example.com", "is not an email address: it has no @"),
        ("a@b@example.com", "is not a valid email address"),
        ('"a b"@example.com', "is not a valid email address"),
        ("a@[127.0.0.1]", "is not a valid email address"),
        ("a@localhost", "is not a valid email address"),
        ("a@x.test", "special-use or reserved name"),
        ("a@x.invalid", "special-use or reserved name"),
        ("a@xn--abc.com", "is not a valid email address"),  # not valid punycode
        ("a..b@example.com", "is not a valid email address"),
        # Short enough in Unicode, too long once the domain is punycode.
        ("a" * 64 + "@" + ".".join(["bücher" * 5] * 5) + ".de", "converted to IDNA ASCII"),
    ],
)
def test_what_cannot_be_made_canonical_is_refused_saying_why(email: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        canonical_email(email)

    assert reason in str(caught.value)


@given(st.emails())
def test_canonical_form_is_ascii_lowercase_and_a_fixed_point(email: str) -> None:
    try:
        canonical = canonical_email(email)
    except ValueError:
        return  # refused: fine, as long as what is accepted is canonical
    assert canonical.isascii()
    assert canonical == canonical.lower()
    assert len(canonical) <= 254
    assert len(canonical.rpartition("@")[0]) <= 64
    assert canonical_email(canonical) == canonical


def test_the_payload_sends_the_stored_canonical_email_unchanged() -> None:
    stored = canonical_email("User@Bücher.DE")

    assert lead_properties({"email": stored})["email"] == stored == "user@xn--bcher-kva.de"


_LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_TLD = st.sampled_from([*SPECIAL_USE_DOMAINS, "com", "org", "io", "example", "tests", "locals"])


@given(local=_LABEL, labels=st.lists(_LABEL, max_size=2), tld=_TLD, upper=st.booleans())
def test_the_published_pattern_refuses_exactly_the_special_use_domains(
    local: str, labels: list[str], tld: str, upper: bool
) -> None:
    email = f"{local}@{'.'.join([*labels, tld])}"
    email = email.upper() if upper else email
    allowed = re.search(EMAIL_PATTERN, email) is not None
    try:
        canonical_email(email)
    except ValueError:
        accepted = False
    else:
        accepted = True

    assert accepted == allowed, email
