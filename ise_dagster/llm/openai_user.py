"""The OpenAI-compatible role-locked user simulator.

It is rebuilt from `UserView` every turn, so it cannot see more than the view holds: the
persona, the intent, its own queries and the agent's final replies, never a tool call.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ise_dagster.llm.client import LLMClient
from ise_dagster.llm.openai_writer import describe_persona
from ise_dagster.llm.prompts import load_prompt
from ise_dagster.llm.simulator import UserTurn, UserView
from ise_dagster.llm.structured import ask
from ise_dagster.llm.usage import Usage
from ise_dagster.taxonomy.models import Taxonomy

MAX_REPLY_CHARS = 3000  # of each agent reply, as the user reads it


class UserAnswer(BaseModel):
    completed: bool
    query: str
    reason: str
    is_success: bool

    @model_validator(mode="after")
    def _query_when_going_on(self) -> UserAnswer:
        if not self.completed and not self.query.strip():
            raise ValueError("query must not be empty while completed is false")
        return self


class FirstUserAnswer(UserAnswer):
    """Nothing has been delegated yet, so the dialogue cannot be over (a grammar-constrained
    server then cannot even produce `completed: true`)."""

    completed: Literal[False]
    query: str = Field(min_length=1)


class UserOutputError(Exception):
    """The simulator never produced a valid answer; the dialogue is labeled, not crashed."""


class OpenAIUserSimulator:
    name = "openai-user"

    def __init__(self, client: LLMClient, taxonomy: Taxonomy, seed: int) -> None:
        self.client = client
        self.taxonomy = taxonomy
        # A per-intent seed: repeatable, yet intents do not all sample alike.
        self.role = client.settings.user.model_copy(update={"seed": seed % 2**31})
        self.model = self.role.model
        self.prompt = load_prompt("user_simulator")
        self.usage = Usage()

    def next_turn(self, view: UserView) -> UserTurn:
        system = self.prompt.render(
            persona=describe_persona(view.persona),
            style=view.persona.communication_style,
            intent=view.intent,
            tasks="\n".join(f"{i}. {t.title}: {t.goal}" for i, t in enumerate(view.tasks, 1)),
        )
        shape = UserAnswer if view.own_queries else FirstUserAnswer
        got = ask(self.client, self.role, [{"role": "system", "content": system},
                                           {"role": "user", "content": _conversation(view)}],
                  shape, prompt_version=self.prompt.id, usage=self.usage)  # fmt: skip
        if got.value is None:
            raise UserOutputError(f"user simulator: no valid answer after {got.attempts} "
                                  f"attempts: {got.error}")  # fmt: skip
        a = got.value
        return UserTurn(completed=a.completed, query=a.query.strip(), reason=a.reason,
                        is_success=a.is_success)  # fmt: skip


def _conversation(view: UserView) -> str:
    if not view.own_queries:
        return "The conversation has not started. Write your first message to the assistant."
    lines = ["The conversation so far:"]
    for k, query in enumerate(view.own_queries):
        lines.append(f"YOU: {query}")
        if k < len(view.agent_replies):
            reply = view.agent_replies[k]
            if len(reply) > MAX_REPLY_CHARS:
                reply = reply[:MAX_REPLY_CHARS] + " [...]"
            lines.append(f"ASSISTANT: {reply}")
    lines.append("Write your next message, or end the conversation if the work is done.")
    return "\n\n".join(lines)
