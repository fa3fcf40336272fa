"""Agent-Memory recipes: the memory store is local files (JSONL, SQLite, markdown notes)."""

from __future__ import annotations

import difflib
import json
import random
import textwrap
from datetime import datetime, timedelta

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, kill, output, patch, read, sh, start, write
from ise_dagster.tasklib.dsl import swap as _swap

_GIT_INIT = (
    "git init -q && git add -A && GIT_AUTHOR_DATE='2026-01-05T10:00:00' "
    "GIT_COMMITTER_DATE='2026-01-05T10:00:00' git commit -qm 'init'"
)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _stamp(rng: random.Random, start: datetime, days: int) -> str:
    t = start + timedelta(days=rng.randrange(days), minutes=rng.randrange(1, 1439))
    return t.strftime("%Y-%m-%dT%H:%M:00Z")


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


_PEOPLE = [
    "Lena Fischer",
    "Marco Rossi",
    "Priya Nair",
    "Tom Berg",
    "Ana Costa",
    "Yuki Sato",
    "Omar Haddad",
    "Ines Dupont",
    "Kofi Mensah",
    "Sara Lind",
    "Dana Kim",
    "Raj Patel",
]
_TOPICS = [
    "backup rotation",
    "staging cluster",
    "billing service",
    "search reindex",
    "on-call rota",
    "TLS certificates",
    "CI runners",
    "log retention",
    "release train",
    "feature flags",
    "cost report",
    "VPN access",
    "dashboard alerts",
    "API rate limits",
]

# ---------------------------------------------------------------- memory-apply-format-preferences

_FORMAT_PREFS = [  # key, superseded value, latest value
    ("date_format", "DD/MM/YYYY", "YYYY-MM-DD"),
    ("currency_style", "USD 1234.56", "$1,234.56"),
    ("heading_depth", "3", "2"),
    ("executive_summary", "omit", "include"),
]


def _format_prefs_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    ids = rng.sample(range(100, 1000), 60)
    base = datetime(2026, 1, 5)
    facts = []
    for key, old, new in _FORMAT_PREFS:
        t_old = _stamp(rng, base, 60)
        t_new = _stamp(rng, base + timedelta(days=90), 60)
        facts.append({"key": key, "value": old, "category": "formatting", "created_at": t_old})
        facts.append({"key": key, "value": new, "category": "formatting", "created_at": t_new})
    for n in range(52):
        cat = rng.choice(["project", "contact", "writing", "tooling"])
        key = f"{cat}_{rng.choice(_TOPICS).replace(' ', '_')}_{n}"
        value = rng.choice(_PEOPLE) if cat == "contact" else rng.choice(_TOPICS)
        facts.append(
            {"key": key, "value": value, "category": cat, "created_at": _stamp(rng, base, 250)}
        )
    rng.shuffle(facts)
    facts = [{"id": f"mem-{i}", **f} for i, f in zip(ids, facts, strict=True)]

    def day(month: int) -> datetime:
        return datetime(2026, month, rng.randint(1, 28))

    def amt(lo: int, hi: int) -> int:
        return rng.randrange(lo, hi) * 50

    d = [day(m) for m in (9, 9, 8, 7, 8, 8, 9)]
    a = [amt(15000, 20000), amt(5000, 9000), amt(1000, 3000)]
    draft = textwrap.dedent(
        f"""\
        # Q3 2026 Report

        ## Revenue
        Revenue closed at ${amt(20000, 30000)} on {d[0]:%d/%m/%Y}, against USD {a[0]}.5 in Q2.
        ### Regional detail
        EMEA booked $ {a[1]:,} by Sept {d[1].day}, 2026; APAC on {d[2]:%Y-%m-%d} with USD {a[2]}.
        #### Top accounts
        The largest renewal ($ {amt(1000, 2000):,}) was signed on {d[3]:%d/%m/%Y}.

        ## Costs
        Cloud spend reached USD {amt(3000, 5000)}.75 on {d[4]:%b %d, %Y}.
        ### Headcount
        Two hires started on {d[5]:%d/%m/%Y} at a combined cost of ${amt(300, 500):,}.

        ## Outlook
        The Q4 plan assumes ${amt(25000, 35000):,} in bookings with a review on {d[6]:%d/%m/%Y}.
        """
    )  # noqa: E501
    files = {"memory/facts.jsonl": _jsonl(facts), "reports/q3_draft.md": draft}
    return Fixture(files), {}


_APPLY_PREFS = textwrap.dedent(
    """\
    import json, re
    from datetime import datetime

    facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
    latest, older = {}, {}
    for f in sorted(facts, key=lambda f: f["created_at"]):
        if f["category"] == "formatting":
            if f["key"] in latest:
                older.setdefault(f["key"], []).append(latest[f["key"]]["id"])
            latest[f["key"]] = f
    prefs = {k: f["value"] for k, f in latest.items()}
    DATE_FMT = {"YYYY-MM-DD": "%Y-%m-%d", "DD/MM/YYYY": "%d/%m/%Y"}[prefs["date_format"]]

    def parse_date(s):
        for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%b %d, %Y"):
            try:
                return datetime.strptime(s, fmt)
            except ValueError:
                pass
        raise ValueError(f"unrecognised date: {s!r}")

    def money(m):
        value = float(m.group(1).replace(",", ""))
        return f"${value:,.2f}" if prefs["currency_style"].startswith("$") else f"USD {value:.2f}"

    text = open("reports/q3_draft.md").read()
    DATE = r"\\b(\\d{2}/\\d{2}/\\d{4}|\\d{4}-\\d{2}-\\d{2}|[A-Z][a-z]{2,3} \\d{1,2}, \\d{4})\\b"
    text, n_dates = re.subn(DATE, lambda m: parse_date(m.group(1)).strftime(DATE_FMT), text)
    text, n_money = re.subn(r"(?:USD ?|\\$ ?)(\\d[\\d,]*(?:\\.\\d+)?)", money, text)
    depth = int(prefs["heading_depth"])
    text, n_head = re.subn(r"^#{%d,} " % (depth + 1), "#" * depth + " ", text, flags=re.M)
    if prefs["executive_summary"] == "include" and "## Executive Summary" not in text:
        title, rest = text.split("\\n", 1)
        sections = ", ".join(re.findall(r"^## (.+)$", rest, re.M)).lower()
        summary = f"## Executive Summary\\nThis report covers {sections} for Q3 2026.\\n"
        text = f"{title}\\n\\n{summary}{rest}"
    open("reports/q3_draft.md", "w").write(text)

    lines = ["# Applied formatting preferences", ""]
    for key, f in sorted(latest.items()):
        lines.append(f"- {key} = {f['value']} (entry {f['id']}, {f['created_at']}); "
                     f"superseded: {', '.join(older.get(key, [])) or 'none'}")
    open("out/applied_preferences.md", "w").write("\\n".join(lines) + "\\n")
    print(f"applied {len(latest)} preferences: {n_dates} dates, {n_money} amounts, "
          f"{n_head} headings reformatted")
    """
)


def _format_prefs_playbook(ctx: Ctx) -> Playbook:
    prefs, _ = yield [
        sh(
            "jq -c 'select(.category==\"formatting\")' memory/facts.jsonl",
            say="Looking up the formatting preferences in memory.",
        ),
        read("reports/q3_draft.md", say="And the draft they apply to."),
    ]
    run = yield sh(
        f"mkdir -p out && cat > apply_prefs.py <<'EOF'\n{_APPLY_PREFS}EOF\npython3 apply_prefs.py",
        say="Writing a script that takes the newest value per key and reformats the draft.",
    )
    if not run.ok:
        # The draft writes 'Sept 14, 2026'; strptime's %b only knows 'Sep'.
        yield edit(
            "apply_prefs.py",
            "            return datetime.strptime(s, fmt)",
            '            return datetime.strptime(s.replace("Sept ", "Sep "), fmt)',
            say="strptime rejects 'Sept'; normalising it to 'Sep' before parsing.",
        )
        run = yield sh("python3 apply_prefs.py")
    n_prefs = prefs.stdout.count("\n") if prefs.ok else "?"
    yield Reply(
        f"Found {n_prefs} formatting entries and used the newest per key: {run.stdout.strip()}. "
        "The applied entry ids are listed in out/applied_preferences.md."
    )
    check, _ = yield [
        sh(
            "grep -cE '[0-9]{2}/[0-9]{2}/[0-9]{4}|USD|^###' reports/q3_draft.md",
            say="Checking no old-style dates, amounts or deep headings remain,",
        ),
        read("out/applied_preferences.md", say="and re-reading the applied-preferences note."),
    ]
    left = check.stdout.splitlines()[0] if check.stdout else "?"
    yield Reply(f"Checked: {left} old-style dates, amounts or deep headings left in the draft.")


_FORMAT_PREFS_VERIFY = """
import json, re, sys
facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
latest = {}
for f in sorted(facts, key=lambda f: f["created_at"]):
    if f["category"] == "formatting":
        latest[f["key"]] = f
text = open("reports/q3_draft.md").read()
if re.search(r"\\b\\d{2}/\\d{2}/\\d{4}\\b|\\b[A-Z][a-z]{2,3} \\d{1,2}, \\d{4}", text):
    sys.exit("dates not in YYYY-MM-DD remain")
amounts = re.findall(r"(USD ?|\\$ ?)(\\d[\\d,]*(?:\\.\\d+)?)", text)
bad = [a + b for a, b in amounts if a != "$" or not re.fullmatch(r"\\d{1,3}(,\\d{3})*\\.\\d{2}", b)]
if len(amounts) < 6 or bad:
    sys.exit(f"amounts not in $1,234.56 style: {bad[:3]}")
if re.search(r"^#{3,} ", text, re.M):
    sys.exit("headings deeper than level 2 remain")
if "## Executive Summary" not in text:
    sys.exit("executive summary missing")
try:
    note = open("out/applied_preferences.md").read()
except FileNotFoundError:
    sys.exit("out/applied_preferences.md is missing")
missing = [f["id"] for f in latest.values() if not re.search(re.escape(f["id"]) + r"\\b", note)]
if missing:
    sys.exit(f"note does not cite applied entries {missing}")
print("ok: draft follows the latest preferences")
"""

# ------------------------------------------------------------ memory-consolidate-duplicate-facts

_FACT_KEYS = ["email", "phone", "office", "manager", "timezone", "role"]


def _consolidate_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    base = datetime(2025, 6, 1)
    facts = []
    subjects = _PEOPLE + [f"{t.title()} Team" for t in _TOPICS[:10]]
    for subject in subjects:
        for key in rng.sample(_FACT_KEYS, 5):
            facts.append(
                {
                    "subject": subject,
                    "key": key,
                    "value": f"{key}-{rng.randrange(1000)}",
                    "source": rng.choice(["chat", "email", "import"]),
                    "created_at": _stamp(rng, base, 300),
                }
            )
    originals = rng.sample(facts, 30)
    for i, f in enumerate(originals):
        later = datetime.strptime(f["created_at"], "%Y-%m-%dT%H:%M:00Z") + timedelta(days=5 + i)
        dup = dict(f, created_at=later.strftime("%Y-%m-%dT%H:%M:00Z"), source="chat")
        if i % 2:  # same fact, different wording
            dup["subject"], dup["key"] = f["subject"].lower(), f["key"].title() + " "
        else:  # contradiction
            dup["value"] = f"{f['key']}-{rng.randrange(1000, 2000)}"
        if i % 3 == 0:  # older records were imported with epoch seconds
            t = datetime.strptime(f["created_at"], "%Y-%m-%dT%H:%M:00Z")
            f["created_at"] = int((t - datetime(1970, 1, 1)).total_seconds())
        facts.append(dup)
    rng.shuffle(facts)
    for n, f in enumerate(facts, 1):
        f["id"] = f"f{n:04d}"
    rows = [
        {k: f[k] for k in ("id", "subject", "key", "value", "source", "created_at")} for f in facts
    ]
    return Fixture({"memory/facts.jsonl": _jsonl(rows)}), {}


