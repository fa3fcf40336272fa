"""Intelligence-Core recipes: classification, statistics, extraction, analysis (stdlib only)."""

from __future__ import annotations

import json
import math
import random
import re
import textwrap
from datetime import date, datetime, timedelta

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, poll, read, sh, start, write

_GIT_INIT = (
    "git init -q && git add -A && GIT_AUTHOR_DATE='2026-01-05T10:00:00' "
    "GIT_COMMITTER_DATE='2026-01-05T10:00:00' git commit -qm 'init'"
)

# ---------------------------------------------------------------- intel-classify-support-tickets

_TICKETS = {
    "billing": [
        ("Charged twice this month", "My card was charged twice for the same plan."),
        ("Refund request", "Please refund the annual plan, I cancelled on day two."),
        ("Invoice shows the wrong VAT", "The invoice for March lists the wrong VAT number."),
        ("Payment declined", "My payment keeps getting declined although the card is valid."),
    ],
    "bug": [
        ("App crashes on export", "Exporting a report makes the desktop app crash."),
        ("Error 500 when saving", "Saving a draft gives an error 500 every time."),
        ("Search is broken", "Search returns nothing since the last update, looks like a bug."),
    ],
    "feature-request": [
        ("Dark mode?", "Is a dark mode feature planned?"),
        ("Export to PDF", "It would be great to export dashboards to PDF."),
        ("Bulk edit", "Please add a way to edit many records at once."),
        ("Suggestion: keyboard shortcuts", "A suggestion: shortcuts for the common actions."),
    ],
    "account": [
        ("Password reset mail missing", "The password reset email never arrives."),
        ("Locked out", "I am locked out after too many attempts."),
        ("2FA code not arriving", "The 2FA code SMS does not arrive on my new phone."),
        ("Cannot sign in", "I cannot sign in with my company SSO since Monday."),
    ],
}
_TICKET_RULES = """\
{
  "categories": {
    "billing": ["charge", "refund", "invoice", "payment"],
    "bug": ["crash", "error", "broken", "bug"],
    "feature-request": ["feature", "dark mode"],
    "account": ["password"]
  }
}
"""


def _tickets_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    lines, day = [], date(2026, 1, 5)
    for i in range(60):
        cat = rng.choice(list(_TICKETS))
        subject, body = rng.choice(_TICKETS[cat])
        if i in (17, 41):  # a payment that errors: billing and bug at once
            subject, body = "Payment page error", "The payment page shows an error at checkout."
        created = (
            f"{day + timedelta(hours=7 * i)}T{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}"
        )
        lines.append(json.dumps({"id": f"T-{1000 + i}", "subject": subject, "body": body,
                                 "created_at": created}))  # fmt: skip
    files = {
        "data/tickets.jsonl": "\n".join(lines) + "\n",
        "config/ticket_rules.json": _TICKET_RULES,
    }
    return Fixture(files), {"tickets": 60}


_CLASSIFY_V1 = textwrap.dedent(
    """\
    import json, os, sys

    cats = json.load(open("config/ticket_rules.json"))["categories"]
    labeled, unmatched, ambiguous = [], [], []
    for line in open("data/tickets.jsonl"):
        t = json.loads(line)
        text = f"{t['subject']} {t['body']}".lower()
        hits = {c: sum(k in text for k in kws) for c, kws in cats.items()}
        best = max(hits.values())
        if best == 0:
            unmatched.append(t)
            continue
        top = [c for c in cats if hits[c] == best]
        if len(top) > 1:
            ambiguous.append(t["id"])
        labeled.append({**t, "category": top[0]})
    if unmatched:
        for t in unmatched:
            print(f"  {t['id']}: {t['subject']}")
        sys.exit(f"{len(unmatched)} tickets match no rule")
    counts = {c: sum(t["category"] == c for t in labeled) for c in cats}
    os.makedirs("out", exist_ok=True)
    with open("out/tickets_labeled.jsonl", "w") as f:
        f.writelines(json.dumps(t) + "\\n" for t in labeled)
    json.dump({"counts": counts, "ambiguous": ambiguous}, open("out/category_counts.json", "w"),
              indent=2)
    print(f"{len(labeled)} tickets labelled: {counts}; ambiguous: {ambiguous}")
    """
)


def _tickets_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l data/tickets.jsonl && head -2 data/tickets.jsonl",
            say="Looking at the tickets and reading the keyword rules.",
        ),
        read("config/ticket_rules.json"),
    ]
    yield write("classify.py", _CLASSIFY_V1, say="Writing a keyword classifier.")
    run = yield sh("python3 classify.py")
    if not run.ok:
        # The rules lack the terms used by many account and feature-request tickets.
        yield edit(
            "config/ticket_rules.json",
            '"feature-request": ["feature", "dark mode"],\n    "account": ["password"]',
            '"feature-request": ["feature", "dark mode", "would be great", "please add", '
            '"suggestion"],\n    "account": ["password", "locked out", "2fa", "sign in"]',
            say="The unmatched ones are lock-outs, 2FA, sign-in and wishes; extending the rules.",
        )
        run = yield sh("python3 classify.py")
    yield Reply(f"Classified every ticket into out/tickets_labeled.jsonl. {run.stdout.strip()}.")
    check, _ = yield [
        sh(
            "jq -c .counts out/category_counts.json",
            say="Cross-checking the counts against the labels.",
        ),
        sh("jq -r .category out/tickets_labeled.jsonl | sort | uniq -c"),
    ]
    counts = check.stdout.splitlines()[0] if check.ok else "?"
    yield Reply(f"Checked: the label counts {counts} match out/category_counts.json.")


_TICKETS_VERIFY = """
import json, sys
truth = {"billing": ["charge", "refund", "invoice", "payment"],
         "bug": ["crash", "error", "broken", "bug"],
         "feature-request": ["feature", "would be great", "please add", "suggestion"],
         "account": ["password", "locked out", "2fa", "sign in"]}
src = {json.loads(l)["id"]: json.loads(l) for l in open("data/tickets.jsonl")}
try:
    got = [json.loads(l) for l in open("out/tickets_labeled.jsonl") if l.strip()]
    counts = json.load(open("out/category_counts.json"))
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"missing or invalid output: {e}")
if sorted(t["id"] for t in got) != sorted(src):
    sys.exit("every ticket must appear exactly once in the labelled file")
if any(t.get("category") not in truth for t in got):
    sys.exit("a ticket has no valid category")
table = counts.get("counts", counts)
for c in truth:
    if int(table.get(c, 0)) != sum(t["category"] == c for t in got):
        sys.exit(f"the count for {c} does not match the labels")
agree = total = 0
for t in got:
    text = (t["subject"] + " " + t["body"]).lower()
    hits = {c: sum(k in text for k in kws) for c, kws in truth.items()}
    best = max(hits.values())
    if best and list(hits.values()).count(best) == 1:
        total += 1
        agree += hits[t["category"]] == best
if agree < 0.9 * total:
    sys.exit(f"only {agree}/{total} clear-cut tickets are labelled correctly")
print(f"ok: {len(got)} tickets labelled, {agree}/{total} clear-cut agree")
"""


# ---------------------------------------------------------------- intel-summarize-incident-reports

_INCIDENTS = [
    ("db-failover", "Primary database failover", "a configuration change lowered the connection "
     "pool limit and the primary exhausted its connections", "checkout failed for 18% of "
     "customers", ["Add a review step for pool configuration", "Alert on connection saturation"]),
    ("cert-expiry", "API certificate expired", "the TLS certificate on the public API expired "
     "because renewal was never automated", "all mobile app requests failed",
     ["Automate certificate renewal", "Alert 30 days before certificate expiry"]),
    ("queue-backlog", "Order queue backlog", "the queue workers ran out of capacity during the "
     "sale and no autoscaling was configured", "orders were confirmed up to 40 minutes late",
     ["Enable worker autoscaling", "Load-test before planned sales"]),
    ("dns-typo", "Internal DNS outage", "a configuration change with a typo in the DNS zone "
     "removed the service records", "internal dashboards were unreachable",
     ["Validate zone files in CI", "Document the DNS rollback"]),
    ("disk-full", "Log volume full", "the log disk ran out of capacity because log rotation was "
     "disabled", "search indexing stopped for two regions",
     ["Re-enable log rotation", "Alert at 80% disk usage"]),
    ("feature-flag", "Feature flag misfire", "a configuration change enabled an unfinished "
     "feature flag for all users", "users saw a broken settings page",
     ["Require approval for global flag changes", "Add flag change audit log"]),
    ("cdn-purge", "CDN cache purge storm", "a script purged the whole CDN cache and the origin "
     "ran out of capacity", "page loads slowed to 9 seconds",
     ["Rate-limit cache purges", "Scale origin before purges"]),
]  # fmt: skip


def _postmortem(style: int, day: date, title: str, cause: str, impact: str, todo, minutes: int):
    start = f"{9 + minutes % 5:02d}:{minutes % 60:02d}"
    if style == 0:
        items = "".join(f"- [ ] {t}\n" for t in todo)
        return (f"# Postmortem: {title}\n\nDate: {day}\nDuration: {minutes} minutes\n\n"
                f"## Timeline\n- {start} first alert\n- mitigation deployed\n\n"
                f"## Root Cause\n{cause.capitalize()}."
                f"\n\n## Impact\n{impact.capitalize()}.\n\n## Follow-ups\n{items}")  # fmt: skip
    if style == 1:
        items = "".join(f"{n}. {t}\n" for n, t in enumerate(todo, 1))
        return (f"# {title} - incident review\n\n**When:** {day}, from {start} UTC ({minutes} min)"
                f"\n\n### What happened\nOn-call was paged at {start}.\n\n### Why it happened\n"
                f"{cause.capitalize()}.\n\n### Who was affected\n{impact.capitalize()}.\n\n"
                f"### Action items\n{items}")  # fmt: skip
    items = "".join(f"* {t}\n" for t in todo)
    return (f"{title}\n{'=' * len(title)}\n\nIncident on {day}, lasted {minutes}m.\n"
            f"Cause: {cause}.\nCustomer impact: {impact}.\n\nTODO:\n{items}")  # fmt: skip


def _incidents_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {}
    days = sorted(date(2025, 1, 1) + timedelta(days=d) for d in rng.sample(range(330), 6))
    for n, (day, inc) in enumerate(zip(days, rng.sample(_INCIDENTS, 6), strict=True)):
        slug, title, cause, impact, todo = inc
        text = _postmortem(n % 3, day, title, cause, impact, todo, rng.randint(12, 190))
        files[f"incidents/{day}-{slug}.md"] = text
    return Fixture(files), {"incidents": 6}


_THEMES = ("configuration change", "capacity", "alert")


def _parse_postmortem(name: str, text: str) -> dict:
    def grab(pattern: str) -> str:
        m = re.search(pattern, text, re.S | re.I)
        return " ".join(m.group(1).split()).rstrip(".") if m else "not stated"

    return {
        "date": name[:10],
        "title": text.splitlines()[0].lstrip("# ").removeprefix("Postmortem: "),
        "minutes": grab(r"(\d+)\s*(?:minutes|min\)|m\.)"),
        "cause": grab(r"(?:## Root Cause|### Why it happened|Cause:)\s*(.+?)(?:\n\n|\n[A-Z]|$)"),
        "impact": grab(r"(?:## Impact|### Who was affected|Customer impact:)\s*(.+?)(?:\n\n|$)"),
        "todo": re.findall(r"^(?:- \[ \]|\d+\.|\*) (.+)$", text, re.M),
    }


