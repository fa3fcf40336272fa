"""Source-Chain recipes: git history work, releases, dependency pins and vendored code."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import random
import re
import textwrap

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, patch, read, sh, write

# ---------------------------------------------------------------- shared: fixture repositories

# Replays the operations recorded by _History into a git repository with fixed dates, so the
# history (and every hash) is the same for the same seed. Runs once in the task dir, then is
# deleted together with its ops file.
_BUILD_REPO = textwrap.dedent(
    '''\
    """Fixture builder: replays _build/ops.json into a git repository with fixed dates."""
    import json
    import os
    import subprocess

    spec = json.load(open("_build/ops.json"))
    root = spec["root"]
    os.makedirs(root, exist_ok=True)


    def git(args, date=None, author=None):
        env = dict(os.environ)
        if date:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        if author:
            env["GIT_AUTHOR_NAME"], env["GIT_AUTHOR_EMAIL"] = author
        subprocess.run(["git", *args], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


    git(["init", "-q", "-b", "main"])
    for op in spec["ops"]:
        path = os.path.join(root, op.get("path", ""))
        if op["op"] == "write":
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as fh:
                fh.write(op["content"])
        elif op["op"] == "rm":
            os.remove(path)
        elif op["op"] == "commit":
            git(["add", "-A"])
            git(["commit", "-q", "-m", op["msg"]], op["date"], op.get("author"))
        else:
            git(op["args"], op.get("date"), op.get("author"))
    '''
)


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S+00:00")


class _History:
    """Records the operations that build a fixture's git repository (see _BUILD_REPO)."""

    def __init__(self, root: str = "repo") -> None:
        self.root = root
        self.ops: list[dict] = []

    def write(self, path: str, content: str) -> None:
        self.ops.append({"op": "write", "path": path, "content": content})

    def rm(self, path: str) -> None:
        self.ops.append({"op": "rm", "path": path})

    def commit(self, msg: str, when: dt.datetime, author: tuple[str, str] | None = None) -> None:
        op = {"op": "commit", "msg": msg, "date": _iso(when)}
        if author:
            op["author"] = list(author)
        self.ops.append(op)

    def git(self, *args: str, when: dt.datetime | None = None) -> None:
        op: dict = {"op": "git", "args": list(args)}
        if when:
            op["date"] = _iso(when)
        self.ops.append(op)

    def fixture(self, files: dict[str, str | bytes] | None = None) -> Fixture:
        files = dict(files or {})
        files["_build/build.py"] = _BUILD_REPO
        files["_build/ops.json"] = json.dumps({"root": self.root, "ops": self.ops})
        return Fixture(files, ("python3 _build/build.py && rm -rf _build",))


_AUTHORS = (
    ("Ana Souza", "ana.souza@example.com"),
    ("Ben Okafor", "ben.okafor@example.com"),
    ("Carla Jensen", "carla.jensen@example.com"),
    ("Dmitri Volkov", "dmitri.volkov@example.com"),
    ("Emma Larsen", "emma.larsen@example.com"),
    ("Farid Haddad", "farid.haddad@example.com"),
)

# Every test file in these fixtures finds the repository root the same way.
_TEST_HEADER = textwrap.dedent(
    """\
    import os
    import sys
    import unittest

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    """
)

# ---------------------------------------------------------------- source-resolve-merge-conflict


def _pricing_source(rates: dict | None, tiers: list | None) -> str:
    """src/pricing.py on base (neither), main (rates), the feature (tiers) or merged (both)."""
    consts = []
    if rates:
        items = ", ".join(f'"{k}": {v}' for k, v in rates.items())
        consts.append(f"RATES = {{{items}}}\n")
    if tiers:
        consts.append(f"# (minimum quantity, discount), largest tier first\nTIERS = {tiers!r}\n")
    doc = "Total price for qty units"
    doc += " after bulk discounts" if tiers else ""
    doc += ", converted from USD to currency" if rates else ""
    body = ["    total = unit * qty"]
    if tiers:
        body += [
            "    for min_qty, discount in TIERS:",
            "        if qty >= min_qty:",
            "            total *= 1 - discount",
            "            break",
        ]
    if rates:
        body.append("    total *= RATES[currency]")
    sig = 'def price(unit, qty=1, currency="USD"):' if rates else "def price(unit, qty=1):"
    head = '"""Order pricing."""\n\n' + "\n".join(consts)
    return (
        head
        + "\n\n"
        + "\n".join([sig, f'    """{doc}."""', *body, "    return round(total, 2)"])
        + "\n"
    )


def _pricing_tests(rates: dict | None, tiers: list | None) -> str:
    parts = [_TEST_HEADER + "\nfrom src.pricing import price  # noqa: E402\n\n"]
    if rates:
        eur = round(10.0 * rates["EUR"], 2)
        parts.append(
            textwrap.dedent(
                f"""
                class CurrencyTest(unittest.TestCase):
                    def test_default_is_usd(self):
                        self.assertEqual(price(4.0, qty=2), 8.0)

                    def test_converts_to_eur(self):
                        self.assertAlmostEqual(price(10.0, currency="EUR"), {eur})

                    def test_unknown_currency(self):
                        with self.assertRaises(KeyError):
                            price(1.0, currency="XYZ")

                """
            )
        )
    parts.append(
        textwrap.dedent(
            """
            class BasicPriceTest(unittest.TestCase):
                def test_single_unit(self):
                    self.assertEqual(price(9.99), 9.99)

                def test_quantity(self):
                    self.assertEqual(price(2.5, qty=4), 10.0)

            """
        )
    )
    if tiers:
        checks = "\n".join(
            f"        self.assertAlmostEqual(price(1.0, qty={q}), {round(q * (1 - d), 2)})"
            for q, d in tiers
        )
        parts.append(
            textwrap.dedent(
                """
                class BulkDiscountTest(unittest.TestCase):
                    def test_below_smallest_tier(self):
                        self.assertEqual(price(2.0, qty=4), 8.0)

                    def test_each_tier(self):
                """
            )
            + checks
            + "\n\n"
        )
    parts.append('\nif __name__ == "__main__":\n    unittest.main()\n')
    return "".join(parts)


def _merge_conflict_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    rates = {"USD": 1.0, "EUR": rng.choice((0.91, 0.92, 0.93)), "GBP": rng.choice((0.78, 0.79))}
    tiers = [
        (rng.choice((100, 200)), rng.choice((0.12, 0.15))),
        (rng.choice((25, 50)), rng.choice((0.08, 0.1))),
        (rng.choice((5, 10, 12)), rng.choice((0.03, 0.05))),
    ]
    day = dt.datetime(2026, 1, 5, 10, 0)
    h = _History()
    h.write("README.md", "# shopcalc\n\nPrice calculations for the web shop.\n")
    h.write("src/pricing.py", _pricing_source(None, None))
    h.write("tests/test_pricing.py", _pricing_tests(None, None))
    h.commit("Add price() with tests", day)
    h.git("checkout", "-q", "-b", "feature/bulk-discounts")
    h.write("src/pricing.py", _pricing_source(None, tiers))
    h.write("tests/test_pricing.py", _pricing_tests(None, tiers))
    h.commit("Add tiered bulk discounts", day + dt.timedelta(days=2))
    h.git("checkout", "-q", "main")
    h.write("src/pricing.py", _pricing_source(rates, None))
    h.write("tests/test_pricing.py", _pricing_tests(rates, None))
    h.commit("Support pricing in EUR and GBP", day + dt.timedelta(days=3))
    return h.fixture(), {"merged": _pricing_source(rates, tiers)}


def _merge_conflict_playbook(ctx: Ctx) -> Playbook:
    yield sh(
        "cd repo && git status -sb && git log --oneline --graph --all",
        say="Looking at both branches first.",
    )
    merge = yield sh(
        "cd repo && git merge --no-edit feature/bulk-discounts",
        say="Merging feature/bulk-discounts into main.",
    )
    commit = ""
    if not merge.ok:
        src = yield read("repo/src/pricing.py", say="The merge stopped on a conflict; reading it.")
        text = src.stdout
        start = text.find("<<<<<<<")
        end = text.find("\n", text.rfind(">>>>>>>")) + 1
        before, after = text[:start], text[end:]
        merged = ctx.facts["merged"]
        yield edit(
            "repo/src/pricing.py",
            text[start:end],
            merged[len(before) : len(merged) - len(after)],
            say="Keeping both sides: apply the discount tiers, then convert the currency.",
        )
        commit = " && git add src/pricing.py && git commit -q --no-edit"
    done = yield sh(
        "set -o pipefail && cd repo && python3 -m unittest discover -s tests 2>&1 | tail -3"
        f"{commit} "
        "&& git log --oneline -1",
        say="Running the tests and committing the merge.",
    )
    ran = re.search(r"Ran (\d+) tests?", done.stdout)
    yield Reply(
        "Merged feature/bulk-discounts into main. price() now takes the currency argument and "
        f"applies the bulk-discount tiers before converting; all {ran.group(1) if ran else ''} "
        f"tests pass. Merge commit: {done.stdout.strip().splitlines()[-1] if done.ok else '?'}."
    )
    _graph, check = yield [
        sh(
            "cd repo && git log --oneline --graph -4 && git status --short | wc -l",
            say="Confirming the merge commit and that no markers are left.",
        ),
        sh("cd repo && ! git grep -nE '^(<<<<<<<|>>>>>>>)' && echo 'no conflict markers'"),
    ]
    yield Reply(
        "Checked: main's tip is a merge commit with two parents, "
        f"{'no conflict markers remain' if check.ok else 'marker check failed'}, and the "
        "working tree is clean."
    )


_MERGE_CONFLICT_VERIFY = """
import os, subprocess, sys

def git(*args):
    run = subprocess.run(["git", "-C", "repo", *args], capture_output=True, text=True)
    return run.stdout.strip()

if os.path.exists("repo/.git/MERGE_HEAD"):
    sys.exit("the merge is still in progress")
if git("rev-parse", "--abbrev-ref", "HEAD") != "main":
    sys.exit("repo/ is not on main")
parents = git("rev-list", "--parents", "-1", "main").split()
if len(parents) != 3:
    sys.exit("main's tip is not a merge commit")
if parents[2] != git("rev-parse", "feature/bulk-discounts"):
    sys.exit("the merge commit does not bring in feature/bulk-discounts")
if git("status", "--porcelain", "--untracked-files=no"):
    sys.exit("uncommitted changes are left in repo/")
if git("grep", "-nE", "^(<<<<<<<|>>>>>>>)( |$)", "HEAD"):
    sys.exit("conflict markers are committed")
tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests"],
                       cwd="repo", capture_output=True, text=True)
if tests.returncode:
    sys.exit("tests fail: " + tests.stderr[-400:])
sys.path.insert(0, os.path.abspath("repo"))
from src.pricing import RATES, TIERS, price
for qty, discount in TIERS:
    for currency, rate in RATES.items():
        want = 3.0 * qty * (1 - discount) * rate
        got = price(3.0, qty=qty, currency=currency)
        if abs(got - want) > 0.011:
            sys.exit(f"price(3.0, qty={qty}, currency={currency!r}) = {got}, want {want:.2f}")
print("ok: merge commit on main, both features work together, tests pass")
"""

# ---------------------------------------------------------------- source-write-release-changelog

_CHANGELOG_POOL = (
    "feat(cli): add --json output flag",
    "feat(cli): read input from stdin when no file is given",
    "feat(report): group totals by month",
    "feat(report): add a percentile column",
    "feat(io): accept gzip-compressed input",
    "feat(io): detect the delimiter automatically",
    "fix(io): strip the UTF-8 BOM from the first header",
    "fix(report): avoid division by zero on empty input",
    "fix(cli): exit with status 2 on bad arguments",
    "fix: round negative amounts half away from zero",
    "fix(io): close file handles when parsing fails",
    "fix(report): keep the column order stable",
    "fix(io): accept CRLF line endings",
    "docs: document the --json flag",
    "docs(readme): add an installation section",
    "docs: fix typos in the usage guide",
    "docs: add a FAQ entry about encodings",
    "chore(deps): bump pytest to 8.2",
    "chore: reformat with black",
    "chore(ci): cache pip downloads",
    "chore: update .gitignore",
    "chore(release): tidy the release script",
    "chore(deps): bump ruff to 0.5",
)
_CHANGELOG_BREAKING = (
    (
        "feat(api)!: return Decimal amounts from parse_amount",
        "parse_amount() returned floats, which lost cents on large totals.",
    ),
    (
        "feat(config): rename the delimiter option to sep",
        "Shorter, and matches what pandas calls it.\n\n"
        "BREAKING CHANGE: the `delimiter` config key is now `sep`.",
    ),
    (
        "fix(cli): write reports to stdout by default",
        "Writing report.txt next to the input surprised users.\n\n"
        "BREAKING CHANGE: pass `--output FILE` to write to a file as before.",
    ),
)
_CHANGELOG_BODIES = (
    "Reported by the finance team.",
    "The old behaviour only showed up with very large inputs.",
    "Covered by a new regression test.",
    "Follow-up to the 1.3.0 release.",
)
_CHANGELOG_MD = textwrap.dedent(
    """\
    # Changelog

    All notable changes to tally are documented in this file.

    ## [1.3.0] - 2025-11-20

    ### Features
    - **report:** add a totals row ({h1})
    - **cli:** support --since and --until filters ({h2})

    ### Fixes
    - **io:** parse amounts with thousands separators ({h3})

    ## [1.2.0] - 2025-09-02

    ### Features
    - **io:** read semicolon-separated files ({h4})

    ### Fixes
    - handle empty lines at the end of input ({h5})
    """
)


def _changelog_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    hexes = {f"h{i}": f"{rng.getrandbits(28):07x}" for i in range(1, 6)}
    day = dt.datetime(2025, 11, 18, 9, 30)
    h = _History()
    h.write("src/tally/__init__.py", '"""tally: totals from CSV exports."""\n')
    h.write("CHANGELOG.md", _CHANGELOG_MD.format(**hexes))
    h.write("README.md", "# tally\n\nTotals and reports from CSV exports.\n")
    h.commit("chore(release): 1.3.0", day)
    h.git("tag", "-a", "v1.3.0", "-m", "tally 1.3.0", when=day)
    picks = [(s, "") for s in rng.sample(_CHANGELOG_POOL, 22)] + list(_CHANGELOG_BREAKING)
    rng.shuffle(picks)
    for i, (subject, body) in enumerate(picks):
        kind = subject.split(":")[0].split("(")[0].rstrip("!")
        scope = re.search(r"\((\w+)\)", subject.split(":")[0])
        if kind in ("feat", "fix"):
            path = f"src/tally/{scope.group(1) if scope else 'core'}.py"
        elif kind == "docs":
            path = "docs/usage.md"
        else:
            path = "tools/maintenance.txt"
        if not body and rng.random() < 0.35:
            body = rng.choice(_CHANGELOG_BODIES)
        h.write(path, f"# change {i + 1}: {subject}\n")
        when = day + dt.timedelta(days=3 + i, hours=rng.randrange(8))
        h.commit(subject + (f"\n\n{body}" if body else ""), when, rng.choice(_AUTHORS))
    return h.fixture(), {}


_CHANGELOG_V1 = textwrap.dedent(
    """\
    import re
    import subprocess

    CONVENTIONAL = re.compile(r"(\\w+)(?:\\(([^)]*)\\))?(!)?: (.+)")

    log = subprocess.run(
        ["git", "-C", "repo", "log", "--reverse", "--format=%h|%s|%b", "v1.3.0..HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout

    groups = {"Breaking Changes": [], "Features": [], "Fixes": []}
    for line in log.splitlines():
        if not line:
            continue
        short, subject, body = line.split("|")
        kind, scope, bang, desc = CONVENTIONAL.match(subject).groups()
        entry = f"- {f'**{scope}:** ' if scope else ''}{desc} ({short})"
        if bang or "BREAKING CHANGE" in body:
            groups["Breaking Changes"].append(entry)
        if kind == "feat":
            groups["Features"].append(entry)
        elif kind == "fix":
            groups["Fixes"].append(entry)
    print({k: len(v) for k, v in groups.items()})
    """
)