_CONSOLIDATE_V1 = textwrap.dedent(
    """\
    import csv, json, os
    from collections import defaultdict

    facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
    groups = defaultdict(list)
    for f in facts:
        groups[(f["subject"].strip().lower(), f["key"].strip().lower())].append(f)
    keep, history, log = [], [], []
    for (subject, key), group in groups.items():
        group.sort(key=lambda f: f["created_at"])
        newest = group[-1]
        keep.append(newest)
        for old in group[:-1]:
            history.append(old)
            same = old["value"].strip().lower() == newest["value"].strip().lower()
            log.append([subject, key, old["id"], newest["id"], "merge" if same else "override",
                        old["value"], newest["value"]])
    keep.sort(key=lambda f: f["id"])
    os.makedirs("out", exist_ok=True)
    with open("memory/facts_history.jsonl", "w") as fh:
        fh.writelines(json.dumps(f) + "\\n" for f in history)
    with open("memory/facts.jsonl", "w") as fh:
        fh.writelines(json.dumps(f) + "\\n" for f in keep)
    with open("out/consolidation_log.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "key", "old_id", "kept_id", "action", "old_value", "kept_value"])
        w.writerows(log)
    merges = sum(1 for r in log if r[4] == "merge")
    print(f"{len(facts)} facts -> {len(keep)} kept; {len(history)} to history "
          f"({merges} merges, {len(log) - merges} overrides)")
    """
)
_CONSOLIDATE_V2 = _swap(
    _CONSOLIDATE_V1,
    "from collections import defaultdict\n",
    "from collections import defaultdict\nfrom datetime import datetime\n\n\n"
    "def ts(f):  # some imported records use epoch seconds\n"
    '    v = f["created_at"]\n'
    "    if isinstance(v, (int, float)):\n"
    "        return float(v)\n"
    '    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()\n',
)
_CONSOLIDATE_V2 = _swap(
    _CONSOLIDATE_V2, 'group.sort(key=lambda f: f["created_at"])', "group.sort(key=ts)"
)


def _consolidate_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("wc -l memory/facts.jsonl && head -3 memory/facts.jsonl", say="Looking at the store"),
        read("memory/facts.jsonl", 1, 12, say="and at how subjects and keys are written."),
    ]
    yield write("consolidate.py", _CONSOLIDATE_V1, say="Grouping by normalised subject and key.")
    run = yield sh("python3 consolidate.py")
    if not run.ok:
        # Some created_at values are epoch integers, so sorting mixes int and str. The
        # traceback already says so; the count only sizes the problem, so both go together.
        yield [
            sh(
                "grep -c '\"created_at\": [0-9]' memory/facts.jsonl",
                say="Sorting failed on int vs str timestamps; counting the numeric ones",
            ),
            write("consolidate.py", _CONSOLIDATE_V2, say="and normalising both styles."),
        ]
        run = yield sh("python3 consolidate.py")
    yield Reply(
        f"Consolidated memory/facts.jsonl: {run.stdout.strip()}. Older versions are in "
        "memory/facts_history.jsonl and every merge/override is in out/consolidation_log.csv."
    )
    check = yield sh(
        'jq -r \'[(.subject|ascii_downcase|ltrimstr(" ")|rtrimstr(" ")), '
        '(.key|ascii_downcase|rtrimstr(" "))]|@tsv\' memory/facts.jsonl | sort | uniq -d | wc -l',
        say="Verifying each subject/key pair occurs once.",
    )
    yield Reply(f"Checked: {check.stdout.strip() or '?'} repeated subject/key pairs remain.")


_CONSOLIDATE_VERIFY = """
import csv, json, sys
from datetime import datetime
def ts(v):
    if isinstance(v, (int, float)):
        return float(v)
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
def norm(f):
    return (f["subject"].strip().lower(), f["key"].strip().lower())
cur = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
try:
    hist = [json.loads(l) for l in open("memory/facts_history.jsonl") if l.strip()]
    log = list(csv.DictReader(open("out/consolidation_log.csv")))
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
ids = [f["id"] for f in cur + hist]
if len(ids) != len(set(ids)) or not hist:
    sys.exit("ids repeat across store and history, or history is empty")
kept = {}
for f in cur:
    if norm(f) in kept:
        sys.exit(f"subject/key {norm(f)} kept twice")
    kept[norm(f)] = f
for h in hist:
    k = kept.get(norm(h))
    if k is None or ts(h["created_at"]) > ts(k["created_at"]):
        sys.exit(f"history entry {h['id']} is newer than the kept fact or has none")
logged = " ".join(" ".join(r.values()) for r in log)
if len(log) != len(hist) or any(h["id"] not in logged for h in hist):
    sys.exit("change log does not list every merge/override")
print(f"ok: {len(cur)} facts, {len(hist)} in history")
"""

# ---------------------------------------------------------------- memory-search-migration-decisions

_MIGRATION_NOTES = [  # title, body, tags
    (
        "Postgres migration kickoff",
        "Decision: we start the Postgres migration this quarter "
        "because MySQL 5.7 reaches end of life.",
        ["pg-migration"],
    ),
    (
        "pg move: replication",
        "Decided to use logical replication for the pg move rather than "
        "dump/restore, to keep downtime under 10 minutes.",
        [],
    ),
    ("Pooling", "Decision: adopt pgbouncer in transaction mode for connection pooling.", ["infra"]),
    (
        "Rehearsal plan",
        "Decided to run two full rehearsals on staging before the real switch.",
        ["pg-migration"],
    ),
    (
        "pgbouncer rollback",
        "Reversed the pgbouncer transaction-mode decision: prepared statements "
        "broke in staging, so we use session mode.",
        [],
    ),
    (
        "Database cutover window",
        "Database cutover decided for Saturday 02:00 UTC because traffic is lowest then.",
        ["ops"],
    ),
    (
        "Reporting replica",
        "Decided to keep the reporting replica on MySQL until Q2 because the BI "
        "tool lacks a Postgres driver.",
        [],
    ),
]
_NOISE_NOTES = [
    ("Bird walk", "Saw the autumn migration of cranes over the lake."),
    ("CRM data", "Sales ops handles the CRM migration with the vendor; not our team."),
    ("Postgres meetup", "Interesting talk on Postgres vacuum tuning at the meetup."),
]


def _migration_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    rows = [
        (
            t,
            f"Notes on the {t}: {rng.choice(['status ok', 'follow-up next week', 'owner '])}"
            f"{rng.choice(_PEOPLE)}.",
            [rng.choice(["ops", "team", "infra", "misc"])],
        )
        for t in (rng.choice(_TOPICS) for _ in range(190))
    ]
    rows += [(t, b, []) for t, b in _NOISE_NOTES]
    rng.shuffle(rows)
    stamps = sorted(_stamp(rng, datetime(2025, 3, 1), 400) for _ in range(len(rows) + 7))
    slots = sorted(rng.sample(range(len(stamps)), 7))
    mig = iter(_MIGRATION_NOTES)
    notes, other = [], iter(rows)
    for i, stamp in enumerate(stamps):
        title, body, tags = next(mig) if i in slots else next(other)
        notes.append((i + 1, stamp, title, body, tags))
    sql = [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, created_at TEXT, title TEXT, body TEXT);",
        "CREATE TABLE tags (note_id INTEGER, tag TEXT);",
        "BEGIN;",
    ]
    for nid, stamp, title, body, tags in notes:
        sql.append(
            f"INSERT INTO notes VALUES ({nid}, '{stamp}', {_sql_str(title)}, {_sql_str(body)});"
        )
        sql += [f"INSERT INTO tags VALUES ({nid}, '{tag}');" for tag in tags]
    sql.append("COMMIT;")
    files = {"seed.sql": "\n".join(sql) + "\n"}
    setup = ("mkdir -p memory out && sqlite3 memory/notes.sqlite < seed.sql && rm seed.sql",)
    return Fixture(files, setup), {}


_MIGRATION_SQL_V1 = textwrap.dedent(
    """\
    -- Past decisions about the Postgres migration, tagged or not, oldest first.
    SELECT n.id, n.created_at, n.title, n.body
    FROM notes n
    WHERE lower(n.title || ' ' || n.body) REGEXP 'postgres|pg move|database cutover|pgbouncer'
       OR n.id IN (SELECT t.note_id FROM tags t WHERE t.name = 'pg-migration')
    ORDER BY n.created_at;
    """
)


def _migration_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "sqlite3 memory/notes.sqlite .tables 'select count(*) from notes'",
            say="Looking at the notes database",
        ),
        sh(
            "sqlite3 memory/notes.sqlite "
            "\"select id, title from notes where title like '%migrat%' or title like '%pg%'\"",
            say="and at the titles that mention the migration.",
        ),
    ]
    yield write("out/queries.sql", _MIGRATION_SQL_V1, say="Writing a reusable search query.")
    run = yield sh("sqlite3 -json memory/notes.sqlite < out/queries.sql")
    if not run.ok:
        # The tags table's column is `tag`, not `name`.
        yield sh("sqlite3 memory/notes.sqlite '.schema tags'", say="Checking the tags columns.")
        yield write(
            "out/queries.sql",
            _swap(_MIGRATION_SQL_V1, "t.name", "t.tag"),
            say="The column is `tag`; fixing the query.",
        )
        run = yield sh("sqlite3 -json memory/notes.sqlite < out/queries.sql")
    rows = json.loads(run.stdout or "[]") if run.ok else []
    decisions = [
        r for r in rows if any(w in r["body"].lower() for w in ("decid", "decision", "revers"))
    ]
    lines = ["# Postgres migration decisions", "", "Oldest first; queries in out/queries.sql.", ""]
    for r in decisions:
        flag = " **REVERSED an earlier decision.**" if "revers" in r["body"].lower() else ""
        lines.append(f"- {r['created_at'][:10]} (note #{r['id']}, {r['title']}): {r['body']}{flag}")
    reversed_ids = [f"#{r['id']}" for r in decisions if "revers" in r["body"].lower()]
    lines += ["", f"Reversed decisions: {', '.join(reversed_ids) or 'none'}."]
    yield write(
        "out/migration_decisions.md",
        "\n".join(lines) + "\n",
        say="Writing the chronological summary.",
    )
    yield Reply(
        f"The query matched {len(rows)} notes, {len(decisions)} of them decisions; "
        f"reversed: {', '.join(reversed_ids) or 'none'}. Summary in "
        "out/migration_decisions.md, queries in out/queries.sql."
    )
    summary = yield read("out/migration_decisions.md", say="Re-reading the summary.")
    n = summary.stdout.count("note #") if summary.ok else "?"
    yield Reply(f"Checked: the summary lists {n} decisions, each with its date and note id.")


