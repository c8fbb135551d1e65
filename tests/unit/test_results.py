"""Strict reading of agent results: every bad shape names the state and the field."""

from __future__ import annotations

import pytest

from factory.results import AgentResult, BadResult, parse_result


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("done", "must be a mapping"),
        ({}, "missing 'status'"),
        ({"status": "ok"}, "field 'status' is 'ok'"),
        ({"status": "done", "data": [1]}, "field 'data' must be an object"),
        ({"status": "done", "message": 3}, "field 'message' must be a string"),
        ({"status": "done", "page": b"x"}, "field 'page' must be a string"),
        ({"status": "done", "mesage": "typo"}, "unknown field(s) 'mesage'"),
    ],
)
def test_bad_results_name_state_and_field(raw: object, expected: str) -> None:
    with pytest.raises(BadResult) as caught:
        parse_result(raw, "draft")
    assert "state 'draft'" in str(caught.value) and expected in str(caught.value)


def test_typed_and_dict_results_read_the_same() -> None:
    typed = parse_result(AgentResult("done", {"a": 1}, "hi", "# p"), "s")
    assert typed == parse_result(
        {"status": "done", "data": {"a": 1}, "message": "hi", "page": "# p"}, "s"
    )
    assert parse_result({"status": "failed", "data": None}, "s").data == {}


def test_event_comes_from_data_else_status() -> None:
    assert AgentResult("done", {"event": "ship"}).event == "ship"
    assert AgentResult("failed", {"event": ""}).event == "failed"
