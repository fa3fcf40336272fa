"""The OpenAI-compatible tool-calling agent: native `tools` / `tool_calls`.

Its context is the trajectory itself (`run_tools.messages`), so the recorded messages are
exactly what the model saw. Each user turn loops model -> tool calls -> `role: tool`
results until the model answers in text or the per-turn step cap forces an answer.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ise_dagster.llm.client import Completion, ContextLengthError, LLMClient
from ise_dagster.llm.prompts import load_prompt
from ise_dagster.llm.settings import ToolResults
from ise_dagster.llm.simulator import AgentTurn, RunTools, UserTurn
from ise_dagster.llm.tools import TOOL_SCHEMAS, RejectedCall, calls_in_text, parse_tool_call
from ise_dagster.llm.usage import Usage
from ise_dagster.tasklib.base import Ctx, TaskRecipe

KEEP_TOOL_OUTPUTS = 2  # newest tool results kept whole when the context overflows
_ELIDED = json.dumps({"elided": "older tool output removed to fit the context window"})
_NUDGE = "(Your last answer was empty. Reply to the user in plain text.)"


def wire_messages(
    messages: list[dict[str, Any]], tool_results: ToolResults = "tool"
) -> list[dict[str, Any]]:
    """Trajectory messages as the chat API takes them: tool messages lose our extra
    fields (`name`, `success`), which strict servers reject, or become user text."""
    out = []
    for m in messages:
        if m["role"] != "tool":
            out.append(m)
        elif tool_results == "user":
            out.append(
                {"role": "user", "content": f"[{m.get('name', 'tool')} result]\n{m['content']}"}
            )
        else:
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"],
                        "content": m["content"]})  # fmt: skip
    return out


def elide_old_tool_outputs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tool_at = [i for i, m in enumerate(messages) if m["role"] == "tool"]
    old = set(tool_at[:-KEEP_TOOL_OUTPUTS]) if KEEP_TOOL_OUTPUTS else set(tool_at)
    return [{**m, "content": _ELIDED} if i in old else m for i, m in enumerate(messages)]


class OpenAIAgent:
    name = "openai-agent"

    def __init__(self, client: LLMClient, recipes: list[TaskRecipe], contexts: list[Ctx]) -> None:
        self.client = client
        self.role = client.settings.agent
        self.model = self.role.model
        self.prompt = load_prompt("agent")
        self.system_prompt = self.prompt.render(
            task_dirs=", ".join(f"{c.task_dir}/" for c in contexts)
        )
        self.usage = Usage()

    def respond(self, turn: UserTurn, run_tools: RunTools) -> AgentTurn:
        s = self.client.settings
        notes: Counter[str] = Counter()
        for step in range(s.max_agent_steps):
            forced = step == 0 and s.force_first_tool
            choice: Any = (
                {"type": "function", "function": {"name": s.force_first_tool}} if forced else "auto"
            )
            done = self._call(run_tools.messages, choice)
            wired = done.tool_calls
            narration = done.content or ""
            if not wired and (wired := calls_in_text(done.content)):
                notes["calls_from_text"] += 1  # the text was the call, not a narration
                narration = ""
            if not wired:
                return AgentTurn(self._reply(done, run_tools, notes), dict(notes))
            calls = [
                parse_tool_call(tc["function"]["name"], tc["function"]["arguments"] or "",
                                truncated=done.finish_reason == "length")
                for tc in wired
            ]  # fmt: skip
            for c in calls:
                if isinstance(c, RejectedCall):
                    self.usage.malformed(c.cause)
                    notes[f"malformed_{c.cause}"] += 1
            notes["steps"] += 1
            run_tools(calls, narration)
        notes["step_cap"] += 1  # out of steps: the model must answer with what it has
        done = self._call(run_tools.messages, "none")
        return AgentTurn(self._reply(done, run_tools, notes), dict(notes))

    def _reply(self, done: Completion, run_tools: RunTools, notes: Counter[str]) -> str:
        if done.refusal:
            notes["refusals"] += 1
            return done.refusal.strip()
        text = (done.content or "").strip()
        if not text:  # one nudge, in the request only; the trajectory stays as it happened
            nudge = [*run_tools.messages, {"role": "user", "content": _NUDGE}]
            text = (self._call(nudge, "none").content or "").strip()
        if not text:
            notes["empty_replies"] += 1
            self.usage.bump("empty_replies")
        return text

    def _call(self, messages: list[dict[str, Any]], tool_choice: Any) -> Completion:
        try:
            return self._chat(messages, tool_choice)
        except ContextLengthError:
            # Keep the conversation, drop the bulk: old tool outputs. If that is not
            # enough, the error reaches the dialogue, which ends and is labeled.
            return self._chat(elide_old_tool_outputs(messages), tool_choice)

    def _chat(self, messages: list[dict[str, Any]], tool_choice: Any) -> Completion:
        wire = wire_messages(messages, self.client.settings.tool_results)
        return self.client.chat(self.role, wire, prompt_version=self.prompt.id,
                                tools=TOOL_SCHEMAS, tool_choice=tool_choice,
                                usage=self.usage)  # fmt: skip
