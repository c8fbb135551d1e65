"""notion-factory: durable state machines that drive Notion board cards.

The authoring API, in two styles (docs/authoring.md says when to pick which)::

    # a state table
    from factory import define_factory, action, orchestrate, loop, feedback, done, failed, blocked
    # a flow of composed steps, compiled to the same state machine
    from factory import define_factory, flow, step, ask, decide, loop, write, end, one_of
    # both
    from factory import Retries, Backoff, command_agent, GitWorkspace
"""

# `decide` below is the flow step; the transition module of the same name is imported
# first so that importing it later cannot rebind `factory.transitions` to the module.
import factory.transitions as _transitions  # noqa: F401
from factory.dsl import (
    Backoff,
    Factory,
    Retries,
    action,
    blocked,
    define_factory,
    done,
    failed,
    feedback,
    orchestrate,
)
from factory.flow_steps import ask, decide, end, flow, loop, one_of, step, write
from factory.results import AgentInput, AgentResult
from factory.shell_agent import command_agent
from factory.validate import FactoryError
from factory.workspaces import GitWorkspace

__all__ = [
    "AgentInput",
    "AgentResult",
    "Backoff",
    "Factory",
    "FactoryError",
    "GitWorkspace",
    "Retries",
    "action",
    "ask",
    "blocked",
    "command_agent",
    "decide",
    "define_factory",
    "done",
    "end",
    "failed",
    "feedback",
    "flow",
    "loop",
    "one_of",
    "orchestrate",
    "step",
    "write",
]
