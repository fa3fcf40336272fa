"""All recipes, keyed by task id. One module per domain under `tasks/`."""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from functools import cache
from pathlib import Path

from ise_dagster.tasklib import tasks as _tasks_pkg
from ise_dagster.tasklib.base import TaskRecipe


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return f"no recipe for task {self.args[0]!r}: add one under ise_dagster/tasklib/tasks/"


@cache
def recipes() -> dict[str, TaskRecipe]:
    found: dict[str, TaskRecipe] = {}
    for info in pkgutil.iter_modules(_tasks_pkg.__path__):
        module = importlib.import_module(f"{_tasks_pkg.__name__}.{info.name}")
        for recipe in getattr(module, "RECIPES", []):
            if recipe.task_id in found:
                raise ValueError(f"two recipes for task {recipe.task_id!r} ({info.name})")
            found[recipe.task_id] = recipe
    return found


def recipe_for(task_id: str) -> TaskRecipe:
    try:
        return recipes()[task_id]
    except KeyError:
        raise UnknownTaskError(task_id) from None


PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@cache
def library_digest(root: Path = PACKAGE_ROOT) -> str:
    """A digest of everything that decides what a dialogue's tool calls do and see: the
    recipes (fixtures, playbooks, verifiers), the task taxonomy and the in-container tool
    server. Checkpoints key on it, so editing a recipe never serves a stale dialogue."""
    files = sorted((root / "tasklib").rglob("*.py"))
    files += [root / "taxonomy" / "data" / "tasks.json", root / "sandbox" / "toolserver.py"]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]
