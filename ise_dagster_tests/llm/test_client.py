"""The LLM client against a scripted HTTP server: cache, retries, 429s, fatal errors."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest
from dagster import asset, materialize

from ise_dagster.llm.cache import RequestCache, cache_key
from ise_dagster.llm.client import (
    ContextLengthError,
    LLMClient,
    LLMConfigError,
    LLMUnavailableError,
    RequestRejectedError,
)
from ise_dagster.llm.settings import LLMSettings
from ise_dagster.llm.usage import Price, Usage
from ise_dagster.resources import LLMResource
from ise_dagster_tests.llm.scripted_server import Script, error, serve

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def scripted(tmp_path):
    script = Script()
    server, url = serve(script)
    clients = []

    def make(**overrides) -> LLMClient:
        roles = {r: {"model": "scripted"} for r in ("writer", "user", "agent")}
        settings = LLMSettings(base_url=url, api_key="k", backoff_s=0.01, max_backoff_s=0.05,
                               **roles, **overrides)  # fmt: skip
        client = LLMClient(settings, cache_dir=tmp_path / "cache")
        clients.append(client)
        return client

    yield script, make
    for c in clients:
        c.close()
    server.shutdown()


def test_identical_request_is_served_from_the_cache(scripted):
    script, make = scripted
    client = make(prices={"scripted": Price(prompt=1000, completion=2000)})
    usage = Usage()
    first = client.chat(client.settings.agent, MSGS, prompt_version="p1", usage=usage)
    second = client.chat(client.settings.agent, MSGS, prompt_version="p1", usage=usage)
    assert (first.cached, second.cached) == (False, True)
    assert second.content == first.content == "ok"
    assert len(script.requests) == 1
    assert (usage.calls, usage.cached_calls, usage.paid_calls) == (2, 1, 1)
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, 5)
    assert usage.cost_usd == pytest.approx((10 * 1000 + 5 * 2000) / 1e6)
    assert usage.cache_bytes_written > 0 and usage.cache_bytes_read > 0


def test_prompt_version_and_sampling_are_part_of_the_key(scripted):
    script, make = scripted
    client = make()
    role = client.settings.agent
    client.chat(role, MSGS, prompt_version="p1")
    client.chat(role, MSGS, prompt_version="p2")
    client.chat(role.model_copy(update={"temperature": 0.1}), MSGS, prompt_version="p1")
    client.chat(role.model_copy(update={"seed": 7}), MSGS, prompt_version="p1")
    assert len(script.requests) == 4


def test_a_corrupt_cache_entry_is_detected_and_refetched(scripted):
    script, make = scripted
    client = make()
    done = client.chat(client.settings.agent, MSGS, prompt_version="p")
    path = client.cache.path(done.key)
    path.write_text(path.read_text()[:-20])  # a torn write
    again = client.chat(client.settings.agent, MSGS, prompt_version="p")
    assert not again.cached and again.content == "ok"
    assert client.total.cache_corrupt == 1
    assert len(script.requests) == 2
    assert client.chat(client.settings.agent, MSGS, prompt_version="p").cached


def test_500s_are_retried_with_backoff(scripted):
    script, make = scripted
    script.queue.extend([error(500, "boom"), error(503, "busy"), error(408, "slow")])
    client = make()
    usage = Usage()
    assert client.chat(client.settings.agent, MSGS, prompt_version="p", usage=usage).content
    assert len(script.requests) == 4
    assert usage.retries == 3


def test_429_honours_retry_after_and_halves_concurrency(scripted):
    script, make = scripted
    script.queue.append(error(429, "slow down", {"Retry-After": "1"}))
    client = make(max_concurrency=8)
    started = time.monotonic()
    client.chat(client.settings.agent, MSGS, prompt_version="p")
    assert time.monotonic() - started >= 0.9  # waited as told, not the 0.01 s backoff
    assert client._limit.limit == 4


def test_persistent_failure_raises_a_clear_error_after_bounded_retries(scripted):
    script, make = scripted
    script.default = error(503, "model loading")
    client = make(max_attempts=3)
    with pytest.raises(LLMUnavailableError, match="failed 3 times.*model loading"):
        client.chat(client.settings.agent, MSGS, prompt_version="p")
    assert len(script.requests) == 3


def test_an_outage_is_retried_for_the_whole_budget(scripted):
    script, make = scripted
    script.default = error(503, "restarting")
    client = make(retry_budget_s=0.5)  # max_attempts (50) is not what stops it
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match=r"retry budget 0.5 s.*restarting"):
        client.chat(client.settings.agent, MSGS, prompt_version="p")
    assert time.monotonic() - started >= 0.5
    assert 2 <= len(script.requests) < 50


def test_a_server_back_within_the_budget_is_picked_up(scripted):
    script, make = scripted
    script.queue.extend([error(502, "bad gateway")] * 4 + [error(503, "loading")] * 4)
    client = make(retry_budget_s=60)
    assert client.chat(client.settings.agent, MSGS, prompt_version="p").content == "ok"
    assert len(script.requests) == 9


def test_the_same_500_twice_is_not_retried_again(scripted):
    """llama.cpp answers tool_choice "required" with a 500 from a failed assertion, every
    time: the second identical answer ends the request with the server's message."""
    script, make = scripted
    script.default = error(500, "GGML_ASSERT: tool_choice required")
    client = make()
    with pytest.raises(RequestRejectedError, match="twice with the same answer.*GGML_ASSERT"):
        client.chat(client.settings.agent, MSGS, prompt_version="p")
    assert len(script.requests) == 2


