"""Code-Runtime recipes: fix, test, refactor, profile and run small Python projects."""

from __future__ import annotations

import csv
import difflib
import io
import json
import random
import re
import textwrap
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, kill, output, patch, read, sh, start, write

# ---------------------------------------------------------------- shared helpers


def _udiff(path: str, old: str, new: str) -> str:
    """The unified diff of one file that an agent hands to apply_patch."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
        )
    )


def _summary(res) -> str:
    """unittest's closing lines from a result, e.g. 'Ran 6 tests, OK'."""
    text = f"{res.stdout}\n{res.stderr}" if res else ""
    ran = re.findall(r"Ran \d+ tests?", text)
    verdict = re.findall(r"^(OK\b.*|FAILED \(.*\))$", text, re.M)
    parts = [ran[-1] if ran else "", verdict[-1] if verdict else ""]
    return ", ".join(p for p in parts if p) or "no unittest summary"


def _last_line(res, pattern: str = r".+") -> str:
    """The last line of a result's output matching `pattern` (or '?')."""
    text = f"{res.stdout}\n{res.stderr}" if res else ""
    found = [ln for ln in text.splitlines() if re.search(pattern, ln)]
    return found[-1].strip() if found else "?"


# ---------------------------------------------------------------- code-fix-discount-rounding-bug

_DISCOUNTS_PY = '''\
"""Discount helpers used by the checkout."""


def apply_discount(amount, percent):
    """Return `amount` reduced by `percent` %, rounded to the cent (half-up)."""
    return round(amount * (100 - percent) / 100, 2)


def bulk_percent(quantity):
    """Percentage discount granted for an order of `quantity` units."""
    if quantity >= 100:
        return 15
    if quantity >= 20:
        return 10
    if quantity >= 10:
        return 5
    return 0


def line_total(unit_price, quantity):
    """Price of `quantity` units before any discount."""
    return round(unit_price * quantity, 2)


def order_total(unit_price, quantity):
    """Line total after the bulk discount."""
    return apply_discount(line_total(unit_price, quantity), bulk_percent(quantity))
'''

_PRICING_TESTS = """\
import unittest

from pricing.discounts import apply_discount, bulk_percent, line_total, order_total


class DiscountTest(unittest.TestCase):
    def test_no_discount_keeps_amount(self):
        self.assertEqual(apply_discount(19.99, 0), 19.99)

    def test_bulk_tiers(self):
        self.assertEqual([bulk_percent(q) for q in (1, 10, 20, 100)], [0, 5, 10, 15])

    def test_line_total(self):
        self.assertEqual(line_total(2.5, 4), 10.0)

    def test_small_order_has_no_discount(self):
        self.assertEqual(order_total(3.2, 2), 6.4)

    def test_half_cent_rounds_up(self):
        self.assertEqual(apply_discount(__A1__, __P1__), __E1__)

    def test_half_cent_rounds_up_on_large_amount(self):
        self.assertEqual(apply_discount(__A2__, __P2__), __E2__)


if __name__ == "__main__":
    unittest.main()
"""

_CENT = Decimal("0.01")


def _half_cent_case(rng: random.Random, lo: int, hi: int) -> tuple[float, int, float]:
    """An amount and percent whose exact result ends in half a cent, where both float
    round() and Decimal(float) round the wrong way."""
    while True:
        cents, percent = rng.randrange(lo, hi), rng.choice((5, 10, 15, 20, 25, 30, 35, 45))
        if cents * (100 - percent) % 100 != 50:
            continue
        amount = cents / 100
        want = float((Decimal(repr(amount)) * (100 - percent) / 100).quantize(_CENT, ROUND_HALF_UP))
        floaty = round(amount * (100 - percent) / 100, 2)
        naive = float((Decimal(amount) * (100 - percent) / 100).quantize(_CENT, ROUND_HALF_UP))
        if floaty != want and naive != want:
            return amount, percent, want


def _discount_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    a1, p1, e1 = _half_cent_case(rng, 100, 5000)
    a2, p2, e2 = _half_cent_case(rng, 100000, 2000000)
    tests = _PRICING_TESTS
    for key, value in {"A1": a1, "P1": p1, "E1": e1, "A2": a2, "P2": p2, "E2": e2}.items():
        tests = tests.replace(f"__{key}__", repr(value))
    files = {
        "pricing/__init__.py": "",
        "pricing/discounts.py": _DISCOUNTS_PY,
        "tests/test_pricing.py": tests,
    }
    return Fixture(files), {"cases": [(a1, p1, e1), (a2, p2, e2)]}


_DISCOUNT_OLD = '''\
"""Discount helpers used by the checkout."""


def apply_discount(amount, percent):
    """Return `amount` reduced by `percent` %, rounded to the cent (half-up)."""
    return round(amount * (100 - percent) / 100, 2)
'''

_DISCOUNT_NEW = '''\
"""Discount helpers used by the checkout."""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def apply_discount(amount, percent):
    """Return `amount` reduced by `percent` %, rounded to the cent (half-up)."""
    exact = Decimal(amount) * (100 - percent) / 100
    return float(exact.quantize(CENT, rounding=ROUND_HALF_UP))
'''


def _discount_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("pricing/discounts.py", say="Reading the discount module."),
        read("tests/test_pricing.py", say="And the tests it has to satisfy,"),
        sh(
            "python3 -m unittest discover tests 2>&1 | tail -n 15",
            say="reproducing the failures before touching anything.",
        ),
    ]
    yield edit(
        "pricing/discounts.py",
        _DISCOUNT_OLD,
        _DISCOUNT_NEW,
        say="Switching apply_discount to Decimal with ROUND_HALF_UP.",
    )
    run = yield sh("python3 -m unittest discover tests", say="Re-running the suite.")
    if not run.ok:
        # Decimal(2.675) is 2.67499999..., the float's binary error survives the conversion.
        yield edit(
            "pricing/discounts.py",
            "Decimal(amount)",
            "Decimal(str(amount))",
            say="Decimal(float) keeps the binary error; converting through str() instead.",
        )
        run = yield sh("python3 -m unittest discover tests", say="Running the suite again.")
    yield Reply(
        "Fixed apply_discount in pricing/discounts.py: it now builds the amount with "
        "Decimal(str(amount)) and quantizes to the cent with ROUND_HALF_UP, so half cents round "
        f"up instead of down. The tests are unchanged: {_summary(run)}."
    )
    check = yield sh(
        "python3 -c 'from pricing.discounts import apply_discount as d, order_total as o; "
        "print(d(2.675, 0), d(1.005, 0), d(10.05, 50), o(3.2, 2), o(1.5, 20))'",
        say="Spot-checking a few half-cent amounts and the untouched helpers.",
    )
    yield Reply(
        "Checked: 2.675 -> {}, 1.005 -> {}, 10.05 at 50% -> {}; order totals without and "
        "with the bulk discount are unchanged ({} and {}).".format(*check.stdout.split())
        if check.ok and len(check.stdout.split()) == 5
        else f"Spot check output: {check.stdout.strip() or check.stderr.strip()}"
    )


_DISCOUNT_VERIFY = """
import random, subprocess, sys
from decimal import Decimal, ROUND_HALF_UP
run = subprocess.run([sys.executable, "-m", "unittest", "discover", "tests"],
                     capture_output=True, text=True)
if run.returncode != 0:
    sys.exit("python3 -m unittest discover tests fails:\\n" + run.stderr[-400:])
src = open("pricing/discounts.py").read()
if "Decimal" not in src or "ROUND_HALF_UP" not in src:
    sys.exit("pricing/discounts.py does not use Decimal with ROUND_HALF_UP")
tests = open("tests/test_pricing.py").read()
if tests.count("def test_") != 6 or "test_half_cent_rounds_up_on_large_amount" not in tests:
    sys.exit("tests/test_pricing.py was changed")
sys.path.insert(0, ".")
from pricing.discounts import apply_discount, bulk_percent, line_total, order_total
rng = random.Random(7)
for _ in range(400):
    cents, pct = rng.randrange(1, 2000000), rng.choice(range(0, 60, 5))
    exact = Decimal(cents) / 100 * (100 - pct) / 100
    want = float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    got = apply_discount(cents / 100, pct)
    if got != want:
        sys.exit(f"apply_discount({cents / 100}, {pct}) = {got}, expected {want}")
if [bulk_percent(q) for q in (1, 9, 10, 19, 20, 99, 100)] != [0, 0, 5, 5, 10, 10, 15]:
    sys.exit("bulk_percent changed")
if line_total(2.5, 4) != 10.0 or order_total(1.5, 20) != 27.0 or order_total(3.2, 2) != 6.4:
    sys.exit("line_total/order_total changed")
print("ok: Decimal half-up rounding, suite passes")
"""

# ---------------------------------------------------------------- code-add-dry-run-flag

_CLEANUP_PY = '''\
#!/usr/bin/env python3
"""Delete *.tmp files older than a number of days under a directory."""

import argparse
import os
import sys
import time


def find_old(root, days, now=None):
    """Paths of *.tmp files under `root` last modified more than `days` days ago."""
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    old = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if name.endswith(".tmp") and os.path.getmtime(path) < cutoff:
                old.append(path)
    return sorted(old)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Delete old *.tmp files.")
    parser.add_argument("root", help="directory to clean")
    parser.add_argument("--days", type=int, default=7, help="minimum age in days (default 7)")
    args = parser.parse_args(argv)

    removed = 0
    for path in find_old(args.root, args.days):
        os.remove(path)
        print(f"removed {path}")
        removed += 1
    print(f"{removed} file(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

_CLEANUP_TESTS = """\
import contextlib
import io
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import cleanup  # noqa: E402

DAY = 86400


class CleanupTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.now = time.time()

    def tearDown(self):
        self.tmp.cleanup()

    def make(self, name, age_days):
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("x")
        stamp = self.now - age_days * DAY
        os.utime(path, (stamp, stamp))
        return path

    def run_main(self, *args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cleanup.main([self.root, *args])
        return code, out.getvalue()

    def test_removes_old_tmp_files(self):
        old = self.make("build/__OLD__.tmp", __AGE__)
        new = self.make("build/fresh.tmp", 1)
        code, out = self.run_main("--days", "7")
        self.assertEqual(code, 0)
        self.assertFalse(os.path.exists(old))
        self.assertTrue(os.path.exists(new))
        self.assertIn("1 file(s) removed", out)

    def test_keeps_other_extensions(self):
        keep = self.make("__OLD__.log", __AGE__)
        self.run_main("--days", "7")
        self.assertTrue(os.path.exists(keep))

    def test_find_old_is_sorted(self):
        paths = [self.make(name, 30) for name in ("b.tmp", "a/c.tmp", "a.tmp")]
        self.assertEqual(cleanup.find_old(self.root, 7, now=self.now), sorted(paths))


if __name__ == "__main__":
    unittest.main()
"""

_CLEANUP_README = """\
# housekeeping

Small maintenance scripts for the build machines.

## cleanup

`tools/cleanup.py` deletes `*.tmp` files older than N days under a directory:

    python3 tools/cleanup.py __DIR__ --days 7

Options:

- `--days N`: minimum age in days (default 7)

Run the tests with `python3 -m unittest discover tests`.
"""


def _dry_run_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    tests = _CLEANUP_TESTS.replace("__OLD__", rng.choice(["stale", "cache-01", "partial"]))
    tests = tests.replace("__AGE__", str(rng.randint(8, 40)))
    readme = _CLEANUP_README.replace(
        "__DIR__", rng.choice(["/var/tmp/build", "/srv/ci/scratch", "/data/render-cache"])
    )
    files = {"tools/cleanup.py": _CLEANUP_PY, "tests/test_cleanup.py": tests, "README.md": readme}
    return Fixture(files), {}


_CLEANUP_ARG_OLD = (
    '    parser.add_argument("--days", type=int, default=7,'
    ' help="minimum age in days (default 7)")\n'
)
_CLEANUP_ARG_NEW = _CLEANUP_ARG_OLD + (
    '    parser.add_argument(\n        "--dry-run",\n        action="store_true",\n'
    '        help="list the files that would be deleted without deleting them",\n    )\n'
)
_CLEANUP_LOOP_OLD = "    removed = 0\n"
_CLEANUP_LOOP_NEW = """\
    if args.dryrun:
        planned = find_old(args.root, args.days)
        for path in planned:
            print(f"would remove {path}")
        print(f"dry run: {len(planned)} file(s) would be removed")
        return 0

    removed = 0
"""
_DRY_RUN_TEST = """\
    def test_dry_run_deletes_nothing(self):
        old = self.make("build/old.tmp", 10)
        code, out = self.run_main("--days", "7", "--dry-run")
        self.assertEqual(code, 0)
        self.assertTrue(os.path.exists(old))
        self.assertIn(f"would remove {old}", out)
        self.assertIn("1 file(s) would be removed", out)


"""
_MAIN_GUARD = 'if __name__ == "__main__":\n'
_README_DAYS = "- `--days N`: minimum age in days (default 7)\n"
_README_DRY = "- `--dry-run`: print the files that would be deleted and delete nothing\n"


def _dry_run_playbook(ctx: Ctx) -> Playbook:
    readme, src, tests = yield [
        sh("cat README.md", say="Reading the README's usage section,"),
        read("tools/cleanup.py", say="the cleanup script"),
        read("tests/test_cleanup.py", say="and its tests."),
    ]
    new_src = src.stdout.replace(_CLEANUP_ARG_OLD, _CLEANUP_ARG_NEW).replace(
        _CLEANUP_LOOP_OLD, _CLEANUP_LOOP_NEW
    )
    new_tests = tests.stdout.replace(_MAIN_GUARD, _DRY_RUN_TEST + _MAIN_GUARD)
    new_readme = readme.stdout.replace(_README_DAYS, _README_DAYS + _README_DRY)
    diff = (
        _udiff("tools/cleanup.py", src.stdout, new_src)
        + _udiff("tests/test_cleanup.py", tests.stdout, new_tests)
        + _udiff("README.md", readme.stdout, new_readme)
    )
    yield patch(diff, say="Adding the flag, a test for it and a README line in one patch.")
    run = yield sh("python3 -m unittest discover tests", say="Running the test suite.")
    if not run.ok:
        # argparse turns --dry-run into the attribute dry_run, not dryrun.
        yield edit(
            "tools/cleanup.py",
            "if args.dryrun:",
            "if args.dry_run:",
            say="argparse stores --dry-run as args.dry_run; fixing the attribute name.",
        )
        run = yield sh("python3 -m unittest discover tests", say="Re-running the tests.")
    yield Reply(
        "Added --dry-run to tools/cleanup.py: it lists every file it would delete "
        "('would remove <path>') plus a count, and deletes nothing. New test "
        f"test_dry_run_deletes_nothing in tests/test_cleanup.py ({_summary(run)}); README.md "
        "documents the flag under Options."
    )
    demo = yield sh(
        "d=$(mktemp -d) && touch -d '10 days ago' $d/old.tmp && touch $d/new.tmp "
        "&& python3 tools/cleanup.py $d --dry-run && ls $d",
        say="Trying the flag on a scratch directory.",
    )
    left = demo.stdout.strip().splitlines()[-2:] if demo.ok else []
    yield Reply(
        f"Checked on a scratch directory: {_last_line(demo, 'dry run')}; afterwards the "
        f"directory still holds {', '.join(left) or '?'}."
    )


_DRY_RUN_VERIFY = """
import os, subprocess, sys, tempfile, time
py = sys.executable
run = subprocess.run([py, "-m", "unittest", "discover", "tests"], capture_output=True, text=True)
if run.returncode != 0:
    sys.exit("the test suite fails:\\n" + run.stderr[-400:])
tests = open("tests/test_cleanup.py").read()
if "--dry-run" not in tests or tests.count("def test_") < 4:
    sys.exit("tests/test_cleanup.py has no new test for --dry-run")
if "--dry-run" not in open("README.md").read():
    sys.exit("README.md does not document --dry-run")
helptext = subprocess.run([py, "tools/cleanup.py", "--help"], capture_output=True, text=True)
if "--dry-run" not in helptext.stdout:
    sys.exit("--dry-run is not an argparse option")
with tempfile.TemporaryDirectory() as d:
    os.makedirs(os.path.join(d, "sub"))
    old = [os.path.join(d, "a.tmp"), os.path.join(d, "sub", "b.tmp")]
    fresh = os.path.join(d, "c.tmp")
    for p in old + [fresh]:
        open(p, "w").close()
    stamp = time.time() - 30 * 86400
    for p in old:
        os.utime(p, (stamp, stamp))
    r = subprocess.run([py, "tools/cleanup.py", d, "--days", "7", "--dry-run"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("--dry-run exits with " + str(r.returncode) + ": " + r.stderr[-300:])
    if not all(os.path.exists(p) for p in old + [fresh]):
        sys.exit("--dry-run deleted files")
    if not all(p in r.stdout for p in old) or fresh in r.stdout:
        sys.exit("--dry-run does not list exactly the files it would delete")
    r = subprocess.run([py, "tools/cleanup.py", d, "--days", "7"], capture_output=True, text=True)
    if any(os.path.exists(p) for p in old) or not os.path.exists(fresh):
        sys.exit("without --dry-run the tool no longer deletes the old files")
print("ok: --dry-run lists and keeps files; tested and documented")
"""

# ---------------------------------------------------------------- code-write-dateparse-tests

_DATEPARSE_PY = r'''"""Parse the date formats that show up in customer uploads."""

