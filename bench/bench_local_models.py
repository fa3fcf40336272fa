"""Which tiny model should `ise llm serve-local` serve by default? Measured, one run.

For each model of `local_models.LOCAL_MODELS`, on its own `LocalServer` (the format the
launcher picks: the GGUF's own template, or chatml-function-calling for Gemma):

1. speed: generation tok/s (five 128-token answers) and prompt tok/s (one agent-sized
   prompt: the agent's system prompt and the six tool schemas);
2. tool calls under `tool_choice: auto`, the way the OpenAI agent reads them: for each of a
   fixed set of shell requests, whether the answer is a well-formed call (native or written
   as text), a call that fails the schema check, a text answer, or a `functions.x:` string;
3. `ise bench-agent --offline-user --concurrency 1` on a fixed task sample, the model as the
   agent: pass@1, valid tool calls, how its dialogues ended, wall time.

    .venv/bin/python bench/bench_local_models.py [--tasks-per-domain 1] [--models a,b]

Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from openai import OpenAI

from ise_dagster.llm.cli import pipeline_env
from ise_dagster.llm.local_models import LOCAL_MODELS
from ise_dagster.llm.local_server import LocalServer
from ise_dagster.llm.prompts import load_prompt
from ise_dagster.llm.tools import TOOL_SCHEMAS, RejectedCall, calls_in_text, parse_tool_call

REQUESTS = [
    "List the files in the current directory, biggest first.",
    "How many lines does notes.txt have?",
    "Create a file hello.py that prints hello, then run it.",
    "Show me the last 20 lines of app.log.",
    "Find every TODO in the Python files under src/.",
    "What is the disk usage of this folder?",
    "Rename report.txt to report-2026.txt.",
    "Which processes use the most memory right now?",
    "Count the rows of data.csv without the header.",
    "Replace 'foo' with 'bar' in config.ini.",
    "Is port 8080 in use on this machine?",
    "Compress the logs folder into logs.tar.gz.",
]


def speed(client: OpenAI, model: str, system: str) -> dict[str, float]:
    gen_tokens, gen_s = 0, 0.0
    for i in range(5):
        t0 = time.perf_counter()
        r = client.chat.completions.create(
            model=model, max_tokens=128, temperature=0,
            messages=[{"role": "user", "content": f"Explain Linux file permissions ({i})."}],
        )  # fmt: skip
        gen_s += time.perf_counter() - t0
        gen_tokens += r.usage.completion_tokens if r.usage else 0
    t0 = time.perf_counter()
    r = client.chat.completions.create(
        model=model, max_tokens=1, temperature=0, tools=TOOL_SCHEMAS, tool_choice="none",
        messages=[{"role": "system", "content": system},
                  {"role": "user", "content": REQUESTS[0]}],
    )  # fmt: skip
    prompt_s = time.perf_counter() - t0
    prompt_tokens = r.usage.prompt_tokens if r.usage else 0
    return {
        "gen_tok_s": gen_tokens / gen_s,
        "prompt_tokens": prompt_tokens,
        "prompt_tok_s": prompt_tokens / prompt_s,
    }


def classify(message) -> str:
    wired = [
        (tc.function.name, tc.function.arguments or "") for tc in message.tool_calls or []
    ] or [
        (c["function"]["name"], c["function"]["arguments"]) for c in calls_in_text(message.content)
    ]
    if wired:
        ok = all(not isinstance(parse_tool_call(n, a), RejectedCall) for n, a in wired)
        return "valid_call" if ok else "rejected_call"
    text = (message.content or "").strip()
    if text.startswith("functions.") or "<tool_call>" in text or text.startswith("{"):
        return "malformed"
    return "text" if text else "empty"


def tool_calls(client: OpenAI, model: str, system: str) -> collections.Counter:
    seen: collections.Counter[str] = collections.Counter()
    for req in REQUESTS:
        r = client.chat.completions.create(
            model=model, max_tokens=256, temperature=0, tools=TOOL_SCHEMAS, tool_choice="auto",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": req}],
        )  # fmt: skip
        seen[classify(r.choices[0].message)] += 1
    return seen


def bench_agent(
    server: LocalServer, tasks_per_domain: int, domains: list[str]
) -> dict[str, object]:
    env = dict(os.environ)
    for pair in pipeline_env(server.local_model, server.base_url).removeprefix("export ").split():
        key, value = pair.split("=", 1)
        env[key] = value
    with tempfile.TemporaryDirectory() as data:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("ise")), "bench-agent", "--offline-user",
             "--concurrency", "1", "--tasks-per-domain", str(tasks_per_domain),
             "--data-dir", data, *(f"--domain={d}" for d in domains)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        path = Path(data) / "agent_benchmark.parquet"
        if not path.exists():
            raise SystemExit(f"bench-agent failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        rows = pl.read_parquet(path)
    calls = rows["tool_calls"].sum()
    return {
        "tasks": rows.height,
        "passed": int(rows["passed"].sum()),
        "valid_tool_calls": 1 - rows["malformed_tool_calls"].sum() / calls if calls else None,
        "tool_calls_mean": rows["tool_calls"].mean(),
        "statuses": dict(collections.Counter(rows["status"].to_list()).most_common()),
        "wall_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(LOCAL_MODELS))
    ap.add_argument("--tasks-per-domain", type=int, default=1, help="0 skips the benchmark")
    ap.add_argument("--domain", action="append", default=[], help="repeatable; default: all")
    ap.add_argument(
        "--force-first-tool",
        default="",
        help="ISE_LLM_FORCE_FIRST_TOOL for the benchmark (a named first call, grammar-bound)",
    )
    args = ap.parse_args()
    if args.force_first_tool:
        os.environ["ISE_LLM_FORCE_FIRST_TOOL"] = args.force_first_tool
    system = load_prompt("agent").render(task_dirs="report/")
    results = {}
    for alias in args.models.split(","):
        t0 = time.perf_counter()
        with LocalServer(model=alias, progress=print) as server:
            start_s = time.perf_counter() - t0
            client = OpenAI(base_url=server.base_url, api_key="local", max_retries=0, timeout=600)
            row: dict[str, object] = {"start_s": start_s, **speed(client, alias, system)}
            row["auto"] = dict(tool_calls(client, alias, system))
            if args.tasks_per_domain:
                row["bench"] = bench_agent(server, args.tasks_per_domain, args.domain)
        results[alias] = row
        print(json.dumps({alias: row}, default=str), flush=True)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(
        "| model | format | gen tok/s | prompt tok/s | auto: valid / rejected / text / "
        "malformed / empty | bench pass@1 | valid calls | endings | bench wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for alias, row in results.items():
        m = LOCAL_MODELS[alias]
        auto = collections.Counter(row["auto"])
        b = row.get("bench") or {}
        valid = "-" if b.get("valid_tool_calls") is None else f"{b['valid_tool_calls']:.2f}"
        forced = f", first tool {args.force_first_tool}" if args.force_first_tool else ""
        print(
            f"| {m.title} | {m.chat_format or 'own template'}{forced} | {row['gen_tok_s']:.1f} | "
            f"{row['prompt_tok_s']:.0f} ({row['prompt_tokens']} tok) | "
            f"{auto['valid_call']} / {auto['rejected_call']} / {auto['text']} / "
            f"{auto['malformed']} / {auto['empty']} of {len(REQUESTS)} | "
            f"{b.get('passed', '-')}/{b.get('tasks', '-')} | "
            f"{valid} | "
            f"{b.get('statuses', '-')} | {b.get('wall_s', 0):.0f} s |"
        )


if __name__ == "__main__":
    main()
