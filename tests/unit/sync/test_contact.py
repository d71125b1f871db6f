"""Lead fields -> HubSpot contact properties."""

from __future__ import annotations

from datetime import date

import pytest

from leadsync.engine.contact import DEFAULT_PROPERTY_MAP, lead_properties, property_map


def test_default_map_is_hubspots_default_properties() -> None:
    assert dict(DEFAULT_PROPERTY_MAP) == {
        "email": "email",
        "firstname": "firstname",
        "lastname": "lastname",
        "phone": "phone",
        "company": "company",
        "message": "message",
    }


def test_maps_fields_lowercases_email_and_drops_empty_values() -> None:
    lead = {
        "email": "  Ada@Example.COM ",
        "firstname": "Ada",
        "lastname": "",
        "phone": None,
        "company": "   ",
        "message": " Hello\nthere ",
        "internal_note": "not sent",
    }

    assert lead_properties(lead) == {
        "email": "ada@example.com",
        "firstname": "Ada",
        "message": "Hello\nthere",
    }


def test_extra_maps_custom_fields() -> None:
    lead = {"email": "a@x.com", "source": "landing-page", "score": 7, "consent": True}

    props = lead_properties(
        lead, extra={"source": "lead_source", "score": "lead_score", "consent": "gdpr_ok"}
    )

    assert props == {
        "email": "a@x.com",
        "lead_source": "landing-page",
        "lead_score": "7",
        "gdpr_ok": "true",
    }


def test_extra_can_remap_a_default_field() -> None:
    props = lead_properties({"message": "hi"}, extra={"message": "hs_content"})

    assert props == {"hs_content": "hi"}


def test_values_are_stringified_for_hubspot() -> None:
    props = lead_properties(
        {"visit": date(2026, 8, 21), "flag": False}, extra={"visit": "visit_day", "flag": "f"}
    )

    assert props == {"visit_day": "2026-08-21", "f": "false"}


def test_two_fields_on_one_property_is_refused() -> None:
    with pytest.raises(ValueError, match="email"):
        property_map(extra={"source": "email"})


def test_default_extra_is_not_shared_state() -> None:
    lead_properties({"email": "a@x.com"})

    assert property_map() == dict(DEFAULT_PROPERTY_MAP)
