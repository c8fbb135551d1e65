"""factory.unknown: an unknown factory id is blocked, or held in Queue while a module failed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from factory.unknown import health, unknown_factory

ids = st.text(st.sampled_from("abcxyz_"), max_size=6)
modules = st.dictionaries(
    st.text(st.sampled_from("abc/"), min_size=1, max_size=8).map(lambda p: p + ".py"),
    st.text(st.sampled_from("abc: ()'"), min_size=1, max_size=20),
    max_size=3,
)


@given(ids, st.sets(ids, max_size=4), modules)
def test_held_exactly_when_a_named_factory_may_be_in_a_module_that_failed(
    factory_id: str, known: set[str], unloaded: dict[str, str]
) -> None:
    known.discard(factory_id)
    verdict = unknown_factory(factory_id, known, unloaded)
    assert verdict.action == ("hold" if factory_id and unloaded else "block")
    # whatever happens to the card, its reason names every module that failed and why
    for path, error in unloaded.items():
        assert f"{path}: {error}" in verdict.reason
    if unloaded:
        assert f"{len(unloaded)} workflow module(s) failed to load" in verdict.reason


def test_reasons_people_read() -> None:
    assert unknown_factory("zz", ["b", "a"], {}).reason == (
        "unknown factory 'zz'; known factories: a, b"
    )
    assert unknown_factory("", [], {}).reason == (
        "the card names no Factory; choose one of: none loaded"
    )
    held = unknown_factory("beta", ["a"], {"flows/beta.py": "import failed: X"})
    assert held.reason == (
        "factory 'beta' is not loaded: 1 workflow module(s) failed to load: flows/beta.py: "
        "import failed: X; the card waits in Queue until the module is fixed and the worker "
        "restarted"
    )


def test_health_is_degraded_not_failing_when_a_module_failed() -> None:
    assert health({}) == "ok"
    assert health({"b.py": "E"}) == "degraded (1 workflow module(s) failed to load: b.py: E)"
