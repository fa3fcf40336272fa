"""Automation-Flow recipes: cron entries, runners, retries, watchers, schedulers, rotation."""

from __future__ import annotations

import difflib
import gzip
import hashlib
import json
import random
import re
import textwrap

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, kill, output, patch, poll, read, sh, start, write


def _udiff(path: str, old: str, new: str) -> str:
    """A git-style unified diff of one file, as an agent would hand to apply_patch."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
        )
    )


# ---------------------------------------------------------------- auto-schedule-nightly-backup


def _backup_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = rng.sample(["ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivo"], 5)
    users = [{"id": i, "name": n, "active": rng.random() < 0.8} for i, n in enumerate(names, 1)]
    settings = {
        "theme": rng.choice(["dark", "light"]),
        "page_size": rng.choice([20, 50, 100]),
        "currency": rng.choice(["EUR", "USD", "GBP"]),
    }
    orders = ["date,orders,revenue"] + [
        f"2026-03-{d:02d},{rng.randint(5, 60)},{rng.uniform(100, 5000):.2f}" for d in range(1, 15)
    ]
    stock = ["sku,qty"] + [
        f"SKU-{rng.randint(1000, 9999)},{rng.randint(0, 300)}" for _ in range(12)
    ]
    every = rng.choice([10, 15, 20, 30])
    crontab = textwrap.dedent(
        f"""\
        # crontab for the app host -- m h dom mon dow command
        # Managed by ops. Keep the existing jobs when adding new ones.
        SHELL=/bin/bash

        # refresh the search index
        */{every} * * * * /usr/local/bin/reindex -q >> /var/log/reindex.log 2>&1
        # weekly certificate check, Mondays
        0 {rng.randint(5, 9)} * * 1 /usr/local/bin/check-certs >> /var/log/certs.log 2>&1
        # clean temporary uploads nightly
        {rng.choice([5, 15, 45])} 3 * * * find /srv/uploads/tmp -type f -mtime +2 -delete
        """
    )
    files = {
        "data/users.json": json.dumps(users, indent=2) + "\n",
        "data/settings.json": json.dumps(settings, indent=2) + "\n",
        "data/daily_orders.csv": "\n".join(orders) + "\n",
        "data/stock/levels.csv": "\n".join(stock) + "\n",
        "cron/crontab.txt": crontab,
    }
    return Fixture(files), {"data_files": 4}


_BACKUP_SH = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Archive data/ into backups/data-YYYYmmdd-HHMMSS.tar.gz (run nightly from cron).
    set -euo pipefail
    ROOT="$(cd "$(dirname "$0")/.." && pwd)"
    BACKUP_DIR="$ROOT/backups"
    archive="$BACKUP_DIR/data-$(date +%Y%m%d-%H%M%S).tar.gz"
    tar -czf "$archive" -C "$ROOT" data
    echo "backup written: $archive ($(du -h "$archive" | cut -f1))"
    """
)


def _backup_playbook(ctx: Ctx) -> Playbook:
    look, _ = yield [
        sh("pwd && find data -type f | sort", say="Looking at what needs backing up."),
        read("cron/crontab.txt", say="And at the existing crontab."),
    ]
    root = look.stdout.splitlines()[0].strip() if look.ok else f"/workspace/{ctx.task_dir}"
    yield write("scripts/backup.sh", _BACKUP_SH, say="Writing the backup script.")
    run = yield sh("chmod +x scripts/backup.sh && scripts/backup.sh", say="Running it by hand.")
    entries = (
        "\n# nightly backup of data/ at 02:30\n"
        f"30 2 * * * {root}/scripts/backup.sh >> {root}/logs/backup.log 2>&1\n"
        "# prune backup archives older than 14 days\n"
        f"0 3 * * * find {root}/backups -name 'data-*.tar.gz' -mtime +14 -delete"
        f" >> {root}/logs/backup-prune.log 2>&1\n"
    )
    append = sh(
        f"mkdir -p logs && cat >> cron/crontab.txt <<'EOF'\n{entries}EOF\n"
        "grep -Ev '^[[:space:]]*(#|$)|^[A-Z]+=' cron/crontab.txt | wc -l",
        say="Appending the backup and prune entries with absolute paths and log files.",
    )
    if not run.ok:
        # tar cannot create the archive: backups/ does not exist yet.
        yield edit(
            "scripts/backup.sh",
            'tar -czf "$archive"',
            'mkdir -p "$BACKUP_DIR"\ntar -czf "$archive"',
            say="tar can't open the archive because backups/ doesn't exist; creating it first.",
        )
        # The crontab entries don't depend on this run: adding them alongside the re-run.
        run, added = yield [
            sh("scripts/backup.sh && tar -tzf backups/data-*.tar.gz", say="Re-running it."),
            append,
        ]
    else:
        added = yield append
    n_entries = added.stdout.strip() or "?"
    written = run.stdout.strip().splitlines()[0] if run.ok else "the script ran"
    yield Reply(
        f"scripts/backup.sh works by hand ({written}). cron/crontab.txt now has {n_entries} "
        "entries: the three existing jobs untouched, a 02:30 backup and a 03:00 prune of "
        f"archives older than 14 days, both logging under {root}/logs/."
    )
    check = yield sh(
        "touch -d '20 days ago' backups/data-20260101-023000.tar.gz && "
        "eval \"$(grep -- '-mtime +14 -delete' cron/crontab.txt | cut -d' ' -f6-)\" && ls backups",
        say="Testing the prune entry on a fake 20-day-old archive.",
    )
    left = len(check.stdout.split()) if check.ok else "?"
    yield Reply(
        f"Checked: running the prune entry's command removed the 20-day-old test archive and "
        f"kept today's ({left} archive left in backups/)."
    )


_BACKUP_VERIFY = r"""
import glob, os, re, shutil, subprocess, sys, tarfile, tempfile
root = os.getcwd()
script = "scripts/backup.sh"
if not os.path.isfile(script):
    sys.exit("scripts/backup.sh is missing")
if not os.access(script, os.X_OK):
    sys.exit("scripts/backup.sh is not executable; cron runs it by path")
data = sorted(p for p in glob.glob("data/**/*", recursive=True) if os.path.isfile(p))
archives = sorted(p for p in glob.glob("backups/*.tar.gz")
                  if re.search(r"\d{8}", os.path.basename(p)) and os.path.getsize(p) > 0)
if not archives:
    sys.exit("no timestamped archive in backups/: the script was never run")
with tarfile.open(archives[-1]) as t:
    names = {n.lstrip("./") for n in t.getnames()}
missing = [p for p in data if not any(n == p or n.endswith("/" + p) for n in names)]
if missing:
    sys.exit(f"the archive lacks {missing}")
tmp = tempfile.mkdtemp()
shutil.copytree("data", f"{tmp}/data")
shutil.copytree("scripts", f"{tmp}/scripts")
r = subprocess.run([f"{tmp}/scripts/backup.sh"], cwd="/", capture_output=True, text=True)
if r.returncode != 0 or not glob.glob(f"{tmp}/backups/*.tar.gz"):
    sys.exit(f"backup.sh fails when run from another directory: {r.stderr.strip()[-300:]}")
lines = [l.strip() for l in open("cron/crontab.txt")]
entries = [l for l in lines if l and not l.startswith("#") and not re.match(r"^[A-Za-z_]\w*=", l)]
old = ("/usr/local/bin/reindex", "/usr/local/bin/check-certs", "/srv/uploads/tmp")
for keep in old:
    if sum(keep in e for e in entries) != 1:
        sys.exit(f"the existing entry running {keep} was removed or duplicated")
new = [e for e in entries if not any(k in e for k in old)]
if len(new) != 2:
    sys.exit(f"expected 2 new crontab entries, found {len(new)}")
backup = [e for e in new if "backup.sh" in e]
prune = [e for e in new if "backup.sh" not in e]
if len(backup) != 1 or len(prune) != 1:
    sys.exit("need one entry running backup.sh and one pruning entry")
for e in new:
    f = e.split(None, 5)
    if len(f) < 6 or not all(re.fullmatch(r"[\d*/,-]+", x) for x in f[:5]):
        sys.exit(f"malformed entry: {e}")
    m = re.search(r"[^2]>>?\s*(\S+)", e)
    if not m or "2>&1" not in e or not m.group(1).startswith("/"):
        sys.exit(f"no absolute log redirection (>> /path 2>&1) in: {e}")
    if not os.path.isdir(os.path.dirname(m.group(1))):
        sys.exit(f"the log directory of {m.group(1)} does not exist")
b = backup[0].split(None, 5)
if b[:5] != ["30", "2", "*", "*", "*"]:
    sys.exit("the backup entry is not scheduled daily at 02:30")
if not b[5].startswith(os.path.join(root, "scripts/backup.sh")):
    sys.exit("the backup entry must call the script by its absolute path")
cmd = prune[0].split(None, 5)[5]
if os.path.join(root, "backups") not in cmd:
    sys.exit("the prune entry must use the absolute backups/ path")
if not re.search(r"-mtime \+1[34]\b|-mmin \+20160\b", cmd) or "-delete" not in cmd:
    sys.exit("the prune entry does not delete archives older than 14 days")
print(f"ok: {len(archives)} archive(s), backup and prune entries in place")
"""


# ---------------------------------------------------------------- auto-build-etl-runner


def _etl_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    regions = rng.sample(["north", "south", "east", "west", "central"], 4)
    rows = ["order_id,region,amount,status"]
    for n in range(30):
        amount = "" if rng.random() < 0.1 else f"{rng.uniform(5, 400):.2f}"
        status = rng.choices(["paid", "refunded", "pending"], [6, 1, 2])[0]
        rows.append(f"{5000 + n},{rng.choice(regions)},{amount},{status}")
    extract = textwrap.dedent(
        """\
        \"\"\"Extract: read pipeline/input/raw.csv, drop rows without an amount.\"\"\"
        import csv

        with open("pipeline/input/raw.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["amount"].strip()]
        with open("work/extracted.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["order_id", "region", "amount", "status"])
            writer.writeheader()
            writer.writerows(rows)
        print(f"extract: {len(rows)} rows -> work/extracted.csv")
        """
    )
    transform = textwrap.dedent(
        """\
        \"\"\"Transform: keep paid orders and total them per region.\"\"\"
        import csv
        import json

        totals = {}
        with open("work/extracted.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row["status"] != "paid":
                    continue
                region = row["region"]
                t = totals.setdefault(region, {"region": region, "orders": 0, "revenue": 0.0})
                t["orders"] += 1
                t["revenue"] = round(t["revenue"] + float(row["amount"]), 2)
        with open("work/transformed.json", "w") as f:
            json.dump(sorted(totals.values(), key=lambda t: t["region"]), f, indent=2)
        print(f"transform: {len(totals)} regions -> work/transformed.json")
        """
    )
    load = textwrap.dedent(
        """\
        \"\"\"Load: write work/transformed.json into work/warehouse.db.\"\"\"
        import json
        import sqlite3
        import sys

        with open("work/transformed.json") as f:
            records = json.load(f)
        if not records:
            # Known weak spot: an empty batch would wipe the table, so the load refuses it.
            sys.exit("load: no records in work/transformed.json; refusing to truncate the table")
        db = sqlite3.connect("work/warehouse.db")
        db.execute(
            "CREATE TABLE IF NOT EXISTS revenue_by_region"
            " (region TEXT PRIMARY KEY, orders INTEGER, revenue REAL)"
        )
        db.execute("DELETE FROM revenue_by_region")
        db.executemany("INSERT INTO revenue_by_region VALUES (:region, :orders, :revenue)", records)
        db.commit()
        print(f"load: {len(records)} rows -> work/warehouse.db")
        """
    )
    files = {
        "pipeline/input/raw.csv": "\n".join(rows) + "\n",
        "pipeline/extract.py": extract,
        "pipeline/transform.py": transform,
        "pipeline/load.py": load,
    }
    return Fixture(files), {"regions": len(regions)}


_ETL_RUNNER_V1 = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Run the ETL steps in order (extract -> transform -> load); stop at the first failure.
    # Each step's start time, end time and exit code go to logs/pipeline.log.
    set -uo pipefail
    cd "$(dirname "$0")/.."
    mkdir -p logs
    LOG=logs/pipeline.log
    ts() { date '+%Y-%m-%dT%H:%M:%S'; }

    echo "$(ts) pipeline start" >> "$LOG"
    for step in extract transform load; do
      echo "$(ts) $step start" >> "$LOG"
      python3 "pipeline/$step.py"
      rc=$?
      echo "$(ts) $step end exit=$rc" >> "$LOG"
      if [ "$rc" -ne 0 ]; then
        echo "$(ts) pipeline FAILED at $step (exit $rc)" >> "$LOG"
        echo "pipeline failed at step $step (exit $rc); see $LOG" >&2
        exit "$rc"
      fi
    done
    echo "$(ts) pipeline ok" >> "$LOG"
    echo "pipeline ok: extract, transform and load all exited 0"
    """
)
_ETL_RUNNER_V2 = _ETL_RUNNER_V1.replace("mkdir -p logs\n", "mkdir -p logs work\n")


def _etl_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls -R pipeline && head -n 3 pipeline/input/raw.csv", say="Looking at the steps."),
        read("pipeline/extract.py", say="Checking what extract reads and writes."),
    ]
    yield write("scripts/run_pipeline.sh", _ETL_RUNNER_V1, say="Writing the runner.")
    run = yield sh("bash scripts/run_pipeline.sh", say="Running the pipeline end to end.")
    if not run.ok:
        yield read("logs/pipeline.log", say="It stopped at a step; reading the log.")
        yield write(
            "scripts/run_pipeline.sh",
            _ETL_RUNNER_V2,
            say="extract can't write work/extracted.csv because work/ doesn't exist; "
            "the runner creates it now.",
        )
        run = yield sh("bash scripts/run_pipeline.sh")
    steps = "; ".join(line.split(" -> ")[0] for line in run.stdout.splitlines()[:3])
    yield Reply(
        f"scripts/run_pipeline.sh runs extract, transform and load in order ({steps}) and "
        "logs start, end and exit code per step to logs/pipeline.log. The first run showed it "
        "halting with a non-zero status when extract failed; the second run succeeded."
    )
    _, table = yield [
        sh("tail -n 8 logs/pipeline.log", say="Checking the log and the loaded table."),
        sh("sqlite3 work/warehouse.db 'select region, orders, revenue from revenue_by_region'"),
    ]
    rows = len(table.stdout.strip().splitlines()) if table.ok else "?"
    yield Reply(f"Checked: every step logged exit=0 in the last run and {rows} regions loaded.")


_ETL_VERIFY = r"""
import os, re, shutil, sqlite3, subprocess, sys, tempfile
EXIT = r"exit(?:[ _]?code|[ _]?status)?\W{0,3}"
if not os.path.isfile("scripts/run_pipeline.sh"):
    sys.exit("scripts/run_pipeline.sh is missing")