_CHANGELOG_V2 = textwrap.dedent(
    """\
    import collections
    import re
    import subprocess

    CONVENTIONAL = re.compile(r"(\\w+)(?:\\(([^)]*)\\))?(!)?: (.+)")


    def git(*args):
        return subprocess.run(
            ["git", "-C", "repo", *args], capture_output=True, text=True, check=True
        ).stdout


    # One record per commit (\\x1e), fields split by \\x1f: bodies span several lines.
    log = git("log", "--reverse", "--format=%h%x1f%s%x1f%b%x1e", "v1.3.0..HEAD")
    groups = {"Breaking Changes": [], "Features": [], "Fixes": []}
    omitted = collections.Counter()
    for record in log.split("\\x1e"):
        record = record.strip("\\n")
        if not record:
            continue
        short, subject, body = record.split("\\x1f")
        match = CONVENTIONAL.match(subject)
        if not match:
            omitted["other"] += 1
            continue
        kind, scope, bang, desc = match.groups()
        prefix = f"**{scope}:** " if scope else ""
        note = re.search(r"^BREAKING CHANGE: (.+)$", body, re.M)
        if bang or note:
            text = note.group(1) if note else desc
            groups["Breaking Changes"].append(f"- {prefix}{text} ({short})")
        if kind == "feat":
            groups["Features"].append(f"- {prefix}{desc} ({short})")
        elif kind == "fix":
            groups["Fixes"].append(f"- {prefix}{desc} ({short})")
        else:
            omitted[kind] += 1

    date = git("log", "-1", "--format=%cs").strip()
    lines = [f"## [1.4.0] - {date}", ""]
    for title, entries in groups.items():
        if entries:
            lines += [f"### {title}", *entries, ""]
    section = "\\n".join(lines) + "\\n"

    path = "repo/CHANGELOG.md"
    text = open(path).read()
    if "## [1.4.0]" in text:
        raise SystemExit("CHANGELOG.md already has a 1.4.0 section")
    at = text.index("\\n## [") + 1  # above the newest existing release
    with open(path, "w") as fh:
        fh.write(text[:at] + section + text[at:])
    counts = ", ".join(f"{len(v)} {k.lower()}" for k, v in groups.items())
    print(counts + "; omitted " + ", ".join(f"{n} {k}" for k, n in sorted(omitted.items())))
    """
)


def _changelog_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "cd repo && git describe --tags --abbrev=0 && git log --oneline v1.3.0..HEAD | wc -l "
            "&& git log --format='%h %s' v1.3.0..HEAD | head -12",
            say="Checking the last tag and the commits since, and the existing changelog format.",
        ),
        read("repo/CHANGELOG.md", 1, 16),
    ]
    yield write("changelog.py", _CHANGELOG_V1, say="Drafting a changelog generator.")
    run = yield sh("python3 changelog.py", say="Trying it on the commit log.")
    if not run.ok:
        # Commit bodies span several lines, so a line-per-commit format breaks the split.
        yield write(
            "changelog.py",
            _CHANGELOG_V2,
            say="Multi-line commit bodies break the line split; using record separators.",
        )
        run = yield sh("python3 changelog.py", say="Generating and prepending the section.")
    yield Reply(
        f"Prepended a v1.4.0 section to repo/CHANGELOG.md ({run.stdout.strip()}). Entries are "
        "grouped into Breaking Changes, Features and Fixes with their short hashes; chore and "
        "docs commits are left out."
    )
    _section, check = yield [
        sh(
            "sed -n '1,/^## \\[1.3.0\\]/p' repo/CHANGELOG.md",
            say="Reading back the new section and checking for chores.",
        ),
        sh("grep -ci 'chore' repo/CHANGELOG.md || true"),
    ]
    chores = check.stdout.strip() or "?"
    yield Reply(
        f"Checked: the 1.4.0 section sits above 1.3.0, every entry has a hash, and {chores} "
        "lines mention chore."
    )


_CHANGELOG_VERIFY = r"""
import re, subprocess, sys

log = subprocess.run(["git", "-C", "repo", "log", "--format=%H%x1f%s%x1f%b%x1e", "v1.3.0..HEAD"],
                     capture_output=True, text=True, check=True).stdout
try:
    text = open("repo/CHANGELOG.md").read()
except FileNotFoundError:
    sys.exit("repo/CHANGELOG.md is missing")
new = re.search(r"^## \[?v?1\.4\.0\]?.*$", text, re.M)
old = re.search(r"^## \[?v?1\.3\.0\]?", text, re.M)
if not new:
    sys.exit("no 1.4.0 section in CHANGELOG.md")
if not old or old.start() < new.start():
    sys.exit("the 1.4.0 section is not above the existing 1.3.0 entries")
if not re.search(r"^## \[?v?1\.2\.0", text, re.M):
    sys.exit("older entries were lost")
section = text[new.end():old.start()]
subs = {}
for block in re.split(r"^### ", section, flags=re.M)[1:]:
    title, _, body = block.partition("\n")
    subs[title.strip().lower()] = body
def sub(*names):
    for n in names:
        if n in subs:
            return subs[n]
    sys.exit(f"no '### {names[0].title()}' list in the 1.4.0 section")
feats, fixes, breaking = sub("features"), sub("fixes", "bug fixes"), sub("breaking changes")
for title, body in subs.items():
    for line in body.splitlines():
        if line.startswith(("-", "*")) and not re.search(r"\b[0-9a-f]{7,40}\b", line):
            sys.exit(f"entry without a short hash under {title}: {line!r}")
for record in log.split("\x1e"):
    record = record.strip("\n")
    if not record:
        continue
    full, subject, body = record.split("\x1f")
    short = full[:7]
    kind = re.match(r"(\w+)", subject).group(1)
    if kind == "feat" and short not in feats:
        sys.exit(f"feature {subject!r} ({short}) missing from Features")
    if kind == "fix" and short not in fixes:
        sys.exit(f"fix {subject!r} ({short}) missing from Fixes")
    if re.match(r"\w+(\([^)]*\))?!:", subject) or "BREAKING CHANGE:" in body:
        if short not in breaking:
            sys.exit(f"breaking change {subject!r} ({short}) missing from Breaking Changes")
    if kind == "chore" and (short in section or subject.split(": ", 1)[1] in section):
        sys.exit(f"chore commit {subject!r} should be omitted")
print("ok: 1.4.0 section with features, fixes and breaking changes, chores omitted")
"""

# ---------------------------------------------------------------- source-bisect-date-regression

_PARSE_GOOD = textwrap.dedent(
    '''\
    """Parse the date formats found in our partner exports."""

    import datetime as dt

    FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")


    def parse_date(text):
        """Return a datetime.date for ISO, day/month/year or day.month.year strings."""
        text = text.strip()
        for fmt in FORMATS:
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        raise ValueError(f"unrecognised date: {text!r}")
    '''
)
# (message, old, new): the change that breaks parse_date.
_PARSE_BREAKS = (
    (
        "Accept US-style month/day dates",
        '"%d/%m/%Y", "%d.%m.%Y")',
        '"%m/%d/%Y", "%d.%m.%Y")',
    ),
    ("Drop redundant whitespace handling in parse_date", "    text = text.strip()\n", ""),
    ("Return None for unparseable dates", "            continue\n", "            return None\n"),
)
# Harmless edits of the same module, so the culprit is not the only commit touching it.
_PARSE_HARMLESS = (
    (
        "Export parse_date via __all__",
        "import datetime as dt\n",
        'import datetime as dt\n\n__all__ = ["FORMATS", "parse_date"]\n',
    ),
    (
        "Add is_iso_date helper",
        '    raise ValueError(f"unrecognised date: {text!r}")\n',
        '    raise ValueError(f"unrecognised date: {text!r}")\n\n\n'
        "def is_iso_date(text):\n"
        '    """True when text looks like YYYY-MM-DD."""\n'
        '    return len(text) == 10 and text[4] == "-" and text[7] == "-"\n',
    ),
)
_PARSE_TEST = _TEST_HEADER + textwrap.dedent(
    """\
    import datetime as dt

    from dateparse.parse import parse_date  # noqa: E402


    class ParseDateTest(unittest.TestCase):
        def test_iso(self):
            self.assertEqual(parse_date(" 2024-03-07\\n"), dt.date(2024, 3, 7))

        def test_day_first_slashes(self):
            self.assertEqual(parse_date("25/12/2023"), dt.date(2023, 12, 25))
            self.assertEqual(parse_date("03/04/2024"), dt.date(2024, 4, 3))

        def test_dotted(self):
            self.assertEqual(parse_date("01.02.2022"), dt.date(2022, 2, 1))

        def test_rejects_garbage(self):
            with self.assertRaises(ValueError):
                parse_date("next tuesday")


    if __name__ == "__main__":
        unittest.main()
    """
)
_BISECT_WORDS = (
    "short",
    "long",
    "iso",
    "week",
    "quarter",
    "month",
    "year",
    "weekday",
    "ordinal",
    "compact",
    "fiscal",
    "julian",
    "epoch",
    "rfc",
    "header",
    "log",
    "filename",
    "stamp",
    "range",
    "span",
    "label",
    "title",
    "slug",
)
_BISECT_FILLERS = (
    ("dateparse/fmt.py", "Add format_{w} helper"),
    ("docs/usage.md", "Document {w} formatting"),
    ("CHANGES.txt", "Note the {w} changes"),
    ("scripts/release.sh", "Release script: handle {w} builds"),
)


def _bisect_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    n_after = rng.randint(38, 42)
    bad_at = rng.randint(8, n_after - 8)
    harmless_at = sorted(rng.sample([i for i in range(2, n_after - 1) if i != bad_at], 2))
    words = rng.sample(_BISECT_WORDS, len(_BISECT_WORDS))
    bad_msg, bad_old, bad_new = rng.choice(_PARSE_BREAKS)
    bad_author = rng.choice(_AUTHORS)

    h = _History()
    files = {
        "dateparse/__init__.py": '"""Date helpers for partner exports."""\n',
        "dateparse/parse.py": _PARSE_GOOD,
        "dateparse/fmt.py": '"""Formatting helpers."""\n',
        "tests/test_parse.py": _PARSE_TEST,
        "docs/usage.md": "# Usage\n",
        "CHANGES.txt": "Changes\n=======\n",
        "scripts/release.sh": "#!/bin/sh\nset -e\n",
        "README.md": "# dateparse\n\nParsing and formatting for partner export dates.\n",
    }
    for path, content in files.items():
        h.write(path, content)
    day = dt.datetime(2025, 6, 2, 9, 0)
    h.commit("Release 2.0", day, _AUTHORS[0])
    h.git("tag", "-a", "v2.0", "-m", "dateparse 2.0", when=day)
    harmless = list(_PARSE_HARMLESS)
    for i in range(n_after):
        when = day + dt.timedelta(days=i + 1, hours=rng.randrange(9))
        if i == bad_at:
            files["dateparse/parse.py"] = files["dateparse/parse.py"].replace(bad_old, bad_new)
            h.write("dateparse/parse.py", files["dateparse/parse.py"])
            h.commit(bad_msg, when, bad_author)
            continue
        if i in harmless_at:
            msg, old, new = harmless.pop(0)
            files["dateparse/parse.py"] = files["dateparse/parse.py"].replace(old, new)
            h.write("dateparse/parse.py", files["dateparse/parse.py"])
            h.commit(msg, when, rng.choice(_AUTHORS))
            continue
        path, template = _BISECT_FILLERS[i % len(_BISECT_FILLERS)]
        w = words[i % len(words)]
        if path.endswith(".py"):
            add = f'\n\ndef format_{w}_{i}(d):\n    return d.strftime("%Y-%m-%d ({w})")\n'
        elif path.endswith(".sh"):
            add = f'echo "building {w} ({i})"\n'
        else:
            add = f"- {w}: see change {i}\n"
        files[path] += add
        h.write(path, files[path])
        h.commit(template.format(w=w), when, rng.choice(_AUTHORS))
    return h.fixture(), {"bad_message": bad_msg}


_BISECT_CHECK = textwrap.dedent(
    """\
    #!/bin/sh
    # git bisect run: exit 0 when parse_date passes its tests at this commit, 1 when not.
    python3 tests/test_parse.py >/dev/null 2>&1
    """
)


def _bisect_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "cd repo && git log --oneline v2.0..HEAD | wc -l && git log -1 --format='%h %s' v2.0 "
            "&& python3 tests/test_parse.py 2>&1 | tail -3",
            say="Counting the commits since v2.0, confirming HEAD is bad, and reading the test "
            "I will bisect with.",
        ),
        read("repo/tests/test_parse.py"),
    ]
    yield write("bisect_check.sh", _BISECT_CHECK, say="Writing a check script for bisect run.")
    run = yield sh(
        "cd repo && git bisect start HEAD v2.0 && git bisect run ../bisect_check.sh",
        say="Starting an automated bisect between v2.0 and HEAD.",
    )
    if not run.ok:
        # A script created with write() is not executable: bisect run gets exit 126 and aborts.
        run = yield sh(
            "chmod +x bisect_check.sh && cd repo && git bisect run ../bisect_check.sh "
            "&& git bisect reset",
            say="The script was not executable (exit 126); fixing that and resuming the bisect.",
        )
    found = re.search(r"([0-9a-f]{40}) is the first bad commit", run.stdout)
    sha = found.group(1) if found else "HEAD"
    show = yield sh(
        f"cd repo && git show --date=short --format='%H%n%an <%ae>%n%ad%n%s' {sha}",
        say="Looking at what the first bad commit changed.",
    )
    meta = show.stdout.splitlines()
    full, author, date, subject = (meta + ["?"] * 4)[:4]
    changed = [
        ln for ln in meta if ln[:1] in "+-" and not ln.startswith(("+++", "---")) and ln[1:].strip()
    ]
    report = textwrap.dedent(
        f"""\
        # Bisect report: parse_date regression

        - Range: v2.0 (good) .. HEAD (bad), automated with `git bisect run` on tests/test_parse.py
        - First bad commit: {full}
        - Author: {author}
        - Date: {date}
        - Message: {subject}

        ## Offending change

        ```diff
        """
    )
    report += "\n".join(changed) + "\n```\n\nThe bisect session has been reset.\n"
    yield write("out/bisect_report.md", report, say="Writing the report.")
    yield Reply(
        f"git bisect run found the first bad commit: {full[:10]} by {author.split(' <')[0]} "
        f"({subject}). It changed {len(changed)} line(s) of dateparse/parse.py; the details are "
        "in out/bisect_report.md and the bisect session is reset."
    )
    check, _report = yield [
        sh(
            "cd repo && test ! -e .git/BISECT_START && git status -sb | head -1",
            say="Confirming the bisect was reset and the report reads right.",
        ),
        read("out/bisect_report.md", 1, 8),
    ]
    yield Reply(
        "Checked: no bisect in progress, repo is back on "
        f"{check.stdout.split()[1] if check.ok else '?'}"
        ", and the report names the commit, author and diff."
    )


_BISECT_VERIFY = """
import os, subprocess, sys, tempfile

def git(*args):
    return subprocess.run(["git", "-C", "repo", *args], capture_output=True, text=True).stdout

if os.path.exists("repo/.git/BISECT_START") or os.path.exists("repo/.git/BISECT_LOG"):
    sys.exit("the bisect session was not reset")
if git("symbolic-ref", "-q", "HEAD").strip() != "refs/heads/main":
    sys.exit("repo/ is not back on main")

def passes(commit):
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", "repo", "archive", commit], capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        run = subprocess.run([sys.executable, "tests/test_parse.py"], cwd=tmp, capture_output=True)
        return run.returncode == 0

first_bad = None
for commit in git("rev-list", "--reverse", "v2.0..main", "--", "dateparse", "tests").split():
    if not passes(commit):
        first_bad = commit
        break
if first_bad is None:
    sys.exit("fixture problem: no failing commit")
try:
    report = open("out/bisect_report.md").read()
except FileNotFoundError:
    sys.exit("out/bisect_report.md is missing")
author, subject = git("log", "-1", "--format=%an%x1f%s", first_bad).strip().split("\\x1f")
if first_bad[:7] not in report:
    sys.exit(f"the report does not name the first bad commit {first_bad[:10]}")
if author not in report or subject not in report:
    sys.exit("the report lacks the commit's author or message")
diff = git("show", "--format=", first_bad)
lines = [l[1:].strip() for l in diff.splitlines()
         if l[:1] in "+-" and not l.startswith(("+++", "---")) and l[1:].strip()]
if not any(l in report for l in lines):
    sys.exit("the report does not quote the offending diff lines")
print(f"ok: report names {first_bad[:10]} and the bisect was reset")
"""

# ---------------------------------------------------------------- source-pin-requirements

_PIN_INTRO = (
    "# Runtime dependencies for the billing service.\n# Exact pins come from vendor/lock.json.\n"
)
_PIN_SECTIONS = (
    ("# --- web ---", ("flask", "requests[socks]", "gunicorn", "Jinja2", "urllib3")),
    ("# --- data ---", ("numpy", "pandas", "PyYAML", "python-dateutil", "SQLAlchemy")),
    ("# --- async ---", ("aiohttp", "httpx[http2]", "typing_extensions", "idna")),
    ("# --- tooling ---", ("click", "rich", "attrs", "packaging", "certifi", "Pygments")),
)
_PIN_NOTES = {
    "flask": "web framework",
    "PyYAML": "config files",
    "httpx[http2]": "used by the sync client",
    "certifi": "keep in step with urllib3",
}
_PIN_TRANSITIVE = ("markupsafe", "werkzeug", "itsdangerous", "blinker", "six", "h11", "anyio")


