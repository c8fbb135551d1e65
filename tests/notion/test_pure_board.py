"""Pure pieces of the Notion board: replies, schema checks and repairs, delivery text."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from factory.board_protocol import PendingEffect
from factory.effects import effect_from_row
from integrations.notion import schema
from integrations.notion.deliver import already_there, render
from integrations.notion.feedback import new_replies
from integrations.notion.repliers import Repliers

BOT, ANN, BOB, OTHER_BOT = "bot-id", "ann-id", "bob-id", "other-bot-id"
PEOPLE = frozenset({ANN, BOB})


def comment(cid: str, author: str, text: str) -> dict[str, Any]:
    return {
        "id": cid,
        "created_by": {"object": "user", "id": author},
        "created_time": "2026-11-23T10:00:00.000Z",
        "rich_text": [{"type": "text", "plain_text": text, "text": {"content": text}}],
    }


THREAD = [
    comment("c0", ANN, "an old remark"),
    comment("q", BOT, "Which colour?"),
    comment("c1", ANN, "Green"),
    comment("c2", BOT, "(the bot again)"),
    comment("c3", BOB, "and white"),
]


def test_replies_are_human_comments_after_the_question_in_order() -> None:
    got = new_replies(THREAD, bot_id=BOT, question_id="q", consumed=set(), people=PEOPLE)
    assert [(r.comment_id, r.text, r.author) for r in got] == [
        ("c1", "Green", ANN),
        ("c3", "and white", BOB),
    ]


def test_consumed_and_disallowed_replies_are_skipped() -> None:
    assert [
        r.comment_id
        for r in new_replies(THREAD, bot_id=BOT, question_id="q", consumed={"c1"}, people=PEOPLE)
    ] == ["c3"]
    allowed = new_replies(
        THREAD,
        bot_id=BOT,
        question_id="q",
        consumed=set(),
        people=PEOPLE,
        repliers=Repliers(True, frozenset({BOB})),
    )
    assert [r.author for r in allowed] == [BOB]


def test_the_bots_own_comments_never_count() -> None:
    assert (
        new_replies(
            [comment("q", BOT, "?"), comment("x", BOT, "hi")],
            bot_id=BOT,
            question_id="q",
            consumed=set(),
            people=PEOPLE,
        )
        == []
    )


def test_only_people_answer_another_integrations_bot_does_not() -> None:
    thread = [comment("q", BOT, "?"), comment("o", OTHER_BOT, "approve"), comment("a", ANN, "ok")]
    got = new_replies(thread, bot_id=BOT, question_id="q", consumed=set(), people=PEOPLE)
    assert [r.author for r in got] == [ANN]
    # allow-listing a bot does not make it a person
    listed = Repliers(True, frozenset({OTHER_BOT, ANN}))
    got = new_replies(
        thread, bot_id=BOT, question_id="q", consumed=set(), people=PEOPLE, repliers=listed
    )
    assert [r.author for r in got] == [ANN]
    # Notion marks an integration's comment as such even if the directory were wrong
    marked = {**comment("m", ANN, "approve"), "display_name": {"type": "integration"}}
    assert new_replies([marked], bot_id=BOT, question_id=None, consumed=set(), people=PEOPLE) == []


@given(
    configured=st.booleans(),
    ids=st.frozensets(st.sampled_from([ANN, BOB, OTHER_BOT])),
    author=st.sampled_from([ANN, BOB, OTHER_BOT, "unknown-id"]),
    is_person=st.booleans(),
)
def test_may_answer_admits_only_people_and_an_empty_list_admits_nobody(
    configured: bool, ids: frozenset[str], author: str, is_person: bool
) -> None:
    repliers = Repliers(configured, ids)
    admitted = repliers.may_answer(author, is_person)
    if not is_person:
        assert not admitted
    elif not configured:
        assert admitted
    else:
        assert admitted == (author in ids)  # configured and empty: nobody


def test_schema_problems_name_the_fix_and_repair_keeps_existing_options() -> None:
    props = {
        "Task": {"type": "title", "title": {}},
        "State": {
            "type": "select",
            "select": {"options": [{"id": "1", "name": "Queue", "color": "red"}]},
        },
        "Factory": {"type": "rich_text", "rich_text": {}},
    }
    problems = [str(p) for p in schema.check(props, ["triage"])]
    assert any("Name: the title property is called 'Task'" in p for p in problems)
    assert any("Factory: is a rich_text property, expected select" in p for p in problems)
    assert any("Step: missing; fix: add a rich text property named 'Step'" in p for p in problems)
    assert any("State: select options missing: Running" in p for p in problems)
    patch = schema.repair(props, ["triage"])
    assert patch is not None
    assert patch["Task"] == {"name": "Name"}
    assert "Factory" not in patch  # converting types could destroy data: reported, not repaired
    kept = patch["State"]["select"]["options"]
    assert kept[0] == {"id": "1", "name": "Queue", "color": "red"}
    assert [o["name"] for o in kept][1:] == [
        "Running",
        "Feedback",
        "Done",
        "Failed",
        "Blocked",
        "Cancelled",
    ]
    assert {"Step", "Error"} <= set(patch)


def test_a_right_board_has_no_problems() -> None:
    props = {
        name: {"type": next(iter(spec)), **spec}
        for name, spec in schema.initial_properties(["a", "b"]).items()
    }
    assert schema.check(props, ["a", "b"]) == []
    assert schema.repair(props, ["a", "b"]) is None


def effect(i: int, kind: str, payload: dict[str, Any]) -> PendingEffect:
    return PendingEffect(i, "t", effect_from_row(kind, payload), f"k{i}", "page")


def test_render_keeps_order_and_recognises_what_already_landed() -> None:
    effects = [
        effect(1, "log", {"line": "`10:00` **a** → **b** (action.done)"}),
        effect(2, "page", {"markdown": "# Output\n\nsome *text*"}),
        effect(3, "log", {"line": "`10:01` **b** → **c**"}),
    ]
    md = render(effects, with_header=True)
    assert (
        md.index("notion-factory log")
        < md.index("**a** → **b**")
        < md.index("# Output")
        < md.index("**b** → **c**")
    )
    # Notion may re-render markdown; letters and digits survive
    landed = (
        "## 🤖 notion-factory log\n- `10:00` **a** → **b** (action.done)\n\n# Output\nsome _text_"
    )
    assert already_there(effects[0], landed) and already_there(effects[1], landed)
    assert not already_there(effects[2], landed)


def test_env_example_documents_every_notion_setting() -> None:
    from pathlib import Path

    from integrations.notion.settings import NotionSettings

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for name in NotionSettings.model_fields:
        assert name.upper() in example, f"{name.upper()} is undocumented"