_MIGRATION_VERIFY = """
import re, sqlite3, sys
con = sqlite3.connect("memory/notes.sqlite")
tagged = {i for (i,) in con.execute("select note_id from tags where tag = 'pg-migration'")}
want = []
for nid, title, body in con.execute("select id, title, body from notes order by created_at"):
    text = f"{title} {body}".lower()
    hit = nid in tagged or re.search(r"postgres|pg move|database cutover|pgbouncer", text)
    if hit and re.search(r"decid|decision|revers", text):
        want.append(nid)
try:
    summary = open("out/migration_decisions.md").read()
    queries = open("out/queries.sql").read()
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
if "select" not in queries.lower():
    sys.exit("out/queries.sql holds no query")
pos = [m.start() if (m := re.search(rf"#{i}\\b", summary)) else -1 for i in want]
if -1 in pos:
    sys.exit(f"decision notes not cited: {[i for i, p in zip(want, pos) if p < 0]}")
if pos != sorted(pos):
    sys.exit("decisions are not in chronological order")
if "revers" not in summary.lower():
    sys.exit("the reversed decision is not mentioned")
print(f"ok: {len(want)} decisions cited in order")
"""

# ---------------------------------------------------------------- memory-record-meeting-facts

_MEETING_FACTS = [
    ("decision", "billing-api moves to weekly releases"),
    ("decision", "staging is reset every Monday at 06:00 UTC"),
    ("decision", "error budget for checkout is 0.5% per month"),
    ("owner", "Priya owns the search reindex"),
    ("deadline", "search reindex done by 2026-11-20"),
    ("owner", "Marco owns the billing-api changelog"),
    ("preference", "Lena prefers async updates over status meetings"),
]


def _meeting_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    known = rng.sample(_MEETING_FACTS, 2)
    facts = [
        {
            "_schema": "facts store v1",
            "fields": ["id", "type", "text", "source", "created_at"],
            "id_format": "F0000, sequential",
            "types": ["owner", "deadline", "decision", "preference"],
        }
    ]
    rows = [
        (
            rng.choice(["owner", "decision", "deadline"]),
            f"{rng.choice(_PEOPLE).split()[0]} owns the {t}" if i % 2 else f"{t} reviewed monthly",
        )
        for i, t in enumerate(rng.choice(_TOPICS) for _ in range(78))
    ]
    # Filler must not restate a meeting fact: only the two `known` ones are real duplicates.
    meeting_texts = {text for _, text in _MEETING_FACTS}
    rows = [row for row in rows if row[1] not in meeting_texts]
    rows[rng.randrange(10, 60) : 0] = known
    for i, (kind, text) in enumerate(rows):
        facts.append(
            {
                "id": f"F{i + 1:04d}",
                "type": kind,
                "text": text,
                "source": f"meetings/2026-{rng.randint(1, 10):02d}-0{rng.randint(1, 9)}.md:"
                f"{rng.randint(3, 30)}",
                "created_at": "2026-10-01",
            }
        )
    label = {
        "decision": "Decision",
        "owner": "Owner",
        "deadline": "Deadline",
        "preference": "Preference",
    }
    section = {
        "decision": "Decisions",
        "owner": "Action items",
        "deadline": "Action items",
        "preference": "Preferences",
    }
    md = [
        "# Platform sync 2026-11-04",
        "",
        "Attendees: Priya, Marco, Lena, Tom",
        "",
        "## Small talk",
        f"- Marco is back from {rng.choice(['Lisbon', 'Oslo', 'Porto'])}, the weather was great.",
        "- Lena's cat knocked over the coffee again.",
        "",
    ]
    for sec in ("Decisions", "Action items", "Preferences"):
        md += (
            [f"## {sec}"]
            + [f"- {label[k]}: {t}." for k, t in _MEETING_FACTS if section[k] == sec]
            + [""]
        )
    md += ["## Next meeting", "- Same time next week, Tom brings snacks."]
    files = {"memory/facts.jsonl": _jsonl(facts), "meetings/2026-11-04.md": "\n".join(md) + "\n"}
    return Fixture(files), {}


_MEETING_V1 = textwrap.dedent(
    """\
    import json, os, re

    MEETING = "meetings/2026-11-04.md"
    lines = open("memory/facts.jsonl").read().splitlines()
    facts = [json.loads(l) for l in lines if l.strip()]
    next_id = max(int(f["id"][1:]) for f in facts) + 1
    known = {(f["type"], f["text"].strip().rstrip(".").lower()) for f in facts if "text" in f}
    added, skipped = [], []
    for n, line in enumerate(open(MEETING), 1):
        m = re.match(r"- (Decision|Owner|Deadline|Preference): (.+?)\\.?$", line.strip())
        if not m:
            continue
        kind, text = m.group(1).lower(), m.group(2)
        if (kind, text.lower()) in known:
            skipped.append(f"{MEETING}:{n}: {kind}: {text} (already stored)")
            continue
        added.append({"id": f"F{next_id:04d}", "type": kind, "text": text,
                      "source": f"{MEETING}:{n}", "created_at": "2026-11-04"})
        known.add((kind, text.lower()))
        next_id += 1
    with open("memory/facts.jsonl", "a") as fh:
        fh.writelines(json.dumps(f) + "\\n" for f in added)
    os.makedirs("out", exist_ok=True)
    open("out/skipped_facts.txt", "w").write("\\n".join(skipped) + "\\n")
    print(f"added {len(added)} facts, skipped {len(skipped)} duplicates")
    """
)


def _meeting_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("head -3 memory/facts.jsonl; wc -l memory/facts.jsonl", say="Checking the store"),
        read("meetings/2026-11-04.md", say="and reading the meeting notes."),
    ]
    yield write("record_facts.py", _MEETING_V1, say="Extracting labelled durable facts.")
    run = yield sh("python3 record_facts.py")
    if not run.ok:
        # The first record is the schema note and has no id.
        yield write(
            "record_facts.py",
            _swap(
                _MEETING_V1,
                "facts = [json.loads(l) for l in lines if l.strip()]",
                "facts = [json.loads(l) for l in lines if l.strip()]\n"
                'facts = [f for f in facts if "_schema" not in f]  # skip the schema note',
            ),
            say="The first record is the schema note; skipping it.",
        )
        run = yield sh("python3 record_facts.py")
    yield Reply(
        f"Recorded the meeting: {run.stdout.strip()}. New facts cite "
        "meetings/2026-11-04.md:<line>; duplicates are in out/skipped_facts.txt."
    )
    check, _ = yield [
        sh("grep -c '2026-11-04.md' memory/facts.jsonl", say="Confirming the new entries"),
        read("out/skipped_facts.txt", say="and the skipped list."),
    ]
    n = check.stdout.splitlines()[0] if check.stdout else "?"
    yield Reply(f"Checked: {n} entries now reference the meeting file.")


_MEETING_VERIFY = """
import json, re, sys
facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
if "_schema" not in facts[0]:
    sys.exit("schema record is gone")
facts = facts[1:]
ids = [f.get("id") for f in facts]
if len(ids) != len(set(ids)) or not all(re.fullmatch(r"F\\d{4}", i or "") for i in ids):
    sys.exit("ids are missing, malformed or repeated")
try:
    skipped = open("out/skipped_facts.txt").read().lower()
except FileNotFoundError:
    sys.exit("out/skipped_facts.txt is missing")
by_source = {f["source"]: f for f in facts}
keys = set(facts[0])
for n, line in enumerate(open("meetings/2026-11-04.md"), 1):
    m = re.match(r"- (Decision|Owner|Deadline|Preference): (.+?)\\.?$", line.strip())
    src = f"meetings/2026-11-04.md:{n}"
    if not m:
        if src in by_source:
            sys.exit(f"non-fact line stored: {line.strip()}")
        continue
    text = m.group(2).lower()
    same = [f for f in facts if f["text"].lower().rstrip(".") == text]
    if len(same) != 1:
        sys.exit(f"fact stored {len(same)} times: {text}")
    if same[0]["source"] != src and text not in skipped:
        sys.exit(f"duplicate not listed as skipped: {text}")
    if same[0]["source"] == src and set(same[0]) != keys:
        sys.exit(f"new fact does not follow the schema: {same[0]}")
print("ok: meeting facts recorded without duplicates")
"""

# ---------------------------------------------------------------- memory-archive-expired-entries


def _archive_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    entries, archive = [], []
    for n in range(1, 126):
        e = {
            "id": f"e{n:03d}",
            "text": f"{rng.choice(_TOPICS)}: {rng.choice(_PEOPLE)}",
            "tags": rng.sample(["ops", "team", "billing", "infra", "people", "release"], 2),
            "created_at": _stamp(rng, datetime(2026, 5, 1), 190),
        }
        roll = rng.random()
        if roll < 0.55:
            e["ttl_days"] = rng.choice([14, 30, 60, 90])
        elif roll < 0.7:
            e["ttl_days"] = None
        if rng.random() < 0.15:
            e["pinned"] = True
        if n <= 5:  # archived by an earlier run
            e.update(created_at="2026-01-10T08:00:00Z", ttl_days=7)
            e.pop("pinned", None)
            archive.append(e)
        else:
            entries.append(e)
    index: dict[str, list[str]] = {}
    for e in entries + archive[:2]:  # the old index still points at two archived entries
        for tag in e["tags"]:
            index.setdefault(tag, []).append(e["id"])
    files = {
        "memory/store.jsonl": _jsonl(entries),
        "memory/archive.jsonl": _jsonl(archive),
        "memory/index.json": json.dumps(index, indent=2, sort_keys=True) + "\n",
    }
    return Fixture(files), {}


_ARCHIVE_V1 = textwrap.dedent(
    """\
    import json
    from datetime import datetime, timedelta, timezone

    NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)
    live, expired = [], []
    for line in open("memory/store.jsonl"):
        if not line.strip():
            continue
        e = json.loads(line)
        created = datetime.fromisoformat(e["created_at"].replace("Z", "+00:00"))
        if "ttl_days" in e and not e.get("pinned") and created + timedelta(e["ttl_days"]) <= NOW:
            expired.append(line)
        else:
            live.append((line, e))
    with open("memory/archive.jsonl", "a") as fh:
        fh.writelines(expired)  # unchanged lines
    with open("memory/store.jsonl", "w") as fh:
        fh.writelines(line for line, _ in live)
    index = {}
    for _, e in live:
        for tag in e.get("tags", []):
            index.setdefault(tag, []).append(e["id"])
    with open("memory/index.json", "w") as fh:
        json.dump(index, fh, indent=2, sort_keys=True)
        fh.write("\\n")
    print(f"archived {len(expired)} expired entries, {len(live)} live, {len(index)} index keys")
    """
)


def _archive_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("wc -l memory/*.jsonl && head -c 300 memory/index.json", say="Sizing up the store"),
        read("memory/store.jsonl", 1, 8, say="and looking at the ttl and pinned fields."),
    ]
    yield write("archive.py", _ARCHIVE_V1, say="Writing the expiry pass as of 2026-11-10.")
    run = yield sh("python3 archive.py")
    if not run.ok:
        # Some entries carry "ttl_days": null, which timedelta cannot take.
        yield write(
            "archive.py",
            _swap(_ARCHIVE_V1, 'if "ttl_days" in e and', 'if e.get("ttl_days") is not None and'),
            say="ttl_days can be null; treating null like a missing ttl.",
        )
        run = yield sh("python3 archive.py")
    yield Reply(
        f"Done as of 2026-11-10: {run.stdout.strip()}. Expired lines were appended "
        "unchanged to memory/archive.jsonl and memory/index.json was rebuilt."
    )
    lines, ids = yield [
        sh("wc -l memory/store.jsonl memory/archive.jsonl", say="Checking the counts line up:"),
        sh("jq '[.[]|length]|add' memory/index.json", say="store, archive and index ids."),
    ]
    yield Reply(
        f"Checked the counts:\n{lines.stdout.strip()}\nids in the index: {ids.stdout.strip()}"
    )