try:
    log = open("logs/pipeline.log").read()
except FileNotFoundError:
    sys.exit("logs/pipeline.log is missing")
for step in ("extract", "transform", "load"):
    if not re.search(rf"\d{{4}}-\d\d-\d\d.*\b{step}\b.*start", log):
        sys.exit(f"no timestamped start line for {step} in logs/pipeline.log")
    if not re.search(rf"\d{{4}}-\d\d-\d\d.*\b{step}\b.*{EXIT}0\b", log):
        sys.exit(f"no successful exit code logged for {step}")
try:
    db = sqlite3.connect("work/warehouse.db")
    n = db.execute("select count(*) from revenue_by_region").fetchone()[0]
except sqlite3.Error as e:
    sys.exit(f"the load step never succeeded: {e}")
if not n:
    sys.exit("work/warehouse.db has no rows")

def trial(mutate):
    tmp = tempfile.mkdtemp()
    shutil.copytree("pipeline", f"{tmp}/pipeline")
    shutil.copytree("scripts", f"{tmp}/scripts")
    mutate(tmp)
    r = subprocess.run(["bash", f"{tmp}/scripts/run_pipeline.sh"], cwd=tmp,
                       capture_output=True, text=True, timeout=30)
    path = f"{tmp}/logs/pipeline.log"
    return r, open(path).read() if os.path.exists(path) else ""

r, tlog = trial(lambda d: open(f"{d}/pipeline/transform.py", "w").write("raise SystemExit(3)\n"))
if r.returncode == 0:
    sys.exit("the runner exits 0 when transform fails")
if re.search(r"\bload\b.*start", tlog):
    sys.exit("the runner went on to load after transform failed")
if not re.search(rf"\btransform\b.*{EXIT}3\b", tlog):
    sys.exit("the runner does not log transform's exit code 3")
header = open("pipeline/input/raw.csv").readline()
r, tlog = trial(lambda d: open(f"{d}/pipeline/input/raw.csv", "w").write(header))
if r.returncode == 0:
    sys.exit("the runner exits 0 when load fails on an empty batch")
print(f"ok: logged run, {n} rows loaded, halts on failure")
"""


# ---------------------------------------------------------------- auto-fix-invalid-cron-entries

# (documented schedule, intended expression, a broken variant or None, command)
_CRON_JOBS = [
    ("every 15 minutes", "*/15 * * * *", "0/15 * * * *", "/opt/jobs/poll_queue.sh"),
    ("every 2 hours, on the hour", "0 */2 * * *", "0 /2 * * *", "/opt/jobs/pull_rates.sh"),
    ("daily at midnight (00:00)", "0 0 * * *", "0 24 * * *", "/opt/jobs/close_day.sh"),
    ("on the 1st of every month at 04:00", "0 4 1 * *", "0 4 0 * *", "/opt/jobs/invoice_run.sh"),
    ("daily at 23:30", "30 23 * * *", "23 30 * * *", "/opt/jobs/rotate_audit.sh"),
    ("on the 15th of every month at 12:00", "0 12 15 * *", "0 12 * 15 *", "/opt/jobs/mid_close.sh"),
    ("every Monday at 07:30", "30 7 * * 1", "30 7 * mon *", "/opt/jobs/weekly_report.sh"),
    ("on January 1st at 00:05", "5 0 1 1 *", "5 0 1 * jan", "/opt/jobs/yearly_archive.sh"),
    ("every Saturday at 22:00", "0 22 * * 6", "0 22 * sat *", "/opt/jobs/purge_tmp.sh"),
    ("every Sunday at 03:00", "0 3 * * 0", "0 3 * sun *", "/opt/jobs/vacuum_db.sh"),
    ("every 5 minutes, 09:00-17:55 on weekdays", "*/5 9-17 * * 1-5", None, "/opt/jobs/sync.sh"),
    ("daily at 02:00", "0 2 * * *", None, "/opt/jobs/backup_db.sh"),
    ("every hour at minute 10", "10 * * * *", None, "/opt/jobs/refresh_cache.sh"),
    ("weekdays at 18:15", "15 18 * * 1-5", None, "/opt/jobs/send_digest.sh"),
    ("every 30 minutes", "*/30 * * * *", None, "/opt/jobs/health_ping.sh"),
]
_CRON_INTENDED = {comment: expr for comment, expr, _, _ in _CRON_JOBS}

_CRON_LINT = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Minimal crontab linter: checks the five schedule fields of every entry.

    Usage: lint.py CRONTAB. Exit status 1 when any entry is invalid.
    """
    import re
    import sys

    MONTH_NAMES = "jan feb mar apr may jun jul aug sep oct nov dec".split()
    MONTHS = {m: n for n, m in enumerate(MONTH_NAMES, 1)}
    DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
    FIELDS = [
        ("minute", 0, 59, {}),
        ("hour", 0, 23, {}),
        ("day-of-month", 1, 31, {}),
        ("month", 1, 12, MONTHS),
        ("day-of-week", 0, 6, DAYS),
    ]


    def check_field(text, name, lo, hi, names):
        errors = []
        for part in text.split(","):
            base, slash, step = part.partition("/")
            if slash:
                if not step.isdigit() or int(step) == 0:
                    errors.append(f"{name} field: bad step in {part!r}")
                if base != "*" and "-" not in base:
                    errors.append(f"{name} field: a step needs '*' or a range before '/': {part!r}")
                    continue
            if base == "*":
                continue
            for value in base.split("-", 1):
                if value.lower() in names:
                    number = names[value.lower()]
                elif value.isdigit():
                    number = int(value)
                else:
                    errors.append(f"{name} field: {value!r} is not a number or a {name} name")
                    continue
                if not lo <= number <= hi:
                    errors.append(f"{name} field: {number} is out of range {lo}-{hi}")
        return errors


    def main(path):
        problems = entries = 0
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#") or re.match(r"^[A-Za-z_]\\w*=", line):
                    continue
                entries += 1
                fields = line.split(None, 5)
                if len(fields) < 6:
                    errors = ["expected 5 schedule fields and a command"]
                else:
                    errors = []
                    for text, spec in zip(fields, FIELDS):
                        errors += check_field(text, *spec)
                for error in errors:
                    print(f"{path}:{lineno}: {error}")
                if errors:
                    print(f"    {line}")
                    problems += 1
        if problems:
            print(f"{problems} of {entries} entries are invalid")
            return 1
        print(f"{path}: all {entries} entries are valid")
        return 0


    if __name__ == "__main__":
        if len(sys.argv) != 2:
            sys.exit("usage: lint.py CRONTAB")
        sys.exit(main(sys.argv[1]))
    '''
)


def _cron_fix_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    breakable = [j for j in _CRON_JOBS if j[2] and "Sunday" not in j[0]]
    step_kind = [j for j in breakable if "/" in j[2]]
    range_kind = [j for j in breakable if j[0].startswith(("daily", "on the"))]
    broken = [next(j for j in _CRON_JOBS if "Sunday" in j[0])]
    broken.append(rng.choice(step_kind))
    broken.append(rng.choice([j for j in range_kind if j not in broken]))
    broken += rng.sample([j for j in breakable if j not in broken], 2)
    fine = rng.sample([j for j in _CRON_JOBS if j not in broken], 7)
    entries = broken + fine
    rng.shuffle(entries)
    lines = [
        "# jobs.crontab -- batch jobs for the billing host",
        "# Each entry is documented by the comment line directly above it.",
        "MAILTO=billing-ops@example.com",
        "",
    ]
    for job in entries:
        comment, intended, bad, cmd = job
        name = cmd.rsplit("/", 1)[1].removesuffix(".sh")
        expr = bad if job in broken else intended
        lines += [f"# {comment}", f"{expr} {cmd} >> /var/log/jobs/{name}.log 2>&1", ""]
    files = {"cron/jobs.crontab": "\n".join(lines), "cron/lint.py": _CRON_LINT}
    setup = (
        "python3 cron/lint.py cron/jobs.crontab > cron/lint_errors.txt; "
        "test -s cron/lint_errors.txt",
    )
    return Fixture(files, setup), {"broken": [j[3] for j in broken]}


def _cron_fix_playbook(ctx: Ctx) -> Playbook:
    errs, tab = yield [
        read("cron/lint_errors.txt", say="Reading the linter's report."),
        read("cron/jobs.crontab", say="And the crontab with its comments."),
    ]
    problems: dict[int, list[str]] = {}
    for n, msg in re.findall(r"jobs\.crontab:(\d+): (.+)", errs.stdout):
        problems.setdefault(int(n), []).append(msg)
    lines = tab.stdout.splitlines()
    changes = []  # (line, job, comment, was, now, problem)
    for n in sorted(problems):
        comment = lines[n - 2].lstrip("#").strip()
        fields = lines[n - 1].split(None, 5)
        now = _CRON_INTENDED[comment]
        if "Sunday" in comment:  # first attempt numbers weekdays Monday=1..Sunday=7
            now = now[:-1] + "7"
        lines[n - 1] = f"{now} {fields[5]}"
        changes.append([n, fields[5].split()[0], comment, " ".join(fields[:5]), now, problems[n]])
    yield write(
        "cron/jobs.crontab",
        "\n".join(lines) + "\n",
        say=f"Rewriting the {len(changes)} flagged schedules from their comments.",
    )
    lint = yield sh("python3 cron/lint.py cron/jobs.crontab", say="Re-running the linter.")
    if not lint.ok:
        # The linter only accepts 0-6 for day-of-week: Sunday is 0, not 7.
        for change in changes:
            if change[4].endswith(" * * 7"):
                yield edit(
                    "cron/jobs.crontab",
                    f"{change[4]} {change[1]}",
                    f"{change[4][:-1]}0 {change[1]}",
                    say="The linter wants day-of-week in 0-6; Sunday is 0, not 7.",
                )
                change[4] = change[4][:-1] + "0"
                change[5] = [*change[5], "Sunday written as 0 (the linter rejects 7)"]
        lint = yield sh("python3 cron/lint.py cron/jobs.crontab")
    note = ["# Fixes to cron/jobs.crontab", "", "| line | job | documented | was | now | why |"]
    note.append("|---|---|---|---|---|---|")
    for n, job, comment, was, now, why in changes:
        note.append(f"| {n} | {job} | {comment} | `{was}` | `{now}` | {'; '.join(why)} |")
    note.append("")
    note.append(f"After the fixes: `{lint.stdout.strip()}`")
    yield write("out/cron_fixes.md", "\n".join(note) + "\n", say="Writing the change note.")
    yield Reply(
        f"Fixed {len(changes)} entries in cron/jobs.crontab so each matches its comment; "
        f"the linter now says: {lint.stdout.strip()}. Each change is explained in "
        "out/cron_fixes.md."
    )
    relint, counted = yield [
        sh(
            "python3 cron/lint.py cron/jobs.crontab", say="Double-checking the linter and the note."
        ),
        sh("grep -c '^| [0-9]' out/cron_fixes.md"),
    ]
    rows = counted.stdout.strip() if counted.ok else "?"
    verdict = "passes" if relint.ok else "still reports errors"
    yield Reply(f"Checked: the linter {verdict} and the note has {rows} rows, one per fixed entry.")


_CRON_FIX_VERIFY_TEMPLATE = r"""
import json, os, re, subprocess, sys
EXPECTED = json.loads(__EXPECTED__)
MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
NAMES = {3: {m: i for i, m in enumerate(MONTHS, 1)},
         4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}}
RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]

def expand(expr):
    out = []
    for i, field in enumerate(expr.split()):
        lo, hi = RANGES[i]
        names = NAMES.get(i, {})
        vals = set()
        for part in field.split(","):
            base, _, step = part.partition("/")
            step = int(step) if step else 1
            if base == "*":
                a, b = lo, hi
            else:
                ends = [int(names.get(x.lower(), x)) for x in base.split("-")]
                a, b = ends[0], ends[-1]
            vals |= set(range(a, b + 1, step))
        out.append({v % 7 for v in vals} if i == 4 else vals)
    return out

r = subprocess.run(["python3", "cron/lint.py", "cron/jobs.crontab"], capture_output=True, text=True)
if r.returncode != 0:
    sys.exit("cron/lint.py still reports errors: " + r.stdout.strip()[-300:])
lines = [l.strip() for l in open("cron/jobs.crontab")]
seen = set()
for i, line in enumerate(lines):
    if not line or line.startswith("#") or re.match(r"^[A-Za-z_]\w*=", line):
        continue
    comment = lines[i - 1].lstrip("#").strip() if i else ""
    if comment not in EXPECTED:
        sys.exit(f"entry without its documenting comment: {line}")
    want, cmd = EXPECTED[comment]
    fields = line.split(None, 5)
    try:
        same = expand(" ".join(fields[:5])) == expand(want)
    except (ValueError, IndexError):
        same = False
    if not same:
        sys.exit(f"'{line}' does not run {comment}")
    if not fields[5].startswith(cmd):
        sys.exit(f"the command of the '{comment}' entry was changed")
    seen.add(comment)
if len(seen) != 12:
    sys.exit(f"expected 12 documented entries, found {len(seen)}")
try:
    note = open("out/cron_fixes.md").read()
except FileNotFoundError:
    sys.exit("out/cron_fixes.md is missing")
broken = re.findall(r"^    \S+ \S+ \S+ \S+ \S+ (\S+)", open("cron/lint_errors.txt").read(), re.M)
for cmd in broken:
    if os.path.basename(cmd) not in note:
        sys.exit(f"the note does not explain the change to {cmd}")
print(f"ok: 12 entries match their comments, {len(broken)} fixes explained")
"""
_CRON_FIX_VERIFY = _CRON_FIX_VERIFY_TEMPLATE.replace(
    "__EXPECTED__",
    repr(json.dumps({comment: [expr, cmd] for comment, expr, _, cmd in _CRON_JOBS})),
)


# ---------------------------------------------------------------- auto-add-retry-backoff


def _fetch_fails(seed: str, call: int) -> bool:
    return hashlib.sha256(f"{seed}:{call}".encode()).digest()[0] < 128


_FLAKY_FETCH = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Fetch the partner price feed into data/feed.json.

    The partner API is unreliable: about half of all calls fail with a connection reset.
    (Offline simulation: whether call N fails is decided by a hash of SEED and N.)
    """
    import hashlib
    import json
    import os
    import sys

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    SEED = "@SEED@"
    STATE = os.path.join(ROOT, ".state", "fetch_calls")
    ITEMS = @ITEMS@

    os.makedirs(os.path.dirname(STATE), exist_ok=True)
    try:
        with open(STATE) as f:
            call = int(f.read() or 0) + 1
    except FileNotFoundError:
        call = 1
    with open(STATE, "w") as f:
        f.write(str(call))

    if hashlib.sha256(f"{SEED}:{call}".encode()).digest()[0] < 128:
        print(f"fetch: connection reset by partner API (call {call})", file=sys.stderr)
        sys.exit(1)
    os.makedirs(os.path.join(ROOT, "data"), exist_ok=True)
    with open(os.path.join(ROOT, "data", "feed.json"), "w") as f:
        json.dump({"call": call, "items": ITEMS}, f, indent=1)
    print(f"fetch: {len(ITEMS)} items -> data/feed.json")
    '''
)