def _incidents_playbook(ctx: Ctx) -> Playbook:
    yield read("incidents", say="Opening the incidents folder.")
    listing, dump = yield [
        sh("ls -l incidents/", say="That is a directory; listing it and reading every note."),
        sh('for f in incidents/*.md; do echo "=== $f"; cat "$f"; done'),
    ]
    names = re.findall(r"(\d{4}-\d\d-\d\d-\S+\.md)$", listing.stdout, re.M)
    yield read(f"incidents/{names[-1]}", say="Re-reading the last one; its headings differ.")
    parts = re.split(r"^=== incidents/(\S+)\n", dump.stdout, flags=re.M)[1:]
    incidents = [_parse_postmortem(n, t) for n, t in zip(parts[::2], parts[1::2], strict=True)]
    brief = ["# Incident brief\n"]
    for inc in incidents:
        brief.append(
            f"## {inc['date']} - {inc['title']}\n\n- Date: {inc['date']}\n"
            f"- Duration: {inc['minutes']} minutes\n- Root cause: {inc['cause']}\n"
            f"- Customer impact: {inc['impact']}\n- Follow-ups:\n"
            + "".join(f"  - {t}\n" for t in inc["todo"])
        )
    causes = " ".join(i["cause"] + " " + i["impact"] for i in incidents).lower()
    themes = [f"- {t}: {causes.count(t)} incidents\n" for t in _THEMES if causes.count(t) > 1]
    brief.append("## Recurring themes\n\n" + ("".join(themes) or "- none recurring\n"))
    yield write("out/incident_brief.md", "\n".join(brief), say="Writing the brief.")
    yield Reply(
        f"Wrote out/incident_brief.md with {len(incidents)} incident sections and "
        f"{len(themes)} recurring themes."
    )
    _, check = yield [
        sh("grep -c '^## ' out/incident_brief.md", say="Checking every section has a root cause."),
        sh("grep -c 'Root cause: not stated' out/incident_brief.md || true"),
    ]
    missing = check.stdout.split()[-1] if check.stdout.split() else "?"
    yield Reply(f"Checked: every incident has its own section; {missing} lack a root cause.")


_INCIDENTS_VERIFY = """
import glob, os, re, sys
try:
    brief = open("out/incident_brief.md").read()
except FileNotFoundError:
    sys.exit("out/incident_brief.md is missing")
norm = lambda s: " ".join(re.findall(r"[a-z0-9%]+", s.lower()))
sections = re.split(r"^#{1,3} ", brief, flags=re.M)
for path in glob.glob("incidents/*.md"):
    text, day = open(path).read(), os.path.basename(path)[:10]
    sec = [s for s in sections if day in s]
    if not sec:
        sys.exit(f"no section for the incident of {day}")
    sec = norm(" ".join(sec))
    heads = r"(?:Root Cause|Why it happened|Cause:)"
    cause = re.search(heads + r"\\s*(.+?)(?:\\n\\n|\\n[A-Z]|$)", text, re.S)
    minutes = re.search(r"(\\d+)\\s*(?:minutes|min\\)|m\\.)", text).group(1)
    words = [w for w in norm(cause.group(1)).split() if len(w) > 4]
    if sum(w in sec for w in words) < 0.6 * len(words):
        sys.exit(f"{day}: the root cause is not summarised")
    if minutes not in sec.split():
        sys.exit(f"{day}: the duration ({minutes} min) is missing")
    for item in re.findall(r"^(?:- \\[ \\]|\\d+\\.|\\*) (.+)$", text, re.M):
        if norm(item) not in sec:
            sys.exit(f"{day}: follow-up {item!r} is missing")
if not re.search(r"theme|recurring", brief, re.I):
    sys.exit("no recurring-themes list")
print("ok: brief covers every incident")
"""


# ---------------------------------------------------------------- intel-regional-sales-statistics


def _sales_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    regions = ["North", "South", "East", "West", "Central"]
    falling = set(rng.sample(regions, 2))
    base = {r: rng.uniform(400, 1500) for r in regions}
    orders = []
    for _ in range(300):
        region, month = rng.choice(regions), rng.randint(1, 9)
        trend = (1.0, 0.8, 0.64) if region in falling else (1.0, 1.15, 1.3)
        amount = base[region] * trend[(month - 1) // 3] * rng.uniform(0.8, 1.2)
        status = "refunded" if rng.random() < 0.05 else "completed"
        orders.append((f"2025-{month:02d}-{rng.randint(1, 28):02d}", region, amount, status))
    lines = ["order_id,date,region,amount,status"]
    for n, (day, region, amount, status) in enumerate(sorted(orders)):
        amount = -amount if status == "refunded" else amount
        text = f'"{amount:,.2f}"' if abs(amount) >= 1000 else f"{amount:.2f}"
        lines.append(f"SO-{5000 + n},{day},{region},{text},{status}")
    return Fixture({"data/sales.csv": "\n".join(lines) + "\n"}), {"falling": sorted(falling)}


_SALES_V1 = textwrap.dedent(
    """\
    import csv, os, statistics
    from collections import defaultdict

    groups = defaultdict(list)
    for r in csv.DictReader(open("data/sales.csv")):
        amount = float(r["amount"])
        if amount < 0 or r["status"] == "refunded":
            continue
        groups[r["region"], f"2025-Q{(int(r['date'][5:7]) - 1) // 3 + 1}"].append(amount)
    os.makedirs("out", exist_ok=True)
    med = {}
    with open("out/region_stats.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["region", "quarter", "orders", "mean", "median", "stdev"])
        for (region, q), vals in sorted(groups.items()):
            med[region, q] = statistics.median(vals)
            w.writerow([region, q, len(vals), f"{statistics.mean(vals):.2f}",
                        f"{med[region, q]:.2f}", f"{statistics.stdev(vals):.2f}"])
    notes = []
    for region in sorted({r for r, _ in med}):
        qs = sorted(q for r, q in med if r == region)
        for a, b in zip(qs, qs[1:]):
            drop = med[region, a] - med[region, b]
            if drop > 0:
                pct = 100 * drop / med[region, a]
                notes.append(f"- {region}: median fell from {med[region, a]:.2f} ({a}) to "
                             f"{med[region, b]:.2f} ({b}), -{drop:.2f} (-{pct:.1f}%)")
    with open("out/region_findings.md", "w") as f:
        f.write("# Declining median order value\\n\\n" + ("\\n".join(notes) or "None.")
                + "\\n\\nRefunded orders (negative amounts) are excluded.\\n")
    print(f"{len(groups)} region-quarters, {len(notes)} quarter-over-quarter declines")
    """
)


def _sales_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l data/sales.csv && cut -d, -f5 data/sales.csv | sort | uniq -c | tail -3",
            say="Sizing up the export and reading the first orders.",
        ),
        read("data/sales.csv", 1, 6),
    ]
    yield write("region_stats.py", _SALES_V1, say="Writing the statistics script.")
    run = yield sh("python3 region_stats.py")
    if not run.ok:
        # Amounts of 1000 and more are exported with a thousands separator: "1,234.50".
        yield sh("grep -m3 '\"' data/sales.csv", say="Some amount failed to parse; looking for it.")
        yield edit(
            "region_stats.py",
            'amount = float(r["amount"])',
            'amount = float(r["amount"].replace(",", ""))',
            say="Large amounts carry thousands separators; stripping them.",
        )
        run = yield sh("python3 region_stats.py")
    yield Reply(f"Wrote out/region_stats.csv and out/region_findings.md: {run.stdout.strip()}.")
    notes = yield sh("cat out/region_findings.md", say="Reading the findings back.")
    names = sorted(set(re.findall(r"^- (\w+):", notes.stdout, re.M)))
    yield Reply(f"Checked: the regions with a falling median are {', '.join(names) or 'none'}.")


_SALES_VERIFY = """
import csv, statistics, sys
groups = {}
for r in csv.DictReader(open("data/sales.csv")):
    a = float(r["amount"].replace(",", ""))
    if a >= 0 and r["status"] != "refunded":
        groups.setdefault((r["region"], (int(r["date"][5:7]) - 1) // 3 + 1), []).append(a)
try:
    rows = list(csv.DictReader(open("out/region_stats.csv")))
    notes = open("out/region_findings.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing output: {e}")
for (region, q), vals in groups.items():
    row = [r for r in rows if r.get("region") == region and str(q) in r.get("quarter", "")[-1:]]
    if len(row) != 1:
        sys.exit(f"expected one row for {region} Q{q}")
    r = row[0]
    mean, median = statistics.mean(vals), statistics.median(vals)
    if abs(float(r["mean"]) - mean) > 0.01 or abs(float(r["median"]) - median) > 0.01:
        sys.exit(f"{region} Q{q}: mean or median is wrong (refunds excluded?)")
    if min(abs(float(r["stdev"]) - f(vals)) for f in (statistics.stdev, statistics.pstdev)) > 0.01:
        sys.exit(f"{region} Q{q}: standard deviation is wrong")
for region in {g for g, _ in groups}:
    med = [statistics.median(groups[region, q]) for q in (1, 2, 3)]
    if med[2] < med[1] and region not in notes:
        sys.exit(f"{region}'s median fell but the note does not name it")
    if med[0] <= med[1] <= med[2] and region in notes:
        sys.exit(f"{region}'s median never fell but the note names it")
print("ok: statistics and findings are right")
"""


# ---------------------------------------------------------------- intel-extract-invoice-fields


def _eu(v: float) -> str:
    return f"{v:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")


def _invoice_text(vendor: int, n: int, day: date, v: float, k: int) -> str:
    if vendor == 0:
        return (f"NORDLICHT SOFTWARE GMBH\nHafenstrasse 12, 20457 Hamburg\n\nRechnung / Invoice\n"
                f"Invoice No.: NL-2025-{n:04d}\nDate: {day:%d/%m/%Y}\n\nLicence renewal\n"
                f"Total: EUR {_eu(v)}\n")  # fmt: skip
    if vendor == 1:
        return (f"ACME SUPPLIES INC.\nINVOICE #A-{n}\nIssued: {day:%B} {day.day}, {day.year}\n"
                f"Bill to: Example Corp\nQty 4  Toner\nTOTAL DUE: ${v:,.2f}\n")  # fmt: skip
    if vendor == 2:
        total = "see attached schedule" if k == 1 else f"GBP {v:,.2f}"
        return (f"Brightway Logistics Ltd\nInvoice number: BW/{n}\nInvoice date: {day}\n"
                f"Freight, pallets x3\nAmount due: {total}\n")  # fmt: skip
    return (f"Vendor: Kobe Trading Co.\nRef: KT-{n}\nDate: {day:%d/%m/%Y}\n"
            f"Grand total: {_eu(v).replace('.', ' ')} EUR\n")  # fmt: skip


def _invoices_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {}
    slugs = ("nordlicht", "acme", "brightway", "kobe")
    for vendor, slug in enumerate(slugs):
        for k in range(3):
            day = date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
            text = _invoice_text(
                vendor, rng.randint(100, 9999), day, round(rng.uniform(120, 9800), 2), k
            )
            files[f"invoices/{slug}_{k + 1:02d}.txt"] = text
    return Fixture(files), {"invoices": 12, "unparsable": 1}


_INVOICES_V1 = textwrap.dedent(
    """\
    import csv, glob, os, re
    from datetime import datetime

    FIELDS = {
        "number": r"(?:Invoice No\\.:|INVOICE #|Invoice number:|Ref:)\\s*(\\S+)",
        "date": r"(?:^Date|Issued|Invoice date):\\s*(.+)",
        "total": r"(?:^Total|TOTAL DUE|Amount due|Grand total):\\s*(.+)",
    }


    def parse_date(s):
        return datetime.strptime(s.strip(), "%d/%m/%Y").date().isoformat()


    def parse_amount(s):
        m = re.search(r"\\d[\\d., ]*", s)
        if not m:
            return None
        num = m.group().strip().replace(" ", "")
        if re.search(r",\\d{2}$", num):  # 1.234,50
            num = num.replace(".", "").replace(",", ".")
        cur = "EUR" if "EUR" in s else "USD" if "$" in s else "GBP" if "GBP" in s else ""
        return f"{float(num.replace(',', '')):.2f}", cur


    rows, failed = [], []
    for path in sorted(glob.glob("invoices/*.txt")):
        text, name = open(path).read(), os.path.basename(path)
        found = {k: re.search(p, text, re.M) for k, p in FIELDS.items()}
        vendor = text.strip().splitlines()[0].removeprefix("Vendor:").strip()
        amount = parse_amount(found["total"].group(1)) if found["total"] else None
        missing = [k for k, m in found.items() if not m] + ([] if amount else ["total amount"])
        if missing:
            failed.append(f"{name}: could not parse {', '.join(missing)}")
            continue
        rows.append([name, found["number"].group(1), parse_date(found["date"].group(1)), vendor,
                     *amount])
    os.makedirs("out", exist_ok=True)
    with open("out/invoices.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "invoice_number", "issue_date", "vendor", "total", "currency"])
        w.writerows(rows)
    open("out/unparsed.txt", "w").write("".join(x + "\\n" for x in failed))
    print(f"{len(rows)} invoices extracted, {len(failed)} not fully parsed")
    """
)


