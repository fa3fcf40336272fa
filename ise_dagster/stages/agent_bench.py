"""The agent benchmark: the task library as an evaluation suite, as in terminal-bench.

The configured agent, with the configured user simulator, attempts each task of a fixed
sample (one single-task intent per task, worded by the offline writer so that every agent
gets the same request) in a fresh workspace, and the task's own verifier decides: pass@1.
It tells a user whether a model is good enough to generate data before a real run. The
offline playbook agent is the reference row: it passes every task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from ise_dagster import schemas
from ise_dagster.llm.offline_user import OfflineUserSimulator
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.llm.playbook_agent import PlaybookAgent
from ise_dagster.sandbox import SandboxResource
from ise_dagster.stages import report
from ise_dagster.stages.dialogues import AgentFactory, DialogueSettings, UserFactory, simulate
from ise_dagster.stages.intents import intents_frame, stable_seed
from ise_dagster.stages.progress import map_with_progress
from ise_dagster.taxonomy.models import IntentSpec, Task, Taxonomy

BENCH_DATE = "2026-01-01"  # names the trajectories; the benchmark has no dates


def sample_tasks(
    taxonomy: Taxonomy, per_domain: int | None, seed: int = 0, domains: Sequence[str] = ()
) -> list[Task]:
    """`per_domain` tasks of each domain (of `domains`, or all), in a fixed shuffled order
    (None: every task)."""
    unknown = sorted(set(domains) - set(taxonomy.domain_ids))
    if unknown:
        raise ValueError(f"unknown domain(s) {unknown}; known: {taxonomy.domain_ids}")
    picked: list[Task] = []
    for domain in domains or taxonomy.domain_ids:
        tasks = sorted(taxonomy.tasks_in(domain), key=lambda t: stable_seed("bench", seed, t.id))
        picked += tasks if per_domain is None else tasks[:per_domain]
    return picked


def bench_intent(task: Task, taxonomy: Taxonomy) -> dict[str, Any]:
    """A one-task intent in a persona's words, the same for every agent under test."""
    personas = taxonomy.personas
    spec = IntentSpec(
        domains=(task.domain,),
        tasks=(task,),
        persona=personas[stable_seed("bench-persona", task.id) % len(personas)],
        complexity="simple",
        seed=stable_seed("bench", task.id),
    )
    writer = OfflineIntentWriter(taxonomy)
    return intents_frame([spec], writer.write([spec]), writer, taxonomy).row(0, named=True)


def attempt(
    task: Task,
    taxonomy: Taxonomy,
    sandbox: SandboxResource,
    settings: DialogueSettings,
    user_factory: UserFactory = OfflineUserSimulator,
    agent_factory: AgentFactory = PlaybookAgent,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """One task, one try: the dialogue, then the task's verifier in the same workspace."""
    row = simulate(bench_intent(task, taxonomy), BENCH_DATE, taxonomy, sandbox, settings,
                   user_factory, agent_factory, verify_tasks=True, stop=stop)  # fmt: skip
    verdicts = row.get("task_verdicts") or []
    passed = bool(verdicts) and all(v["passed"] for v in verdicts)
    why = "; ".join(v["reason"] for v in verdicts if not v["passed"]) or row["error"] or ""
    return {
        "task_id": task.id,
        "domain": task.domain,
        "passed": passed,
        "status": row["status"],
        "reason": "" if passed else why[:500],
        **{k: row[k] for k in _FROM_DIALOGUE},
    }


# What the benchmark keeps of each dialogue row: the rest of its schema.
_FROM_DIALOGUE = [c for c in schemas.AGENT_BENCH
                  if c not in ("task_id", "domain", "passed", "status", "reason")]  # fmt: skip


def run_benchmark(
    tasks: list[Task],
    taxonomy: Taxonomy,
    sandbox: SandboxResource,
    settings: DialogueSettings,
    user_factory: UserFactory = OfflineUserSimulator,
    agent_factory: AgentFactory = PlaybookAgent,
    concurrency: int = 2,
    progress: Callable[[str], None] = print,
) -> pl.DataFrame:
    """Every task's attempt, in the tasks' order. A sandbox that keeps failing fails the run:
    infrastructure is never a model's score."""

    def work(task: Task, stop: threading.Event) -> dict[str, Any]:
        return attempt(task, taxonomy, sandbox, settings, user_factory, agent_factory, stop)

    rows = map_with_progress(work, tasks, concurrency, "tasks attempted", progress)
    return pl.DataFrame(rows, schema=schemas.AGENT_BENCH)


def summary(results: pl.DataFrame) -> pl.DataFrame:
    """Per domain and overall: pass@1, tool-call validity, steps, tokens and cost."""

    def figures(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            tasks=pl.len(),
            passed=pl.col("passed").sum(),
            pass_at_1=pl.col("passed").mean().round(3),
            # Of the calls the agent sent, the share that were well formed.
            valid_tool_calls=(
                1 - pl.col("malformed_tool_calls").sum() / pl.col("tool_calls").sum()
            ).round(3),  # fmt: skip
            tool_calls_mean=pl.col("tool_calls").mean().round(1),
            user_turns_mean=pl.col("user_turns").mean().round(1),
            tokens=(pl.col("prompt_tokens") + pl.col("completion_tokens")).sum(),
            cost_usd=pl.col("cost_usd").sum().round(4),
        )

    per_domain = [figures(g).insert_column(0, pl.Series("domain", [d]))
                  for (d,), g in results.group_by("domain", maintain_order=True)]  # fmt: skip
    overall = figures(results).insert_column(0, pl.Series("domain", ["overall"]))
    return pl.concat([*per_domain, overall])


def summary_markdown(results: pl.DataFrame) -> str:
    table = summary(results)
    failed = results.filter(~pl.col("passed"))
    lines = [report.markdown_table(table.columns, table.rows())]
    if failed.height:
        lines += ["", "Failed tasks:", ""]
        rows = failed.select("task_id", "status", "reason").rows()
        lines.append(report.markdown_table(["task", "status", "why"], rows))
    return "\n".join(lines)
