"""One shape for every check result: the partition, the figure and its target side by side,
in the metadata and in a one-line description the UI shows next to the verdict."""

from typing import Any

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity

BLOCKING = "Blocking: a failure stops the assets downstream of this partition."
WARNS = "Warns only: a miss is flagged, nothing downstream stops."


def outcome(
    context: AssetCheckExecutionContext,
    passed: bool,
    observed: str,
    target: str,
    /,
    *,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    **metadata: Any,
) -> AssetCheckResult:
    """`observed` and `target` are short, human strings, e.g. "8.30" and "8.12 ± 0.41"."""
    where = context.partition_key if context.has_partition_key else "whole pool"
    verdict = "passed" if passed else ("failed" if severity is AssetCheckSeverity.ERROR else "warn")
    return AssetCheckResult(
        passed=bool(passed),
        severity=severity,
        description=f"{where}: {observed} (target {target}): {verdict}",
        metadata={**metadata, "partition": where, "observed": observed, "target": target},
    )
