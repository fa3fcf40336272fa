"""The embedded role-locked user: delegates an intent's tasks turn by turn, in voice.

It plans its turns from the intent alone (a seed, the tasks, the persona) and sees only its
own queries and the agent's final replies. The plan's length follows the paper's user-turn
distribution (mean 8.12, median 8, 91% within 6-10): one request per task, then follow-ups
(checks) and corrections until the persona's patience is used up.
"""

from __future__ import annotations

import random

from ise_dagster.llm.simulator import TurnKind, UserTurn, UserView
from ise_dagster.taxonomy.models import Taxonomy

# Target user turns per dialogue, before clamping to what the tasks allow.
TURNS_MEAN, TURNS_SD = 8.12, 1.5

_REQUEST = [
    "{opener} {Goal}.",
    "{opener} Next: {goal}.",
    "Now {goal}, please.",
    "{opener} Could you {goal}?",
    "Moving on. {Goal}.",
]
_FOLLOW_UP = [
    "Can you double-check {artifact} before we move on?",
    "Show me that {artifact} is really right.",
    "Quick check: is {artifact} correct? Verify it.",
    "Before I sign off on the {title} part, verify the result.",
]
_CORRECTION = [
    "One more thing on the {title} part: note what you changed in NOTES.md.",
    "Please also leave a short summary of the {title} work in NOTES.md.",
    "Add a line to NOTES.md about the {title} result, for the team.",
]
_ASKS = ("could you", "could you please", "can you", "would you")


def is_lead_in(opener: str) -> bool:
    """An opener that runs on into the request ("..., could you", "..., but") rather than
    ending a sentence of its own."""
    return bool(opener) and opener.rstrip()[-1] not in ".!?:;)"


# First-person admissions only: replies often describe a first attempt that failed.
_FAILURE_WORDS = ("i could not", "i couldn't", "i was unable", "i'm unable", "i gave up")


class OfflineUserSimulator:
    name = "offline-user"
    model = "offline"
    usage = None  # no model calls

    def __init__(self, taxonomy: Taxonomy, seed: int) -> None:
        self._taxonomy = taxonomy
        self._seed = seed

    def plan(self, n_tasks: int) -> list[tuple[TurnKind, int]]:
        """The (kind, task index) of every user turn, deterministic from the seed."""
        rng = random.Random(self._seed)
        total = round(rng.gauss(TURNS_MEAN, TURNS_SD))
        total = max(n_tasks, min(total, 3 * n_tasks + 3))
        extras = total - n_tasks
        follow = sorted(rng.sample(range(n_tasks), min(extras, n_tasks)))
        corrections = sorted(rng.choices(range(n_tasks), k=extras - len(follow)))
        plan: list[tuple[TurnKind, int]] = []
        for i in range(n_tasks):
            plan.append(("request", i))
            plan += [("follow_up", i)] * follow.count(i)
            plan += [("correction", i)] * corrections.count(i)
        return plan

    def next_turn(self, view: UserView) -> UserTurn:
        plan = self.plan(len(view.tasks))
        done = len(view.own_queries)
        if done >= len(plan):
            failed = any(w in r.lower() for r in view.agent_replies for w in _FAILURE_WORDS)
            return UserTurn(
                completed=True,
                query="",
                reason="every task was delegated and answered"
                + ("; some replies report failures" if failed else ""),
                is_success=not failed,
            )
        kind, i = plan[done]
        rng = random.Random(f"{self._seed}:{done}")
        task = view.tasks[i]
        tone = self._taxonomy.style(view.persona.communication_style).tone
        if kind == "request" and done == 0:
            query = view.intent  # the first turn delegates in the intent's own words...
            query += f"\n\nLet's start with this: {task.goal}."  # ...then narrows to task 1
        else:
            template = rng.choice({"request": _REQUEST, "follow_up": _FOLLOW_UP,
                                   "correction": _CORRECTION}[kind])  # fmt: skip
            opener = rng.choice(tone.openers) if rng.random() < 0.5 else ""
            if kind == "request" and is_lead_in(opener):
                # "..., could you" already asks: the goal follows it directly.
                query = f"{opener} {task.goal}" + ("?" if opener.endswith(_ASKS) else ".")
            else:
                query = template.format(
                    opener=opener,
                    goal=task.goal,
                    Goal=task.goal[:1].upper() + task.goal[1:],
                    artifact=task.artifact,
                    title=task.title.lower(),
                ).strip()
            if rng.random() < 0.25:
                query += f" {rng.choice(tone.closers)}"
        return UserTurn(
            completed=False,
            query=query,
            reason=f"{kind} for task {i + 1} of {len(view.tasks)}",
            is_success=False,
            kind=kind,
            task_index=i,
        )
