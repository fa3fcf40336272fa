"""Token, cost and cache accounting, per trajectory and per partition."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dagster import Config
from pydantic import Field


class Price(Config):
    """USD per million tokens."""

    prompt: float = Field(default=0.0, ge=0)
    completion: float = Field(default=0.0, ge=0)


@dataclass
class Usage:
    """Counters for a set of LLM calls. Thread-safe `add`, so one partition-wide instance can
    be shared by every worker while each trajectory keeps its own."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    invalid_outputs: int = 0  # structured answers that failed validation (each repair attempt)
    failed_outputs: int = 0  # ...and stayed invalid after every repair: a labeled failure
    malformed_tool_calls: Counter = field(default_factory=Counter)  # cause -> count
    empty_replies: int = 0  # agent turns that ended with no text and no tool call
    cache_bytes_read: int = 0
    cache_bytes_written: int = 0
    cache_corrupt: int = 0  # entries that failed their checksum and were refetched
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def paid_calls(self) -> int:
        return self.calls - self.cached_calls

    def record_call(
        self,
        *,
        cached: bool,
        prompt_tokens: int,
        completion_tokens: int,
        price: Price,
        bytes_read: int = 0,
        bytes_written: int = 0,
    ) -> None:
        with self._lock:
            self.calls += 1
            self.cache_bytes_read += bytes_read
            self.cache_bytes_written += bytes_written
            if cached:
                self.cached_calls += 1
                return  # a cache hit costs nothing, and its tokens were counted when paid
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.cost_usd += (
                prompt_tokens * price.prompt + completion_tokens * price.completion
            ) / 1e6

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def malformed(self, cause: str) -> None:
        with self._lock:
            self.malformed_tool_calls[cause] += 1

    def merge(self, other: Usage) -> None:
        with self._lock:
            for name in _NUMBERS:
                setattr(self, name, getattr(self, name) + getattr(other, name))
            self.malformed_tool_calls.update(other.malformed_tool_calls)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _NUMBERS}
        out["paid_calls"] = self.paid_calls
        out["cost_usd"] = round(self.cost_usd, 6)
        out["malformed_tool_calls"] = dict(self.malformed_tool_calls)
        return out


_NUMBERS = (
    "calls",
    "cached_calls",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "retries",
    "invalid_outputs",
    "failed_outputs",
    "empty_replies",
    "cache_bytes_read",
    "cache_bytes_written",
    "cache_corrupt",
)
