"""notion-factory: durable state machines that drive Notion board cards.

The authoring API::

    from factory import define_factory, action, orchestrate, loop, feedback, done, failed, blocked
    from factory import Retries, Backoff, command_agent, GitWorkspace
"""

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
    loop,
    orchestrate,
)
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
    "blocked",
    "command_agent",
    "define_factory",
    "done",
    "failed",
    "feedback",
    "loop",
    "orchestrate",
]