import datetime
import re

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_US = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")


def _days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _make_date(year, month, day, text):
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise ValueError(f"no such date: {text!r}")
    return datetime.date(year, month, day)


def parse_year(text):
    """Parse a year given with four digits or with two.

    Two-digit years 00-__LAST__ mean 20xx and __PIVOT__-99 mean 19xx.
    Raises ValueError for anything else.
    """
    text = text.strip()
    if not text.isdigit() or len(text) not in (2, 4):
        raise ValueError(f"not a year: {text!r}")
    year = int(text)
    if len(text) == 2:
        year += 2000 if year <= __PIVOT__ else 1900
    return year


def parse_iso(text):
    """Parse 'YYYY-MM-DD' (surrounding whitespace allowed) into a date.

    Leap years follow the Gregorian rule (2000-02-29 exists, 1900-02-29 does not).
    Raises ValueError for other formats and for impossible dates.
    """
    m = _ISO.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not an ISO date: {text!r}")
    year, month, day = map(int, m.groups())
    return _make_date(year, month, day, text)


def parse_us(text):
    """Parse US-style 'M/D/YY' or 'MM/DD/YYYY' into a date (years as in parse_year).

    Raises ValueError for other formats and for impossible dates.
    """
    m = _US.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a US date: {text!r}")
    month, day = int(m.group(1)), int(m.group(2))
    return _make_date(parse_year(m.group(3)), month, day, text)


def parse_range(text):
    """Parse 'START..END' (two ISO dates) into a (start, end) tuple.

    Raises ValueError if a side is not an ISO date or END is before START.
    """
    start, sep, end = text.partition("..")
    if not sep:
        raise ValueError(f"not a date range: {text!r}")
    first, last = parse_iso(start), parse_iso(end)
    if last < first:
        raise ValueError(f"range ends before it starts: {text!r}")
    return first, last
'''


def _dateparse_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    pivot = rng.choice([50, 69, 70])
    src = _DATEPARSE_PY.replace("__PIVOT__", str(pivot)).replace("__LAST__", str(pivot - 1))
    return Fixture({"app/__init__.py": "", "app/dateparse.py": src}), {"pivot": pivot}


_DATEPARSE_TESTS = """\
import datetime
import unittest

from app.dateparse import parse_iso, parse_range, parse_us, parse_year

D = datetime.date


class ParseYearTest(unittest.TestCase):
    def test_four_digit_year(self):
        self.assertEqual(parse_year("1999"), 1999)
        self.assertEqual(parse_year(" 2024 "), 2024)

    def test_two_digit_years(self):
        self.assertEqual(parse_year("07"), 2007)
        self.assertEqual(parse_year("99"), 1999)

__PIVOT_TESTS__
    def test_invalid_years(self):
        for bad in ("", "7", "123", "20x4", "12345"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                parse_year(bad)


class ParseIsoTest(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(parse_iso("2024-03-15"), D(2024, 3, 15))
        self.assertEqual(parse_iso("  2024-03-15\\n"), D(2024, 3, 15))

    def test_leap_days(self):
        self.assertEqual(parse_iso("2024-02-29"), D(2024, 2, 29))
        self.assertEqual(parse_iso("2000-02-29"), D(2000, 2, 29))

    def test_invalid(self):
        for bad in ("2023-02-29", "1900-02-29", "2024-13-01", "2024-04-31", "2024/03/15", ""):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                parse_iso(bad)


class ParseUsTest(unittest.TestCase):
    def test_four_digit_year(self):
        self.assertEqual(parse_us("03/15/2024"), D(2024, 3, 15))

    def test_two_digit_year(self):
        self.assertEqual(parse_us("3/5/07"), D(2007, 3, 5))
        self.assertEqual(parse_us("2/29/00"), D(2000, 2, 29))

    def test_invalid(self):
        for bad in ("13/01/2024", "2/30/2024", "2/29/1900", "2024-03-15", "1/1/1"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                parse_us(bad)


class ParseRangeTest(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(parse_range("2024-02-01..2024-02-29"), (D(2024, 2, 1), D(2024, 2, 29)))

    def test_single_day(self):
        self.assertEqual(parse_range("2024-05-05..2024-05-05"), (D(2024, 5, 5), D(2024, 5, 5)))

    def test_invalid(self):
        for bad in ("2024-03-02..2024-03-01", "2024-03-01", "2024-03-01..", "..2024-03-01"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                parse_range(bad)


if __name__ == "__main__":
    unittest.main()
"""

_PIVOT_TESTS_V1 = """\
    def test_pivot_boundary(self):
        self.assertEqual(parse_year("__LAST__"), 20__LAST__)
        self.assertEqual(parse_year("__P__"), 19__P__)
"""

_PIVOT_TESTS_V2 = """\
    def test_pivot_boundary_below(self):
        self.assertEqual(parse_year("__LAST__"), 20__LAST__)

    # Documents the docstring; the code maps "__P__" to 20__P__ (see out/test_notes.md).
    @unittest.expectedFailure
    def test_pivot_boundary_documented(self):
        self.assertEqual(parse_year("__P__"), 19__P__)
"""


def _dateparse_tests(pivot: int, pivot_tests: str) -> str:
    block = pivot_tests.replace("__P__", str(pivot)).replace("__LAST__", str(pivot - 1))
    return _DATEPARSE_TESTS.replace("__PIVOT_TESTS__\n", block)


def _dateparse_playbook(ctx: Ctx) -> Playbook:
    src = yield read("app/dateparse.py", say="Reading the parser and its docstrings.")
    found = re.search(r"and (\d\d)-99 mean 19xx", src.stdout)
    pivot = int(found.group(1)) if found else ctx.facts["pivot"]
    yield write(
        "tests/test_dateparse.py",
        _dateparse_tests(pivot, _PIVOT_TESTS_V1),
        say="Writing tests for all four helpers: normal, boundary and invalid inputs.",
    )
    run = yield sh("python3 -m unittest -v tests.test_dateparse", say="Running them.")
    failure = "no failure"
    if not run.ok:
        # The pivot year itself is mapped to 20xx: the code says `<=` where the docstring
        # means `<`. That is a bug to report, not something to fix while writing tests.
        failure = _last_line(run, r"AssertionError")
        yield write(
            "tests/test_dateparse.py",
            _dateparse_tests(pivot, _PIVOT_TESTS_V2),
            say="The pivot year contradicts the docstring; pinning it as an expected failure.",
        )
        run = yield sh("python3 -m unittest -v tests.test_dateparse", say="Running them again.")
    note = textwrap.dedent(
        f"""\
        # tests/test_dateparse.py: findings

        Covered: parse_year, parse_iso, parse_us and parse_range with normal inputs,
        boundaries (leap days incl. 1900 and 2000, month ends, the two-digit year pivot)
        and invalid inputs. Result: {_summary(run)}.

        ## Bug found (not fixed)

        - parse_year("{pivot}") returns 20{pivot}, but the docstring says {pivot}-99 mean 19xx
          ({failure}).
          The check is `year <= {pivot}`; it should be `year < {pivot}`. parse_us inherits
          it: "1/1/{pivot}" becomes 20{pivot}-01-01.
        - test_pivot_boundary_documented asserts the documented behaviour and is marked
          expectedFailure; remove the marker when the code is fixed.
        """
    )
    yield write("out/test_notes.md", note, say="Writing the findings note.")
    yield Reply(
        f"Added tests/test_dateparse.py covering all four public helpers ({_summary(run)}). "
        f"Found one genuine bug: parse_year maps '{pivot}' to 20{pivot} although the docstring "
        f"says 19{pivot}; it is documented in out/test_notes.md and pinned by an "
        "expectedFailure test, not fixed."
    )
    suite, count = yield [
        sh(
            "python3 -m unittest tests.test_dateparse 2>&1 | tail -n 1",
            say="Double-checking the suite and counting the tests.",
        ),
        sh("grep -c 'def test_' tests/test_dateparse.py"),
    ]
    yield Reply(
        f"Checked: the suite reports '{suite.stdout.strip() or '?'}' with "
        f"{count.stdout.strip() or '?'} test methods, and app/dateparse.py is untouched."
    )


_DATEPARSE_VERIFY = """
import ast, os, re, subprocess, sys
if not os.path.exists("tests/test_dateparse.py"):
    sys.exit("tests/test_dateparse.py is missing")
run = subprocess.run([sys.executable, "-m", "unittest", "-v", "tests.test_dateparse"],
                     capture_output=True, text=True)
if run.returncode != 0:
    sys.exit("the new tests fail against the current code:\\n" + run.stderr[-400:])
src = open("tests/test_dateparse.py").read()
for fn in ("parse_year", "parse_iso", "parse_us", "parse_range"):
    if fn + "(" not in src:
        sys.exit(f"{fn} is not exercised")
tests = [n for n in ast.walk(ast.parse(src))
         if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
if len(tests) < 8:
    sys.exit(f"only {len(tests)} test methods")
if "assertRaises" not in src or not ("02-29" in src or "2/29" in src):
    sys.exit("missing error cases or leap-day cases")
mod = open("app/dateparse.py").read()
m = re.search(r"and (\\d\\d)-99 mean 19xx", mod)
if not m:
    sys.exit("app/dateparse.py docstring was changed")
pivot = m.group(1)
sys.path.insert(0, ".")
from app.dateparse import parse_year
if parse_year(pivot) != 2000 + int(pivot):
    sys.exit("the pivot bug was silently fixed; it should be reported in a note instead")
if not os.path.exists("out/test_notes.md"):
    sys.exit("out/test_notes.md is missing")
note = open("out/test_notes.md").read()
if pivot not in note or "parse_year" not in note:
    sys.exit("the note does not report the parse_year pivot bug")
print(f"ok: {len(tests)} tests pass, pivot bug reported")
"""

# ---------------------------------------------------------------- code-optimize-report-builder

_REPORT_GEN = """\
import csv
import os
import random

rng = random.Random(__SEED__)
FIRST = ["Ada", "Alan", "Grace", "Linus", "Edsger", "Barbara", "Ken", "Donald", "Frances",
         "John", "Margaret", "Dennis", "Radia", "Guido", "Anita", "Niklaus"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Dijkstra", "Liskov", "Thompson", "Knuth",
        "Allen", "Backus", "Hamilton", "Ritchie", "Perlman", "Rossum", "Borg", "Wirth"]
SEGMENTS = ["enterprise", "smb", "public", "education", "startup"]
N_CUSTOMERS, N_ORDERS = __NCUST__, __NORD__

customers = [(f"C{i:05d}", f"{rng.choice(FIRST)} {rng.choice(LAST)}", rng.choice(SEGMENTS))
             for i in range(1, N_CUSTOMERS + 1)]
for cid, name, segment in rng.sample(customers, __NDUP__):
    customers.append((cid, name, rng.choice([s for s in SEGMENTS if s != segment])))
os.makedirs("data", exist_ok=True)
with open("data/customers.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "name", "segment"])
    w.writerows(customers)
with open("data/orders.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["order_id", "customer_id", "amount"])
    for n in range(1, N_ORDERS + 1):
        cid = customers[rng.randrange(N_CUSTOMERS)][0]
        w.writerow([f"O{n:06d}", cid, f"{rng.randint(500, 250000) / 100:.2f}"])
"""

_REPORT_PY = '''\
"""Build the revenue report from data/orders.csv and data/customers.csv."""

import csv
import os

TOP_N = 10


def load_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def find_customer(customers, customer_id):
    """Return the row for `customer_id` (the first one when an id is listed twice)."""
    for customer in customers:
        if customer["customer_id"] == customer_id:
            return customer
    raise KeyError(customer_id)