_SYNC_SH = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Nightly sync: fetch the partner price feed, then publish it for the shop.
    set -euo pipefail
    cd "$(dirname "$0")/.."

    echo "sync: fetching partner feed"
    python3 scripts/flaky_fetch.py
    mkdir -p published
    cp data/feed.json published/prices.json
    echo "sync: published $(wc -c < published/prices.json) bytes"
    """
)


def _retry_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    while True:  # a seed whose first call fails and which never fails 4 times in a row after
        seed = f"{rng.getrandbits(32):08x}"
        outcomes = [_fetch_fails(seed, n) for n in range(1, 81)]
        longest = run = 0
        for failed in outcomes[1:]:
            run = run + 1 if failed else 0
            longest = max(longest, run)
        if outcomes[0] and longest <= 3:
            break
    items = [
        {"sku": f"P-{rng.randint(100, 999)}", "price": round(rng.uniform(1, 90), 2)}
        for _ in range(rng.randint(4, 9))
    ]
    fetch = _FLAKY_FETCH.replace("@SEED@", seed).replace("@ITEMS@", json.dumps(items))
    files = {"scripts/sync.sh": _SYNC_SH, "scripts/flaky_fetch.py": fetch}
    return Fixture(files, ("chmod +x scripts/sync.sh scripts/flaky_fetch.py",)), {"seed": seed}


_RETRY_V1 = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Usage: retry.sh MAX_ATTEMPTS BASE_DELAY CMD [ARGS...]
    # Runs CMD until it succeeds or MAX_ATTEMPTS is reached, sleeping BASE_DELAY * 2^(n-1)
    # seconds after the n-th failure. Logs every attempt to stderr and exits with CMD's last
    # exit code.
    set -uo pipefail
    if [ $# -lt 3 ]; then
      echo "usage: $0 MAX_ATTEMPTS BASE_DELAY CMD [ARGS...]" >&2
      exit 64
    fi
    max=$1
    base=$2
    shift 2
    attempt=1
    while :; do
      echo "retry: attempt $attempt/$max: $*" >&2
      "$@"
      rc=$?
      if [ "$rc" -eq 0 ]; then
        echo "retry: succeeded on attempt $attempt/$max" >&2
        exit 0
      fi
      if [ "$attempt" -ge "$max" ]; then
        echo "retry: giving up after $attempt attempts (exit $rc)" >&2
        exit "$rc"
      fi
      delay=$(( base * 2 ** (attempt - 1) ))
      echo "retry: exit $rc, next attempt in ${delay}s" >&2
      sleep "$delay"
      attempt=$((attempt + 1))
    done
    """
)
_RETRY_V2 = _RETRY_V1.replace(
    "delay=$(( base * 2 ** (attempt - 1) ))",
    "# bash arithmetic is integer-only; awk handles fractional delays like 0.1\n"
    '  delay=$(awk -v b="$base" -v n="$attempt" \'BEGIN { printf "%g", b * 2 ^ (n - 1) }\')',
)


def _retry_playbook(ctx: Ctx) -> Playbook:
    sync, _ = yield [
        read("scripts/sync.sh", say="Reading the sync job."),
        read("scripts/flaky_fetch.py", say="And the flaky fetch it calls."),
    ]
    yield write("scripts/retry.sh", _RETRY_V1, say="Writing a reusable retry helper.")
    trial = yield sh(
        "chmod +x scripts/retry.sh && scripts/retry.sh 5 0.1 python3 scripts/flaky_fetch.py",
        say="Trying it on the flaky fetch with a 0.1 s base delay.",
    )
    wrapped = sync.stdout.replace(
        "python3 scripts/flaky_fetch.py", "scripts/retry.sh 5 0.1 python3 scripts/flaky_fetch.py"
    )
    wrap = patch(
        _udiff("scripts/sync.sh", sync.stdout, wrapped), say="Wrapping the fetch in sync.sh."
    )
    if not trial.ok:
        # bash $(( )) is integer-only: 0.1 * 2 ** n is a syntax error after the first failure.
        yield write(
            "scripts/retry.sh",
            _RETRY_V2,
            say="Bash arithmetic can't do the 0.1 s delay; computing it with awk instead.",
        )
        trial, _ = yield [
            sh(
                "scripts/retry.sh 5 0.1 python3 scripts/flaky_fetch.py",
                say="Trying the helper again.",
                timeout_s=60,
            ),
            wrap,
        ]
    else:
        yield wrap
    run = yield sh("bash scripts/sync.sh", say="Running the sync job.", timeout_s=60)
    tries = trial.stderr.count("retry: attempt")
    yield Reply(
        "scripts/retry.sh takes MAX_ATTEMPTS and BASE_DELAY, logs every attempt, doubles the "
        f"delay after each failure and returns the command's last exit code. The test run needed "
        f"{tries} attempt(s); sync.sh now calls the fetch through it "
        f"({run.stdout.strip().splitlines()[-1] if run.ok else 'sync failed'})."
    )
    check = yield sh(
        "for i in 1 2 3 4; do bash scripts/sync.sh > /tmp/sync.$i.log 2>&1 || "
        '{ echo "run $i failed"; exit 1; }; grep -h "retry: succeeded" /tmp/sync.$i.log; done',
        say="Running the sync four more times to be sure.",
        timeout_s=90,
    )
    ok_runs = check.stdout.count("succeeded") if check.ok else 0
    yield Reply(f"Checked: {ok_runs} of 4 further sync runs succeeded, retrying where needed.")


_RETRY_VERIFY = r"""
import os, subprocess, sys, tempfile, time
if not os.path.isfile("scripts/retry.sh"):
    sys.exit("scripts/retry.sh is missing")

def retry(*args):
    cmd = ["bash", "scripts/retry.sh", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=40)

r = retry("3", "0", "sh", "-c", "exit 7")
if r.returncode != 7:
    sys.exit(f"retry.sh must return the command's final exit code 7, got {r.returncode}")
if sum("attempt" in l.lower() for l in (r.stdout + r.stderr).splitlines()) < 3:
    sys.exit("retry.sh does not log each attempt")
if retry("3", "0", "true").returncode != 0:
    sys.exit("retry.sh fails on a command that succeeds")
counter = os.path.join(tempfile.mkdtemp(), "n")
flaky = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
t0 = time.time()
r = retry("5", "0.2", "bash", "-c", flaky)
took = time.time() - t0
if r.returncode != 0:
    sys.exit(f"retry.sh did not succeed on the third attempt: {r.stderr.strip()[-200:]}")
if took < 0.55:
    sys.exit(f"no exponential backoff: 3 attempts with base delay 0.2 s took {took:.2f}s")
sync = open("scripts/sync.sh").read()
calls = [l for l in sync.splitlines() if "flaky_fetch" in l and not l.lstrip().startswith("#")]
if not calls or not all("retry.sh" in l for l in calls):
    sys.exit("sync.sh still calls flaky_fetch.py without retry.sh")
for i in range(3):
    r = subprocess.run(["bash", "scripts/sync.sh"], capture_output=True, text=True, timeout=40)
    if r.returncode != 0:
        sys.exit(f"sync.sh run {i + 1} failed: {r.stderr.strip()[-200:]}")
print("ok: retry.sh backs off and propagates exit codes; sync.sh succeeds reliably")
"""


# ---------------------------------------------------------------- auto-run-inbox-watcher


def _watcher_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    header = "id,name,email,signup_date"
    wrong = ["id;name;email;signup_date", "id,name,mail,signup_date", "id,name,email"]
    names = [f"signups_{n:02d}.csv" for n in range(1, 7)]
    bad = set(rng.sample(names, 2))
    files = {"inbox/schema.txt": header + "\n"}
    for name in names:
        rows = [rng.choice(wrong) if name in bad else header]
        for _ in range(rng.randint(3, 7)):
            who = rng.choice(["ana", "ben", "chen", "dara", "eli", "fay"])
            uid, day = rng.randint(100, 999), rng.randint(1, 28)
            rows.append(f"{uid},{who},{who}{uid}@example.com,2026-02-{day:02d}")
        files[f"samples/{name}"] = "\n".join(rows) + "\n"
    return Fixture(files), {"rejected": sorted(bad)}


_WATCH_V1 = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Watch inbox/ for CSV files: move each one to processed/ when its header matches
    inbox/schema.txt, otherwise to rejected/. One line per file goes to logs/watcher.log."""
    import argparse
    import os
    import signal
    import sys
    import time
    from datetime import datetime

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    INBOX = os.path.join(ROOT, "inbox")
    DONE = os.path.join(ROOT, "processed")
    BAD = os.path.join(ROOT, "rejected")
    LOG = os.path.join(ROOT, "logs", "watcher.log")


    def log(msg):
        with open(LOG, "a") as f:
            f.write(f"{datetime.now().isoformat(timespec='seconds')} {msg}\\n")


    def handle(name, expected):
        path = os.path.join(INBOX, name)
        with open(path, newline="") as f:
            header = f.readline().strip()
        if header == expected:
            os.replace(path, os.path.join(DONE, name))
            log(f"{name}: header ok -> processed/")
        else:
            os.replace(path, os.path.join(BAD, name))
            log(f"{name}: unexpected header {header!r} -> rejected/")


    def scan(expected):
        names = sorted(n for n in os.listdir(INBOX) if n.endswith(".csv"))
        for name in names:
            handle(name, expected)
        return len(names)


    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one clean shutdown, even if signalled twice
        log("watcher stopped (SIGTERM)")
        sys.exit(0)


    def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("--once", action="store_true", help="handle what is there, then exit")
        ap.add_argument("--interval", type=float, default=1.0, help="seconds between scans")
        args = ap.parse_args()
        os.makedirs(os.path.dirname(LOG), exist_ok=True)
        with open(os.path.join(INBOX, "schema.txt")) as f:
            expected = f.read().strip()
        signal.signal(signal.SIGTERM, stop)
        log(f"watcher started (pid {os.getpid()})")
        while True:
            handled = scan(expected)
            if args.once:
                log(f"watcher stopped (--once, {handled} file(s))")
                return
            time.sleep(args.interval)


    if __name__ == "__main__":
        main()
    '''
)
_WATCH_V2 = _WATCH_V1.replace(
    "    os.makedirs(os.path.dirname(LOG), exist_ok=True)\n",
    "    for folder in (os.path.dirname(LOG), DONE, BAD):\n"
    "        os.makedirs(folder, exist_ok=True)\n",
)


def _watcher_playbook(ctx: Ctx) -> Playbook:
    schema = yield read("inbox/schema.txt", say="Reading the expected header.")
    yield write("scripts/watch_inbox.py", _WATCH_V1, say="Writing the watcher.")
    smoke = yield sh(
        'ls samples && cp "samples/$(ls samples | head -n 1)" inbox/ && '
        "python3 scripts/watch_inbox.py --once",
        say="Smoke-testing it on the first sample with --once.",
    )
    names = [n for n in smoke.stdout.split() if n.endswith(".csv")]
    if not smoke.ok:
        yield write(
            "scripts/watch_inbox.py",
            _WATCH_V2,
            say="processed/ and rejected/ don't exist yet, so the move fails; "
            "the watcher now creates them at start-up.",
        )
    job = yield start(
        "python3 scripts/watch_inbox.py --interval 0.5",
        say="Starting the watcher in the background.",
    )
    jid = job.extras.get("job", "job1")
    drop = yield sh(
        "for f in samples/*.csv; do n=${f#samples/}; "
        '[ -e "processed/$n" ] || [ -e "rejected/$n" ] || [ -e "inbox/$n" ] && continue; '
        'cp "$f" "inbox/.$n.part" && mv "inbox/.$n.part" "inbox/$n"; sleep 0.4; done; '
        "sleep 2; cat logs/watcher.log",
        say="Dropping the other samples into inbox/ while it runs.",
    )
    alive = yield poll(jid, say="Making sure the watcher is still up after the drops.")
    stopped = yield kill(jid, say="Stopping the watcher.")
    n_ok = drop.stdout.count("-> processed/")
    n_bad = drop.stdout.count("-> rejected/")
    yield Reply(
        f"scripts/watch_inbox.py ran in the background (running: {alive.extras.get('running')}) "
        f"and handled all {len(names) or n_ok + n_bad} samples: {n_ok} moved to processed/, "
        f"{n_bad} whose header differs from {schema.stdout.strip()!r} moved to rejected/, one "
        "line each in logs/watcher.log. It was stopped with SIGTERM and exited with code "
        f"{stopped.extras.get('job_exit_code')}."
    )
    check = yield sh(
        "tail -n 2 logs/watcher.log; ls inbox; "
        "pgrep -af '[w]atch_inbox' || echo 'no watcher running'",
        say="Confirming the inbox is empty and nothing is left running.",
    )
    last = check.stdout.strip().splitlines()[-1] if check.ok else "?"
    yield Reply(f"Checked: only schema.txt is left in inbox/, and {last}.")


_WATCHER_VERIFY = r"""
import os, sys
if not os.path.isfile("scripts/watch_inbox.py"):
    sys.exit("scripts/watch_inbox.py is missing")
schema = open("inbox/schema.txt").read().strip()
samples = sorted(os.listdir("samples"))
valid = {n for n in samples if open(f"samples/{n}").readline().strip() == schema}
listed = lambda d: set(os.listdir(d)) if os.path.isdir(d) else set()
if listed("processed") != valid:
    sys.exit(f"processed/ should hold exactly {sorted(valid)}, has {sorted(listed('processed'))}")
if listed("rejected") != set(samples) - valid:
    sys.exit(f"rejected/ should hold the other samples, has {sorted(listed('rejected'))}")
left = [n for n in os.listdir("inbox") if n.endswith(".csv")]
if left:
    sys.exit(f"files still waiting in inbox/: {left}")