def _pin_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def _pin_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = [n for _, group in _PIN_SECTIONS for n in group]
    lock = {}
    for name in [*names, *_PIN_TRANSITIVE]:
        lock[_pin_key(name)] = (rng.randint(2, 9), rng.randint(1, 30), rng.randint(0, 12))
    conflicts = rng.sample([n for n in names if n != "typing_extensions"], 2)
    lines = [_PIN_INTRO]
    for header, group in _PIN_SECTIONS:
        lines.append(f"\n{header}")
        for name in group:
            major, minor, micro = lock[_pin_key(name)]
            if name == conflicts[0]:
                spec = f"=={major}.{minor - 1}.{micro}"
            elif name == conflicts[1]:
                spec = f">={major - 1}.0,<{major}.0"
            else:
                spec = rng.choice(
                    (
                        "",
                        "",
                        f"=={major}.{minor}.{micro}",
                        f">={major}.{rng.randint(0, minor)}",
                        f">={major}.0,<{major + 1}",
                        f"~={major}.{rng.randint(0, minor)}",
                    )
                )
            note = f"  # {_PIN_NOTES[name]}" if name in _PIN_NOTES else ""
            lines.append(f"{name}{spec}{note}")
    packages = {
        key: {"version": ".".join(map(str, v)), "source": "pypi"} for key, v in sorted(lock.items())
    }
    lock_json = json.dumps(
        {"lock_version": 1, "generated": "2026-01-12", "packages": packages}, indent=2
    )
    files = {"requirements.txt": "\n".join(lines) + "\n", "vendor/lock.json": lock_json + "\n"}
    return Fixture(files), {"conflicts": conflicts}


_PIN_SCRIPT = textwrap.dedent(
    """\
    import json
    import os
    import re

    LINE = re.compile(
        r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\\[[^\\]]*\\])?"
        r"\\s*(?P<spec>[^#]*?)\\s*(?P<comment>#.*)?$"
    )
    OPS = {
        "==": lambda v, w: v == w, "!=": lambda v, w: v != w,
        ">=": lambda v, w: v >= w, "<=": lambda v, w: v <= w,
        ">": lambda v, w: v > w, "<": lambda v, w: v < w,
    }


    def vtuple(text, width=3):
        parts = tuple(int(p) for p in text.split("."))
        return parts + (0,) * (width - len(parts))


    def allows(spec, version):
        for clause in filter(None, (c.strip() for c in spec.split(","))):
            op, want = re.match(r"(==|!=|>=|<=|~=|>|<)\\s*(\\S+)", clause).groups()
            v, w = vtuple(version), vtuple(want)
            if op == "~=":
                prefix = len(want.split(".")) - 1
                ok = v >= w and v[:prefix] == w[:prefix]
            else:
                ok = OPS[op](v, w)
            if not ok:
                return False
        return True


    packages = json.load(open("vendor/lock.json"))["packages"]
    lock = {name: info["version"] for name, info in packages.items()}
    out, conflicts, pinned = [], [], 0
    for line in open("requirements.txt").read().splitlines():
        m = LINE.match(line)
        if not m:  # blank line or comment
            out.append(line)
            continue
        name = m["name"]
        locked = lock[name.lower()]
        if allows(m["spec"], locked):
            new = f"{name}{m['extras'] or ''}=={locked}"
            if m["comment"]:
                new += "  " + m["comment"]
            pinned += new != line
            out.append(new)
        else:
            conflicts.append((name + (m["extras"] or ""), m["spec"], locked))
            out.append(line)

    os.makedirs("out", exist_ok=True)
    with open("requirements.txt", "w") as fh:
        fh.write("\\n".join(out) + "\\n")
    with open("out/pin_conflicts.md", "w") as fh:
        fh.write("# Pin conflicts\\n\\n")
        fh.write("These requirements disagree with vendor/lock.json and were left unchanged.\\n")
        fh.write("Please decide whether to update the lock or the requirement.\\n\\n")
        fh.write("| package | requirements.txt | vendor/lock.json |\\n|---|---|---|\\n")
        for name, spec, locked in conflicts:
            fh.write(f"| {name} | `{spec}` | {locked} |\\n")
    names = ", ".join(c[0] for c in conflicts)
    print(f"{pinned} lines pinned, {len(conflicts)} conflicts: {names}")
    """
)


def _pin_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("cat requirements.txt", say="Reading the requirements."),
        read("vendor/lock.json", 1, 20, say="And the lock snapshot."),
    ]
    yield write("pin.py", _PIN_SCRIPT, say="Writing a script that pins from the lock.")
    run = yield sh("python3 pin.py", say="Running it.")
    if not run.ok:
        # The lock uses normalised names (typing-extensions), requirements say typing_extensions.
        yield edit(
            "pin.py",
            "    locked = lock[name.lower()]",
            '    locked = lock[re.sub(r"[-_.]+", "-", name).lower()]',
            say="The lock keys are PEP 503-normalised; normalising names before the lookup.",
        )
        run = yield sh("python3 pin.py", say="Running it again.")
    yield Reply(
        f"Pinned requirements.txt from vendor/lock.json: {run.stdout.strip()}. Comments and "
        "order are unchanged; the conflicting lines are left as they were and listed in "
        "out/pin_conflicts.md for a decision."
    )
    pins, table = yield [
        sh(
            "grep -vE '^(#|$)' requirements.txt | awk '/==/{p++} !/==/{u++} END{print p+0, u+0}'",
            say="Counting exact pins and reading back the conflict list.",
        ),
        sh("grep '^| ' out/pin_conflicts.md | tail -n +2"),
    ]
    exact, other = (pins.stdout.split() + ["?", "?"])[:2]
    rows = table.stdout.splitlines()
    names = ", ".join(r.split("|")[1].strip() for r in rows)
    yield Reply(
        f"Checked: {exact} requirement lines carry an exact == pin and {other} still has a range; "
        f"out/pin_conflicts.md lists the {len(rows)} conflicts ({names}), which I left unchanged."
    )


_PIN_VERIFY = r"""
import json, re, sys

SECTIONS = ["# --- web ---", "# --- data ---", "# --- async ---", "# --- tooling ---"]
NAMES = ["flask", "requests[socks]", "gunicorn", "Jinja2", "urllib3", "numpy", "pandas", "PyYAML",
         "python-dateutil", "SQLAlchemy", "aiohttp", "httpx[http2]", "typing_extensions", "idna",
         "click", "rich", "attrs", "packaging", "certifi", "Pygments"]
NOTES = {"flask": "web framework", "PyYAML": "config files",
         "httpx[http2]": "used by the sync client", "certifi": "keep in step with urllib3"}

def vt(text):
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (3 - len(parts))

def allows(spec, version):
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        op, want = re.match(r"(==|!=|>=|<=|~=|>|<)\s*(\S+)", clause).groups()
        v, w = vt(version), vt(want)
        n = len(want.split(".")) - 1
        ok = {"==": v == w, "!=": v != w, ">=": v >= w, "<=": v <= w, ">": v > w, "<": v < w,
              "~=": v >= w and v[:n] == w[:n]}[op]
        if not ok:
            return False
    return True

lock = {k: v["version"] for k, v in json.load(open("vendor/lock.json"))["packages"].items()}
lines = open("requirements.txt").read().splitlines()
comments = [l for l in lines if l.startswith("#")]
if [c for c in comments if c in SECTIONS] != SECTIONS or len(comments) < 6:
    sys.exit("comment lines were lost or reordered")
try:
    conflicts_md = open("out/pin_conflicts.md").read()
except FileNotFoundError:
    sys.exit("out/pin_conflicts.md is missing")
reqs = [l for l in lines if l.strip() and not l.startswith("#")]
names, unpinned = [], []
for line in reqs:
    m = re.match(r"([A-Za-z0-9._-]+(?:\[[^\]]*\])?)\s*([^#]*?)\s*(#.*)?$", line)
    name, spec, comment = m.groups()
    names.append(name)
    if name in NOTES and comment != "# " + NOTES[name]:
        sys.exit(f"the comment on {name} was not preserved")
    locked = lock[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()]
    if spec == "==" + locked:
        continue
    if allows(spec, locked):
        sys.exit(f"{name} ({spec or 'unpinned'}) fits the lock {locked} but is not pinned")
    unpinned.append(name)
if names != NAMES:
    sys.exit("requirement order or names changed")
if len(unpinned) != 2:
    sys.exit(f"expected exactly 2 conflicting lines, found {unpinned}")
for name in unpinned:
    if name.split("[")[0] not in conflicts_md:
        sys.exit(f"conflict {name} is not listed in out/pin_conflicts.md")
print("ok: every compatible line pinned to the lock, 2 conflicts listed")
"""


# ---------------------------------------------------------------- source-remove-committed-secret

_AUTH_BASE = textwrap.dedent(
    '''\
    """Token checks for the API gateway."""

    import hashlib
    import hmac


    def sign(payload, key):
        return hmac.new(key, payload, hashlib.sha256).hexdigest()


    def verify_token(payload, signature, key):
        return hmac.compare_digest(sign(payload, key), signature)
    '''
)
_AUTH_TTL = textwrap.dedent(
    """

    TOKEN_TTL = {ttl}  # seconds


    def is_expired(issued_at, now):
        return now - issued_at > TOKEN_TTL
    """
)
_AUTH_KEY = textwrap.dedent(
    """

    def signing_key():
        from config.settings import load_secrets

        return load_secrets()["AUTH_SIGNING_KEY"].encode()
    """
)
_AUTH_REFRESH = textwrap.dedent(
    """

    def refresh_session(session, now):
        if is_expired(session["issued_at"], now):
            raise PermissionError("session expired")
        return {**session, "issued_at": now}
    """
)
_SETTINGS_BASE = 'DEBUG = False\nLOG_LEVEL = "info"\n'
_SETTINGS_SECRETS = textwrap.dedent(
    """
    SECRETS_FILE = "config/secrets.env"


    def load_secrets(path=SECRETS_FILE):
        with open(path) as fh:
            return dict(line.strip().split("=", 1) for line in fh if "=" in line)
    """
)
_PASSWORD_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"


def _secret_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    ttl = rng.choice((900, 1800, 3600))
    key = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    password = "".join(rng.choice(_PASSWORD_CHARS) for _ in range(18))
    day = dt.datetime(2026, 2, 2, 9, 15)
    dev = rng.choice(_AUTHORS)
    h = _History()
    h.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\n")
    h.write("README.md", "# gateway\n\nAPI gateway auth helpers.\n")
    h.write("src/auth.py", _AUTH_BASE)
    h.write("config/__init__.py", "")
    h.write("config/settings.py", _SETTINGS_BASE)
    h.commit("Initial gateway auth helpers", day, _AUTHORS[0])
    h.write("docs/auth.md", "# Auth\n\nTokens are HMAC-SHA256 signatures.\n")
    h.commit("Document token signing", day + dt.timedelta(days=1), _AUTHORS[0])
    h.git("init", "-q", "--bare", "../origin.git")
    h.git("remote", "add", "origin", "../origin.git")
    h.git("push", "-q", "-u", "origin", "main")
    h.git("checkout", "-q", "-b", "fix/auth")
    auth = _AUTH_BASE + _AUTH_TTL.format(ttl=ttl)
    h.write("src/auth.py", auth)
    h.commit("Expire tokens after TOKEN_TTL", day + dt.timedelta(days=3), dev)
    auth += _AUTH_KEY
    h.write("src/auth.py", auth)
    h.write("config/settings.py", _SETTINGS_BASE + _SETTINGS_SECRETS)
    h.write("config/secrets.env", f"AUTH_SIGNING_KEY={key}\nDB_PASSWORD={password}\n")
    h.commit("Load the signing key from config", day + dt.timedelta(days=3, hours=2), dev)
    h.write("src/auth.py", auth + _AUTH_REFRESH)
    h.commit("Add refresh_session", day + dt.timedelta(days=4), dev)
    return h.fixture(), {}


_SECRET_FILTER = (
    "FILTER_BRANCH_SQUELCH_WARNING=1 git filter-branch --index-filter "
    "'git rm -q --cached --ignore-unmatch config/secrets.env' -- main..fix/auth"
)


def _secret_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "cd repo && git status -sb && git log --oneline --stat origin/main..fix/auth",
            say="Looking at the unpushed commits on fix/auth and at what is ignored today.",
        ),
        read("repo/.gitignore"),
    ]
    yield edit(
        "repo/.gitignore",
        ".venv/\n",
        ".venv/\n# local credentials, never commit\nconfig/secrets.env\n",
        say="Ignoring the secrets file from now on.",
    )
    run = yield sh(
        f"cd repo && {_SECRET_FILTER}",
        say="Dropping config/secrets.env from every commit in main..fix/auth.",
    )
    if not run.ok:
        # filter-branch refuses to run while the .gitignore edit is unstaged.
        run = yield sh(
            "cd repo && git add .gitignore && git commit -qm 'Ignore config/secrets.env' "
            "&& cp config/secrets.env ../secrets.env.keep "
            f"&& {_SECRET_FILTER} >/dev/null "
            "&& git update-ref -d refs/original/refs/heads/fix/auth "
            "&& git reflog expire --expire=now --all && git gc -q --prune=now "
            "&& mv ../secrets.env.keep config/secrets.env "
            "&& git log --format='%h %s' main..fix/auth",
            say="It refuses while the .gitignore edit is unstaged: committing the rule first, "
            "then rewriting (keeping a local copy of the secrets).",
        )
    commits = len(run.stdout.strip().splitlines()) if run.ok else 0
    yield Reply(
        f"Rewrote fix/auth ({commits} commits ahead of main) so that no commit contains "
        "config/secrets.env; the other changes in those commits are kept and .gitignore now "
        "excludes the file. main is unchanged and your local secrets file is still in place, "
        "untracked. Rotate those credentials anyway if they were ever shared."
    )
    check, _rules = yield [
        sh(
            "cd repo && for c in $(git rev-list fix/auth); do git ls-tree -r --name-only $c; "
            "done | grep -c secrets.env",
            say="Checking every commit on fix/auth, the ignore rule and main.",
        ),
        sh(
            "cd repo && git check-ignore -v config/secrets.env "
            '&& test "$(git rev-parse main)" = "$(git rev-parse origin/main)" '
            "&& echo main untouched"
        ),
    ]
    hits = check.stdout.split()[0] if check.stdout else "?"
    yield Reply(
        f"Checked: {hits} commits reachable from fix/auth contain the file, git check-ignore "
        "matches the new rule, and main still equals origin/main."
    )


_SECRET_VERIFY = """
import subprocess, sys

def git(*args, repo="repo"):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True).stdout

if git("rev-parse", "main") != git("rev-parse", "main", repo="origin.git"):
    sys.exit("main was changed")
commits = git("rev-list", "fix/auth").split()
for c in commits:
    if "config/secrets.env" in git("ls-tree", "-r", "--name-only", c).split():
        sys.exit(f"commit {c[:10]} on fix/auth still contains config/secrets.env")
subjects = git("log", "--format=%s", "main..fix/auth").splitlines()
for s in ("Expire tokens after TOKEN_TTL", "Load the signing key from config",
          "Add refresh_session"):
    if s not in subjects:
        sys.exit(f"commit {s!r} is missing from fix/auth")
auth = git("show", "fix/auth:src/auth.py")
for marker in ("TOKEN_TTL", "def signing_key", "def refresh_session"):
    if marker not in auth:
        sys.exit(f"src/auth.py on fix/auth lost {marker!r}")
if "def load_secrets" not in git("show", "fix/auth:config/settings.py"):
    sys.exit("config/settings.py on fix/auth lost load_secrets()")
ignore = [l.strip() for l in git("show", "fix/auth:.gitignore").splitlines()]
if not set(ignore) & {"config/secrets.env", "/config/secrets.env", "secrets.env", "*.env"}:
    sys.exit(".gitignore on fix/auth does not exclude config/secrets.env")
print(f"ok: {len(commits)} commits on fix/auth, none with the secrets file; main untouched")
"""

# ---------------------------------------------------------------- source-cherry-pick-hotfixes

