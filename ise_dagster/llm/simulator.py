"""The Stage 2 seams: a role-locked user simulator and a tool-calling agent.

The offline backend (offline_user.py, playbook_agent.py) and the OpenAI-compatible one both
implement these. The user sees only `UserView`: never a tool call or a tool result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ise_dagster.llm.tools import RejectedCall
from ise_dagster.llm.usage import Usage
from ise_dagster.sandbox import ToolResult
from ise_dagster.tasklib.base import Call
from ise_dagster.taxonomy.models import Persona, Task

TurnKind = Literal["request", "follow_up", "correction"]


@dataclass(frozen=True)
class UserView:
    """Everything the role-locked user may see."""

    persona: Persona
    intent: str
    tasks: tuple[Task, ...]
    own_queries: tuple[str, ...]
    agent_replies: tuple[str, ...]  # the agent's final text answers only


@dataclass(frozen=True)
class UserTurn:
    """The simulator's answer, in the paper's JSON shape plus the turn's plan.

    `kind` and `task_index` describe what the query is about; they are recorded with the
    trajectory and let the offline agent follow the plan without parsing prose.
    """

    completed: bool
    query: str
    reason: str
    is_success: bool
    kind: TurnKind = "request"
    task_index: int | None = None


class UserSimulator(Protocol):
    name: str
    model: str  # the model behind it, recorded with the trajectory ("offline" if none)
    usage: Usage | None  # model calls and tokens, for backends that make them

    def next_turn(self, view: UserView) -> UserTurn: ...


class RunTools(Protocol):
    """Runs a batch of tool calls for real (a rejected call is answered with its error, not
    run), records them with the narration, and returns the results in order."""

    messages: list[dict[str, Any]]  # the trajectory so far, OpenAI chat format

    def __call__(
        self, calls: Sequence[Call | RejectedCall], narration: str
    ) -> list[ToolResult]: ...


@dataclass
class AgentTurn:
    reply: str
    notes: dict[str, int] = field(default_factory=dict)


class Agent(Protocol):
    name: str
    model: str
    system_prompt: str  # the trajectory's first message
    usage: Usage | None

    def respond(self, turn: UserTurn, run_tools: RunTools) -> AgentTurn: ...