def test_different_500s_are_retried(scripted):
    script, make = scripted
    script.queue.extend([error(500, "out of memory"), error(500, "slot busy")])
    client = make()
    assert client.chat(client.settings.agent, MSGS, prompt_version="p").content == "ok"
    assert len(script.requests) == 3


def test_wrong_api_key_fails_once_before_any_chat(scripted):
    script, make = scripted
    script.models_status = 401
    client = make()
    for _ in range(3):
        with pytest.raises(LLMConfigError, match="rejected the API key"):
            client.chat(client.settings.agent, MSGS, prompt_version="p")
    assert script.model_calls == 1 and script.requests == []


def test_unreachable_base_url_is_one_clear_error(tmp_path):
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key="k")
    client = LLMClient(settings, cache_dir=tmp_path)
    with pytest.raises(LLMConfigError, match="cannot reach the model server.*serve-local"):
        client.preflight("gpt-4o-mini")
    client.close()


def test_unknown_model_names_what_the_server_serves(scripted):
    script, make = scripted
    script.models = ["llama3.2:latest", "qwen"]
    client = make()
    client.preflight("llama3.2")  # Ollama's :latest alias is accepted
    with pytest.raises(LLMConfigError, match="'gpt-x' is not served.*llama3.2:latest, qwen"):
        client.preflight("gpt-x")


def test_400s_are_classified(scripted):
    script, make = scripted
    client = make()
    role = client.settings.agent
    tools = [{"type": "function", "function": {"name": "exec", "parameters": {}}}]
    script.queue.append(error(400, "This model's maximum context length is 2048 tokens"))
    with pytest.raises(ContextLengthError):
        client.chat(role, MSGS, prompt_version="a")
    script.queue.append(error(400, "registry.ollama.ai/library/gemma does not support tools"))
    with pytest.raises(LLMConfigError, match="does not support tool calling"):
        client.chat(role, MSGS, prompt_version="b", tools=tools)
    with pytest.raises(LLMConfigError):  # fatal: the run stops, it does not grind on
        client.chat(role, MSGS, prompt_version="c")


def test_other_400_is_rejected_without_retry(scripted):
    script, make = scripted
    script.queue.append(error(400, "bad temperature"))
    client = make()
    with pytest.raises(RequestRejectedError, match="bad temperature"):
        client.chat(client.settings.agent, MSGS, prompt_version="a")
    assert len(script.requests) == 1


def _hammer(root: str, worker: int) -> int:
    cache = RequestCache(root)
    for i in range(300):
        key = cache_key({"i": i % 50})
        cache.put(key, {"i": i % 50, "pad": "x" * 2000, "by": worker})
        value, _, corrupt = cache.get(key)
        assert not corrupt and value is not None and value["i"] == i % 50
    return worker