try:
    log = open("logs/watcher.log").read()
except FileNotFoundError:
    sys.exit("logs/watcher.log is missing")
for n in samples:
    if n not in log:
        sys.exit(f"logs/watcher.log has no line for {n}")
if "stop" not in log.strip().splitlines()[-1].lower():
    sys.exit("the watcher was not stopped cleanly (no final stop line in the log)")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"watch_inbox.py" in cmd:
        sys.exit(f"a watcher is still running (pid {pid})")
print(f"ok: {len(valid)} processed, {len(samples) - len(valid)} rejected, watcher stopped")
"""


# ---------------------------------------------------------------- auto-convert-cron-to-timers


def _timers_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    day = rng.randrange(7)
    day_name = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"][day]
    daily = (rng.choice([0, 15, 30, 45]), rng.randint(1, 4))
    weekly_h, monthly_h = rng.randint(3, 6), rng.randint(5, 8)
    digest = (rng.choice([0, 15, 30, 45]), rng.randint(6, 9))
    hourly = rng.choice([5, 10, 20])
    jobs = [
        ("nightly database dump", f"{daily[0]} {daily[1]} * * *", "db_dump.sh --compress"),
        (
            f"weekly cleanup of stale sessions, {day_name}s",
            f"0 {weekly_h} * * {day}",
            "purge_sessions.sh",
        ),
        ("poll the upload queue every fifteen minutes", "*/15 * * * *", "poll_queue.sh"),
        (
            "monthly invoices on the first of the month",
            f"0 {monthly_h} 1 * *",
            "monthly_invoices.sh --send",
        ),
        ("weekday digest email", f"{digest[0]} {digest[1]} * * 1-5", "send_digest.sh"),
        ("hourly cache warm-up", f"{hourly} * * * *", "warm_cache.sh"),
    ]
    rng.shuffle(jobs)
    lines = [
        "# Legacy crontab of the reporting host -- being migrated to systemd timers.",
        "MAILTO=reports-ops@example.com",
        "PATH=/opt/report/bin:/usr/local/bin:/usr/bin:/bin",
        f"APP_ENV={rng.choice(['production', 'prod-eu'])}",
        "",
    ]
    for comment, expr, cmd in jobs:
        lines += [f"# {comment}", f"{expr} /opt/report/bin/{cmd}", ""]
    return Fixture({"cron/legacy.crontab": "\n".join(lines)}), {"jobs": len(jobs)}


_CRON2TIMERS_V1 = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Convert cron/legacy.crontab into systemd .service/.timer pairs under units/ and
    document the mapping in out/cron_to_timers.md."""
    import os

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


    def num(field):
        """A cron minute/hour/day/month field in OnCalendar syntax."""
        if field == "*":
            return "*"
        if field.startswith("*/"):
            return f"00/{int(field[2:]):02d}"
        return ",".join("..".join(f"{int(x):02d}" for x in p.split("-")) for p in field.split(","))


    def weekdays(field):
        if field == "*":
            return ""
        days = ("..".join(DAYS[int(x)] for x in p.split("-")) for p in field.split(","))
        return ",".join(days) + " "


    def on_calendar(minute, hour, dom, month, dow):
        return f"{weekdays(dow)}*-{num(month)}-{num(dom)} {num(hour)}:{num(minute)}:00"


    def parse(path):
        env, jobs, comment = {}, [], ""
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                if line.startswith("#"):
                    comment = line.lstrip("# ")
                    continue
                minute, hour, dom, month, dow, command = line.split(None, 5)
                jobs.append({"schedule": (minute, hour, dom, month, dow), "command": command,
                             "comment": comment})
        return env, jobs


    def main():
        env, jobs = parse(os.path.join(ROOT, "cron", "legacy.crontab"))
        os.makedirs(os.path.join(ROOT, "units"), exist_ok=True)
        os.makedirs(os.path.join(ROOT, "out"), exist_ok=True)
        rows = []
        for job in jobs:
            script = os.path.basename(job["command"].split()[0])
            name = script.rsplit(".", 1)[0].replace("_", "-")
            calendar = on_calendar(*job["schedule"])
            lines = ["[Unit]", f"Description={job['comment']} (migrated from cron)", "",
                     "[Service]", "Type=oneshot"]
            for key, value in env.items():
                if key == "MAILTO":  # no systemd equivalent; failures show up in the journal
                    lines.append(f"# cron MAILTO={value}: use OnFailure= for alerts")
                else:
                    lines.append(f"Environment={key}={value}")
            lines.append(f"ExecStart={job['command']}")
            with open(os.path.join(ROOT, "units", f"{name}.service"), "w") as f:
                f.write("\\n".join(lines) + "\\n")
            timer = ["[Unit]", f"Description=Timer for {name}.service", "", "[Timer]",
                     f"OnCalendar={calendar}", "Persistent=true", f"Unit={name}.service", "",
                     "[Install]", "WantedBy=timers.target"]
            with open(os.path.join(ROOT, "units", f"{name}.timer"), "w") as f:
                f.write("\\n".join(timer) + "\\n")
            cron = " ".join(job["schedule"])
            units = f"{name}.service / {name}.timer"
            rows.append(f"| `{cron}` | {job['comment']} | {units} | `{calendar}` |")
            print(f"{cron:<16} -> {name}.timer  OnCalendar={calendar}")
        env_note = ", ".join(f"{k}" for k in env if k != "MAILTO")
        with open(os.path.join(ROOT, "out", "cron_to_timers.md"), "w") as f:
            f.write("# cron/legacy.crontab -> systemd timers\\n\\n")
            f.write("| cron schedule | job | units | OnCalendar |\\n|---|---|---|---|\\n")
            f.write("\\n".join(rows) + "\\n\\n")
            f.write(f"Environment= lines in every service: {env_note}. MAILTO has no systemd "
                    "equivalent; it is kept as a comment (use OnFailure= for alerts).\\n")
        print(f"{len(jobs)} jobs converted")


    if __name__ == "__main__":
        main()
    '''
)
_CRON2TIMERS_V2 = _CRON2TIMERS_V1.replace("import os\n", "import os\nimport re\n").replace(
    "            minute, hour, dom, month, dow, command = line.split(None, 5)\n",
    '            assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)\n'
    "            if assignment:  # MAILTO=..., PATH=... apply to every job\n"
    "                env[assignment.group(1)] = assignment.group(2).strip('\"')\n"
    "                continue\n"
    "            minute, hour, dom, month, dow, command = line.split(None, 5)\n",
)


def _timers_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls cron && grep -c . cron/legacy.crontab", say="Looking at the legacy crontab."),
        read("cron/legacy.crontab", say="Reading the jobs and the variables at the top."),
    ]
    yield write("scripts/cron2timers.py", _CRON2TIMERS_V1, say="Writing a converter.")
    run = yield sh("python3 scripts/cron2timers.py", say="Converting.")
    if not run.ok:
        # MAILTO=/PATH= lines are not jobs: unpacking them into six fields fails.
        yield write(
            "scripts/cron2timers.py",
            _CRON2TIMERS_V2,
            say="The variable lines at the top aren't jobs; parsing them as Environment values.",
        )
        run = yield sh("python3 scripts/cron2timers.py")
    summary = run.stdout.strip().splitlines()[-1] if run.ok else "conversion failed"
    yield Reply(
        f"Converted cron/legacy.crontab ({summary}): each job has a .service with Environment= "
        "lines for PATH and APP_ENV and a .timer with the equivalent OnCalendar= under units/; "
        "the mapping table is in out/cron_to_timers.md."
    )
    timers, _ = yield [
        sh("ls units | wc -l && grep -H OnCalendar units/*.timer", say="Checking the timers"),
        sh("grep -c Environment= units/*.service", say="and the services."),
    ]
    n_units = timers.stdout.split()[0] if timers.ok else "?"
    yield Reply(
        f"Checked: {n_units} unit files, one OnCalendar per timer and Environment lines in "
        "each service."
    )


_TIMERS_VERIFY = r"""
import glob, os, re, shlex, sys
DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SHORT = {"minutely": "*-*-* *:*:00", "hourly": "*-*-* *:00:00", "daily": "*-*-* 00:00:00",
         "weekly": "Mon *-*-* 00:00:00", "monthly": "*-*-01 00:00:00"}

def expected(minute, hour, dom, month, dow):
    def num(f):
        if f == "*":
            return "*"
        if f.startswith("*/"):
            return "0/" + f[2:]
        return f.replace("-", "..")
    days = ""
    if dow != "*":
        days = ",".join("..".join(DAYS[int(x)] for x in p.split("-")) for p in dow.split(",")) + " "
    return f"{days}*-{num(month)}-{num(dom)} {num(hour)}:{num(minute)}:00"

def norm(spec):
    spec = SHORT.get(spec.strip().lower(), spec.strip())
    parts = spec.split()
    dow = parts.pop(0).lower().replace("-", "..") if parts and parts[0][0].isalpha() else "*"
    date = parts[0].split("-") if len(parts) == 2 else ["*", "*", "*"]
    if len(date) == 2:
        date = ["*", *date]
    clock = parts[-1].split(":")
    if len(clock) == 2:
        clock.append("00")
    fix = lambda tok: re.sub(r"\d+", lambda m: str(int(m.group())), tok)
    return (dow, *[fix(t) for t in date], *[fix(t) for t in clock])

env, jobs = {}, []
for line in open("cron/legacy.crontab"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    m = re.match(r"^([A-Za-z_]\w*)=(.*)$", line)
    if m:
        env[m.group(1)] = m.group(2)
    else:
        jobs.append(line.split(None, 5))
services = {}
for path in glob.glob("units/*.service"):
    text = open(path).read()
    m = re.search(r"^ExecStart=(.+)$", text, re.M)
    if m:
        services[m.group(1).strip()] = (path, text)
timers = glob.glob("units/*.timer")
if len(timers) != len(jobs):
    sys.exit(f"expected {len(jobs)} timers, found {len(timers)}")
try:
    mapping = open("out/cron_to_timers.md").read()
except FileNotFoundError:
    sys.exit("out/cron_to_timers.md is missing")
for *sched, cmd in jobs:
    if cmd not in services:
        sys.exit(f"no service runs {cmd}")
    path, text = services[cmd]
    envs = {}
    for value in re.findall(r"^Environment=(.+)$", text, re.M):
        for item in shlex.split(value):
            k, _, v = item.partition("=")
            envs[k] = v
    for k, v in env.items():
        if k != "MAILTO" and envs.get(k) != v:
            sys.exit(f"{path}: missing Environment={k}={v}")
    timer = path[: -len(".service")] + ".timer"
    if not os.path.exists(timer):
        sys.exit(f"{timer} is missing")
    ttext = open(timer).read()
    cals = re.findall(r"^OnCalendar=(.+)$", ttext, re.M)
    want = norm(expected(*sched))
    if not any(norm(c) == want for c in cals):
        sys.exit(f"{timer}: OnCalendar {cals} does not match cron '{' '.join(sched)}'")
    if not re.search(r"^WantedBy=timers\.target", ttext, re.M):
        sys.exit(f"{timer} has no [Install] WantedBy=timers.target")
    stem = os.path.basename(path)[: -len(".service")]
    if " ".join(sched) not in mapping or stem not in mapping:
        sys.exit(f"the mapping table does not document {' '.join(sched)} -> {stem}")
print(f"ok: {len(jobs)} jobs converted with matching OnCalendar and Environment")
"""


# ---------------------------------------------------------------- auto-make-setup-idempotent


def _setup_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    facts = {
        "port": rng.choice([8080, 8081, 8443, 9000]),
        "level": rng.choice(["info", "warn"]),
        "users": rng.sample(["alice", "bob", "carol", "dave", "erin", "frank", "grace"], 3),
    }
    setup = textwrap.dedent(
        f"""\
        #!/usr/bin/env bash
        # Provision the local app: env settings, data directories, user registry.
        set -euo pipefail
        cd "$(dirname "$0")/.."

        echo "configuring env/app.env"
        echo "APP_PORT={facts["port"]}" >> env/app.env
        echo "LOG_LEVEL={facts["level"]}" >> env/app.env
        echo "CACHE_DIR=data/cache" >> env/app.env

        echo "creating directories"
        rm -rf data/cache data/uploads
        mkdir -p data/cache data/uploads

        echo "registering users"
        mkdir -p registry
        for user in {" ".join(facts["users"])}; do
          echo "$user" >> registry/users.txt
        done
        echo "setup complete"
        """
    )
    app = rng.choice(["ledger", "tally", "quill"])
    files = {
        "scripts/setup.sh": setup,
        "env/app.env": f"APP_NAME={app}\nAPP_ENV=dev\n",
        "data/uploads/invoice-0001.txt": f"invoice 0001 for {app}\n",
    }
    return Fixture(files), facts


def _idempotent_setup(facts: dict, bump: str) -> str:
    users = " ".join(facts["users"])
    return textwrap.dedent(
        f"""\
        #!/usr/bin/env bash
        # Provision the local app: env settings, data directories, user registry.
        # Idempotent: every step checks the current state first; a second run changes nothing.
        set -euo pipefail
        cd "$(dirname "$0")/.."
        changes=0

        ensure_line() {{  # ensure_line FILE LINE: append LINE unless FILE already has it
          local file=$1 line=$2
          if ! grep -qxF -- "$line" "$file" 2>/dev/null; then
            echo "$line" >> "$file"
            echo "  + $file: $line"
            {bump}
          fi
        }}

        ensure_dir() {{  # ensure_dir DIR: create DIR when missing, never wipe it
          if [ ! -d "$1" ]; then
            mkdir -p "$1"
            echo "  + created $1/"
            {bump}
          fi
        }}

        echo "configuring env/app.env"
        ensure_line env/app.env "APP_PORT={facts["port"]}"
        ensure_line env/app.env "LOG_LEVEL={facts["level"]}"
        ensure_line env/app.env "CACHE_DIR=data/cache"

        echo "creating directories"
        ensure_dir data/cache
        ensure_dir data/uploads

        echo "registering users"
        ensure_dir registry
        for user in {users}; do
          ensure_line registry/users.txt "$user"
        done
        if [ "$changes" -eq 0 ]; then
          echo "setup complete: no changes (already up to date)"
        else
          echo "setup complete: $changes change(s)"
        fi
        """
    )


_SETUP_RUNS = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Run scripts/setup.sh twice and compare the directory state after each run.
    set -o pipefail
    cd "$(dirname "$0")/.."
    mkdir -p out
    snap() {
      find . -path ./out -prune -o -print | sort | while read -r p; do
        if [ -f "$p" ]; then sha256sum "$p"; else echo "dir $p"; fi
      done
    }
    {
      echo "== run 1"; bash scripts/setup.sh; snap > /tmp/setup_state1
      echo "== run 2"; bash scripts/setup.sh; snap > /tmp/setup_state2
      if diff /tmp/setup_state1 /tmp/setup_state2; then
        echo "== state after run 1 and run 2: identical ($(wc -l < /tmp/setup_state1) paths)"
      else
        echo "== state differs between the runs"; false
      fi
    } 2>&1 | tee out/setup_runs.log
    """
)


def _setup_playbook(ctx: Ctx) -> Playbook:
    current, _ = yield [
        read("scripts/setup.sh", say="Reading the setup script."),
        read("env/app.env", say="And the env file it edits."),
    ]
    probe = yield sh(
        "rm -rf /tmp/probe && cp -r . /tmp/probe && cd /tmp/probe && bash scripts/setup.sh "
        ">/dev/null && bash scripts/setup.sh >/dev/null && sort env/app.env | uniq -d && "
        "sort registry/users.txt | uniq -d",
        say="Running it twice on a scratch copy to see what piles up.",
    )
    dupes = len(probe.stdout.split())
    v1 = _idempotent_setup(ctx.facts, "((changes++))")
    yield patch(
        _udiff("scripts/setup.sh", current.stdout, v1),
        say=f"{dupes} lines got duplicated; making every step check before it changes anything.",
    )
    run = yield sh("bash scripts/setup.sh", say="Trying the new version.")
    checker = write(
        "scripts/check_idempotent.sh",
        _SETUP_RUNS,
        say="Writing a small check that runs setup twice and compares the state.",
    )
    if not run.ok:
        # ((changes++)) evaluates to 0 on the first change, a failing command under set -e.
        v2 = _idempotent_setup(ctx.facts, "changes=$((changes + 1))")
        yield [
            patch(
                _udiff("scripts/setup.sh", v1, v2),
                say="It died silently after the first change: ((changes++)) returns 1 when "
                "changes is 0, and set -e exits. Using changes=$((changes + 1)).",
            ),
            checker,
        ]
    else:
        yield checker
    runs = yield sh("bash scripts/check_idempotent.sh", say="Two consecutive runs.")
    same = "identical" if "identical" in runs.stdout else "NOT identical"
    yield Reply(
        "scripts/setup.sh now checks before appending lines, creating directories or "
        "registering users. Two consecutive runs are in out/setup_runs.log: the second one "
        f"reports no changes, and the directory state after both runs is {same}."
    )
    check = yield sh(
        "grep -c 'no changes' out/setup_runs.log; sort env/app.env | uniq -d | wc -l; "
        "cat registry/users.txt; ls data/uploads",
        say="Checking for duplicates and that uploads survived.",
    )
    dup_count = check.stdout.split()[1] if check.ok else "?"
    yield Reply(
        f"Checked: {dup_count} duplicate lines in env/app.env, each user registered once, and "
        "data/uploads/ kept its files."
    )


_SETUP_VERIFY = r"""
import hashlib, os, shutil, subprocess, sys, tempfile
for p in ("env/app.env", "registry/users.txt"):
    if not os.path.exists(p):
        sys.exit(f"{p} is missing: setup.sh was never run")
    lines = [l.strip() for l in open(p) if l.strip()]
    dupes = sorted({l for l in lines if lines.count(l) > 1})
    if dupes:
        sys.exit(f"duplicate lines in {p}: {dupes}")
if "APP_NAME=" not in open("env/app.env").read():
    sys.exit("the original env/app.env settings were lost")
if not os.path.exists("data/uploads/invoice-0001.txt"):
    sys.exit("data/uploads/ was wiped")
try:
    log = open("out/setup_runs.log").read().lower()
except FileNotFoundError:
    sys.exit("out/setup_runs.log is missing")
if "no change" not in log and "0 change" not in log:
    sys.exit("out/setup_runs.log does not show a run reporting no changes")

def state(root):
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not (d == root and x == "out")]
        out[os.path.relpath(d, root)] = "dir"
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out

def run(root):
    r = subprocess.run(["bash", "scripts/setup.sh"], cwd=root, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"setup.sh failed (exit {r.returncode}): {(r.stdout + r.stderr).strip()[-300:]}")
    return r.stdout.lower()

tmp = tempfile.mkdtemp() + "/t"
shutil.copytree(".", tmp, ignore=shutil.ignore_patterns("out"))
shutil.rmtree(f"{tmp}/registry")
run(tmp)
if not open(f"{tmp}/registry/users.txt").read().strip():
    sys.exit("setup.sh no longer registers users")
os.makedirs(f"{tmp}/data/cache", exist_ok=True)
open(f"{tmp}/data/cache/marker", "w").write("keep me\n")
before = state(tmp)
second = run(tmp)
if state(tmp) != before:
    sys.exit("a second run changed the directory")
if "no change" not in second and "0 change" not in second:
    sys.exit("a second run does not report that nothing changed")
print("ok: setup.sh is idempotent and the runs are logged")
"""


# ---------------------------------------------------------------- auto-write-log-rotation


def _rotation_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    def lines(n: int, svc: str) -> str:
        out, minute = [], rng.randint(0, 600)
        for _ in range(n):
            level = rng.choice(["INFO"] * 6 + ["WARN", "ERROR"])
            minute += rng.randint(1, 40)
            stamp = f"2026-04-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}"
            out.append(
                f"{stamp} {level} {svc}: request {rng.randint(1000, 9999)} "
                f"took {rng.randint(3, 900)}ms"
            )
        return "\n".join(out) + "\n"

    files: dict[str, str | bytes] = {
        "logs/app.log": lines(rng.randint(150, 250), "app"),
        "logs/access.log": lines(rng.randint(60, 120), "access"),
        "logs/worker.log": "",
    }
    for g in range(1, 6):
        text = f"# app.log generation {g}\n" + lines(20, "app")
        files[f"logs/app.log.{g}.gz"] = gzip.compress(text.encode(), mtime=0)
    setup = ("stat -c '%n %i' logs/*.log > /tmp/auto-write-log-rotation.inodes",)
    return Fixture(files, setup), {}


_ROTATE_V1 = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Rotate logs/*.log in place: keep five gzip generations (NAME.1.gz newest .. NAME.5.gz
    # oldest) and truncate the live file instead of moving it, since the writer keeps it open.
    set -euo pipefail
    LOG_DIR="${1:-$(cd "$(dirname "$0")/.." && pwd)/logs}"
    KEEP=5

    for log in "$LOG_DIR"/*.log; do
      [ -f "$log" ] || continue
      if [ ! -s "$log" ]; then
        echo "skip $(basename "$log") (empty)"
        continue
      fi
      rm -f "$log.$KEEP.gz"
      for ((i = KEEP - 1; i >= 1; i--)); do
        mv "$log.$i.gz" "$log.$((i + 1)).gz"
      done
      gzip -c "$log" > "$log.1.gz"
      : > "$log"
      echo "rotated $(basename "$log")"
    done
    """
)
_ROTATE_V2 = _ROTATE_V1.replace(
    '    mv "$log.$i.gz" "$log.$((i + 1)).gz"\n',
    '    if [ -f "$log.$i.gz" ]; then\n      mv "$log.$i.gz" "$log.$((i + 1)).gz"\n    fi\n',
)


def _rotation_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls -la logs/ && zcat logs/app.log.1.gz | head -n 2", say="Looking at the logs."),
        read("logs/app.log", 1, 3, say="Checking the live log's format."),
    ]
    yield write("scripts/rotate_logs.sh", _ROTATE_V1, say="Writing the rotation script.")
    run = yield sh("bash scripts/rotate_logs.sh", say="Rotating.")
    if not run.ok:
        # access.log has no old generations, so the first mv of the shift fails under set -e.
        yield write(
            "scripts/rotate_logs.sh",
            _ROTATE_V2,
            say="mv fails for access.log, which has no old generations; shifting only what exists.",
        )
        run = yield sh("bash scripts/rotate_logs.sh && ls logs/")
    rotated = run.stdout.count("rotated ")
    skipped = run.stdout.count("skip ")
    yield Reply(
        f"scripts/rotate_logs.sh rotated {rotated} logs and skipped {skipped} empty one: each "
        "live file is gzip-copied to NAME.1.gz and truncated in place, older generations shift "
        "up to .5.gz and the oldest is dropped."
    )
    check = yield sh(
        "bash scripts/rotate_logs.sh; for g in 1 2 3 4 5; do printf 'app.log.%s.gz: ' $g; "
        "zcat logs/app.log.$g.gz | head -n 1; done; ls logs | grep -c 'gz$'",
        say="Running it again and checking the generations.",
    )
    n_gz = check.stdout.strip().splitlines()[-1] if check.ok else "?"
    yield Reply(
        "Checked: a second run skips the now-empty logs and changes nothing; app.log.1.gz holds "
        f"the old live log, .2-.5 the former generations 1-4, and {n_gz} archives exist."
    )


_ROTATION_VERIFY = r"""
import gzip, os, shutil, subprocess, sys, tempfile
if not os.path.isfile("scripts/rotate_logs.sh"):
    sys.exit("scripts/rotate_logs.sh is missing")
def gz(path):
    try:
        return gzip.open(path, "rt").read()
    except OSError:
        return None
newest = gz("logs/app.log.1.gz")
if not newest or "# app.log generation" in newest:
    sys.exit("logs/app.log was not rotated into app.log.1.gz")
for g in range(2, 6):
    if f"# app.log generation {g - 1}\n" not in (gz(f"logs/app.log.{g}.gz") or ""):
        sys.exit(f"app.log.{g}.gz should hold the former generation {g - 1}")
kept = [gz(f"logs/app.log.{g}.gz") or "" for g in range(1, 6)]
if os.path.exists("logs/app.log.6.gz") or any("generation 5\n" in text for text in kept):
    sys.exit("the oldest generation was not dropped")
if not gz("logs/access.log.1.gz"):
    sys.exit("access.log was not rotated")
if os.path.exists("logs/worker.log.1.gz"):
    sys.exit("the empty worker.log was rotated instead of skipped")
for name in ("app.log", "access.log"):
    if os.path.getsize(f"logs/{name}") != 0:
        sys.exit(f"logs/{name} was not truncated")
if os.path.exists("/tmp/auto-write-log-rotation.inodes"):
    for line in open("/tmp/auto-write-log-rotation.inodes"):
        path, inode = line.split()
        if os.stat(path).st_ino != int(inode):
            sys.exit(f"{path} was replaced, not truncated in place")

tmp = tempfile.mkdtemp()
os.makedirs(f"{tmp}/scripts")
os.makedirs(f"{tmp}/logs")
shutil.copy("scripts/rotate_logs.sh", f"{tmp}/scripts/")
L = f"{tmp}/logs"
open(f"{L}/a.log", "w").write("A-live\n")
for g in range(1, 6):
    with gzip.open(f"{L}/a.log.{g}.gz", "wt") as f:
        f.write(f"gen{g}\n")
open(f"{L}/e.log", "w").close()
open(f"{L}/n.log", "w").write("N-live\n")
ino = os.stat(f"{L}/a.log").st_ino
def rotate():
    r = subprocess.run(["bash", "scripts/rotate_logs.sh"], cwd=tmp, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"rotate_logs.sh failed on a fresh layout: {r.stderr.strip()[-300:]}")
def gens(name):
    return [gz(f"{L}/{name}.{g}.gz") for g in range(1, 7)]
rotate()
if gens("a.log") != ["A-live\n", "gen1\n", "gen2\n", "gen3\n", "gen4\n", None]:
    sys.exit(f"wrong shift of generations: {gens('a.log')}")
if os.path.getsize(f"{L}/a.log") or os.stat(f"{L}/a.log").st_ino != ino:
    sys.exit("the live log must be truncated in place")
if os.path.exists(f"{L}/e.log.1.gz") or gens("n.log")[:2] != ["N-live\n", None]:
    sys.exit("empty logs must be skipped and logs without generations rotated")
rotate()
if gens("a.log")[:2] != ["A-live\n", "gen1\n"]:
    sys.exit("a second run with nothing new must not shift the generations")
open(f"{L}/a.log", "w").write("A2\n")
rotate()
if gens("a.log") != ["A2\n", "A-live\n", "gen1\n", "gen2\n", "gen3\n", None]:
    sys.exit(f"repeated runs do not rotate consistently: {gens('a.log')}")
print("ok: five generations kept, live logs truncated in place, empty logs skipped")
"""


# ------------------------------------------------------- auto-fix-duplicate-scheduled-reports

_SCHED_RUN = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Tiny report scheduler: every INTERVAL seconds, run each registered job once."""
    import argparse
    import json
    import os
    import time
    from datetime import datetime

    HERE = os.path.dirname(os.path.abspath(__file__))
    ROOT = os.path.dirname(HERE)

    # Built-in jobs, for hosts that have no jobs.json yet.
    DEFAULT_JOBS = @DEFAULTS@

    RUNS = 0


    def load_jobs(path):
        jobs = list(DEFAULT_JOBS)
        if os.path.exists(path):
            with open(path) as f:
                for job in json.load(f)["jobs"]:
                    jobs.append(job)
        return jobs


    def run_job(job, cycle):
        global RUNS
        RUNS += 1
        out = os.path.join(ROOT, job["output"].format(name=job["name"], cycle=cycle, run=RUNS))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            stamp = datetime.now().isoformat(timespec="seconds")
            f.write(f"{job['name']} report for cycle {cycle}, generated {stamp}\\n")
        print(f"cycle {cycle}: {job['name']} -> {os.path.relpath(out, ROOT)}", flush=True)


    def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("--cycles", type=int, default=0, help="stop after N cycles (0: forever)")
        ap.add_argument("--interval", type=float, default=1.0, help="seconds between cycles")
        args = ap.parse_args()
        jobs = load_jobs(os.path.join(HERE, "jobs.json"))
        print(f"scheduler: {len(jobs)} jobs registered, every {args.interval:g}s", flush=True)
        cycle = 0
        while True:
            cycle += 1
            for job in jobs:
                if cycle % job.get("every", 1) == 0:
                    run_job(job, cycle)
            if args.cycles and cycle >= args.cycles:
                break
            time.sleep(args.interval)


    if __name__ == "__main__":
        main()
    '''
)