def _invoices_playbook(ctx: Ctx) -> Playbook:
    listing = yield sh("ls invoices && grep -h -i -E 'date|issued' invoices/*.txt | head -4",
                       say="Listing the invoices and sampling the date lines.")  # fmt: skip
    first = re.search(r"^(kobe\S+\.txt)$", listing.stdout, re.M)
    yield read(f"invoices/{first.group(1) if first else 'kobe_01.txt'}", say="Reading one invoice.")
    yield write("extract.py", _INVOICES_V1, say="Writing a regex extractor.")
    run = yield sh("python3 extract.py")
    if not run.ok:
        # Only DD/MM/YYYY was handled; Acme writes 'March 5, 2025' and Brightway ISO dates.
        yield edit(
            "extract.py",
            '    return datetime.strptime(s.strip(), "%d/%m/%Y").date().isoformat()\n',
            '    for fmt in ("%d/%m/%Y", "%B %d, %Y", "%Y-%m-%d"):\n'
            "        try:\n"
            "            return datetime.strptime(s.strip(), fmt).date().isoformat()\n"
            "        except ValueError:\n"
            "            pass\n"
            '    raise ValueError(f"unknown date format: {s!r}")\n',
            say="Vendors use three date formats; trying each one.",
        )
        run = yield sh("python3 extract.py")
    yield Reply(f"Wrote out/invoices.csv and out/unparsed.txt: {run.stdout.strip()}.")
    check, _ = yield [
        sh("cat out/unparsed.txt", say="Checking the failures and a few normalised values."),
        sh("cut -d, -f3,5,6 out/invoices.csv | head -5"),
    ]
    first_line = check.stdout.splitlines()[0] if check.stdout else "none"
    yield Reply(f"Checked: dates are ISO, amounts decimal; not parsed: {first_line}.")


_INVOICES_VERIFY = """
import csv, glob, os, re, sys
from datetime import date
try:
    rows = {r["file"]: r for r in csv.DictReader(open("out/invoices.csv"))}
    failed = open("out/unparsed.txt").read()
except (FileNotFoundError, KeyError) as e:
    sys.exit(f"missing output: {e}")
for path in glob.glob("invoices/*.txt"):
    name, text = os.path.basename(path), open(path).read()
    total_re = r"(Total|TOTAL DUE|Amount due|Grand total)"
    total_line = [l for l in text.splitlines() if re.match(total_re, l)][0]
    if not re.search(r"\\d", total_line):
        if name not in failed or name in rows:
            sys.exit(f"{name} has no total and must be listed as unparsed")
        continue
    r = rows.get(name)
    if r is None:
        sys.exit(f"{name} is missing from out/invoices.csv")
    vendor = r["vendor"].strip().lower()
    if r["invoice_number"] not in text or not vendor or vendor not in text.lower():
        sys.exit(f"{name}: invoice number or vendor is wrong")
    try:
        d = date.fromisoformat(r["issue_date"])
    except ValueError:
        sys.exit(f"{name}: issue date {r['issue_date']!r} is not ISO 8601")
    forms = (d.strftime("%d/%m/%Y"), f"{d:%B} {d.day}, {d.year}", d.isoformat())
    if not any(s in text for s in forms):
        sys.exit(f"{name}: issue date {d} does not match the invoice")
    v = float(r["total"])
    eu = f"{v:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    if not any(s in total_line for s in (f"{v:,.2f}", eu, eu.replace(".", " "))):
        sys.exit(f"{name}: total {v} does not match {total_line!r}")
print(f"ok: {len(rows)} invoices extracted")
"""


# ---------------------------------------------------------------- intel-detect-sensor-anomalies


def _sensors_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    sensors = [f"S{n:02d}" for n in range(1, 9)]
    stuck = rng.choice(sensors)
    live = [s for s in sensors if s != stuck]
    spikes = set(rng.sample([(s, rng.randint(30, 120)) for s in live], 5))
    spikes |= set(rng.sample([(s, rng.randint(150, 240)) for s in live], 5))
    blanks = {(rng.choice(live), rng.randint(0, 249)) for _ in range(5)} - spikes
    base = {s: rng.uniform(18, 24) for s in sensors}
    lines, t0 = ["sensor_id,timestamp,temp_c"], datetime(2025, 11, 3)
    for step in range(250):
        stamp = (t0 + timedelta(minutes=5 * step)).isoformat()
        for s in sensors:
            if rng.random() < 0.02 and (s, step) not in spikes | blanks:
                continue  # a missing row
            v = base[s] + 0.5 * math.sin(step / 46) + rng.gauss(0, 0.2)
            if (s, step) in spikes:
                v += rng.choice((-1, 1)) * rng.uniform(4, 8)
            if s == stuck and step >= 80:
                v = base[s]
            lines.append(f"{s},{stamp}," + ("" if (s, step) in blanks else f"{v:.2f}"))
    return Fixture({"data/sensors.csv": "\n".join(lines) + "\n"}), {"stuck": stuck}


_SENSORS_V1 = textwrap.dedent(
    """\
    import csv, json, os, statistics
    from collections import defaultdict

    WINDOW, Z = 24, 4.0  # two hours of 5-minute readings
    series = defaultdict(list)
    for r in csv.DictReader(open("data/sensors.csv")):
        series[r["sensor_id"]].append((r["timestamp"], float(r["temp_c"])))
    flags, stuck = [], []
    for sid, rows in sorted(series.items()):
        vals = [v for _, v in sorted(rows)]
        longest, start, i = 0, 0, 0
        for j in range(1, len(vals) + 1):
            if j == len(vals) or vals[j] != vals[i]:
                if j - i > longest:
                    longest, start = j - i, i
                i = j
        if longest >= WINDOW:
            stuck.append({"sensor_id": sid, "value": vals[start], "since": sorted(rows)[start][0],
                          "readings": longest})
        for i in range(WINDOW, len(vals)):
            win = vals[i - WINDOW : i]
            sd = statistics.stdev(win)
            if sd == 0:
                continue  # flatlined: reported as stuck instead
            z = (vals[i] - statistics.fmean(win)) / sd
            if abs(z) > Z:
                flags.append([sid, sorted(rows)[i][0], vals[i], f"{z:.1f}"])
    os.makedirs("out", exist_ok=True)
    with open("out/anomalies.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sensor_id", "timestamp", "temp_c", "z_score"])
        w.writerows(flags)
    summary = {"readings": sum(len(v) for v in series.values()), "window": WINDOW, "z": Z,
               "flagged": len(flags), "stuck_sensors": stuck}
    json.dump(summary, open("out/anomaly_summary.json", "w"), indent=2)
    print(f"{len(flags)} anomalies flagged; stuck: {[s['sensor_id'] for s in stuck]}")
    """
)


def _sensors_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l data/sensors.csv && cut -d, -f1 data/sensors.csv | sort | uniq -c",
            say="Counting readings per sensor and reading the first rows.",
        ),
        read("data/sensors.csv", 1, 10),
    ]
    yield write("anomalies.py", _SENSORS_V1, say="Writing a rolling z-score detector.")
    run = yield sh("python3 anomalies.py")
    if not run.ok:
        # A few readings are blank (sensor dropouts), and float('') raises.
        yield sh("grep -n ',$' data/sensors.csv | head", say="Looking for the unparsable value.")
        yield edit(
            "anomalies.py",
            '    series[r["sensor_id"]].append((r["timestamp"], float(r["temp_c"])))',
            '    if r["temp_c"].strip():  # skip dropouts with no value\n'
            '        series[r["sensor_id"]].append((r["timestamp"], float(r["temp_c"])))',
            say="Some readings are empty; skipping them.",
        )
        run = yield sh("python3 anomalies.py")
    yield Reply(f"Wrote out/anomalies.csv and out/anomaly_summary.json: {run.stdout.strip()}.")
    _, check = yield [
        sh(
            "sort -t, -k4 -g out/anomalies.csv | head -3",
            say="Checking the strongest flags and the stuck sensor.",
        ),
        sh("jq -c '.stuck_sensors[]' out/anomaly_summary.json"),
    ]
    stuck = re.findall(r'"sensor_id":"(\w+)"', check.stdout)
    yield Reply(f"Checked: the spikes carry |z| well above 4; stuck sensor: {', '.join(stuck)}.")


_SENSORS_VERIFY = """
import csv, json, statistics, sys
series = {}
for r in csv.DictReader(open("data/sensors.csv")):
    if r["temp_c"].strip():
        series.setdefault(r["sensor_id"], []).append((r["timestamp"], float(r["temp_c"])))
spikes, stuck = set(), set()
for sid, rows in series.items():
    rows.sort()
    vals = [v for _, v in rows]
    runs = [1]
    for a, b in zip(vals, vals[1:]):
        runs.append(runs[-1] + 1 if a == b else 1)
    if max(runs) >= 24:
        stuck.add(sid)
    for i, v in enumerate(vals):
        around = vals[max(0, i - 6):i] + vals[i + 1:i + 7]
        if abs(v - statistics.median(around)) > 3:
            spikes.add((sid, rows[i][0]))
try:
    flagged = {(r["sensor_id"], r["timestamp"]) for r in csv.DictReader(open("out/anomalies.csv"))}
    summary = json.load(open("out/anomaly_summary.json"))
except (FileNotFoundError, KeyError, ValueError) as e:
    sys.exit(f"missing or invalid output: {e}")
if spikes - flagged:
    sys.exit(f"missed spikes: {sorted(spikes - flagged)[:3]}")
if len(flagged - spikes) > 15:
    sys.exit(f"{len(flagged - spikes)} readings flagged that are not spikes")
stuck_part = json.dumps({k: v for k, v in summary.items() if "stuck" in k.lower()})
if any(s not in stuck_part for s in stuck):
    sys.exit(f"the summary does not report the stuck sensor {sorted(stuck)}")
print(f"ok: {len(spikes)} spikes flagged, stuck {sorted(stuck)}")
"""


# ---------------------------------------------------------------- intel-score-survey-sentiment

_POSITIVE = [
    "good", "great", "excellent", "love", "like", "easy", "fast", "helpful", "nice", "clear",
    "smooth", "reliable", "quick", "friendly", "happy", "amazing", "perfect", "fine", "useful",
    "simple", "pleasant", "efficient", "solid", "stable", "enjoy", "best", "better", "awesome",
    "convenient", "responsive", "clean",
]  # fmt: skip
_NEGATIVE = [
    "bad", "slow", "confusing", "hate", "poor", "broken", "annoying", "hard", "difficult",
    "frustrating", "crash", "crashes", "expensive", "ugly", "unclear", "useless", "terrible",
    "awful", "missing", "problem", "issues", "worse", "worst", "painful", "unstable",
    "disappointing", "messy", "cluttered", "tedious", "unreliable",
]  # fmt: skip
_PRODUCT_TERMS = {
    "laggy": -2,
    "seamless": 2,
    "clunky": -2,
    "snappy": 2,
    "buggy": -2,
    "intuitive": 2,
}