def build_report(orders, customers):
    segments = {}
    spend = {}
    for order in orders:
        customer = find_customer(customers, order["customer_id"])
        cents = int(order["amount"].replace(".", ""))
        seg = segments.setdefault(customer["segment"], [0, 0])
        seg[0] += 1
        seg[1] += cents
        key = (customer["customer_id"], customer["name"])
        spend[key] = spend.get(key, 0) + cents
    lines = [f"Revenue report: {len(orders)} orders", "", "Revenue by segment"]
    for name in sorted(segments):
        count, cents = segments[name]
        lines.append(f"  {name:<12} {cents / 100:>14,.2f}  ({count} orders)")
    lines += ["", f"Top {TOP_N} customers"]
    ranked = sorted(spend.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    for (cid, name), cents in ranked:
        lines.append(f"  {cid}  {name:<20} {cents / 100:>12,.2f}")
    return "\\n".join(lines) + "\\n"


def main():
    orders = load_csv("data/orders.csv")
    customers = load_csv("data/customers.csv")
    os.makedirs("out", exist_ok=True)
    with open("out/report.txt", "w") as f:
        f.write(build_report(orders, customers))
    print("wrote out/report.txt")


if __name__ == "__main__":
    main()
'''


def _report_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    gen = (
        _REPORT_GEN.replace("__SEED__", str(rng.randrange(10**9)))
        .replace("__NCUST__", str(rng.randint(4800, 5200)))
        .replace("__NORD__", str(rng.randint(19000, 21000)))
        .replace("__NDUP__", str(rng.randint(6, 10)))
    )
    files = {"app/report.py": _REPORT_PY, "gen_data.py": gen}
    return Fixture(files, setup=("python3 gen_data.py && rm gen_data.py",)), {}


_REPORT_LOOKUP_OLD = """\
    for order in orders:
        customer = find_customer(customers, order["customer_id"])
"""
_REPORT_LOOKUP_NEW = """\
    by_id = {c["customer_id"]: c for c in customers}
    for order in orders:
        customer = by_id[order["customer_id"]]
"""
_REPORT_INDEX_FIRST = """\
    by_id = {}
    for c in customers:
        by_id.setdefault(c["customer_id"], c)  # first row wins, like find_customer did
"""


def _time_report(label: str) -> str:
    """Shell that runs the report builder once and prints '<label>: <seconds>s'."""
    return (
        "TIMEFORMAT=%R && t=$( { time python3 app/report.py >/dev/null; } 2>&1 )"
        f' && echo "{label}: ${{t}}s"'
    )


_CMP_REPORTS = (
    " && { cmp out/report_before.txt out/report.txt"
    " || { diff out/report_before.txt out/report.txt | head -n 12; exit 1; }; }"
)


def _seconds(res, label: str) -> str:
    found = re.search(rf"{label}: ([\d.]+)s", res.stdout if res else "")
    return found.group(1) if found else "?"


def _report_playbook(ctx: Ctx) -> Playbook:
    _src, _data, base = yield [
        read("app/report.py", say="Reading the report builder"),
        sh("head -n 3 data/orders.csv data/customers.csv && wc -l data/*.csv", say="and the data,"),
        sh(
            "mkdir -p out && " + _time_report("before") + " && cp out/report.txt "
            "out/report_before.txt && python3 -m cProfile -s tottime app/report.py | sed -n 1,12p",
            say="while timing the current version, keeping its output, and profiling it.",
            timeout_s=180,
        ),
    ]
    hot = re.search(r"^\s*(\d+)\s+([\d.]+)\s+.*\(find_customer\)", base.stdout, re.M)
    yield edit(
        "app/report.py",
        _REPORT_LOOKUP_OLD,
        _REPORT_LOOKUP_NEW,
        say="find_customer scans the whole list for each order; indexing customers by id.",
    )
    after = yield sh(
        _time_report("after") + _CMP_REPORTS,
        say="Timing the new version and comparing the output byte for byte.",
        timeout_s=180,
    )
    if not after.ok:
        # Some customer ids appear twice; the dict keeps the last row, find_customer the first.
        yield edit(
            "app/report.py",
            '    by_id = {c["customer_id"]: c for c in customers}\n',
            _REPORT_INDEX_FIRST,
            say="Segments moved: duplicate customer ids, and the dict keeps the last row. "
            "Keeping the first, as the scan did.",
        )
        after = yield sh(
            _time_report("after") + _CMP_REPORTS,
            say="Timing and comparing again.",
            timeout_s=180,
        )
    before_s, after_s = _seconds(base, "before"), _seconds(after, "after")
    profile = (
        f"{hot.group(1)} calls to find_customer took {hot.group(2)} s of internal time"
        if hot
        else "find_customer dominated the profile"
    )
    perf = textwrap.dedent(
        f"""\
        # app/report.py performance

        | version | `python3 app/report.py` wall time |
        |---|---|
        | before (linear `find_customer` scan per order) | {before_s} s |
        | after (dict index of customers by id) | {after_s} s |

        - cProfile of the old version: {profile}.
        - The index keeps the first row for each customer_id because data/customers.csv
          lists some ids twice; a plain dict comprehension kept the last one and changed
          the segment totals.
        - out/report.txt is byte-identical to the old output (`cmp` against
          out/report_before.txt).
        """
    )
    yield write("out/perf.md", perf, say="Recording the timings.")
    yield Reply(
        f"Replaced the per-order linear customer scan in app/report.py with a dict lookup: "
        f"{before_s} s before, {after_s} s after ({profile}). The report is byte-identical to "
        "the old one; timings are in out/perf.md."
    )
    check = yield sh(
        "cmp out/report.txt out/report_before.txt && echo identical && grep -c ' s |' out/perf.md",
        say="Confirming the outputs match and the note has both timings.",
    )
    yield Reply(
        f"Checked: out/report.txt and the pre-change output are "
        f"{'identical' if check.ok else 'NOT identical'}, and out/perf.md lists "
        f"{_last_line(check)} timings."
    )


_REPORT_VERIFY = """
import ast, csv, os, re, subprocess, sys, time
if not os.path.exists("out/perf.md"):
    sys.exit("out/perf.md is missing")
perf = open("out/perf.md").read()
if "before" not in perf.lower() or "after" not in perf.lower():
    sys.exit("out/perf.md does not give before and after timings")
if len(re.findall(r"\\d+(?:\\.\\d+)?\\s*(?:s|ms|seconds)\\b", perf)) < 2:
    sys.exit("out/perf.md has fewer than two timings")
src = open("app/report.py").read()
for node in ast.walk(ast.parse(src)):
    if isinstance(node, (ast.For, ast.comprehension, ast.While)):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and getattr(sub.func, "id", "") == "find_customer":
                sys.exit("build_report still calls find_customer for every order")
orders = list(csv.DictReader(open("data/orders.csv", newline="")))
index = {}
for c in csv.DictReader(open("data/customers.csv", newline="")):
    index.setdefault(c["customer_id"], c)
segments, spend = {}, {}
for o in orders:
    c = index[o["customer_id"]]
    cents = int(o["amount"].replace(".", ""))
    seg = segments.setdefault(c["segment"], [0, 0])
    seg[0] += 1
    seg[1] += cents
    key = (c["customer_id"], c["name"])
    spend[key] = spend.get(key, 0) + cents
lines = [f"Revenue report: {len(orders)} orders", "", "Revenue by segment"]
for name in sorted(segments):
    count, cents = segments[name]
    lines.append(f"  {name:<12} {cents / 100:>14,.2f}  ({count} orders)")
lines += ["", "Top 10 customers"]
for (cid, name), cents in sorted(spend.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
    lines.append(f"  {cid}  {name:<20} {cents / 100:>12,.2f}")
expected = "\\n".join(lines) + "\\n"
t0 = time.monotonic()
run = subprocess.run([sys.executable, "app/report.py"], capture_output=True, text=True, timeout=50)
elapsed = time.monotonic() - t0
if run.returncode != 0:
    sys.exit("app/report.py fails: " + run.stderr[-300:])
if open("out/report.txt").read() != expected:
    sys.exit("out/report.txt differs from the original report")
if elapsed > __LIMIT__:
    sys.exit(f"app/report.py still takes {elapsed:.2f}s")
print(f"ok: identical report in {elapsed:.2f}s, timings recorded")
"""

# ---------------------------------------------------------------- code-apply-review-patch

_VALIDATE_PY = '''\
"""Checks shared by the record builders."""


def require_fields(row, names):
    """Raise ValueError naming every field of `names` that is missing or blank."""
    missing = [n for n in names if n not in row or row[n].strip() == ""]
    if missing:
        raise ValueError("missing fields: " + ", ".join(missing))


def check_email(value):
    """Return the normalised address, or raise ValueError."""
    value = value.strip().lower()
    if "@" not in value or value.startswith("@"):
        raise ValueError(f"invalid email: {value!r}")
    return value
'''

_RECORDS_HEAD = '''\
"""Turn raw CSV rows into customer records."""

from src.validate import check_email, require_fields
'''
_RECORDS_PARSE_AGE = '''

def parse_age(value):
    """Parse an age in years; blank means unknown."""
    value = value.strip()
    if not value:
        return None
    return int(value)
'''
_RECORDS_NAME_OLD = '''

def normalize_name(value):
    """Title-case a name."""
    return value.strip().title()
'''
_RECORDS_NAME_NEW = '''

def normalize_name(value):
    """Collapse runs of whitespace and title-case a name."""
    return " ".join(value.split()).title()
'''
_RECORDS_TO_RECORD = '''

def to_record(row):
    """Build a customer record from a raw CSV row."""
    require_fields(row, ("name", "email"))
    return {
        "name": normalize_name(row["name"]),
        "email": check_email(row["email"]),
        "age": parse_age(row.get("age")),
    }
'''

_RECORD_TESTS = """\
import unittest

from src.records import normalize_name, parse_age, to_record
from src.validate import require_fields


class RecordTest(unittest.TestCase):
    def test_full_row(self):
        rec = to_record({"name": "  __RAW__ ", "email": " __EMAIL__ ", "age": "__AGE__"})
        self.assertEqual(rec, {"name": "__NAME__", "email": "__LOWER__", "age": __AGE__})

    def test_missing_age_is_unknown(self):
        self.assertIsNone(to_record({"name": "x", "email": "x@y.z"})["age"])

    def test_none_name_is_reported_missing(self):
        with self.assertRaisesRegex(ValueError, "missing fields: name"):
            to_record({"name": None, "email": "x@y.z"})

    def test_normalize_name_none(self):
        self.assertEqual(normalize_name(None), "")

    def test_parse_age_none(self):
        self.assertIsNone(parse_age(None))

    def test_blank_field_is_missing(self):
        with self.assertRaisesRegex(ValueError, "email"):
            require_fields({"name": "a", "email": "  "}, ("name", "email"))
"""


def _review_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    first, last = (
        rng.choice(["ada", "grace", "edsger", "barbara"]),
        rng.choice(["lovelace", "hopper", "dijkstra", "liskov"]),
    )
    email = f"{first.title()}.{last.title()}@Example.org"
    tests = (
        _RECORD_TESTS.replace("__RAW__", f"{first}   {last}")
        .replace("__NAME__", f"{first.title()} {last.title()}")
        .replace("__EMAIL__", email)
        .replace("__LOWER__", email.lower())
        .replace("__AGE__", str(rng.randint(18, 90)))
    )
    # The reviewer's patch was made against the older layout: parse_age came first and
    # normalize_name only stripped the value.
    old_records = _RECORDS_HEAD + _RECORDS_PARSE_AGE + _RECORDS_NAME_OLD + _RECORDS_TO_RECORD
    patched_old = old_records.replace(
        '    """Parse an age in years; blank means unknown."""\n',
        '    """Parse an age in years; blank means unknown."""\n'
        "    if value is None:\n        return None\n",
    ).replace(
        '    """Title-case a name."""\n',
        '    """Title-case a name."""\n    if value is None:\n        return ""\n',
    )
    patched_validate = _VALIDATE_PY.replace(
        'n not in row or row[n].strip() == ""',
        'row.get(n) is None or str(row[n]).strip() == ""',
    )
    diff = _udiff("src/records.py", old_records, patched_old) + _udiff(
        "src/validate.py", _VALIDATE_PY, patched_validate
    )
    files = {
        "src/__init__.py": "",
        "src/records.py": _RECORDS_HEAD
        + _RECORDS_NAME_NEW
        + _RECORDS_PARSE_AGE
        + _RECORDS_TO_RECORD,
        "src/validate.py": _VALIDATE_PY,
        "tests/__init__.py": "",
        "tests/test_records.py": tests,
        "review/null-handling.diff": diff,
    }
    return Fixture(files), {}


def _failed_hunks(patch_output: str) -> dict[str, set[int]]:
    """{file: {hunk numbers}} of the hunks GNU patch reports as FAILED."""
    failed: dict[str, set[int]] = {}
    current = None
    for line in patch_output.splitlines():
        m = re.match(r"(?:checking|patching) file (\S+)", line)
        if m:
            current = m.group(1)
        m = re.match(r"Hunk #(\d+) FAILED", line)
        if m and current:
            failed.setdefault(current, set()).add(int(m.group(1)))
    return failed


def _drop_hunks(diff: str, failed: dict[str, set[int]]) -> str:
    """The diff without the given hunks (numbered per file, from 1)."""
    out, path, hunk, keep = [], "", 0, True
    for line in diff.splitlines(keepends=True):
        if line.startswith("--- "):
            keep = True
        elif line.startswith("+++ "):
            path = re.sub(r"^[ab]/", "", line[4:].split("\t")[0].strip())
            hunk = 0
        elif line.startswith("@@"):
            hunk += 1
            keep = hunk not in failed.get(path, set())
        if keep:
            out.append(line)
    return "".join(out)


_NAME_BODY = '''\
    """Collapse runs of whitespace and title-case a name."""
    return " ".join(value.split()).title()
'''
_NAME_BODY_GUARDED = '''\
    """Collapse runs of whitespace and title-case a name."""
    if value is None:
        return ""
    return " ".join(value.split()).title()
'''


def _review_playbook(ctx: Ctx) -> Playbook:
    _layout, diff = yield [
        sh(
            "ls src tests review && python3 -m unittest 2>&1 | tail -n 4",
            say="Looking at the layout and the suite as it stands, and reading the reviewer's "
            "patch.",
        ),
        read("review/null-handling.diff"),
    ]
    first = yield patch(diff.stdout, say="Applying the patch as is.")
    failed: dict[str, set[int]] = {}
    second = first
    if not first.ok:
        failed = _failed_hunks(first.stdout + first.stderr)
        yield read(
            "src/records.py", say="A hunk failed; looking at what records.py looks like now."
        )
        second = yield patch(
            _drop_hunks(diff.stdout, failed),
            say="Applying the hunks that still match; I'll port the failed one by hand.",
        )
        yield edit(
            "src/records.py",
            _NAME_BODY,
            _NAME_BODY_GUARDED,
            say="normalize_name moved and now collapses whitespace; adding the None guard there.",
        )
    failed_text = "\n".join(
        f"- {path}, hunk #{n}: did not apply (its lines moved and changed since the patch was "
        "written); ported by hand into the current normalize_name, keeping the new "
        "whitespace-collapsing body."
        for path, hunks in sorted(failed.items())
        for n in sorted(hunks)
    )
    applied = "\n".join(
        f"- {ln.strip()}"
        for ln in second.stdout.splitlines()
        if ln.startswith(("patching file", "Hunk #"))
    )
    note = (
        "# review/null-handling.diff\n\n"
        "Hunks that needed manual adjustment:\n\n"
        f"{failed_text or '- none'}\n\n"
        "Applied with patch:\n\n"
        f"{applied or '- all hunks applied cleanly'}\n"
    )
    run = yield sh(
        f"python3 -m unittest && mkdir -p out && cat > out/patch_notes.md <<'NOTE'\n{note}NOTE",
        say="Running the suite and writing the patch notes.",
    )
    n_failed = sum(len(hunks) for hunks in failed.values())
    yield Reply(
        f"Applied review/null-handling.diff to src/. {n_failed} hunk(s) needed manual work: "
        "src/records.py's normalize_name hunk no longer matched (the function moved and "
        f"changed), so I added its None guard by hand. {_summary(run)}; notes in "
        "out/patch_notes.md."
        if failed
        else f"Applied review/null-handling.diff cleanly; {_summary(run)}."
    )
    check, _notes = yield [
        sh(
            "grep -n 'is None' src/records.py src/validate.py",
            say="Checking every None guard from the diff is in place, and the notes.",
        ),
        read("out/patch_notes.md"),
    ]
    guards = len([ln for ln in check.stdout.splitlines() if "is None" in ln])
    yield Reply(
        f"Checked: {guards} None checks are in src/ (parse_age, normalize_name and "
        "require_fields), and out/patch_notes.md lists the hand-ported hunk."
    )


_REVIEW_VERIFY = """
import os, re, subprocess, sys
run = subprocess.run([sys.executable, "-m", "unittest"], capture_output=True, text=True)
ran = re.search(r"Ran (\\d+) test", run.stderr)
if run.returncode != 0 or not ran or int(ran.group(1)) < 6:
    sys.exit("python3 -m unittest fails:\\n" + run.stderr[-400:])
sys.path.insert(0, ".")
from src.records import normalize_name, parse_age, to_record
from src.validate import require_fields
try:
    if normalize_name(None) != "" or normalize_name("  grace   hopper ") != "Grace Hopper":
        sys.exit("normalize_name does not handle None and collapse whitespace")
    if parse_age(None) is not None or parse_age(" 41 ") != 41:
        sys.exit("parse_age does not handle None")
    if to_record({"name": "a", "email": "a@b.c", "age": None})["age"] is not None:
        sys.exit("to_record does not accept a None age")
except Exception as exc:
    sys.exit(f"None handling is incomplete: {exc!r}")
try:
    require_fields({"name": None, "email": "a@b.c"}, ("name", "email"))
    sys.exit("require_fields accepts a None value")
except ValueError as exc:
    if "name" not in str(exc):
        sys.exit("require_fields does not name the None field")
except Exception as exc:
    sys.exit(f"require_fields crashes on None: {exc!r}")
if not os.path.exists("out/patch_notes.md"):
    sys.exit("out/patch_notes.md is missing")
note = open("out/patch_notes.md").read()
if "records.py" not in note or "hunk" not in note.lower():
    sys.exit("the note does not say which hunk needed manual adjustment")
print("ok: patch applied, None handling complete, notes written")
"""

# ---------------------------------------------------------------- code-smoke-test-dev-server

_SERVER_PY = '''\
"""Tiny read-only items API used by the front-end during development."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "items.json")


def load_items():
    with open(ITEMS_PATH) as f:
        return {item["id"]: item for item in json.load(f)}


class Handler(BaseHTTPRequestHandler):
    items = load_items()

    def send_json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["health"]:
            self.send_json(200, {"status": "ok", "items": len(self.items)})
        elif parts == ["items"]:
            self.send_json(200, sorted(self.items.values(), key=lambda i: i["id"]))
        elif len(parts) == 2 and parts[0] == "items" and parts[1].isdigit():
            self.send_json(200, self.items.get(int(parts[1])))
        else:
            self.send_json(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} {fmt % args}", flush=True)


def main():
    port = int(os.environ["PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"serving on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
'''

_ITEM_NAMES = [
    "Desk Lamp", "Notebook", "Stapler", "Monitor Arm", "Cable Tray", "Whiteboard",
    "Footrest", "Headset", "Webcam", "Desk Mat", "Pen Set", "Laptop Stand", "USB Hub",
]  # fmt: skip


def _server_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    first = rng.randrange(1, 60)
    names = rng.sample(_ITEM_NAMES, 10)
    items = [
        {"id": first + i, "name": name, "price": round(rng.uniform(3, 250), 2)}
        for i, name in enumerate(names)
    ]
    files = {"server/app.py": _SERVER_PY, "server/items.json": json.dumps(items, indent=2) + "\n"}
    return Fixture(files), {"ids": [i["id"] for i in items]}


_SMOKE = """\
base=http://127.0.0.1:8765
for i in $(seq 50); do curl -s -o /dev/null $base/health && break; sleep 0.1; done
id=$(curl -s $base/items | jq '.[0].id')
for path in /health /items /items/$id /items/9999 /nope; do
  code=$(curl -s -o /tmp/body -w '%{http_code}' $base$path)
  echo "$path $code $(head -c 150 /tmp/body)"
done"""


def _expected_status(path: str) -> str:
    """What a healthy API answers: 200 for the listing and known items, 404 otherwise."""
    known_item = re.fullmatch(r"/items/\d+", path) is not None and path != "/items/9999"
    return "200" if path in ("/health", "/items") or known_item else "404"


def _server_playbook(ctx: Ctx) -> Playbook:
    _routes, job1 = yield [
        read("server/app.py", 1, 35, say="Skimming the server's routes"),
        start("python3 server/app.py", say="and starting it in the background."),
    ]
    probe = yield sh(
        "sleep 1; curl -sS -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8000/health",
        say="Probing /health on the usual port.",
    )
    job = job1.extras["job"]
    if not probe.ok:
        # main() reads the port from $PORT and crashes without it.
        out = yield output(job, say="Nothing is listening; reading the job's output.")
        crash = _last_line(out, r"Error")
        job2 = yield start("PORT=8765 python3 server/app.py", say="It needs $PORT; restarting.")
        job = job2.extras["job"]
    else:
        crash = ""
    smoke = yield sh(_SMOKE, say="Smoke-testing every endpoint.")
    stopped = yield kill(job, say="Stopping the server.")
    rows, problems = [], []
    for line in smoke.stdout.splitlines():
        path, code, body = (line.split(" ", 2) + ["", ""])[:3]
        want = _expected_status(path)
        rows.append(f"| GET {path} | {code} | {want} | {body} |")
        if code != want:
            problems.append(
                f"- GET {path} returned {code} with body `{body}`; "
                f"an unknown id should return {want}."
            )
    log = (
        "# Smoke test: server/app.py\n\n"
        f"- Started `PORT=8765 python3 server/app.py` as background {job}"
        + (f" (a first start without PORT crashed: `{crash}`)" if crash else "")
        + ".\n"
        f"- Stopped it afterwards (running: {stopped.extras.get('running')}).\n\n"
        "| request | status | expected | body (first 150 bytes) |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n## Problems\n\n"
        + ("\n".join(problems) or "- none")
        + "\n"
    )
    yield write("out/smoke_test.md", log, say="Writing the smoke test log.")
    yield Reply(
        f"Smoke-tested server/app.py on port 8765 ({len(rows)} requests) and stopped it. "
        + (" ".join(p.lstrip("- ") for p in problems) if problems else "Every endpoint behaved.")
        + " Details in out/smoke_test.md."
    )
    check = yield sh(
        "! pgrep -f '[s]erver/app\\.py' && echo 'no server process left' && "
        "grep -c '^| GET' out/smoke_test.md",
        say="Making sure the server is gone and the log is complete.",
    )
    yield Reply(
        f"Checked: {'no server process is left' if check.ok else 'the server may still run'}, "
        f"and the log records {_last_line(check)} requests with status codes and bodies."
    )


_SERVER_VERIFY = """
import json, os, re, sys
if not os.path.exists("out/smoke_test.md"):
    sys.exit("out/smoke_test.md is missing")
log = open("out/smoke_test.md").read()
lines = log.splitlines()
items = {i["id"]: i for i in json.load(open("server/items.json"))}
def has(pattern, *words):
    return any(re.search(pattern, ln) and all(w in ln for w in words) for ln in lines)
if not has(r"/health\\b", "200"):
    sys.exit("no /health result with its status")
if not has(r"/items(?![/\\w])", "200"):
    sys.exit("no /items result with its status")
if not any(has(rf"/items/{i}\\b", "200", item["name"]) for i, item in items.items()):
    sys.exit("no /items/<id> result for a known item with its body")
unknown = [ln for ln in lines
           if (m := re.search(r"/items/(\\d+)", ln)) and int(m.group(1)) not in items]
if not unknown:
    sys.exit("no request for an unknown id recorded")
if not any("404" in ln and re.search(r"should|expected|bug|incorrect|wrong", ln, re.I)
           for ln in unknown):
    sys.exit("the wrong status for unknown ids is not called out")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"server/app.py" in cmd and int(pid) != os.getpid():
        sys.exit("the server is still running: " + cmd.replace(b"\\0", b" ").decode())
print("ok: endpoints recorded, unknown-id bug called out, server stopped")
"""

# ------------------------------------------------------------ code-refactor-duplicate-validation

_FORMS_HEAD = r'''"""Validation for the account pages' forms."""

import re

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
'''
_FORM_CLASS = """

class __NAME__:
    required = __REQUIRED__

    def __init__(self, data):
        self.data = data

    def validate(self):
        errors = {}
        for name in self.required:
            if not str(self.data.get(name) or "").strip():
                errors[name] = "this field is required"
        email = str(self.data.get("email") or "").strip()
        if email and not EMAIL_RE.match(email):
            errors["email"] = "__EMAIL_MSG__"
        if len(str(self.data.get("__LONG__") or "")) > __LIMIT__:
            errors["__LONG__"] = "must be at most __LIMIT__ characters"
        return errors
"""
_FORMS_HELPER = '''

def validate_fields(data, required, max_lengths):
    """The checks every form shares: required fields, email format, maximum lengths."""
    errors = {}
    for name in required:
        if not str(data.get(name) or "").strip():
            errors[name] = "this field is required"
    email = str(data.get("email") or "").strip()
    if email and not EMAIL_RE.match(email):
        errors["email"] = "invalid email address"
    for name, limit in max_lengths.items():
        if len(str(data.get(name) or "")) > limit:
            errors[name] = f"must be at most {limit} characters"
    return errors
'''
_FORM_CLASS_NEW = """

class __NAME__:
    required = __REQUIRED__
    max_lengths = {"__LONG__": __LIMIT__}

    def __init__(self, data):
        self.data = data

    def validate(self):
        return validate_fields(self.data, self.required, self.max_lengths)
"""

_FORMS_TESTS = """\
import unittest

from app.forms import ContactForm, ProfileForm, SignupForm


class SignupFormTest(unittest.TestCase):
    def test_valid(self):
        data = {"username": "ada", "email": "ada@example.com", "password": "s3cret"}
        self.assertEqual(SignupForm(data).validate(), {})

    def test_required(self):
        self.assertEqual(set(SignupForm({}).validate()), {"username", "email", "password"})

    def test_bad_email(self):
        errors = SignupForm({"username": "ada", "email": "ada@", "password": "x"}).validate()
        self.assertEqual(errors, {"email": "invalid email address"})

    def test_username_too_long(self):
        data = {"username": "a" * __L1P__, "email": "a@b.io", "password": "x"}
        errors = SignupForm(data).validate()
        self.assertEqual(errors, {"username": "must be at most __L1__ characters"})


class ProfileFormTest(unittest.TestCase):
    def test_valid(self):
        data = {"display_name": "Ada L.", "email": "ada@example.com"}
        self.assertEqual(ProfileForm(data).validate(), {})

    def test_bad_email(self):
        errors = ProfileForm({"display_name": "Ada", "email": "not-an-email"}).validate()
        self.assertEqual(errors, {"email": "invalid email address"})

    def test_display_name_too_long(self):
        errors = ProfileForm({"display_name": "d" * __L2P__, "email": "a@b.io"}).validate()
        self.assertEqual(errors, {"display_name": "must be at most __L2__ characters"})


class ContactFormTest(unittest.TestCase):
    def test_valid(self):
        data = {"name": "Ada", "email": "ada@example.com", "message": "Hello"}
        self.assertEqual(ContactForm(data).validate(), {})

    def test_required(self):
        self.assertEqual(set(ContactForm({"name": " "}).validate()), {"name", "email", "message"})

    def test_bad_email(self):
        data = {"name": "Ada", "email": "ada.example.com", "message": "hi"}
        errors = ContactForm(data).validate()
        self.assertIn("email", errors)

    def test_message_too_long(self):
        data = {"name": "Ada", "email": "a@b.io", "message": "m" * __L3P__}
        errors = ContactForm(data).validate()
        self.assertEqual(errors, {"message": "must be at most __L3__ characters"})
"""

_FORM_SPECS = (
    ("SignupForm", '("username", "email", "password")', "username"),
    ("ProfileForm", '("display_name", "email")', "display_name"),
    ("ContactForm", '("name", "email", "message")', "message"),
)


def _form_class(template: str, name: str, required: str, long: str, limit: int, msg: str) -> str:
    return (
        template.replace("__NAME__", name)
        .replace("__REQUIRED__", required)
        .replace("__LONG__", long)
        .replace("__LIMIT__", str(limit))
        .replace("__EMAIL_MSG__", msg)
    )


def _refactor_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    limits = [rng.choice([20, 30, 32]), rng.choice([40, 50, 64]), rng.choice([1000, 2000, 4000])]
    msgs = ["invalid email address", "invalid email address", "Email is invalid."]
    src = _FORMS_HEAD + "".join(
        _form_class(_FORM_CLASS, *spec, limit, msg)
        for spec, limit, msg in zip(_FORM_SPECS, limits, msgs, strict=True)
    )
    tests = _FORMS_TESTS
    for n, limit in enumerate(limits, 1):
        tests = tests.replace(f"__L{n}P__", str(limit + 1)).replace(f"__L{n}__", str(limit))
    files = {
        "app/__init__.py": "",
        "app/forms.py": src,
        "tests/__init__.py": "",
        "tests/test_forms.py": tests,
    }
    return Fixture(files), {"limits": limits}


def _refactored_forms(observed: str) -> str:
    """The refactored module, built from the form classes found in the observed source."""
    specs = re.findall(
        r'class (\w+):\n    required = (\(.*?\))\n.*?self\.data\.get\("(\w+)"\) or ""\)\) > (\d+)',
        observed,
        re.S,
    )
    classes = "".join(
        _form_class(_FORM_CLASS_NEW, name, required, long, int(limit), "")
        for name, required, long, limit in specs
    )
    return _FORMS_HEAD + _FORMS_HELPER + classes


def _refactor_playbook(ctx: Ctx) -> Playbook:
    src, _tests, _green = yield [
        read("app/forms.py", say="Reading the three form classes,"),
        read("tests/test_forms.py", say="what the tests expect,"),
        sh(
            "python3 -m unittest tests.test_forms 2>&1 | tail -n 3",
            say="and making sure the suite is green before refactoring.",
        ),
    ]
    new = _refactored_forms(src.stdout)
    # Written as if the three validate() bodies were identical copies of SignupForm's.
    assumed = re.sub(r'(errors\["email"\] = )"[^"]*"', r'\1"invalid email address"', src.stdout)
    first = yield patch(
        _udiff("app/forms.py", assumed, new),
        say="Replacing the three copies with one validate_fields() helper.",
    )
    if not first.ok:
        yield sh(
            "grep -n 'errors\\[\"email\"\\]' app/forms.py",
            say="A hunk did not match; comparing the email checks of the three copies.",
        )
        yield patch(
            _udiff("app/forms.py", src.stdout, new),
            say="ContactForm's copy used a different message; regenerating the diff from the "
            "real file.",
        )
    run = yield sh("python3 -m unittest -v tests.test_forms", say="Running the form tests.")
    yield Reply(
        "Refactored app/forms.py: SignupForm, ProfileForm and ContactForm now call one "
        "validate_fields(data, required, max_lengths) helper, with each form's length limit as "
        "a max_lengths class attribute. ContactForm's odd 'Email is invalid.' is now the "
        f"'invalid email address' wording the tests expect. {_summary(run)}."
    )
    check = yield sh(
        "grep -c 'EMAIL_RE.match' app/forms.py && python3 -c \"from app.forms import "
        "ContactForm; print(ContactForm({'name': 'Ada', 'email': 'nope', 'message': 'hi'})"
        '.validate())"',
        say="Confirming there is a single email check and ContactForm's new message.",
    )
    out = check.stdout.strip().splitlines()
    yield Reply(
        f"Checked: the email regex is matched in {out[0] if out else '?'} place, and ContactForm "
        f"now reports {out[-1] if len(out) > 1 else '?'}."
    )


_REFACTOR_VERIFY = """
import ast, re, subprocess, sys
run = subprocess.run([sys.executable, "-m", "unittest", "tests.test_forms"],
                     capture_output=True, text=True)
ran = re.search(r"Ran (\\d+) test", run.stderr)
if run.returncode != 0 or not ran or int(ran.group(1)) < 10:
    sys.exit("tests/test_forms.py is not green:\\n" + run.stderr[-400:])
sys.path.insert(0, ".")
from app import forms
cases = [
    (forms.SignupForm, {"username": "ada", "email": "bad@", "password": "x"}),
    (forms.ProfileForm, {"display_name": "Ada", "email": "bad@"}),
    (forms.ContactForm, {"name": "Ada", "email": "bad@", "message": "hi"}),
]
for cls, data in cases:
    msg = cls(data).validate().get("email")
    if msg != "invalid email address":
        sys.exit(f"{cls.__name__} reports {msg!r} for a bad email")
if set(forms.ContactForm({}).validate()) != {"name", "email", "message"}:
    sys.exit("ContactForm's required fields changed")
src = open("app/forms.py").read()
if src.count("EMAIL_RE.match") != 1:
    sys.exit("the email check is still duplicated")
tree = ast.parse(src)
helpers = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
if not helpers:
    sys.exit("no module-level helper function")
for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
    validate = next((n for n in cls.body if isinstance(n, ast.FunctionDef)
                     and n.name == "validate"), None)
    if validate is None:
        continue
    if any(isinstance(n, (ast.For, ast.If)) for n in ast.walk(validate)):
        sys.exit(f"{cls.name}.validate still has its own checks")
    called = {getattr(n.func, "id", "") for n in ast.walk(validate) if isinstance(n, ast.Call)}
    if not called & helpers:
        sys.exit(f"{cls.name}.validate does not call the shared helper")
print("ok: one shared helper, unified message, tests green")
"""

# ---------------------------------------------------------------- code-debug-importer-crash

_IMPORTER_PY = '''\
"""Import inventory rows from a CSV export."""

import csv
import sys


def parse_row(row):
    return {
        "sku": row["sku"].strip(),
        "name": row["name"].strip(),
        "quantity": int(row["quantity"]),
        "price": float(row["price"]),
    }


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        return [parse_row(row) for row in csv.DictReader(f)]


def main(argv):
    rows = load(argv[1])
    print(f"imported {len(rows)} rows from {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def _line_of(src: str, text: str) -> int:
    return next(i for i, ln in enumerate(src.splitlines(), 1) if text in ln)


def _importer_traceback(export: str) -> str:
    src, path = _IMPORTER_PY, "/home/dana/inventory/app/importer.py"
    frames = [
        ("<module>", "sys.exit(main(sys.argv))"),
        ("main", "rows = load(argv[1])"),
        ("load", "return [parse_row(row) for row in csv.DictReader(f)]"),
        ("<listcomp>", "return [parse_row(row) for row in csv.DictReader(f)]"),
        ("parse_row", '"sku": row["sku"].strip(),'),
    ]
    lines = [f"$ python3 app/importer.py {export}", "Traceback (most recent call last):"]
    for func, code in frames:
        lines += [f'  File "{path}", line {_line_of(src, code)}, in {func}', f"    {code}"]
    lines.append("KeyError: 'sku'")
    return "\n".join(lines) + "\n"


_PRODUCTS = ["Hex Bolt M6", "Wing Nut", "Washer 8mm", "Hinge", "Cable Tie", "Wall Plug",
             "Wood Screw", "Bracket", "Spring Clip", "Rivet", "Anchor", "Shim"]  # fmt: skip


def _importer_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    n = rng.randint(8, 12)
    blank = set(rng.sample(range(1, n), 1))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["sku", "name", "quantity", "price"])
    for i, name in enumerate(rng.sample(_PRODUCTS, n)):
        qty = "" if i in blank else str(rng.randint(0, 500))
        w.writerow([f"HW-{rng.randint(100, 999)}{i}", name, qty, f"{rng.uniform(0.05, 9):.2f}"])
    export = f"exports/stock-2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}.csv"
    files = {
        "app/__init__.py": "",
        "app/importer.py": _IMPORTER_PY,
        "data/sample.csv": ("\ufeff" + buf.getvalue()).encode("utf-8"),
        "logs/traceback.txt": _importer_traceback(export),
    }
    return Fixture(files), {"rows": n}


_IMPORTER_TEST = """\
import os
import tempfile
import unittest

from app.importer import load

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sample.csv")


class ImporterRegressionTest(unittest.TestCase):
    def write_csv(self, text):
        fd, path = tempfile.mkstemp(suffix=".csv")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        self.addCleanup(os.remove, path)
        return path

    def test_bom_header_and_empty_quantity(self):
        text = "\\ufeffsku,name,quantity,price\\nA-1,Widget,,2.50\\nA-2,Gadget,3,4.00\\n"
        path = self.write_csv(text)
        rows = load(path)
        self.assertEqual([r["sku"] for r in rows], ["A-1", "A-2"])
        self.assertIsNone(rows[0]["quantity"])
        self.assertEqual(rows[1]["quantity"], 3)

    def test_sample_file_imports(self):
        self.assertEqual(len(load(SAMPLE)), __ROWS__)


if __name__ == "__main__":
    unittest.main()
"""


def _importer_playbook(ctx: Ctx) -> Playbook:
    _tb, _src, run = yield [
        read("logs/traceback.txt", say="Reading the reported traceback"),
        read("app/importer.py", say="and the importer,"),
        sh("python3 app/importer.py data/sample.csv", say="and reproducing with the sample file."),
    ]
    reproduced = _last_line(run, r"Error")
    if not run.ok:
        # The header starts with a UTF-8 BOM, so the first column is '\ufeffsku'.
        yield edit(
            "app/importer.py",
            'encoding="utf-8")',
            'encoding="utf-8-sig")',
            say="Same KeyError: 'sku'. The file starts with a BOM; reading it as utf-8-sig.",
        )
        run = yield sh("python3 app/importer.py data/sample.csv", say="Running it again.")
    found = re.search(r"imported (\d+) rows", run.stdout)
    rows = found.group(1) if found else str(ctx.facts["rows"])
    regression = write(
        "tests/test_importer.py",
        _IMPORTER_TEST.replace("__ROWS__", rows),
        say="Adding a regression test with a BOM header and an empty quantity.",
    )
    if not run.ok:
        # Past the header, a row with an empty quantity hits int('').
        yield [
            edit(
                "app/importer.py",
                '"quantity": int(row["quantity"]),',
                '"quantity": int(row["quantity"]) if row["quantity"].strip() else None,',
                say="Now int('') on an empty quantity; treating a blank quantity as unknown "
                "(None).",
            ),
            regression,
        ]
    else:
        yield regression
    run = yield sh(
        "python3 app/importer.py data/sample.csv && python3 -m unittest -v tests.test_importer",
        say="Running the importer and the new test.",
    )
    yield Reply(
        f"Reproduced the crash ({reproduced}) and fixed two root causes in app/importer.py: the "
        "file is now read as utf-8-sig so the BOM no longer corrupts the 'sku' header, and an "
        "empty quantity becomes None instead of crashing int(). "
        f"{_last_line(run, 'imported')}. Regression test tests/test_importer.py: {_summary(run)}."
    )
    check = yield sh(
        'python3 -c "from app.importer import load; '
        "print([r for r in load('data/sample.csv') if r['quantity'] is None])\"",
        say="Looking at the row that used to crash.",
    )
    yield Reply(f"Checked: the blank-quantity row now imports as {check.stdout.strip()}.")


_IMPORTER_VERIFY = """
import csv, os, shutil, subprocess, sys, tempfile
ORIGINAL = __ORIGINAL__
sys.path.insert(0, ".")
try:
    from app.importer import load
    rows = load("data/sample.csv")
except Exception as exc:
    sys.exit(f"the importer still crashes on data/sample.csv: {exc!r}")
raw = list(csv.DictReader(open("data/sample.csv", encoding="utf-8-sig", newline="")))
if len(rows) != len(raw):
    sys.exit(f"imported {len(rows)} rows, the file has {len(raw)}")
for got, want in zip(rows, raw):
    if got.get("sku") != want["sku"].strip():
        sys.exit(f"bad sku in {got}")
    if want["quantity"].strip():
        if got["quantity"] != int(want["quantity"]):
            sys.exit(f"bad quantity in {got}")
    elif got["quantity"] not in (None, 0):
        sys.exit(f"blank quantity imported as {got['quantity']!r}")
if not os.path.exists("tests/test_importer.py"):
    sys.exit("tests/test_importer.py is missing")
py = sys.executable
new = subprocess.run([py, "-m", "unittest", "tests.test_importer"], capture_output=True, text=True)
if new.returncode != 0:
    sys.exit("the regression test fails on the fixed code:\\n" + new.stderr[-300:])
tmp = tempfile.mkdtemp()
shutil.copytree("tests", os.path.join(tmp, "tests"))
shutil.copytree("data", os.path.join(tmp, "data"))
os.makedirs(os.path.join(tmp, "app"))
open(os.path.join(tmp, "app", "__init__.py"), "w").close()
with open(os.path.join(tmp, "app", "importer.py"), "w") as f:
    f.write(ORIGINAL)
old = subprocess.run([py, "-m", "unittest", "tests.test_importer"], capture_output=True,
                     text=True, cwd=tmp)
shutil.rmtree(tmp)
if old.returncode == 0:
    sys.exit("the regression test also passes on the old code")
print("ok: importer fixed, regression test fails on old code and passes on new")
"""

# ---------------------------------------------------------------- code-implement-textstats-stubs

_TEXTSTATS_PY = '''\
"""Small text statistics helpers for the content dashboard."""

import re
from collections import Counter

WORD_RE = re.compile(r"[a-z0-9']+")


def word_count(text):
    """Return the number of words in `text`.

    Words are the matches of WORD_RE in the lower-cased text: runs of ASCII letters,
    digits and apostrophes (so "don't" is one word and "e-mail" is two).
    Empty or blank text has 0 words.
    """
    raise NotImplementedError


def top_ngrams(text, n=2, k=3):
    """Return the `k` most frequent word n-grams of `text` as (ngram, count) pairs.

    Words are found as in word_count; an n-gram is a tuple of `n` consecutive words.
    Pairs are ordered by descending count, and ties are broken alphabetically by the
    n-gram, so the result is deterministic. Text with fewer than `n` words gives [].
    """
    raise NotImplementedError


def readability(text):
    """Return the Flesch reading-ease score of `text`, rounded to one decimal.

        206.835 - 1.015 * (words / sentences) - 84.6 * (syllables / words)

    Words are found as in word_count. Sentences are the pieces of the text between
    '.', '!' and '?' characters that contain at least one word (at least 1).
    Syllables of a word: the number of groups of consecutive vowels (a, e, i, o, u, y),
    minus one if the word ends in 'e' but not in 'le'; at least 1 per word.
    Text without words scores 0.0.
    """
    raise NotImplementedError
'''

_TS_WORD_RE = re.compile(r"[a-z0-9']+")


def _ts_words(text: str) -> list[str]:
    return _TS_WORD_RE.findall(text.lower())


def _ts_top(text: str, n: int, k: int) -> list:
    words = _ts_words(text)
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return sorted(grams.items(), key=lambda item: (-item[1], item[0]))[:k]


def _ts_readability(text: str) -> float:
    words = _ts_words(text)
    if not words:
        return 0.0
    sentences = max(1, len([s for s in re.split(r"[.!?]", text) if _TS_WORD_RE.search(s.lower())]))
    syllables = 0
    for word in words:
        count = len(re.findall(r"[aeiouy]+", word))
        if word.endswith("e") and not word.endswith("le"):
            count -= 1
        syllables += max(1, count)
    score = 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (syllables / len(words))
    return round(score, 1)


_TS_POOL = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "while", "a", "little",
    "bird", "sings", "near", "old", "stone", "table", "and", "people", "don't", "notice",
    "simple", "gentle", "music", "at", "the", "edge", "of", "town",
]  # fmt: skip

