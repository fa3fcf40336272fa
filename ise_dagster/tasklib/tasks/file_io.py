"""File-IO recipes."""

from __future__ import annotations

import random
import textwrap

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, read, sh, write

# ---------------------------------------------------------------- fileio-merge-csv-exports


def _merge_csv_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    customers = [f"C{n:03d}" for n in rng.sample(range(1, 400), 25)]
    rows, order_id = {}, 1000 + rng.randrange(1000)
    for month, days in (("08", 31), ("09", 30), ("10", 31)):
        for day in sorted(rng.choices(range(1, days + 1), k=38)):
            order_id += 1
            amount = f"{rng.uniform(5, 900):.2f}"
            rows[order_id] = (f"2026-{month}-{day:02d}", rng.choice(customers), amount)
    ids = sorted(rows)
    files = {}
    for month in ("08", "09", "10"):
        mine = [i for i in ids if rows[i][0][5:7] == month]
        # Each export repeats the previous month's last few orders.
        prev = [i for i in ids if rows[i][0][5:7] == f"{int(month) - 1:02d}"][-4:]
        sep = ";" if month == "09" else ","
        lines = [sep.join(["id", "date", "customer", "amount"])]
        lines += [sep.join([str(i), *rows[i]]) for i in prev + mine]
        files[f"exports/2026-{month}.csv"] = "\n".join(lines) + "\n"
    return Fixture(files), {"unique_rows": len(ids)}


_MERGE_V1 = textwrap.dedent(
    """\
    import csv, glob, os

    rows = {}
    total = 0
    for path in sorted(glob.glob("exports/*.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                total += 1
                rows[row["id"]] = row
    os.makedirs("out", exist_ok=True)
    ordered = sorted(rows.values(), key=lambda r: (r["date"], int(r["id"])))
    with open("out/merged.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "date", "customer", "amount"])
        w.writeheader()
        w.writerows(ordered)
    with open("out/merge_note.md", "w") as f:
        f.write(f"rows before dedup: {total}\\nrows after dedup: {len(ordered)}\\n")
    print(f"{total} rows read, {len(ordered)} unique")
    """
)


def _merge_csv_playbook(ctx: Ctx) -> Playbook:
    listing = yield sh("ls -la exports/ && wc -l exports/*.csv", say="Let me see the exports.")
    yield read("exports/2026-08.csv", 1, 3, say="Checking the header and format.")
    yield write("merge.py", _MERGE_V1, say="Writing a merge script.")
    run = yield sh("python3 merge.py")
    if not run.ok:
        # One export is semicolon-delimited: csv.DictReader sees a single 'id;date;...' column.
        yield sh("head -2 exports/*.csv", say="The merge failed; comparing the files' headers.")
        yield edit(
            "merge.py",
            "        for row in csv.DictReader(f):",
            "        dialect = csv.Sniffer().sniff(f.readline(), delimiters=',;')\n"
            "        f.seek(0)\n"
            "        for row in csv.DictReader(f, dialect=dialect):",
            say="September uses semicolons; sniffing the delimiter per file.",
        )
        run = yield sh("python3 merge.py")
    n_files = listing.stdout.count(".csv") - 1 if listing else 0
    yield Reply(
        f"Merged the {n_files} monthly exports into out/merged.csv: {run.stdout.strip()}. "
        "The counts are in out/merge_note.md."
    )
    check = yield sh(
        "head -3 out/merged.csv && cut -d, -f1 out/merged.csv | sort | uniq -d | wc -l",
        say="Verifying the header and that no id repeats.",
    )
    dupes = check.stdout.strip().splitlines()[-1] if check.ok else "?"
    yield Reply(f"Checked: one header, {dupes} duplicate ids, rows sorted by date.")


_MERGE_VERIFY = """
import csv, glob, sys
ids = set()
for p in glob.glob("exports/*.csv"):
    text = open(p).read()
    sep = ";" if text.splitlines()[0].count(";") else ","
    ids |= {r["id"] for r in csv.DictReader(text.splitlines(), delimiter=sep)}
try:
    rows = list(csv.DictReader(open("out/merged.csv")))
except FileNotFoundError:
    sys.exit("out/merged.csv is missing")
got = [r["id"] for r in rows]
if len(got) != len(set(got)):
    sys.exit("duplicate ids in out/merged.csv")
if set(got) != ids:
    sys.exit(f"expected {len(ids)} unique ids, found {len(set(got))}")
keys = [(r["date"], int(r["id"])) for r in rows]
if keys != sorted(keys):
    sys.exit("rows are not sorted by date")
print(f"ok: {len(rows)} unique rows, sorted")
"""


RECIPES = [
    TaskRecipe(
        task_id="fileio-merge-csv-exports",
        fixture=_merge_csv_fixture,
        playbook=_merge_csv_playbook,
        verify=_MERGE_VERIFY,
        failure_mode="assumes every export is comma-delimited; the semicolon file breaks it",
    ),
]