def _survey_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    lexicon = {w: rng.choice((1, 2, 3)) for w in _POSITIVE}
    lexicon |= {w: -rng.choice((1, 2, 3)) for w in _NEGATIVE}
    subjects = ["The app", "Checkout", "Search", "Sync", "The new editor", "Support",
                "The café finder"]  # fmt: skip
    lines = ["respondent_id,question_id,answer"]
    for n in range(120):
        kind = rng.random()
        if kind < 0.45:
            word = rng.choice(list(_PRODUCT_TERMS))
        elif kind < 0.8:
            word = rng.choice(_POSITIVE + _NEGATIVE)
        else:
            word = None
        subject = rng.choice(subjects)
        answer = (
            f"{subject} feels {word}"
            if word
            else rng.choice(
                ("It’s okay I guess", "No opinion", "I use it every day", "Haven’t tried it")
            )
        )
        if word and rng.random() < 0.4:
            answer += f", really {rng.choice(list(_PRODUCT_TERMS) + _POSITIVE)} otherwise"
        lines.append(f'R{1000 + n},Q{n % 4 + 1},"{answer}"')
    files = {"survey/responses.csv": ("\n".join(lines) + "\n").encode("cp1252"),
             "survey/lexicon.json": json.dumps(lexicon, indent=2, sort_keys=True)}  # fmt: skip
    return Fixture(files), {"responses": 120}


_SURVEY_V1 = textwrap.dedent(
    """\
    import csv, json, os, re
    from collections import Counter, defaultdict

    lex = json.load(open("survey/lexicon.json"))
    rows = list(csv.DictReader(open("survey/responses.csv", encoding="utf-8")))
    tokens = lambda text: re.findall(r"[a-z]+", text.lower())
    by_q = defaultdict(Counter)
    for r in rows:
        r["score"] = sum(lex.get(w, 0) for w in tokens(r["answer"]))
        r["label"] = "positive" if r["score"] > 0 else "negative" if r["score"] < 0 else "neutral"
        by_q[r["question_id"]][r["label"]] += 1
    os.makedirs("out", exist_ok=True)
    with open("out/responses_scored.csv", "w", newline="") as f:
        cols = ["respondent_id", "question_id", "answer", "score", "label"]
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    with open("out/sentiment_by_question.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question_id", "responses", "positive", "neutral", "negative"])
        for q, c in sorted(by_q.items()):
            n = sum(c.values())
            w.writerow([q, n] + [f"{c[k] / n:.3f}" for k in ("positive", "neutral", "negative")])
    unknown = Counter(w for r in rows for w in tokens(r["answer"]) if w not in lex and len(w) > 3)
    print("labels:", dict(Counter(r["label"] for r in rows)))
    print("unknown words:", ", ".join(f"{w}({n})" for w, n in unknown.most_common()))
    """
)


def _survey_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "head -4 survey/responses.csv; jq length survey/lexicon.json",
            say="Looking at the data and the lexicon's format.",
        ),
        read("survey/lexicon.json", 1, 8),
    ]
    yield write("score.py", _SURVEY_V1, say="Writing the lexicon scorer.")
    run = yield sh("python3 score.py")
    if not run.ok:
        # The export is Windows-1252 (curly apostrophes, 'café'), not UTF-8.
        yield edit(
            "score.py",
            'open("survey/responses.csv", encoding="utf-8")',
            'open("survey/responses.csv", encoding="cp1252")',
            say="The CSV is not UTF-8; it decodes as Windows-1252.",
        )
        run = yield sh("python3 score.py")
    found = re.findall(r"([a-z]+)\(\d+\)", run.stdout)
    terms = {w: p for w, p in _PRODUCT_TERMS.items() if w in found} or _PRODUCT_TERMS
    yield edit(
        "survey/lexicon.json",
        "{\n",
        "{\n" + "".join(f'  "{w}": {p},\n' for w, p in sorted(terms.items())),
        say=f"Adding the frequent product terms {', '.join(sorted(terms))} to the lexicon.",
    )
    run = yield sh("python3 score.py", say="Re-scoring with the extended lexicon.")
    yield Reply(
        f"Scored all responses into out/responses_scored.csv. {run.stdout.splitlines()[0]}."
    )
    summary = yield sh("cat out/sentiment_by_question.csv", say="Reading the summary.")
    yield Reply(f"Checked the per-question shares:\n{summary.stdout.strip()}")


_SURVEY_VERIFY = """
import csv, io, json, re, sys
lex = json.load(open("survey/lexicon.json"))
src = list(csv.DictReader(io.StringIO(open("survey/responses.csv", encoding="cp1252").read())))
# Every product term the answers use must be scored, with its polarity.
used = {w for r in src for w in re.findall(r"[a-z]+", r["answer"].lower())}
product = {"laggy": -1, "seamless": 1, "clunky": -1, "snappy": 1, "buggy": -1, "intuitive": 1}
missing = sorted(w for w, sign in product.items() if w in used and lex.get(w, 0) * sign <= 0)
if missing:
    sys.exit(f"the lexicon was not extended with the product terms: {', '.join(missing)}")
try:
    scored = {r["respondent_id"]: r for r in csv.DictReader(open("out/responses_scored.csv"))}
    summary = list(csv.DictReader(open("out/sentiment_by_question.csv")))
except (FileNotFoundError, KeyError) as e:
    sys.exit(f"missing output: {e}")
agree, shares = 0, {}
for r in src:
    s = sum(lex.get(w, 0) for w in re.findall(r"[a-z]+", r["answer"].lower()))
    want = "positive" if s > 0 else "negative" if s < 0 else "neutral"
    got = scored.get(r["respondent_id"], {}).get("label", "")
    agree += got == want
    shares.setdefault(r["question_id"], []).append(got)
if agree < 0.95 * len(src):
    sys.exit(f"only {agree}/{len(src)} labels match the lexicon")
for row in summary:
    labels = shares.get(row.get("question_id"), [])
    for k in ("positive", "neutral", "negative"):
        v = float(row[k].rstrip("%"))
        v = v / 100 if v > 1 else v
        if abs(v - labels.count(k) / max(1, len(labels))) > 0.011:
            sys.exit(f"{row['question_id']}: {k} share is wrong")
if len(summary) != len(shares):
    sys.exit("the summary does not cover every question")
print(f"ok: {agree}/{len(src)} labels agree, {len(summary)} questions summarised")
"""


# ---------------------------------------------------------------- intel-ab-test-significance

_AB_README = """\
# Checkout redesign A/B test

Variants: `control` (current checkout) and `treatment` (one-page checkout), 50/50 split.

Exclusions: drop every session whose `account_type` is `internal` (staff) or `test`
(QA automation); only `customer` sessions count.

Decision rule: two-sided two-proportion z-test at a significance threshold of 0.05.
Ship (go) only if the treatment converts significantly better than control.
"""


def _ab_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    lines = ["session_id,variant,converted,account_type"]
    for n in range(5000):
        variant = rng.choice(("control", "treatment"))
        kind = rng.choices(("customer", "internal", "test"), (92, 5, 3))[0]
        p = 0.5 if kind != "customer" else 0.10 if variant == "control" else 0.125
        lines.append(f"s{n:05d},{variant},{rng.random() < p},{kind}")
    files = {"experiments/checkout_ab.csv": "\n".join(lines) + "\n",
             "experiments/README.md": _AB_README}  # fmt: skip
    return Fixture(files), {"sessions": 5000}


_AB_V1 = textwrap.dedent(
    """\
    import csv, json, math, os
    from collections import Counter

    n, conv = Counter(), Counter()
    for r in csv.DictReader(open("experiments/checkout_ab.csv")):
        if r["account_type"] in ("internal", "test"):
            continue
        n[r["variant"]] += 1
        conv[r["variant"]] += int(r["converted"])
    pa, pb = conv["control"] / n["control"], conv["treatment"] / n["treatment"]
    pool = (conv["control"] + conv["treatment"]) / (n["control"] + n["treatment"])
    se = math.sqrt(pool * (1 - pool) * (1 / n["control"] + 1 / n["treatment"]))
    z = (pb - pa) / se
    p = math.erfc(abs(z) / math.sqrt(2))  # two-sided
    go = p < 0.05 and pb > pa
    result = {"n_control": n["control"], "n_treatment": n["treatment"],
              "conversions_control": conv["control"], "conversions_treatment": conv["treatment"],
              "rate_control": round(pa, 5), "rate_treatment": round(pb, 5),
              "z": round(z, 4), "p_value": round(p, 5), "alpha": 0.05,
              "verdict": "go" if go else "no-go"}
    os.makedirs("out", exist_ok=True)
    json.dump(result, open("out/ab_result.json", "w"), indent=2)
    with open("out/ab_verdict.md", "w") as f:
        f.write(f"# Verdict: {result['verdict'].upper()}\\n\\nThe one-page checkout converted "
                f"{pb:.2%} of {n['treatment']} customer sessions against {pa:.2%} of "
                f"{n['control']} for control (z = {z:.2f}, p = {p:.4f}). "
                + ("The lift is significant at 0.05: ship it.\\n" if go else
                   "The difference is not significant at 0.05: do not ship yet.\\n"))
    print(json.dumps(result))
    """
)


def _ab_playbook(ctx: Ctx) -> Playbook:
    yield [
        read(
            "experiments/README.md",
            say="Reading the experiment design, and checking the log's columns and account types.",
        ),
        sh(
            "head -4 experiments/checkout_ab.csv && cut -d, -f4 experiments/checkout_ab.csv | "
            "sort | uniq -c"
        ),
    ]
    yield write("ab_test.py", _AB_V1, say="Writing the z-test.")
    run = yield sh("python3 ab_test.py")
    if not run.ok:
        # 'converted' holds True/False strings, not 0/1.
        yield edit(
            "ab_test.py",
            'conv[r["variant"]] += int(r["converted"])',
            'conv[r["variant"]] += r["converted"].strip().lower() in ("true", "1")',
            say="'converted' is True/False text; comparing instead of int().",
        )
        run = yield sh("python3 ab_test.py")
    res = json.loads(run.stdout) if run.ok else {}
    yield Reply(
        f"Result in out/ab_result.json: control {res.get('rate_control')} vs treatment "
        f"{res.get('rate_treatment')}, z = {res.get('z')}, p = {res.get('p_value')}; "
        f"verdict {res.get('verdict')} (out/ab_verdict.md)."
    )
    _, check = yield [
        sh(
            "head -1 out/ab_verdict.md",
            say="Confirming the verdict and that excluded sessions are gone.",
        ),
        sh("jq '.n_control + .n_treatment' out/ab_result.json"),
    ]
    total = check.stdout.split()[-1] if check.ok else "?"
    yield Reply(f"Checked: {total} customer sessions analysed; internal and test ones excluded.")


_AB_VERIFY = """
import csv, json, math, sys
n, c = {}, {}
for r in csv.DictReader(open("experiments/checkout_ab.csv")):
    if r["account_type"] == "customer":
        n[r["variant"]] = n.get(r["variant"], 0) + 1
        c[r["variant"]] = c.get(r["variant"], 0) + (r["converted"] == "True")
pa, pb = c["control"] / n["control"], c["treatment"] / n["treatment"]
pool = (c["control"] + c["treatment"]) / (n["control"] + n["treatment"])
z = (pb - pa) / math.sqrt(pool * (1 - pool) * (1 / n["control"] + 1 / n["treatment"]))
p = math.erfc(abs(z) / math.sqrt(2))
try:
    res = json.load(open("out/ab_result.json"))
    verdict = open("out/ab_verdict.md").read().lower()
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"missing output: {e}")
nums = [v for v in res.values() if isinstance(v, (int, float))]
for label, want, tol in (("n control", n["control"], 0), ("n treatment", n["treatment"], 0),
                         ("rate control", pa, 1e-4), ("rate treatment", pb, 1e-4),
                         ("z", z, 0.01), ("p-value", p, 1e-3)):
    if not any(abs(v - want) <= tol for v in nums):
        sys.exit(f"{label} should be {want:.5g} (internal/test sessions excluded?)")
go = p < 0.05 and pb > pa
nogo = "no-go" in verdict or "no go" in verdict or "do not ship" in verdict
if go == nogo:
    sys.exit(f"the recommendation should be {'go' if go else 'no-go'}")
print(f"ok: z={z:.3f} p={p:.4f} {'go' if go else 'no-go'}")
"""