def _sched_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    pool = ["disk-usage", "queue-depth", "error-rate", "signups", "latency-p95", "backup-age"]
    names = rng.sample(pool, 4)
    template = "reports/{name}_c{cycle}_{run}.txt"
    defaults = [{"name": n, "every": 1, "output": template} for n in names[:3]]
    owners = ["ops", "growth", "platform"]
    config = [
        {"name": n, "every": 1, "output": template, "owner": rng.choice(owners)} for n in names
    ]
    run_py = _SCHED_RUN.replace("@DEFAULTS@", json.dumps(defaults, indent=4))
    files = {
        "scheduler/run.py": run_py,
        "scheduler/jobs.json": json.dumps({"jobs": config}, indent=2) + "\n",
    }
    return Fixture(files), {"jobs": names}


_DEDUP_BY_NAME = (
    "    by_name = {}\n"
    "    for job in jobs:\n"
    '        by_name[job["name"]] = job  # jobs.json comes last, so it overrides a default\n'
    "    return list(by_name.values())\n"
)


def _sched_playbook(ctx: Ctx) -> Playbook:
    _, repro = yield [
        read("scheduler/run.py", say="Reading the scheduler"),
        sh(
            "cat scheduler/jobs.json && python3 scheduler/run.py --cycles 1 && ls reports",
            say="and running a single cycle to see the duplicates.",
        ),
    ]
    m = re.search(r"(\d+) jobs registered", repro.stdout)
    registered = m.group(1) if m else "too many"
    yield edit(
        "scheduler/run.py",
        "    return jobs\n",
        "    return list(set(jobs))  # drop duplicate registrations\n",
        say=f"{registered} registrations: DEFAULT_JOBS and jobs.json both register the same jobs. "
        "Deduplicating in load_jobs.",
    )
    run = yield sh("rm -rf reports && python3 scheduler/run.py --cycles 1", say="Trying one cycle.")
    if not run.ok:
        # Job definitions are dicts, which are unhashable.
        yield edit(
            "scheduler/run.py",
            "    return list(set(jobs))  # drop duplicate registrations\n",
            _DEDUP_BY_NAME,
            say="dicts aren't hashable; deduplicating by job name, with jobs.json winning.",
        )
    job = yield start(
        "rm -rf reports && python3 scheduler/run.py",
        say="Running the scheduler in the background.",
    )
    jid = job.extras.get("job", "job1")
    wait = yield sh(
        "for i in $(seq 100); do ls reports 2>/dev/null | grep -q _c3_ && break; sleep 0.1; done; "
        "sleep 0.2; ls reports",
        say="Waiting for three 1-second cycles.",
        timeout_s=30,
    )
    stopped = yield kill(jid, say="Stopping the scheduler.")
    per_cycle: dict[str, int] = {}
    for cycle in re.findall(r"_c(\d+)_", wait.stdout):
        per_cycle[cycle] = per_cycle.get(cycle, 0) + 1
    counts = ", ".join(f"{n} reports in cycle {c}" for c, n in sorted(per_cycle.items()))
    yield Reply(
        "Each job was registered twice, once from DEFAULT_JOBS and once from jobs.json, so every "
        "report was written twice per cycle. load_jobs now keeps one job per name (jobs.json "
        f"overrides the default). A background run over three cycles wrote {counts}, one per "
        f"job, and the scheduler was stopped (running: {stopped.extras.get('running')})."
    )
    log = yield output(jid, say="Reading what the scheduler printed while it ran.")
    runs = re.findall(r"cycle (\d+): (\S+)", log.stdout)
    dupes = len(runs) - len(set(runs))
    yield Reply(
        f"Checked: the scheduler's own output lists {len(runs)} job runs with {dupes} repeated "
        f"within a cycle, and it is no longer running (running: {log.extras.get('running')})."
    )