_ARCHIVE_VERIFY = """
import json, sys
from datetime import datetime, timedelta, timezone
NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)
def expired(e):
    t = datetime.fromisoformat(e["created_at"].replace("Z", "+00:00"))
    ttl = e.get("ttl_days")
    return ttl is not None and not e.get("pinned") and t + timedelta(days=ttl) <= NOW
live = [json.loads(l) for l in open("memory/store.jsonl") if l.strip()]
arch = [json.loads(l) for l in open("memory/archive.jsonl") if l.strip()]
ids = sorted(int(e["id"][1:]) for e in live + arch)
if ids != list(range(1, len(ids) + 1)):
    sys.exit("entries were lost or duplicated between store and archive")
if any(expired(e) for e in live):
    sys.exit("expired entries remain in the live store")
if any(not expired(e) for e in arch):
    sys.exit("live or pinned entries were archived")
index = json.load(open("memory/index.json"))
want = {}
for e in live:
    for tag in e.get("tags", []):
        want.setdefault(tag, set()).add(e["id"])
if {k: set(v) for k, v in index.items() if v} != want:
    sys.exit("memory/index.json does not match the live entries")
print(f"ok: {len(live)} live, {len(arch)} archived")
"""

# ---------------------------------------------------------------- memory-build-keyword-index

_NOTE_WORDS = {
    "ops": ["backup", "restore", "snapshot", "retention", "bucket", "cron"],
    "security": ["certificate", "rotation", "tls", "vault", "token", "audit"],
    "data": ["postgres", "replica", "query", "index", "vacuum", "schema"],
    "release": ["deploy", "rollback", "canary", "changelog", "pipeline", "tag"],
    "people": ["onboarding", "mentor", "review", "feedback", "hiring", "offsite"],
}


def _keyword_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files: dict[str, str | bytes] = {}
    for n in range(1, 71):
        tags = rng.sample(sorted(_NOTE_WORDS), 2)
        words = [w for t in tags for w in _NOTE_WORDS[t]]
        title = " ".join(rng.sample(words, 3)).capitalize()
        body = " ".join(
            f"The {rng.choice(words)} for {rng.choice(_TOPICS)} needs a {rng.choice(words)} "
            f"check before {rng.choice(['friday', 'the release', 'month end'])}."
            for _ in range(rng.randint(2, 4))
        )
        if n == 23:
            body += " Discussed over caf\u00e9 with the na\u00efve intern."
        text = (
            f"---\ntitle: {title}\ntags: [{', '.join(tags)}]\n"
            f"date: 2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}\n---\n{body}\n"
        )
        # One note was saved by an old Windows editor.
        files[f"memory/notes/n{n:03d}.md"] = text.encode("cp1252" if n == 23 else "utf-8")
    return Fixture(files), {}


_BUILD_INDEX_V1 = textwrap.dedent(
    """\
    import glob, json, os, re
    from collections import Counter

    STOP = {"the", "for", "and", "with", "before", "needs", "check", "over"}
    index, docs = {}, {}
    for path in sorted(glob.glob("memory/notes/*.md")):
        note_id = os.path.basename(path)[:-3]
        text = open(path).read()
        _, front, body = text.split("---", 2)
        meta = dict(line.split(": ", 1) for line in front.strip().splitlines())
        tags = [t.strip() for t in meta.get("tags", "").strip("[]").split(",") if t.strip()]
        words = re.findall(r"[a-z0-9]+", (meta.get("title", "") + " " + body).lower())
        terms = [w for w in words if w not in STOP and len(w) > 2]
        docs[note_id] = {"title": meta.get("title", ""), "tags": tags,
                         "date": meta.get("date", ""), "length": len(terms)}
        for term, n in Counter(terms).items():
            index.setdefault(term, {})[note_id] = n
    with open("memory/index.json", "w") as fh:
        json.dump({"docs": docs, "terms": index}, fh, indent=1, sort_keys=True)
    print(f"indexed {len(docs)} notes, {len(index)} terms")
    """
)
_SEARCH_NOTES = textwrap.dedent(
    """\
    \"\"\"Rank notes for a query by TF-IDF over memory/index.json; matching tags boost a note.\"\"\"
    import json, math, os, re, sys

    HERE = os.path.dirname(os.path.abspath(__file__))
    idx = json.load(open(os.path.join(HERE, "..", "memory", "index.json")))
    docs, terms = idx["docs"], idx["terms"]
    query = re.findall(r"[a-z0-9]+", " ".join(sys.argv[1:]).lower())
    scores = {}
    for w in query:
        postings = terms.get(w, {})
        if postings:
            idf = math.log(len(docs) / len(postings)) + 1.0
            for d, tf in postings.items():
                scores[d] = scores.get(d, 0.0) + tf / max(docs[d]["length"], 1) * idf
    for d, meta in docs.items():
        if set(query) & set(meta["tags"]):
            scores[d] = scores.get(d, 0.0) * 1.5 + 0.1  # tag boost
    for d, s in sorted(scores.items(), key=lambda kv: -kv[1])[:5]:
        print(f"{s:.3f}  {d}  {docs[d]['title']}  [{', '.join(docs[d]['tags'])}]")
    """
)


def _keyword_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls memory/notes | head -5; ls memory/notes | wc -l", say="Listing the notes"),
        read("memory/notes/n001.md", say="and checking the front matter format."),
    ]
    yield [
        write("build_index.py", _BUILD_INDEX_V1, say="Writing the index builder"),
        write("scripts/search_notes.py", _SEARCH_NOTES, say="and the TF-IDF search script."),
    ]
    run = yield sh("python3 build_index.py")
    if not run.ok:
        # n023.md is cp1252 ('caf\xe9'), not UTF-8.
        yield write(
            "build_index.py",
            _swap(
                _BUILD_INDEX_V1,
                "    text = open(path).read()\n",
                "    raw = open(path, 'rb').read()\n"
                "    try:\n        text = raw.decode('utf-8')\n"
                "    except UnicodeDecodeError:  # an old note saved as cp1252\n"
                "        text = raw.decode('cp1252')\n",
            ),
            say="One note is not UTF-8; falling back to cp1252 for it.",
        )
        run = yield sh("python3 build_index.py")
    examples = yield sh(
        "mkdir -p out; for q in 'tls certificate rotation' 'backup restore' 'postgres replica'; "
        'do echo "## query: $q"; python3 scripts/search_notes.py $q; echo; done '
        "> out/search_examples.txt; cat out/search_examples.txt",
        say="Saving example queries with their results.",
    )
    yield Reply(
        f"Built memory/index.json ({run.stdout.strip()}) and scripts/search_notes.py; "
        f"three example queries are in out/search_examples.txt."
    )
    top = examples.stdout.split("\n")[1] if examples.ok else "?"
    yield Reply(f"Checked the examples: the top hit for 'tls certificate rotation' is: {top}")


_KEYWORD_VERIFY = """
import glob, json, os, subprocess, sys
try:
    idx = json.load(open("memory/index.json"))
except (FileNotFoundError, ValueError):
    sys.exit("memory/index.json is missing or invalid")
notes = {os.path.basename(p)[:-3]: p for p in glob.glob("memory/notes/*.md")}
terms = idx.get("terms", idx) if isinstance(idx, dict) else {}
seen = {d for posting in terms.values() if isinstance(posting, dict) for d in posting}
if seen != set(notes):
    sys.exit(f"index covers {len(seen)} of {len(notes)} notes")
for term in ("backup", "certificate", "postgres"):
    for d, n in terms.get(term, {}).items():
        if term not in open(notes[d], "rb").read().decode("utf-8", "replace").lower() or n < 1:
            sys.exit(f"bad posting {term} -> {d}")
r = subprocess.run([sys.executable, "scripts/search_notes.py", "vault", "token"],
                   capture_output=True, text=True)
hits = [line.split()[1] for line in r.stdout.splitlines() if line.strip()]
top = open(notes[hits[0]], "rb").read().decode("utf-8", "replace").lower() if hits else ""
if r.returncode or not ("vault" in top or "token" in top):
    sys.exit(f"search script gave no sensible ranking: {r.stdout[:200]} {r.stderr[-200:]}")
ex = open("out/search_examples.txt").read() if os.path.exists("out/search_examples.txt") else ""
if ex.count("n0") < 4:
    sys.exit("out/search_examples.txt lacks example results")
print(f"ok: {len(terms)} terms over {len(notes)} notes")
"""

# ---------------------------------------------------------------- memory-migrate-notes-schema

_SCHEMA_MD = textwrap.dedent(
    """\
    # Notes store schema v2

    - `notes(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, created_at TEXT)`:
      the v1 `tags` column (comma-separated string) is dropped.
    - `tags(note_id INTEGER NOT NULL REFERENCES notes(id), tag TEXT NOT NULL,
      PRIMARY KEY (note_id, tag))`: one row per distinct tag of a note, trimmed and lower-case.
    - `PRAGMA user_version = 2` marks a v2 database (v1 databases report 0).
    - Migrations run in one transaction and must be safe to re-run.
    """
)


def _schema_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    pool = ["ops", "backup", "infra", "release", "people", "billing", "security", "data"]
    sql = [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, "
        "tags TEXT, created_at TEXT);",
        "BEGIN;",
    ]
    for n in range(1, 151):
        tags = rng.sample(pool, rng.randint(0, 3))
        if n % 17 == 0:  # hand-typed duplicates with different case
            tags = tags + [tags[0].title()] if tags else ["Ops", "ops"]
        tag_str = ("," if n % 2 else ", ").join(tags)
        value = "NULL" if not tags and n % 3 == 0 else _sql_str(tag_str)
        sql.append(
            f"INSERT INTO notes VALUES ({n}, {_sql_str(rng.choice(_TOPICS).capitalize())}, "
            f"'Note {n} about {rng.choice(_TOPICS)}.', {value}, "
            f"'{_stamp(rng, datetime(2025, 1, 1), 600)}');"
        )
    sql.append("COMMIT;")
    files = {"seed.sql": "\n".join(sql) + "\n", "memory/SCHEMA.md": _SCHEMA_MD}
    return Fixture(files, ("sqlite3 memory/notes.sqlite < seed.sql && rm seed.sql",)), {}


_MIGRATE_V1 = textwrap.dedent(
    """\
    \"\"\"Migrate memory/notes.sqlite from v1 (tags column) to v2 (tags table); re-runnable.\"\"\"
    import os, shutil, sqlite3, sys

    DB, BACKUP = "memory/notes.sqlite", "memory/notes.v1.sqlite"
    con = sqlite3.connect(DB, isolation_level=None)
    if con.execute("PRAGMA user_version").fetchone()[0] >= 2:
        print("already at v2; nothing to do")
        sys.exit(0)
    if not os.path.exists(BACKUP):
        shutil.copy2(DB, BACKUP)
    rows = con.execute("SELECT id, tags FROM notes").fetchall()
    before = sum(len({t.strip().lower() for t in (tags or "").split(",") if t.strip()})
                 for _, tags in rows)
    con.execute("BEGIN")
    try:
        con.execute("CREATE TABLE tags (note_id INTEGER NOT NULL REFERENCES notes(id), "
                    "tag TEXT NOT NULL, PRIMARY KEY (note_id, tag))")
        for note_id, tags in rows:
            for tag in (tags or "").split(","):
                if tag.strip():
                    con.execute("INSERT INTO tags VALUES (?, ?)", (note_id, tag.strip().lower()))
        after = con.execute("SELECT count(*) FROM tags").fetchone()[0]
        if after != before:
            raise RuntimeError(f"tag count mismatch: {before} before, {after} after")
        con.execute("ALTER TABLE notes DROP COLUMN tags")
        con.execute("PRAGMA user_version = 2")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    print(f"migrated {len(rows)} notes to v2: {before} tags before, {after} after")
    """
)