_HOTFIX_TEXT_RELEASE = textwrap.dedent(
    '''\
    """Text helpers for invoice lines."""


    def clean(s):
        """Trim surrounding whitespace from a line item description."""
        return s.strip()


    def shorten(s, width=40):
        s = clean(s)
        return s if len(s) <= width else s[: width - 3] + "..."
    '''
)
_HOTFIX_TEXT_REFACTORED = textwrap.dedent(
    '''\
    """Text helpers for invoice lines."""


    def normalize(s, *, lower=False):
        """Normalise a line item description: trim it, optionally lower-case it."""
        s = s.strip()
        return s.lower() if lower else s


    def shorten(s, width=40):
        s = normalize(s)
        return s if len(s) <= width else s[: width - 3] + "..."
    '''
)
_HOTFIX_TEXT_ADAPTED = _HOTFIX_TEXT_RELEASE.replace(
    '    """Trim surrounding whitespace from a line item description."""\n    return s.strip()',
    '    """Trim a line item description and collapse repeated inner whitespace."""\n'
    '    return " ".join(s.split())',
)
_HOTFIX_FILES = {
    "app/__init__.py": '__version__ = "2.1.0"\n',
    "app/money.py": textwrap.dedent(
        '''\
        """Money helpers. Amounts are stored as integer cents."""


        def to_cents(amount):
            """Convert a decimal amount (float or str) to integer cents."""
            return int(float(amount) * 100)


        def format_cents(cents):
            return f"{cents // 100}.{cents % 100:02d}"
        '''
    ),
    "app/tax.py": textwrap.dedent(
        '''\
        """VAT on integer cents."""

        RATE_PERCENT = 20


        def vat(cents, rate=RATE_PERCENT):
            """VAT for an amount in cents, rounded to the nearest cent."""
            return cents * rate // 100
        '''
    ),
    "app/dates.py": textwrap.dedent(
        '''\
        """Due dates."""

        import datetime as dt


        def due_date(issued, days=30):
            """The date an invoice issued on `issued` is due."""
            due = issued + dt.timedelta(days=days)
            return due
        '''
    ),
    "app/text.py": _HOTFIX_TEXT_RELEASE,
    "app/invoice.py": textwrap.dedent(
        '''\
        """Invoice totals."""

        from app.money import to_cents
        from app.tax import vat
        from app.text import clean


        def line_total(description, amount, qty=1):
            return clean(description), to_cents(amount) * qty


        def invoice_total(lines):
            net = sum(to_cents(amount) * qty for _, amount, qty in lines)
            return net + vat(net)
        '''
    ),
    "tests/test_app.py": _TEST_HEADER
    + textwrap.dedent(
        """\

        from app.invoice import invoice_total, line_total  # noqa: E402


        class InvoiceTest(unittest.TestCase):
            def test_line_total(self):
                self.assertEqual(line_total("  Widget ", 2.5, 2), ("Widget", 500))

            def test_invoice_total(self):
                self.assertEqual(invoice_total([("Widget", 10, 1)]), 1200)


        if __name__ == "__main__":
            unittest.main()
        """
    ),
    "README.md": "# invoicer\n\nInvoice totals, VAT and due dates.\n",
}
# (subject, path, old, new, (test file, its import, its assertEqual arguments))
_HOTFIXES = (
    (
        "[hotfix] Round to cents instead of truncating",
        "app/money.py",
        "    return int(float(amount) * 100)",
        "    return int(round(float(amount) * 100))",
        ("tests/test_money.py", "from app.money import to_cents", "to_cents(0.29), 29"),
    ),
    (
        "[hotfix] Round VAT to the nearest cent",
        "app/tax.py",
        "    return cents * rate // 100",
        "    return (cents * rate + 50) // 100",
        ("tests/test_tax.py", "from app.tax import vat", "vat(1999), 400"),
    ),
    (
        "[hotfix] Move due dates that fall on a weekend to Monday",
        "app/dates.py",
        "    return due\n",
        "    if due.weekday() >= 5:  # Saturday or Sunday\n"
        "        due += dt.timedelta(days=7 - due.weekday())\n    return due\n",
        (
            "tests/test_dates.py",
            "import datetime as dt\n\nfrom app.dates import due_date",
            "due_date(dt.date(2026, 1, 2)), dt.date(2026, 2, 2)",
        ),
    ),
)
_HOTFIX_DEPENDENT = "[hotfix] Collapse repeated whitespace in item descriptions"
_HOTFIX_FILLERS = (
    ("app/export.py", "Add CSV export for invoices"),
    ("app/customers.py", "Add customer lookup by VAT id"),
    ("docs/export.md", "Document the export format"),
    ("app/reports.py", "Add monthly revenue report"),
    ("docs/api.md", "Describe the invoice API"),
    ("app/export.py", "Export invoices as JSON too"),
    ("app/reports.py", "Report overdue invoices"),
    ("docs/faq.md", "Add FAQ about VAT rates"),
    ("app/customers.py", "Cache customer lookups"),
    ("app/reports.py", "Group the revenue report by customer"),
    ("docs/api.md", "Document pagination"),
    ("app/pdf.py", "Render invoices to PDF"),
    ("app/pdf.py", "Add company logo to PDFs"),
    ("docs/export.md", "Explain export encodings"),
    ("app/__init__.py", "Start 2.2 development"),
)


def _hotfix_test(path: str, imports: str, assertion: str) -> str:
    name = path.split("/")[-1][5:-3].title()
    return (
        _TEST_HEADER
        + f"\n{imports}  # noqa: E402\n\n\nclass {name}HotfixTest(unittest.TestCase):\n"
        + f"    def test_fixed(self):\n        self.assertEqual({assertion})\n"
    )


def _cherry_pick_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = dict(_HOTFIX_FILES)
    day = dt.datetime(2026, 1, 12, 9, 0)
    h = _History()
    for path, content in files.items():
        h.write(path, content)
    h.commit("invoicer 2.1 feature freeze", day, _AUTHORS[0])
    h.git("checkout", "-q", "-b", "release/2.1")
    h.write("docs/release-2.1.md", "# invoicer 2.1.0\n\nFirst release with VAT support.\n")
    h.commit("Release notes for 2.1.0", day + dt.timedelta(hours=3), _AUTHORS[0])
    h.git("tag", "-a", "v2.1.0", "-m", "invoicer 2.1.0", when=day + dt.timedelta(hours=3))
    h.git("checkout", "-q", "main")

    events: list[tuple[str, tuple]] = [("filler", f) for f in _HOTFIX_FILLERS]
    events += [("refactor", ()), ("dependent", ())] + [("hotfix", fix) for fix in _HOTFIXES]
    rng.shuffle(events)
    kinds = [e[0] for e in events]
    a, b = kinds.index("refactor"), kinds.index("dependent")
    if b < a:  # the dependent hotfix needs the refactor before it
        events[a], events[b] = events[b], events[a]
    for i, (kind, item) in enumerate(events):
        when = day + dt.timedelta(days=1 + i, hours=rng.randrange(8))
        who = rng.choice(_AUTHORS)
        if kind == "filler":
            path, msg = item
            if path == "app/__init__.py":
                files[path] = '__version__ = "2.2.0.dev0"\n'
            else:
                prefix = "# " if path.endswith(".py") else "- "
                files[path] = files.get(path, "") + f"{prefix}{msg} (change {i})\n"
            h.write(path, files[path])
            h.commit(msg, when, who)
        elif kind == "refactor":
            files["app/text.py"] = _HOTFIX_TEXT_REFACTORED
            files["app/invoice.py"] = files["app/invoice.py"].replace("clean", "normalize")
            h.write("app/text.py", files["app/text.py"])
            h.write("app/invoice.py", files["app/invoice.py"])
            h.commit("Refactor text helpers around normalize()", when, _AUTHORS[2])
        elif kind == "dependent":
            files["app/text.py"] = files["app/text.py"].replace(
                '    """Normalise a line item description: trim it, optionally lower-case it."""\n'
                "    s = s.strip()\n",
                '    """Normalise a line item description: trim it, collapse inner whitespace,\n'
                '    optionally lower-case it."""\n'
                '    s = " ".join(s.split())\n',
            )
            h.write("app/text.py", files["app/text.py"])
            h.commit(_HOTFIX_DEPENDENT, when, who)
        else:
            subject, path, old, new, (test_path, imports, assertion) = item
            files[path] = files[path].replace(old, new)
            h.write(path, files[path])
            h.write(test_path, _hotfix_test(test_path, imports, assertion))
            h.commit(subject, when, who)
    return h.fixture(), {"adapted_text": _HOTFIX_TEXT_ADAPTED}


def _cherry_pick_playbook(ctx: Ctx) -> Playbook:
    found = yield sh(
        "cd repo && git branch && git log --reverse --format='%h %s' --grep='\\[hotfix\\]' main",
        say="Finding the [hotfix] commits on main, oldest first.",
    )
    found_fixes = re.findall(r"^([0-9a-f]{7,}) (\[hotfix\] .+)$", found.stdout, re.M)
    hotfixes = [sha for sha, _ in found_fixes]
    pick = yield sh(
        f"cd repo && git checkout -q release/2.1 && git cherry-pick -x {' '.join(hotfixes)}",
        say=f"Cherry-picking the {len(hotfixes)} hotfixes onto release/2.1 in order.",
    )
    adapted = "none"
    if not pick.ok:
        stuck = re.search(r"could not apply ([0-9a-f]+)\.\.\. (.+)", pick.stderr + pick.stdout)
        adapted = f"{stuck.group(1)} ({stuck.group(2)})" if stuck else "one hotfix"
        yield read("repo/app/text.py", say="One pick conflicts; reading the conflicted file.")
        # release/2.1 predates the normalize() refactor: apply the same fix to clean() there.
        yield write(
            "repo/app/text.py",
            ctx.facts["adapted_text"],
            say="The fix targets normalize(), which 2.1 does not have; applying it to clean().",
        )
        pick = yield sh(
            "set -o pipefail && cd repo && git add app/text.py "
            "&& GIT_EDITOR=true git cherry-pick --continue "
            "&& python3 -m unittest discover -s tests 2>&1 | tail -3 "
            "&& git tag -a v2.1.1 -m 'invoicer 2.1.1' && git log --oneline v2.1.0..HEAD",
            say="Continuing the picks, running the tests and tagging v2.1.1.",
        )
    listed = "\n".join(f"- {sha} {subject}" for sha, subject in found_fixes)
    note = (
        "# Backport of hotfixes to release/2.1 (v2.1.1)\n\n"
        f"Cherry-picked with `git cherry-pick -x`, in main's order:\n\n{listed}\n\n"
        f"## Adapted commit\n\n{adapted}: on main this fix changes `normalize()`, which only "
        'exists after the "Refactor text helpers around normalize()" commit. release/2.1 still '
        "has `clean()`, so the same change (collapse repeated whitespace) was applied to "
        "`clean()` by hand.\n\nTests pass on release/2.1 and the result is tagged v2.1.1.\n"
    )
    yield write("out/backport.md", note, say="Recording the backport and the adapted commit.")
    yield Reply(
        f"Backported {len(hotfixes)} hotfixes to release/2.1 in their original order and tagged "
        f"v2.1.1. {adapted} needed a manual adaptation (its function was renamed on main); the "
        "note is in out/backport.md."
    )
    check, described = yield [
        sh(
            "cd repo && git log --oneline v2.1.0..release/2.1",
            say="Checking the release branch and the tag.",
        ),
        sh("cd repo && git describe --tags release/2.1 && git status -sb | head -1"),
    ]
    picked = len([ln for ln in check.stdout.splitlines() if "[hotfix]" in ln])
    tag = described.stdout.strip().splitlines()[0] if described.ok else "?"
    yield Reply(
        f"Checked: release/2.1 has {picked} hotfix commits on top of v2.1.0, and git describe "
        f"gives {tag}, so the tag is on its tip."
    )


_CHERRY_PICK_VERIFY = r"""
import os, subprocess, sys, tempfile

def git(*args):
    return subprocess.run(["git", "-C", "repo", *args], capture_output=True, text=True).stdout

if os.path.exists("repo/.git/CHERRY_PICK_HEAD") or os.path.exists("repo/.git/sequencer"):
    sys.exit("a cherry-pick is still in progress")
wanted = git("log", "--reverse", "--format=%s", r"--grep=\[hotfix\]", "main").splitlines()
got = git("log", "--reverse", "--format=%s", "v2.1.0..release/2.1").splitlines()
if len(wanted) != 4 or got != wanted:
    sys.exit(f"release/2.1 should carry exactly the 4 hotfixes in main's order, has {got}")
tip = git("rev-parse", "release/2.1").strip()
if git("rev-parse", "-q", "--verify", "v2.1.1^{commit}").strip() != tip:
    sys.exit("tag v2.1.1 is missing or not on release/2.1's tip")
with tempfile.TemporaryDirectory() as tmp:
    archive = subprocess.run(["git", "-C", "repo", "archive", tip], capture_output=True)
    subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
    tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests"],
                           cwd=tmp, capture_output=True, text=True)
    if tests.returncode:
        sys.exit("tests fail on release/2.1: " + tests.stderr[-300:])
    probe = subprocess.run([sys.executable, "-c", "from app.text import clean\n"
                            "assert clean('  two   words ') == 'two words'"],
                           cwd=tmp, capture_output=True, text=True)
    if probe.returncode:
        sys.exit("the whitespace hotfix is not effective on release/2.1")
try:
    note = open("out/backport.md").read()
except FileNotFoundError:
    sys.exit("out/backport.md is missing")
dependent = git("log", "-1", "--format=%H%x1f%s", "--grep=Collapse repeated whitespace", "main")
full, subject = dependent.strip().split("\x1f")
if full[:7] not in note and subject not in note:
    sys.exit("out/backport.md does not name the adapted commit")
print("ok: 4 hotfixes on release/2.1, tests pass, tagged v2.1.1")
"""

# ---------------------------------------------------------------- source-audit-vendored-licenses

_LICENSE_TEXTS = {
    "MIT": textwrap.dedent(
        """\
        MIT License

        Copyright (c) {year} {holder}

        Permission is hereby granted, free of charge, to any person obtaining a copy
        of this software and associated documentation files (the "Software"), to deal
        in the Software without restriction, including without limitation the rights
        to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
        copies of the Software, subject to the following conditions:

        The above copyright notice and this permission notice shall be included in all
        copies or substantial portions of the Software.

        THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
        """
    ),
    "BSD-3-Clause": textwrap.dedent(
        """\
        Copyright (c) {year}, {holder}
        All rights reserved.

        Redistribution and use in source and binary forms, with or without
        modification, are permitted provided that the following conditions are met:

        1. Redistributions of source code must retain the above copyright notice.
        2. Redistributions in binary form must reproduce the above copyright notice.
        3. Neither the name of the copyright holder nor the names of its
           contributors may be used to endorse or promote products derived from
           this software without specific prior written permission.
        """
    ),
    "GPL-3.0": textwrap.dedent(
        """\
                            GNU GENERAL PUBLIC LICENSE
                               Version 3, 29 June 2007

         Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
         Everyone is permitted to copy and distribute verbatim copies
         of this license document, but changing it is not allowed.

                                    Preamble

          The GNU General Public License is a free, copyleft license for
        software and other kinds of works.
        """
    ),
    "MPL-2.0": textwrap.dedent(
        """\
        Mozilla Public License Version 2.0
        ==================================

        1. Definitions
        --------------

        1.1. "Contributor"
            means each individual or legal entity that creates, contributes to
            the creation of, or owns Covered Software.
        """
    ),
}
_PKG_INFO = "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
_HOLDERS = ("Jo Park", "Riverbank Labs", "Nina Petrova", "Tomas Lind", "Oakfield Software")
_VENDORED = (
    "tinyhttp",
    "termcolor_lite",
    "yamlette",
    "gnuparse",
    "lesserlog",
    "mozcache",
    "iscutil",
    "legacyfmt",
)


def _license_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    v = {
        name: f"{rng.randint(0, 4)}.{rng.randint(0, 19)}.{rng.randint(0, 9)}" for name in _VENDORED
    }

    def lic(kind: str) -> str:
        year, holder = rng.randint(2012, 2024), rng.choice(_HOLDERS)
        return _LICENSE_TEXTS[kind].format(year=year, holder=holder)

    def init(name: str, doc: str, header: str = "") -> str:
        return f'{header}"""{doc}"""\n\n__version__ = "{v[name]}"\n'

    def meta(name: str, summary: str, extra: str) -> str:
        dist = name.replace("_", "-")
        return _PKG_INFO.format(name=dist, version=v[name], summary=summary) + extra

    files: dict[str, str | bytes] = {
        "vendor/tinyhttp/__init__.py": init("tinyhttp", "Tiny HTTP client."),
        "vendor/tinyhttp/LICENSE": lic("MIT"),
        "vendor/tinyhttp/PKG-INFO": meta("tinyhttp", "Tiny HTTP client", "License: MIT\n"),
        "vendor/termcolor_lite/__init__.py": init("termcolor_lite", "ANSI colours."),
        "vendor/termcolor_lite/LICENSE.txt": lic("BSD-3-Clause"),
        "vendor/termcolor_lite/PKG-INFO": meta(
            "termcolor_lite", "ANSI colours", "Classifier: License :: OSI Approved :: BSD License\n"
        ),
        "vendor/yamlette/__init__.py": init("yamlette", "A YAML subset."),
        "vendor/yamlette/PKG-INFO": meta(
            "yamlette",
            "A YAML subset",
            "License: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\n",
        ),
        "vendor/gnuparse/__init__.py": init("gnuparse", "Argument parsing."),
        "vendor/gnuparse/COPYING": lic("GPL-3.0"),
        "vendor/lesserlog/__init__.py": init(
            "lesserlog",
            "Structured logging.",
            "# SPDX-License-Identifier: LGPL-2.1-or-later\n"
            f"# Copyright (C) {rng.randint(2015, 2023)} {rng.choice(_HOLDERS)}\n",
        ),
        "vendor/mozcache/__init__.py": init("mozcache", "HTTP caching."),
        "vendor/mozcache/LICENSE": lic("MPL-2.0"),
        "vendor/mozcache/PKG-INFO": meta("mozcache", "HTTP caching", "License: MPL 2.0\n"),
        "vendor/iscutil/__init__.py": init("iscutil", "Small utilities."),
        "vendor/iscutil/PKG-INFO": meta("iscutil", "Small utilities", "License: ISC\n"),
        "vendor/legacyfmt/__init__.py": init(
            "legacyfmt",
            "Legacy report formats.",
            f"# Copyright {rng.randint(2009, 2014)} {rng.choice(_HOLDERS)}. All rights reserved.\n",
        ),
        "vendor/legacyfmt/fmt.py": "def fixed_width(rows):\n    return rows\n",
    }
    return Fixture(files), {}