# ---------------------------------------------------------------- intel-dedupe-customer-records

_FIRST = [
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Kira", "Luca", "Mara", "Nils", "Olga", "Pavel",
]  # fmt: skip
_LAST = [
    "Berger", "Costa", "Dahl", "Engel", "Fischer", "Garcia", "Hansen", "Ivanova", "Jensen",
    "Keller", "Lopez", "Moreau",
]  # fmt: skip
_CITIES = ["Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Bremen"]


def _phone_fmt(digits: str, style: int) -> str:
    a, b, c = digits[:3], digits[3:6], digits[6:]
    return (f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1 {a} {b} {c}", f"{a}.{b}.{c}")[style]


def _customers_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    people, seen = [], set()
    while len(people) < 175:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = (
            f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(('mail.com', 'web.de', 'corp.io'))}"
        )
        digits = f"{rng.randint(200, 999)}{rng.randint(0, 9999999):07d}"
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        phone = "" if rng.random() < 0.08 else _phone_fmt(digits, rng.randrange(4))
        people.append([f"{first} {last}", email.lower() if rng.random() > 0.06 else "", phone,
                       rng.choice(_CITIES), digits])  # fmt: skip
    records = [p[:4] for p in people]
    for name, email, phone, city, digits in rng.sample([p for p in people if p[1] and p[2]], 25):
        for _ in range(rng.choice((1, 1, 2))):
            local, dom = email.split("@")
            dup_name = rng.choice((name.upper(), name.lower(), name[:-2] + name[-1] + name[-2]))
            dup_email = rng.choice((email.upper(), f"{local}+shop@{dom}", email, ""))
            dup_phone = _phone_fmt(digits, rng.randrange(4)) if dup_email else phone
            records.append([dup_name, dup_email, dup_phone, city])
    rng.shuffle(records)
    lines = ["id,name,email,phone,city"]
    lines += [f"CUST-{n + 1:04d}," + ",".join(r) for n, r in enumerate(records)]
    return Fixture({"crm/customers.csv": "\n".join(lines) + "\n"}, setup=(_GIT_INIT,)), {}


_DEDUPE_V1 = textwrap.dedent(
    """\
    import csv, os, re
    from collections import defaultdict

    rows = list(csv.DictReader(open("crm/customers.csv")))
    parent = {r["id"]: r["id"] for r in rows}


    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x


    def keys(r):
        local, _, dom = r["email"].strip().lower().partition("@")
        yield "email", local.split("+")[0] + "@" + dom
        yield "phone", re.sub(r"\\D", "", r["phone"])[-10:]


    owner, evidence = {}, defaultdict(set)
    for r in rows:
        for kind, key in keys(r):
            k = (kind, key)
            if k in owner:
                a, b = find(owner[k]), find(r["id"])
                parent[b] = a
                evidence[k].update((owner[k], r["id"]))
            else:
                owner[k] = r["id"]
    cluster_of, members = {}, defaultdict(list)
    for r in rows:
        root = find(r["id"])
        cluster_of.setdefault(root, f"K{len(cluster_of) + 1:04d}")
        members[cluster_of[root]].append(r)
    os.makedirs("out", exist_ok=True)
    with open("out/customer_clusters.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "cluster_id", "name", "email", "phone"])
        w.writerows([r["id"], cluster_of[find(r["id"])], r["name"], r["email"], r["phone"]]
                    for r in rows)
    dupes = {c: m for c, m in members.items() if len(m) > 1}
    with open("out/duplicates.md", "w") as f:
        f.write(f"# Likely duplicates: {len(dupes)} clusters\\n")
        for c, m in sorted(dupes.items()):
            ids = {r["id"] for r in m}
            why = sorted(f"same {k[0]} {k[1]}" for k, v in evidence.items() if v & ids)
            f.write(f"\\n## {c}\\n")
            f.writelines(f"- {r['id']}: {r['name']} <{r['email']}> {r['phone']}\\n" for r in m)
            f.write(f"- evidence: {'; '.join(why)}\\n")
    print(f"{len(rows)} records in {len(members)} clusters, {len(dupes)} with duplicates")
    """
)

_DEDUPE_RUN = (
    "python3 dedupe.py && awk -F, 'NR>1{n[$2]++} END{for(k in n) if(n[k]>m) m=n[k]; "
    'print "largest cluster:", m; exit m > 4}\' out/customer_clusters.csv'
)


def _dedupe_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l crm/customers.csv && head -5 crm/customers.csv",
            say="Looking at the export, with more rows to see the variations.",
        ),
        read("crm/customers.csv", 6, 16),
    ]
    yield write("dedupe.py", _DEDUPE_V1, say="Writing a normalise-and-cluster script.")
    run = yield sh(_DEDUPE_RUN, say="Running it and checking cluster sizes.")
    if not run.ok:
        # Blank emails and phones normalise to the same empty key and chain into one cluster.
        yield edit(
            "dedupe.py",
            "        k = (kind, key)\n",
            '        if key in ("", "@"):\n            continue  # blank: no evidence\n'
            "        k = (kind, key)\n",
            say="One giant cluster: blank emails/phones all share a key; skipping blanks.",
        )
        run = yield sh(_DEDUPE_RUN)
    summary = run.stdout.strip().replace("\n", "; ")
    yield Reply(f"Clustered the records: {summary}. See out/customer_clusters.csv.")
    check, _ = yield [
        sh(
            "git status --short crm/",
            say="Making sure the source is untouched and reading the report.",
        ),
        sh("sed -n '1,9p' out/duplicates.md"),
    ]
    touched = "modified" if check.stdout.startswith(" M") else "untouched"
    yield Reply(f"Checked: crm/customers.csv is {touched}; out/duplicates.md lists the evidence.")


_DEDUPE_VERIFY = """
import csv, re, subprocess, sys
if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "crm/customers.csv"]).returncode:
    sys.exit("crm/customers.csv was modified")
rows = list(csv.DictReader(open("crm/customers.csv")))
parent = {r["id"]: r["id"] for r in rows}
def find(x):
    while parent[x] != x:
        x = parent[x]
    return x
owner = {}
for r in rows:
    local, _, dom = r["email"].strip().lower().partition("@")
    for k in (("e", local.split("+")[0] + "@" + dom) if local else None,
              ("p", re.sub(r"\\D", "", r["phone"])[-10:]) if r["phone"].strip() else None):
        if k is None:
            continue
        if k in owner:
            parent[find(r["id"])] = find(owner[k])
        else:
            owner[k] = r["id"]
try:
    got = {r["id"]: r["cluster_id"] for r in csv.DictReader(open("out/customer_clusters.csv"))}
    report = open("out/duplicates.md").read()
except (FileNotFoundError, KeyError) as e:
    sys.exit(f"missing output: {e}")
if set(got) != set(parent):
    sys.exit("every record needs exactly one cluster id")
truth = {}
for i in parent:
    truth.setdefault(find(i), []).append(i)
for members in truth.values():
    if len({got[i] for i in members}) != 1:
        sys.exit(f"records {members} are duplicates but sit in different clusters")
    if len(members) > 1 and any(i not in report for i in members):
        sys.exit(f"duplicate group {members} is not in out/duplicates.md")
if len(set(got.values())) < len(truth) - 2:
    sys.exit("distinct customers were merged into the same cluster")
print(f"ok: {sum(len(m) > 1 for m in truth.values())} duplicate groups found")
"""


# ---------------------------------------------------------------- intel-forecast-weekly-demand


def _demand_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    skus = sorted(f"SKU-{n}" for n in rng.sample(range(100, 999), 15))
    outs = {(s, rng.randint(44, 51)) for s in rng.sample(skus, 3)}
    outs |= {(s, rng.randint(10, 40)) for s in rng.sample(skus, 3)}
    base = {s: rng.randint(20, 300) for s in skus}
    lines = ["week,sku,units,stockout"]
    for w in range(52):
        week = date(2025, 1, 6) + timedelta(weeks=w)
        for s in skus:
            units = max(1, round(base[s] * (1 + 0.2 * math.sin(w / 8.3)) * rng.uniform(0.85, 1.15)))
            out = (s, w) in outs
            lines.append(f"{week},{s},{0 if out else units},{int(out)}")
    return Fixture({"data/weekly_demand.csv": "\n".join(lines) + "\n"}), {"skus": 15}


_DEMAND_V1 = textwrap.dedent(
    """\
    import csv, os
    from collections import defaultdict
    from datetime import date, timedelta

    hist = defaultdict(list)
    for r in csv.DictReader(open("data/weekly_demand.csv")):
        hist[r["sku"]].append((r["week"], int(r["units"]), r["stockout"] == "1"))
    forecast, evaluation = [], []
    for sku, rows in sorted(hist.items()):
        rows.sort()
        units = [u for _, u, _ in rows]
        errs = []  # holdout: each of the last 8 weeks predicted from the 4 before it
        for i in range(len(rows) - 8, len(rows)):
            f = sum(units[i - 4 : i]) / 4
            errs.append(abs(units[i] - f) / units[i])
        evaluation.append([sku, len(errs), f"{100 * sum(errs) / len(errs):.1f}"])
        window, last = units[-4:], date.fromisoformat(rows[-1][0])
        for k in range(1, 5):
            window.append(sum(window[-4:]) / 4)
            forecast.append([sku, str(last + timedelta(weeks=k)), f"{window[-1]:.1f}"])
    os.makedirs("out", exist_ok=True)
    with open("out/forecast.csv", "w", newline="") as f:
        csv.writer(f).writerows([["sku", "week", "forecast_units"]] + forecast)
    with open("out/forecast_eval.csv", "w", newline="") as f:
        csv.writer(f).writerows([["sku", "holdout_weeks", "mape_pct"]] + evaluation)
    print(f"{len(evaluation)} SKUs forecast; mean MAPE "
          f"{sum(float(e[2]) for e in evaluation) / len(evaluation):.1f}%")
    """
)


def _demand_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l data/weekly_demand.csv && grep -c ',1$' data/weekly_demand.csv",
            say="Checking the size and stockout weeks, and reading the header and first rows.",
        ),
        read("data/weekly_demand.csv", 1, 6),
    ]
    yield write("forecast.py", _DEMAND_V1, say="Writing the moving-average forecast.")
    run = yield sh("python3 forecast.py")
    if not run.ok:
        # Stockout weeks have 0 units, so the percentage error divides by zero.
        yield edit(
            "forecast.py",
            "        errs.append(abs(units[i] - f) / units[i])",
            "        if units[i] > 0 and not rows[i][2]:  # stockouts have no real demand\n"
            "            errs.append(abs(units[i] - f) / units[i])",
            say="Stockout weeks sold 0 units; leaving them out of the MAPE.",
        )
        run = yield sh("python3 forecast.py")
    yield Reply(f"Wrote out/forecast.csv and out/forecast_eval.csv: {run.stdout.strip()}.")
    check, size = yield [
        sh(
            "awk -F, 'NR>1 && $2<8' out/forecast_eval.csv",
            say="Listing SKUs evaluated on fewer than 8 weeks, and sizing the forecast.",
        ),
        sh("wc -l < out/forecast.csv"),
    ]
    short = [ln.split(",")[0] for ln in check.stdout.splitlines() if ln.startswith("SKU")]
    rows = int(size.stdout.split()[-1]) - 1 if size.ok else "?"
    yield Reply(f"Checked: {rows} forecast rows; {', '.join(short) or 'no SKU'} lost holdout "
                "weeks to stockouts.")  # fmt: skip