def _schema_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "sqlite3 memory/notes.sqlite .schema 'select count(*) from notes' "
            "'select tags from notes limit 6' 'pragma user_version'",
            say="Inspecting the v1 db.",
        ),
        read("memory/SCHEMA.md", say="Reading the v2 target schema."),
    ]
    yield write("scripts/migrate_v2.py", _MIGRATE_V1, say="Writing a transactional migration.")
    run = yield sh("python3 scripts/migrate_v2.py")
    if not run.ok:
        # Some notes list the same tag twice ('ops,Ops'), which hits the primary key.
        yield write(
            "scripts/migrate_v2.py",
            _swap(
                _MIGRATE_V1,
                '        for tag in (tags or "").split(","):\n'
                "            if tag.strip():\n"
                '                con.execute("INSERT INTO tags VALUES (?, ?)", '
                "(note_id, tag.strip().lower()))\n",
                '        for tag in sorted({t.strip().lower() for t in (tags or "").split(",") '
                "if t.strip()}):\n"
                '            con.execute("INSERT INTO tags VALUES (?, ?)", (note_id, tag))\n',
            ),
            say="Some notes repeat a tag in another case; de-duplicating per note.",
        )
        run = yield sh("python3 scripts/migrate_v2.py")
    yield Reply(f"Backed up to memory/notes.v1.sqlite and migrated: {run.stdout.strip()}.")
    check, _ = yield [
        sh("python3 scripts/migrate_v2.py", say="Re-running to confirm it is a no-op"),
        sh(
            "sqlite3 memory/notes.sqlite 'pragma user_version' '.schema notes'",
            say="and checking the schema version.",
        ),
    ]
    yield Reply(
        f"Checked: a second run says '{check.stdout.splitlines()[0] if check.ok else '?'}'"
        " and the schema is at version 2."
    )


_SCHEMA_VERIFY = """
import os, sqlite3, subprocess, sys
if not os.path.exists("memory/notes.v1.sqlite"):
    sys.exit("no backup at memory/notes.v1.sqlite")
old = sqlite3.connect("memory/notes.v1.sqlite")
want = {(i, t.strip().lower()) for i, tags in old.execute("select id, tags from notes")
        for t in (tags or "").split(",") if t.strip()}
new = sqlite3.connect("memory/notes.sqlite")
if new.execute("pragma user_version").fetchone()[0] != 2:
    sys.exit("user_version is not 2")
if "tags" in [r[1] for r in new.execute("pragma table_info(notes)")]:
    sys.exit("notes still has the tags column")
got = set(new.execute("select note_id, tag from tags"))
if got != want:
    sys.exit(f"tags differ: {len(got)} rows, expected {len(want)}")
new.close()
r = subprocess.run([sys.executable, "scripts/migrate_v2.py"], capture_output=True, text=True)
again = set(sqlite3.connect("memory/notes.sqlite").execute("select note_id, tag from tags"))
if r.returncode or again != want:
    sys.exit(f"re-running the migration is not a no-op: {r.stderr[-200:]}")
print(f"ok: {len(want)} tag rows, backup kept")
"""

# ---------------------------------------------------------------- memory-resolve-conflicting-facts

_VENDORS = [
    "Acme Supplies",
    "Borealis Freight",
    "Cobalt Print",
    "Delta Catering",
    "Evergreen IT",
    "Fjord Paper",
    "Granite Security",
    "Helix Cleaning",
    "Iris Travel",
    "Juniper Legal",
    "Kestrel Couriers",
    "Lumen Energy",
    "Mosaic Design",
    "Nimbus Cloud",
    "Orbit Telecom",
]
_POLICY = {
    "source_priority": ["contract", "email", "chat"],
    "tie_break": "same priority: the newest created_at wins",
    "note": "losing values stay in the store with superseded: true",
}


def _conflict_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    attrs = ["address", "contact", "payment_terms", "phone", "account_manager", "vat_id"]
    facts = []

    def value(attr: str) -> str:
        return {
            "address": f"{rng.randint(1, 200)} {rng.choice(['Mill', 'Harbour', 'Oak'])} St",
            "contact": rng.choice(_PEOPLE),
            "payment_terms": f"net {rng.choice([15, 30, 45, 60])}",
            "phone": f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            "account_manager": rng.choice(_PEOPLE),
            "vat_id": f"GB{rng.randint(10**8, 10**9)}",
        }[attr]

    for vendor in _VENDORS:
        for attr in rng.sample(attrs, 6):
            facts.append(
                {
                    "vendor": vendor,
                    "attribute": attr,
                    "value": value(attr),
                    "source": rng.choice(["contract", "email", "chat"]),
                    "created_at": _stamp(rng, datetime(2025, 1, 1), 500),
                }
            )
    for i, f in enumerate(rng.sample(facts, 12)):
        v = value(f["attribute"])
        while v == f["value"]:
            v = value(f["attribute"])
        src = f["source"] if i % 4 == 0 else rng.choice(["contract", "email", "chat"])
        src = src.capitalize() if i % 3 == 1 else src  # typed by hand
        facts.append(
            dict(f, value=v, source=src, created_at=_stamp(rng, datetime(2026, 6, 1), 100))
        )
    for f in rng.sample(facts, 10):  # sources were typed by hand in places
        f["source"] = f["source"].capitalize()
    rng.shuffle(facts)
    rows = [{"id": f"v{n:03d}", **f} for n, f in enumerate(facts, 1)]
    files = {
        "memory/facts.jsonl": _jsonl(rows),
        "memory/policy.json": json.dumps(_POLICY, indent=2) + "\n",
    }
    return Fixture(files), {}


_RESOLVE_V1 = textwrap.dedent(
    """\
    import json, os
    from collections import defaultdict

    policy = json.load(open("memory/policy.json"))
    rank = policy["source_priority"]
    facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
    groups = defaultdict(list)
    for f in facts:
        groups[(f["vendor"], f["attribute"])].append(f)
    log = ["# Conflict resolutions", "",
           f"Policy: {' > '.join(rank)}; tie-break: {policy['tie_break']}.", ""]
    n = 0
    for (vendor, attr), group in sorted(groups.items()):
        if len({f["value"] for f in group}) < 2:
            continue
        n += 1
        winner = max(group, key=lambda f: (-rank.index(f["source"]), f["created_at"]))
        for f in group:
            if f is not winner:
                f["superseded"], f["superseded_by"] = True, winner["id"]
                same = f["source"].lower() == winner["source"].lower()
                why = "same source priority, newer entry wins" if same else "higher-priority source"
                log.append(f"- {vendor} / {attr}: kept {winner['id']} {winner['value']!r} "
                           f"({winner['source']}, {winner['created_at'][:10]}) over {f['id']} "
                           f"{f['value']!r} ({f['source']}, {f['created_at'][:10]}): {why}")
    with open("memory/facts.jsonl", "w") as fh:
        fh.writelines(json.dumps(f) + "\\n" for f in facts)
    os.makedirs("out", exist_ok=True)
    open("out/conflict_resolutions.md", "w").write("\\n".join(log) + "\\n")
    print(f"resolved {n} conflicts across {len(groups)} vendor attributes")
    """
)


def _conflict_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("memory/policy.json", say="Reading the source priority rules."),
        sh("head -3 memory/facts.jsonl; wc -l memory/facts.jsonl", say="And the facts' shape."),
    ]
    yield write("resolve.py", _RESOLVE_V1, say="Resolving each vendor attribute by policy.")
    run = yield sh("python3 resolve.py")
    if not run.ok:
        # A few sources are capitalised ('Email'), which the priority list does not contain.
        yield write(
            "resolve.py",
            _swap(_RESOLVE_V1, 'rank.index(f["source"])', 'rank.index(f["source"].lower())'),
            say="Sources are inconsistently capitalised; comparing them lower-cased.",
        )
        run = yield sh("python3 resolve.py")
    yield Reply(
        f"{run.stdout.strip().capitalize()}. Losing values stay in memory/facts.jsonl "
        "with superseded: true, and out/conflict_resolutions.md explains each decision."
    )
    n_sup, n_log = yield [
        sh(
            "jq -s 'map(select(.superseded)) | length' memory/facts.jsonl",
            say="Cross-checking the superseded facts",
        ),
        sh("grep -c '^- ' out/conflict_resolutions.md", say="against the log."),
    ]
    sup, logged = n_sup.stdout.strip() or "?", n_log.stdout.strip() or "?"
    yield Reply(f"Checked: {sup} superseded facts and {logged} log lines, one per losing value.")


_CONFLICT_VERIFY = """
import json, sys
from collections import defaultdict
rank = json.load(open("memory/policy.json"))["source_priority"]
facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
if sorted(int(f["id"][1:]) for f in facts) != list(range(1, len(facts) + 1)):
    sys.exit("facts were dropped")
try:
    log = open("out/conflict_resolutions.md").read()
except FileNotFoundError:
    sys.exit("out/conflict_resolutions.md is missing")
groups = defaultdict(list)
for f in facts:
    groups[(f["vendor"], f["attribute"])].append(f)
conflicts = 0
for (vendor, attr), g in groups.items():
    if len({f["value"] for f in g}) < 2:
        if any(f.get("superseded") for f in g):
            sys.exit(f"non-conflicting fact superseded: {vendor}/{attr}")
        continue
    conflicts += 1
    win = max(g, key=lambda f: (-rank.index(f["source"].lower()), f["created_at"]))
    live = [f for f in g if not f.get("superseded")]
    if live != [win]:
        sys.exit(f"{vendor}/{attr}: expected {win['id']} to win, live: {[f['id'] for f in live]}")
    if f"{vendor} / {attr}" not in log and not (vendor in log and win["id"] in log):
        sys.exit(f"{vendor}/{attr} resolution not logged")
if conflicts < 10:
    sys.exit(f"only {conflicts} conflicts found")
print(f"ok: {conflicts} conflicts resolved")
"""

# ---------------------------------------------------------------- memory-weekly-journal-digest

_PROBLEMS = [
    "Flaky payments integration test (timeout)",
    "Staging disk filled up",
    "VPN drops during long uploads",
    "Slow CI queue in the morning",
    "Expired token in the backup job",
]
_LESSONS = [
    "Pin tool versions in CI images",
    "Check disk quotas before bulk imports",
    "Write the rollback step before the deploy step",
    "Ask for review early",
    "Keep secrets out of cron environment files",
    "Batch small PRs on Fridays",
    "Time-box investigations to an hour before escalating",
]


def _journal_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {}
    recurring = rng.sample(_PROBLEMS, 2)
    lessons = rng.sample(_LESSONS, 7)
    for day in range(1, 8):
        done = [
            f"{rng.choice(['Finished', 'Reviewed', 'Shipped', 'Cleaned up'])} the "
            f"{rng.choice(_TOPICS)}"
            for _ in range(2)
        ]
        probs = [p for p in recurring if rng.random() < 0.6] or [recurring[day % 2]]
        if day in (2, 5):
            probs.append(rng.choice([p for p in _PROBLEMS if p not in recurring]))
        files[f"memory/journal/2026-11-{day:02d}.md"] = (
            f"# Journal 2026-11-{day:02d}\n\n## Done\n"
            + "".join(f"- {d}.\n" for d in done)
            + "\n## Problems\n"
            + "".join(f"- {p}.\n" for p in probs)
            + f"\n## Lessons\n- {lessons[day - 1]}.\n"
        )
    store = [
        {
            "_schema": {
                "id": "s0000",
                "kind": "note|digest|fact",
                "path": "file it describes",
                "title": "str",
                "tags": "list",
                "covers": "{from, to} for digests",
                "created_at": "ISO time",
            }
        }
    ]
    for n in range(1, 51):
        topic = rng.choice(_TOPICS)
        store.append(
            {
                "id": f"s{n:04d}",
                "kind": "note",
                "title": topic.capitalize(),
                "path": f"memory/notes/{topic.replace(' ', '-')}-{n}.md",
                "tags": [topic.split()[0]],
                "created_at": _stamp(rng, datetime(2026, 6, 1), 150),
            }
        )
    # The store was last written by a tool that leaves no final newline.
    files["memory/store.jsonl"] = _jsonl(store).rstrip("\n")
    return Fixture(files), {}


