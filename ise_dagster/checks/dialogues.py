"""Partition-aware checks on `dialogues`: the paper's Stage 2 figures and message validity.
Statistics are computed over completed dialogues."""

import json
import statistics
from collections.abc import Callable

import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from ise_dagster.assets.dialogues import dialogues
from ise_dagster.checks.outcome import BLOCKING, WARNS, outcome
from ise_dagster.config import DialogueTargets
from ise_dagster.partitions import date_domain_partitions
from ise_dagster.stages.guards import detect_stutter


def _completed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(status="completed")


def near_target(
    values: list[float], target: float, rel_tol: float, se: float | None = None
) -> tuple[bool, dict]:
    """Is the mean within rel_tol of target, allowing three standard errors on small samples?
    `se` overrides the sample's own standard error (e.g. a binomial one for shares)."""
    if not values:
        return False, {"n": 0, "reason": "no completed dialogues"}
    mean = statistics.fmean(values)
    if se is None:
        se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    allowed = max(rel_tol * abs(target), 3 * se)
    return abs(mean - target) <= allowed, {
        "n": len(values),
        "mean": round(mean, 3),
        "target": target,
        "allowed_deviation": round(allowed, 3),
    }


def _stat_check(name: str, column: str, target_field: str, what: str) -> Callable:
    @asset_check(
        asset=dialogues,
        name=name,
        partitions_def=date_domain_partitions,
        description=f"Mean {what} of the completed dialogues against the paper's, within "
        "rel_tolerance (5%) or three standard errors on small partitions. " + WARNS,
    )
    def _check(
        context: AssetCheckExecutionContext, config: DialogueTargets, dialogues: pl.DataFrame
    ) -> AssetCheckResult:
        values = _completed(dialogues)[column].cast(pl.Float64).to_list()
        target = getattr(config, target_field)
        passed, meta = near_target(values, target, config.rel_tolerance)
        return outcome(
            context,
            passed,
            f"{what} {meta['mean']:.2f}" if values else "no completed dialogues",
            f"{target} ± {meta.get('allowed_deviation', 0):.2f}",
            severity=AssetCheckSeverity.WARN,
            **meta,
        )

    return _check


dialogues_user_turns_mean = _stat_check(
    "user_turns_mean", "user_turns", "user_turns_mean", "user turns"
)
dialogues_total_turns_mean = _stat_check(
    "total_turns_mean", "total_turns", "total_turns_mean", "total turns"
)
dialogues_tool_calls_mean = _stat_check(
    "tool_calls_mean", "tool_calls", "tool_calls_mean", "tool calls"
)
dialogues_distinct_tools_mean = _stat_check(
    "distinct_tools_mean", "distinct_tools", "distinct_tools_mean", "distinct tools"
)


@asset_check(
    asset=dialogues,
    partitions_def=date_domain_partitions,
    description="Median user turns of the completed dialogues within 1 of the paper's 8. " + WARNS,
)
def user_turns_median(
    context: AssetCheckExecutionContext, config: DialogueTargets, dialogues: pl.DataFrame
) -> AssetCheckResult:
    turns = _completed(dialogues)["user_turns"].to_list()
    median = statistics.median(turns) if turns else 0
    return outcome(
        context,
        bool(turns) and abs(median - config.user_turns_median) <= 1,
        f"median user turns {median:g}",
        f"{config.user_turns_median:g} ± 1",
        severity=AssetCheckSeverity.WARN,
        median=float(median),
        n=len(turns),
    )


@asset_check(
    asset=dialogues,
    partitions_def=date_domain_partitions,
    description="Share of completed dialogues with 6-10 user turns against the paper's 91.1%, "
    "within rel_tolerance or three binomial standard errors. " + WARNS,
)
def user_turns_share_6_to_10(
    context: AssetCheckExecutionContext, config: DialogueTargets, dialogues: pl.DataFrame
) -> AssetCheckResult:
    turns = _completed(dialogues)["user_turns"].to_list()
    inside = [float(6 <= t <= 10) for t in turns]
    p = config.share_6_to_10
    # A share of a small sample is often exactly 1.0, whose sample deviation is 0: use the
    # binomial standard error at the target instead.
    se = (p * (1 - p) / len(turns)) ** 0.5 if turns else 0.0
    passed, meta = near_target(inside, p, config.rel_tolerance, se)
    return outcome(
        context,
        passed,
        f"{meta['mean']:.1%} with 6-10 user turns" if turns else "no completed dialogues",
        f"{p:.1%} ± {meta.get('allowed_deviation', 0):.1%}",
        severity=AssetCheckSeverity.WARN,
        **meta,
    )