_SCHED_VERIFY = r"""
import json, os, re, shutil, subprocess, sys, tempfile
names = {j["name"] for j in json.load(open("scheduler/jobs.json"))["jobs"]}
files = os.listdir("reports") if os.path.isdir("reports") else []
counts = {}
for f in files:
    m = re.match(r"(.+)_c(\d+)_\d+\.txt$", f)
    if m:
        key = (m.group(1), int(m.group(2)))
        counts[key] = counts.get(key, 0) + 1
cycles = sorted({c for _, c in counts})
if len(cycles) < 3:
    sys.exit(f"reports/ covers {len(cycles)} cycle(s); expected a run over three cycles")
for c in cycles:
    for name in names:
        if counts.get((name, c), 0) != 1:
            sys.exit(f"cycle {c}: {counts.get((name, c), 0)} reports for {name}, expected 1")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"scheduler/run.py" in cmd:
        sys.exit(f"the scheduler is still running (pid {pid})")
tmp = tempfile.mkdtemp()
shutil.copytree("scheduler", f"{tmp}/scheduler")
r = subprocess.run([sys.executable, "scheduler/run.py", "--cycles", "2", "--interval", "0"],
                   cwd=tmp, capture_output=True, text=True, timeout=30)
if r.returncode != 0:
    sys.exit(f"scheduler/run.py fails: {r.stderr.strip()[-300:]}")
ran = re.findall(r"cycle 2: (\S+)", r.stdout)
if sorted(ran) != sorted(names):
    sys.exit(f"one cycle should run each job once, ran {sorted(ran)}")
print(f"ok: {len(cycles)} cycles, one report per job per cycle, scheduler stopped")
"""


# ---------------------------------------------------------------- auto-run-parallel-conversions

_CONVERT_PY = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Convert a CSV file into a JSON list of records (slowly: it stands in for a heavy job).

    Usage: convert.py INPUT.csv OUTPUT.json [--delay SECONDS]
    Exits 2 when a row does not have as many fields as the header.
    """
    import csv
    import json
    import sys
    import time


    def main(argv):
        delay = 0.5
        if "--delay" in argv:
            i = argv.index("--delay")
            delay = float(argv[i + 1])
            del argv[i : i + 2]
        src, dst = argv
        time.sleep(delay)
        with open(src, newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        for lineno, row in enumerate(body, 2):
            if len(row) != len(header):
                print(f"convert: {src}:{lineno}: expected {len(header)} fields, got {len(row)}",
                      file=sys.stderr)
                return 2
        with open(dst, "w") as f:
            json.dump([dict(zip(header, row)) for row in body], f, indent=1)
        print(f"convert: {src} -> {dst} ({len(body)} records)")
        return 0


    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
    '''
)


def _parallel_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    products = ["bolt", "nut", "washer", "gear", "spring", "valve", "hinge", "clamp"]
    bad = sorted(rng.sample(range(2, 9), 2))
    files: dict[str, str | bytes] = {"jobs/convert.py": _CONVERT_PY}
    manifest = []
    for n in range(1, 9):
        rows = ["id,product,qty,price"]
        for i in range(rng.randint(5, 12)):
            qty, price = rng.randint(1, 50), rng.uniform(0.5, 40)
            rows.append(f"{n * 100 + i},{rng.choice(products)},{qty},{price:.2f}")
        if n in bad:
            k = rng.randrange(1, len(rows))
            if rng.random() < 0.5:
                rows[k] = rows[k].replace(",", ", large,", 1)
            else:
                rows[k] = rows[k].rsplit(",", 1)[0]
        files[f"jobs/data/batch_{n:02d}.csv"] = "\n".join(rows) + "\n"
        delay = rng.choice([0.3, 0.4, 0.5, 0.6])
        manifest.append(
            f"python3 jobs/convert.py jobs/data/batch_{n:02d}.csv "
            f"out/converted/batch_{n:02d}.json --delay {delay}"
        )
    files["jobs/manifest.txt"] = "\n".join(manifest) + "\n"
    return Fixture(files), {"failing": [f"batch_{n:02d}" for n in bad]}


_RUN_JOBS = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Run the commands in jobs/manifest.txt with at most MAX_PARALLEL at a time and record
    each job's exit code and duration in out/job_results.csv (job output in out/logs/)."""
    import csv
    import os
    import shlex
    import subprocess
    import time

    MAX_PARALLEL = 3
    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(ROOT)

    with open("jobs/manifest.txt") as f:
        commands = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    os.makedirs("out/converted", exist_ok=True)  # convert.py does not create it
    os.makedirs("out/logs", exist_ok=True)

    pending = list(enumerate(commands, 1))
    running = {}  # Popen -> (job, command, started, log file)
    results, peak = [], 0
    while pending or running:
        while pending and len(running) < MAX_PARALLEL:
            job, cmd = pending.pop(0)
            log = open(f"out/logs/job{job}.log", "w")
            proc = subprocess.Popen(shlex.split(cmd), stdout=log, stderr=subprocess.STDOUT)
            running[proc] = (job, cmd, time.time(), log)
            print(f"start job {job}: {cmd}", flush=True)
        peak = max(peak, len(running))
        for proc in [p for p in running if p.poll() is not None]:
            job, cmd, started, log = running.pop(proc)
            log.close()
            ended = time.time()
            results.append({"job": job, "command": cmd, "exit_code": proc.returncode,
                            "duration_s": f"{ended - started:.2f}",
                            "started": f"{started:.3f}", "ended": f"{ended:.3f}"})
            took = ended - started
            print(f"done job {job}: exit {proc.returncode} after {took:.1f}s", flush=True)
        time.sleep(0.05)

    results.sort(key=lambda r: r["job"])
    failed = [str(r["job"]) for r in results if r["exit_code"] != 0]
    print(f"{len(results)} jobs: {len(results) - len(failed)} ok, {len(failed)} failed "
          f"(jobs {', '.join(failed) or 'none'}); at most {peak} ran at once", flush=True)
    with open("out/job_results.csv.tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    os.replace("out/job_results.csv.tmp", "out/job_results.csv")
    '''
)

_WATCH_JOBS = textwrap.dedent(
    """\
    peak=0
    for i in $(seq 1 400); do
      n=$(pgrep -fc '[j]obs/convert.py' || true)
      [ "$n" -gt "$peak" ] && peak=$n
      [ -f out/job_results.csv ] && break
      sleep 0.1
    done
    echo "most conversions seen running at once: $peak"
    """
)


def _parallel_playbook(ctx: Ctx) -> Playbook:
    manifest, _ = yield [
        read("jobs/manifest.txt", say="Reading the job list."),
        read("jobs/convert.py", say="And what each job does."),
    ]
    commands = [line for line in manifest.stdout.splitlines() if line.strip()]
    first = yield sh(f"time ({commands[0]})", say="Timing the first job by hand.")
    why = "Writing a runner that caps parallelism at 3 and records every exit code."
    if not first.ok:
        # convert.py does not create out/converted/, so its open() of the output fails.
        why = "convert.py doesn't create out/converted/; the runner will, capped at 3 jobs."
    yield write("scripts/run_jobs.py", _RUN_JOBS, say=why)
    job = yield start("python3 scripts/run_jobs.py", say="Starting the runner in the background.")
    jid = job.extras.get("job", "job1")
    seen = yield sh(_WATCH_JOBS, say="Watching the concurrency until it finishes.", timeout_s=60)
    done = yield output(jid, say="Reading the runner's output.")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
    peak = seen.stdout.split()[-1] if seen.ok else "?"
    yield Reply(
        f"Ran the {len(commands)} conversions from jobs/manifest.txt as background processes "
        f"({summary}); watching the process table I never saw more than {peak} at once. Exit "
        "codes, durations and start/end times are in out/job_results.csv, outputs in "
        "out/converted/."
    )
    _, strays = yield [
        sh(
            "cat out/job_results.csv; ls out/converted",
            say="Checking the results file and for stray processes.",
        ),
        sh("pgrep -af '[j]obs/convert.py' || echo 'no conversions left running'"),
    ]
    last = strays.stdout.strip().splitlines()[-1] if strays.stdout.strip() else "?"
    yield Reply(f"Checked: one results row per job, JSON outputs for the good inputs, and {last}.")


_PARALLEL_VERIFY = r"""
import csv, json, os, sys
manifest = [l.strip() for l in open("jobs/manifest.txt") if l.strip()]
try:
    rows = list(csv.DictReader(open("out/job_results.csv")))
except FileNotFoundError:
    sys.exit("out/job_results.csv is missing")
def col(row, *names):
    for n in names:
        if row.get(n) not in (None, ""):
            return row[n]
    sys.exit(f"out/job_results.csv lacks a {names[0]} column")
by_cmd = {col(r, "command", "cmd"): r for r in rows}
if len(rows) != len(manifest) or set(by_cmd) != set(manifest):
    sys.exit(f"expected one row per manifest line ({len(manifest)}), got {len(rows)}")
spans = []
for cmd in manifest:
    r = by_cmd[cmd]
    src, dst = cmd.split()[2:4]
    lines = list(csv.reader(open(src)))
    malformed = any(len(x) != len(lines[0]) for x in lines[1:])
    code = int(col(r, "exit_code", "exit", "returncode"))
    if malformed != (code != 0):
        sys.exit(f"{src}: recorded exit code {code} is wrong")
    if not malformed:
        try:
            records = json.load(open(dst))
        except (OSError, ValueError):
            sys.exit(f"{dst} is missing or not JSON")
        if len(records) != len(lines) - 1:
            sys.exit(f"{dst} has {len(records)} records, expected {len(lines) - 1}")
    if float(col(r, "duration_s", "duration", "seconds")) < 0.25:
        sys.exit(f"implausible duration for {src}")
    spans.append((float(col(r, "started", "start")), float(col(r, "ended", "end"))))
peak = max(sum(1 for s, e in spans if s <= s0 < e) for s0, _ in spans)
if peak > 3:
    sys.exit(f"{peak} jobs overlapped; the cap is three")
if peak < 2:
    sys.exit("the jobs did not run in parallel")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"convert.py" in cmd or b"run_jobs" in cmd:
        sys.exit(f"a job process is still running (pid {pid})")
print(f"ok: {len(rows)} jobs recorded, at most {peak} at once")
"""


# ---------------------------------------------------------------- auto-harden-ci-check-script

_CI_ORIGINAL = textwrap.dedent(
    """\
    #!/bin/bash
    # Local CI: run the lint step and the unit tests, like the pipeline does.
    cd "$(dirname "$0")/.."
    mkdir -p out

    for step in lint tests; do
        echo "== $step"
        case "$step" in
            lint) python3 ci/lint.py src ;;
            tests) python3 -m unittest discover -s tests 2>&1 | tee out/tests.log ;;
        esac
    done
    echo "CI finished"
    """
).replace("    ", "\t")

_CI_FIXED = textwrap.dedent(
    """\
    #!/bin/bash
    # Local CI: run the lint step and the unit tests, like the pipeline does.
    # Every step runs; the script exits with the first failing step's exit code.
    set -euo pipefail
    cd "$(dirname "$0")/.."
    mkdir -p out

    status=0
    summary=()
    for step in lint tests; do
        echo "== $step"
        rc=0
        case "$step" in
            lint) python3 ci/lint.py src || rc=$? ;;
            tests) python3 -m unittest discover -s tests 2>&1 | tee out/tests.log || rc=$? ;;
        esac
        if [ "$rc" -eq 0 ]; then
            summary+=("$step: ok")
        else
            summary+=("$step: FAILED (exit $rc)")
            [ "$status" -ne 0 ] || status=$rc
        fi
    done
    echo "== summary"
    printf '   %s\\n' "${summary[@]}"
    echo "CI finished with exit status $status"
    exit "$status"
    """
).replace("    ", "\t")

_CI_LINT = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Lint: no tab characters and no line longer than MAX_LEN in the Python sources given."""
    import os
    import sys

    MAX_LEN = 99


    def main(paths):
        problems = 0
        for top in paths:
            for folder, _, names in sorted(os.walk(top)):
                for name in sorted(n for n in names if n.endswith(".py")):
                    path = os.path.join(folder, name)
                    with open(path, encoding="utf-8") as f:
                        for lineno, line in enumerate(f, 1):
                            line = line.rstrip("\\n")
                            if "\\t" in line:
                                print(f"{path}:{lineno}: tab character")
                                problems += 1
                            if len(line) > MAX_LEN:
                                print(f"{path}:{lineno}: line longer than {MAX_LEN}")
                                problems += 1
        print(f"lint: {problems} problem(s)")
        return 2 if problems else 0


    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:] or ["src"]))
    '''
)