_AUDIT_V1 = textwrap.dedent(
    """\
    import csv
    import os

    rows = []
    for pkg in sorted(os.listdir("vendor")):
        meta = dict(
            line.split(": ", 1)
            for line in open(f"vendor/{pkg}/PKG-INFO").read().splitlines()
            if ": " in line
        )
        rows.append([pkg, meta.get("Version", ""), meta.get("License", "UNKNOWN")])

    os.makedirs("out", exist_ok=True)
    with open("out/licenses.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["package", "version", "license"], *rows])
    print(len(rows), "packages")
    """
)

_AUDIT_V2 = textwrap.dedent(
    """\
    import csv
    import glob
    import os
    import re

    # (phrase, second phrase, SPDX id) for full license texts; LGPL must come before GPL.
    TEXT_RULES = (
        ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 2.1", "LGPL-2.1-only"),
        ("GNU GENERAL PUBLIC LICENSE", "Version 3", "GPL-3.0-only"),
        ("GNU GENERAL PUBLIC LICENSE", "Version 2", "GPL-2.0-only"),
        ("Mozilla Public License", "Version 2.0", "MPL-2.0"),
        ("Apache License", "Version 2.0", "Apache-2.0"),
        ("Redistribution and use in source and binary forms", "Neither the name", "BSD-3-Clause"),
        ("Redistribution and use in source and binary forms", "", "BSD-2-Clause"),
        ("Permission is hereby granted, free of charge", "", "MIT"),
        ("Permission to use, copy, modify, and/or distribute", "", "ISC"),
    )
    FIELD_RULES = {
        "mit": "MIT", "mit license": "MIT", "isc": "ISC", "mpl 2.0": "MPL-2.0",
        "apache 2.0": "Apache-2.0", "apache software license": "Apache-2.0",
    }
    COPYLEFT = ("GPL", "LGPL", "AGPL", "MPL", "EPL")


    def read(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()


    def detect(pkg):
        base = f"vendor/{pkg}"
        for path in sorted(glob.glob(f"{base}/*.py")):
            spdx = re.search(r"SPDX-License-Identifier:\\s*(\\S+)", read(path))
            if spdx:
                return spdx.group(1), f"header of {os.path.basename(path)}"
        for path in sorted(glob.glob(f"{base}/LICEN[CS]E*") + glob.glob(f"{base}/COPYING*")):
            text = read(path)
            for first, second, spdx in TEXT_RULES:
                if first in text and second in text:
                    return spdx, os.path.basename(path)
        meta = read(f"{base}/PKG-INFO") if os.path.exists(f"{base}/PKG-INFO") else ""
        field = re.search(r"^License: (.+)$", meta, re.M)
        if field and field.group(1).strip().lower() in FIELD_RULES:
            return FIELD_RULES[field.group(1).strip().lower()], "PKG-INFO License"
        for classifier in re.findall(r"^Classifier: License :: .* :: (.+)$", meta, re.M):
            if classifier.strip().lower() in FIELD_RULES:
                return FIELD_RULES[classifier.strip().lower()], "PKG-INFO classifier"
        return "UNKNOWN", "no license evidence"


    def version(pkg):
        base = f"vendor/{pkg}"
        if os.path.exists(f"{base}/PKG-INFO"):
            found = re.search(r"^Version: (\\S+)", read(f"{base}/PKG-INFO"), re.M)
            if found:
                return found.group(1)
        found = re.search(r"__version__ = [\\"']([^\\"']+)", read(f"{base}/__init__.py"))
        return found.group(1) if found else "unknown"


    rows = []
    for pkg in sorted(os.listdir("vendor")):
        if not os.path.isdir(f"vendor/{pkg}"):
            continue
        spdx, evidence = detect(pkg)
        review = "copyleft" if spdx.startswith(COPYLEFT) else "unknown" if spdx == "UNKNOWN" else ""
        rows.append([pkg, version(pkg), spdx, evidence, review])

    os.makedirs("out", exist_ok=True)
    with open("out/licenses.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["package", "version", "license", "evidence", "review"], *rows])
    copyleft = [r for r in rows if r[4] == "copyleft"]
    unknown = [r for r in rows if r[4] == "unknown"]
    with open("out/license_review.md", "w") as fh:
        fh.write("# Vendored license review\\n\\n")
        fh.write(f"{len(rows)} packages audited; the full table is in out/licenses.csv.\\n\\n")
        fh.write("## Copyleft: needs legal review\\n\\n")
        fh.writelines(f"- **{p}** {v}: {s} (from {e})\\n" for p, v, s, e, _ in copyleft)
        fh.write("\\n## Unknown license: needs investigation\\n\\n")
        fh.writelines(f"- **{p}** {v}: {e}\\n" for p, v, s, e, _ in unknown)
    print(f"{len(rows)} packages, {len(copyleft)} copyleft, {len(unknown)} unknown")
    for row in rows:
        print(" ", *row[:3])
    """
)


def _license_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            'for d in vendor/*/; do echo "== $d"; ls "$d"; done',
            say="Listing what each vendored package ships and looking at one package's metadata.",
        ),
        read("vendor/tinyhttp/PKG-INFO"),
    ]
    yield write("audit.py", _AUDIT_V1, say="Writing a first audit from the PKG-INFO metadata.")
    run = yield sh("python3 audit.py", say="Running it.")
    if not run.ok:
        # Not every vendored package ships PKG-INFO; several only have LICENSE/COPYING or headers.
        yield write(
            "audit.py",
            _AUDIT_V2,
            say="Some packages have no PKG-INFO; checking headers, license files and metadata.",
        )
        run = yield sh("python3 audit.py", say="Running the fuller audit.")
    summary = run.stdout.splitlines()[0] if run.ok else "the audit failed"
    yield Reply(
        f"Audited vendor/: {summary}. The table (package, version, SPDX license, evidence) is in "
        "out/licenses.csv; copyleft and unknown packages are flagged in out/license_review.md."
    )
    table, review = yield [
        sh("cat out/licenses.csv", say="Reading the table and the review note back."),
        sh("sed -n '/Copyleft/,$p' out/license_review.md"),
    ]
    rows = len(table.stdout.strip().splitlines()) - 1
    flagged = review.stdout.count("- **")
    yield Reply(
        f"Checked: the table has {rows} rows, one per package, and the review note flags "
        f"{flagged} packages."
    )


_LICENSE_VERIFY = r"""
import csv, os, re, sys

EXPECTED = {"tinyhttp": "MIT", "termcolor_lite": "BSD-3-Clause", "yamlette": "Apache-2.0",
            "gnuparse": "GPL-3.0", "lesserlog": "LGPL-2.1", "mozcache": "MPL-2.0",
            "iscutil": "ISC", "legacyfmt": "UNKNOWN"}
PREFIX_OK = ("GPL-3.0", "LGPL-2.1")  # -only / -or-later are both fine
FLAG = ("gnuparse", "lesserlog", "mozcache", "legacyfmt")

def version(pkg):
    base = f"vendor/{pkg}"
    if os.path.exists(f"{base}/PKG-INFO"):
        return re.search(r"^Version: (\S+)", open(f"{base}/PKG-INFO").read(), re.M).group(1)
    return re.search(r'__version__ = "([^"]+)"', open(f"{base}/__init__.py").read()).group(1)

try:
    rows = list(csv.DictReader(open("out/licenses.csv")))
    review = open("out/license_review.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing output: {e.filename}")
if not rows or not {"package", "version", "license"} <= set(rows[0]):
    sys.exit("out/licenses.csv needs package, version and license columns")
table = {r["package"].strip().replace("-", "_"): r for r in rows}
for pkg, lic in EXPECTED.items():
    if pkg not in table:
        sys.exit(f"{pkg} is missing from the table")
    got = table[pkg]["license"].strip()
    if not (got.startswith(lic) if lic in PREFIX_OK else got == lic):
        sys.exit(f"{pkg}: license {got!r}, expected {lic}")
    if table[pkg]["version"].strip() != version(pkg):
        sys.exit(f"{pkg}: version {table[pkg]['version']!r}, expected {version(pkg)}")
for pkg in FLAG:
    if pkg not in review:
        sys.exit(f"{pkg} is not flagged in out/license_review.md")
print("ok: 8 packages with correct licenses; copyleft and unknown flagged")
"""

# ------------------------------------------------------- source-apply-upstream-security-patch

_MINIJSON_PARSER = textwrap.dedent(
    r'''
    """minijson: a small, strict JSON parser."""

    import re

    _NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
    _ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                "t": "\t"}
    _WS = " \t\r\n"


    class ParseError(ValueError):
        """Raised for malformed input."""


    class _Parser:
        def __init__(self, text):
            self.text = text
            self.pos = 0

        def error(self, msg):
            raise ParseError(f"{msg} at offset {self.pos}")

        def peek(self):
            while self.pos < len(self.text) and self.text[self.pos] in _WS:
                self.pos += 1
            return self.text[self.pos : self.pos + 1]

        def expect(self, ch):
            if self.peek() != ch:
                self.error(f"expected {ch!r}")
            self.pos += 1

        def value(self):
            ch = self.peek()
            if ch == "{":
                return self.object()
            if ch == "[":
                return self.array()
            if ch == '"':
                return self.string()
            for word, val in (("true", True), ("false", False), ("null", None)):
                if self.text.startswith(word, self.pos):
                    self.pos += len(word)
                    return val
            return self.number()

        def object(self):
            self.expect("{")
            result = {}
            if self.peek() == "}":
                self.pos += 1
                return result
            while True:
                if self.peek() != '"':
                    self.error("expected a string key")
                key = self.string()
                self.expect(":")
                result[key] = self.value()
                if self.peek() == ",":
                    self.pos += 1
                    continue
                self.expect("}")
                return result

        def array(self):
            self.expect("[")
            result = []
            if self.peek() == "]":
                self.pos += 1
                return result
            while True:
                result.append(self.value())
                if self.peek() == ",":
                    self.pos += 1
                    continue
                self.expect("]")
                return result

        def string(self):
            self.expect('"')
            out = []
            while True:
                if self.pos >= len(self.text):
                    self.error("unterminated string")
                ch = self.text[self.pos]
                self.pos += 1
                if ch == '"':
                    return "".join(out)
                if ch != "\\":
                    out.append(ch)
                    continue
                esc = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if esc == "u":
                    out.append(chr(int(self.text[self.pos : self.pos + 4], 16)))
                    self.pos += 4
                elif esc in _ESCAPES:
                    out.append(_ESCAPES[esc])
                else:
                    self.error("bad escape")

        def number(self):
            match = _NUMBER.match(self.text, self.pos)
            if not match:
                self.error("unexpected character")
            self.pos = match.end()
            text = match.group(0)
            return float(text) if any(c in text for c in ".eE") else int(text)


    def loads(text):
        """Parse a JSON document."""
        parser = _Parser(text)
        result = parser.value()
        if parser.peek():
            parser.error("trailing data")
        return result
    '''
).lstrip()
_MINIJSON_TEST = textwrap.dedent(
    r"""
    import unittest

    from minijson.parser import ParseError, loads


    class LoadsTest(unittest.TestCase):
        def test_values(self):
            doc = '{"a": [1, 2.5, true, null], "b": "x\\ny"}'
            self.assertEqual(loads(doc), {"a": [1, 2.5, True, None], "b": "x\ny"})

        def test_errors(self):
            for bad in ("[1,", '{"a" 1}', "tru", '"abc'):
                with self.assertRaises(ParseError):
                    loads(bad)


    if __name__ == "__main__":
        unittest.main()
    """
).lstrip()
_MINIJSON_DEPTH_TEST = textwrap.dedent(
    """
    import unittest

    from minijson.parser import MAX_DEPTH, ParseError, loads


    class DepthLimitTest(unittest.TestCase):
        def test_nesting_up_to_the_limit_parses(self):
            self.assertIsInstance(loads("[" * MAX_DEPTH + "]" * MAX_DEPTH), list)

        def test_deeper_nesting_is_rejected(self):
            with self.assertRaises(ParseError):
                loads("[" * 50000 + "]" * 50000)

        def test_objects_count_too(self):
            doc = '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)
            with self.assertRaises(ParseError):
                loads(doc)


    if __name__ == "__main__":
        unittest.main()
    """
).lstrip()
_PATCHES_MD = (
    "# Local patches to vendored code\n\n"
    "Every change we make under vendor/ is listed here, oldest first. Patches live in patches/.\n"
    "\n| date | package | patch | upstream reference |\n"
    "|------|---------|-------|--------------------|\n"
    "| 2025-03-11 | minijson {version} | minijson-bom.patch "
    "| https://github.com/minijson/minijson/pull/{old_pr} |\n"
)
_DEPTH_GUARD = (
    "    def value(self):\n"
    "        self.depth += 1\n"
    "        if self.depth > MAX_DEPTH:\n"
    '            self.error("maximum nesting depth exceeded")\n'
    "        try:\n"
    "            return self._value()\n"
    "        finally:\n"
    "            self.depth -= 1\n"
    "\n"
    "    def _value(self):\n"
)


def _unified(path: str, old: str, new: str, index: str) -> str:
    body = difflib.unified_diff(
        old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}"
    )
    return f"diff --git a/{path} b/{path}\nindex {index} 100644\n" + "".join(body)


def _security_patch_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    depth = rng.choice((64, 100, 128, 200))
    pr = rng.randint(80, 140)
    sha = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    version = f"1.{rng.randint(2, 6)}.{rng.randint(0, 5)}"
    when = dt.datetime(2025, 10, rng.randint(6, 24), 9, rng.randint(0, 59))

    def hexid() -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(7))

    ws_line = '_WS = " \\t\\r\\n"\n'
    patched = (
        _MINIJSON_PARSER.replace(ws_line, f"{ws_line}MAX_DEPTH = {depth}\n")
        .replace("        self.pos = 0\n", "        self.pos = 0\n        self.depth = 0\n")
        .replace("    def value(self):\n", _DEPTH_GUARD)
    )
    test_lines = _MINIJSON_DEPTH_TEST.splitlines(True)
    new_test = (
        "diff --git a/minijson/test_depth.py b/minijson/test_depth.py\n"
        f"new file mode 100644\nindex 0000000..{hexid()}\n--- /dev/null\n"
        f"+++ b/minijson/test_depth.py\n@@ -0,0 +1,{len(test_lines)} @@\n"
        + "".join("+" + ln for ln in test_lines)
    )
    diff = _unified("minijson/parser.py", _MINIJSON_PARSER, patched, f"{hexid()}..{hexid()}")
    added = sum(ln.startswith("+") and not ln.startswith("+++") for ln in diff.splitlines())
    removed = sum(ln.startswith("-") and not ln.startswith("---") for ln in diff.splitlines())
    header = (
        f"From {sha} Mon Sep 17 00:00:00 2001\n"
        "From: Jane Maintainer <jane@minijson.dev>\n"
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S')} +0200\n"
        "Subject: [PATCH] Limit nesting depth to prevent RecursionError DoS\n\n"
        "Deeply nested arrays such as [[[[...]]]] made loads() recurse until Python\n"
        "raised RecursionError, which crashed callers that only expected ParseError.\n"
        f"Add MAX_DEPTH (default {depth}) and raise ParseError beyond it.\n\n"
        f"Upstream: https://github.com/minijson/minijson/pull/{pr}\n"
        "---\n"
        f" minijson/parser.py     | {added + removed:>2} {'+' * added}{'-' * removed}\n"
        f" minijson/test_depth.py | {len(test_lines)} {'+' * len(test_lines)}\n"
        f" 2 files changed, {added + len(test_lines)} insertions(+), {removed} deletion(-)\n\n"
    )

    files = {
        "vendor/minijson/__init__.py": (
            f'"""Vendored minijson {version}."""\n\n'
            "from minijson.parser import ParseError, loads\n\n"
            f'__all__ = ["ParseError", "loads"]\n__version__ = "{version}"\n'
        ),
        "vendor/minijson/parser.py": _MINIJSON_PARSER,
        "vendor/minijson/test_parser.py": _MINIJSON_TEST,
        "vendor/minijson/VENDORED": (
            f"upstream: https://github.com/minijson/minijson\nversion: {version}\n"
        ),
        "vendor/PATCHES.md": _PATCHES_MD.format(version=version, old_pr=pr - rng.randint(20, 60)),
        "patches/minijson-depth-limit.patch": header + diff + new_test + "-- \n2.43.0\n",
    }
    return Fixture(files), {}


