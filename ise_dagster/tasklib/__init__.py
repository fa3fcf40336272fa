"""The executable task library: for every taxonomy task, a fixture, a playbook and a verifier."""

from ise_dagster.tasklib.base import Call, Fixture, Reply, TaskRecipe
from ise_dagster.tasklib.registry import recipe_for, recipes

__all__ = ["Call", "Fixture", "Reply", "TaskRecipe", "recipe_for", "recipes"]
