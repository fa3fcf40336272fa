"""Hardened per-trajectory Docker workspaces and the in-container tool server.

    from ise_dagster.sandbox import SandboxResource
    with SandboxResource().workspace() as ws:
        result = ws.call("exec", {"cmd": "ls -la"})   # -> ToolResult

See docs/sandbox.md for the guarantees and limits.
"""

from ise_dagster.sandbox.cleanup import sweep
from ise_dagster.sandbox.image import ensure_image, image_tag
from ise_dagster.sandbox.resource import SandboxResource, docker_client
from ise_dagster.sandbox.result import SandboxInfraError, ToolResult
from ise_dagster.sandbox.workspace import AGENT_TOOLS, Workspace

__all__ = [
    "AGENT_TOOLS",
    "SandboxInfraError",
    "SandboxResource",
    "ToolResult",
    "Workspace",
    "docker_client",
    "ensure_image",
    "image_tag",
    "sweep",
]