_CI_TEST_HEAD = textwrap.dedent(
    """\
    import os
    import sys
    import unittest

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    from textkit import longest_word, slugify, word_count  # noqa: E402
    """
)


def _ci_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    word = rng.choice(["pipeline", "scheduler", "exporter", "watcher"])
    ticket = rng.randint(100, 999)
    files = {
        "ci/run_checks.sh": _CI_ORIGINAL,
        "ci/lint.py": _CI_LINT,
        "src/textkit/__init__.py": (
            '"""Small text helpers."""\n'
            "from textkit.slug import slugify\n"
            "from textkit.words import longest_word, word_count\n\n"
            '__all__ = ["longest_word", "slugify", "word_count"]\n'
        ),
        "src/textkit/slug.py": (
            '"""URL slugs."""\nimport re\n\n\ndef slugify(text):\n'
            '    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))\n'
        ),
        "src/textkit/words.py": (
            '"""Word statistics."""\n\n\ndef word_count(text):\n    return len(text.split())\n\n\n'
            'def longest_word(text):\n    return max(text.split(), key=len, default="")\n'
        ),
        "tests/test_textkit.py": _CI_TEST_HEAD
        + textwrap.dedent(
            f"""\


            class TextkitTests(unittest.TestCase):
                def test_slugify(self):
                    self.assertEqual(slugify("Nightly {word.title()} Run!"), "nightly-{word}-run")

                def test_word_count(self):
                    self.assertEqual(word_count("the {word} ran twice"), 4)

                def test_longest_word(self):
                    self.assertEqual(longest_word("a {word} ran"), "{word}")
            """
        ),
        "tests/test_regressions.py": _CI_TEST_HEAD
        + textwrap.dedent(
            f"""\


            class KnownRegressions(unittest.TestCase):
                # OPS-{ticket}: hyphenated words should count separately. Fails on purpose
                # until the fix lands.
                def test_hyphenated_words(self):
                    self.assertEqual(word_count("a state-of-the-art {word}"), 6)
            """
        ),
    }
    return Fixture(files), {"ticket": ticket}


_CI_DEMO = (
    "mkdir -p out; bash ci/run_checks.sh > out/ci_demo.log 2>&1; "
    'echo "run_checks.sh exit status: $?" | tee -a out/ci_demo.log; '
    "grep -A3 '^== summary' out/ci_demo.log"
)
_CI_PASS_PATH = (
    "rm -rf /tmp/ci_pass && cp -r . /tmp/ci_pass && rm /tmp/ci_pass/tests/test_regressions.py && "
    "bash /tmp/ci_pass/ci/run_checks.sh > /tmp/ci_pass.log 2>&1; "
    'echo "without the known failure: exit status $?"; tail -n 1 /tmp/ci_pass.log'
)


def _ci_playbook(ctx: Ctx) -> Playbook:
    current, before = yield [
        read("ci/run_checks.sh", say="Reading the CI script"),
        sh(
            'bash ci/run_checks.sh > /tmp/ci_before.log 2>&1; echo "exit status: $?"; '
            "grep -E '^(FAILED|OK)' /tmp/ci_before.log",
            say="and running it as it is.",
        ),
    ]
    observed = " / ".join(before.stdout.splitlines()[:2])  # "exit status: 0 / FAILED (...)"
    shown = current.stdout.expandtabs(4)  # what the file looks like on screen
    attempt = yield patch(
        _udiff("ci/run_checks.sh", shown, _CI_FIXED.expandtabs(4)),
        say=f"{observed}: the failure is swallowed. Adding strict mode, pipefail, per-step exit "
        "codes and a summary.",
    )
    if not attempt.ok:
        yield sh(
            "cat -A ci/run_checks.sh | sed -n '6,11p'",
            say="The patch doesn't apply; checking whitespace.",
        )
        yield patch(
            _udiff("ci/run_checks.sh", current.stdout, _CI_FIXED),
            say="The script is indented with tabs; regenerating the patch with tabs.",
        )
    demo = yield sh(_CI_DEMO, say="Demonstrating that the failing test now fails the run.")
    yield Reply(
        "ci/run_checks.sh now runs with set -euo pipefail, captures each step's exit code "
        "(including through tee), prints a summary and exits with the first failing step's code. "
        f"Demo in out/ci_demo.log: {demo.stdout.strip().splitlines()[0]}."
    )
    check = yield sh(_CI_PASS_PATH, say="And checking that a clean tree still passes.")
    code = check.stdout.split(":")[1].split()[-1] if ":" in check.stdout else "?"
    yield Reply(
        f"Checked: on a copy without the known failing test the script exits {code}, so only "
        "real failures fail the run."
    )


_CI_VERIFY = r"""
import os, re, shutil, subprocess, sys, tempfile
src = open("ci/run_checks.sh").read()
flags = " ".join(l for l in src.splitlines() if re.match(r"\s*set\s", l))
strict = re.search(r"-\w*e|errexit", flags) and re.search(r"-\w*u|nounset", flags)
if not strict or "pipefail" not in flags:
    sys.exit("ci/run_checks.sh does not enable strict mode (set -euo pipefail)")

def run(tweak=None):
    tmp = tempfile.mkdtemp()
    for d in ("ci", "src", "tests"):
        shutil.copytree(d, f"{tmp}/{d}")
    if tweak:
        tweak(tmp)
    return subprocess.run(["bash", "ci/run_checks.sh"], cwd=tmp, capture_output=True, text=True)

r = run()
if r.returncode != 1:
    sys.exit(f"with the failing test the script must exit 1 (the tests' code), got {r.returncode}")
if "summary" not in (r.stdout + r.stderr).lower():
    sys.exit("the script prints no summary")
r = run(lambda d: os.remove(f"{d}/tests/test_regressions.py"))
if r.returncode != 0:
    sys.exit(f"the script fails although every step passes (exit {r.returncode})")
r = run(lambda d: open(f"{d}/src/textkit/words.py", "a").write("# note:\tsee OPS\n"))
if r.returncode != 2:
    sys.exit(f"with lint failing first the script must exit 2 (lint's code), got {r.returncode}")
try:
    demo = open("out/ci_demo.log").read()
except FileNotFoundError:
    sys.exit("out/ci_demo.log is missing")
if "FAIL" not in demo or not re.search(r"exit(?: status| code)?\W{0,3}[1-9]", demo):
    sys.exit("out/ci_demo.log does not show a failing run")
print("ok: strict mode, exit codes propagate, summary printed, demo logged")
"""


# ---------------------------------------------------------------- auto-render-env-configs

_RENDER_TEMPLATE = textwrap.dedent(
    """\
    # ${APP_NAME} configuration for the ${ENV_NAME} environment
    # Rendered from templates/app.conf.tmpl -- do not edit by hand.

    [server]
    bind = ${BIND_HOST}:${HTTP_PORT}
    workers = ${WORKERS}
    public_url = https://${PUBLIC_HOST}/

    [database]
    url = postgresql://${DB_USER}@${DB_HOST}:${DB_PORT}/${DB_NAME}
    pool_size = ${DB_POOL}

    [cache]
    redis_url = redis://${REDIS_HOST}:6379/0
    ttl_seconds = ${CACHE_TTL}

    [logging]
    level = ${LOG_LEVEL}
    # $remote_addr, $status and $request_time are filled in per request by the access logger.
    access_format = $remote_addr "$request" $status $request_time

    [features]
    signup = ${ENABLE_SIGNUP}
    """
)


def _render_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    app = rng.choice(["billing", "catalog", "ledger"])
    envs = {}
    for env, workers, pool, level in (
        ("dev", 1, 2, "debug"),
        ("staging", 2, rng.choice([5, 8]), "info"),
        ("prod", rng.choice([4, 8]), rng.choice([20, 30]), rng.choice(["info", "warning"])),
    ):
        host = f"{app}.example.com" if env == "prod" else f"{env}.{app}.example.com"
        envs[env] = {
            "APP_NAME": app,
            "ENV_NAME": env,
            "BIND_HOST": "127.0.0.1" if env == "dev" else "0.0.0.0",
            "HTTP_PORT": rng.choice([8080, 8000]),
            "WORKERS": workers,
            "PUBLIC_HOST": host,
            "DB_USER": f"{app}_{env}",
            "DB_HOST": f"db.{env}.internal",
            "DB_PORT": 5432,
            "DB_NAME": app,
            "DB_POOL": pool,
            "REDIS_HOST": f"redis.{env}.internal",
            "CACHE_TTL": rng.choice([60, 300, 900]),
            "LOG_LEVEL": level,
            "ENABLE_SIGNUP": "true" if env != "prod" else rng.choice(["true", "false"]),
        }
    missing = rng.choice(["REDIS_HOST", "DB_POOL", "CACHE_TTL", "PUBLIC_HOST", "DB_USER"])
    del envs["prod"][missing]
    files = {
        "templates/app.conf.tmpl": _RENDER_TEMPLATE,
        "envs.json": json.dumps(envs, indent=2) + "\n",
    }
    return Fixture(files), {"missing": missing}