_DEMAND_VERIFY = """
import csv, sys
from datetime import date, timedelta
hist = {}
for r in csv.DictReader(open("data/weekly_demand.csv")):
    hist.setdefault(r["sku"], []).append((r["week"], int(r["units"]), r["stockout"] == "1"))
try:
    fc = list(csv.DictReader(open("out/forecast.csv")))
    ev = {r["sku"]: r for r in csv.DictReader(open("out/forecast_eval.csv"))}
except (FileNotFoundError, KeyError) as e:
    sys.exit(f"missing output: {e}")
for sku, rows in hist.items():
    rows.sort()
    def prev4(i, skip):
        vals = [u for _, u, o in rows[:i] if not (skip and o)]
        return sum(vals[-4:]) / 4
    mapes, firsts = [], [prev4(len(rows), s) for s in (False, True)]
    for skip in (False, True):
        hold = [(i, u) for i, (_, u, o) in enumerate(rows) if i >= len(rows) - 8 and u and not o]
        errs = [abs(u - prev4(i, skip)) / u for i, u in hold]
        mapes.append(100 * sum(errs) / len(errs))
    e = ev.get(sku)
    mape = [v for k, v in (e or {}).items() if "mape" in k.lower()]
    if not mape or min(abs(float(mape[0].rstrip("%")) - m) for m in mapes) > 0.6:
        sys.exit(f"{sku}: MAPE should be about {mapes[0]:.1f}")
    mine = [r for r in fc if r.get("sku") == sku]
    last = date.fromisoformat(rows[-1][0])
    if sorted(r["week"] for r in mine) != [str(last + timedelta(weeks=k)) for k in range(1, 5)]:
        sys.exit(f"{sku}: expected forecasts for the 4 weeks after {last}")
    value = lambda r: float([v for k, v in r.items() if k not in ("sku", "week")][0])
    first = value(min(mine, key=lambda r: r["week"]))
    if min(abs(first - f) for f in firsts) > 0.6 or any(value(r) <= 0 for r in mine):
        sys.exit(f"{sku}: next-week forecast {first} is not the 4-week moving average")
print(f"ok: {len(hist)} SKUs forecast and evaluated")
"""


# ---------------------------------------------------------------- intel-cohort-retention-table


def _cohort_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    weak = rng.randint(1, 6)
    events = []
    for n in range(900):
        month = rng.randint(1, 6)
        day = date(2025, month, rng.randint(1, 28))
        user = f"u{n + 1:04d}"
        events.append((f"{day} {rng.randint(7, 22):02d}:{rng.randint(0, 59):02d}", user, "signup"))
        for k in range(1, 13 - month):
            p = 0.6 * 0.85 ** (k - 1) * (0.45 if month == weak and k >= 2 else 1)
            if rng.random() < p:
                m = month + k
                for _ in range(rng.randint(1, 3)):
                    when = f"2025-{m:02d}-{rng.randint(1, 28):02d} {rng.randint(7, 22):02d}:00"
                    events.append((when, user, rng.choice(("login", "login", "purchase"))))
    lines = ["user_id,event_type,timestamp"] + [f"{u},{k},{t}" for t, u, k in sorted(events)]
    return Fixture({"data/events.csv": "\n".join(lines) + "\n"}), {"weak": f"2025-{weak:02d}"}


_COHORT_V1 = textwrap.dedent(
    """\
    import csv, os
    from collections import Counter, defaultdict

    rows = list(csv.DictReader(open("data/events.csv")))
    signup = {r["user_id"]: r["timestamp"][:7] for r in rows if r["event_type"] == "signup"}
    idx = lambda ym: int(ym[:4]) * 12 + int(ym[5:7])
    active = defaultdict(set)
    for r in rows:
        if r["event_type"] != "signup" and r["user_id"] in signup:
            active[r["user_id"]].add(idx(r["timestamp"][:7]) - idx(signup[r["user_id"]]))
    sizes, counts = Counter(signup.values()), defaultdict(lambda: [0] * 6)
    for user, offsets in active.items():
        for off in offsets:
            counts[signup[user]][off] += 1
    table = []
    for cohort in sorted(sizes):
        pct = [100.0] + [100 * counts[cohort][k] / sizes[cohort] for k in range(1, 6)]
        table.append([cohort, sizes[cohort]] + [f"{p:.1f}" for p in pct])
    os.makedirs("out", exist_ok=True)
    with open("out/cohort_retention.csv", "w", newline="") as f:
        csv.writer(f).writerows([["cohort", "users"] + [f"m{k}" for k in range(6)]] + table)
    weakest = min(table, key=lambda t: float(t[5]))
    with open("out/cohort_notes.md", "w") as f:
        f.write(f"# Cohort retention\\n\\nWeakest cohort: {weakest[0]}, with {weakest[5]}% of its "
                f"{weakest[1]} users active in month 3 (median cohort: "
                f"{sorted(float(t[5]) for t in table)[len(table) // 2]:.1f}%).\\n")
    print(f"{len(table)} cohorts; weakest month-3 retention: {weakest[0]} at {weakest[5]}%")
    """
)


def _cohort_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l data/events.csv && cut -d, -f2 data/events.csv | sort | uniq -c",
            say="Counting the events by type and reading the first events.",
        ),
        read("data/events.csv", 1, 6),
    ]
    yield write("cohorts.py", _COHORT_V1, say="Writing the cohort builder.")
    run = yield sh("python3 cohorts.py")
    if not run.ok:
        # Users stay active up to 11 months after signup, past the 6-slot table.
        yield edit(
            "cohorts.py",
            "    for off in offsets:\n",
            "    for off in (o for o in offsets if 0 < o <= 5):  # months 1-5 only\n",
            say="Activity runs past month 5; counting months 1 to 5 only.",
        )
        run = yield sh("python3 cohorts.py")
    yield Reply(f"Built out/cohort_retention.csv: {run.stdout.strip()}.")
    table, _ = yield [
        sh("cat out/cohort_retention.csv", say="Reviewing the table and the note."),
        sh("cat out/cohort_notes.md"),
    ]
    rows = [ln for ln in table.stdout.splitlines() if ln[:4].isdigit()]
    yield Reply(f"Checked: {len(rows)} cohorts with months 0-5; the note names the weakest one.")


_COHORT_VERIFY = """
import csv, sys
rows = list(csv.DictReader(open("data/events.csv")))
signup = {r["user_id"]: r["timestamp"][:7] for r in rows if r["event_type"] == "signup"}
idx = lambda ym: int(ym[:4]) * 12 + int(ym[5:7])
seen = {}
for r in rows:
    if r["event_type"] != "signup" and r["user_id"] in signup:
        c = signup[r["user_id"]]
        seen.setdefault((c, idx(r["timestamp"][:7]) - idx(c)), set()).add(r["user_id"])
sizes = {}
for c in signup.values():
    sizes[c] = sizes.get(c, 0) + 1
try:
    table = {r["cohort"]: r for r in csv.DictReader(open("out/cohort_retention.csv"))}
    note = open("out/cohort_notes.md").read()
except (FileNotFoundError, KeyError) as e:
    sys.exit(f"missing output: {e}")
m3 = {}
for c, n in sizes.items():
    row = table.get(c)
    if row is None:
        sys.exit(f"cohort {c} is missing")
    for k in range(1, 6):
        want = 100 * len(seen.get((c, k), ())) / n
        names = (f"m{k}", f"month_{k}", str(k))
        col = [v for key, v in row.items() if key.lower().strip() in names]
        if not col or abs(float(col[0].rstrip("%")) - want) > 0.15:
            sys.exit(f"cohort {c} month {k}: expected {want:.1f}%")
    m3[c] = 100 * len(seen.get((c, 3), ())) / n
weakest = min(m3, key=m3.get)
if weakest not in note:
    sys.exit(f"the note should name {weakest} as the weakest month-3 cohort")
print(f"ok: {len(sizes)} cohorts, weakest {weakest}")
"""


# ---------------------------------------------------------------- intel-rank-vendor-proposals

_RUBRIC = {
    "scale": "1 (poor) to 5 (excellent)",
    "criteria": {
        "price": {"weight": 0.35, "guidance": "total annual cost in EUR",
                  "bands": [[40000, 5], [50000, 4], [60000, 3], [70000, 2]], "otherwise": 1},
        "delivery": {"weight": 0.25, "guidance": "weeks to go-live; ranges count high",
                     "bands": [[4, 5], [6, 4], [8, 3], [10, 2]], "otherwise": 1},
        "support": {"weight": 0.2, "guidance": "5: 24/7 with 1-hour response; 4: 24/7; "
                    "3: business hours with 4-hour response; 2: business hours; 1: email only"},
        "compliance": {"weight": 0.2, "guidance": "ISO 27001, SOC 2 Type II and a GDPR DPA: "
                       "all three 5, two 3, one 2, none 1"},
    },
}  # fmt: skip
_SUPPORT = [
    "24/7 phone and chat support with a 1-hour response time for priority incidents.",
    "24/7 support by chat, response within 8 hours.",
    "Business-hours support (9:00-17:00 CET) with a 4-hour response time.",
    "Business-hours support by phone, next-business-day response.",
    "Support by email only, best effort.",
]
_CERTS = ["ISO 27001", "SOC 2 Type II", "GDPR DPA"]


def _proposals_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    vendors = [
        "Acorn Systems",
        "Bluepeak IT",
        "Corvid Labs",
        "Driftwood Tech",
        "Elmstone Solutions",
    ]
    files = {"rubric.json": json.dumps(_RUBRIC, indent=2) + "\n"}
    for n, vendor in enumerate(vendors):
        lic, sup = rng.randrange(25000, 60000, 500), rng.randrange(3000, 15000, 500)
        weeks = rng.randint(3, 12)
        delivery = (f"Go-live in {weeks - 2}-{weeks} weeks after kickoff." if n in (1, 3)
                    else f"Go-live within {weeks} weeks of signature.")  # fmt: skip
        certs = rng.sample(_CERTS, rng.randint(0, 3))
        comp = f"We hold {' and '.join(certs)}." if certs else "No formal certifications yet."
        files[f"proposals/{vendor.split()[0].lower()}.md"] = (
            f"# {vendor} - proposal for the analytics platform\n\n## Pricing\n\n"
            f"| Item | Annual cost (EUR) |\n|---|---:|\n| Licences | {lic:,} |\n"
            f"| Support plan | {sup:,} |\n| **Total** | **{lic + sup:,}** |\n\n"
            f"## Delivery\n\n{delivery}\n\n## Support and SLA\n\n{rng.choice(_SUPPORT)}\n\n"
            f"## Compliance\n\n{comp}\n"
        )
    return Fixture(files), {"vendors": 5}


_PROPOSALS_V1 = textwrap.dedent(
    """\
    import csv, glob, json, os, re

    crit = json.load(open("rubric.json"))["criteria"]
    band = lambda v, c: next((s for lim, s in crit[c]["bands"] if v <= lim), crit[c]["otherwise"])


    def score(text):
        total = re.search(r"\\*\\*Total\\*\\* \\| \\*\\*([\\d,]+)", text).group(1)
        total = int(total.replace(",", ""))
        weeks = int(re.search(r"(\\S+) weeks", text).group(1))
        low = text.lower()
        support = (5 if "24/7" in low and "1-hour" in low else 4 if "24/7" in low
                   else 3 if "business-hours" in low and "4-hour" in low
                   else 2 if "business-hours" in low else 1)
        certs = [c for c in ("ISO 27001", "SOC 2 Type II", "GDPR DPA") if c in text]
        return {
            "price": (band(total, "price"), f"EUR {total:,} per year"),
            "delivery": (band(weeks, "delivery"), f"go-live in {weeks} weeks"),
            "support": (support, re.search(r"## Support and SLA\\s+(.+)", text).group(1)),
            "compliance": ({3: 5, 2: 3, 1: 2, 0: 1}[len(certs)], ", ".join(certs) or "none"),
        }


    rows, totals = [], {}
    for path in sorted(glob.glob("proposals/*.md")):
        text = open(path).read()
        vendor = text.splitlines()[0].lstrip("# ").split(" - ")[0]
        for c, (s, why) in score(text).items():
            rows.append([vendor, c, s, crit[c]["weight"], round(s * crit[c]["weight"], 3), why])
            totals[vendor] = round(totals.get(vendor, 0) + s * crit[c]["weight"], 3)
    os.makedirs("out", exist_ok=True)
    with open("out/vendor_scores.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["vendor", "criterion", "score", "weight", "weighted", "reason"])
        w.writerows(rows)
    ranked = sorted(totals, key=totals.get, reverse=True)
    with open("out/shortlist.md", "w") as f:
        f.write("# Vendor shortlist\\n\\n")
        for n, v in enumerate(ranked[:3], 1):
            why = "; ".join(f"{r[1]} {r[2]}/5 ({r[5]})" for r in rows if r[0] == v)
            f.write(f"{n}. **{v}** - weighted score {totals[v]:.2f}: {why}\\n")
    print(", ".join(f"{v} {totals[v]:.2f}" for v in ranked))
    """
)


