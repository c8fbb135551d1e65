"""The status enums: one definition each, consistent with each other and with the board."""

from __future__ import annotations

from factory.effects import BOARD_COLUMNS, COLUMNS
from factory.statuses import ACTIVE, TERMINAL, UNDELIVERED, OutboxStatus, RunStatus, TaskStatus


def test_every_task_status_is_a_column_of_the_board() -> None:
    assert set(COLUMNS) == set(TaskStatus)
    assert set(COLUMNS.values()) == set(BOARD_COLUMNS)


def test_a_task_takes_its_runs_status_and_a_status_is_active_or_terminal() -> None:
    assert {str(s) for s in RunStatus} <= {str(s) for s in TaskStatus}
    assert set(RunStatus) >= TERMINAL
    assert ACTIVE.isdisjoint(TERMINAL) and set(TaskStatus) == ACTIVE | TERMINAL
    assert set(UNDELIVERED) == {OutboxStatus.pending, OutboxStatus.sending}


def test_a_status_is_stored_as_the_same_string_by_value_or_by_name() -> None:
    # drivers store a StrEnum by value, or (psycopg) an Enum by name: both must be the same
    for enum in (TaskStatus, RunStatus, OutboxStatus):
        for member in enum:
            assert member.name == member.value == member == str(member)