def _journal_playbook(ctx: Ctx) -> Playbook:
    seen, _ = yield [
        sh(
            "tail -n 1 memory/store.jsonl; echo; echo ====; cat memory/journal/2026-11-0*.md",
            say="Reading the last store entry and the week's journal",
        ),
        read("memory/store.jsonl", 1, 2, say="and checking the store schema."),
    ]
    last, _, journal = seen.stdout.partition("\n====\n")
    last = last.strip()
    days: dict[str, dict[str, list[str]]] = {}
    day = section = ""
    for line in journal.splitlines():
        if line.startswith("# Journal "):
            day = line.split()[-1]
            days[day] = {}
        elif line.startswith("## "):
            section = line[3:]
        elif line.startswith("- ") and day:
            days[day].setdefault(section, []).append(line[2:].rstrip("."))
    counts: dict[str, list[str]] = {}
    for d, secs in days.items():
        for p in secs.get("Problems", []):
            counts.setdefault(p, []).append(d[5:])
    rec = {p: ds for p, ds in counts.items() if len(ds) > 1}
    lines = ["# Weekly digest 2026-W45 (2026-11-01 to 2026-11-07)", "", "## Accomplishments"]
    lines += [f"- {d[5:]}: {item}" for d, secs in days.items() for item in secs.get("Done", [])]
    lines += ["", "## Recurring problems"]
    lines += [f"- {p} ({len(ds)} days: {', '.join(ds)})" for p, ds in rec.items()]
    lines += ["", "## One-off problems"]
    lines += [f"- {p} ({ds[0]})" for p, ds in counts.items() if p not in rec]
    lines += ["", "## Lessons"]
    lines += [f"- {item}" for secs in days.values() for item in secs.get("Lessons", [])]
    entry = json.dumps(
        {
            "id": "s0051",
            "kind": "digest",
            "title": "Weekly digest 2026-W45",
            "path": "memory/notes/week-2026-45.md",
            "tags": ["digest", "journal", "weekly"],
            "covers": {"from": "2026-11-01", "to": "2026-11-07"},
            "created_at": "2026-11-08T09:00:00Z",
        }
    )
    _, res = yield [
        write(
            "memory/notes/week-2026-45.md", "\n".join(lines) + "\n", say="Writing the digest note"
        ),
        edit(
            "memory/store.jsonl",
            last + "\n",
            last + "\n" + entry + "\n",
            say="and registering it after the last store entry.",
        ),
    ]
    if not res.ok:
        # The store has no trailing newline, so `last + "\n"` is not in the file.
        res = yield edit(
            "memory/store.jsonl",
            last,
            last + "\n" + entry + "\n",
            say="The file has no final newline; anchoring on the line itself.",
        )
    yield Reply(
        f"Wrote memory/notes/week-2026-45.md covering {len(days)} days "
        f"({len(rec)} recurring problems) and registered it in memory/store.jsonl as s0051."
    )
    check = yield sh(
        "tail -n 2 memory/store.jsonl | jq -c '{id, kind, covers}'",
        say="Checking the last entries still parse.",
    )
    yield Reply(f"Checked: the store's last two entries parse:\n{check.stdout.strip()}")


_JOURNAL_VERIFY = """
import glob, json, re, sys
try:
    digest = open("memory/notes/week-2026-45.md").read()
except FileNotFoundError:
    sys.exit("digest note missing")
low = digest.lower()
if not all(w in low for w in ("accomplishment", "recurring", "lesson")):
    sys.exit("digest lacks accomplishments / recurring problems / lessons sections")
seen = {}
for p in sorted(glob.glob("memory/journal/2026-11-0*.md")):
    text = open(p).read()
    probs = text.split("## Problems")[1].split("## Lessons")[0]
    for item in re.findall(r"^- (.+?)\\.?$", probs, re.M):
        seen[item] = seen.get(item, 0) + 1
    lesson = re.findall(r"^- (.+?)\\.?$", text.split("## Lessons")[1], re.M)[0]
    if lesson not in digest:
        sys.exit(f"lesson missing: {lesson}")
recurring = low.split("recurring", 1)[1]
for item, n in seen.items():
    if n > 1 and item.lower() not in recurring:
        sys.exit(f"recurring problem missing: {item}")
try:
    store = [json.loads(l) for l in open("memory/store.jsonl") if l.strip()]
except ValueError:
    sys.exit("memory/store.jsonl has an invalid line")
ids = [e.get("id") for e in store[1:]]
hits = [e for e in store if e.get("path") == "memory/notes/week-2026-45.md"]
if len(hits) != 1 or len(ids) != len(set(ids)) or not hits[0].get("tags"):
    sys.exit("expected one tagged store entry pointing at the digest with a unique id")
if "2026-11-01" not in json.dumps(hits[0]) or "2026-11-07" not in json.dumps(hits[0]):
    sys.exit("store entry does not record the covered date range")
print("ok: digest written and registered")
"""

# ---------------------------------------------------------------- memory-exercise-memory-service

_MEMORY_SERVER = textwrap.dedent(
    """\
    \"\"\"Tiny memory API: POST /facts {text, tags} and GET /facts?q=, kept in data.jsonl.\"\"\"
    import json, os, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs, urlparse

    DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.jsonl")
    PORT = int(os.environ.get("MEMORY_PORT", "8765"))


    def load():
        if not os.path.exists(DATA):
            return []
        return [json.loads(l) for l in open(DATA) if l.strip()]


    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            if self.path != "/facts":
                return self._send(404, {"error": "not found"})
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                return self._send(415, {"error": "expected Content-Type: application/json"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except ValueError:
                return self._send(400, {"error": "invalid JSON"})
            if not isinstance(body, dict) or not str(body.get("text", "")).strip():
                return self._send(400, {"error": "text is required"})
            fact = {"id": max((f["id"] for f in load()), default=0) + 1, "text": body["text"],
                    "tags": body.get("tags", []),
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            with open(DATA, "a") as fh:
                fh.write(json.dumps(fact) + "\\n")
            self._send(201, fact)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/facts":
                return self._send(404, {"error": "not found"})
            q = parse_qs(url.query).get("q", [""])[0].lower()
            hits = [f for f in load()
                    if q in f["text"].lower() or q in [t.lower() for t in f["tags"]]]
            self._send(200, {"count": len(hits), "facts": hits})


    if __name__ == "__main__":
        print(f"memory service on 127.0.0.1:{PORT}, data in {DATA}", flush=True)
        HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
    """
)


def _service_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    seed = [
        {
            "id": n,
            "text": f"{rng.choice(_PEOPLE)} owns the {rng.choice(_TOPICS)}",
            "tags": ["owner"],
            "created_at": f"2026-10-0{rng.randint(1, 9)}T09:00:00Z",
            "source": "import",
        }
        for n in range(1, 9)
    ]
    files = {"memory_service/server.py": _MEMORY_SERVER, "memory_service/data.jsonl": _jsonl(seed)}
    facts = [
        f"{p} prefers {rng.choice(['metric units', 'short reports', 'async updates'])}"
        for p in rng.sample(_PEOPLE, 3)
    ]
    return Fixture(files), {"facts": facts}


def _service_playbook(ctx: Ctx) -> Playbook:
    url = "http://127.0.0.1:8765/facts"
    facts = ctx.facts["facts"]

    def posts(hdr: str) -> str:
        body = [json.dumps({"text": t, "tags": ["svc-check"]}) for t in facts]
        return " && ".join(f"curl -sf -X POST {url} {hdr}-d '{b}' && echo" for b in body)

    _, job = yield [
        read("memory_service/server.py", say="Reading the service's API"),
        start("python3 memory_service/server.py", say="and starting it."),
    ]
    job_id = job.extras.get("job", "")
    wait = f"for i in $(seq 50); do curl -s -o /dev/null {url} && break; sleep 0.2; done; "
    run = yield sh(wait + posts(""), say="Waiting for it to listen, then storing three facts.")
    if not run.ok:
        # curl -d sends form encoding; the service answers 415 without a JSON content type.
        run = yield sh(
            posts("-H 'Content-Type: application/json' ") + f" && curl -sf '{url}?q=svc-check'",
            say="The service wants application/json; sending the header.",
        )
    log, _ = yield [
        output(job_id, say="Taking the server's request log"),
        kill(job_id, say="and stopping it to test persistence."),
    ]
    again = yield sh(
        f"python3 memory_service/server.py & {wait}curl -sf '{url}?q=svc-check'; "
        "rc=$?; kill $!; exit $rc",
        say="Restarting and querying again.",
    )
    last = (again.stdout.strip().splitlines() or ["{}"])[-1]
    count = json.loads(last).get("count", 0) if again.ok and last.startswith("{") else 0
    transcript = (
        "# Memory service check\n\n## Requests and responses (first run)\n\n"
        f"```\n{run.stdout.strip()}\n```\n\n"
        f"## Server log\n\n```\n{log.stderr.strip()[-1500:]}\n```\n\n"
        f"## After restart\n\nGET {url}?q=svc-check\n\n```\n{again.stdout.strip()}\n```\n\n"
        f"{count} facts came back after the restart; the final server process was stopped.\n"
    )
    yield write("out/memory_service_check.md", transcript, say="Recording the transcript.")
    yield Reply(
        f"Stored {len(facts)} facts through POST /facts, read them back, and after a "
        f"restart GET returned {count} of them. Transcript: out/memory_service_check.md."
    )
    check = yield sh(
        "tail -n 3 memory_service/data.jsonl; "
        "pgrep -f 'memory_service/server[.]py' || echo 'no server running'",
        say="Confirming persistence and that it is stopped.",
    )
    yield Reply(
        f"Checked: the facts are in data.jsonl and {check.stdout.strip().splitlines()[-1]}."
    )


_SERVICE_VERIFY = """
import json, os, sys
try:
    transcript = open("out/memory_service_check.md").read()
except FileNotFoundError:
    sys.exit("out/memory_service_check.md is missing")
data = [json.loads(l) for l in open("memory_service/data.jsonl") if l.strip()]
new = [f for f in data if "source" not in f]
if len(new) < 3 or not all(f["text"] in transcript for f in new):
    sys.exit(f"expected 3 new facts recorded in the transcript, found {len(new)}")
if "restart" not in transcript.lower():
    sys.exit("the transcript does not cover the restart")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"memory_service/server.py" in cmd:
        sys.exit(f"server still running (pid {pid})")
print(f"ok: {len(new)} facts persisted, server stopped")
"""

# ---------------------------------------------------------------- memory-patch-recency-ranking

