"""Markdown a person reads in the Dagster UI and in dataset cards: tables, text histograms
and an abridged sample trajectory. Plain functions over frames and messages."""

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from ise_dagster.stages.dialogues import paper_comparison

BAR = "█"


def markdown_table(header: list[str], rows: Iterable[Iterable[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def counts_table(frame: pl.DataFrame, column: str, noun: str = "records") -> str:
    counts = frame[column].value_counts(sort=True).iter_rows() if frame.height else []
    return markdown_table([column, noun], counts)


def paper_table(dialogues: pl.DataFrame, ours: str = "this partition") -> str:
    """Turn and tool statistics of the completed dialogues next to the paper's."""
    if not dialogues.filter(status="completed").height:
        return "No completed dialogues."
    rows = [
        (name, f"{mine:.2f}", f"{paper:.2f}", f"{(mine - paper) / paper:+.1%}")
        for name, mine, paper in paper_comparison(dialogues)
    ]
    return markdown_table(["statistic", ours, "paper (ISETrace)", "diff"], rows)


def histogram(values: Sequence[int], what: str, noun: str, max_rows: int = 10) -> str:
    """A text histogram of integers as a Markdown table: one row per value, or per
    equal-width bin when the values span more than `max_rows`."""
    if not values:
        return f"No {noun}."
    low, high = min(values), max(values)
    width = max(1, math.ceil((high - low + 1) / max_rows))
    counts = Counter((v - low) // width for v in values)
    peak = max(counts.values())
    rows = []
    for b in range((high - low) // width + 1):
        start = low + b * width
        label = str(start) if width == 1 else f"{start}-{start + width - 1}"
        n = counts.get(b, 0)
        rows.append((label, n, BAR * max(1 if n else 0, round(20 * n / peak))))
    return markdown_table([what, noun, ""], rows)


def abridge(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(text: str, limit: int) -> str:
    return "`" + abridge(text, limit).replace("`", "'") + "`"


def _outcome(message: dict[str, Any]) -> str:
    """A tool message's verdict: the result's own `ok` (a command can run and fail)."""
    try:
        ok = json.loads(message.get("content") or "").get("ok")
    except (ValueError, AttributeError):
        ok = None
    if ok is None:
        ok = message.get("success", True)
    return "ok" if ok else "failed"


def sample_trajectory(
    messages: list[dict[str, Any]], turns: int = 2, limit: int = 160, max_lines: int = 16
) -> str:
    """The start of a dialogue: up to `turns` user turns and `max_lines` messages or calls,
    with texts, tool arguments and observations abridged to `limit` characters."""
    lines: list[str] = []
    users = sum(1 for m in messages if m.get("role") == "user")
    shown = 0
    for m in messages:
        role = m.get("role")
        if role == "user":
            if shown == turns:
                break
            shown += 1
            lines.append(f"**user:** {abridge(m.get('content') or '', 2 * limit)}")
        elif role == "assistant":
            if m.get("content"):
                lines.append(f"**assistant:** {abridge(m['content'], 2 * limit)}")
            for call in m.get("tool_calls") or []:
                fn = call.get("function", {})
                args = fn.get("arguments", "")
                lines.append(f"**assistant → `{fn.get('name')}`** {_code(args, limit)}")
        elif role == "tool":
            content = _code(m.get("content") or "", limit)
            lines.append(f"**tool `{m.get('name')}` ({_outcome(m)}):** {content}")
        if len(lines) >= max_lines:
            lines = lines[:max_lines] + ["*…*"]
            break
    if users > shown:
        lines.append(f"*… {users - shown} more user turns*")
    return "\n\n".join(lines)


def sample_dialogue(dialogues: pl.DataFrame) -> str:
    """The first completed dialogue of a partition, abridged, under its id and intent."""
    done = dialogues.filter(status="completed")
    if not done.height:
        return "No completed dialogue."
    row = done.row(0, named=True)
    head = (
        f"**{row['trajectory_id']}**: {row['user_turns']} user turns, {row['tool_calls']} tool "
        f"calls, tasks {', '.join(row['tasks'])}"
    )
    return head + "\n\n" + sample_trajectory(json.loads(row["messages"]))


def sample_replay(traces: pl.DataFrame, steps: int = 8, limit: int = 100) -> str:
    """The first trajectory's first replayed steps with their labels."""
    if not traces.height:
        return "No trajectories."
    row = traces.row(0, named=True)
    rows = [
        (
            s["index"],
            s["task_id"] or "",
            s["tool"],
            s["label"],
            _code(s["arguments"], limit),
            _code(s["observation"], limit),
        )
        for s in row["steps"][:steps]
    ]
    more = len(row["steps"]) - len(rows)
    verdicts = ", ".join(
        f"{v['task_id']} {'passed' if v['passed'] else 'failed'}" for v in row["task_verdicts"]
    )
    table = markdown_table(["step", "task", "tool", "label", "arguments", "observation"], rows)
    tail = f"\n\n*… {more} more steps*" if more > 0 else ""
    return f"**{row['trajectory_id']}**: {row['label']} ({verdicts})\n\n{table}{tail}"


def usage_table(dialogues: pl.DataFrame) -> str:
    """Model calls, tokens and cost of a partition (zeros on the offline backend)."""
    sums = {c: dialogues[c].sum() if dialogues.height else 0 for c in _USAGE}
    rows = [(label, f"{sums[c]:,.4f}" if c == "cost_usd" else f"{sums[c]:,}") for c, label in
            _USAGE.items()]  # fmt: skip
    return markdown_table(["model usage", "total"], rows)


_USAGE = {
    "llm_calls": "calls",
    "llm_cached_calls": "served from the request cache",
    "prompt_tokens": "prompt tokens",
    "completion_tokens": "completion tokens",
    "cost_usd": "cost estimate (USD)",
}
