"""Injected per-input errors: the rule, and the book that hands them out by email."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadsync.sandbox.inputerrors import InputError, InputErrorBook


def rule(email: str = "a@x.com", status: str = "500", times: int = 1) -> InputError:
    return InputError(email=email, status=status, category="INTERNAL_ERROR", times=times)


def test_book_hands_out_each_email_s_errors_oldest_first_times_each() -> None:
    book = InputErrorBook()
    book.push(rule(" A@X.com ", "500", times=2))
    book.push(rule("a@x.com", "503"))
    book.push(rule("b@x.com", "429"))

    assert len(book) == 4
    taken = [book.take("a@x.com") for _ in range(4)]
    assert [r.status if r else None for r in taken] == ["500", "500", "503", None]
    assert book.take("c@x.com") is None
    assert [(e["email"], e["times"]) for e in book.listed()] == [("b@x.com", 1)]
    book.clear()
    assert book.take("b@x.com") is None


def test_batch_error_is_a_standard_error_with_the_injected_status() -> None:
    error = InputError(
        email="a@x.com", status="500", category="INTERNAL_ERROR", message="boom"
    ).batch_error(trace_id="t-1")

    assert error == {
        "status": "500",
        "category": "INTERNAL_ERROR",
        "message": "boom",
        "context": {"ids": ["a@x.com"], "objectWriteTraceId": ["t-1"]},
        "errors": [],
        "links": {},
    }
    assert "objectWriteTraceId" not in rule().batch_error(trace_id=None)["context"]


@pytest.mark.parametrize(("status", "http"), [("503", 503), ("429", 429), ("OOPS", 400)])
def test_single_calls_get_the_status_or_400(status: str, http: int) -> None:
    response = rule(status=status).response()
    assert response.status_code == http


def test_a_number_is_accepted_as_status() -> None:
    assert (
        InputError.model_validate({"email": "a@x.com", "status": 503, "category": "X"}).status
        == "503"
    )
    with pytest.raises(ValidationError):
        InputError.model_validate({"email": "a@x.com", "status": True, "category": "X"})
