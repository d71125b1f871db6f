"""strictjson.loads: RFC 8259 JSON in UTF-8, one meaning per document, or a reason why not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadsync.web.strictjson import loads


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"email": "a@example.com", "n": [1, 2.5, -0, 1e3]}',
         {"email": "a@example.com", "n": [1, 2.5, 0, 1000.0]}),
        ('{"name": "Jos\u00e9 \u682a"}'.encode(), {"name": "Jos\u00e9 \u682a"}),
        (b'{"a": {"a": 1}, "b": {"a": 2}}', {"a": {"a": 1}, "b": {"a": 2}}),  # same key, 2 objects
        (b"[" * 200 + b"]" * 200, json.loads(b"[" * 200 + b"]" * 200)),
        (b"1" * 4300, int("1" * 4300)),
        # JSON Schema's integers: no fractional part, whatever the spelling; exact, not floats.
        (b"[5.0, 1e3, 1.5e3, -0.0, 0e999999, 100e-2]", [5, 1000, 1500, 0, 0, 1]),
        (b"9223372036854775807.0", 2**63 - 1),
        (b"1e400", 10**400),
        (b'"\\\\ud800 is not an escape"', "\\ud800 is not an escape"),  # escaped backslash
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
    ],
)  # fmt: skip
def test_standard_json_parses_as_usual(raw: bytes, value: Any) -> None:
    assert loads(raw) == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"email": "a@example.com", "email": "b@example.com"}',
         "the body is ambiguous: the key 'email' appears more than once"),
        (b'{"x": {"k": 1, "k": 1}}', "the body is ambiguous: the key 'k' appears more than once"),
        (b'{"older_than_seconds": NaN}', "the body is not valid JSON: NaN is not a JSON number"),
        (b'{"older_than_seconds": Infinity}',
         "the body is not valid JSON: Infinity is not a JSON number"),
        (b'{"older_than_seconds": -Infinity}',
         "the body is not valid JSON: -Infinity is not a JSON number"),
        (b'{"older_than_seconds": ' + b"1" * 400 + b'.5}',
         "the body holds a number too large for a float: " + "1" * 40),
        (b"[1e4300]", "the body holds an integer with more than 4,300 digits"),
        (b'{"firstname": "\\ud800"}',
         "the body holds a string that is not Unicode text (an unpaired surrogate escape such "
         "as \\ud800)"),
        (b'["ok", {"\\udfff": 1}]',
         "the body holds a string that is not Unicode text (an unpaired surrogate escape such "
         "as \\ud800)"),
        (b"[" + b"1" * 4301 + b"]", "the body holds an integer with more than 4,300 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is nested too deeply"),
        (b'{"email": "\xff"}', "the body is not valid JSON: invalid UTF-8 at byte 11"),
        ('{"email": "a@example.com"}'.encode("utf-16"),
         "the body is not valid JSON: invalid UTF-8 at byte 0"),
        (b'\xef\xbb\xbf{"email": "a@example.com"}',
         "the body is not valid JSON: unexpected utf-8 bom (decode using utf-8-sig) at line 1 "
         "column 1"),
        (b'{"email": ', "the body is not valid JSON: expecting value at line 1 column 11"),
        (b"", "the body is not valid JSON: expecting value at line 1 column 1"),
    ],
)  # fmt: skip
def test_non_standard_or_ambiguous_json_is_refused_saying_why(raw: bytes, reason: str) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        loads(raw)

    assert caught.value.msg == reason