def _proposals_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls proposals", say="Listing proposals and the criterion weights."),
        sh("jq -c '.criteria | map_values(.weight)' rubric.json"),
    ]
    yield read("proposals/acorn.md", say="Reading one proposal to see its structure.")
    yield write("score_vendors.py", _PROPOSALS_V1, say="Writing the scoring script.")
    run = yield sh("python3 score_vendors.py")
    if not run.ok:
        # Some vendors give delivery as a range like "6-8 weeks", which int() rejects.
        yield edit(
            "score_vendors.py",
            '    weeks = int(re.search(r"(\\S+) weeks", text).group(1))\n',
            '    m = re.search(r"(\\d+)(?:-(\\d+))? weeks", text)\n'
            "    weeks = int(m.group(2) or m.group(1))  # a range counts at its upper bound\n",
            say="Delivery is sometimes a range; taking its upper bound as the rubric says.",
        )
        run = yield sh("python3 score_vendors.py")
    yield Reply(
        f"Scored all five proposals (out/vendor_scores.csv). Ranking: {run.stdout.strip()}."
    )
    short = yield read("out/shortlist.md", say="Reading the shortlist back.")
    top = re.findall(r"\*\*(.+?)\*\*", short.stdout)
    yield Reply(f"Checked: the shortlist ranks {', '.join(top)} with per-criterion reasons.")


_PROPOSALS_VERIFY = """
import csv, glob, json, re, sys
crit = json.load(open("rubric.json"))["criteria"]
band = lambda v, c: next((s for lim, s in crit[c]["bands"] if v <= lim), crit[c]["otherwise"])
want, totals = {}, {}
for path in glob.glob("proposals/*.md"):
    text = open(path).read()
    vendor = text.splitlines()[0].lstrip("# ").split(" - ")[0]
    total = int(re.search(r"\\*\\*Total\\*\\* \\| \\*\\*([\\d,]+)", text).group(1).replace(",", ""))
    m = re.search(r"(\\d+)(?:-(\\d+))? weeks", text)
    low = text.lower()
    sup = (5 if "24/7" in low and "1-hour" in low else 4 if "24/7" in low else 3 if "4-hour" in low
           else 2 if "business-hours" in low else 1)
    n = sum(c in text for c in ("ISO 27001", "SOC 2 Type II", "GDPR DPA"))
    weeks = int(m.group(2) or m.group(1))
    want[vendor] = {"price": band(total, "price"), "delivery": band(weeks, "delivery"),
                    "support": sup, "compliance": {3: 5, 2: 3, 1: 2, 0: 1}[n]}
    totals[vendor] = sum(s * crit[c]["weight"] for c, s in want[vendor].items())
try:
    rows = list(csv.DictReader(open("out/vendor_scores.csv")))
    short = open("out/shortlist.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing output: {e}")
for vendor, scores in want.items():
    for c, s in scores.items():
        r = [r for r in rows if r["vendor"] == vendor and r["criterion"] == c]
        if len(r) != 1 or int(float(r[0]["score"])) != s or not r[0].get("reason", "").strip():
            sys.exit(f"{vendor} / {c}: expected score {s} with a reason")
best = sorted(totals.values(), reverse=True)[:3]
named = sorted((short.find(v), v) for v in totals if v in short)[:3]
if [round(totals[v], 6) for _, v in named] != [round(t, 6) for t in best]:
    sys.exit(f"the shortlist should rank the three best totals {best} in order")
print(f"ok: shortlist {[v for _, v in named]}")
"""


# ---------------------------------------------------------------- intel-background-fraud-scoring

_SCORE_BATCH = textwrap.dedent(
    """\
    \"\"\"Score card transactions for fraud risk in chunks; progress goes to logs/score.log.\"\"\"

    import csv, math, os, statistics, time
    from collections import defaultdict

    CHUNK, RISKY = 300, {"NG", "RU", "VN", "BR"}
    rows = list(csv.DictReader(open("data/transactions.csv")))
    amounts = defaultdict(list)
    for r in rows:
        amounts[r["merchant"]].append(float(r["amount"]))
    stats = {m: (statistics.fmean(v), statistics.pstdev(v) or 1.0) for m, v in amounts.items()}
    os.makedirs("logs", exist_ok=True)
    os.makedirs("out", exist_ok=True)
    log = open("logs/score.log", "a")


    def say(msg):
        log.write(f"{time.strftime('%H:%M:%S')} {msg}\\n")
        log.flush()


    say(f"scoring {len(rows)} transactions in chunks of {CHUNK}")
    with open("out/scores.csv.part", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["txn_id", "score", "reasons"])
        for start in range(0, len(rows), CHUNK):
            for r in rows[start : start + CHUNK]:
                mean, sd = stats[r["merchant"]]
                z, why = (float(r["amount"]) - mean) / sd, []
                x = -3.0 + 0.9 * max(z, 0)
                if z > 3:
                    why.append("amount")
                if r["country"] in RISKY:
                    x += 1.5
                    why.append("country")
                if int(r["timestamp"][11:13]) < 5:
                    x += 1.0
                    why.append("night")
                out.writerow([r["txn_id"], f"{1 / (1 + math.exp(-x)):.4f}", "+".join(why)])
            say(f"chunk {start // CHUNK + 1}/{-(-len(rows) // CHUNK)} done")
            time.sleep(0.2)
    os.replace("out/scores.csv.part", "out/scores.csv")
    say("finished: all transactions scored")
    """
)


def _fraud_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    merchants = {"Coffee Corner": 5, "Metro Transit": 3, "FreshMart": 60, "BookNook": 25,
                 "TechHub": 300, "StreamPlus": 12, "Fuel&Go": 70, "Pharma One": 20,
                 "Gate Airlines": 400, "Hotel Aurora": 220}  # fmt: skip
    lines = ["txn_id,timestamp,merchant,amount,country"]
    for n in range(3000):
        merchant = rng.choice(list(merchants))
        amount = merchants[merchant] * rng.uniform(0.5, 1.6)
        country = rng.choices(("DE", "FR", "NL", "NG", "RU", "VN", "BR"), (60, 15, 15, 3, 3, 2, 2))[
            0
        ]
        hour = rng.randint(0, 23)
        if rng.random() < 0.01:  # fraud-like: big, at night, abroad
            amount, hour, country = amount * rng.uniform(5, 12), rng.randint(1, 4), "NG"
        stamp = f"2025-10-{rng.randint(1, 31):02d}T{hour:02d}:{rng.randint(0, 59):02d}:00"
        lines.append(f"T{n + 1:06d},{stamp},{merchant},{amount:.2f},{country}")
    files = {"analysis/score_batch.py": _SCORE_BATCH,
             "data/transactions.csv": "\n".join(lines) + "\n"}  # fmt: skip
    return Fixture(files), {"transactions": 3000}


_FRAUD_SUMMARY = textwrap.dedent(
    """\
    import csv

    txns = {r["txn_id"]: r for r in csv.DictReader(open("data/transactions.csv"))}
    scores = list(csv.DictReader(open("out/scores.csv")))
    buckets = [0] * 5
    for s in scores:
        buckets[min(int(float(s["score"]) * 5), 4)] += 1
    top = sorted(scores, key=lambda s: -float(s["score"]))[:20]
    lines = ["# Fraud score summary", "", f"{len(scores)} transactions scored.", "",
             "## Score distribution", "", "| score | transactions |", "|---|---:|"]
    lines += [f"| {k / 5:.1f}-{(k + 1) / 5:.1f} | {n} |" for k, n in enumerate(buckets)]
    lines += ["", "## 20 highest-risk transactions", "",
              "| rank | txn_id | score | merchant | amount | country | reasons |",
              "|---|---|---|---|---:|---|---|"]
    for n, s in enumerate(top, 1):
        t = txns[s["txn_id"]]
        lines.append(f"| {n} | {t['txn_id']} | {s['score']} | {t['merchant']} | {t['amount']} | "
                     f"{t['country']} | {s['reasons']} |")
    open("out/fraud_summary.md", "w").write("\\n".join(lines) + "\\n")
    print(f"{len(scores)} scores summarised; buckets {buckets}; top score {top[0]['score']}")
    """
)


def _fraud_playbook(ctx: Ctx) -> Playbook:
    yield read("analysis/score_batch.py", 1, 12, say="Reading how the scorer works.")
    job = yield start("python3 analysis/score_batch.py", say="Starting the scoring job.")
    job_id = job.extras.get("job", "job1")
    yield [
        poll(job_id, say="Checking that it is running, and writing the summary script meanwhile."),
        write("summarize.py", _FRAUD_SUMMARY),
    ]
    run = yield sh("python3 summarize.py")
    if not run.ok:
        # The job only publishes out/scores.csv when it finishes; it is still running.
        yield sh(
            "timeout 240 sh -c 'until grep -qs finished logs/score.log; do sleep 0.2; done'; "
            "tail -3 logs/score.log",
            say="scores.csv does not exist yet; waiting for the job to finish.",
            timeout_s=260,
        )
        yield poll(job_id, say="Confirming the job exited cleanly.")
        run = yield sh("python3 summarize.py")
    yield Reply(f"The scoring job completed; out/fraud_summary.md written: {run.stdout.strip()}.")
    summary = yield read("out/fraud_summary.md", 15, 20, say="Reading the top of the risk table.")
    top = re.findall(r"\| 1 \| (T\d+) \| ([\d.]+) \| ([^|]+) \| ([\d.]+)", summary.stdout)
    first = f"{top[0][0]} ({top[0][2].strip()}, {top[0][3]}, score {top[0][1]})" if top else "?"
    yield Reply(f"Checked: distribution and top 20 are listed; the riskiest is {first}.")


_FRAUD_VERIFY = """
import csv, os, sys
if "finished" not in (open("logs/score.log").read() if os.path.exists("logs/score.log") else ""):
    sys.exit("the scoring job did not run to completion")
txns = {r["txn_id"]: r for r in csv.DictReader(open("data/transactions.csv"))}
try:
    scores = [(float(r["score"]), r["txn_id"]) for r in csv.DictReader(open("out/scores.csv"))]
    summary = open("out/fraud_summary.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing output: {e}")
if len(scores) != len(txns):
    sys.exit("out/scores.csv does not cover every transaction")
scores.sort(reverse=True)
cut = scores[19][0]
lines = summary.splitlines()
for s, tid in scores:
    if s <= cut:
        break
    t = txns[tid]
    if not any(tid in l and t["merchant"] in l and t["amount"] in l for l in lines):
        sys.exit(f"{tid} ({s}) is a top-20 risk but is not listed with merchant and amount")
if "distribution" not in summary.lower():
    sys.exit("the summary has no score distribution")
print("ok: job completed and summary lists the top risks")
"""


# ---------------------------------------------------------------- intel-reconcile-bank-statement