def test_parallel_processes_never_corrupt_the_cache(tmp_path: Path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert sorted(pool.starmap(_hammer, [(str(tmp_path), w) for w in range(4)])) == [0, 1, 2, 3]
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 50
    assert not list(tmp_path.rglob("*.tmp"))
    for f in files:
        entry = json.loads(f.read_text())
        assert json.loads(entry["body"])["pad"] == "x" * 2000


def test_each_role_keeps_its_own_defaults_inside_a_dagster_run(tmp_path):
    # Dagster rebuilds nested config from the class's field defaults, not a default_factory.
    seen = {}

    @asset
    def probe(llm: LLMResource) -> None:
        seen.update({r: getattr(llm, r).model_dump() for r in ("writer", "user", "agent")})

    resource = LLMResource(agent={"max_tokens": 77})
    assert materialize([probe], resources={"llm": resource}).success
    assert (seen["writer"]["temperature"], seen["writer"]["max_tokens"]) == (0.9, 256)
    assert (seen["user"]["temperature"], seen["user"]["max_tokens"]) == (0.7, 400)
    assert (seen["agent"]["temperature"], seen["agent"]["max_tokens"]) == (0.2, 77)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ISE_LLM_MAX_TOKENS", "abc", "a whole number"),
        ("ISE_LLM_MAX_TOKENS", "-5", "a whole number"),  # <= 0 means "unbounded" to llama.cpp
        ("ISE_LLM_MAX_CONCURRENCY", "0", "a whole number"),
        ("ISE_LLM_RETRY_BUDGET_S", "-1", "a number of seconds"),
        ("ISE_LLM_RETRY_BUDGET_S", "nan", "a number of seconds"),
        ("ISE_LLM_TOOL_RESULTS", "bogus", "one of tool, user"),
        ("ISE_LLM_STRUCTURED_OUTPUT", "json", "one of json_schema, json_object, plain"),
        ("ISE_LLM_BACKEND", "opnai", "one of offline, openai"),
    ],
)
def test_a_bad_environment_value_is_an_error_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"\${name} must be {message}.*{value!r}"):
        LLMResource()


def test_environment_sets_every_role_s_max_tokens(monkeypatch):
    monkeypatch.setenv("ISE_LLM_MAX_TOKENS", "99")
    settings = LLMSettings()
    assert {settings.writer.max_tokens, settings.user.max_tokens, settings.agent.max_tokens} == {99}


def test_the_dialogue_checkpoint_keys_on_the_task_library_and_tools(tmp_path):
    """A recipe edit must not serve a stale dialogue: the fingerprint covers the recipes,
    the task taxonomy, the tool server and the tool schemas, not only models and prompts."""
    import shutil

    from ise_dagster.llm.tools import TOOL_SCHEMAS
    from ise_dagster.resources import LLMResource
    from ise_dagster.tasklib.registry import PACKAGE_ROOT, library_digest

    llm = LLMResource(backend="openai", base_url="http://127.0.0.1:9/v1", api_key="x",
                      cache_dir=str(tmp_path / "cache"))  # fmt: skip
    fingerprint = llm.dialogue_checkpoint().fingerprint
    assert fingerprint["tools"] == TOOL_SCHEMAS
    assert fingerprint["task_library"] == library_digest()
    assert len(fingerprint["labelling"]) == 16  # the dialogue loop and its guards
    copy = tmp_path / "pkg"
    for part in ("tasklib", "taxonomy/data", "sandbox"):
        shutil.copytree(PACKAGE_ROOT / part, copy / part)
    assert library_digest(copy) == library_digest()
    recipe = copy / "tasklib" / "tasks" / "file_io.py"
    recipe.write_text(recipe.read_text() + "\n# an edit\n")
    assert library_digest.__wrapped__(copy) != library_digest()  # uncached: same path


def test_dialogues_run_no_wider_than_the_server_takes_requests():
    """A one-slot server keeps its prompt cache only if one dialogue talks to it at a time."""
    one_slot = LLMResource(backend="openai", base_url="http://127.0.0.1:9/v1", max_concurrency=1)
    assert one_slot.dialogue_concurrency(4) == 1
    wide = LLMResource(backend="openai", base_url="http://127.0.0.1:9/v1", max_concurrency=8)
    assert wide.dialogue_concurrency(4) == 4
    assert LLMResource(backend="offline", max_concurrency=1).dialogue_concurrency(4) == 4
