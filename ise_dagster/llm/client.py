"""The one LLM client: AsyncOpenAI behind a cache, a concurrency cap and a retry policy.

Stages are plain synchronous functions run on worker threads, so the client owns one event
loop on a background thread and offers a blocking `chat()`; every worker shares its
semaphore, its 429 back-off and its connection pool. Cache hits never touch the loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import openai

from ise_dagster.llm.cache import RequestCache, cache_key
from ise_dagster.llm.settings import LLMSettings, ModelSettings
from ise_dagster.llm.usage import Price, Usage

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
OUTAGE_STATUSES = frozenset({502, 503, 504})  # a proxy or a loading server: never the request's


class LLMError(Exception):
    """A model call that could not be completed."""


class LLMConfigError(LLMError):
    """Wrong key, URL or model, or a model without tool support: fatal for the whole run."""


class LLMUnavailableError(LLMError):
    """The server kept failing after every retry; the step fails and can be re-run."""


class ContextLengthError(LLMError):
    """The request does not fit the model's context window."""


class RequestRejectedError(LLMError):
    """The server refused this one request (HTTP 400/422) for another reason."""


@dataclass(frozen=True)
class Completion:
    content: str | None
    tool_calls: list[dict[str, Any]]  # wire shape: {"id", "type", "function": {name, arguments}}
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    key: str

    @classmethod
    def from_body(cls, body: dict[str, Any], key: str, cached: bool) -> Completion:
        usage = body.get("usage") or {}
        return cls(
            content=body.get("content"),
            tool_calls=body.get("tool_calls") or [],
            finish_reason=body.get("finish_reason"),
            refusal=body.get("refusal"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached=cached,
            key=key,
        )


def _body(response: Any) -> dict[str, Any]:
    """The part of a ChatCompletion we keep (and cache)."""
    if not response.choices:
        return {"content": None, "tool_calls": [], "finish_reason": None, "refusal": None}
    choice = response.choices[0]
    msg = choice.message
    usage = response.usage
    return {
        "content": msg.content,
        "tool_calls": [
            {
                "id": tc.id,
                "type": "function",
                "function": {"name": tc.function.name, "arguments": tc.function.arguments},
            }
            for tc in msg.tool_calls or []
        ],
        "finish_reason": choice.finish_reason,
        "refusal": getattr(msg, "refusal", None),
        "usage": {
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
        },
        "model": response.model,
    }


def retry_after_s(error: openai.APIStatusError) -> float | None:
    """Seconds the server asked us to wait (Retry-After, seconds or HTTP date)."""
    headers = error.response.headers if error.response is not None else {}
    if ms := headers.get("retry-after-ms"):
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(error.message)


_CONTEXT_WORDS = ("context length", "context window", "context_length", "maximum context",
                  "too many tokens", "n_ctx")  # fmt: skip


def classify_bad_request(error: openai.APIStatusError, with_tools: bool) -> LLMError:
    text = _message(error)
    low = text.lower()
    if any(w in low for w in _CONTEXT_WORDS):
        return ContextLengthError(text)
    if with_tools and "tool" in low:
        return LLMConfigError(
            f"the model does not support tool calling here: {text}. Use a model and server "
            "with function calling (vLLM: --enable-auto-tool-choice --tool-call-parser ...; "
            "llama.cpp: --chat_format chatml-function-calling)."
        )
    return RequestRejectedError(f"HTTP {error.status_code}: {text}")


class _AdaptiveLimit:
    """A concurrency cap that halves on 429 and creeps back up on success (AIMD), plus a
    shared pause so one Retry-After holds every request, not just the one that saw it."""

    def __init__(self, limit: int) -> None:
        self.max = limit
        self.limit = limit
        self.in_flight = 0
        self.successes = 0
        self.paused_until = 0.0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        while (wait := self.paused_until - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def on_success(self) -> None:
        self.successes += 1
        if self.limit < self.max and self.successes >= self.limit:
            self.limit += 1
            self.successes = 0

    async def on_rate_limit(self, wait_s: float) -> None:
        async with self._cond:
            self.limit = max(1, self.limit // 2)
            self.successes = 0
            self.paused_until = max(self.paused_until, time.monotonic() + wait_s)


@dataclass
class LLMClient:
    settings: LLMSettings
    cache_dir: Path | None = None
    total: Usage = field(default_factory=Usage)  # every call this client made, for metadata

    def __post_init__(self) -> None:
        s = self.settings
        self.cache = RequestCache(self.cache_dir) if s.cache and self.cache_dir else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._limit: _AdaptiveLimit | None = None
        self._checked: set[str] = set()
        self._fatal: LLMConfigError | None = None  # once set, every later call fails at once
        self._start_lock = threading.Lock()
        self._check_lock: asyncio.Lock | None = None

    # -- public, synchronous -------------------------------------------------------------

    def chat(
        self,
        role: ModelSettings,
        messages: list[dict[str, Any]],
        *,
        prompt_version: str,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_format: dict[str, Any] | None = None,
        usage: Usage | None = None,
    ) -> Completion:
        """One chat completion, from the cache when this exact request was answered before."""
        request: dict[str, Any] = {
            "model": role.model,
            "messages": messages,
            "temperature": role.temperature,
            "top_p": role.top_p,
            "max_tokens": role.max_tokens,
        }
        if role.seed is not None:
            request["seed"] = role.seed
        if tools:
            request["tools"] = tools
            if tool_choice is not None:
                request["tool_choice"] = tool_choice
        if response_format is not None:
            request["response_format"] = response_format
        key = cache_key({"request": request, "prompt_version": prompt_version})
        price = self.settings.prices.get(role.model, Price())
        corrupt = False
        if self.cache is not None:
            cached, nbytes, corrupt = self.cache.get(key)
            if corrupt:
                for u in self.meters(usage):
                    u.bump("cache_corrupt")
            if cached is not None:
                for u in self.meters(usage):
                    u.record_call(cached=True, prompt_tokens=0, completion_tokens=0,
                                  price=price, bytes_read=nbytes)  # fmt: skip
                return Completion.from_body(cached, key, cached=True)
        if self._fatal is not None:
            raise self._fatal
        try:
            body = self._run(self._fetch(request, role.model, usage))
        except LLMConfigError as e:
            self._fatal = e
            raise
        written = self.cache.put(key, body) if self.cache is not None else 0
        done = Completion.from_body(body, key, cached=False)
        for u in self.meters(usage):
            u.record_call(cached=False, prompt_tokens=done.prompt_tokens,
                          completion_tokens=done.completion_tokens, price=price,
                          bytes_written=written)  # fmt: skip
        return done

    def preflight(self, model: str) -> None:
        """Fail once, clearly, on a wrong key, URL or model (before any real work)."""
        self._run(self._check(model))

    def close(self) -> None:
        if self._loop is None:
            return
        if self._client is not None:
            self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop = self._thread = self._client = None

    # -- the event loop ------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._start_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="ise-llm-loop", daemon=True
                )
                self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def meters(self, usage: Usage | None) -> list[Usage]:
        return [self.total] if usage is None else [self.total, usage]

    def _ensure_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            s = self.settings
            self._client = openai.AsyncOpenAI(
                base_url=s.base_url,
                api_key=s.resolved_api_key(),
                timeout=s.timeout_s,
                max_retries=0,  # our retry loop below is the only one, so they never stack
            )
            self._limit = _AdaptiveLimit(s.max_concurrency)
            self._check_lock = asyncio.Lock()
        return self._client

    async def _check(self, model: str) -> None:
        client = self._ensure_client()
        assert self._check_lock is not None
        async with self._check_lock:
            if model in self._checked:
                return
            where = self.settings.base_url or "https://api.openai.com/v1"
            try:
                listed = await client.models.list()
            except openai.AuthenticationError as e:
                raise LLMConfigError(
                    f"{where} rejected the API key (HTTP 401): {_message(e)}. Set "
                    "OPENAI_API_KEY, or the llm resource's api_key."
                ) from e
            except openai.APIConnectionError as e:
                raise LLMConfigError(
                    f"cannot reach the model server at {where}: {e}. Check ISE_LLM_BASE_URL "
                    "(it usually ends in /v1) and that the server is running; "
                    "`ise llm serve-local` starts a local one."
                ) from e
            except openai.APIStatusError as e:
                if e.status_code != 404:  # some servers have no /models: check on first call
                    raise LLMConfigError(f"{where}/models answered HTTP {e.status_code}: "
                                         f"{_message(e)}") from e  # fmt: skip
                listed = None
            names = [m.id for m in listed.data] if listed is not None else []
            if names and not any(_same_model(model, n) for n in names):
                raise LLMConfigError(
                    f"model {model!r} is not served at {where}; it serves: "
                    f"{', '.join(sorted(names)[:20])}. Set ISE_LLM_MODEL."
                )
            self._checked.add(model)

    async def _fetch(self, request: dict[str, Any], model: str, usage: Usage | None) -> dict:
        await self._check(model)
        client = self._ensure_client()
        assert self._limit is not None
        s = self.settings
        delay = s.backoff_s
        first_failure: float | None = None
        previous: tuple[int, str] | None = None  # the last try's status and message
        attempt = 0
        while True:
            attempt += 1
            wait = None
            try:
                async with self._limit:
                    response = await client.chat.completions.create(**request)
                self._limit.on_success()
                return _body(response)
            except openai.AuthenticationError as e:
                raise LLMConfigError(f"the API key was rejected: {_message(e)}") from e
            except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
                raise classify_bad_request(e, "tools" in request) from e
            except openai.NotFoundError as e:
                raise LLMConfigError(
                    f"HTTP 404 from {s.base_url or 'OpenAI'}: {_message(e)} (wrong base_url "
                    f"or model {model!r}?)"
                ) from e
            except openai.APIStatusError as e:
                code, text = e.status_code, _message(e)
                if code not in RETRY_STATUSES and code < 500:
                    raise RequestRejectedError(f"HTTP {code}: {text}") from e
                # The same 500 twice in a row is this request's fault (llama.cpp asserts on
                # tool_choice "required"): more tries would only burn the budget.
                if code >= 500 and code not in OUTAGE_STATUSES and previous == (code, text):
                    raise RequestRejectedError(
                        f"HTTP {code} twice with the same answer, so not retried: {text}"
                    ) from e
                previous = (code, text)
                last: Exception = e
                if code == 429:
                    wait = retry_after_s(e)
                    await self._limit.on_rate_limit(wait if wait is not None else delay)
            except openai.APIConnectionError as e:  # includes timeouts
                last, previous = e, None
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            left = s.retry_budget_s - (now - first_failure)
            if attempt >= s.max_attempts or left <= 0:
                break
            for u in self.meters(usage):
                u.bump("retries")
            # Full jitter: parallel workers that failed together do not retry together.
            pause = wait if wait is not None else random.uniform(0, delay)
            await asyncio.sleep(min(pause, left))
            delay = min(delay * 2, s.max_backoff_s)
        raise LLMUnavailableError(
            f"{s.base_url or 'OpenAI'} failed {attempt} times in "
            f"{time.monotonic() - first_failure:.0f} s (retry budget {s.retry_budget_s:g} s, "
            f"at most {s.max_attempts} tries); last error: {type(last).__name__}: {last}"
        )


def _same_model(wanted: str, served: str) -> bool:
    # Ollama lists "llama3.2:latest" for "llama3.2"; some servers list a path.
    return served in (wanted, f"{wanted}:latest") or served.rsplit("/", 1)[-1] == wanted