def _security_patch_playbook(ctx: Ctx) -> Playbook:
    _, log, upstream = yield [
        sh("ls -R vendor patches", say="Looking at the vendored tree,"),
        read("vendor/PATCHES.md", say="the patch log"),
        read("patches/minijson-depth-limit.patch", say="and the upstream patch."),
    ]
    last_row = [ln for ln in log.stdout.splitlines() if ln.startswith("|")][-1]
    text = upstream.stdout
    applied = yield patch(text, say="Applying it as is.")
    if not applied.ok:
        # The diff is relative to the upstream root (a/minijson/...); here it lives in vendor/.
        text = re.sub(r"(?<=\s)([ab])/minijson/", r"\1/vendor/minijson/", text)
        applied = yield patch(
            text, say="It cannot find minijson/parser.py: re-rooting the paths under vendor/."
        )
    tests = yield sh(
        "set -o pipefail && cd vendor "
        "&& python3 -m unittest -v minijson.test_parser minijson.test_depth 2>&1 | tail -4",
        say="Running the vendored tests plus the new depth test.",
    )
    ran = re.search(r"Ran (\d+) tests", tests.stdout)
    date = re.search(r"^Date: \w+, (\d+) (\w+) (\d{4})", text, re.M)
    day = dt.datetime.strptime(" ".join(date.groups()), "%d %b %Y").date() if date else "?"
    pr = re.search(r"^Upstream: (\S+)", text, re.M)
    sha = re.search(r"^From ([0-9a-f]{40})", text, re.M)
    version = re.search(r"minijson (\d+\.\d+\.\d+)", last_row)
    row = (
        f"| {day} | minijson {version.group(1) if version else ''} | minijson-depth-limit.patch "
        f"| {pr.group(1) if pr else '?'} (commit {sha.group(1)[:10] if sha else '?'}) |"
    )
    yield edit("vendor/PATCHES.md", last_row, f"{last_row}\n{row}", say="Logging the patch.")
    yield Reply(
        "Applied minijson-depth-limit.patch to vendor/minijson/ (its a/minijson/ paths had to be "
        f"re-rooted under vendor/). {f'All {ran.group(1)} tests' if ran else 'The tests'} pass, "
        "including the new depth-limit test, and vendor/PATCHES.md records the patch, the "
        "upstream PR and the patch date."
    )
    check = yield sh(
        "tail -2 vendor/PATCHES.md && grep -c MAX_DEPTH vendor/minijson/parser.py "
        "&& find . -name '*.rej' -o -name '*.orig' | wc -l",
        say="Checking the log entry and that no reject files were left.",
    )
    leftovers = check.stdout.strip().splitlines()[-1] if check.ok else "?"
    yield Reply(
        "Checked: the new row is the last one in PATCHES.md, parser.py now uses MAX_DEPTH, and "
        f"{leftovers} .rej/.orig files were left behind."
    )


_SECURITY_PATCH_VERIFY = r"""
import os, re, subprocess, sys

if os.path.exists("minijson"):
    sys.exit("the patch created a stray top-level minijson/ directory")
src = open("vendor/minijson/parser.py").read()
if "MAX_DEPTH" not in src or not os.path.exists("vendor/minijson/test_depth.py"):
    sys.exit("the depth-limit patch is not applied to vendor/minijson/")
tests = subprocess.run([sys.executable, "-m", "unittest", "minijson.test_parser",
                        "minijson.test_depth"], cwd="vendor", capture_output=True, text=True)
if tests.returncode:
    sys.exit("vendored tests fail: " + tests.stderr[-300:])
probe = subprocess.run([sys.executable, "-c", "from minijson import ParseError, loads\n"
                        "try:\n    loads('[' * 20000 + ']' * 20000)\n"
                        "except ParseError:\n    pass\nelse:\n    raise SystemExit('accepted')"],
                       cwd="vendor", capture_output=True, text=True)
if probe.returncode:
    sys.exit("deep nesting is not rejected with ParseError: " + probe.stderr[-200:])
text = open("patches/minijson-depth-limit.patch").read()
pr = re.search(r"^Upstream: (\S+)", text, re.M).group(1)
sha = re.search(r"^From ([0-9a-f]{40})", text, re.M).group(1)
log = open("vendor/PATCHES.md").read()
rows = [l for l in log.splitlines() if "minijson-depth-limit.patch" in l]
if not rows:
    sys.exit("vendor/PATCHES.md has no entry for minijson-depth-limit.patch")
if pr not in rows[-1] and sha[:7] not in rows[-1]:
    sys.exit("the PATCHES.md entry lacks the upstream reference")
if not re.search(r"\d{4}-\d{2}-\d{2}", rows[-1]):
    sys.exit("the PATCHES.md entry lacks a date")
if "minijson-bom.patch" not in log:
    sys.exit("older PATCHES.md entries were lost")
print("ok: patch applied under vendor/, tests pass, PATCHES.md updated")
"""


# ---------------------------------------------------------------- source-split-oversized-commit

_SLUG_BASE = textwrap.dedent(
    '''\
    """Turn titles into URL slugs."""

    import re


    def slugify(title, sep="-"):
        """Lower-case the title and replace runs of other characters with sep."""
        slug = re.sub(r"[^a-z0-9]+", sep, title.lower())
        return slug.strip(sep)
    '''
)
_SLUG_FIXED = textwrap.dedent(
    '''\
    """Turn titles into URL slugs."""

    import re
    import unicodedata


    def slugify(title, sep="-"):
        """Transliterate accents, lower-case, and replace runs of other characters with sep."""
        ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", sep, ascii_title.lower())
        return slug.strip(sep)
    '''
)
_SLUG_CLI = textwrap.dedent(
    '''\
    """Command line: slugify each argument."""

    import sys

    from src.slugify import slugify


    def main(argv=None):
        for title in argv if argv is not None else sys.argv[1:]:
            print(slugify(title))
    '''
)
_SLUG_TESTS = _TEST_HEADER + textwrap.dedent(
    """\

    from src.slugify import slugify  # noqa: E402


    class SlugifyTest(unittest.TestCase):
        def test_simple(self):
            self.assertEqual(slugify("Hello, World!"), "hello-world")

        def test_separator(self):
            self.assertEqual(slugify("A B C", sep="_"), "a_b_c")


    if __name__ == "__main__":
        unittest.main()
    """
)
_SLUG_UNICODE_CASES = (
    ("Crème Brûlée", "creme-brulee"),
    ("Señor Café", "senor-cafe"),
    ("Über naïve ideas", "uber-naive-ideas"),
    ("Ångström units", "angstrom-units"),
    ("Déjà vu", "deja-vu"),
)
_SPLIT_SUBJECT = "Fix unicode slugs, add tests, update README"


def _split_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    cases = rng.sample(_SLUG_UNICODE_CASES, 3)
    checks = "\n".join(f"        self.assertEqual(slugify({t!r}), {s!r})" for t, s in cases)
    unicode_tests = (
        _TEST_HEADER
        + "\nfrom src.slugify import slugify  # noqa: E402\n\n\n"
        + "class UnicodeSlugTest(unittest.TestCase):\n    def test_accents(self):\n"
        + checks
        + '\n\n\nif __name__ == "__main__":\n    unittest.main()\n'
    )
    readme = "# slugs\n\nMake URL slugs from titles:\n\n    python3 -m src.cli 'Hello, World!'\n"
    example_title, example_slug = cases[0]
    readme_unicode = readme + (
        "\n## Unicode\n\nAccented letters are transliterated to ASCII, so "
        f"`{example_title}` becomes `{example_slug}`.\n"
    )
    day = dt.datetime(2026, 2, 9, 14, 0)
    h = _History()
    h.write("README.md", readme)
    h.write("src/slugify.py", _SLUG_BASE)
    h.write("tests/test_slugify.py", _SLUG_TESTS)
    h.commit("Add slugify()", day, _AUTHORS[1])
    h.write("src/cli.py", _SLUG_CLI)
    h.commit("Add a small CLI", day + dt.timedelta(days=1), _AUTHORS[1])
    h.write("README.md", readme_unicode)
    h.write("src/slugify.py", _SLUG_FIXED)
    h.write("tests/test_unicode.py", unicode_tests)
    h.commit(_SPLIT_SUBJECT, day + dt.timedelta(days=rng.randint(2, 6)), rng.choice(_AUTHORS))
    return h.fixture(), {}


_SPLIT_SCRIPT = textwrap.dedent(
    """\
    #!/bin/bash
    # Replace the oversized last commit with focused ones. Every new commit must pass the
    # tests on its own (checked on a clean export of the commit, not the working tree).
    set -euo pipefail
    cd repo
    git reset -q --hard {orig}
    git reset -q HEAD~1

    check_commit() {{
        local tmp
        tmp=$(mktemp -d)
        git archive HEAD | tar -x -C "$tmp"
        (cd "$tmp" && python3 -m unittest discover -q -s tests)
        rm -rf "$tmp"
    }}

    commit_part() {{  # commit_part PATH SUBJECT BODY
        git add -- "$1"
        git commit -q -m "$2" -m "$3"
        echo "committed: $2"
        check_commit
    }}

    {parts}
    git log --oneline -4
    """
)
_SPLIT_PARTS = {
    "docs": (
        "README.md",
        "docs: describe Unicode handling in the README",
        "Explain that accented letters are transliterated to ASCII.",
    ),
    "tests": (
        "tests",
        "test: cover accented titles in slugify",
        "New cases for titles with accents and umlauts.",
    ),
    "src": (
        "src",
        "fix: transliterate accented letters in slugify",
        "Normalise with NFKD and drop the combining marks instead of turning them into dashes.",
    ),
}


def _split_script(orig: str, order: tuple[str, ...]) -> str:
    parts = "\n".join(
        "commit_part {} {!r} {!r}".format(*_SPLIT_PARTS[name]).replace("'", '"') for name in order
    )
    return _SPLIT_SCRIPT.format(orig=orig, parts=parts)


def _split_playbook(ctx: Ctx) -> Playbook:
    info, _tests = yield [
        sh(
            "cd repo && git log --oneline -4 && git show --stat --format='%H %s' HEAD",
            say="Looking at the last commit, what it touches, and the new test file in it.",
        ),
        read("repo/tests/test_unicode.py"),
    ]
    found = re.search(r"^([0-9a-f]{40}) ", info.stdout, re.M)
    orig = found.group(1) if found else "HEAD"
    yield write(
        "split.sh",
        _split_script(orig, ("docs", "tests", "src")),
        say="Scripting the split: docs, tests, then source, testing each commit.",
    )
    run = yield sh("bash split.sh", say="Running the split.")
    if not run.ok:
        # The new tests fail without the fix, so a tests commit before the source commit is red.
        yield write(
            "split.sh",
            _split_script(orig, ("src", "tests", "docs")),
            say="The tests commit is red without the fix; committing the source fix first.",
        )
        run = yield sh("bash split.sh", say="Redoing the split from the original commit.")
    made = [
        ln[len("committed: ") :] for ln in run.stdout.splitlines() if ln.startswith("committed")
    ]
    yield Reply(
        f"Split the last commit ({orig[:8]}) into {len(made)} commits on the same parent: "
        + "; ".join(made)
        + ". Each one passes the tests on its own."
    )
    tree, check = yield [
        sh(
            f"cd repo && git diff --quiet {orig} HEAD && echo 'tree unchanged'",
            say="Confirming the final tree and the parent are unchanged.",
        ),
        sh(
            f'cd repo && test "$(git rev-parse HEAD~3)" = "$(git rev-parse {orig}~1)" '
            "&& echo 'parent kept' && git log --stat --format='%h %s' -3"
        ),
    ]
    same = "tree unchanged" in tree.stdout and "parent kept" in check.stdout
    yield Reply(
        "Checked: "
        + (
            "the new HEAD has exactly the original tree, HEAD~3 is the old HEAD~1, and each "
            "commit touches only README.md, tests/ or src/."
            if same
            else "something differs from the original commit; see the diff above."
        )
    )


_SPLIT_VERIFY = r"""
import subprocess, sys

SUBJECT = "Fix unicode slugs, add tests, update README"

def git(*args):
    run = subprocess.run(["git", "-C", "repo", *args], capture_output=True, text=True)
    return run.stdout.strip()

orig = None
for line in git("reflog", "--format=%H %gs").splitlines():
    sha, _, msg = line.partition(" ")
    if msg == "commit: " + SUBJECT:
        orig = sha
if orig is None:
    sys.exit("cannot find the original commit in the reflog")
if git("rev-parse", "HEAD") == orig:
    sys.exit("the last commit was not split")
if git("rev-parse", "HEAD~3") != git("rev-parse", orig + "~1"):
    sys.exit("HEAD~3 is not the original HEAD~1: expected exactly three new commits on it")
if git("rev-parse", "HEAD^{tree}") != git("rev-parse", orig + "^{tree}"):
    sys.exit("the final tree differs from the original commit's")
groups = {}
for rev in ("HEAD~2", "HEAD~1", "HEAD"):
    files = git("show", "--name-only", "--format=", rev).split()
    kinds = {"docs" if f == "README.md" else f.split("/")[0] for f in files}
    if len(kinds) != 1 or not kinds <= {"docs", "tests", "src"}:
        sys.exit(f"{rev} mixes {sorted(kinds)}")
    groups[kinds.pop()] = git("log", "-1", "--format=%B", rev).lower()
if set(groups) != {"docs", "tests", "src"}:
    sys.exit(f"expected one docs, one tests and one src commit, got {sorted(groups)}")
if groups["docs"] == groups["tests"] or groups["tests"] == groups["src"]:
    sys.exit("the commits share a message")
if "test" in groups["docs"] or "test" in groups["src"] or "readme" in groups["tests"]:
    sys.exit("a commit message describes another commit's part")
if SUBJECT.lower() in groups.values():
    sys.exit("the original mixed message was reused")
print("ok: three focused commits replace the original, same tree and parent")
"""

# ---------------------------------------------------------------- source-bump-project-version

_BUMP_NOTES = (
    "Config files written before 3.2.1 must be migrated once with `{name} migrate`.",
    "Since 3.2.1 the `--strict` flag is on by default; pass `--lenient` for the old behaviour.",
    "Plugins built against releases older than 3.2.1 need to be rebuilt.",
)
_BUMP_NAMES = (
    ("ledgerly", "Small double-entry ledger"),
    ("tidyfeed", "RSS feed cleaner"),
    ("shelfie", "Home library catalogue"),
)


def _bump_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    name, desc = rng.choice(_BUMP_NAMES)
    note = rng.choice(_BUMP_NOTES).format(name=name)
    day = dt.datetime(2026, 1, 20, 11, 0)
    h = _History()
    h.write(
        "pyproject.toml",
        f'[project]\nname = "{name}"\nversion = "3.2.1"\ndescription = "{desc}"\n'
        f'requires-python = ">=3.9"\ndependencies = ["click>=8.1"]\n\n'
        f'[project.scripts]\n{name} = "app.cli:main"\n',
    )
    h.write("src/app/__init__.py", f'"""{name}: {desc.lower()}."""\n\n__version__ = "3.2.1"\n')
    h.write("src/app/cli.py", "def main():\n    print('ok')\n")
    h.write(
        "docs/conf.py",
        f'project = "{name}"\nauthor = "The {name} team"\nrelease = "3.2.1"\n'
        'extensions = ["sphinx.ext.autodoc"]\n',
    )
    h.write(
        "README.md",
        f"# {name}\n\n"
        "[![version](https://img.shields.io/badge/version-3.2.1-blue.svg)](CHANGELOG.md)\n\n"
        f"{desc}.\n\n## Upgrading\n\n{note}\n",
    )
    h.commit(f"{name} 3.2.1", day, _AUTHORS[3])
    h.write("src/app/cli.py", "import sys\n\n\ndef main():\n    print('ok', *sys.argv[1:])\n")
    h.commit("Echo CLI arguments", day + dt.timedelta(days=rng.randint(2, 9)), _AUTHORS[3])
    return h.fixture(), {}


def _bump_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "cd repo && git status -sb && git grep -n '3\\.2\\.1'",
            say="Finding every mention of 3.2.1, and reading the README, which has several.",
        ),
        read("repo/README.md"),
    ]
    yield [
        edit("repo/pyproject.toml", 'version = "3.2.1"', 'version = "3.3.0"', say="pyproject,"),
        edit(
            "repo/src/app/__init__.py",
            '__version__ = "3.2.1"',
            '__version__ = "3.3.0"',
            say="the package version",
        ),
        edit("repo/docs/conf.py", 'release = "3.2.1"', 'release = "3.3.0"', say="and Sphinx."),
    ]
    badge = yield edit("repo/README.md", "3.2.1", "3.3.0", say="And the README badge.")
    if not badge.ok:
        # "3.2.1" is ambiguous: the upgrade note mentions it too, and that must stay.
        yield edit(
            "repo/README.md",
            "version-3.2.1-blue",
            "version-3.3.0-blue",
            say="Two matches; the other is the historical upgrade note, so only the badge.",
        )
    done = yield sh(
        "cd repo && git commit -qam 'Bump version to 3.3.0' "
        "&& git show --stat --format='%h %s' HEAD "
        "&& git grep -n '3\\.2\\.1'",
        say="Committing the bump and listing what still says 3.2.1.",
    )
    files = len(re.findall(r"^ \S+ +\| ", done.stdout, re.M))
    yield Reply(
        f"Bumped the version to 3.3.0 in {files} files (pyproject.toml, src/app/__init__.py, "
        "docs/conf.py and the README badge) in one commit. The README's upgrade note still "
        "mentions 3.2.1 on purpose: it is historical."
    )
    check = yield sh(
        "cd repo && git grep -c '3\\.3\\.0' && git status --porcelain | wc -l",
        say="Double-checking the new version everywhere and a clean tree.",
    )
    spots = len([ln for ln in check.stdout.splitlines() if ":" in ln])
    yield Reply(
        f"Checked: 3.3.0 appears in {spots} files, the only 3.2.1 left is the upgrade note, "
        "and the working tree is clean."
    )