_TEXTSTATS_TESTS = """\
import unittest

from lib.textstats import readability, top_ngrams, word_count

SAMPLE = __SAMPLE__


class WordCountTest(unittest.TestCase):
    def test_blank(self):
        self.assertEqual(word_count(""), 0)
        self.assertEqual(word_count("  \\n\\t"), 0)

    def test_apostrophes_and_hyphens(self):
        self.assertEqual(word_count("Don't e-mail me, OK?"), 5)

    def test_sample(self):
        self.assertEqual(word_count(SAMPLE), __WC__)


class TopNgramsTest(unittest.TestCase):
    def test_sample_bigrams(self):
        self.assertEqual(top_ngrams(SAMPLE, 2, 3), __BIGRAMS__)

    def test_ties_are_alphabetical(self):
        self.assertEqual(top_ngrams(__TIE_TEXT__, 1, 2), __TIE_WANT__)

    def test_text_shorter_than_n(self):
        self.assertEqual(top_ngrams("hello", 2), [])


class ReadabilityTest(unittest.TestCase):
    def test_no_words(self):
        self.assertEqual(readability(""), 0.0)

    def test_simple_sentence(self):
        self.assertEqual(readability("The cat sat on the mat."), __SIMPLE__)

    def test_sample(self):
        self.assertEqual(readability(SAMPLE), __RS__)
"""


