"""Envelopes recognised by hand agree with the marshmallow schemas, field for field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.webhooks.envelopes import Envelope, PayloadError, load_envelope, parse_envelope
from service.webhooks.plain_envelopes import plain_envelope

ODD: list[Any] = [None, 7, 1.5, True, [], {}, b"p1"]
KEYS = ["p1", "a.b:c@d-e_f", "x" * 128, "", "x" * 129, "no spaces", "ü", *ODD]
TIMES = [
    "2026-11-24T10:00:00+00:00",
    "2026-11-24T10:00:00Z",
    "2026-11-24T10:00:00.123456+05:30",
    "2026-11-24 10:00:00-07:00",
    "2026-11-24T10:00:00",
    "2026-11-24",
    "2026-02-30T10:00:00+00:00",
    "tomorrow",
    "",
    *ODD,
]
TEXTS = ["Call", "x" * 64, " x ", " ", "", "x" * 65, "x" * 200, "x" * 201, *ODD]
LONG_TEXTS = ["done", "", "x" * 2000, "x" * 2001, *ODD]
# Candidate values of each field, valid and not, boundaries included.
VALUES: dict[str, list[Any]] = {
    "promise_id": KEYS,
    "promiser": KEYS,
    "promisee": KEYS,
    "reported_by": KEYS,
    "title": TEXTS,
    "category": TEXTS,
    "details": LONG_TEXTS,
    "note": LONG_TEXTS,
    "reason": LONG_TEXTS,
    "due_at": TIMES,
    "at": TIMES,
    "timezone": ["Europe/Berlin", "Nowhere/Special", *ODD],
    "reminders": [["PT1H"], ["nonsense"], *ODD],
    "person": KEYS,
    "surprise": ["field"],
}


VALID_DATA: dict[str, dict[str, Any]] = {
    "promise.made": {"promise_id": "p1", "promiser": "alex", "title": "Call when I land"},
    "promise.kept": {"promise_id": "p1"},
    "promise.broken": {"promise_id": "p1"},
    "person.updated": {"person": "alex"},
}


@st.composite
def raw_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope with one or two things added, changed or removed."""
    kind = draw(st.sampled_from(sorted(VALID_DATA)))
    data = dict(VALID_DATA[kind])
    raw: dict[str, Any] = {"type": kind, "timestamp": TIMES[0], "data": data}
    if draw(st.booleans()):
        raw["id"] = "line-1"
    for _ in range(draw(st.integers(1, 2))):
        change = draw(st.integers(0, 9))
        if change < 6:
            name = draw(st.sampled_from(sorted(VALUES)))
            data[name] = draw(st.sampled_from(VALUES[name]))
        elif change == 6 and data:
            del data[draw(st.sampled_from(sorted(data)))]
        elif change == 7:
            raw[draw(st.sampled_from(["id", "timestamp", "extra"]))] = draw(
                st.sampled_from(KEYS + TIMES)
            )
        elif change == 8:
            raw[draw(st.sampled_from(["type", "data"]))] = draw(
                st.sampled_from(["promise.x", *ODD])
            )
        else:
            del raw[draw(st.sampled_from(sorted(raw)))]
    return raw


def schema_answer(raw: dict[str, Any]) -> Envelope | None:
    try:
        return load_envelope(raw)
    except PayloadError:
        return None


def test_every_single_field_change_is_recognised_only_as_the_schemas_load_it() -> None:
    for kind, valid in VALID_DATA.items():
        for name, candidates in VALUES.items():
            for value in candidates:
                raw = {"type": kind, "timestamp": TIMES[0], "data": {**valid, name: value}}
                plain = plain_envelope(raw)
                if plain is not None:
                    assert Envelope(*plain) == schema_answer(raw), raw
        for value in TIMES:
            raw = {"type": kind, "timestamp": value, "data": valid}
            plain = plain_envelope(raw)
            if plain is not None:
                assert Envelope(*plain) == schema_answer(raw), raw


@settings(max_examples=1000)
@given(raw_envelopes())
def test_an_envelope_recognised_by_hand_is_what_the_schemas_load(raw: dict[str, Any]) -> None:
    plain = plain_envelope(raw)
    if plain is not None:
        assert Envelope(*plain) == schema_answer(raw)


@given(st.sampled_from(["promise_id", "promiser", "title"]))
def test_an_envelope_missing_a_required_field_goes_to_the_schemas(missing: str) -> None:
    data = {"promise_id": "p1", "promiser": "alex", "title": "Call"}
    del data[missing]
    raw = {"type": "promise.made", "timestamp": "2026-11-24T10:00:00Z", "data": data}
    assert plain_envelope(raw) is None
    with pytest.raises(PayloadError) as raised:
        parse_envelope(raw)
    assert raised.value.errors == {f"data.{missing}": ["Missing data for required field."]}


def test_the_common_envelopes_are_recognised_without_the_schemas() -> None:
    at = "2026-11-24T10:00:00+00:00"
    common = [
        {
            "id": "line-1",
            "type": "promise.made",
            "timestamp": at,
            "data": {
                "promise_id": "p1",
                "promiser": "alex",
                "promisee": "sam",
                "title": "Call when I land",
                "due_at": "2026-11-25T10:00:00+00:00",
            },
        },
        {"type": "promise.kept", "timestamp": at, "data": {"promise_id": "p1", "note": "ok"}},
        {"type": "promise.broken", "timestamp": at, "data": {"promise_id": "p1", "at": at}},
    ]
    for raw in common:
        plain = plain_envelope(raw)
        assert plain is not None
        assert Envelope(*plain) == load_envelope(raw)