_SEARCH_PRE = textwrap.dedent(
    """\
    \"\"\"Keyword retrieval over memory facts.\"\"\"

    import math
    import re

    TOKEN = re.compile(r"[a-z0-9]+")


    def tokens(text):
        return TOKEN.findall(text.lower())


    def keyword_score(query, doc):
        \"\"\"Fraction of the query's terms that occur in the document.\"\"\"
        q = set(tokens(query))
        if not q:
            return 0.0
        words = set(tokens(doc["text"]))
        return sum(1.0 for t in q if t in words) / len(q)


    def search(query, docs, now=None, limit=5):
        scored = []
        for doc in docs:
            s = keyword_score(query, doc)
            if s > 0:
                scored.append((s, doc))
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return [doc for _, doc in scored[:limit]]
    """
)
_SEARCH_PRE_PATCHED = (
    _SEARCH_PRE.replace("import re\n", "import re\nfrom datetime import datetime, timezone\n")
    .replace(
        'TOKEN = re.compile(r"[a-z0-9]+")\n',
        'TOKEN = re.compile(r"[a-z0-9]+")\nHALF_LIFE_DAYS = 30.0\n',
    )
    .replace(
        "def search(query, docs, now=None, limit=5):\n    scored = []\n",
        "def recency_boost(doc, now):\n"
        '    """Exponential decay: a fact HALF_LIFE_DAYS old counts half as much as a new one."""\n'
        '    created = datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))\n'
        "    age_days = max((now - created).total_seconds() / 86400.0, 0.0)\n"
        "    return math.pow(0.5, age_days / HALF_LIFE_DAYS)\n\n\n"
        "def search(query, docs, now=None, limit=5):\n"
        "    now = now or datetime.now(timezone.utc)\n    scored = []\n",
    )
    .replace(
        "        s = keyword_score(query, doc)\n",
        "        s = keyword_score(query, doc) * (1.0 + recency_boost(doc, now))\n",
    )
)
_RECENCY_DIFF = "".join(
    difflib.unified_diff(
        _SEARCH_PRE.splitlines(True),
        _SEARCH_PRE_PATCHED.splitlines(True),
        "a/memory_service/search.py",
        "b/memory_service/search.py",
    )
)
_RANKING_TEST = textwrap.dedent(
    """\
    import json, os, sys, unittest
    from datetime import datetime, timezone

    HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(HERE, ".."))
    import search  # noqa: E402

    NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)


    def doc(i, text, created):
        return {"id": i, "text": text, "created_at": created}


    class RankingTest(unittest.TestCase):
        def test_newer_match_ranks_higher(self):
            docs = [doc(1, "deploy window is friday", "2026-01-02T00:00:00Z"),
                    doc(2, "deploy window is monday", "2026-11-08T00:00:00Z")]
            got = search.search("deploy window", docs, now=NOW)
            self.assertEqual([d["id"] for d in got], [2, 1])

        def test_relevance_still_counts(self):
            docs = [doc(1, "backup bucket retention policy", "2025-06-01T00:00:00Z"),
                    doc(2, "backup notes", "2026-11-09T00:00:00Z")]
            got = search.search("backup bucket retention", docs, now=NOW)
            self.assertEqual([d["id"] for d in got], [1, 2])

        def test_half_life_comes_from_config(self):
            with open(os.path.join(HERE, "..", "config.json")) as fh:
                cfg = json.load(fh)
            self.assertEqual(search.HALF_LIFE_DAYS, cfg["half_life_days"])


    if __name__ == "__main__":
        unittest.main()
    """
)


def _recency_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    config = {"half_life_days": rng.choice([7, 10, 14, 21]), "max_results": 5}
    files = {
        "memory_service/search.py": _SEARCH_PRE.replace("keyword_score", "score_match"),
        "memory_service/config.json": json.dumps(config, indent=2) + "\n",
        "memory_service/tests/test_ranking.py": _RANKING_TEST,
        "patches/recency-boost.diff": _RECENCY_DIFF,
    }
    return Fixture(files), {}


def _recency_playbook(ctx: Ctx) -> Playbook:
    diff, _ = yield [
        sh("cat patches/recency-boost.diff", say="Reading the patch"),
        read("memory_service/search.py", say="and the current search module."),
    ]
    text = diff.stdout if diff.ok else ""
    res = yield patch(text, say="Applying the recency patch.")
    if not res.ok:
        # The patch predates the keyword_score -> score_match rename.
        res = yield patch(
            text.replace("keyword_score", "score_match"),
            say="The hunk targets keyword_score, since renamed to score_match; "
            "retargeting the patch.",
        )
    yield edit(
        "memory_service/search.py",
        "import math\nimport re\nfrom datetime import datetime, timezone\n\n"
        'TOKEN = re.compile(r"[a-z0-9]+")\nHALF_LIFE_DAYS = 30.0\n',
        "import json\nimport math\nimport os\nimport re\n"
        "from datetime import datetime, timezone\n\n"
        'TOKEN = re.compile(r"[a-z0-9]+")\n'
        '_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")\n'
        "with open(_CONFIG) as _fh:\n"
        '    HALF_LIFE_DAYS = float(json.load(_fh)["half_life_days"])\n',
        say="Reading the half-life from config.json instead of the hard-coded 30.",
    )
    tests = yield sh("python3 -m unittest discover memory_service/tests 2>&1 | tail -3")
    yield Reply(
        f"Applied the recency boost (retargeted to score_match), made the half-life come "
        f"from memory_service/config.json, and the tests pass: {tests.stdout.strip()}"
    )
    check, _ = yield [
        sh(
            "python3 -m unittest discover memory_service/tests",
            say="Re-running the suite with its exit status",
        ),
        sh(
            "grep -n 'recency_boost\\|HALF_LIFE' memory_service/search.py",
            say="and showing where the boost and half-life live.",
        ),
    ]
    yield Reply(
        "Checked: the suite exits 0 and search.py uses recency_boost with the "
        f"configured half-life ({'ok' if check.ok else 'failed'})."
    )


_RECENCY_VERIFY = """
import subprocess, sys
src = open("memory_service/search.py").read()
if "recency_boost" not in src or "config.json" not in src:
    sys.exit("search.py lacks the recency boost or does not read config.json")
if "HALF_LIFE_DAYS = 30" in src:
    sys.exit("half-life is still hard-coded")
r = subprocess.run([sys.executable, "-m", "unittest", "discover", "memory_service/tests"],
                   capture_output=True, text=True)
if r.returncode:
    sys.exit("tests fail: " + r.stderr[-300:])
print("ok: recency boost applied, tests pass")
"""

# ---------------------------------------------------------------- memory-honor-forget-request

_FALCON_FACTS = [
    "Project Falcon kickoff moved to March",
    "FLC budget approved at 120k",
    "FLC-231 blocked on the vendor API",
    "Falcon staging cluster lives in eu-west-1",
    "Priya is tech lead for Falcon",
    "Falcon client contact is Mr. Ames",
    "FLC-118 closed as won't fix",
    "Weekly FLC sync is on Tuesdays",
    "Falcon launch checklist lives in the shared drive",
    "FLC-402 needs legal review",
    "Falcon's data retention is 90 days",
    "The FLC demo went well",
    "Falcon invoices go to the finance alias",
    "FLC-77 duplicated FLC-76",
    "Marco reviews Falcon designs",
]
_BIRD_FACTS = [
    "A peregrine falcon is nesting on the office roof",
    "Facilities asked us not to disturb the falcons on the roof",
    "The falcon nest cam stream is linked in the wiki",
    "Tom photographed a falcon chick last spring",
]


def _forget_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    texts = _FALCON_FACTS + _BIRD_FACTS
    texts += [f"{rng.choice(_PEOPLE)} owns the {rng.choice(_TOPICS)}" for _ in range(101)]
    rng.shuffle(texts)
    facts = [
        {"id": f"f{n:03d}", "text": t, "created_at": _stamp(rng, datetime(2026, 1, 1), 300)}
        for n, t in enumerate(texts, 1)
    ]
    notes = [
        ("Falcon retro", "What went well on Falcon."),
        ("FLC pricing", "Pricing for FLC."),
        ("Ticket triage", "FLC-300 to FLC-310 reassigned."),
        ("Falcon risks", "Top risks."),
        ("Client call", "Falcon client wants weekly updates."),
        ("FLC staffing", "Two more."),
        ("Falcon budget", "Budget numbers."),
        ("Handover", "FLC docs moved to the archive."),
        ("Roof wildlife", "The falcon pair returned to the roof."),
        ("Nest cam", "Someone asked where the falcon camera feed is."),
    ]
    notes += [
        (rng.choice(_TOPICS).capitalize(), f"Status of the {rng.choice(_TOPICS)}.")
        for _ in range(90)
    ]
    rng.shuffle(notes)
    sql = (
        [
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT, created_at TEXT);",
            "BEGIN;",
        ]
        + [
            f"INSERT INTO notes VALUES ({n}, {_sql_str(t)}, {_sql_str(b)}, "
            f"'{_stamp(rng, datetime(2026, 1, 1), 300)}');"
            for n, (t, b) in enumerate(notes, 1)
        ]
        + ["COMMIT;"]
    )
    request = (
        "Please forget everything about project Falcon: the client cancelled and asked us "
        "to delete it.\nIt also went by FLC, and its tickets were FLC-<number>.\n"
        "(The falcons nesting on the roof have nothing to do with it; keep those.)\n"
    )
    files = {
        "memory/facts.jsonl": _jsonl(facts),
        "seed.sql": "\n".join(sql) + "\n",
        "requests/forget.txt": request,
    }
    return Fixture(files, ("sqlite3 memory/notes.sqlite < seed.sql && rm seed.sql",)), {}


_FORGET_V1 = textwrap.dedent(
    """\
    import csv, json, os, re, sqlite3

    # Case-sensitive on purpose: the project is 'Falcon'/'FLC', the bird is 'falcon'.
    PROJECT = re.compile(r"\\bFalcon\\b|\\bFLC\\b")
    facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
    keep = [f for f in facts if not PROJECT.search(f["text"])]
    gone = [f["id"] for f in facts if PROJECT.search(f["text"])]
    con = sqlite3.connect("memory/notes.sqlite")
    note_ids = [i for i, t, b in con.execute("SELECT id, title, body FROM notes")
                if PROJECT.search(f"{t} {b}")]
    with con:
        con.execute("DELETE FROM notes WHERE id IN (?)", (note_ids,))
    with open("memory/facts.jsonl", "w") as fh:
        fh.writelines(json.dumps(f) + "\\n" for f in keep)
    os.makedirs("out", exist_ok=True)
    with open("out/forget_log.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["store", "id"])
        w.writerows([["memory/facts.jsonl", i] for i in gone])
        w.writerows([["memory/notes.sqlite", i] for i in note_ids])
    print(f"removed {len(gone)} facts and {len(note_ids)} notes; kept {len(keep)} facts")
    """
)


def _forget_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("requests/forget.txt", say="Reading the forget request."),
        sh(
            "grep -ci 'falcon\\|flc' memory/facts.jsonl; grep -i 'falcon' memory/facts.jsonl | "
            "head -8; sqlite3 memory/notes.sqlite .schema",
            say="Seeing how Falcon is mentioned.",
        ),
    ]
    yield write("forget.py", _FORGET_V1, say="Matching the project names case-sensitively.")
    run = yield sh("python3 forget.py")
    if not run.ok:
        # sqlite3 cannot bind a Python list to a single `?`.
        yield write(
            "forget.py",
            _swap(
                _FORGET_V1,
                '    con.execute("DELETE FROM notes WHERE id IN (?)", (note_ids,))\n',
                '    marks = ",".join("?" * len(note_ids))\n'
                '    con.execute(f"DELETE FROM notes WHERE id IN ({marks})", note_ids)\n',
            ),
            say="A list cannot bind to one placeholder; expanding one '?' per id.",
        )
        run = yield sh("python3 forget.py")
    yield Reply(
        f"Done: {run.stdout.strip()}. The removed ids (no content) are in "
        "out/forget_log.csv; entries about the roof falcons were kept."
    )
    in_facts, in_notes = yield [
        sh(
            "grep -c 'Falcon\\|FLC' memory/facts.jsonl; grep -ci falcon memory/facts.jsonl",
            say="Re-checking the facts",
        ),
        sh(
            'sqlite3 memory/notes.sqlite "select count(*) from notes where title||body '
            "glob '*Falcon*' or title||body glob '*FLC*'\"",
            say="and the notes.",
        ),
    ]
    nums = in_facts.stdout.split() + ["?", "?"]
    yield Reply(
        f"Checked: {nums[0]} project mentions remain in facts, "
        f"{in_notes.stdout.strip() or '?'} in notes; {nums[1]} bird mentions kept."
    )


