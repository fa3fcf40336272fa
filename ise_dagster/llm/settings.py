"""LLM settings: one server, three roles (intent writer, user simulator, agent).

Every default comes from the environment, so switching backend needs no config file:
ISE_LLM_BACKEND, ISE_LLM_BASE_URL, ISE_LLM_MODEL and ISE_LLM_MAX_TOKENS (all roles),
ISE_LLM_STRUCTURED_OUTPUT, ISE_LLM_FORCE_FIRST_TOOL, ISE_LLM_MAX_CONCURRENCY,
ISE_LLM_TOOL_RESULTS, ISE_LLM_RETRY_BUDGET_S and OPENAI_API_KEY.
"""

from __future__ import annotations

import os
from typing import Any, Literal, get_args

from dagster import Config
from pydantic import Field

from ise_dagster.llm.usage import Price

StructuredMode = Literal["json_schema", "json_object", "plain"]
ToolResults = Literal["tool", "user"]
DEFAULT_MODEL = "gpt-4o-mini"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


# Defaults are not validated by pydantic, so the environment's values are checked here,
# with an error that names the variable.
def env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"${name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def env_float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ValueError(f"${name} must be a number of seconds, at least 0, not {raw!r}")
    return value


def env_choice(name: str, choices: object, default: str) -> str:
    raw = _env(name, default)
    allowed = get_args(choices)
    if raw not in allowed:
        raise ValueError(f"${name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


def _model() -> str:
    return os.environ.get("ISE_LLM_MODEL") or DEFAULT_MODEL


def _max_tokens_field(role_default: int) -> Any:
    # One variable for all roles: a small local model otherwise writes to the limit.
    return Field(
        default_factory=lambda: env_int("ISE_LLM_MAX_TOKENS", role_default),
        ge=1,
        description=f"Completion tokens per call ($ISE_LLM_MAX_TOKENS, else {role_default}).",
    )


class ModelSettings(Config):
    """One role's model and sampling. The paper used a different model for the user."""

    model: str = Field(default_factory=_model, description="Model name as the server knows it.")
    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=1024, ge=1, description="Completion tokens per call.")
    seed: int | None = Field(default=0, description="Request seed; fixed seeds repeat answers.")


# One subclass per role: Dagster builds a nested config's defaults from its class's fields
# and ignores an outer default_factory returning a preset instance.
class WriterSettings(ModelSettings):
    temperature: float = Field(default=0.9, ge=0, le=2)
    # An intent is a sentence or three; a small model that rambles is cut off early.
    max_tokens: int = _max_tokens_field(256)


class UserSettings(ModelSettings):
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = _max_tokens_field(400)


class AgentSettings(ModelSettings):
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int = _max_tokens_field(1024)


class LLMSettings(Config):
    """The server and the policy shared by the three roles."""

    base_url: str | None = Field(
        default_factory=lambda: _env("ISE_LLM_BASE_URL"),
        description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default: "
        "OpenAI's).",
    )
    api_key: str | None = Field(
        default=None, description="Defaults to $OPENAI_API_KEY; local servers accept any value."
    )
    timeout_s: float = Field(default=120.0, gt=0, description="Per-request timeout.")
    max_concurrency: int = Field(
        default_factory=lambda: env_int("ISE_LLM_MAX_CONCURRENCY", 8),
        ge=1,
        le=1024,
        description="Requests in flight ($ISE_LLM_MAX_CONCURRENCY). A server that answers one "
        "at a time (llama.cpp) wants 1, so queued requests do not time out.",
    )
    retry_budget_s: float = Field(
        default_factory=lambda: env_float("ISE_LLM_RETRY_BUDGET_S", 150.0),
        ge=0,
        description="Seconds a request keeps retrying transient failures (connection errors, "
        "timeouts, 408/409/429/5xx) before the step fails ($ISE_LLM_RETRY_BUDGET_S); the "
        "default rides out a 2-minute server restart.",
    )
    max_attempts: int = Field(
        default=50, ge=1, le=1000, description="Tries per request, at most, within the budget."
    )
    backoff_s: float = Field(default=1.0, ge=0, description="First retry delay; doubles.")
    max_backoff_s: float = Field(
        default=15.0, ge=0, description="Longest delay between tries, so a server that comes "
        "back is noticed within about this long.",
    )  # fmt: skip
    structured_output: StructuredMode = Field(
        default_factory=lambda: env_choice(
            "ISE_LLM_STRUCTURED_OUTPUT", StructuredMode, "json_schema"
        ),
        description="json_schema (OpenAI, vLLM), json_object (llama.cpp: json_object + "
        "schema) or plain (JSON in the text, validated and repaired).",
    )
    max_repairs: int = Field(
        default=2, ge=0, le=10, description="Re-asks with the validation error fed back."
    )
    max_agent_steps: int = Field(
        default=16, ge=1, le=200, description="Model calls per agent turn before it must answer."
    )
    force_first_tool: str | None = Field(
        default_factory=lambda: _env("ISE_LLM_FORCE_FIRST_TOOL"),
        description="Name a tool to force on each turn's first agent step, for servers that "
        "need a named tool_choice (llama.cpp); later steps use 'auto'.",
    )
    tool_results: ToolResults = Field(
        default_factory=lambda: env_choice("ISE_LLM_TOOL_RESULTS", ToolResults, "tool"),
        description="How tool results reach the agent ($ISE_LLM_TOOL_RESULTS): 'tool' "
        "messages (the API's way), or 'user' text for servers whose chat template drops "
        "tool messages (llama.cpp's chatml-function-calling). The trajectory keeps 'tool'.",
    )
    cache: bool = Field(default=True, description="Replay identical requests from disk.")
    cache_dir: str | None = Field(default=None, description="Default: <data dir>/llm_cache.")
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="USD per million tokens by model name, for the cost estimate.",
    )
    writer: WriterSettings = Field(default_factory=WriterSettings)
    user: UserSettings = Field(default_factory=UserSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)

    def resolved_api_key(self) -> str:
        # Local servers ignore the key, but the SDK insists on one.
        return self.api_key or _env("OPENAI_API_KEY") or "no-key"
