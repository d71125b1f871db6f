"""LeadIn: every field's limit and characters, unknown fields, email normalisation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadsync.usecases.schemas import (
    IDEMPOTENCY_KEY_RE,
    MESSAGE_PATTERN,
    PHONE_PATTERN,
    SINGLE_LINE_PATTERN,
    SPACE_CHARS,
    SPACES,
    LeadIn,
)

EMAIL = "ana@example.com"
# 64 + 1 + 189 = 254 characters, the longest address SMTP allows.
LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"


def errors_of(**fields: Any) -> dict[str, str]:
    """Return {field: message} of the validation errors of a LeadIn built from fields."""
    with pytest.raises(ValidationError) as caught:
        LeadIn(**fields)
    return {".".join(str(p) for p in err["loc"]): str(err["msg"]) for err in caught.value.errors()}


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("firstname", 100),
        ("lastname", 100),
        ("company", 100),
        ("source", 64),
        ("message", 5000),
    ],
)
def test_text_field_length_limit(field: str, limit: int) -> None:
    assert getattr(LeadIn(email=EMAIL, **{field: "x" * limit}), field) == "x" * limit

    assert set(errors_of(email=EMAIL, **{field: "x" * (limit + 1)})) == {field}


def test_phone_length_limit() -> None:
    longest = "1" * 32
    assert LeadIn(email=EMAIL, phone=longest).phone == longest

    assert set(errors_of(email=EMAIL, phone="1" * 33)) == {"phone"}


def test_email_length_limit() -> None:
    assert len(LONGEST_EMAIL) == 254
    assert LeadIn(email=LONGEST_EMAIL).email == LONGEST_EMAIL

    assert set(errors_of(email="a" + LONGEST_EMAIL)) == {"email"}


def test_email_is_trimmed_and_lowercased() -> None:
    assert LeadIn(email="  Ana.Garcia@Example.COM \u3000").email == "ana.garcia@example.com"


@pytest.mark.parametrize(
    "email",
    ["", "   ", "not-an-email", "ana@", "@example.com", "ana@example", "ana garcia@example.com",
     "ana@exa mple.com", "ana@exa\nmple.com", "ana\x00@example.com", "ana@example.com\r\nBcc: x",
     "ana@example.com\t", "\x1fana@example.com", "ana@example.com\x85", "ana@example.com\u2028"],
)  # fmt: skip
def test_invalid_email_is_rejected(email: str) -> None:
    assert set(errors_of(email=email)) == {"email"}


def test_email_is_required() -> None:
    assert set(errors_of(firstname="Ana")) == {"email"}
    assert set(errors_of(email=None)) == {"email"}


@pytest.mark.parametrize(
    "phone",
    ["+34 600 123 456", "(555) 123-4567", "555.123.4567", "600/123/456", "+1 555 123 4567 ext. 12",
     "600123456 x 7", "1"],
)  # fmt: skip
def test_phone_accepts_digits_separators_and_extension(phone: str) -> None:
    assert LeadIn(email=EMAIL, phone=phone).phone == phone


@pytest.mark.parametrize(
    "phone",
    ["abc", "+34 600 ABC", "12;3", "++34", "--", "+", "600 123 456 ext", "600\u0660123",
     "600_123", "600#1", "600\t123", "600\n123"],
)  # fmt: skip
def test_phone_rejects_other_characters(phone: str) -> None:
    assert set(errors_of(email=EMAIL, phone=phone)) == {"phone"}


@pytest.mark.parametrize("field", ["firstname", "lastname", "company", "source"])
@pytest.mark.parametrize(
    "bad", ["line\nbreak", "tab\there", "nul\x00byte", "esc\x1b[31m", "del\x7f"]
)
def test_single_line_fields_reject_control_characters(field: str, bad: str) -> None:
    assert set(errors_of(email=EMAIL, **{field: bad})) == {field}


def test_single_line_fields_keep_unicode_and_are_trimmed() -> None:
    lead = LeadIn(
        email=EMAIL, firstname="  José ", lastname="García-Núñez", company="Ōkubo 株式会社"
    )

    assert (lead.firstname, lead.lastname, lead.company) == (
        "José",
        "García-Núñez",
        "Ōkubo 株式会社",
    )


def test_message_keeps_line_breaks_and_tabs() -> None:
    text = "Hello,\r\n\tWe are 6 people.\nThanks"

    assert LeadIn(email=EMAIL, message=text).message == text


@pytest.mark.parametrize("bad", ["nul\x00", "bell\x07", "esc\x1b", "del\x7f", "vt\x0b", "ff\x0c"])
def test_message_rejects_other_control_characters(bad: str) -> None:
    assert set(errors_of(email=EMAIL, message=bad)) == {"message"}


@pytest.mark.parametrize(
    "field", ["firstname", "lastname", "phone", "company", "message", "source"]
)
def test_blank_optional_field_becomes_none(field: str) -> None:
    assert getattr(LeadIn(email=EMAIL, **{field: "   "}), field) is None


@pytest.mark.parametrize("field", ["email", "firstname", "phone", "message"])
def test_non_string_values_are_rejected(field: str) -> None:
    fields: dict[str, Any] = {"email": EMAIL, field: 12345}

    assert set(errors_of(**fields)) == {field}


def test_unknown_fields_are_rejected() -> None:
    errors = errors_of(email=EMAIL, utm_campaign="spring", hubspot_sync_status="SYNCED")

    assert set(errors) == {"utm_campaign", "hubspot_sync_status"}


def test_fingerprint_is_stable_over_normalisation_and_sees_every_field() -> None:
    base = LeadIn(email="Ana@Example.com", firstname="Ana")

    assert base.fingerprint() == LeadIn(email=" ana@example.com ", firstname=" Ana ").fingerprint()
    assert base.fingerprint() != LeadIn(email="ana@example.com", firstname="Anna").fingerprint()
    assert base.fingerprint() != LeadIn(email="ana@example.com").fingerprint()


@pytest.mark.parametrize(
    ("key", "valid"),
    [("k", True), ("form-42:0f8c9a", True), ("~" * 255, True), ("", False), ("a b", False),
     ("x" * 256, False), ("tab\tkey", False), ("clé", False), ("nul\x00", False),
     ("trailing-newline\n", False)],
)  # fmt: skip
def test_idempotency_key_charset_and_length(key: str, valid: bool) -> None:
    assert bool(IDEMPOTENCY_KEY_RE.match(key)) is valid


# --- one rule for control characters, applied before stripping -------------------------------


@pytest.mark.parametrize("field", ["firstname", "lastname", "company", "source", "phone"])
@pytest.mark.parametrize(
    "bad",
    ["Ana\x1f", "\x1cAna", "Ana\x1d", "Ana\x1e", "12\x0b", "Ana\x85", "\x9fAna", "Ana\u2028",
     "\u2029Ana", "Ana\n", "\tAna", "Ana\r\n"],
)  # fmt: skip
def test_control_characters_are_refused_even_where_strip_would_remove_them(
    field: str, bad: str
) -> None:
    # str.strip() removes U+001C-U+001F, U+0085, U+2028...: checking after it stored "Ana".
    errors = errors_of(email=EMAIL, **{field: bad})

    assert set(errors) == {field}
    assert "control characters" in errors[field]


@pytest.mark.parametrize("bad", ["hi\x1f", "\x1chi", "hi\x85", "hi\x0b", "hi\x0c"])
def test_message_refuses_control_characters_at_its_ends_too(bad: str) -> None:
    assert set(errors_of(email=EMAIL, message=bad)) == {"message"}


def test_surrounding_unicode_spaces_are_stripped_after_the_check() -> None:
    lead = LeadIn(
        email="\u00a0ana@example.com ",
        firstname="\u3000Ana\u2009",
        phone="\u202f+34 600\u00a0",
        message="\n\tHello\u2028 there\r\n ",
    )

    assert (lead.email, lead.firstname, lead.phone, lead.message) == (
        "ana@example.com",
        "Ana",
        "+34 600",
        "Hello\u2028 there",
    )


def test_space_chars_are_python_whitespace_less_what_the_rule_refuses() -> None:
    refused = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]}
    whitespace = {chr(c) for c in range(0x110000) if chr(c).isspace()}

    assert set(SPACE_CHARS) == whitespace - refused
    assert all(re.fullmatch(f"[{SPACES}]", c) for c in SPACE_CHARS)
    assert not any(re.fullmatch(f"[{SPACES}]", c) for c in refused | {"x", "\u200b"})


# The patterns published in /openapi.json are what the validators enforce: a value the
# pattern allows is accepted, and one it refuses is a 422 (lengths aside).
_INTERESTING = st.sampled_from(
    list("\x00\x08\t\n\x0b\x0c\r\x1c\x1f \x7f\x85\x9f\xa0\u1680\u2000\u200b\u2028\u2029\u3000")
    + list("+()-./x0123456789ext")
)
# No lone surrogates: they cannot arrive in a body (strictjson refuses them).
_TEXT = st.text(st.one_of(_INTERESTING, st.characters(exclude_categories=["Cs"])), max_size=20)


@pytest.mark.parametrize(
    ("field", "pattern"),
    [("firstname", SINGLE_LINE_PATTERN), ("source", SINGLE_LINE_PATTERN),
     ("phone", PHONE_PATTERN), ("message", MESSAGE_PATTERN)],
)  # fmt: skip
@settings(max_examples=400, deadline=None)
@given(value=_TEXT)
def test_published_pattern_and_validator_agree(field: str, pattern: str, value: str) -> None:
    allowed = re.fullmatch(pattern, value) is not None
    try:
        LeadIn(email=EMAIL, **{field: value})
    except ValidationError:
        accepted = False
    else:
        accepted = True

    assert accepted == allowed, (field, value)


def test_schema_publishes_the_patterns_and_email_format() -> None:
    properties = LeadIn.model_json_schema()["properties"]

    assert properties["email"]["format"] == "email"
    assert properties["email"]["maxLength"] == 254
    for field in ("firstname", "lastname", "company", "source"):
        assert properties[field]["anyOf"][0]["pattern"] == SINGLE_LINE_PATTERN
    assert properties["phone"]["anyOf"][0]["pattern"] == PHONE_PATTERN
    assert properties["message"]["anyOf"][0]["pattern"] == MESSAGE_PATTERN