_FORGET_VERIFY = """
import csv, json, re, sqlite3, sys
PROJECT = re.compile(r"\\bFalcon\\b|\\bFLC\\b")
facts = [json.loads(l) for l in open("memory/facts.jsonl") if l.strip()]
con = sqlite3.connect("memory/notes.sqlite")
notes = list(con.execute("select id, title || ' ' || body from notes"))
if any(PROJECT.search(f["text"]) for f in facts) or any(PROJECT.search(t) for _, t in notes):
    sys.exit("project Falcon entries remain")
birds = sum(bool(re.search(r"\\bfalcons?\\b", f["text"])) for f in facts)
if birds < 4 or sum("falcon" in t for _, t in notes) < 2:
    sys.exit("unrelated bird entries were deleted")
try:
    raw = open("out/forget_log.csv").read()
except FileNotFoundError:
    sys.exit("out/forget_log.csv is missing")
if re.search(r"falcon|flc", raw, re.I):
    sys.exit("the deletion log copies content")
rows = list(csv.reader(raw.splitlines()))[1:]
fact_ids = {r[-1] for r in rows if "fact" in r[0]}
note_ids = {int(r[-1]) for r in rows if "note" in r[0]}
left = {int(f["id"][1:]) for f in facts}
if {f"f{n:03d}" for n in range(1, 121) if n not in left} != fact_ids:
    sys.exit("logged fact ids do not match the removed facts")
if set(range(1, 101)) - {i for i, _ in notes} != note_ids:
    sys.exit("logged note ids do not match the removed notes")
print(f"ok: {len(fact_ids)} facts and {len(note_ids)} notes forgotten")
"""

# ---------------------------------------------------------------- memory-update-preference-file


def _prefs_file_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    prefs = {
        "profile": {"name": rng.choice(_PEOPLE), "timezone": "Europe/Berlin", "language": "en"},
        "units": {"system": "imperial", "temperature": "fahrenheit", "currency": "EUR"},
        "schedule": {
            "working_hours": "09:00-17:00",
            "working_days": ["mon", "tue", "wed", "thu", "fri"],
            "focus_block": f"{rng.choice([10, 13, 14])}:00-{rng.choice([15, 16])}:00",
        },
        "notifications": {
            "email_digest": {"frequency": "daily", "time": "08:00"},
            "push": True,
            "sms": False,
            "mentions_only": rng.choice([True, False]),
        },
        "backups": {
            "frequency": "daily",
            "retention_days": rng.choice([14, 30, 60]),
            "target": "s3://team-backups",
        },
        "ui": {
            "theme": "light",
            "font_size": rng.choice([12, 13, 14, 16]),
            "density": "comfortable",
            "sidebar": "left",
        },
        "editor": {"tab_width": rng.choice([2, 4]), "line_numbers": True, "spellcheck": True},
        "privacy": {"share_calendar": False, "analytics": rng.choice([True, False])},
    }
    notes = textwrap.dedent(
        """\
        quick notes to self (for the assistant):
        - I'm done with miles and pounds, metric everywhere please, and celsius for temperatures.
        - Switch the app to the dark theme, light mode hurts at night.
        - New hours from Monday: I'll work 08:00-16:00.
        - The daily email digest is too much, weekly is plenty.
        - Also: had lunch with Dana, she recommends the ramen place on 5th.
        - On second thought, not dark: go with the solarized theme instead.
        """
    )
    files = {
        "memory/preferences.json": json.dumps(prefs, indent=2) + "\n",
        "inbox/notes.txt": notes,
    }
    return Fixture(files, (_GIT_INIT,)), {}


def _prefs_file_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("cat inbox/notes.txt", say="Reading the user's notes."),
        read("memory/preferences.json", say="And the current preferences."),
    ]
    _, _, res = yield [
        edit(
            "memory/preferences.json",
            '"system": "imperial",\n    "temperature": "fahrenheit"',
            '"system": "metric",\n    "temperature": "celsius"',
            say="Units: metric, celsius;",
        ),
        edit(
            "memory/preferences.json",
            '"working_hours": "09:00-17:00"',
            '"working_hours": "08:00-16:00"',
            say="working hours: 08:00-16:00;",
        ),
        edit(
            "memory/preferences.json",
            '"frequency": "daily"',
            '"frequency": "weekly"',
            say="email digest: weekly.",
        ),
    ]  # three independent edits, one message
    theme = edit(
        "memory/preferences.json",
        '"theme": "light"',
        '"theme": "solarized"',
        say="Theme: the later note wins, solarized rather than dark.",
    )
    if not res.ok:
        # backups.frequency is also "daily"; the edit must name the email_digest block.
        yield [
            edit(
                "memory/preferences.json",
                '"email_digest": {\n      "frequency": "daily"',
                '"email_digest": {\n      "frequency": "weekly"',
                say="Backups also say daily; anchoring on the email_digest block.",
            ),
            theme,
        ]
    else:
        yield theme
    summary = (
        "# Preference changes\\n\\nFrom inbox/notes.txt:\\n\\n"
        "- units.system: imperial -> metric\\n- units.temperature: fahrenheit -> celsius\\n"
        "- schedule.working_hours: 09:00-17:00 -> 08:00-16:00\\n"
        "- notifications.email_digest.frequency: daily -> weekly\\n"
        '- ui.theme: light -> solarized (the later note overrides the earlier "dark")\\n\\n'
        "Unchanged: everything else, including backups.frequency.\\n"
    )
    run = yield sh(
        f"python3 -m json.tool memory/preferences.json > /dev/null && mkdir -p out && "
        f"printf '{summary}' > out/preference_changes.md && git diff --stat",
        say="Validating the JSON and writing the change summary.",
    )
    yield Reply(
        "Updated memory/preferences.json: metric/celsius units, 08:00-16:00 hours, weekly "
        "email digest and the solarized theme (the later note beat 'dark'). "
        f"JSON is valid ({run.stdout.strip()}); summary in out/preference_changes.md."
    )
    check = yield sh(
        "git diff -U0 memory/preferences.json | grep '^[-+] '",
        say="Reviewing exactly which lines changed.",
    )
    n = check.stdout.count("\n+") + check.stdout.startswith("+")
    yield Reply(f"Checked: the diff touches {n} values and nothing else.")


_PREFS_FILE_VERIFY = """
import json, subprocess, sys
def flat(d, p=""):
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{p}{k}.") if isinstance(v, dict) else {f"{p}{k}": v})
    return out
text = open("memory/preferences.json").read()
try:
    new = json.loads(text)
except ValueError:
    sys.exit("preferences.json is not valid JSON")
if text != json.dumps(new, indent=2) + "\\n":
    sys.exit("formatting changed")
git = subprocess.run(["git", "show", "HEAD:memory/preferences.json"], capture_output=True,
                     text=True)
old = json.loads(git.stdout)
want = {"units.system": "metric", "units.temperature": "celsius",
        "schedule.working_hours": "08:00-16:00",
        "notifications.email_digest.frequency": "weekly", "ui.theme": "solarized"}
a, b = flat(old), flat(new)
changed = {k: b.get(k) for k in set(a) | set(b) if a.get(k) != b.get(k)}
if changed != want:
    sys.exit(f"unexpected changes: {changed}")
try:
    summary = open("out/preference_changes.md").read()
except FileNotFoundError:
    sys.exit("out/preference_changes.md is missing")
if not all(k.split(".")[-1] in summary for k in want):
    sys.exit("summary does not list every change")
print("ok: exactly the five stated preferences changed")
"""


RECIPES = [
    TaskRecipe(
        task_id="memory-apply-format-preferences",
        fixture=_format_prefs_fixture,
        playbook=_format_prefs_playbook,
        verify=_FORMAT_PREFS_VERIFY,
        failure_mode="parses dates with %b, which rejects the draft's 'Sept' abbreviation",
    ),
    TaskRecipe(
        task_id="memory-consolidate-duplicate-facts",
        fixture=_consolidate_fixture,
        playbook=_consolidate_playbook,
        verify=_CONSOLIDATE_VERIFY,
        failure_mode="sorts by created_at although imported records store epoch integers",
    ),
    TaskRecipe(
        task_id="memory-search-migration-decisions",
        fixture=_migration_fixture,
        playbook=_migration_playbook,
        verify=_MIGRATION_VERIFY,
        failure_mode="assumes the tags table's column is `name`; it is `tag`",
    ),
    TaskRecipe(
        task_id="memory-record-meeting-facts",
        fixture=_meeting_fixture,
        playbook=_meeting_playbook,
        verify=_MEETING_VERIFY,
        failure_mode="reads every record's id, but the first record is a schema note without one",
    ),
    TaskRecipe(
        task_id="memory-archive-expired-entries",
        fixture=_archive_fixture,
        playbook=_archive_playbook,
        verify=_ARCHIVE_VERIFY,
        failure_mode="treats a present ttl_days as a number, but some entries have ttl_days null",
    ),
    TaskRecipe(
        task_id="memory-build-keyword-index",
        fixture=_keyword_fixture,
        playbook=_keyword_playbook,
        verify=_KEYWORD_VERIFY,
        failure_mode="reads every note as UTF-8; one note is cp1252-encoded",
    ),
    TaskRecipe(
        task_id="memory-migrate-notes-schema",
        fixture=_schema_fixture,
        playbook=_schema_playbook,
        verify=_SCHEMA_VERIFY,
        failure_mode="inserts tags as listed; a tag repeated in another case breaks the key",
    ),
    TaskRecipe(
        task_id="memory-resolve-conflicting-facts",
        fixture=_conflict_fixture,
        playbook=_conflict_playbook,
        verify=_CONFLICT_VERIFY,
        failure_mode="looks sources up in the priority list verbatim; some are capitalised",
    ),
    TaskRecipe(
        task_id="memory-weekly-journal-digest",
        fixture=_journal_fixture,
        playbook=_journal_playbook,
        verify=_JOURNAL_VERIFY,
        failure_mode="anchors the append on the last line plus a newline the file does not have",
    ),
    TaskRecipe(
        task_id="memory-exercise-memory-service",
        fixture=_service_fixture,
        playbook=_service_playbook,
        verify=_SERVICE_VERIFY,
        failure_mode="posts JSON with curl -d and no Content-Type; the service answers 415",
    ),
    TaskRecipe(
        task_id="memory-patch-recency-ranking",
        fixture=_recency_fixture,
        playbook=_recency_playbook,
        verify=_RECENCY_VERIFY,
        failure_mode="applies the patch as is; its hunk targets the renamed keyword_score",
    ),
    TaskRecipe(
        task_id="memory-honor-forget-request",
        fixture=_forget_fixture,
        playbook=_forget_playbook,
        verify=_FORGET_VERIFY,
        failure_mode="binds a Python list to a single `IN (?)` placeholder",
    ),
    TaskRecipe(
        task_id="memory-update-preference-file",
        fixture=_prefs_file_fixture,
        playbook=_prefs_file_playbook,
        verify=_PREFS_FILE_VERIFY,
        failure_mode='edits `"frequency": "daily"`, which also matches the backups block',
    ),
]
