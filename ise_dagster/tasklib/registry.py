"""All recipes, keyed by task id. One module per domain under `tasks/`."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

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