def _textstats_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    sentences = []
    for _ in range(rng.randint(4, 6)):
        words = [rng.choice(_TS_POOL) for _ in range(rng.randint(5, 11))]
        if rng.random() < 0.5:  # repeat a phrase so some bigrams occur more than once
            words += ["the", "quick", "brown", "fox"]
        sentences.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", "..."]))
    sample = " ".join(sentences)
    # Two words tied on count, the alphabetically later one first in the text.
    hi = rng.choice(["zebra", "yak", "walrus", "otter", "moose"])
    lo = rng.choice(["alpha", "beta", "delta", "gamma"])
    tie_text = f"{hi} {lo} {hi} {lo} {rng.choice(['one', 'two', 'three'])}"
    tests = (
        _TEXTSTATS_TESTS.replace("__SAMPLE__", repr(sample))
        .replace("__WC__", str(len(_ts_words(sample))))
        .replace("__BIGRAMS__", repr(_ts_top(sample, 2, 3)))
        .replace("__TIE_TEXT__", repr(tie_text))
        .replace("__TIE_WANT__", repr(_ts_top(tie_text, 1, 2)))
        .replace("__SIMPLE__", repr(_ts_readability("The cat sat on the mat.")))
        .replace("__RS__", repr(_ts_readability(sample)))
    )
    files = {
        "lib/__init__.py": "",
        "lib/textstats.py": _TEXTSTATS_PY,
        "tests/__init__.py": "",
        "tests/test_textstats.py": tests,
    }
    return Fixture(files), {}


_STUB = '    """\n    raise NotImplementedError\n'
_WORD_COUNT_IMPL = '    """\n    return len(WORD_RE.findall(text.lower()))\n'
_TOP_NGRAMS_IMPL = '''\
    """
    words = WORD_RE.findall(text.lower())
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams.most_common(k)
'''
_READABILITY_IMPL = '''\
    """
    words = WORD_RE.findall(text.lower())
    if not words:
        return 0.0
    pieces = re.split(r"[.!?]", text)
    sentences = max(1, len([s for s in pieces if WORD_RE.search(s.lower())]))
    syllables = 0
    for word in words:
        count = len(re.findall(r"[aeiouy]+", word))
        if word.endswith("e") and not word.endswith("le"):
            count -= 1
        syllables += max(1, count)
    score = 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (syllables / len(words))
    return round(score, 1)
'''


def _textstats_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("lib/textstats.py", say="Reading the stubs and their docstrings."),
        read("tests/test_textstats.py", say="And the tests."),
    ]
    yield [
        edit(
            "lib/textstats.py",
            "    Empty or blank text has 0 words.\n" + _STUB,
            "    Empty or blank text has 0 words.\n" + _WORD_COUNT_IMPL,
            say="Implementing word_count with WORD_RE;",
        ),
        edit(
            "lib/textstats.py",
            "    n-gram, so the result is deterministic. Text with fewer than `n` words gives [].\n"
            + _STUB,
            "    n-gram, so the result is deterministic. Text with fewer than `n` words gives [].\n"
            + _TOP_NGRAMS_IMPL,
            say="top_ngrams: a Counter over word tuples;",
        ),
        edit(
            "lib/textstats.py",
            "    Text without words scores 0.0.\n" + _STUB,
            "    Text without words scores 0.0.\n" + _READABILITY_IMPL,
            say="readability: the Flesch formula with the docstring's syllable rule.",
        ),
    ]
    run = yield sh("python3 -m unittest tests.test_textstats", say="Running the tests.")
    if not run.ok:
        # Counter.most_common breaks ties by first occurrence, not alphabetically.
        yield edit(
            "lib/textstats.py",
            "    return grams.most_common(k)\n",
            "    return sorted(grams.items(), key=lambda item: (-item[1], item[0]))[:k]\n",
            say="most_common orders ties by first appearance; sorting ties alphabetically instead.",
        )
        run = yield sh("python3 -m unittest -v tests.test_textstats", say="Re-running.")
    yield Reply(
        "Implemented word_count, top_ngrams and readability in lib/textstats.py with re and "
        "collections only, following the docstrings (ties in top_ngrams are broken "
        f"alphabetically). python3 -m unittest tests.test_textstats: {_summary(run)}."
    )
    check = yield sh(
        'grep -c NotImplementedError lib/textstats.py; python3 -c "from lib.textstats import *; '
        "t = 'The cat sat. The cat ran!'; print(f'words={word_count(t)} "
        "top={top_ngrams(t, 2, 1)} score={readability(t)}')\"",
        say="Checking no stub is left and trying the functions by hand.",
    )
    lines = check.stdout.strip().splitlines() + ["?", "?"]
    yield Reply(
        f"Checked: {lines[0]} NotImplementedError left; on 'The cat sat. The cat ran!' the "
        f"functions give {lines[1]}."
    )


