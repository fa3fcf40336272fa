"""Compose `data/personas.json` from the parts in `data/persona_parts.json`.

The paper's 965 personas were LLM-synthesized; ours are composed deterministically from
curated parts (industries with their roles, expertise and workplaces, experience levels,
tones x layouts), so the file is reproducible and reviewable. Re-run after editing the parts:

    python -m ise_dagster.taxonomy.build_personas
"""

from __future__ import annotations

import json
import random

from ise_dagster.taxonomy.load import DATA_DIR, MIN_PERSONAS, _load_styles

SEED = 965

# Noun phrases, so a writer can say "I'm {work_context}".
_CONTEXTS = {
    "intern": [
        "an intern at {workplace} this season, shadowing the {expertise} team",
        "a summer intern at {workplace} on a first real {expertise} project",
    ],
    "junior": [
        "a recent hire at {workplace} who mostly picks up {expertise} tickets",
        "early in my career at {workplace}, still learning the {expertise} tooling",
    ],
    "mid-level": [
        "the day-to-day owner of {expertise} work at {workplace}",
        "a few years into running {expertise} at {workplace}",
    ],
    "senior": [
        "the lead for {expertise} at {workplace}, reviewing other people's work",
        "the go-to person for {expertise} at {workplace}, juggling several projects",
    ],
    "staff": [
        "the one setting technical direction for {expertise} across {workplace}",
        "the cross-team owner of {expertise} standards at {workplace}",
    ],
    "executive": [
        "head of the {expertise} function at {workplace}, short on time for detail",
        "a department head at {workplace} who cares about {expertise} results, not mechanics",
    ],
}


def compose_personas(n: int = MIN_PERSONAS, seed: int = SEED) -> list[dict[str, str]]:
    doc = json.loads((DATA_DIR / "persona_parts.json").read_text(encoding="utf-8"))
    industries, styles = _load_styles(DATA_DIR / "persona_parts.json", DATA_DIR / "layouts.json")
    rng = random.Random(seed)

    # Every (industry, role) once before any repeats, so the pool covers all roles.
    slots = [(ind, role) for ind in industries for role in ind.roles]
    rng.shuffle(slots)
    while len(slots) < n:
        ind = rng.choice(industries)
        slots.append((ind, rng.choice(ind.roles)))
    style_names = sorted(styles)
    rng.shuffle(style_names)
    levels = list(doc["experience_levels"])
    names = [f"{f} {last}" for f in doc["first_names"] for last in doc["last_names"]]
    picked_names = rng.sample(names, n)

    personas = []
    for i, ((ind, role), name) in enumerate(zip(slots[:n], picked_names, strict=True)):
        level = levels[i % len(levels)]
        expertise = rng.choice(ind.expertise)
        workplace = rng.choice(ind.workplaces)
        context = rng.choice(_CONTEXTS[level]).format(workplace=workplace, expertise=expertise)
        personas.append(
            {
                "id": f"persona-{i + 1:04d}",
                "name": name,
                "role": role,
                "industry": ind.name,
                "expertise": expertise,
                "experience_level": level,
                "communication_style": style_names[i % len(style_names)],
                "work_context": context,
            }
        )
    return personas


def main() -> None:
    personas = compose_personas()
    out = DATA_DIR / "personas.json"
    doc = {"version": "2026.11.1", "seed": SEED, "personas": personas}
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(personas)} personas to {out}")


if __name__ == "__main__":
    main()
