"""Result and error types shared by the host side of the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ErrorKind = Literal["tool", "infra"]

# Keys of a tool-server response that map to ToolResult fields; everything else is an extra.
_CORE = (
    "id",
    "ok",
    "error_kind",
    "error",
    "exit_code",
    "stdout",
    "stderr",
    "stdout_truncated",
    "stderr_truncated",
    "duration_ms",
    "timed_out",
)


class SandboxInfraError(Exception):
    """The sandbox itself failed: Docker unreachable, container died or OOM, supervisor lost.

    Never caused by a tool call's own content; a trajectory that hits it should be retried or
    dropped, never labelled with the agent's outcome.
    """


@dataclass(frozen=True)
class ToolResult:
    """Structured outcome of one tool call, mirroring the tool server's response line.

    error_kind is None on success, "tool" for errors the agent caused (bad args, a path outside
    /workspace, a nonzero exit, a timeout), and "infra" when the sandbox failed.
    """

    tool: str
    ok: bool
    error_kind: ErrorKind | None = None
    error: str | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_ms: float = 0.0
    timed_out: bool = False
    id: int | str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_response(cls, tool: str, response: dict[str, Any]) -> ToolResult:
        core = {k: response[k] for k in _CORE if k in response}
        extras = {k: v for k, v in response.items() if k not in _CORE}
        return cls(tool=tool, extras=extras, **core)

    @classmethod
    def tool_error(cls, tool: str, message: str, **extras: Any) -> ToolResult:
        return cls(tool=tool, ok=False, error_kind="tool", error=message, extras=extras)

    @classmethod
    def infra_error(cls, tool: str, message: str, **extras: Any) -> ToolResult:
        return cls(tool=tool, ok=False, error_kind="infra", error=message, extras=extras)

    @property
    def is_infra_error(self) -> bool:
        return self.error_kind == "infra"

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: the core fields plus the tool-specific extras (JSON-serialisable)."""
        out: dict[str, Any] = {"tool": self.tool}
        out.update({k: getattr(self, k) for k in _CORE})
        out.update(self.extras)
        return out