@asset_check(
    asset=dialogues,
    partitions_def=date_domain_partitions,
    blocking=True,
    description="Share of user turns that read like the agent's side (reports of work done, "
    "tool output, code fences) at most max_role_drift_rate (1%). " + BLOCKING,
)
def role_drift_rate(
    context: AssetCheckExecutionContext, config: DialogueTargets, dialogues: pl.DataFrame
) -> AssetCheckResult:
    done = _completed(dialogues)
    turns = int(done["user_turns"].sum())
    drift = int(done["role_drift_turns"].sum())
    rate = drift / turns if turns else 0.0
    return outcome(
        context,
        rate <= config.max_role_drift_rate,
        f"{drift} of {turns} user turns drifted ({rate:.1%})",
        f"<= {config.max_role_drift_rate:.1%}",
        drifted_user_turns=drift,
        user_turns=turns,
        rate=round(rate, 4),
    )


def message_schema_problems(messages: list[dict]) -> list[str]:
    """Every tool message answers an id from the preceding assistant tool_calls, and every
    tool call's arguments are a JSON object in a string, unless the call was rejected: a
    malformed call is kept as the model wrote it and answered by a failed tool message."""
    problems, open_ids, malformed = [], set(), {}

    def unanswered_malformed() -> None:
        problems.extend(f"message {k}: {why}" for k, why in malformed.values())
        malformed.clear()

    if not messages or messages[0].get("role") != "system":
        problems.append("first message is not the system prompt")
    for k, m in enumerate(messages):
        role = m.get("role")
        if role == "assistant":
            unanswered_malformed()
            open_ids = set()
            for call in m.get("tool_calls") or []:
                open_ids.add(call.get("id"))
                try:
                    if not isinstance(json.loads(call["function"]["arguments"]), dict):
                        malformed[call.get("id")] = (k, "arguments are not a JSON object")
                except (KeyError, TypeError, json.JSONDecodeError):
                    malformed[call.get("id")] = (k, "arguments do not parse as JSON")
        elif role == "tool":
            if m.get("tool_call_id") not in open_ids:
                problems.append(f"message {k}: tool_call_id {m.get('tool_call_id')} unanswered")
            open_ids.discard(m.get("tool_call_id"))
            if not isinstance(m.get("success"), bool) or not m.get("name"):
                problems.append(f"message {k}: tool message lacks name or success flag")
            if m.get("success") is False:
                malformed.pop(m.get("tool_call_id"), None)
        elif role not in ("user", "system"):
            problems.append(f"message {k}: unknown role {role!r}")
    unanswered_malformed()
    return problems


@asset_check(
    asset=dialogues,
    partitions_def=date_domain_partitions,
    blocking=True,
    description="Every completed dialogue is valid OpenAI chat: system prompt first, every tool "
    "message answers a tool_call id of the assistant turn before it and carries name and "
    "success, every call's arguments are a JSON object (or the call was answered as failed). "
    + BLOCKING,
)
def message_schema_valid(
    context: AssetCheckExecutionContext, dialogues: pl.DataFrame
) -> AssetCheckResult:
    bad = {}
    for row in _completed(dialogues).select("trajectory_id", "messages").iter_rows():
        problems = message_schema_problems(json.loads(row[1]))
        if problems:
            bad[row[0]] = problems[:3]
    return outcome(
        context,
        not bad,
        f"{len(bad)} invalid trajectories",
        "0",
        invalid_trajectories=len(bad),
        examples=json.dumps(dict(list(bad.items())[:5])),
    )


@asset_check(
    asset=dialogues,
    partitions_def=date_domain_partitions,
    description='No user turn repeats a phrase back to back ("could you Could you"): such '
    "seams would be learned as the user's voice. " + WARNS,
)
def user_queries_well_formed(
    context: AssetCheckExecutionContext, dialogues: pl.DataFrame
) -> AssetCheckResult:
    stutters = [
        m["content"]
        for text in _completed(dialogues)["messages"]
        for m in json.loads(text)
        if m["role"] == "user" and detect_stutter(m["content"])
    ]
    return outcome(
        context,
        not stutters,
        f"{len(stutters)} stuttering user turns",
        "0",
        severity=AssetCheckSeverity.WARN,
        stuttering_turns=len(stutters),
        examples=json.dumps(stutters[:3]),
    )