_BUMP_VERIFY = r"""
import re, subprocess, sys

def git(*args):
    return subprocess.run(["git", "-C", "repo", *args], capture_output=True, text=True).stdout

if git("log", "-1", "--format=%s", "HEAD~1").strip() != "Echo CLI arguments":
    sys.exit("expected exactly one new commit on top of the original history")
changed = set(git("show", "--name-only", "--format=", "HEAD").split())
want = {"pyproject.toml", "src/app/__init__.py", "docs/conf.py", "README.md"}
if changed != want:
    sys.exit(f"the bump commit should change exactly {sorted(want)}, changed {sorted(changed)}")
checks = {
    "pyproject.toml": r'^version = "3\.3\.0"$',
    "src/app/__init__.py": r'^__version__ = "3\.3\.0"$',
    "docs/conf.py": r'^release = "3\.3\.0"$',
    "README.md": r"badge/version-3\.3\.0-",
}
for path, pattern in checks.items():
    if not re.search(pattern, git("show", f"HEAD:{path}"), re.M):
        sys.exit(f"{path} does not carry 3.3.0 in the committed version")
readme = git("show", "HEAD:README.md")
old = [l for l in readme.splitlines() if "3.2.1" in l]
if len(old) != 1 or "badge" in old[0]:
    sys.exit("the historical 3.2.1 note in README.md must stay, and only it")
for path in ("pyproject.toml", "src/app/__init__.py", "docs/conf.py"):
    if "3.2.1" in git("show", f"HEAD:{path}"):
        sys.exit(f"{path} still mentions 3.2.1")
if git("status", "--porcelain", "--untracked-files=no").strip():
    sys.exit("uncommitted changes left in repo/")
print("ok: one commit bumps every live version to 3.3.0; the historical note stays")
"""

# ---------------------------------------------------------------- source-install-precommit-hook

_HOOK = textwrap.dedent(
    """\
    #!/bin/sh
    # Reject commits whose staged Python changes add trailing whitespace or TODO markers.
    # Only the index is inspected (git diff --cached), never the working tree.
    status=0
    for file in $(git diff --cached --name-only --diff-filter=ACMR -- '*.py'); do
        added=$(git diff --cached -U0 -- "$file" | grep '^+' | grep -v '^+++')
        if printf '%s\\n' "$added" | grep -q '[[:space:]]$'; then
            echo "pre-commit: trailing whitespace added in $file" >&2
            status=1
        fi
        if printf '%s\\n' "$added" | grep -q 'TODO'; then
            echo "pre-commit: TODO marker added in $file" >&2
            status=1
        fi
    done
    exit $status
    """
)
_HOOK_DEMO = textwrap.dedent(
    """\
    #!/bin/bash
    # Show the pre-commit hook at work: a bad commit must be rejected, a clean one accepted.
    set -u
    mkdir -p out
    log="$PWD/out/hook_demo.log"
    : > "$log"
    cd repo
    target=src/{pkg}/pending.py

    echo "== staging $target with a TODO and trailing whitespace" >> "$log"
    printf 'def pending():\\n    return None  # TODO: implement \\n' > "$target"
    git add "$target"
    if git commit -m "Add pending()" >> "$log" 2>&1; then
        echo "ERROR: the bad commit was accepted" | tee -a "$log"
        exit 1
    fi
    echo "-> rejected, as expected" >> "$log"

    echo "== staging a clean version" >> "$log"
    printf 'def pending():\\n    return None\\n' > "$target"
    git add "$target"
    git commit -q -m "Add pending()" >> "$log" 2>&1
    echo "-> accepted: $(git log --oneline -1)" >> "$log"
    cat "$log"
    """
)
_HOOK_PACKAGES = ("inventory", "ledger", "notes")


def _hook_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    pkg = rng.choice(_HOOK_PACKAGES)
    h = _History()
    h.write("README.md", f"# {pkg}\n\nA small Python package.\n")
    h.write(f"src/{pkg}/__init__.py", f'"""{pkg} package."""\n')
    h.write(
        f"src/{pkg}/core.py",
        "def add(items, item):\n    return [*items, item]\n\n\n"
        "def count(items):\n    return len(items)\n",
    )
    h.commit(f"Add the {pkg} package", dt.datetime(2026, 2, 3, 10, 0), _AUTHORS[4])
    return h.fixture(), {"pkg": pkg}


def _hook_playbook(ctx: Ctx) -> Playbook:
    pkg = ctx.facts["pkg"]
    yield [
        sh(
            "cd repo && ls .git/hooks && git ls-files && git log --oneline -3",
            say="Checking the repository and its hooks directory, and the Python code the hook "
            "will guard.",
        ),
        read(f"repo/src/{pkg}/core.py"),
    ]
    yield [
        write("repo/.git/hooks/pre-commit", _HOOK, say="Writing the pre-commit hook"),
        write("demo.sh", _HOOK_DEMO.format(pkg=pkg), say="and a demo: one bad commit, one clean."),
    ]
    run = yield sh("bash demo.sh", say="Running the demo.")
    if not run.ok:
        # A file created with write() is not executable, and git silently skips such hooks.
        run = yield sh(
            "cd repo && git reset -q --hard HEAD~1 && chmod +x .git/hooks/pre-commit "
            "&& cd .. && bash demo.sh",
            say="git ignored the hook because it is not executable; undoing the bad commit, "
            "fixing the mode and rerunning.",
        )
    rejected = "rejected" in run.stdout
    yield Reply(
        "Installed repo/.git/hooks/pre-commit. It checks only the staged lines of Python files "
        "and rejects added trailing whitespace or TODO markers. The demo "
        + ("showed the bad commit rejected and the clean commit accepted" if rejected else "ran")
        + "; the log is in out/hook_demo.log."
    )
    check = yield sh(
        "ls -l repo/.git/hooks/pre-commit && grep -- '->' out/hook_demo.log "
        "&& git -C repo log --oneline -3",
        say="Checking the hook's mode and the demo log.",
    )
    mode = check.stdout.split()[0] if check.stdout else "?"
    yield Reply(
        f"Checked: the hook is {mode} (executable), and the log shows one rejection followed by "
        "one accepted commit."
    )


_HOOK_VERIFY = r"""
import os, shutil, subprocess, sys, tempfile

hook = "repo/.git/hooks/pre-commit"
if not os.path.isfile(hook):
    sys.exit("no pre-commit hook installed")
if not os.access(hook, os.X_OK):
    sys.exit("the pre-commit hook is not executable")
try:
    log = open("out/hook_demo.log").read().lower()
except FileNotFoundError:
    sys.exit("out/hook_demo.log is missing")
if "reject" not in log or not ("accept" in log or "succe" in log):
    sys.exit("the demo log does not show a rejected and an accepted commit")

def attempt(repo, staged, unstaged=None):
    with open(os.path.join(repo, "mod.py"), "w") as fh:
        fh.write(staged)
    subprocess.run(["git", "-C", repo, "add", "mod.py"], check=True)
    if unstaged is not None:
        with open(os.path.join(repo, "mod.py"), "w") as fh:
            fh.write(unstaged)
    ok = subprocess.run(["git", "-C", repo, "commit", "-qm", "probe"],
                        capture_output=True).returncode == 0
    if not ok:
        subprocess.run(["git", "-C", repo, "reset", "-q"], check=True)
    return ok

with tempfile.TemporaryDirectory() as repo:
    subprocess.run(["git", "init", "-q", repo], check=True)
    subprocess.run(["git", "-C", repo, "commit", "-q", "--allow-empty", "-m", "root"], check=True)
    shutil.copy(hook, os.path.join(repo, ".git/hooks/pre-commit"))
    os.chmod(os.path.join(repo, ".git/hooks/pre-commit"), 0o755)
    if attempt(repo, "x = 1   \n"):
        sys.exit("the hook accepts staged trailing whitespace")
    if attempt(repo, "x = 1  # TODO fix\n"):
        sys.exit("the hook accepts a staged TODO marker")
    if not attempt(repo, "x = 1\n", unstaged="x = 1   \n# TODO later\n"):
        sys.exit("the hook rejects a clean staged file because of unstaged edits")
print("ok: executable hook rejects whitespace and TODOs in staged Python, demo logged")
"""

# ---------------------------------------------------------------- source-rebase-search-branch

_INDEX_BASE = textwrap.dedent(
    '''\
    """A tiny inverted index over short documents."""


    def tokenize(text):
        return text.split()


    def build_index(docs):
        index = {}
        for doc_id, text in docs.items():
            for word in tokenize(text):
                index.setdefault(word, set()).add(doc_id)
        return index


    def lookup(index, word):
        return sorted(index.get(word, set()))
    '''
)
_TOKENIZE_BASE = "def tokenize(text):\n    return text.split()\n"
_TOKENIZE_MAIN = (
    "def tokenize(text, lowercase=True):\n"
    "    words = text.split()\n"
    "    return [w.lower() for w in words] if lowercase else words\n"
)
_TOKENIZE_FEATURE = 'def tokenize(text):\n    return [w.strip(".,!?;:") for w in text.split()]\n'
_TOKENIZE_RESOLVED = (
    "def tokenize(text, lowercase=True):\n"
    '    words = [w.strip(".,!?;:") for w in text.split()]\n'
    "    return [w.lower() for w in words] if lowercase else words\n"
)
_SEARCH_AND = textwrap.dedent(
    '''


    def search(index, query):
        """Ids of the documents that contain every word of the query."""
        words = tokenize(query)
        if not words:
            return []
        return sorted(set.intersection(*(index.get(w, set()) for w in words)))
    '''
)
_SEARCH_OR = textwrap.dedent(
    '''


    def search(index, query, mode="and"):
        """Ids of the documents that contain every word (mode="and") or any word ("or")."""
        words = tokenize(query)
        if not words:
            return []
        sets = [index.get(w, set()) for w in words]
        return sorted(set.intersection(*sets) if mode == "and" else set.union(*sets))
    '''
)


def _index_tests(module: str, extra: str = "") -> str:
    return (
        _TEST_HEADER
        + f"\nfrom src.{module} import build_index, lookup  # noqa: E402\n\n\n"
        + "class IndexTest(unittest.TestCase):\n"
        + "    def test_lookup(self):\n"
        + '        index = build_index({1: "red apple", 2: "green apple"})\n'
        + '        self.assertEqual(lookup(index, "apple"), [1, 2])\n'
        + extra
    )


def _search_tests(docs: dict, cases: list[tuple[str, str, list]]) -> str:
    lines = [
        _TEST_HEADER,
        "from src.indexer import build_index, search  # noqa: E402",
        "",
        f"DOCS = {docs!r}",
        "",
        "",
        "class SearchTest(unittest.TestCase):",
    ]
    for name, call, want in cases:
        lines += [
            f"    def test_{name}(self):",
            f"        self.assertEqual({call}, {want!r})",
            "",
        ]
    return "\n".join(lines)


def _rebase_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    fruit, drink = rng.choice((("apple", "tea"), ("pear", "coffee"), ("plum", "juice")))
    docs = {1: f"red {fruit}.", 2: f"green {fruit}!", 3: f"green {drink}"}
    and_cases = [
        ("single_word", f'search(build_index(DOCS), "{fruit}")', [1, 2]),
        ("all_words", f'search(build_index(DOCS), "green {fruit}")', [2]),
    ]
    or_cases = [("any_word", f'search(build_index(DOCS), "red {drink}", mode="or")', [1, 3])]
    day = dt.datetime(2026, 1, 8, 10, 0)
    h = _History()
    h.write("README.md", "# minisearch\n\nAn inverted index for short documents.\n")
    h.write("src/indexer.py", _INDEX_BASE)
    h.write("tests/test_index.py", _index_tests("indexer"))
    h.commit("Add the inverted index", day, _AUTHORS[0])
    # feature/search: five commits that keep editing src/indexer.py
    h.git("checkout", "-q", "-b", "feature/search")
    dev = rng.choice(_AUTHORS[1:])
    feature = _INDEX_BASE.replace(_TOKENIZE_BASE, _TOKENIZE_FEATURE)
    h.write("src/indexer.py", feature)
    h.commit("Strip punctuation in tokenize()", day + dt.timedelta(days=1), dev)
    h.write("src/indexer.py", feature + _SEARCH_AND)
    h.commit("Add search() for multi-word queries", day + dt.timedelta(days=2), dev)
    h.write("tests/test_search.py", _search_tests(docs, and_cases))
    h.commit("Add search tests", day + dt.timedelta(days=2, hours=3), dev)
    h.write("src/indexer.py", feature + _SEARCH_OR)
    h.commit("Support OR queries in search()", day + dt.timedelta(days=4), dev)
    h.write("tests/test_search.py", _search_tests(docs, and_cases + or_cases))
    h.commit("Test OR queries", day + dt.timedelta(days=4, hours=2), dev)
    # main: the module is renamed and tokenize() gains a parameter
    h.git("checkout", "-q", "main")
    h.git("mv", "src/indexer.py", "src/index.py")
    h.write("tests/test_index.py", _index_tests("index"))
    h.commit("Rename src/indexer.py to src/index.py", day + dt.timedelta(days=3), _AUTHORS[0])
    main_index = _INDEX_BASE.replace(_TOKENIZE_BASE, _TOKENIZE_MAIN)
    h.write("src/index.py", main_index)
    lower_test = (
        "\n    def test_case_insensitive(self):\n"
        '        index = build_index({1: "Red Apple"})\n'
        '        self.assertEqual(lookup(index, "apple"), [1])\n'
    )
    h.write("tests/test_index.py", _index_tests("index", lower_test))
    h.commit("Lower-case tokens by default", day + dt.timedelta(days=5), _AUTHORS[0])
    resolved = main_index.replace(_TOKENIZE_MAIN, _TOKENIZE_RESOLVED)
    return h.fixture(), {"resolved_step1": resolved}


# Blank context lines in a unified diff are a single space; spelled out so nothing strips them.
_SEARCH_IMPORT_FIX = (
    "--- a/repo/tests/test_search.py\n"
    "+++ b/repo/tests/test_search.py\n"
    "@@ -4,7 +4,7 @@\n"
    " \n"
    ' sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))\n'
    " \n"
    "-from src.indexer import build_index, search  # noqa: E402\n"
    "+from src.index import build_index, search  # noqa: E402\n"
    " \n"
    " {docs}\n"
    " \n"
)


def _rebase_playbook(ctx: Ctx) -> Playbook:
    yield sh(
        "cd repo && git log --oneline --graph --all --stat | head -60",
        say="Looking at both branches.",
    )
    rebase = yield sh(
        "cd repo && git checkout -q feature/search && git rebase main",
        say="Rebasing feature/search onto main.",
    )
    resume = ""
    if not rebase.ok:
        src = yield read("repo/src/index.py", say="A conflict in the renamed module; reading it.")
        text = src.stdout
        start = text.find("<<<<<<<")
        end = text.find("\n", text.rfind(">>>>>>>")) + 1
        before, after = text[:start], text[end:]
        resolved = ctx.facts["resolved_step1"]
        yield edit(
            "repo/src/index.py",
            text[start:end],
            resolved[len(before) : len(resolved) - len(after)],
            say="Keeping main's lowercase parameter and the branch's punctuation stripping.",
        )
        resume = "git add src/index.py && GIT_EDITOR=true git rebase --continue >/dev/null && "
    tests = yield sh(
        f"cd repo && {resume}git log --oneline main..HEAD && python3 -m unittest discover -s tests",
        say="Continuing the rebase and running the tests on the new tip.",
    )
    if not tests.ok:
        # The branch added tests/test_search.py, which still imports the old module name.
        current = yield read("repo/tests/test_search.py", say="The search tests fail to import.")
        docs = re.search(r"^DOCS = .*$", current.stdout, re.M)
        diff = _SEARCH_IMPORT_FIX.format(docs=docs.group(0) if docs else "DOCS = {}")
        yield patch(diff, say="test_search.py still imports src.indexer; pointing it at src.index.")
        tests = yield sh(
            "set -o pipefail && cd repo && python3 -m unittest discover -s tests 2>&1 | tail -3 "
            "&& git commit -q -a --fixup=':/Add search tests' "
            "&& GIT_SEQUENCE_EDITOR=true git rebase -q -i --autosquash main "
            "&& git log --oneline main..HEAD",
            say="Tests pass; folding the import fix into the commit that added the tests.",
        )
    commits = len(re.findall(r"^[0-9a-f]{7,} ", tests.stdout, re.M))
    yield Reply(
        f"Rebased feature/search onto main: {commits} commits, linear on top of main. The "
        "tokenize() conflict keeps both main's lowercase parameter and the branch's punctuation "
        "stripping, search() now lives in src/index.py, and the search tests import the renamed "
        "module (folded into the commit that added them). All tests pass on the rebased tip."
    )
    check = yield sh(
        "cd repo && git log --oneline --graph -8 && test ! -e src/indexer.py "
        "&& echo 'no src/indexer.py' && git rev-list --merges main..feature/search | wc -l",
        say="Checking the history is linear and the old module is gone.",
    )
    merges = check.stdout.strip().splitlines()[-1] if check.ok else "?"
    yield Reply(f"Checked: linear history with {merges} merge commits, and src/indexer.py is gone.")