_RENDER_V1 = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Render templates/app.conf.tmpl into deploy/<env>.conf for every environment in envs.json."""
    import json
    import os
    import string

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    with open(os.path.join(ROOT, "templates", "app.conf.tmpl")) as f:
        template = string.Template(f.read())
    with open(os.path.join(ROOT, "envs.json")) as f:
        envs = json.load(f)
    os.makedirs(os.path.join(ROOT, "deploy"), exist_ok=True)
    for env, values in envs.items():
        text = template.substitute(values)  # KeyError when a variable is missing
        with open(os.path.join(ROOT, "deploy", f"{env}.conf"), "w") as f:
            f.write(text)
        print(f"{env}: wrote deploy/{env}.conf")
    '''
)

_RENDER_V2 = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Render templates/app.conf.tmpl into deploy/<env>.conf for every environment in envs.json.

    Only ${VAR} placeholders are substituted (bare $words like $remote_addr are left alone).
    An environment that lacks a variable is not rendered at all: the script names the missing
    variables and exits 1.
    """
    import json
    import os
    import re
    import sys

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    PLACEHOLDER = re.compile(r"\\$\\{([A-Za-z_][A-Za-z0-9_]*)\\}")


    def render(template, values):
        missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
        if missing:
            return None, missing
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template), []


    def main():
        with open(os.path.join(ROOT, "templates", "app.conf.tmpl")) as f:
            template = f.read()
        with open(os.path.join(ROOT, "envs.json")) as f:
            envs = json.load(f)
        os.makedirs(os.path.join(ROOT, "deploy"), exist_ok=True)
        failed = []
        for env, values in envs.items():
            target = os.path.join(ROOT, "deploy", f"{env}.conf")
            text, missing = render(template, values)
            if missing:
                failed.append(env)
                if os.path.exists(target):  # never leave a stale file behind
                    os.remove(target)
                print(f"{env}: NOT rendered, missing variable(s): {', '.join(missing)}",
                      file=sys.stderr)
                continue
            with open(target, "w") as f:
                f.write(text)
            print(f"{env}: wrote deploy/{env}.conf")
        return 1 if failed else 0


    if __name__ == "__main__":
        sys.exit(main())
    '''
)


def _render_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("templates/app.conf.tmpl", say="Reading the template."),
        sh(
            r"""jq -r 'to_entries[] | "\(.key): \(.value | length) values"' envs.json""",
            say="And how many values each environment has.",
        ),
    ]
    yield write(
        "scripts/render_configs.py", _RENDER_V1, say="Writing a renderer with string.Template."
    )
    run = yield sh("python3 scripts/render_configs.py", say="Rendering.")
    if not run.ok:
        # string.Template also treats the access-log's $remote_addr as a placeholder.
        yield write(
            "scripts/render_configs.py",
            _RENDER_V2,
            say="string.Template also grabs the bare $remote_addr in the log format; substituting "
            "only ${VAR} and reporting missing variables per environment.",
        )
        run = yield sh('python3 scripts/render_configs.py; echo "exit status: $?"')
    wrote = "; ".join(line for line in run.stdout.splitlines() if "wrote" in line)
    refused = run.stderr.strip() or "nothing refused"
    yield Reply(
        f"scripts/render_configs.py renders every environment from templates/app.conf.tmpl "
        f"({wrote}) and refuses incomplete ones instead of writing them: {refused}. It exits "
        "non-zero in that case."
    )
    check, _ = yield [
        sh(
            "ls deploy; grep -c '[$][{]' deploy/*.conf || true",
            say="Checking no placeholder was left and the log format survived.",
        ),
        sh("grep access_format deploy/dev.conf"),
    ]
    files = len([w for w in check.stdout.split() if w.endswith(".conf")]) if check.ok else "?"
    yield Reply(
        f"Checked: {files} rendered files, no ${{...}} left in them, and the $remote_addr log "
        "format is intact."
    )


_RENDER_VERIFY = r"""
import json, os, re, subprocess, sys
P = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
template = open("templates/app.conf.tmpl").read()
envs = json.load(open("envs.json"))
if not os.path.isfile("scripts/render_configs.py"):
    sys.exit("scripts/render_configs.py is missing")
missing = {}
for env, values in envs.items():
    gone = sorted(set(P.findall(template)) - set(values))
    if gone:
        missing[env] = gone
        continue
    want = P.sub(lambda m: str(values[m.group(1)]), template)
    try:
        got = open(f"deploy/{env}.conf").read()
    except FileNotFoundError:
        sys.exit(f"deploy/{env}.conf is missing")
    if got.rstrip("\n") != want.rstrip("\n"):
        sys.exit(f"deploy/{env}.conf does not match the template rendered with its values")
r = subprocess.run(["python3", "scripts/render_configs.py"], capture_output=True, text=True)
out = r.stdout + r.stderr
if r.returncode == 0:
    sys.exit("the render script exits 0 although prod lacks a variable")
for env, gone in missing.items():
    if os.path.exists(f"deploy/{env}.conf"):
        sys.exit(f"an incomplete deploy/{env}.conf was written")
    for name in gone:
        if name not in out or env not in out:
            sys.exit(f"the script does not report that {env} is missing {name}")
print(f"ok: rendered {len(envs) - len(missing)} configs, refused {sorted(missing)}")
"""


# ---------------------------------------------------------------- auto-plan-job-dag

_DAG_LAYERS = [
    ["ingest_orders", "ingest_users", "ingest_events", "ingest_prices", "ingest_inventory"],
    ["clean_orders", "clean_users", "clean_events", "validate_prices", "dedupe_events",
     "normalize_inventory"],
    ["build_sessions", "build_customer_dim", "build_order_facts", "build_price_history",
     "build_stock_levels", "join_orders_users"],
    ["report_revenue", "report_retention", "report_funnel", "report_stock", "report_margins"],
    ["publish_dashboard", "export_finance", "notify_owners"],
]  # fmt: skip


def _dag_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    layers = [rng.sample(pool, k) for pool, k in zip(_DAG_LAYERS, (4, 5, 5, 4, 2), strict=True)]
    deps: dict[str, list[str]] = {name: [] for name in layers[0]}
    for below, layer in zip(layers, layers[1:], strict=False):
        for name in layer:
            deps[name] = sorted(rng.sample(below, rng.randint(1, min(2, len(below)))))
    x, y, z = rng.choice(layers[1]), rng.choice(layers[2]), rng.choice(layers[3])
    deps[y] = sorted(set(deps[y]) | {x})
    deps[z] = sorted({y} | {d for d in deps[z] if x not in deps[d]})  # exactly one way round
    deps[x] = sorted(set(deps[x]) | {z})  # the recent change that closes the cycle
    names = [n for layer in layers for n in layer]
    rng.shuffle(names)
    if not deps[names[0]]:  # the file opens with a job that has dependencies
        first = next(i for i, n in enumerate(names) if deps[n])
        names[0], names[first] = names[first], names[0]
    jobs = []
    for name in names:
        job = {"name": name, "command": f"python3 etl/{name}.py"}
        if deps[name]:  # root jobs simply omit depends_on
            job["depends_on"] = deps[name]
        jobs.append(job)
    files = {"jobs/dag.json": json.dumps({"jobs": jobs}, indent=2) + "\n"}
    return Fixture(files), {"cycle": sorted([x, y, z])}


_PLAN_V1 = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Plan jobs/dag.json: report dependency cycles, then group the runnable jobs into stages
    (every job in stage N depends only on jobs in earlier stages, so a stage runs in parallel).
    Writes out/run_plan.json; exits 1 when the graph has a cycle."""
    import json
    import os
    import sys

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


    def find_cycles(deps):
        """Strongly connected components with more than one job (or a self-dependency)."""
        index, low, stack, on_stack, cycles = {}, {}, [], set(), []

        def visit(node):
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for dep in deps.get(node, []):
                if dep not in index:
                    visit(dep)
                    low[node] = min(low[node], low[dep])
                elif dep in on_stack:
                    low[node] = min(low[node], index[dep])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in deps.get(node, []):
                    cycles.append(sorted(component))

        for node in sorted(deps):
            if node not in index:
                visit(node)
        return cycles


    def cycle_path(deps, members):
        """Walk one cycle through its members: a -> b -> c -> a."""
        path = [members[0]]
        while True:
            nxt = next(d for d in deps[path[-1]] if d in members)
            if nxt == path[0]:
                return path + [nxt]
            path.append(nxt)


    def main():
        with open(os.path.join(ROOT, "jobs", "dag.json")) as f:
            jobs = json.load(f)["jobs"]
        deps = {job["name"]: list(job["depends_on"]) for job in jobs}
        cycles = find_cycles(deps)
        in_cycle = {name for cycle in cycles for name in cycle}
        blocked, changed = set(), True
        while changed:  # everything downstream of a cycle cannot run either
            changed = False
            for name, ds in deps.items():
                if name not in in_cycle | blocked and any(d in in_cycle | blocked for d in ds):
                    blocked.add(name)
                    changed = True
        remaining = {name for name in deps if name not in in_cycle | blocked}
        stages, done = [], set()
        while remaining:
            ready = sorted(n for n in remaining if all(d in done for d in deps[n]))
            stages.append(ready)
            done |= set(ready)
            remaining -= set(ready)
        plan = {
            "jobs": len(deps),
            "stages": [{"stage": i, "jobs": names} for i, names in enumerate(stages, 1)],
            "cycles": cycles,
            "blocked": sorted(blocked),
        }
        os.makedirs(os.path.join(ROOT, "out"), exist_ok=True)
        with open(os.path.join(ROOT, "out", "run_plan.json"), "w") as f:
            json.dump(plan, f, indent=2)
        for i, names in enumerate(stages, 1):
            print(f"stage {i}: {', '.join(names)}")
        if cycles:
            for members in cycles:
                path = " -> ".join(cycle_path(deps, members))
                print(f"ERROR: dependency cycle: {path}", file=sys.stderr)
            print(f"{len(blocked)} job(s) blocked behind the cycle: {', '.join(sorted(blocked))}",
                  file=sys.stderr)
            return 1
        return 0


    if __name__ == "__main__":
        sys.exit(main())
    '''
)
_PLAN_V2 = _PLAN_V1.replace('list(job["depends_on"])', 'list(job.get("depends_on", []))')


def _dag_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("jobs/dag.json", 1, 14, say="Looking at the job definitions"),
        sh("jq '.jobs | length' jobs/dag.json", say="and counting them."),
    ]
    yield write(
        "scripts/plan_dag.py", _PLAN_V1, say="Writing the planner: cycle check, then stages."
    )
    run = yield sh("python3 scripts/plan_dag.py", say="Planning.")
    if not run.ok and "KeyError" in run.stderr:
        # Root jobs omit depends_on entirely instead of listing [].
        yield write(
            "scripts/plan_dag.py",
            _PLAN_V2,
            say="Root jobs have no depends_on key at all; a missing key means no dependencies.",
        )
        run = yield sh('python3 scripts/plan_dag.py; echo "exit status: $?"')
    cycle = next((line for line in run.stderr.splitlines() if "cycle" in line), "no cycle found")
    n_stages = run.stdout.count("stage ")
    yield Reply(
        f"scripts/plan_dag.py found the cycle ({cycle.removeprefix('ERROR: ')}) and exits 1 "
        f"because of it. out/run_plan.json lists the runnable jobs in {n_stages} parallel stages "
        "plus the jobs blocked behind the cycle."
    )
    stages, cycles = yield [
        sh(
            "jq -c '.stages[] | [.stage, (.jobs | length)]' out/run_plan.json",
            say="Checking the plan's stages and its cycle report.",
        ),
        sh("jq -c '.cycles, (.blocked | length)' out/run_plan.json"),
    ]
    lines = stages.stdout.strip().splitlines() if stages.ok else []
    planned = sum(json.loads(line)[1] for line in lines) if lines else "?"
    found = cycles.stdout.strip().splitlines() if cycles.ok else []
    members = ", ".join(json.loads(found[0])[0]) if found else "?"
    yield Reply(f"Checked: the plan stages {planned} jobs and reports the cycle {members}.")


_DAG_VERIFY = r"""
import json, os, shutil, subprocess, sys, tempfile
jobs = json.load(open("jobs/dag.json"))["jobs"]
deps = {j["name"]: list(j.get("depends_on", [])) for j in jobs}

def reach(start):
    seen, todo = set(), list(deps[start])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += deps[n]
    return seen

cycle = {n for n in deps if n in reach(n)}
runnable = {n for n in deps if n not in cycle and not (reach(n) & cycle)}

def names(value):
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in names(v)]
    if isinstance(value, list):
        return [x for v in value for x in names(v)]
    return []

def check_plan(plan, want_runnable, want_cycle):
    stages = [s.get("jobs", []) if isinstance(s, dict) else s for s in plan.get("stages", [])]
    flat = [n for s in stages for n in s]
    if len(flat) != len(set(flat)) or set(flat) != want_runnable:
        sys.exit(f"the stages should list exactly the {len(want_runnable)} runnable jobs")
    stage = {n: i for i, s in enumerate(stages) for n in s}
    for n, i in stage.items():
        if any(stage[d] >= i for d in deps_now[n]):
            sys.exit(f"{n} is staged before or with one of its dependencies")
        if i and not any(stage[d] == i - 1 for d in deps_now[n]):
            sys.exit(f"{n} could run in an earlier stage")
    reported = {n for k, v in plan.items() if "cycle" in k.lower() for n in names(v)}
    if reported != want_cycle:
        sys.exit(f"the plan reports cycle jobs {sorted(reported)}, expected {sorted(want_cycle)}")

if not os.path.isfile("scripts/plan_dag.py"):
    sys.exit("scripts/plan_dag.py is missing")
try:
    plan = json.load(open("out/run_plan.json"))
except (OSError, ValueError):
    sys.exit("out/run_plan.json is missing or not JSON")
deps_now = deps
check_plan(plan, runnable, cycle)
r = subprocess.run(["python3", "scripts/plan_dag.py"], capture_output=True, text=True)
if r.returncode == 0:
    sys.exit("the planner exits 0 although the graph has a cycle")
if not all(n in r.stdout + r.stderr for n in cycle):
    sys.exit("the planner does not name the jobs in the cycle")
tmp = tempfile.mkdtemp()
shutil.copytree("scripts", f"{tmp}/scripts")
os.makedirs(f"{tmp}/jobs")
first = sorted(cycle)[0]
fixed = [dict(j) for j in jobs]
for j in fixed:
    if j["name"] == first:
        j["depends_on"] = [d for d in j["depends_on"] if d not in cycle]
json.dump({"jobs": fixed}, open(f"{tmp}/jobs/dag.json", "w"))
deps_now = {j["name"]: list(j.get("depends_on", [])) for j in fixed}
r = subprocess.run(["python3", "scripts/plan_dag.py"], cwd=tmp, capture_output=True, text=True)
if r.returncode != 0:
    sys.exit(f"the planner fails on an acyclic graph: {r.stderr.strip()[-200:]}")
check_plan(json.load(open(f"{tmp}/out/run_plan.json")), set(deps), set())
print(f"ok: cycle {sorted(cycle)} reported, {len(runnable)} jobs staged")
"""


RECIPES = [
    TaskRecipe(
        task_id="auto-schedule-nightly-backup",
        fixture=_backup_fixture,
        playbook=_backup_playbook,
        verify=_BACKUP_VERIFY,
        failure_mode="tar writes into backups/ before the script has created that directory",
    ),
    TaskRecipe(
        task_id="auto-build-etl-runner",
        fixture=_etl_fixture,
        playbook=_etl_playbook,
        verify=_ETL_VERIFY,
        failure_mode="the runner does not create work/, so extract cannot write its output",
    ),
    TaskRecipe(
        task_id="auto-fix-invalid-cron-entries",
        fixture=_cron_fix_fixture,
        playbook=_cron_fix_playbook,
        verify=_CRON_FIX_VERIFY,
        failure_mode="writes Sunday as day-of-week 7, which the linter's 0-6 range rejects",
    ),
    TaskRecipe(
        task_id="auto-add-retry-backoff",
        fixture=_retry_fixture,
        playbook=_retry_playbook,
        verify=_RETRY_VERIFY,
        failure_mode="computes the fractional backoff delay with integer-only bash arithmetic",
    ),
    TaskRecipe(
        task_id="auto-run-inbox-watcher",
        fixture=_watcher_fixture,
        playbook=_watcher_playbook,
        verify=_WATCHER_VERIFY,
        failure_mode="moves files into processed/ and rejected/ without creating those folders",
    ),
    TaskRecipe(
        task_id="auto-convert-cron-to-timers",
        fixture=_timers_fixture,
        playbook=_timers_playbook,
        verify=_TIMERS_VERIFY,
        failure_mode="parses the MAILTO/PATH variable lines as if they were job lines",
    ),
    TaskRecipe(
        task_id="auto-make-setup-idempotent",
        fixture=_setup_fixture,
        playbook=_setup_playbook,
        verify=_SETUP_VERIFY,
        failure_mode="counts changes with ((changes++)), which returns 1 at zero and trips set -e",
    ),
    TaskRecipe(
        task_id="auto-write-log-rotation",
        fixture=_rotation_fixture,
        playbook=_rotation_playbook,
        verify=_ROTATION_VERIFY,
        failure_mode="shifts old generations with mv even for a log that has none yet",
    ),
    TaskRecipe(
        task_id="auto-fix-duplicate-scheduled-reports",
        fixture=_sched_fixture,
        playbook=_sched_playbook,
        verify=_SCHED_VERIFY,
        failure_mode="deduplicates job dicts with set(), which fails because dicts are unhashable",
    ),
    TaskRecipe(
        task_id="auto-run-parallel-conversions",
        fixture=_parallel_fixture,
        playbook=_parallel_playbook,
        verify=_PARALLEL_VERIFY,
        failure_mode="runs a job by hand before out/converted/ exists; convert.py won't create it",
    ),
    TaskRecipe(
        task_id="auto-harden-ci-check-script",
        fixture=_ci_fixture,
        playbook=_ci_playbook,
        verify=_CI_VERIFY,
        failure_mode="writes the patch with space indentation for a tab-indented script",
    ),
    TaskRecipe(
        task_id="auto-render-env-configs",
        fixture=_render_fixture,
        playbook=_render_playbook,
        verify=_RENDER_VERIFY,
        failure_mode="uses string.Template, which also treats the bare $remote_addr as a variable",
    ),
    TaskRecipe(
        task_id="auto-plan-job-dag",
        fixture=_dag_fixture,
        playbook=_dag_playbook,
        verify=_DAG_VERIFY,
        failure_mode="assumes every job has a depends_on key; root jobs omit it",
    ),
]