_TEXTSTATS_VERIFY = """
import ast, random, re, subprocess, sys
from collections import Counter
run = subprocess.run([sys.executable, "-m", "unittest", "tests.test_textstats"],
                     capture_output=True, text=True)
if run.returncode != 0:
    sys.exit("tests.test_textstats fails:\\n" + run.stderr[-400:])
src = open("lib/textstats.py").read()
if "NotImplementedError" in src:
    sys.exit("a stub is left")
for node in ast.walk(ast.parse(src)):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        for name in names:
            if name and name.split(".")[0] not in sys.stdlib_module_names:
                sys.exit(f"non-stdlib import {name}")
W = re.compile(r"[a-z0-9']+")
def words(t):
    return W.findall(t.lower())
def top(t, n, k):
    ws = words(t)
    grams = Counter(tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))
    return sorted(grams.items(), key=lambda item: (-item[1], item[0]))[:k]
def flesch(t):
    ws = words(t)
    if not ws:
        return 0.0
    sents = max(1, len([s for s in re.split(r"[.!?]", t) if W.search(s.lower())]))
    syl = 0
    for w in ws:
        c = len(re.findall(r"[aeiouy]+", w))
        if w.endswith("e") and not w.endswith("le"):
            c -= 1
        syl += max(1, c)
    return round(206.835 - 1.015 * (len(ws) / sents) - 84.6 * (syl / len(ws)), 1)
sys.path.insert(0, ".")
from lib.textstats import readability, top_ngrams, word_count
rng = random.Random(3)
pool = "yes no maybe apple table little queue rhythm bake don't x-ray idea zoo".split()
for _ in range(60):
    marks = ["", "", ",", ".", "!", "?"]
    parts = [rng.choice(pool) + rng.choice(marks) for _ in range(rng.randint(0, 25))]
    text = " ".join(parts)
    n, k = rng.randint(1, 3), rng.randint(1, 4)
    if word_count(text) != len(words(text)):
        sys.exit(f"word_count({text!r}) is wrong")
    if top_ngrams(text, n, k) != top(text, n, k):
        sys.exit(f"top_ngrams({text!r}, {n}, {k}) is wrong")
    if readability(text) != flesch(text):
        sys.exit(f"readability({text!r}) is wrong")
print("ok: stubs implemented, tests pass")
"""

# ---------------------------------------------------------------- code-fix-flaky-cache-test

_LRU_PY = '''\
"""A small LRU cache whose entries expire after a time-to-live."""

import time
from collections import OrderedDict


class LRUCache:
    def __init__(self, capacity, ttl, clock=time.time):
        self.capacity = capacity
        self.ttl = ttl
        self.clock = clock
        self._data = OrderedDict()

    def set(self, key, value):
        self._data[key] = (value, self._now() + self.ttl)
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def _now(self):
        return int(self.clock())

    def get(self, key, default=None):
        item = self._data.get(key)
        if item is None:
            return default
        value, expires = item
        if self._now() >= expires:
            del self._data[key]
            return default
        self._data.move_to_end(key)
        return value

    def __len__(self):
        return len(self._data)
'''

_CACHE_TESTS = """\
import time
import unittest

from cache.lru import LRUCache

# The cache's clock runs SPEEDUP times faster than wall time, so a 1 s TTL takes 0.1 s to
# test; sleeps below are cache seconds divided by SPEEDUP.
SPEEDUP = 10


def fast_clock():
    return time.time() * SPEEDUP


class LRUCacheTest(unittest.TestCase):
    def test_evicts_least_recently_used(self):
        cache = LRUCache(2, ttl=60)
        cache.set("__K1__", 1)
        cache.set("__K2__", 2)
        cache.get("__K1__")
        cache.set("__K3__", 3)
        self.assertIsNone(cache.get("__K2__"))
        self.assertEqual(cache.get("__K1__"), 1)

    def test_entry_survives_within_ttl(self):
        cache = LRUCache(4, ttl=1, clock=fast_clock)
        cache.set("__K1__", "v")
        time.sleep(0.2 / SPEEDUP)
        self.assertEqual(cache.get("__K1__"), "v")

    def test_entry_expires_after_ttl(self):
        cache = LRUCache(4, ttl=1, clock=fast_clock)
        cache.set("__K1__", "v")
        time.sleep(1.05 / SPEEDUP)
        self.assertIsNone(cache.get("__K1__"))


if __name__ == "__main__":
    unittest.main()
"""


def _cache_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    keys = rng.sample(["user:1", "user:2", "session", "token", "profile", "cart", "prefs"], 3)
    tests = _CACHE_TESTS
    for n, key in enumerate(keys, 1):
        tests = tests.replace(f"__K{n}__", key)
    files = {
        "cache/__init__.py": "",
        "cache/lru.py": _LRU_PY,
        "tests/__init__.py": "",
        "tests/test_cache.py": tests,
    }
    return Fixture(files), {}


_REPEAT_SH = """\
#!/bin/bash
# Run tests/test_cache.py N times in a row (default 20); stop at the first failure.
n=${1:-20}
mkdir -p out
: > out/flaky_runs.log
for i in $(seq 1 "$n"); do
  if python3 -m unittest tests.test_cache > /tmp/cache_run.txt 2>&1; then
    echo "run $i: ok" >> out/flaky_runs.log
  else
    echo "run $i: FAILED" >> out/flaky_runs.log
    tail -n 6 /tmp/cache_run.txt
    echo "failed on run $i of $n"
    exit 1
  fi
done
echo "$n consecutive passing runs" | tee -a out/flaky_runs.log
"""

_LRU_BOUNDARY_OLD = """\
    def _now(self):
        return int(self.clock())

    def get(self, key, default=None):
        item = self._data.get(key)
        if item is None:
            return default
        value, expires = item
        if self._now() > expires:
"""
_LRU_BOUNDARY_NEW = """\
    def _now(self):
        return self.clock()  # keep sub-second precision; int() made expiry jump at boundaries

    def get(self, key, default=None):
        item = self._data.get(key)
        if item is None:
            return default
        value, expires = item
        if self._now() >= expires:
"""


def _cache_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("cache/lru.py", say="Reading the cache."),
        read("tests/test_cache.py", say="And the timing-sensitive tests."),
    ]
    yield [
        write("run_many.sh", _REPEAT_SH, say="Writing a script that runs the suite N times."),
        edit(
            "cache/lru.py",
            "        if self._now() >= expires:",
            "        if self._now() > expires:",
            say="An entry read right at its expiry second counts as expired; making the check "
            "strict.",
        ),
    ]
    run = yield sh("bash run_many.sh 20", say="Running the suite 20 times.", timeout_s=60)
    if not run.ok:
        # The real bug is int(): a 1 s TTL set at 12.9 s expires at 13 s; a strict check
        # instead keeps entries up to two seconds and breaks the expiry test.
        yield edit(
            "cache/lru.py",
            _LRU_BOUNDARY_OLD,
            _LRU_BOUNDARY_NEW,
            say="That broke expiry instead. The root cause is int() truncating the clock; "
            "keeping fractional seconds and restoring >=.",
        )
        run = yield sh("bash run_many.sh 20", say="20 runs again.", timeout_s=60)
    yield Reply(
        "Root cause: LRUCache._now() truncated the clock to whole seconds, so an entry with "
        "a 1 s TTL set at x.9 s expired 0.1 s later whenever the test crossed a second boundary "
        "of the cache's clock. "
        "cache/lru.py now keeps fractional seconds (tests untouched). "
        f"{_last_line(run, 'consecutive')}; the log is out/flaky_runs.log."
    )
    check = yield sh(
        "grep -c ': ok$' out/flaky_runs.log; grep -c FAILED out/flaky_runs.log; "
        "grep -n 'def _now' -A 1 cache/lru.py",
        say="Counting the passing runs in the log.",
    )
    counts = check.stdout.split()
    yield Reply(
        f"Checked: out/flaky_runs.log has {counts[0] if counts else '?'} passing runs and "
        f"{counts[1] if len(counts) > 1 else '?'} failures; _now() no longer calls int()."
    )


_CACHE_VERIFY = """
import os, re, sys, time
if not os.path.exists("out/flaky_runs.log"):
    sys.exit("out/flaky_runs.log is missing")
log = open("out/flaky_runs.log").read()
ok_runs = [int(n) for n in re.findall(r"run (\\d+): ok", log)]
if "FAIL" in log.upper() or ok_runs != list(range(1, len(ok_runs) + 1)) or len(ok_runs) < 20:
    sys.exit("out/flaky_runs.log does not show 20 consecutive passing runs")
tests = open("tests/test_cache.py").read()
needles = ("SPEEDUP = 10", "time.sleep(0.2 / SPEEDUP)", "time.sleep(1.05 / SPEEDUP)",
           "ttl=1, clock=fast_clock", "assertIsNone")
for needle in needles:
    if needle not in tests:
        sys.exit("tests/test_cache.py was loosened")
now = [1000.9]
time.time = lambda: now[0]
time.monotonic = lambda: now[0]
sys.path.insert(0, ".")
from cache.lru import LRUCache
cache = LRUCache(4, 1)
cache.set("k", "v")
now[0] = 1001.2
if cache.get("k") != "v":
    sys.exit("an entry still expires early when a second boundary is crossed")
now[0] = 1001.95
if cache.get("k") is not None:
    sys.exit("an entry no longer expires after its ttl")
lru = LRUCache(2, 60)
lru.set("a", 1); lru.set("b", 2); lru.get("a"); lru.set("c", 3)
if lru.get("b") is not None or lru.get("a") != 1:
    sys.exit("LRU eviction broke")
print(f"ok: root cause fixed, {len(ok_runs)} consecutive passing runs logged")
"""

# ---------------------------------------------------------------- code-verify-watch-rebuild

_WATCH_PY = '''\
#!/usr/bin/env python3
"""Rebuild site/ from templates/ whenever a template changes (polls every 0.1 s)."""

import os
import sys
import time

TEMPLATES = "templates"
SITE = "site"


def render(path):
    """A template's first line is 'title: ...'; the rest is HTML with {{title}} slots."""
    with open(path) as f:
        first, _, body = f.read().partition("\\n")
    title = first.removeprefix("title:").strip()
    return body.replace("{{title}}", title)


def build(name):
    os.makedirs(SITE, exist_ok=True)
    with open(os.path.join(SITE, name), "w") as f:
        f.write(render(os.path.join(TEMPLATES, name)))


def snapshot():
    return {
        name: os.stat(os.path.join(TEMPLATES, name)).st_mtime_ns
        for name in os.listdir(TEMPLATES)
        if name.endswith(".html")
    }


def changed(before, after):
    """Names of templates whose mtime differs between two snapshots."""
    names = []
    for name in sorted(after):
        if after[name] != before.get(name):
            names.append(name)
        return names
    return names


def main(interval=0.1):
    seen = snapshot()
    print(f"watching {len(seen)} templates in {TEMPLATES}/", flush=True)
    while True:
        time.sleep(interval)
        now = snapshot()
        for name in changed(seen, now):
            build(name)
            print(f"rebuilt {SITE}/{name}", flush=True)
        seen = now


if __name__ == "__main__":
    sys.exit(main())
'''

_PAGE = """\
title: {title}
<!doctype html>
<html><head><title>{{{{title}}}}</title></head>
<body><h1>{{{{title}}}}</h1><p>{text}</p></body></html>
"""


def _render_page(template: str) -> str:
    first, _, body = template.partition("\n")
    return body.replace("{{title}}", first.removeprefix("title:").strip())


def _watch_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    pages = {
        "about.html": (rng.choice(["About", "About Us", "Who We Are"]), "We make small tools."),
        "contact.html": (rng.choice(["Contact", "Get In Touch"]), "Write to hello@example.org."),
        "index.html": (rng.choice(["Home", "Welcome"]), "Fresh releases every Friday."),
    }
    files = {"tools/watch_build.py": _WATCH_PY}
    for name, (title, text) in pages.items():
        template = _PAGE.format(title=title, text=text)
        files[f"templates/{name}"] = template
        files[f"site/{name}"] = _render_page(template)
    return Fixture(files), {}


_WATCH_CHANGED_OLD = """\
            names.append(name)
        return names
    return names
"""
_WATCH_CHANGED_NEW = """\
            names.append(name)
    return names
"""
_WATCH_RERUN = """\
python3 tools/watch_build.py > /tmp/watch.log 2>&1 & pid=$!
for i in $(seq 100); do grep -q watching /tmp/watch.log && break; sleep 0.05; done
touch templates/index.html
sed -i '1s/$/ (updated)/' templates/contact.html
for i in $(seq 100); do [ "$(grep -c rebuilt /tmp/watch.log)" -ge 2 ] && break; sleep 0.05; done
kill $pid; wait $pid 2>/dev/null
cat /tmp/watch.log
grep -H '<h1>' site/index.html site/contact.html
grep -q '(updated)</h1>' site/index.html && grep -q '(updated)</h1>' site/contact.html"""


def _watch_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("tools/watch_build.py", say="Reading the watcher"),
        sh("ls templates site && head -n 1 templates/*.html", say="and looking at the templates."),
    ]
    job = yield start("python3 tools/watch_build.py", say="Starting the watcher in the background.")
    jid = job.extras["job"]
    check = yield sh(
        "sleep 0.5 && sed -i '1s/$/ (updated)/' templates/index.html && sleep 0.6 && "
        "grep -H '<h1>' site/index.html && grep -q '(updated)</h1>' site/index.html",
        say="Editing index.html's title and checking site/ a moment later.",
    )
    stop = [
        output(jid, say="Reading the watcher's output"),
        kill(jid, say="and stopping this watcher."),
    ]
    if not check.ok:
        # changed() returns inside the loop, so only the first template (about.html) is checked.
        stop.append(
            edit(
                "tools/watch_build.py",
                _WATCH_CHANGED_OLD,
                _WATCH_CHANGED_NEW,
                say="No rebuild happened: changed() returns after the first template. Moving "
                "the return out.",
            )
        )
    log, *_ = yield stop
    rerun = yield sh(
        _WATCH_RERUN,
        say="Running the fixed watcher, touching index.html and editing contact.html.",
    )
    rebuilt = [ln for ln in rerun.stdout.splitlines() if ln.startswith("rebuilt")]
    yield Reply(
        "The watcher missed edits because changed() in tools/watch_build.py returned inside its "
        "loop, so only the first template (about.html) was ever compared; the first run printed "
        f"only '{log.stdout.strip()}'. After moving the return out of the loop the watcher "
        f"rebuilt {', '.join(r.split()[-1] for r in rebuilt) or 'nothing'}, and no watcher is "
        "left running."
    )
    final = yield sh(
        "ps -eo args | grep -c '[w]atch_build' ; "
        "for f in templates/*.html; do head -n 1 $f; "
        "grep -o '<h1>.*</h1>' site/${f#templates/}; done",
        say="Checking no watcher runs and every page matches its template.",
    )
    yield Reply(
        f"Checked: {final.stdout.split()[0] if final.stdout.split() else '?'} watcher processes "
        "are running, and each page in site/ carries its template's current title."
    )


_WATCH_VERIFY = """
import os, shutil, subprocess, sys, tempfile, time
def render(text):
    first, _, body = text.partition("\\n")
    return body.replace("{{title}}", first.removeprefix("title:").strip())
for name in sorted(os.listdir("templates")):
    if not name.endswith(".html"):
        continue
    site = os.path.join("site", name)
    want = render(open(os.path.join("templates", name)).read())
    if not os.path.exists(site) or open(site).read() != want:
        sys.exit(f"site/{name} is stale")
tmp = tempfile.mkdtemp()
os.makedirs(os.path.join(tmp, "tools"))
os.makedirs(os.path.join(tmp, "templates"))
shutil.copy("tools/watch_build.py", os.path.join(tmp, "tools"))
for name in ("a.html", "b.html", "c.html"):
    with open(os.path.join(tmp, "templates", name), "w") as f:
        f.write(f"title: T {name}\\n<h1>{{{{title}}}}</h1>\\n")
proc = subprocess.Popen([sys.executable, "tools/watch_build.py"], cwd=tmp,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    out = os.path.join(tmp, "site", "c.html")
    start = time.time()
    deadline, next_edit, edits = start + 1.5, start + 0.3, 0
    while time.time() < deadline:
        if time.time() >= next_edit:  # edit again in case the watcher was not polling yet
            edits += 1
            with open(os.path.join(tmp, "templates", "c.html"), "w") as f:
                f.write(f"title: Changed {edits}\\n<h1>{{{{title}}}}</h1>\\n")
            next_edit = time.time() + 0.4
        if os.path.exists(out) and "<h1>Changed " in open(out).read():
            break
        time.sleep(0.05)
    else:
        sys.exit("the watcher does not rebuild when a template other than the first changes")
finally:
    proc.kill()
    proc.wait()
    shutil.rmtree(tmp)
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"watch_build" in cmd and int(pid) != os.getpid():
        sys.exit("a watcher is still running")
print("ok: change detection fixed, site/ up to date, watcher stopped")
"""