_REBASE_VERIFY = r"""
import os, subprocess, sys, tempfile

def git(*args):
    return subprocess.run(["git", "-C", "repo", *args], capture_output=True, text=True).stdout

if os.path.exists("repo/.git/rebase-merge") or os.path.exists("repo/.git/rebase-apply"):
    sys.exit("a rebase is still in progress")
if git("log", "-1", "--format=%s", "main").strip() != "Lower-case tokens by default":
    sys.exit("main was changed")
if subprocess.run(["git", "-C", "repo", "merge-base", "--is-ancestor", "main",
                   "feature/search"]).returncode:
    sys.exit("feature/search is not rebased onto main")
if git("rev-list", "--merges", "main..feature/search").strip():
    sys.exit("feature/search has merge commits; the history should be linear")
subjects = git("log", "--format=%s", "main..feature/search").splitlines()
for s in ("Strip punctuation in tokenize()", "Add search() for multi-word queries",
          "Add search tests", "Support OR queries in search()", "Test OR queries"):
    if s not in subjects:
        sys.exit(f"commit {s!r} is missing from feature/search")
files = git("ls-tree", "-r", "--name-only", "feature/search").split()
if "src/indexer.py" in files:
    sys.exit("src/indexer.py still exists on feature/search")
index = git("show", "feature/search:src/index.py")
for marker in ("def search", "lowercase", ".strip("):
    if marker not in index:
        sys.exit(f"src/index.py on feature/search lacks {marker!r}")
with tempfile.TemporaryDirectory() as tmp:
    archive = subprocess.run(["git", "-C", "repo", "archive", "feature/search"],
                             capture_output=True)
    subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
    tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests"],
                           cwd=tmp, capture_output=True, text=True)
    if tests.returncode:
        sys.exit("tests fail on feature/search: " + tests.stderr[-300:])
print("ok: feature/search rebased linearly onto main, tests pass")
"""

# ---------------------------------------------------------------- source-stale-branch-report

_STALE_PREFIXES = ("feature", "fix", "exp", "chore", "spike")
_STALE_TOPICS = (
    "login-form",
    "oauth-scopes",
    "csv-import",
    "dark-mode",
    "rate-limits",
    "billing-retry",
    "search-facets",
    "pdf-export",
    "audit-log",
    "invite-flow",
    "webhooks",
    "cache-warmup",
    "s3-uploads",
    "i18n-labels",
    "timezone-bug",
    "null-totals",
    "flaky-ci",
    "docker-slim",
    "graphql-poc",
    "metrics-v2",
    "sso-okta",
    "password-reset",
    "bulk-delete",
    "email-digest",
    "legacy-api",
)


def _stale_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    as_of = dt.date(2026, 3, 2) + dt.timedelta(days=rng.randint(0, 20))
    cutoff = as_of - dt.timedelta(days=90)
    names = [f"{rng.choice(_STALE_PREFIXES)}/{t}" for t in rng.sample(_STALE_TOPICS, 25)]
    start = as_of - dt.timedelta(days=730)
    plan = []
    for name in names:
        while True:
            # about two thirds of the branches are old, the rest saw work recently
            offset = rng.randint(5, 630) if rng.random() < 0.65 else rng.randint(630, 725)
            day = start + dt.timedelta(days=offset)
            if abs((day - cutoff).days) > 3:
                break
        plan.append((day, name, rng.random() < 0.5, rng.choice(_AUTHORS)))
    plan.sort()
    h = _History()
    h.write("README.md", "# platform\n\nThe web platform monorepo.\n")
    h.write("CHANGES.md", "# Changes\n")
    h.commit("Initial import", dt.datetime.combine(start, dt.time(9, 0)), _AUTHORS[0])
    changes = "# Changes\n"
    for i, (day, name, merged, author) in enumerate(plan):
        when = dt.datetime.combine(day, dt.time(10, 0))
        slug = name.split("/")[1]
        h.git("checkout", "-q", "-b", name, "main")
        h.write(f"work/{slug}.md", f"# {slug}\n\nWork in progress.\n")
        h.commit(f"Start {slug}", when - dt.timedelta(days=rng.randint(1, 4)), author)
        h.write(f"work/{slug}.md", f"# {slug}\n\nReady for review.\n")
        h.commit(f"Finish {slug}", when, author)
        h.git("checkout", "-q", "main")
        if merged:
            h.git("merge", "-q", "--no-ff", "-m", f"Merge branch '{name}'", name,
                  when=when + dt.timedelta(hours=5))  # fmt: skip
        if i % 4 == 0:
            changes += f"- {day.isoformat()}: weekly notes\n"
            h.write("CHANGES.md", changes)
            h.commit("Update CHANGES", when + dt.timedelta(hours=6), _AUTHORS[0])
    note = textwrap.dedent(
        f"""\
        Branch cleanup request

        repo/ is a mirror snapshot taken on {as_of.isoformat()}. Treat that date as "today":
        a branch is stale when its last commit is more than 90 days older than it.
        Please propose the cleanup first; do not delete any branch yet.
        """
    )
    return h.fixture({"cleanup_request.txt": note}), {}


_STALE_V1 = textwrap.dedent(
    """\
    import datetime as dt
    import os
    import subprocess

    AS_OF = dt.date.fromisoformat("{as_of}")  # snapshot date from cleanup_request.txt
    CUTOFF = AS_OF - dt.timedelta(days=90)


    def git(*args):
        return subprocess.run(
            ["git", "-C", "repo", *args], capture_output=True, text=True, check=True
        ).stdout


    merged = {{b.strip(" *") for b in git("branch", "--merged", "main").splitlines()}}
    stale = []
    refs = git(
        "for-each-ref", "--sort=committerdate",
        "--format=%(refname:short) %(committerdate:short) %(authorname)", "refs/heads",
    )
    for line in refs.splitlines():
        name, date, author = line.split()
        if name != "main" and dt.date.fromisoformat(date) < CUTOFF:
            stale.append((name, date, author, name in merged))
    print(len(stale), "stale branches")
    """
)

_STALE_V2 = textwrap.dedent(
    """\
    import datetime as dt
    import os
    import subprocess

    AS_OF = dt.date.fromisoformat("{as_of}")  # snapshot date from cleanup_request.txt
    CUTOFF = AS_OF - dt.timedelta(days=90)


    def git(*args):
        return subprocess.run(
            ["git", "-C", "repo", *args], capture_output=True, text=True, check=True
        ).stdout


    merged = {{b.strip(" *") for b in git("branch", "--merged", "main").splitlines()}}
    stale = []
    refs = git(
        "for-each-ref", "--sort=committerdate",
        "--format=%(refname:short)%09%(committerdate:short)%09%(authorname)", "refs/heads",
    )
    total = 0
    for line in refs.splitlines():
        name, date, author = line.split("\\t")  # author names contain spaces
        if name == "main":
            continue
        total += 1
        if dt.date.fromisoformat(date) < CUTOFF:
            stale.append((name, date, author, name in merged))

    os.makedirs("out", exist_ok=True)
    with open("out/stale_branches.md", "w") as fh:
        fh.write("# Stale branches\\n\\n")
        fh.write(f"Snapshot date {{AS_OF}}; stale = last commit before {{CUTOFF}} (90 days).\\n")
        fh.write(f"{{len(stale)}} of {{total}} branches are stale; nothing has been deleted.\\n\\n")
        fh.write("| branch | last commit | author | merged into main |\\n")
        fh.write("|---|---|---|---|\\n")
        for name, date, author, is_merged in stale:
            fh.write(f"| {{name}} | {{date}} | {{author}} | {{'yes' if is_merged else 'no'}} |\\n")
    deletable = [s for s in stale if s[3]]
    with open("out/delete_merged.sh", "w") as fh:
        fh.write("#!/bin/sh\\n# Deletes stale branches already merged into main. Review first;\\n")
        fh.write("# not run yet. Unmerged stale branches are listed in stale_branches.md only.\\n")
        fh.write('set -e\\ncd "$(dirname "$0")/../repo"\\n')
        fh.writelines(f"git branch -d {{name}}\\n" for name, *_ in deletable)
    print(f"{{total}} branches, {{len(stale)}} stale, {{len(deletable)}} of them merged")
    """
)


def _stale_playbook(ctx: Ctx) -> Playbook:
    note, _branches = yield [
        read("cleanup_request.txt", say="Reading the cleanup request"),
        sh(
            "cd repo && git branch | wc -l && git for-each-ref --sort=committerdate "
            "--format='%(refname:short) %(committerdate:short) %(authorname)' refs/heads | head -5",
            say="and counting branches and looking at their dates.",
        ),
    ]
    found = re.search(r"\d{4}-\d{2}-\d{2}", note.stdout)
    as_of = found.group(0) if found else "2026-03-02"
    yield write("stale.py", _STALE_V1.format(as_of=as_of), say="Writing the stale-branch finder.")
    run = yield sh("python3 stale.py", say="Running it.")
    if not run.ok:
        # Author names have spaces, so splitting on whitespace yields too many fields.
        yield write(
            "stale.py",
            _STALE_V2.format(as_of=as_of),
            say="Author names contain spaces; splitting on tabs instead, and writing the outputs.",
        )
        run = yield sh("python3 stale.py", say="Running it again.")
    yield Reply(
        f"Measured against the snapshot date {as_of}: {run.stdout.strip()}. The report with "
        "each stale branch's last commit date, author and merged status is in "
        "out/stale_branches.md, and out/delete_merged.sh holds `git branch -d` commands for the "
        "merged stale branches only. I have not run it."
    )
    check, branches = yield [
        sh(
            "grep -c '^git branch -d' out/delete_merged.sh; "
            "for b in $(awk '/^git branch -d/{print $4}' out/delete_merged.sh); do "
            'git -C repo merge-base --is-ancestor $b main && echo "merged: $b"; done',
            say="Checking the delete list is merged-only and no branch was deleted.",
        ),
        sh("git -C repo branch | wc -l"),
    ]
    lines = check.stdout.split()
    yield Reply(
        f"Checked: the script lists {lines[0] if lines else '?'} branches, each confirmed merged "
        f"into main, and all {branches.stdout.strip() or '?'} branches (main included) still "
        "exist."
    )


_STALE_VERIFY = r"""
import datetime as dt, re, subprocess, sys

def git(*args):
    return subprocess.run(["git", "-C", "repo", *args], capture_output=True, text=True).stdout

as_of = dt.date.fromisoformat(re.search(r"\d{4}-\d{2}-\d{2}",
                                        open("cleanup_request.txt").read()).group(0))
cutoff = as_of - dt.timedelta(days=90)
branches = {}
refs = git("for-each-ref", "--format=%(refname:short)%09%(committerdate:short)%09%(authorname)",
           "refs/heads")
for line in refs.splitlines():
    name, date, author = line.split("\t")
    if name != "main":
        merged = subprocess.run(["git", "-C", "repo", "merge-base", "--is-ancestor", name,
                                 "main"]).returncode == 0
        branches[name] = (date, author, merged)
stale = {n: v for n, v in branches.items() if dt.date.fromisoformat(v[0]) < cutoff}
if len(branches) < 20 or not stale:
    sys.exit("branches are missing from repo/; nothing may be deleted yet")
try:
    report = open("out/stale_branches.md").read()
    script = open("out/delete_merged.sh").read()
except FileNotFoundError as e:
    sys.exit(f"missing output: {e.filename}")
rows = {}
for line in report.splitlines():
    cells = [c.strip().strip("`") for c in line.split("|")]
    for cell in cells:
        if cell in branches:
            rows[cell] = (line.lower(), [c.lower() for c in cells])
for name, (date, author, merged) in stale.items():
    if name not in rows:
        sys.exit(f"stale branch {name} is missing from the report")
    line, cells = rows[name]
    if date not in line or author.lower() not in line:
        sys.exit(f"the report line for {name} lacks its last commit date or author")
    says_no = any(c in ("no", "not merged", "unmerged", "false") for c in cells)
    says_yes = any(c in ("yes", "merged", "true") for c in cells)
    if says_yes == says_no or says_yes != merged:
        sys.exit(f"merged status for {name} is wrong or unclear (merged: {merged})")
extra = set(rows) - set(stale)
if extra:
    sys.exit(f"branches that are not stale are in the report: {sorted(extra)}")
deleted = set(re.findall(r"^\s*git\s+(?:-C\s+\S+\s+)?branch\s+-[dD]\s+(\S+)", script, re.M))
want = {n for n, v in stale.items() if v[2]}
if deleted != want:
    sys.exit(f"delete script should cover exactly the {len(want)} merged stale branches, "
             f"has {sorted(deleted)}")
print(f"ok: {len(stale)} stale branches reported, {len(want)} merged ones in the delete script")
"""

RECIPES = [
    TaskRecipe(
        task_id="source-resolve-merge-conflict",
        fixture=_merge_conflict_fixture,
        playbook=_merge_conflict_playbook,
        verify=_MERGE_CONFLICT_VERIFY,
        failure_mode="the merge stops on conflicting hunks in price() that must be hand-merged",
    ),
    TaskRecipe(
        task_id="source-write-release-changelog",
        fixture=_changelog_fixture,
        playbook=_changelog_playbook,
        verify=_CHANGELOG_VERIFY,
        failure_mode="parses git log one line per commit; multi-line bodies break the split",
    ),
    TaskRecipe(
        task_id="source-bisect-date-regression",
        fixture=_bisect_fixture,
        playbook=_bisect_playbook,
        verify=_BISECT_VERIFY,
        failure_mode="the bisect check script is not executable, so git bisect run aborts",
    ),
    TaskRecipe(
        task_id="source-pin-requirements",
        fixture=_pin_fixture,
        playbook=_pin_playbook,
        verify=_PIN_VERIFY,
        failure_mode="looks lock entries up by lower-cased name; typing_extensions is not found",
    ),
    TaskRecipe(
        task_id="source-remove-committed-secret",
        fixture=_secret_fixture,
        playbook=_secret_playbook,
        verify=_SECRET_VERIFY,
        failure_mode="runs git filter-branch with the .gitignore edit unstaged, which it refuses",
    ),
    TaskRecipe(
        task_id="source-cherry-pick-hotfixes",
        fixture=_cherry_pick_fixture,
        playbook=_cherry_pick_playbook,
        verify=_CHERRY_PICK_VERIFY,
        failure_mode="cherry-picks all hotfixes at once; the one built on a refactor conflicts",
    ),
    TaskRecipe(
        task_id="source-audit-vendored-licenses",
        fixture=_license_fixture,
        playbook=_license_playbook,
        verify=_LICENSE_VERIFY,
        failure_mode="assumes every vendored package ships PKG-INFO; some only have license files",
    ),
    TaskRecipe(
        task_id="source-apply-upstream-security-patch",
        fixture=_security_patch_fixture,
        playbook=_security_patch_playbook,
        verify=_SECURITY_PATCH_VERIFY,
        failure_mode="applies the upstream patch as is; its a/minijson/ paths miss vendor/",
    ),
    TaskRecipe(
        task_id="source-split-oversized-commit",
        fixture=_split_fixture,
        playbook=_split_playbook,
        verify=_SPLIT_VERIFY,
        failure_mode="commits the tests before the source fix, so that commit fails its own tests",
    ),
    TaskRecipe(
        task_id="source-bump-project-version",
        fixture=_bump_fixture,
        playbook=_bump_playbook,
        verify=_BUMP_VERIFY,
        failure_mode="edits README's bare 3.2.1, which is ambiguous with the historical note",
    ),
    TaskRecipe(
        task_id="source-install-precommit-hook",
        fixture=_hook_fixture,
        playbook=_hook_playbook,
        verify=_HOOK_VERIFY,
        failure_mode="the hook is written without the executable bit, so git silently skips it",
    ),
    TaskRecipe(
        task_id="source-rebase-search-branch",
        fixture=_rebase_fixture,
        playbook=_rebase_playbook,
        verify=_REBASE_VERIFY,
        failure_mode="after the tokenize() conflict, the branch's new test imports src.indexer",
    ),
    TaskRecipe(
        task_id="source-stale-branch-report",
        fixture=_stale_fixture,
        playbook=_stale_playbook,
        verify=_STALE_VERIFY,
        failure_mode="splits for-each-ref output on whitespace; author names contain spaces",
    ),
]