def _bank_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = ["ACME GMBH", "NORDWIND AG", "BLAU UND CO", "KRAFT LOGISTIK", "SONNE HANDEL"]
    cents = rng.sample(range(2000, 900000), 400)
    ledger, bank = [], []
    for i in range(150):
        day = date(2025, 10, rng.randint(1, 27))
        kind, n, amount = rng.choice(("INV", "PO", "CARD")), rng.randint(1000, 9999), cents[i] / 100
        ref = {"INV": f"INV-2025-{n}", "PO": f"PO-{n}", "CARD": f"CARD-{n}"}[kind]
        amount = amount if kind == "INV" else -amount
        ledger.append([f"L{i + 1:04d}", str(day), ref, f"{amount:.2f}"])
        if i % 15 == 14:
            continue  # only in the ledger
        desc = {"INV": f"SEPA CREDIT {rng.choice(names)} INV 2025/{n}",
                "PO": f"SEPA DEBIT {rng.choice(names)} PO{n}",
                "CARD": f"CARD PAYMENT {rng.choice(names)}"}[kind]  # fmt: skip
        paid = amount - 12.5 if kind != "CARD" and i % 30 == 3 else amount  # a bank fee deducted
        trx = f"{desc} TRX{rng.randint(10**5, 10**6)}"
        bank.append([day + timedelta(days=rng.randint(0, 3)), trx, paid])
    for j in range(15):
        amount = -cents[200 + j] / 100 if j % 3 else cents[200 + j] / 100
        what = "ACCOUNT FEE" if j % 3 else "INTEREST CREDIT"
        bank.append([date(2025, 10, rng.randint(1, 31)), f"{what} TRX{rng.randint(10**5, 10**6)}",
                     amount])  # fmt: skip
    bank.sort(key=lambda b: b[0])
    blines = ["value_date,description,debit,credit"] + [
        f"{d:%d.%m.%Y},{desc}," + (f"{-a:.2f}," if a < 0 else f",{a:.2f}") for d, desc, a in bank
    ]
    files = {"finance/ledger.csv": "entry_id,date,reference,amount\n"
             + "\n".join(",".join(e) for e in ledger) + "\n",
             "finance/bank_statement.csv": "\n".join(blines) + "\n"}  # fmt: skip
    return Fixture(files), {"ledger": 150, "bank": len(bank)}


_RECONCILE_V1 = textwrap.dedent(
    """\
    import csv, os, re
    from datetime import date, datetime

    key = lambda s: re.sub(r"[^A-Z0-9]", "", s.upper())
    ledger = list(csv.DictReader(open("finance/ledger.csv")))
    bank = list(csv.DictReader(open("finance/bank_statement.csv")))
    for n, b in enumerate(bank, 1):
        b["row"], b["key"] = n, key(b["description"])
        b["day"] = date.fromisoformat(b["value_date"])
        b["amt"] = round(float(b["credit"] or 0) - float(b["debit"] or 0), 2)
    for e in ledger:
        e["day"], e["amt"] = date.fromisoformat(e["date"]), round(float(e["amount"]), 2)
    out, used, pending = [], set(), []


    def take(e, b, status):
        used.add(b["row"])
        out.append([status, e["entry_id"], e["date"], e["amt"], b["row"], b["value_date"], b["amt"],
                    b["description"]])


    for e in (e for e in ledger if e["day"].month == 10):
        ref = key(e["reference"])
        b = next((b for b in bank if b["row"] not in used and ref in b["key"]), None)
        if b:  # same reference: amounts must agree
            take(e, b, "matched" if b["amt"] == e["amt"] else "amount_mismatch")
        else:
            pending.append(e)
    for e in pending:  # no usable reference: same amount within three days
        near = [b for b in bank if b["row"] not in used and b["amt"] == e["amt"]
                and abs((b["day"] - e["day"]).days) <= 3]
        if near:
            take(e, min(near, key=lambda b: abs((b["day"] - e["day"]).days)), "matched")
        else:
            out.append(["ledger_only", e["entry_id"], e["date"], e["amt"], "", "", "", ""])
    out += [["bank_only", "", "", "", b["row"], b["value_date"], b["amt"], b["description"]]
            for b in bank if b["row"] not in used]
    os.makedirs("out", exist_ok=True)
    with open("out/reconciliation.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["status", "entry_id", "ledger_date", "ledger_amount", "bank_row", "value_date",
                    "bank_amount", "description"])
        w.writerows(out)
    counts = {s: sum(r[0] == s for r in out) for s in ("matched", "amount_mismatch", "ledger_only",
                                                         "bank_only")}
    with open("out/reconciliation.md", "w") as f:
        f.write("# October reconciliation\\n\\n")
        f.writelines(f"- {s}: {n}\\n" for s, n in counts.items())
        f.write("\\n## Amount mismatches\\n\\n")
        f.writelines(f"- {r[1]}: ledger {r[3]:.2f} vs bank {r[6]:.2f} ({r[7]})\\n"
                     for r in out if r[0] == "amount_mismatch")
    print(counts)
    """
)


def _bank_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "head -4 finance/ledger.csv finance/bank_statement.csv && wc -l finance/*.csv",
            say="Comparing the two files' layouts and reading the statement's first lines.",
        ),
        read("finance/bank_statement.csv", 1, 8),
    ]
    yield write("reconcile.py", _RECONCILE_V1, say="Writing a reference-then-amount matcher.")
    run = yield sh("python3 reconcile.py")
    if not run.ok:
        # The bank writes value dates as DD.MM.YYYY, not ISO.
        yield edit(
            "reconcile.py",
            'b["day"] = date.fromisoformat(b["value_date"])',
            'b["day"] = datetime.strptime(b["value_date"], "%d.%m.%Y").date()',
            say="The bank's dates are DD.MM.YYYY; parsing them explicitly.",
        )
        run = yield sh("python3 reconcile.py")
    yield Reply(f"Reconciliation written to out/reconciliation.csv and .md: {run.stdout.strip()}.")
    check = yield sh("sed -n '/Amount mismatches/,$p' out/reconciliation.md",
                     say="Reviewing the amount mismatches.")  # fmt: skip
    n = check.stdout.count("\n- ")
    yield Reply(f"Checked: {n} pairs differ in amount; each lists both amounts and the bank text.")


_BANK_VERIFY = """
import csv, re, sys
from datetime import datetime, date
key = lambda s: re.sub(r"[^A-Z0-9]", "", s.upper())
ledger = list(csv.DictReader(open("finance/ledger.csv")))
bank = list(csv.DictReader(open("finance/bank_statement.csv")))
for b in bank:
    b["day"] = datetime.strptime(b["value_date"], "%d.%m.%Y").date()
    b["amt"] = round(float(b["credit"] or 0) - float(b["debit"] or 0), 2)
want, used, pending = set(), set(), []
for e in ledger:
    e["day"], e["amt"] = date.fromisoformat(e["date"]), round(float(e["amount"]), 2)
    free = [b for b in bank if b["description"] not in used]
    b = next((b for b in free if key(e["reference"]) in key(b["description"])), None)
    if b:
        used.add(b["description"])
        want.add(("matched" if b["amt"] == e["amt"] else "mismatch", e["entry_id"]))
    else:
        pending.append(e)
for e in pending:
    free = [b for b in bank if b["description"] not in used]
    near = [b for b in free if b["amt"] == e["amt"] and abs((b["day"] - e["day"]).days) <= 3]
    if near:
        used.add(near[0]["description"])
        want.add(("matched", e["entry_id"]))
    else:
        want.add(("ledger_only", e["entry_id"]))
want |= {("bank_only", b["description"]) for b in bank if b["description"] not in used}
def kind(s):
    s = s.lower()
    if "mismatch" in s or "differ" in s:
        return "mismatch"
    if "ledger" in s:
        return "ledger_only"
    return "bank_only" if "bank" in s or "statement" in s else "matched" if "match" in s else s
try:
    rows = list(csv.DictReader(open("out/reconciliation.csv")))
    summary = open("out/reconciliation.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing output: {e}")
got = set()
for r in rows:
    k = kind(r.get("status", ""))
    got.add((k, r.get("description", "") if k == "bank_only" else r.get("entry_id", "")))
for label in ("matched", "mismatch", "ledger_only", "bank_only"):
    a, b = {x for x in want if x[0] == label}, {x for x in got if x[0] == label}
    if a != b:
        sys.exit(f"{label}: expected {len(a)} rows, report has {len(b)} ({sorted(a ^ b)[:2]})")
if not summary.strip():
    sys.exit("out/reconciliation.md is empty")
print(f"ok: {len(want)} reconciliation rows")
"""


RECIPES = [
    TaskRecipe(
        task_id="intel-classify-support-tickets",
        fixture=_tickets_fixture,
        playbook=_tickets_playbook,
        verify=_TICKETS_VERIFY,
        failure_mode="trusts the incomplete keyword rules; account and wish tickets fall through",
    ),
    TaskRecipe(
        task_id="intel-summarize-incident-reports",
        fixture=_incidents_fixture,
        playbook=_incidents_playbook,
        verify=_INCIDENTS_VERIFY,
        failure_mode="tries to read the incidents folder itself instead of listing it",
    ),
    TaskRecipe(
        task_id="intel-regional-sales-statistics",
        fixture=_sales_fixture,
        playbook=_sales_playbook,
        verify=_SALES_VERIFY,
        failure_mode="parses amounts with float(); large ones carry thousands separators",
    ),
    TaskRecipe(
        task_id="intel-extract-invoice-fields",
        fixture=_invoices_fixture,
        playbook=_invoices_playbook,
        verify=_INVOICES_VERIFY,
        failure_mode="parses every date as DD/MM/YYYY; other vendors use other formats",
    ),
    TaskRecipe(
        task_id="intel-detect-sensor-anomalies",
        fixture=_sensors_fixture,
        playbook=_sensors_playbook,
        verify=_SENSORS_VERIFY,
        failure_mode="converts every temp_c with float(); dropout rows have an empty value",
    ),
    TaskRecipe(
        task_id="intel-score-survey-sentiment",
        fixture=_survey_fixture,
        playbook=_survey_playbook,
        verify=_SURVEY_VERIFY,
        failure_mode="opens the survey export as UTF-8; it is Windows-1252",
    ),
    TaskRecipe(
        task_id="intel-ab-test-significance",
        fixture=_ab_fixture,
        playbook=_ab_playbook,
        verify=_AB_VERIFY,
        failure_mode="casts 'converted' with int(); the log stores True/False",
    ),
    TaskRecipe(
        task_id="intel-dedupe-customer-records",
        fixture=_customers_fixture,
        playbook=_dedupe_playbook,
        verify=_DEDUPE_VERIFY,
        failure_mode="treats blank emails and phones as a shared key, chaining one giant cluster",
    ),
    TaskRecipe(
        task_id="intel-forecast-weekly-demand",
        fixture=_demand_fixture,
        playbook=_demand_playbook,
        verify=_DEMAND_VERIFY,
        failure_mode="computes MAPE over stockout weeks, dividing by zero units",
    ),
    TaskRecipe(
        task_id="intel-cohort-retention-table",
        fixture=_cohort_fixture,
        playbook=_cohort_playbook,
        verify=_COHORT_VERIFY,
        failure_mode="indexes a 6-month table with every activity month, some of them past month 5",
    ),
    TaskRecipe(
        task_id="intel-rank-vendor-proposals",
        fixture=_proposals_fixture,
        playbook=_proposals_playbook,
        verify=_PROPOSALS_VERIFY,
        failure_mode="reads delivery weeks with int(); some proposals give a range like 6-8",
    ),
    TaskRecipe(
        task_id="intel-background-fraud-scoring",
        fixture=_fraud_fixture,
        playbook=_fraud_playbook,
        verify=_FRAUD_VERIFY,
        failure_mode="summarises before the background job has published out/scores.csv",
    ),
    TaskRecipe(
        task_id="intel-reconcile-bank-statement",
        fixture=_bank_fixture,
        playbook=_bank_playbook,
        verify=_BANK_VERIFY,
        failure_mode="parses the bank's DD.MM.YYYY value dates as ISO dates",
    ),
]