# ---------------------------------------------------------------- code-migrate-settings-to-json

_SETTINGS_PY = '''\
"""Application settings, read from config/settings.ini."""

import configparser
import os

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def load_ini(path):
    """Read the legacy INI file into typed settings."""
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise FileNotFoundError(path)
    db, server = parser["db"], parser["server"]
    return {
        "db": {
            "host": db.get("host"),
            "port": db.getint("port"),
            "name": db.get("name"),
            "pool_size": db.getint("pool_size"),
        },
        "server": {
            "bind": server.get("bind"),
            "port": server.getint("port"),
            "debug": server.getboolean("debug"),
            "workers": server.getint("workers"),
            "allowed_hosts": [
                h.strip() for h in server.get("allowed_hosts").split(",") if h.strip()
            ],
        },
    }


def load(config_dir=CONFIG_DIR):
    """Load this installation's settings."""
    return load_ini(os.path.join(config_dir, "settings.ini"))
'''

_SETTINGS_INI = """\
; legacy settings, still shipped by older installs
[db]
host = {db_host}
port = {db_port}
name = {db_name}
pool_size = {pool}

[server]
bind = {bind}
port = {port}
debug = {debug}
workers = {workers}
allowed_hosts = {hosts}
"""

_SETTINGS_TESTS = """\
import os
import unittest

from app import settings

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


class IniSettingsTest(unittest.TestCase):
    def setUp(self):
        self.s = settings.load_ini(os.path.join(CONFIG, "settings.ini"))

    def test_db_port_is_int(self):
        self.assertEqual(self.s["db"]["port"], __DB_PORT__)

    def test_debug_is_bool(self):
        self.assertIs(self.s["server"]["debug"], __DEBUG__)

    def test_allowed_hosts_is_a_list(self):
        self.assertEqual(self.s["server"]["allowed_hosts"], __HOSTS__)

    def test_load_uses_installation_config(self):
        self.assertEqual(settings.load(), self.s)


if __name__ == "__main__":
    unittest.main()
"""


def _settings_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    debug_word, debug = rng.choice([("true", True), ("no", False), ("off", False), ("yes", True)])
    hosts = rng.sample(["app.example.com", "api.example.com", "localhost", "admin.example.com"], 2)
    db_port = rng.choice([5432, 5433, 6432])
    ini = _SETTINGS_INI.format(
        db_host=rng.choice(["db.internal", "10.0.3.7", "postgres"]),
        db_port=db_port,
        db_name=rng.choice(["shop", "orders", "inventory"]),
        pool=rng.randint(2, 20),
        bind=rng.choice(["127.0.0.1", "0.0.0.0"]),
        port=rng.choice([8000, 8080, 9000]),
        debug=debug_word,
        workers=rng.randint(1, 8),
        hosts=", ".join(hosts),
    )
    tests = (
        _SETTINGS_TESTS.replace("__DB_PORT__", str(db_port))
        .replace("__DEBUG__", str(debug))
        .replace("__HOSTS__", repr(hosts))
    )
    files = {
        "app/__init__.py": "",
        "app/settings.py": _SETTINGS_PY,
        "config/settings.ini": ini,
        "tests/test_settings.py": tests,
    }
    return Fixture(files), {}


_SETTINGS_LOAD_OLD = '''\
def load(config_dir=CONFIG_DIR):
    """Load this installation's settings."""
    return load_ini(os.path.join(config_dir, "settings.ini"))
'''
_SETTINGS_LOAD_NEW = '''\
def load_json(path):
    """Read settings.json; its values are already typed."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load(config_dir=CONFIG_DIR):
    """Load this installation's settings: settings.json if present, else settings.ini."""
    json_path = os.path.join(config_dir, "settings.json")
    if os.path.exists(json_path):
        return load_json(json_path)
    return load_ini(os.path.join(config_dir, "settings.ini"))
'''
_SETTINGS_TESTS_ADD = """\


class JsonSettingsTest(unittest.TestCase):
    def test_json_matches_ini(self):
        self.assertEqual(
            settings.load_json(os.path.join(CONFIG, "settings.json")),
            settings.load_ini(os.path.join(CONFIG, "settings.ini")),
        )

    def test_prefers_json(self):
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(os.path.join(CONFIG, "settings.ini"), d)
            with open(os.path.join(d, "settings.json"), "w") as f:
                json.dump({"db": {"port": 1}, "server": {}}, f)
            self.assertEqual(settings.load(d)["db"]["port"], 1)

    def test_falls_back_to_ini(self):
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(os.path.join(CONFIG, "settings.ini"), d)
            ini = settings.load_ini(os.path.join(CONFIG, "settings.ini"))
            self.assertEqual(settings.load(d), ini)
"""

_INI2JSON_V1 = '''\
"""Convert config/settings.ini into config/settings.json."""

import configparser
import json

parser = configparser.ConfigParser()
parser.read("config/settings.ini")
data = {section: dict(parser[section]) for section in parser.sections()}
with open("config/settings.json", "w") as f:
    json.dump(data, f, indent=2)
    f.write("\\n")
print(f"wrote config/settings.json ({len(data)} sections)")
'''
_INI2JSON_V2 = '''\
"""Convert config/settings.ini into config/settings.json, with the loader's types."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.settings import load_ini  # noqa: E402

data = load_ini("config/settings.ini")
with open("config/settings.json", "w") as f:
    json.dump(data, f, indent=2)
    f.write("\\n")
print(f"wrote config/settings.json ({len(data)} sections, typed)")
'''


def _settings_playbook(ctx: Ctx) -> Playbook:
    src, tests = yield [
        read("app/settings.py", say="Reading the settings loader."),
        sh("cat tests/test_settings.py && cat config/settings.ini", say="The tests and the INI."),
    ]
    test_text = tests.stdout.split("; legacy settings")[0]
    new_src = (
        src.stdout.replace("config/settings.ini.", "config/settings.json or settings.ini.")
        .replace("import configparser\n", "import configparser\nimport json\n")
        .replace(_SETTINGS_LOAD_OLD, _SETTINGS_LOAD_NEW)
    )
    new_tests = test_text.replace(
        "import os\n", "import json\nimport os\nimport shutil\nimport tempfile\n"
    ).replace(
        '\n\nif __name__ == "__main__":', _SETTINGS_TESTS_ADD + '\n\nif __name__ == "__main__":'
    )
    yield [
        patch(
            _udiff("app/settings.py", src.stdout, new_src)
            + _udiff("tests/test_settings.py", test_text, new_tests),
            say="Patching load() to prefer settings.json and adding tests for both paths,",
        ),
        write("tools/ini2json.py", _INI2JSON_V1, say="plus a one-off converter for the INI file."),
    ]
    run = yield sh(
        "python3 tools/ini2json.py && python3 -m unittest discover tests",
        say="Converting and running the tests.",
    )
    if not run.ok:
        # configparser hands back strings: the JSON has "5432" and "true", not 5432 and true.
        yield write(
            "tools/ini2json.py",
            _INI2JSON_V2,
            say="The JSON holds strings, not numbers and booleans; converting through "
            "load_ini's typed values instead.",
        )
        run = yield sh(
            "python3 tools/ini2json.py && python3 -m unittest discover -v tests",
            say="Converting again and re-running the tests.",
        )
    yield Reply(
        "app/settings.py now loads config/settings.json when it exists and falls back to the "
        "legacy config/settings.ini otherwise (new load_json(); load_ini() unchanged). "
        f"config/settings.json was generated from the INI with typed values "
        f"({_last_line(run, 'wrote')}); tests cover JSON, fallback and equality: {_summary(run)}."
    )
    check = yield sh(
        "python3 -c \"import json; d = json.load(open('config/settings.json')); "
        "print(repr(d['db']['port']), repr(d['server']['debug']))\" && "
        'python3 -c "from app import settings; '
        "print(settings.load() == settings.load_ini('config/settings.ini'))\"",
        say="Checking the JSON's types and comparing what both paths return.",
    )
    out = check.stdout.split() + ["?", "?", "?"]
    yield Reply(
        f"Checked: config/settings.json has db.port = {out[0]} and server.debug = {out[1]} "
        f"(real types), and load() via JSON equals load_ini() on the INI: {out[2]}."
    )


_SETTINGS_VERIFY = """
import configparser, json, os, shutil, subprocess, sys, tempfile
cp = configparser.ConfigParser()
cp.read("config/settings.ini")
db, server = cp["db"], cp["server"]
want = {
    "db": {"host": db.get("host"), "port": db.getint("port"), "name": db.get("name"),
           "pool_size": db.getint("pool_size")},
    "server": {"bind": server.get("bind"), "port": server.getint("port"),
               "debug": server.getboolean("debug"), "workers": server.getint("workers"),
               "allowed_hosts": [h.strip() for h in server.get("allowed_hosts").split(",")
                                 if h.strip()]},
}
if not os.path.exists("config/settings.json"):
    sys.exit("config/settings.json is missing")
try:
    got = json.load(open("config/settings.json"))
except ValueError as exc:
    sys.exit(f"config/settings.json is not valid JSON: {exc}")
if got != want:
    sys.exit("config/settings.json does not hold the INI's typed values")
py = sys.executable
run = subprocess.run([py, "-m", "unittest", "discover", "tests"], capture_output=True, text=True)
if run.returncode != 0:
    sys.exit("the tests fail:\\n" + run.stderr[-400:])
if "json" not in open("tests/test_settings.py").read():
    sys.exit("tests/test_settings.py does not cover the JSON path")
probe = "import json; from app import settings; print(json.dumps(settings.load()))"
def load_in(config_files):
    tmp = tempfile.mkdtemp()
    shutil.copytree("app", os.path.join(tmp, "app"))
    os.makedirs(os.path.join(tmp, "config"))
    for name, text in config_files.items():
        with open(os.path.join(tmp, "config", name), "w") as f:
            f.write(text)
    r = subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp)
    shutil.rmtree(tmp)
    if r.returncode != 0:
        sys.exit("load() fails: " + r.stderr[-300:])
    return json.loads(r.stdout)
ini = open("config/settings.ini").read()
if load_in({"settings.ini": ini}) != want:
    sys.exit("the INI fallback does not give the same values")
alt = json.loads(json.dumps(want))
alt["db"]["port"] = 1
if load_in({"settings.ini": ini, "settings.json": json.dumps(alt)})["db"]["port"] != 1:
    sys.exit("load() does not prefer settings.json")
print("ok: JSON preferred, INI fallback identical, tests pass")
"""

# ---------------------------------------------------------------- code-fix-job-worker-retries

_WORKER_PY = '''\
"""Job worker: polls the jobs table of a sqlite queue and runs what it finds."""

import json
import sqlite3
import sys
import time

MAX_ATTEMPTS = 3
RETRY_DELAY_S = 0.1
IDLE_DELAY_S = 0.5


def run_job(kind, payload):
    args = json.loads(payload)
    if kind == "sum":
        return sum(args)
    if kind == "upper":
        return args.upper()
    if kind == "divide":
        return args[0] / args[1]
    raise ValueError(f"unknown job kind {kind!r}")


def next_job(conn):
    return conn.execute(
        "SELECT id, kind, payload, attempts FROM jobs"
        " WHERE status IN ('queued', 'retry') ORDER BY id LIMIT 1"
    ).fetchone()


def work_once(conn):
    job = next_job(conn)
    if job is None:
        return False
    job_id, kind, payload, attempts = job
    attempts += 1
    try:
        result = run_job(kind, payload)
    except Exception as exc:
        status = "dead" if attempts >= MAX_ATTEMPTS else "retry"
        conn.execute(
            "UPDATE jobs SET status = ?, last_error = ? WHERE id = ?",
            (status, repr(exc), job_id),
        )
        conn.commit()
        print(f"job {job_id} ({kind}) failed on attempt {attempts}: {exc!r} -> {status}",
              flush=True)
        time.sleep(RETRY_DELAY_S)
    else:
        conn.execute(
            "UPDATE jobs SET status = 'done', attempts = ?, result = ? WHERE id = ?",
            (attempts, json.dumps(result), job_id),
        )
        conn.commit()
        print(f"job {job_id} ({kind}) done: {result!r}", flush=True)
    return True


def main(path="queue.db"):
    conn = sqlite3.connect(path)
    print(f"worker polling {path}", flush=True)
    while True:
        if not work_once(conn):
            time.sleep(IDLE_DELAY_S)


if __name__ == "__main__":
    main(*sys.argv[1:])
'''

_QUEUE_SQL = """\
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    last_error TEXT
);
"""


def _worker_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    bad = rng.choice([2, 3])
    kinds = rng.sample(["sum", "upper", "divide", "sum"], 4)
    jobs = []
    for job_id in range(1, 6):
        if job_id == bad:
            jobs.append(("divide", json.dumps([rng.randint(10, 99), 0])))
            continue
        kind = kinds.pop()
        if kind == "sum":
            payload = json.dumps(rng.sample(range(1, 50), 4))
        elif kind == "upper":
            payload = json.dumps(rng.choice(["invoice ready", "ship order", "reindex"]))
        else:
            payload = json.dumps([rng.randint(10, 99), rng.randint(1, 9)])
        jobs.append((kind, payload))
    sql = _QUEUE_SQL + "".join(
        f"INSERT INTO jobs (id, kind, payload) VALUES ({i}, '{kind}', '{payload}');\n"
        for i, (kind, payload) in enumerate(jobs, 1)
    )
    files = {"worker/run.py": _WORKER_PY, "seed.sql": sql}
    return Fixture(files, setup=("sqlite3 queue.db < seed.sql && rm seed.sql",)), {"bad": bad}


_JOBS_QUERY = "sqlite3 -header -column queue.db 'SELECT id, kind, status, attempts FROM jobs'"


