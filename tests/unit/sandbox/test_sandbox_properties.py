"""Property validation: HubSpot's codes, messages and the configurable rules."""

from __future__ import annotations

import json

import pytest

from leadsync.sandbox.properties import (
    BadInput,
    check_properties,
    coerce_properties,
    input_error,
    validation_message,
)
from leadsync.sandbox.settings import SandboxConfig

CONFIG = SandboxConfig()


def codes(props: dict[str, str], config: SandboxConfig = CONFIG) -> list[tuple[str, str]]:
    return [(e.name, e.code) for e in check_properties(props, config=config)]


def test_known_properties_pass() -> None:
    assert codes({"email": "a@x.com", "firstname": "A", "message": "hi", "jobtitle": "x"}) == []


def test_unknown_property_is_property_doesnt_exist() -> None:
    assert codes({"lead_source": "web"}) == [("lead_source", "PROPERTY_DOESNT_EXIST")]


def test_extra_properties_are_accepted() -> None:
    config = SandboxConfig(extra_properties=frozenset({"lead_source"}))
    assert codes({"lead_source": "web"}, config) == []


def test_read_only_properties_are_refused() -> None:
    assert codes({"hs_object_id": "1"}) == [("hs_object_id", "READ_ONLY_VALUE")]


@pytest.mark.parametrize("email", ["nope", "a@b", "a b@x.com", "@x.com", "a@@x.com"])
def test_malformed_email_is_invalid_email(email: str) -> None:
    assert codes({"email": email}) == [("email", "INVALID_EMAIL")]


def test_email_matching_reject_regex_is_invalid_email() -> None:
    config = SandboxConfig(reject_emails=r"@blocked\.test$")
    assert codes({"email": "x@blocked.test"}, config) == [("email", "INVALID_EMAIL")]
    assert codes({"email": "x@fine.test"}, config) == []


def test_empty_email_clears_rather_than_fails() -> None:
    assert codes({"email": ""}) == []


def test_message_embeds_hubspots_validation_list() -> None:
    errors = check_properties({"bogus": "1"}, config=CONFIG)
    message = validation_message(errors)
    prefix = "Property values were not valid: "
    assert message.startswith(prefix)
    [entry] = json.loads(message.removeprefix(prefix))
    assert entry == {
        "isValid": False,
        "message": 'Property "bogus" does not exist',
        "error": "PROPERTY_DOESNT_EXIST",
        "name": "bogus",
        "localizedErrorMessage": 'Property "bogus" does not exist',
    }


def test_input_error_carries_the_write_trace_id_in_context() -> None:
    errors = check_properties({"email": "bad"}, config=CONFIG)
    error = input_error(errors, input_id="bad", trace_id="lead-7")
    assert error["context"] == {"ids": ["bad"], "objectWriteTraceId": ["lead-7"]}
    assert error["errors"][0]["code"] == "INVALID_EMAIL"
    assert {"status", "category", "message", "links"} <= set(error)


def test_coerce_turns_scalars_into_strings() -> None:
    assert coerce_properties({"a": 1, "b": True, "c": None, "d": "x"}) == {
        "a": "1",
        "b": "true",
        "c": "",
        "d": "x",
    }
    with pytest.raises(BadInput):
        coerce_properties({"a": {"nested": 1}})
    with pytest.raises(BadInput):
        coerce_properties(["not", "an", "object"])