def _worker_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("worker/run.py", say="Reading the worker."),
        sh(_JOBS_QUERY, say="And the queue."),
    ]
    fg = yield sh(
        "python3 worker/run.py queue.db", say="Running the worker on the queue.", timeout_s=1
    )
    attempts = re.findall(r"failed on attempt (\d+)", fg.stdout)
    if fg.timed_out or not fg.ok:
        # The worker polls forever, so the call times out; its log shows "attempt 1" over and
        # over: the incremented counter is never written back on failure.
        yield edit(
            "worker/run.py",
            '            "UPDATE jobs SET status = ?, last_error = ? WHERE id = ?",\n'
            "            (status, repr(exc), job_id),",
            '            "UPDATE jobs SET status = ?, attempts = ?, last_error = ? WHERE id = ?",\n'
            "            (status, attempts, repr(exc), job_id),",
            say=f"It never exits and logged 'attempt 1' {len(attempts)} times: attempts is not "
            "saved on failure. Persisting it.",
        )
    job = yield start(
        "python3 worker/run.py queue.db", say="Running the fixed worker in the background."
    )
    jid = job.extras["job"]
    table = yield sh(
        'for i in $(seq 50); do [ "$(sqlite3 queue.db "SELECT COUNT(*) FROM jobs WHERE status '
        "IN ('queued', 'retry')\")\" = 0 ] && break; sleep 0.1; done; " + _JOBS_QUERY,
        say="Letting it work until nothing is queued or waiting for a retry, then checking.",
    )
    log, _ = yield [
        output(jid, say="Reading the worker's log"),
        kill(jid, say="and stopping the worker."),
    ]
    dead = [ln.split()[0] for ln in table.stdout.splitlines() if " dead " in f" {ln} "]
    done = [ln.split()[0] for ln in table.stdout.splitlines() if " done " in f" {ln} "]
    gave_up = _last_line(log, r"-> dead")
    yield Reply(
        "Fixed worker/run.py: on failure it now writes the incremented attempts back to the jobs "
        "table, so MAX_ATTEMPTS = 3 takes effect (before, every retry started again at attempt 1 "
        f"and the failing job blocked the queue). Test run: job {', '.join(dead) or '?'} is dead "
        f"after 3 attempts ({gave_up}); jobs {', '.join(done)} are done. The worker is stopped."
    )
    check = yield sh(
        'sqlite3 queue.db "SELECT status, COUNT(*), MAX(attempts) FROM jobs GROUP BY status" '
        "&& ! pgrep -f '[w]orker/run\\.py' && echo 'no worker running'",
        say="Summarising the final states and making sure no worker is left.",
    )
    states = [ln.split("|") for ln in check.stdout.splitlines() if ln.count("|") == 2]
    yield Reply(
        "Checked: final states are "
        + ", ".join(f"{n} {status} (max {top} attempts)" for status, n, top in states)
        + f", and {'no worker process is running' if check.ok else 'a worker may still run'}."
    )


_WORKER_VERIFY = """
import json, os, shutil, sqlite3, subprocess, sys, tempfile, time
conn = sqlite3.connect("queue.db")
rows = conn.execute("SELECT id, kind, payload, status, attempts FROM jobs ORDER BY id").fetchall()
conn.close()
for job_id, kind, payload, status, attempts in rows:
    failing = kind == "divide" and json.loads(payload)[1] == 0
    if failing and (status, attempts) != ("dead", 3):
        sys.exit(f"job {job_id} should be dead after 3 attempts, is {status}/{attempts}")
    if not failing and status != "done":
        sys.exit(f"job {job_id} should be done, is {status}")
tmp = tempfile.mkdtemp()
shutil.copy("worker/run.py", os.path.join(tmp, "run.py"))
db = os.path.join(tmp, "q.db")
c = sqlite3.connect(db)
c.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,"
          " status TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,"
          " result TEXT, last_error TEXT)")
c.execute("INSERT INTO jobs (id, kind, payload)"
          " VALUES (1, 'divide', '[1, 0]'), (2, 'sum', '[1, 2]')")
c.commit()
c.close()
proc = subprocess.Popen([sys.executable, "run.py", db], cwd=tmp,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline, states = time.time() + 6, []
    while time.time() < deadline:
        time.sleep(0.1)
        c = sqlite3.connect(db)
        states = c.execute("SELECT status, attempts FROM jobs ORDER BY id").fetchall()
        c.close()
        if states[0][0] == "dead" and states[1][0] == "done":
            break
finally:
    proc.kill()
    proc.wait()
    shutil.rmtree(tmp)
if states != [("dead", 3), ("done", 1)]:
    sys.exit(f"a fresh queue with one failing job ends as {states}, not dead/3 + done")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"worker/run.py" in cmd:
        sys.exit("the worker is still running")
print("ok: failing job dead after 3 attempts, others done, worker stopped")
"""

# ---------------------------------------------------------------- code-make-package-runnable

_LOGTOOL_INIT = '"""logtool: summarise application logs."""\n\n__version__ = "0.3.0"\n'
_LOGTOOL_PARSE = r'''"""Parse application log lines."""

import re

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LINE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (\w+) ([\w.-]+): (.*)$")


def parse_line(line):
    """Return (timestamp, level, component, message), or None for a malformed line."""
    m = LINE_RE.match(line.rstrip("\n"))
    if not m or m.group(2) not in LEVELS:
        return None
    return m.groups()


def parse_file(path):
    with open(path, encoding="utf-8") as f:
        return [rec for rec in map(parse_line, f) if rec]
'''
_LOGTOOL_SUMMARIZE = '''\
"""Summaries over parsed log records."""

from collections import Counter

from parse import LEVELS


def summarize(records):
    levels = Counter(r[1] for r in records)
    return {
        "total": len(records),
        "levels": {level: levels.get(level, 0) for level in LEVELS},
        "components": Counter(r[2] for r in records),
    }


def format_summary(summary, top=3):
    lines = [f"records: {summary['total']}"]
    lines += [f"{level:<8} {count}" for level, count in summary["levels"].items()]
    ranked = sorted(summary["components"].items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    lines.append("top components: " + ", ".join(f"{name} ({n})" for name, n in ranked))
    return "\\n".join(lines)
'''
_LOGTOOL_CLI = '''\
"""Command line entry point for logtool."""

import argparse
import sys

from parse import parse_file
from summarize import format_summary, summarize


def main(argv=None):
    parser = argparse.ArgumentParser(prog="logtool", description="Summarise application logs.")
    sub = parser.add_subparsers(dest="command", required=True)
    summ = sub.add_parser("summarize", help="count records per level and component")
    summ.add_argument("logfile")
    summ.add_argument("--top", type=int, default=3, help="components to list (default 3)")
    args = parser.parse_args(argv)
    records = parse_file(args.logfile)
    print(format_summary(summarize(records), top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
_LOGTOOL_TESTS = """\
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "logtool"))

from parse import parse_line  # noqa: E402


class ParseLineTest(unittest.TestCase):
    def test_valid_line(self):
        rec = parse_line("2026-03-01 10:00:01 INFO auth: user login ok\\n")
        self.assertEqual(rec, ("2026-03-01 10:00:01", "INFO", "auth", "user login ok"))

    def test_unknown_level(self):
        self.assertIsNone(parse_line("2026-03-01 10:00:01 TRACE auth: x"))

    def test_garbage(self):
        self.assertIsNone(parse_line("Traceback (most recent call last):"))


if __name__ == "__main__":
    unittest.main()
"""

_LOG_MESSAGES = {
    "auth": ["user login ok", "token refreshed", "password reset requested"],
    "db": ["query took 412ms", "connection pool exhausted", "migration 42 applied"],
    "api": ["GET /orders 200", "POST /cart 201", "GET /items/7 404"],
    "worker": ["job 17 done", "job 18 retried", "queue drained"],
    "cache": ["miss for user:4", "evicted 12 keys"],
}


def _logtool_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    lines, second = [], rng.randrange(3600)
    for _ in range(rng.randint(50, 80)):
        second += rng.randint(1, 40)
        comp = rng.choice(sorted(_LOG_MESSAGES))
        level = rng.choices(["DEBUG", "INFO", "WARNING", "ERROR"], [2, 10, 3, 2])[0]
        stamp = f"2026-03-01 {8 + second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        lines.append(f"{stamp} {level} {comp}: {rng.choice(_LOG_MESSAGES[comp])}")
    pos = rng.randrange(5, len(lines) - 5)
    lines[pos:pos] = ["Traceback (most recent call last):", '  File "app.py", line 3, in <module>']
    files = {
        "src/logtool/__init__.py": _LOGTOOL_INIT,
        "src/logtool/parse.py": _LOGTOOL_PARSE,
        "src/logtool/summarize.py": _LOGTOOL_SUMMARIZE,
        "src/logtool/cli.py": _LOGTOOL_CLI,
        "samples/app.log": "\n".join(lines) + "\n",
        "tests/test_logtool.py": _LOGTOOL_TESTS,
    }
    return Fixture(files), {}


_LOGTOOL_MAIN = '''\
"""Entry point for `python3 -m logtool`."""

import sys

from .cli import main

sys.exit(main())
'''


def _relative_imports(text: str) -> str:
    return re.sub(r"^from (parse|summarize|cli) import", r"from .\1 import", text, flags=re.M)


def _logtool_playbook(ctx: Ctx) -> Playbook:
    _layout, cli = yield [
        sh(
            "find src samples tests -type f | sort && head -n 3 samples/app.log",
            say="Looking at the package layout",
        ),
        read("src/logtool/cli.py", say="and reading the CLI module."),
    ]
    yield [
        patch(
            _udiff("src/logtool/cli.py", cli.stdout, _relative_imports(cli.stdout)),
            say="Making cli.py's imports package-relative",
        ),
        write("src/logtool/__main__.py", _LOGTOOL_MAIN, say="and adding __main__.py."),
    ]
    run = yield sh("PYTHONPATH=src python3 -m logtool --help", say="Trying python3 -m logtool.")
    if not run.ok:
        # summarize.py has its own implicit import of parse, which cli.py only hid.
        summ = yield read(
            "src/logtool/summarize.py",
            say="summarize.py also imports 'parse' as a top-level module; reading it.",
        )
        yield patch(
            _udiff("src/logtool/summarize.py", summ.stdout, _relative_imports(summ.stdout)),
            say="Fixing that import too.",
        )
    run = yield sh(
        "PYTHONPATH=src python3 -m logtool --help && "
        "PYTHONPATH=src python3 -m logtool summarize samples/app.log && "
        "python3 -m unittest discover tests",
        say="Running --help, the summarize command and the tests.",
    )
    records = _last_line(run, r"^records:")
    yield Reply(
        "src/logtool now runs as a module: added src/logtool/__main__.py and switched cli.py and "
        "summarize.py to relative imports (from .parse / .summarize). `PYTHONPATH=src python3 -m "
        f"logtool summarize samples/app.log` reports '{records}', and the existing tests pass "
        f"({_summary(run)})."
    )
    check = yield sh(
        'root=$PWD && cd /tmp && PYTHONPATH="$root/src" python3 -m logtool summarize '
        '"$root/samples/app.log" --top 2',
        say="Running it from another directory to be sure nothing depends on the cwd.",
    )
    yield Reply(
        f"Checked: from /tmp it works too ({_last_line(check, 'top components')})."
        if check.ok
        else f"From /tmp it fails: {_last_line(check)}"
    )


_LOGTOOL_VERIFY = """
import os, re, subprocess, sys
from collections import Counter
if not os.path.exists("src/logtool/__main__.py"):
    sys.exit("src/logtool/__main__.py is missing")
env = dict(os.environ, PYTHONPATH=os.path.abspath("src"))
py = sys.executable
h = subprocess.run([py, "-m", "logtool", "--help"], capture_output=True, text=True, env=env)
if h.returncode != 0 or "summarize" not in h.stdout:
    sys.exit("python3 -m logtool --help fails:\\n" + h.stderr[-300:])
log = os.path.abspath("samples/app.log")
s = subprocess.run([py, "-m", "logtool", "summarize", log], capture_output=True, text=True,
                   env=env, cwd="/tmp")
if s.returncode != 0:
    sys.exit("python3 -m logtool summarize fails:\\n" + s.stderr[-300:])
pat = re.compile(r"^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} "
                 r"(DEBUG|INFO|WARNING|ERROR) [\\w.-]+: ")
levels = Counter(m.group(1) for ln in open(log) if (m := pat.match(ln)))
if f"records: {sum(levels.values())}" not in s.stdout:
    sys.exit("summarize reports the wrong record count: " + s.stdout[:200])
for level, n in levels.items():
    if not re.search(rf"^{level}\\s+{n}$", s.stdout, re.M):
        sys.exit(f"summarize reports the wrong {level} count")
t = subprocess.run([py, "-m", "unittest", "discover", "tests"], capture_output=True, text=True)
if t.returncode != 0:
    sys.exit("the existing tests fail:\\n" + t.stderr[-300:])
print("ok: python3 -m logtool works, tests pass")
"""


RECIPES = [
    TaskRecipe(
        task_id="code-fix-discount-rounding-bug",
        fixture=_discount_fixture,
        playbook=_discount_playbook,
        verify=_DISCOUNT_VERIFY,
        failure_mode="builds the Decimal from the float itself, so the binary error survives "
        "and half cents still round down",
    ),
    TaskRecipe(
        task_id="code-add-dry-run-flag",
        fixture=_dry_run_fixture,
        playbook=_dry_run_playbook,
        verify=_DRY_RUN_VERIFY,
        failure_mode="reads the flag as args.dryrun, but argparse stores --dry-run as dry_run",
    ),
    TaskRecipe(
        task_id="code-write-dateparse-tests",
        fixture=_dateparse_fixture,
        playbook=_dateparse_playbook,
        verify=_DATEPARSE_VERIFY,
        failure_mode="asserts the documented two-digit-year pivot, which the code gets wrong",
    ),
    TaskRecipe(
        task_id="code-optimize-report-builder",
        fixture=_report_fixture,
        playbook=_report_playbook,
        verify=_REPORT_VERIFY.replace("__LIMIT__", "1.0"),
        failure_mode="indexes customers with a dict comprehension that keeps the last of "
        "duplicated ids, so the report changes",
    ),
    TaskRecipe(
        task_id="code-apply-review-patch",
        fixture=_review_fixture,
        playbook=_review_playbook,
        verify=_REVIEW_VERIFY,
        failure_mode="applies the stale diff as is; the normalize_name hunk no longer matches",
    ),
    TaskRecipe(
        task_id="code-smoke-test-dev-server",
        fixture=_server_fixture,
        playbook=_server_playbook,
        verify=_SERVER_VERIFY,
        failure_mode="starts the server without PORT, so it crashes and curl gets no connection",
    ),
    TaskRecipe(
        task_id="code-refactor-duplicate-validation",
        fixture=_refactor_fixture,
        playbook=_refactor_playbook,
        verify=_REFACTOR_VERIFY,
        failure_mode="writes the diff assuming the three validate() copies are identical; "
        "ContactForm's differs, so the patch does not apply",
    ),
    TaskRecipe(
        task_id="code-debug-importer-crash",
        fixture=_importer_fixture,
        playbook=_importer_playbook,
        verify=_IMPORTER_VERIFY.replace("__ORIGINAL__", repr(_IMPORTER_PY)),
        failure_mode="fixes only the BOM from the reported traceback; the empty quantity "
        "then crashes int()",
    ),
    TaskRecipe(
        task_id="code-implement-textstats-stubs",
        fixture=_textstats_fixture,
        playbook=_textstats_playbook,
        verify=_TEXTSTATS_VERIFY,
        failure_mode="uses Counter.most_common, which breaks ties by first occurrence "
        "instead of alphabetically",
    ),
    TaskRecipe(
        task_id="code-fix-flaky-cache-test",
        fixture=_cache_fixture,
        playbook=_cache_playbook,
        verify=_CACHE_VERIFY,
        failure_mode="patches the expiry comparison instead of the int() truncation, which "
        "breaks the expiry test",
    ),
    TaskRecipe(
        task_id="code-verify-watch-rebuild",
        fixture=_watch_fixture,
        playbook=_watch_playbook,
        verify=_WATCH_VERIFY,
        failure_mode="edits a template that is not the first one; the buggy watcher never "
        "notices and site/ stays stale",
    ),
    TaskRecipe(
        task_id="code-migrate-settings-to-json",
        fixture=_settings_fixture,
        playbook=_settings_playbook,
        verify=_SETTINGS_VERIFY,
        failure_mode="converts the INI with configparser's raw strings, so the JSON has "
        "'5432' instead of 5432",
    ),
    TaskRecipe(
        task_id="code-fix-job-worker-retries",
        fixture=_worker_fixture,
        playbook=_worker_playbook,
        verify=_WORKER_VERIFY,
        failure_mode="runs the polling worker in the foreground, so the call times out",
    ),
    TaskRecipe(
        task_id="code-make-package-runnable",
        fixture=_logtool_fixture,
        playbook=_logtool_playbook,
        verify=_LOGTOOL_VERIFY,
        failure_mode="fixes the imports in cli.py only; summarize.py's implicit import of "
        "parse still breaks python3 -m logtool",
    ),
]
