"""Web-Extraction recipes.

The sandbox has no network: "websites" are saved HTML files on disk, or a python3 http.server
started on 127.0.0.1 inside the container through the process tool.
"""

from __future__ import annotations

import difflib
import html
import json
import random
import struct
import textwrap
import zlib

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, kill, output, patch, read, sh, start, write


def _page(title: str, body: str, head: str = "", charset: str = "utf-8") -> str:
    """A small, complete HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        f'<meta charset="{charset}">\n<title>{html.escape(title)}</title>\n{head}'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, built with zlib and struct."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# Verifier snippet: fail if a background server is still running.
_NO_SERVER_LEFT = """
import os
def server_running(marker):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if marker in cmd:
            return True
    return False
"""

# ---------------------------------------------------------------- web-scrape-product-catalog

_ADJECTIVES = ["Brass", "Oak", "Linen", "Copper", "Slate", "Walnut", "Cotton", "Ceramic",
               "Steel", "Bamboo", "Wool", "Glass", "Marble", "Cedar", "Velvet"]  # fmt: skip
_NOUNS = ["Kettle", "Lamp", "Throw", "Planter", "Clock", "Stool", "Mug Set", "Tray",
          "Mirror", "Shelf", "Vase", "Rug", "Desk", "Bench", "Salt & Pepper Mill"]  # fmt: skip


def _product_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = rng.sample([f"{a} {n}" for a in _ADJECTIVES for n in _NOUNS], 30)
    skus = rng.sample(range(1000, 9999), 30)
    files, on_sale, out_of_stock = {}, 0, 0
    for i, name in enumerate(names):
        sku = f"{name[:2].upper()}-{skus[i]}"
        # A few big-ticket items are priced with a thousands separator.
        cents = rng.randrange(105000, 249900) if i % 7 == 3 else rng.randrange(900, 49900)
        price = f"${cents // 100:,}.{cents % 100:02d}"
        if i % 5 == 1:
            was = cents + rng.randrange(500, 9000)
            pricing = (
                f'<del class="price-was">${was // 100:,}.{was % 100:02d}</del>\n'
                f'    <span class="price-now sale">{price}</span>'
            )
            on_sale += 1
        else:
            pricing = f'<span class="price-now">{price}</span>'
        in_stock = rng.random() > 0.2
        out_of_stock += not in_stock
        stock = (
            '<p class="stock in-stock">In stock</p>'
            if in_stock
            else '<p class="stock out-of-stock">Out of stock &ndash; back soon</p>'
        )
        body = textwrap.dedent(
            f"""\
            <nav class="breadcrumbs"><a href="../index.html">Shop</a> &rsaquo; Home goods</nav>
            <div class="product">
              <h1 class="product-name">{html.escape(name)}</h1>
              <p class="meta">SKU: <span class="sku">{sku}</span></p>
              <div class="pricing">
                {pricing}
              </div>
              {stock}
              <p class="description">Hand finished. Ships in 3-5 days.</p>
            </div>"""
        )
        slug = name.lower().replace(" & ", "-").replace(" ", "-")
        files[f"site/shop/{slug}.html"] = _page(f"{name} | Shop", body)
    return Fixture(files), {"products": 30, "on_sale": on_sale, "out_of_stock": out_of_stock}


_PRODUCTS_V1 = textwrap.dedent(
    """\
    import csv, glob, os
    from html.parser import HTMLParser

    FIELDS = {"product-name": "name", "sku": "sku", "price-now": "price",
              "price-was": "original_price"}


    class ProductParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.data = {}
            self.field = None

        def handle_starttag(self, tag, attrs):
            for cls in (dict(attrs).get("class") or "").split():
                if cls in FIELDS:
                    self.field = FIELDS[cls]
                elif cls in ("in-stock", "out-of-stock"):
                    self.data["in_stock"] = cls == "in-stock"

        def handle_endtag(self, tag):
            self.field = None

        def handle_data(self, data):
            if self.field:
                self.data[self.field] = self.data.get(self.field, "") + data.strip()


    def money(text):
        return float(text.strip().lstrip("$"))


    rows = []
    for path in sorted(glob.glob("site/shop/*.html")):
        p = ProductParser()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        d = p.data
        rows.append({
            "sku": d["sku"],
            "name": d["name"],
            "price": f"{money(d['price']):.2f}",
            "original_price": f"{money(d['original_price']):.2f}" if "original_price" in d else "",
            "in_stock": "true" if d["in_stock"] else "false",
        })
    rows.sort(key=lambda r: r["sku"])
    os.makedirs("out", exist_ok=True)
    with open("out/products.csv", "w", newline="") as f:
        cols = ["sku", "name", "price", "original_price", "in_stock"]
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\\n")
        w.writeheader()
        w.writerows(rows)
    sale = sum(1 for r in rows if r["original_price"])
    gone = sum(1 for r in rows if r["in_stock"] == "false")
    print(f"{len(rows)} products, {sale} on sale, {gone} out of stock")
    """
)


def _product_playbook(ctx: Ctx) -> Playbook:
    listing = yield sh(
        "ls site/shop | head -5; ls site/shop | wc -l; "
        "grep -l 'price-was' site/shop/*.html | head -2",
        say="Let me look at the saved product pages.",
    )
    sale_pages = [ln for ln in listing.stdout.splitlines() if ln.startswith("site/shop/")]
    yield read(sale_pages[0] if sale_pages else "site/shop/" + listing.stdout.split()[0],
               say="Reading a sale page to see the price markup.")  # fmt: skip
    yield write("scrape_products.py", _PRODUCTS_V1, say="Writing an html.parser scraper.")
    run = yield sh("python3 scrape_products.py")
    if not run.ok:
        # Prices over a thousand are written "$1,249.00": float() rejects the comma.
        yield edit(
            "scrape_products.py",
            'return float(text.strip().lstrip("$"))',
            'return float(text.strip().lstrip("$").replace(",", ""))',
            say="Big-ticket prices carry a thousands separator; stripping the comma.",
        )
        run = yield sh("python3 scrape_products.py")
    yield Reply(f"Scraped the catalog into out/products.csv: {run.stdout.strip()}.")
    _, check = yield [
        sh("head -4 out/products.csv", say="Checking the header and the SKU order."),
        sh("tail -n +2 out/products.csv | cut -d, -f1 | sort -c && echo 'sorted by SKU'"),
    ]
    order = "sorted by SKU" if "sorted by SKU" in check.stdout else "not yet sorted"
    yield Reply(
        f"Checked: one row per product, prices as decimals, originals only on sale items, {order}."
    )


_PRODUCT_VERIFY = r"""
import csv, glob, html, re, sys
want = {}
for p in glob.glob("site/shop/*.html"):
    t = open(p, encoding="utf-8").read()
    sku = re.search(r'class="sku">([^<]+)<', t).group(1)
    now = re.search(r'class="price-now[^"]*">\$([^<]+)<', t).group(1).replace(",", "")
    was = re.search(r'class="price-was">\$([^<]+)<', t)
    want[sku] = (html.unescape(re.search(r'class="product-name">([^<]+)<', t).group(1)),
                 float(now), float(was.group(1).replace(",", "")) if was else None,
                 'class="stock in-stock"' in t)
try:
    rows = list(csv.DictReader(open("out/products.csv", encoding="utf-8")))
except FileNotFoundError:
    sys.exit("out/products.csv is missing")
if [r["sku"] for r in rows] != sorted(want):
    sys.exit(f"expected one row per SKU ({len(want)}), sorted by SKU")
for r in rows:
    name, price, was, stock = want[r["sku"]]
    if r["name"] != name:
        sys.exit(f"{r['sku']}: name {r['name']!r} != {name!r}")
    if abs(float(r["price"]) - price) > 0.001:
        sys.exit(f"{r['sku']}: price {r['price']} != {price}")
    if was is None and r["original_price"].strip():
        sys.exit(f"{r['sku']}: original price given for a non-sale item")
    if was is not None and abs(float(r["original_price"] or 0) - was) > 0.001:
        sys.exit(f"{r['sku']}: original price {r['original_price']!r} != {was}")
    truthy = r["in_stock"].strip().lower() in ("true", "1", "yes")
    if truthy != stock:
        sys.exit(f"{r['sku']}: in_stock {r['in_stock']!r}, expected {stock}")
print(f"ok: {len(rows)} products")
"""

# ---------------------------------------------------------------- web-check-broken-links

# Pages of the migrated site: path -> title. Links are added per page below.
_LINK_PAGES = [
    "index.html", "about.html", "contact.html",
    "blog/index.html", "blog/launch.html", "blog/roadmap.html", "blog/hiring.html",
    "docs/index.html", "docs/guide/intro.html", "docs/guide/setup.html",
    "docs/guide/advanced.html", "docs/api/index.html", "docs/api/auth.html",
    "docs/api/errors.html", "products/index.html", "products/widget.html",
    "products/gadget.html", "products/pricing.html", "legal/privacy.html", "legal/terms.html",
]  # fmt: skip
_LINK_IMAGES = ["img/logo.png", "img/banner.png", "img/team.png", "img/widget.png"]


def _rel(src: str, target: str) -> str:
    """Relative href from page `src` to site path `target`."""
    depth = src.count("/")
    return "../" * depth + target


def _links_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    anchors = {p: [f"sec-{i}" for i in range(1, 4)] for p in _LINK_PAGES}
    links: dict[str, list[str]] = {p: [] for p in _LINK_PAGES}
    for page in _LINK_PAGES:
        # Good links: nav, a few random pages (some with valid anchors), an image.
        links[page] += [_rel(page, "index.html"), _rel(page, "about.html")]
        for target in rng.sample(_LINK_PAGES, 3):
            frag = f"#{rng.choice(anchors[target])}" if rng.random() < 0.4 else ""
            links[page].append(_rel(page, target) + frag)
        links[page].append("#sec-1")
    # Broken links of three kinds, each on a distinct page.
    broken_pages = rng.sample(_LINK_PAGES, 9)
    broken = []
    kinds = ["missing"] * 3 + ["case"] * 3 + ["anchor"] * 3
    for page, kind in zip(broken_pages, kinds, strict=True):
        target = rng.choice([p for p in _LINK_PAGES if p != page])
        if kind == "missing":
            old = target.replace("docs/", "documentation/").replace("blog/", "news/")
            href = _rel(page, old if old != target else "old/" + target)
        elif kind == "case":
            head, _, name = target.rpartition("/")
            href = _rel(page, (head + "/" if head else "") + name.capitalize())
        else:
            href = _rel(page, target) + "#" + rng.choice(["install-steps", "faq", "overview"])
        links[page].append(href)
        broken.append((page, href, kind))
    files: dict[str, str | bytes] = {}
    img_pages = rng.sample(_LINK_PAGES, 6)
    bad_img_page = img_pages[0]
    for page in _LINK_PAGES:
        title = page.rsplit("/", 1)[-1].removesuffix(".html").replace("-", " ").title()
        items = "\n".join(
            f'  <li><a href="{h}">{h.rsplit("/", 1)[-1]}</a></li>' for h in links[page]
        )
        sections = "\n".join(
            f'<h2 id="{a}">Section {a[-1]}</h2>\n<p>Text.</p>' for a in anchors[page]
        )
        img = ""
        if page == bad_img_page:
            img = f'<img src="{_rel(page, "images/logo.png")}" alt="logo">'
            broken.append((page, _rel(page, "images/logo.png"), "missing"))
        elif page in img_pages:
            img = f'<img src="{_rel(page, rng.choice(_LINK_IMAGES))}" alt="">'
        top = '<a id="top"></a>\n' if page.startswith(("blog/", "docs/")) else ""
        body = (
            f'{top}<header><img src="{_rel(page, "img/logo.png")}" alt="Acme"></header>\n'
            f"<h1>{title}</h1>\n{img}\n<ul>\n{items}\n"
            '  <li><a href="https://example.com/partner">Partner</a></li>\n'
            '  <li><a href="mailto:hello@example.com">Mail us</a></li>\n'
            f"</ul>\n{sections}"
        )
        head = f'<link rel="stylesheet" href="{_rel(page, "css/site.css")}">\n'
        files[f"site/{page}"] = _page(title, body, head)
    files["site/css/site.css"] = "body { font-family: sans-serif; }\n"
    for i, img in enumerate(_LINK_IMAGES):
        files[f"site/{img}"] = _png(4, 4, (40 * i, 90, 160))
    return Fixture(files), {"broken": len(broken)}


_LINKS_V1 = textwrap.dedent(
    """\
    import csv, os, posixpath
    from html.parser import HTMLParser

    SITE = "site"


    class PageParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.links, self.ids = [], set()

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "a":
                self.links.append(a["href"])
            elif tag == "link" and "href" in a:
                self.links.append(a["href"])
            elif tag in ("img", "script", "source") and "src" in a:
                self.links.append(a["src"])
            for key in ("id", "name"):
                if a.get(key):
                    self.ids.add(a[key])


    pages = {}
    all_files = set()
    for root, _, names in os.walk(SITE):
        for name in names:
            rel = posixpath.relpath(posixpath.join(root, name), SITE)
            all_files.add(rel)
            if name.endswith(".html"):
                p = PageParser()
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    p.feed(f.read())
                pages[rel] = p
    lower = {f.lower(): f for f in all_files}

    broken, checked = [], 0
    for src in sorted(pages):
        for link in pages[src].links:
            if ":" in link.split("/")[0]:  # https:, mailto:
                continue
            checked += 1
            path, _, frag = link.partition("#")
            if not path:
                target = src
            elif path.startswith("/"):
                target = posixpath.normpath(path.lstrip("/"))
            else:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(src), path))
            if target.endswith("/") or target in ("", "."):
                target = posixpath.join(target, "index.html")
            if target not in all_files:
                if target.lower() in lower:
                    reason = f"case mismatch (file is {lower[target.lower()]})"
                else:
                    reason = "missing file"
                broken.append((src, link, reason))
            elif frag and target in pages and frag not in pages[target].ids:
                broken.append((src, link, f"missing anchor #{frag}"))

    os.makedirs("out", exist_ok=True)
    with open("out/broken_links.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\\n")
        w.writerow(["source", "target", "reason"])
        w.writerows(broken)
    print(f"{len(pages)} pages, {checked} links checked, {len(broken)} broken")
    """
)


def _links_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "find site -type f | sort; find site -name '*.html' | wc -l",
            say="Listing the site's files.",
        ),  # fmt: skip
        read("site/index.html", say="And the home page's markup."),
    ]
    yield write("check_links.py", _LINKS_V1, say="Writing a link checker over the file tree.")
    run = yield sh("python3 check_links.py")
    if not run.ok:
        # <a id="top"></a> anchors have no href: a["href"] raises KeyError.
        yield edit(
            "check_links.py",
            'if tag == "a":\n            self.links.append(a["href"])',
            'if tag == "a" and "href" in a:\n            self.links.append(a["href"])',
            say="Some <a> tags are bare anchors without href; skipping those.",
        )
        run = yield sh("python3 check_links.py")
    yield Reply(f"Checked the site: {run.stdout.strip()}. The report is in out/broken_links.csv.")
    check = yield sh(
        "cut -d, -f3 out/broken_links.csv | tail -n +2 | sed 's/ (.*//; s/ #.*//' | sort | uniq -c",
        say="Summarising the reasons.",
    )
    summary = ", ".join(" ".join(ln.split()[1:]) + f": {ln.split()[0]}"
                        for ln in check.stdout.strip().splitlines() if ln.strip())  # fmt: skip
    yield Reply(f"Checked the report: {summary}. Each row names the source page and the link.")


_LINKS_VERIFY = r"""
import csv, os, posixpath, re, sys
files, ids, links = set(), {}, {}
for root, _, names in os.walk("site"):
    for n in names:
        rel = posixpath.relpath(posixpath.join(root, n), "site")
        files.add(rel)
        if n.endswith(".html"):
            t = open(os.path.join(root, n), encoding="utf-8").read()
            ids[rel] = set(re.findall(r'\b(?:id|name)="([^"]+)"', t))
            links[rel] = re.findall(r'\b(?:href|src)="([^"]*)"', t)
want = {}
for src, ls in links.items():
    for link in ls:
        if ":" in link.split("/")[0]:
            continue
        path, _, frag = link.partition("#")
        tgt = src if not path else posixpath.normpath(posixpath.join(posixpath.dirname(src), path))
        if tgt not in files:
            want[(src, link)] = "case" if tgt.lower() in {f.lower() for f in files} else "missing"
        elif frag and frag not in ids.get(tgt, set()):
            want[(src, link)] = "anchor"
try:
    rows = list(csv.DictReader(open("out/broken_links.csv", encoding="utf-8")))
except FileNotFoundError:
    sys.exit("out/broken_links.csv is missing")
got = {}
for r in rows:
    src = r["source"].removeprefix("site/")
    got[(src, r["target"])] = r["reason"].lower()
if set(got) != set(want):
    sys.exit(f"wrong broken set: missing {sorted(set(want) - set(got))[:3]}, "
             f"extra {sorted(set(got) - set(want))[:3]}")
for key, kind in want.items():
    if kind not in got[key] and not (kind == "missing" and "not found" in got[key]):
        sys.exit(f"{key}: reason {got[key]!r} does not say {kind}")
print(f"ok: {len(want)} broken links reported")
"""

# ---------------------------------------------------------------- web-extract-quarterly-tables

_METRICS = ["Revenue", "Cost of revenue", "Gross profit", "Operating expenses",
            "Operating income (loss)", "Net income (loss)", "Free cash flow"]  # fmt: skip


def _fmt_thousands(value: int, dollar: bool) -> str:
    text = f"{'$' if dollar else ''}{abs(value):,}"
    return f"({text})" if value < 0 else text


def _quarterly_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files, cells = {}, 0
    for year in (2023, 2024, 2025, 2026):
        quarters = [f"Q{q} {year}" for q in range(1, 5)]
        rows = []
        for metric in _METRICS:
            tds = []
            for _ in range(4):
                if metric in ("Operating income (loss)", "Net income (loss)", "Free cash flow"):
                    value = rng.randrange(-4800, 9000)
                elif metric == "Operating expenses":
                    value = rng.randrange(3000, 9000)
                else:
                    value = rng.randrange(8000, 98000)
                mark = f"<sup>{rng.choice('12')}</sup>" if rng.random() < 0.15 else ""
                tds.append(f"<td>{_fmt_thousands(value, metric == 'Revenue')}{mark}</td>")
                cells += 1
            label = metric + ("<sup>3</sup>" if metric == "Free cash flow" else "")
            rows.append(f'    <tr><th scope="row">{label}</th>{"".join(tds)}</tr>')
        header = "".join(f"<th>{q}</th>" for q in quarters)
        body = textwrap.dedent(
            f"""\
            <nav><a href="index.html">Investors</a> | <a href="../index.html">Home</a></nav>
            <h1>Fiscal {year} quarterly results</h1>
            <p>Unaudited. All figures in thousands of US dollars.</p>
            <table class="results">
              <thead><tr><th>Metric</th>{header}</tr></thead>
              <tbody>
            """
        )
        body += "\n".join(rows) + textwrap.dedent(
            """
              </tbody>
            </table>
            <ol class="footnotes">
              <li id="fn1">Restated after the segment reorganisation.</li>
              <li id="fn2">Includes a one-off restructuring charge.</li>
              <li id="fn3">Non-GAAP measure; see the reconciliation.</li>
            </ol>"""
        )
        files[f"site/investors/fy{year}.html"] = _page(f"FY{year} results", body)
    return Fixture(files), {"cells": cells}


_QUARTERLY_V1 = textwrap.dedent(
    """\
    import csv, glob, os
    from html.parser import HTMLParser


    class TableParser(HTMLParser):
        \"\"\"Rows of the results table, skipping <sup> footnote markers.\"\"\"

        def __init__(self):
            super().__init__()
            self.rows, self.cell, self.in_table, self.in_sup = [], None, False, False

        def handle_starttag(self, tag, attrs):
            if tag == "table" and "results" in (dict(attrs).get("class") or ""):
                self.in_table = True
            elif self.in_table and tag == "tr":
                self.rows.append([])
            elif self.in_table and tag in ("td", "th"):
                self.cell = ""
            elif tag == "sup":
                self.in_sup = True

        def handle_endtag(self, tag):
            if tag == "table":
                self.in_table = False
            elif tag == "sup":
                self.in_sup = False
            elif tag in ("td", "th") and self.cell is not None:
                self.rows[-1].append(self.cell.strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None and not self.in_sup:
                self.cell += data


    def number(text):
        return float(text.replace("$", "").replace(",", ""))


    out = []
    for path in sorted(glob.glob("site/investors/*.html")):
        p = TableParser()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        header, *body = p.rows
        for row in body:
            for quarter, cell in zip(header[1:], row[1:]):
                out.append({"metric": row[0], "quarter": quarter, "value": number(cell)})

    os.makedirs("out", exist_ok=True)
    with open("out/quarterly_results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["metric", "quarter", "value"], lineterminator="\\n")
        w.writeheader()
        for r in out:
            w.writerow({**r, "value": f"{r['value']:.0f}"})
    neg = sum(1 for r in out if r["value"] < 0)
    print(f"{len(out)} rows ({neg} negative) from {len(glob.glob('site/investors/*.html'))} pages")
    """
)


def _quarterly_playbook(ctx: Ctx) -> Playbook:
    yield sh(
        "ls -l site/investors/; grep -c '<tr>' site/investors/*.html",
        say="Let me see the investor pages.",
    )
    yield read("site/investors/fy2024.html", 1, 30, say="Looking at one results table.")
    yield write("extract_tables.py", _QUARTERLY_V1, say="Writing a table extractor to long format.")
    run = yield sh("python3 extract_tables.py")
    if not run.ok:
        # Negatives are written in accounting style, "(1,234)": float() rejects the brackets.
        yield edit(
            "extract_tables.py",
            '    return float(text.replace("$", "").replace(",", ""))',
            '    text = text.replace("$", "").replace(",", "").strip()\n'
            '    if text.startswith("(") and text.endswith(")"):\n'
            "        return -float(text[1:-1])\n"
            "    return float(text)",
            say="Negatives are in parentheses; parsing them as signed numbers.",
        )
        run = yield sh("python3 extract_tables.py")
    yield Reply(
        f"Extracted the quarterly tables into out/quarterly_results.csv: {run.stdout.strip()}."
    )
    _, check = yield [
        read("out/quarterly_results.csv", 1, 5, say="Looking at the head of the CSV"),
        sh(
            "awk -F, 'NR > 1 && $NF !~ /^-?[0-9]+$/' out/quarterly_results.csv | wc -l; "
            "awk -F, 'NR > 1 && $NF < 0' out/quarterly_results.csv | wc -l",
            say="and checking for leftover footnote markers and the negative values.",
        ),
    ]
    counts = check.stdout.strip().splitlines()[-2:] if check.stdout else ["?", "?"]
    yield Reply(
        f"Checked: long format (metric, quarter, value); {counts[0]} values are non-numeric "
        f"(no footnote markers left) and {counts[-1]} are negative, signed from the parentheses."
    )


_QUARTERLY_VERIFY = r"""
import csv, glob, html, re, sys
def clean(cell):
    cell = re.sub(r"<sup>.*?</sup>", "", cell)
    return html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
want = {}
for p in glob.glob("site/investors/*.html"):
    t = open(p, encoding="utf-8").read()
    table = re.search(r'<table class="results">(.*?)</table>', t, re.S).group(1)
    rows = [[clean(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
            for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    for row in rows[1:]:
        for q, cell in zip(rows[0][1:], row[1:]):
            v = cell.replace("$", "").replace(",", "")
            want[(row[0], q)] = -float(v[1:-1]) if v.startswith("(") else float(v)
try:
    rows = list(csv.DictReader(open("out/quarterly_results.csv", encoding="utf-8")))
except FileNotFoundError:
    sys.exit("out/quarterly_results.csv is missing")
got = {}
for r in rows:
    key = (r["metric"].strip(), r["quarter"].strip())
    if key in got:
        sys.exit(f"duplicate row {key}")
    got[key] = float(r["value"])
if set(got) != set(want):
    sys.exit(f"wrong metric/quarter pairs, e.g. missing {sorted(set(want) - set(got))[:2]} "
             f"extra {sorted(set(got) - set(want))[:2]}")
for k, v in want.items():
    if abs(got[k] - v) > 0.5:
        sys.exit(f"{k}: {got[k]} != {v}")
print(f"ok: {len(got)} values")
"""

# ---------------------------------------------------------------- web-crawl-local-sitemap


def _sitemap_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    products = rng.sample(["widget", "gadget", "gizmo", "sprocket", "doohickey", "flange"], 3)
    posts = rng.sample(["launch", "update", "roadmap", "recap", "hiring"], 2)
    # page -> the hrefs it contains (relative to the page, as an author would write them)
    pages = {
        "index.html": ["about.html", "contact.html", "products/index.html", "blog/index.html",
                       "docs/index.html", "#top", "https://example.com/", "css/site.css"],
        "about.html": ["index.html", "team.html"],
        "team.html": ["about.html", "mailto:jobs@example.com"],
        "contact.html": ["index.html"],
        "products/index.html": ["../index.html"] + [f"{p}.html" for p in products],
        f"products/{products[0]}.html": ["index.html", f"{products[1]}.html#specs"],
        f"products/{products[1]}.html": ["index.html"],
        f"products/{products[2]}.html": ["../contact.html"],
        "blog/index.html": ["../index.html"] + [f"2026/{p}.html" for p in posts],
        f"blog/2026/{posts[0]}.html": ["../index.html", f"{posts[1]}.html"],
        f"blog/2026/{posts[1]}.html": ["../../index.html"],
        "docs/index.html": ["guide.html", "faq.html", "api/reference.html"],
        "docs/guide.html": ["index.html", "api/reference.html#auth"],
        "docs/faq.html": ["../contact.html"],
        "docs/api/reference.html": ["../guide.html"],
    }  # fmt: skip
    orphans = [f"{rng.choice(['old', 'legacy', 'beta'])}-landing.html",
               f"products/legacy-{rng.choice(['widget', 'kit', 'bundle'])}.html"]  # fmt: skip
    pages[orphans[0]] = ["index.html"]
    pages[orphans[1]] = ["index.html"]
    files: dict[str, str | bytes] = {"site/css/site.css": "body { margin: 0 auto; }\n"}
    for path, hrefs in pages.items():
        title = path.removesuffix(".html").replace("/", " / ").title()
        items = "\n".join(f'  <li><a href="{h}">{h}</a></li>' for h in hrefs)
        files[f"site/{path}"] = _page(title, f'<h1 id="top">{title}</h1>\n<ul>\n{items}\n</ul>')
    return Fixture(files), {"reachable": len(pages) - 2, "orphans": sorted(orphans)}


_CRAWL_V1 = textwrap.dedent(
    """\
    import os, subprocess
    import xml.etree.ElementTree as ET
    from html.parser import HTMLParser
    from urllib.parse import urldefrag, urljoin

    BASE = "http://127.0.0.1:8000/"


    class LinkParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.links = []

        def handle_starttag(self, tag, attrs):
            href = dict(attrs).get("href")
            if tag == "a" and href:
                self.links.append(href)


    def fetch(url):
        # -f: an HTTP error must not be crawled as a page.
        cmd = ["curl", "-sSf", "--retry", "5", "--retry-connrefused", url]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


    start = BASE + "index.html"
    queue, seen = [start], {start}
    while queue:
        url = queue.pop(0)
        parser = LinkParser()
        parser.feed(fetch(url))
        for href in parser.links:
            link = urldefrag(urljoin(BASE, href)).url
            if link.startswith(BASE) and link.endswith(".html") and link not in seen:
                seen.add(link)
                queue.append(link)

    os.makedirs("out", exist_ok=True)
    urlset = ET.Element("urlset", xmlns="http://www.sitemaps.org/schemas/sitemap/0.9")
    for url in sorted(seen):
        ET.SubElement(ET.SubElement(urlset, "url"), "loc").text = url
    ET.ElementTree(urlset).write("out/sitemap.xml", encoding="utf-8", xml_declaration=True)
    ET.parse("out/sitemap.xml")  # must be well-formed

    crawled = {u.removeprefix(BASE) for u in seen}
    on_disk = {os.path.relpath(os.path.join(root, n), "site")
               for root, _, names in os.walk("site") for n in names if n.endswith(".html")}
    orphans = sorted(on_disk - crawled)
    with open("out/orphans.txt", "w") as f:
        f.write("".join(o + "\\n" for o in orphans))
    print(f"{len(seen)} pages in the sitemap, {len(orphans)} orphans: {', '.join(orphans)}")
    """
)


def _sitemap_playbook(ctx: Ctx) -> Playbook:
    server, _ = yield [
        start(
            "python3 -m http.server 8000 --bind 127.0.0.1 --directory site",
            say="Serving site/ on 127.0.0.1:8000 in the background.",
        ),
        sh(
            "find site -name '*.html' | sort; "
            "curl -sS --retry 5 --retry-connrefused http://127.0.0.1:8000/index.html | grep href",
            say="Listing the pages on disk and fetching the index through the server.",
        ),
    ]
    job = server.extras.get("job", "job1")
    yield write(
        "crawl.py", _CRAWL_V1, say="Writing a breadth-first crawler that shells out to curl."
    )
    run = yield sh("python3 crawl.py", timeout_s=60)
    if not run.ok:
        yield output(job, say="curl got an HTTP error; checking the server's access log.")
        # Links were resolved against the site root instead of the page that holds them.
        yield edit(
            "crawl.py",
            "link = urldefrag(urljoin(BASE, href)).url",
            "link = urldefrag(urljoin(url, href)).url",
            say="Relative links must resolve against their own page, not the root.",
        )
        run = yield sh("python3 crawl.py", timeout_s=60)
    yield kill(job, say="Stopping the server.")
    yield Reply(
        f"Crawled the site from index.html and wrote out/sitemap.xml: {run.stdout.strip()}."
    )
    orphans = yield read("out/orphans.txt", say="Double-checking the orphan list.")
    names = ", ".join(orphans.stdout.split()) or "none"
    yield Reply(
        f"Checked: the sitemap parses as XML, the server is stopped, and the orphans ({names}) "
        "are only in out/orphans.txt."
    )


_SITEMAP_VERIFY = (
    _NO_SERVER_LEFT
    + r"""
import os, posixpath, re, sys
import xml.etree.ElementTree as ET
pages = {posixpath.relpath(posixpath.join(r, n), "site")
         for r, _, ns in os.walk("site") for n in ns if n.endswith(".html")}
reach, queue = {"index.html"}, ["index.html"]
while queue:
    page = queue.pop()
    for href in re.findall(r'href="([^"#:]+)', open("site/" + page, encoding="utf-8").read()):
        t = posixpath.normpath(posixpath.join(posixpath.dirname(page), href))
        if t in pages and t not in reach:
            reach.add(t)
            queue.append(t)
try:
    root = ET.parse("out/sitemap.xml").getroot()
except (OSError, ET.ParseError) as e:
    sys.exit(f"out/sitemap.xml missing or not valid XML: {e}")
locs = [el.text.strip() for el in root.iter() if el.tag.endswith("loc")]
got = {re.sub(r"^https?://[^/]+/", "", u) for u in locs}
if got != reach:
    sys.exit(f"sitemap pages wrong: missing {sorted(reach - got)}, extra {sorted(got - reach)}")
try:
    orphans = set(open("out/orphans.txt").read().split())
except FileNotFoundError:
    sys.exit("out/orphans.txt is missing")
if {o.removeprefix("site/") for o in orphans} != pages - reach:
    sys.exit(f"orphans {sorted(orphans)} != {sorted(pages - reach)}")
if server_running(b"http.server"):
    sys.exit("the http.server is still running")
print(f"ok: {len(got)} pages, {len(orphans)} orphans")
"""
)

# ---------------------------------------------------------------- web-index-blog-metadata

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]  # fmt: skip
_AUTHORS = ["Dana Whitfield", "Ravi Menon", "Sofia Lind", "Tomas Okafor", "Mei Tanaka"]
_TOPICS = ["python", "testing", "databases", "devops", "security", "frontend", "career"]
_HEADLINES = ["Notes on", "Lessons from", "A field guide to", "Rethinking", "Shipping",
              "Debugging", "Scaling", "Measuring", "Teaching", "Simplifying"]  # fmt: skip


def _blog_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {}
    new_posts = list(range(8, 18))
    conflicts = set(rng.sample(new_posts, 3))
    for i in range(18):
        year, month, day = 2023 + i // 6, rng.randrange(1, 13), rng.randrange(1, 27)
        author, tags = rng.choice(_AUTHORS), rng.sample(_TOPICS, rng.randrange(1, 4))
        title = f"{rng.choice(_HEADLINES)} {tags[0]} in {year}"
        slug = f"{year}-{month:02d}-{tags[0]}-{i:02d}"
        if i < 8:  # older posts: meta tags only, dates in whatever format the CMS used
            date = [f"{year}-{month:02d}-{day:02d}", f"{_MONTHS[month - 1]} {day}, {year}",
                    f"{day:02d} {_MONTHS[month - 1][:3]} {year}"][i % 3]  # fmt: skip
            head = (
                f'<meta name="author" content="{author}">\n'
                f'<meta name="date" content="{date}">\n'
                f'<meta name="keywords" content="{", ".join(tags)}">\n'
                f'<meta property="og:title" content="{title}">\n'
            )
        else:  # newer posts: JSON-LD plus meta tags that sometimes disagree
            stamp = f"{year}-{month:02d}-{day:02d}T09:30:00+01:00"
            meta_day = day + rng.randrange(1, 3) if i in conflicts else day
            ld = {
                "@context": "https://schema.org",
                "@type": "BlogPosting",
                "headline": title,
                "author": {"@type": "Person", "name": author},
                "datePublished": stamp,
                "keywords": tags if i % 2 else ", ".join(tags),
            }
            head = (
                f'<meta name="author" content="{author.split()[0][0]}. {author.split()[1]}">\n'
                f'<meta property="article:published_time" '
                f'content="{year}-{month:02d}-{meta_day:02d}T09:30:00+01:00">\n'
                f'<meta name="keywords" content="{", ".join(tags)}">\n'
                f'<meta property="og:title" content="{title} | Field Notes">\n'
                f'<script type="application/ld+json">\n{json.dumps(ld, indent=2)}\n</script>\n'
            )
        body = f"<article>\n<h1>{title}</h1>\n<p>Post body.</p>\n</article>"
        files[f"site/blog/{slug}.html"] = _page(f"{title} | Field Notes", body, head)
    return Fixture(files), {"posts": 18, "conflicts": len(conflicts)}


_BLOG_V1 = textwrap.dedent(
    """\
    import glob, json, os
    from datetime import datetime
    from html.parser import HTMLParser


    class MetaParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.meta, self.jsonld, self.ld_text = {}, [], None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "meta" and "content" in a:
                key = a.get("name") or a.get("property")
                if key:
                    self.meta[key] = a["content"]
            elif tag == "script" and a.get("type") == "application/ld+json":
                self.ld_text = ""

        def handle_endtag(self, tag):
            if tag == "script" and self.ld_text is not None:
                self.jsonld.append(json.loads(self.ld_text))
                self.ld_text = None

        def handle_data(self, data):
            if self.ld_text is not None:
                self.ld_text += data


    def iso_date(value):
        return datetime.fromisoformat(value.strip()).date().isoformat()


    def tag_list(value):
        if isinstance(value, list):
            return [t.strip() for t in value]
        return [t.strip() for t in value.split(",") if t.strip()]


    index = []
    for path in sorted(glob.glob("site/blog/*.html")):
        p = MetaParser()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        m = p.meta
        meta_date = m.get("article:published_time") or m.get("date")
        entry = {
            "file": os.path.basename(path),
            "title": m.get("og:title"),
            "author": m.get("author"),
            "date": iso_date(meta_date) if meta_date else None,
            "tags": tag_list(m.get("keywords", "")),
            "source": "meta",
            "conflicts": [],
        }
        article = next((d for d in p.jsonld if d.get("@type") in ("Article", "BlogPosting")), None)
        if article:  # JSON-LD wins over meta tags
            author = article.get("author")
            if isinstance(author, dict):
                author = author.get("name")
            ld_date = iso_date(article["datePublished"])
            if entry["date"] and entry["date"] != ld_date:
                entry["conflicts"].append(f"date: meta {entry['date']} vs JSON-LD {ld_date}")
            entry.update(title=article.get("headline") or entry["title"],
                         author=author or entry["author"], date=ld_date, source="json-ld")
            if "keywords" in article:
                entry["tags"] = tag_list(article["keywords"])
        index.append(entry)

    os.makedirs("out", exist_ok=True)
    with open("out/blog_index.json", "w") as f:
        json.dump(index, f, indent=2)
    ld = sum(e["source"] == "json-ld" for e in index)
    clash = sum(bool(e["conflicts"]) for e in index)
    print(f"{len(index)} posts indexed ({ld} from JSON-LD, {len(index) - ld} meta only), "
          f"{clash} date conflicts")
    """
)


def _blog_playbook(ctx: Ctx) -> Playbook:
    listing = yield sh(
        "ls site/blog | wc -l; grep -L 'ld+json' site/blog/*.html | wc -l; "
        "grep -l 'ld+json' site/blog/*.html | tail -3",
        say="Let me see how many posts carry JSON-LD.",
    )
    names = [n for n in listing.stdout.split() if n.startswith("site/blog/")]
    newest = names[-1] if names else "site/blog/index.html"
    yield read(newest, 1, 25, say="Reading the head of a newer post.")
    yield write(
        "index_blog.py", _BLOG_V1, say="Writing the indexer: meta tags first, JSON-LD wins."
    )
    run = yield sh("python3 index_blog.py")
    if not run.ok:
        # Older posts write dates like "March 5, 2024": fromisoformat() refuses them.
        yield sh(
            'grep -ho \'name="date" content="[^"]*"\' site/blog/*.html | sort | uniq | head',
            say="Date parsing failed; looking at the meta date formats.",
        )
        yield edit(
            "index_blog.py",
            "def iso_date(value):\n"
            "    return datetime.fromisoformat(value.strip()).date().isoformat()",
            "def iso_date(value):\n"
            "    value = value.strip()\n"
            '    for fmt in ("%B %d, %Y", "%d %b %Y"):\n'
            "        try:\n"
            "            return datetime.strptime(value, fmt).date().isoformat()\n"
            "        except ValueError:\n"
            "            pass\n"
            "    return datetime.fromisoformat(value).date().isoformat()",
            say="Accepting the two long-form date formats too.",
        )
        run = yield sh("python3 index_blog.py")
    yield Reply(f"Built out/blog_index.json: {run.stdout.strip()}.")
    conflicts, dates = yield [
        sh(
            "jq -r '.[] | select(.conflicts | length > 0) | \"\\(.file): \\(.conflicts[0])\"' "
            "out/blog_index.json",
            say="Listing the conflicts and checking every date is ISO.",
        ),
        sh("jq -r '.[].date' out/blog_index.json | awk '!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/' | wc -l"),
    ]
    n_conflicts = len(conflicts.stdout.strip().splitlines()) if conflicts.ok else "?"
    yield Reply(
        f"Checked: {n_conflicts} posts have a meta/JSON-LD date conflict (noted in their "
        f"entries; JSON-LD's date is used), and {dates.stdout.strip() or '?'} dates are non-ISO."
    )


_BLOG_VERIFY = r"""
import glob, json, os, re, sys
from datetime import datetime
def iso(v):
    v = v.strip()
    for fmt in ("%Y-%m-%d", "%B %d, %Y", "%d %b %Y"):
        try:
            return datetime.strptime(v, fmt).date().isoformat()
        except ValueError:
            pass
    return v[:10]
def tags(v):
    return [t.strip() for t in v] if isinstance(v, list) else [t.strip() for t in v.split(",")]
try:
    index = {e["file"]: e for e in json.load(open("out/blog_index.json"))}
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"out/blog_index.json missing or invalid: {e}")
files = glob.glob("site/blog/*.html")
if set(index) != {os.path.basename(p) for p in files}:
    sys.exit("the index must hold exactly one entry per post (keyed by file name)")
for p in files:
    t = open(p, encoding="utf-8").read()
    meta = dict(re.findall(r'<meta (?:name|property)="([^"]+)" content="([^"]*)"', t))
    ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', t, re.S)
    mdate = iso(meta.get("article:published_time") or meta["date"])
    if ld:
        ld = json.loads(ld.group(1))
        want = (ld["headline"], ld["author"]["name"], iso(ld["datePublished"]),
                tags(ld["keywords"]))
        conflict = mdate != want[2]
    else:
        want = (meta["og:title"], meta["author"], mdate, tags(meta["keywords"]))
        conflict = False
    e = index[os.path.basename(p)]
    got = (e.get("title"), e.get("author"), e.get("date"), e.get("tags"))
    if got != want:
        sys.exit(f"{p}: got {got}, expected {want}")
    noted = "date" in json.dumps(e.get("conflicts") or "").lower()
    if conflict != noted:
        sys.exit(f"{p}: date conflict {'' if conflict else 'not '}expected, "
                 f"conflicts are {e.get('conflicts')}")
print(f"ok: {len(index)} posts")
"""

# ---------------------------------------------------------------- web-diff-competitor-prices

_PLANS = ["Starter", "Basic", "Team", "Pro", "Business", "Scale", "Growth"]
_FEATURES = ["3 users", "10 GB storage", "Email support", "SSO", "Audit log", "API access"]


def _old_card(name: str, price: float) -> str:
    amount = f"{price:.0f}" if price == int(price) else f"{price:.2f}"
    feats = "".join(f"<li>{f}</li>" for f in _FEATURES[: len(name) % 4 + 2])
    return (
        f'<div class="plan-card">\n  <h3>{name}</h3>\n'
        f'  <p class="price">${amount}<span>/mo</span></p>\n  <ul>{feats}</ul>\n'
        f'  <a class="cta" href="/signup?plan={name.lower()}">Start trial</a>\n</div>'
    )


def _new_card(name: str, price: float, n: int) -> str:
    feats = "".join(f"<li>{f}</li>" for f in _FEATURES[: len(name) % 4 + 3])
    return (
        f'<div class="plan-card plan-card--v2" data-plan-id="p-{n}">\n'
        f'  <h2 class="plan-title">{name}</h2>\n'
        f'  <p class="price"><span class="cur">$</span>{price:.2f} <small>per month</small></p>\n'
        f'  <ul class="features">{feats}</ul>\n'
        f'  <a class="button" href="/signup?plan={name.lower()}">Try it free</a>\n</div>'
    )


def _prices_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {}
    competitors = ["acme", "globex", "initech"]
    adds, drops = rng.sample(competitors, 2)
    changed = 0
    for comp in competitors:
        names = rng.sample(_PLANS, 4)
        old = {n: float(rng.choice([9, 12, 19, 29, 49, 79, 99, 149])) for n in names}
        if comp == adds:
            old.pop(names[-1])
        new = {}
        for n, p in old.items():
            roll = rng.random()
            new[n] = p if roll < 0.35 else round(p * rng.choice([0.8, 0.9, 1.1, 1.15, 1.2]), 2)
            changed += new[n] != p
        if comp == adds:
            new[names[-1]] = float(rng.choice([199, 249, 299]))
        if comp == drops:
            new.pop(names[0])
        old_cards = "\n".join(_old_card(n, p) for n, p in old.items())
        order = list(new)
        rng.shuffle(order)
        new_cards = "\n".join(_new_card(n, new[n], i) for i, n in enumerate(order))
        files[f"snapshots/2026-10-01/{comp}.html"] = _page(
            f"{comp.title()} pricing",
            f'<h1>Pricing</h1>\n<section class="plans">\n{old_cards}\n</section>',
        )
        files[f"snapshots/2026-11-01/{comp}.html"] = _page(
            f"{comp.title()} pricing",
            '<header class="hero"><h1>Simple, fair pricing</h1></header>\n'
            f'<main class="plans-grid">\n{new_cards}\n</main>',
        )
    return Fixture(files), {"changed": changed, "new": adds, "discontinued": drops}


_PRICES_V1 = textwrap.dedent(
    """\
    import csv, glob, os, re
    from html.parser import HTMLParser

    OLD, NEW = "snapshots/2026-10-01", "snapshots/2026-11-01"


    class PlanParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cards, self.card, self.field = [], None, None

        def handle_starttag(self, tag, attrs):
            classes = (dict(attrs).get("class") or "").split()
            if tag == "div" and "plan-card" in classes:
                self.card = {}
            elif self.card is not None and tag == "h3":
                self.field = "name"
            elif self.card is not None and tag == "p" and "price" in classes:
                self.field = "price"

        def handle_endtag(self, tag):
            if tag in ("h2", "h3", "p"):
                self.field = None
            elif tag == "div" and self.card is not None:
                self.cards.append(self.card)
                self.card = None

        def handle_data(self, data):
            if self.field:
                self.card[self.field] = self.card.get(self.field, "") + data


    def plans(path):
        p = PlanParser()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        found = {}
        for card in p.cards:
            amount = re.search(r"\\d[\\d,]*(?:\\.\\d+)?", card["price"]).group().replace(",", "")
            found[card["name"].strip()] = float(amount)
        return found


    rows = []
    for old_path in sorted(glob.glob(f"{OLD}/*.html")):
        page = os.path.basename(old_path)
        old, new = plans(old_path), plans(os.path.join(NEW, page))
        for plan in sorted(old.keys() | new.keys()):  # match by name, not position
            o, n = old.get(plan), new.get(plan)
            status = ("new" if o is None else "discontinued" if n is None
                      else "unchanged" if o == n else "changed")
            pct = f"{(n - o) / o * 100:+.1f}" if o and n else ""
            rows.append([page.removesuffix(".html"), plan, f"{o:.2f}" if o else "",
                         f"{n:.2f}" if n else "", pct, status])

    os.makedirs("out", exist_ok=True)
    with open("out/price_changes.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\\n")
        w.writerow(["competitor", "plan", "old_price", "new_price", "change_pct", "status"])
        w.writerows(rows)
    states = ("changed", "unchanged", "new", "discontinued")
    counts = {s: sum(r[-1] == s for r in rows) for s in states}
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    """
)


def _prices_playbook(ctx: Ctx) -> Playbook:
    yield sh(
        "ls snapshots/*; grep -c 'plan-card' snapshots/*/*.html",
        say="Let me see both snapshots.",
    )
    yield read("snapshots/2026-10-01/acme.html", say="Reading an October pricing page.")
    yield write("diff_prices.py", _PRICES_V1, say="Writing a diff that matches plans by name.")
    run = yield sh("python3 diff_prices.py")
    if not run.ok:
        # The November cards use <h2 class="plan-title"> instead of <h3>: no name is captured.
        yield read("snapshots/2026-11-01/acme.html", say="No name parsed; reading a November page.")
        yield edit(
            "diff_prices.py",
            'elif self.card is not None and tag == "h3":',
            'elif self.card is not None and tag in ("h2", "h3"):',
            say="The new cards use <h2> for the plan name; accepting both headings.",
        )
        run = yield sh("python3 diff_prices.py")
    yield Reply(f"Compared the two snapshots into out/price_changes.csv: {run.stdout.strip()}.")
    check, _ = yield [
        sh(
            "grep -E ',(new|discontinued)$' out/price_changes.csv",
            say="Looking at added and dropped plans and the biggest increases.",
        ),
        sh("sort -t, -k5 -g out/price_changes.csv | tail -2"),
    ]
    rows = [ln.split(",") for ln in check.stdout.splitlines()]
    flagged = [f"{r[0]} {r[1]} ({r[-1]})" for r in rows if r[-1] in ("new", "discontinued")]
    yield Reply(
        f"Checked: plans are matched by name across the markup change; flagged "
        f"{', '.join(flagged)}, and each changed plan has its percentage change."
    )


_PRICES_VERIFY = r"""
import csv, glob, os, re, sys
def plans(path, tag):
    t = open(path, encoding="utf-8").read()
    out = {}
    for card in re.findall(r'<div class="plan-card.*?</div>', t, re.S):
        name = re.search(rf"<{tag}[^>]*>([^<]+)</{tag}>", card).group(1).strip()
        price = re.sub(r"<[^>]+>", "", re.search(r'<p class="price">(.*?)</p>', card).group(1))
        out[name] = float(re.search(r"\d+(?:\.\d+)?", price).group())
    return out
want = {}
for p in glob.glob("snapshots/2026-10-01/*.html"):
    comp = os.path.basename(p)[:-5]
    old, new = plans(p, "h3"), plans(p.replace("2026-10-01", "2026-11-01"), "h2")
    for plan in old.keys() | new.keys():
        o, n = old.get(plan), new.get(plan)
        st = ("new" if o is None else "discontinued" if n is None
              else "unchanged" if o == n else "changed")
        want[(comp, plan)] = (o, n, st)
try:
    rows = list(csv.DictReader(open("out/price_changes.csv", encoding="utf-8")))
except FileNotFoundError:
    sys.exit("out/price_changes.csv is missing")
got = {(r["competitor"], r["plan"]): r for r in rows}
if set(got) != set(want) or len(rows) != len(want):
    sys.exit(f"expected one row per plan {sorted(want)}, got {sorted(got)}")
num = lambda v: float(v) if v.strip() else None
for key, (o, n, st) in want.items():
    r = got[key]
    if r["status"].strip().lower() != st:
        sys.exit(f"{key}: status {r['status']!r}, expected {st}")
    for col, v in (("old_price", o), ("new_price", n)):
        g = num(r[col])
        if (g is None) != (v is None) or (v is not None and abs(g - v) > 0.005):
            sys.exit(f"{key}: {col} {r[col]!r}, expected {v}")
    if o and n and abs(float(r["change_pct"]) - (n - o) / o * 100) > 0.06:
        sys.exit(f"{key}: change_pct {r['change_pct']!r} is wrong")
print(f"ok: {len(rows)} plans")
"""

# ---------------------------------------------------------------- web-fix-job-scraper

_JOBS_OLD = textwrap.dedent(
    '''\
    """Scrape job listings from the saved job board pages in site/jobs/."""

    import json
    import sys
    from html.parser import HTMLParser
    from pathlib import Path

    FIELDS = ("title", "company", "location", "posted")


    class JobParser(HTMLParser):
        """Collects one dict per <tr class="job-row">, reading its <td class="..."> cells."""

        def __init__(self):
            super().__init__()
            self.jobs = []
            self.current = None
            self.field = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "tr" and attrs.get("class") == "job-row":
                self.current = {}
            elif tag == "td" and self.current is not None and attrs.get("class") in FIELDS:
                self.field = attrs["class"]

        def handle_endtag(self, tag):
            if tag == "td":
                self.field = None
            elif tag == "tr" and self.current is not None:
                self.jobs.append(self.current)
                self.current = None

        def handle_data(self, data):
            if self.field:
                self.current[self.field] = self.current.get(self.field, "") + data.strip()


    def parse_listings(html):
        parser = JobParser()
        parser.feed(html)
        return parser.jobs


    def scrape(site_dir):
        jobs = []
        for page in sorted(Path(site_dir).glob("*.html")):
            jobs.extend(parse_listings(page.read_text(encoding="utf-8")))
        return jobs


    def main(argv):
        site_dir = argv[1] if len(argv) > 1 else "site/jobs"
        out = Path(argv[2] if len(argv) > 2 else "out/jobs.json")
        jobs = scrape(site_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(jobs, indent=2) + "\\n")
        print(f"{len(jobs)} listings written to {out}")


    if __name__ == "__main__":
        main(sys.argv)
    '''
)

_JOBS_NEW = _JOBS_OLD.replace(
    textwrap.dedent(
        '''\
        class JobParser(HTMLParser):
            """Collects one dict per <tr class="job-row">, reading its <td class="..."> cells."""

            def __init__(self):
                super().__init__()
                self.jobs = []
                self.current = None
                self.field = None

            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                if tag == "tr" and attrs.get("class") == "job-row":
                    self.current = {}
                elif tag == "td" and self.current is not None and attrs.get("class") in FIELDS:
                    self.field = attrs["class"]

            def handle_endtag(self, tag):
                if tag == "td":
                    self.field = None
                elif tag == "tr" and self.current is not None:
                    self.jobs.append(self.current)
                    self.current = None

            def handle_data(self, data):
                if self.field:
                    self.current[self.field] = self.current.get(self.field, "") + data.strip()
        '''
    ),
    textwrap.dedent(
        '''\
        class JobParser(HTMLParser):
            """Collects one dict per <article class="job-card">, reading its data-* attributes."""

            def __init__(self):
                super().__init__()
                self.jobs = []

            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                if tag == "article" and attrs.get("class") == "job-card":
                    self.jobs.append({f: (attrs.get(f"data-{f}") or "").strip() for f in FIELDS})
        '''
    ),
)

_JOBS_PATCH = "".join(
    difflib.unified_diff(
        _JOBS_OLD.splitlines(keepends=True),
        _JOBS_NEW.splitlines(keepends=True),
        "a/scraper/jobs_scraper.py",
        "b/scraper/jobs_scraper.py",
    )
)

_JOBS_TEST = textwrap.dedent(
    """\
    import sys
    import unittest
    from pathlib import Path

    ROOT = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(ROOT / "scraper"))

    import jobs_scraper  # noqa: E402

    EXPECTED_LISTINGS = {count}


    class ScraperTest(unittest.TestCase):
        def setUp(self):
            self.jobs = jobs_scraper.scrape(ROOT / "site" / "jobs")

        def test_every_listing_is_parsed(self):
            self.assertEqual(len(self.jobs), EXPECTED_LISTINGS)

        def test_listing_fields(self):
            for job in self.jobs:
                for field in ("title", "company", "location", "posted"):
                    self.assertTrue(job.get(field), f"{{field}} missing in {{job}}")
                self.assertRegex(job["posted"], r"^\\d{{4}}-\\d{{2}}-\\d{{2}}$")


    if __name__ == "__main__":
        unittest.main()
    """
)

_JOB_TITLES = ["Backend Engineer", "Data Analyst", "Product Designer", "SRE", "QA Engineer",
               "Frontend Developer", "Support Lead", "ML Engineer", "Technical Writer",
               "Security Engineer", "Engineering Manager", "Recruiter"]  # fmt: skip
_COMPANIES = ["Acme", "Globex", "Initech", "Barnes & Co", "Umbrella Labs", "Hooli", "Vandelay"]
_CITIES = ["Berlin, DE", "Lisbon, PT", "Remote", "Austin, US", "Toronto, CA", "Leeds, UK"]


def _jobs_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files: dict[str, str | bytes] = {"scraper/jobs_scraper.py": _JOBS_OLD}
    total, n = 0, 1000 + rng.randrange(500)
    for page in (1, 2, 3):
        count = rng.randrange(14, 17)
        featured = set(rng.sample(range(3, count), 2))
        cards = []
        for i in range(count):
            n += 1
            title, company = rng.choice(_JOB_TITLES), rng.choice(_COMPANIES)
            city, posted = (
                rng.choice(_CITIES),
                f"2026-0{rng.randrange(1, 4)}-{rng.randrange(1, 29):02d}",
            )
            cls = "job-card job-card--featured" if i in featured else "job-card"
            esc = html.escape
            cards.append(
                f'<article class="{cls}" data-job-id="J{n}" data-title="{esc(title)}" '
                f'data-company="{esc(company)}" data-location="{esc(city)}" '
                f'data-posted="{posted}">\n'
                f'  <h3 class="job-card__title">{esc(title)}</h3>\n'
                f'  <p class="job-card__meta">{esc(company)} &middot; {esc(city)}</p>\n'
                f'  <time datetime="{posted}">{posted[5:]}</time>\n'
                f'  <a href="/jobs/J{n}">View role</a>\n</article>'
            )
        total += count
        nav = (
            f'<nav class="pager"><a href="page-{page + 1}.html">Next</a></nav>' if page < 3 else ""
        )
        files[f"site/jobs/page-{page}.html"] = _page(
            f"Jobs - page {page}",
            '<main class="job-board">\n<h1>Open roles</h1>\n'
            + "\n".join(cards)
            + f"\n</main>\n{nav}",
        )
    files["tests/test_scraper.py"] = _JOBS_TEST.format(count=total)
    return Fixture(files), {"listings": total}


def _jobs_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls scraper site/jobs tests; grep -c '<article' site/jobs/*.html; "
            "grep -m2 -A4 '<article' site/jobs/page-1.html",
            say="Looking at the new job board markup.",
        ),
        read("scraper/jobs_scraper.py", say="Reading the scraper."),
    ]
    yield patch(
        _JOBS_PATCH, say='Rewriting the parser for <article class="job-card"> data attributes.'
    )
    test = yield sh("python3 -m unittest discover -s tests -v")
    if not test.ok:
        # Featured cards carry a second class, so the exact class comparison skips them.
        yield edit(
            "scraper/jobs_scraper.py",
            'if tag == "article" and attrs.get("class") == "job-card":',
            'if tag == "article" and "job-card" in (attrs.get("class") or "").split():',
            say="A few cards are 'job-card job-card--featured'; matching the class token instead.",
        )
        test = yield sh(
            "python3 -m unittest discover -s tests -v && python3 scraper/jobs_scraper.py"
        )
    written = test.stdout.strip().splitlines()[-1] if test.stdout.strip() else "done"
    yield Reply(f"Fixed the scraper for the card markup; the tests pass and {written}.")
    total, empty = yield [
        sh("jq length out/jobs.json", say="Checking the output file."),
        sh('jq -r \'.[] | select(.posted == "" or .title == "")\' out/jobs.json | wc -l'),
    ]
    nums = total.stdout.split()[:1] + empty.stdout.split()[-1:]
    yield Reply(
        f"Checked: out/jobs.json holds {nums[0] if nums else '?'} listings and "
        f"{nums[-1] if nums else '?'} have an empty title or date."
    )


_JOBS_VERIFY = r"""
import html, json, re, subprocess, sys
from pathlib import Path
want = []
for p in sorted(Path("site/jobs").glob("*.html")):
    for attrs in re.findall(r"<article ([^>]*)>", p.read_text(encoding="utf-8")):
        a = {k: html.unescape(v) for k, v in re.findall(r'data-(\w+)="([^"]*)"', attrs)}
        want.append((a["title"], a["company"], a["location"], a["posted"]))
test = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests"],
                      capture_output=True, text=True)
if test.returncode != 0:
    sys.exit("tests/test_scraper.py fails: " + test.stderr[-300:])
try:
    jobs = json.load(open("out/jobs.json"))
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"out/jobs.json missing or invalid: {e}")
got = [(j.get("title"), j.get("company"), j.get("location"), j.get("posted")) for j in jobs]
if sorted(got) != sorted(want):
    sys.exit(f"out/jobs.json has {len(got)} listings; expected the {len(want)} on the pages")
print(f"ok: {len(got)} listings")
"""

# ---------------------------------------------------------------- web-extract-team-contacts

_TEAM = {  # page -> (country, people as (name, role, email local part))
    "engineering.html": ("US", [("Maya Chen", "Staff Engineer", "maya.chen"),
                                ("Liam Brooks", "Backend Engineer", "liam.brooks"),
                                ("Ava Patel", "Engineering Manager", "ava.patel"),
                                ("Noah Rivera", "Site Reliability Engineer", "noah.rivera"),
                                ("Grace Kim", "QA Lead", "grace.kim")]),
    "sales.html": ("US", [("Ethan Walsh", "Account Executive", "ethan.walsh"),
                          ("Olivia Grant", "Sales Engineer", "olivia.grant"),
                          ("Lucas Meyer", "VP Sales", "lucas.meyer"),
                          ("Chloe Martin", "Sales Operations", "chloe.martin")]),
    "london.html": ("GB", [("Harriet Cole", "Office Lead", "harriet.cole"),
                           ("Oliver Hughes", "Support Engineer", "oliver.hughes"),
                           ("Amelia Price", "Customer Success", "amelia.price"),
                           ("Jack Turner", "Solutions Architect", "jack.turner")]),
    "berlin.html": ("DE", [("Jürgen Weiß", "Head of Platform", "juergen.weiss"),
                           ("Zoë Krämer", "Data Engineer", "zoe.kraemer"),
                           ("Björn Müller", "Security Engineer", "bjoern.mueller"),
                           ("Anneliese Groß", "Office Manager", "anneliese.gross")]),
}  # fmt: skip


def _phone(rng: random.Random, country: str) -> str:
    if country == "US":
        area, line = rng.randrange(201, 990), rng.randrange(100, 10000)
        return rng.choice([f"({area}) 555-{line:04d}", f"{area}.555.{line:04d}",
                           f"+1 {area}-555-{line:04d}", f"1-{area}-555-{line:04d}"])  # fmt: skip
    if country == "GB":
        line = rng.randrange(1000, 10000)
        return rng.choice([f"020 7946 {line}", f"+44 20 7946 {line}", f"(020) 7946 {line}",
                           f"07700 90{line % 10000:04d}"])  # fmt: skip
    line = rng.randrange(1000000, 9999999)
    return rng.choice([f"030 {line}", f"+49 30 {line}", f"(030) {str(line)[:3]}-{str(line)[3:]}"])


def _person_card(rng: random.Random, person: tuple, country: str, phone: str) -> str:
    name, role, local = person
    style = rng.choice(["mailto", "brackets", "parens"])
    if style == "mailto":
        email = f'<a class="email" href="mailto:{local}@example.com">{local}@example.com</a>'
    elif style == "brackets":
        email = f'<span class="email">{local} [at] example [dot] com</span>'
    else:
        email = f'<span class="email">{local}(at)example(dot)com</span>'
    return (
        f'<div class="person" data-country="{country}">\n'
        f'  <h3 class="name">{html.escape(name)}</h3>\n  <p class="role">{role}</p>\n'
        f'  <p>{email}</p>\n  <p class="phone">{phone}</p>\n</div>'
    )


def _contacts_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files: dict[str, str | bytes] = {}
    people = []
    for page, (country, team) in _TEAM.items():
        cards = []
        for i, person in enumerate(team):
            phone = _phone(rng, country) if i != 2 else rng.choice(["ext. 4410", "via reception"])
            people.append((person, country, phone))
            cards.append(_person_card(rng, person, country, phone))
        body = f'<h1>Our team</h1>\n<section class="team">\n{chr(10).join(cards)}\n</section>'
        if page == "berlin.html":  # saved by an old CMS in Latin-1
            text = _page("Team Berlin", body, charset="iso-8859-1")
            files[f"site/about/{page}"] = text.encode("latin-1")
        else:
            files[f"site/about/{page}"] = _page(f"Team {page[:-5].title()}", body)
    # Leadership repeats three people who also appear on their team pages.
    leaders = rng.sample([p for p in people if p[1] != "DE"], 3)
    cards = [_person_card(rng, person, country, phone) for person, country, phone in leaders]
    files["site/about/leadership.html"] = _page(
        "Leadership",
        '<h1>Leadership</h1>\n<section class="team">\n' + "\n".join(cards) + "\n</section>",
    )
    return Fixture(files), {"people": len(people)}


_CONTACTS_V1 = textwrap.dedent(
    """\
    import csv, os, re
    from html.parser import HTMLParser
    from pathlib import Path

    CC = {"US": "1", "GB": "44", "DE": "49"}


    class PeopleParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.people, self.field = [], None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            cls = a.get("class") or ""
            if cls == "person":
                self.people.append({"country": a.get("data-country", "")})
            elif self.people and cls in ("name", "role", "email", "phone"):
                self.field = cls
                if a.get("href", "").startswith("mailto:"):
                    self.people[-1]["email"] = a["href"][len("mailto:"):]
                    self.field = None

        def handle_endtag(self, tag):
            self.field = None

        def handle_data(self, data):
            if self.field:
                person = self.people[-1]
                person[self.field] = (person.get(self.field, "") + data).strip()


    def deobfuscate(text):
        text = re.sub(r"\\s*[\\[(]\\s*at\\s*[\\])]\\s*", "@", text, flags=re.I)
        return re.sub(r"\\s*[\\[(]\\s*dot\\s*[\\])]\\s*", ".", text, flags=re.I).lower()


    def e164(raw, country):
        digits = re.sub(r"\\D", "", raw)
        if raw.strip().startswith("+"):
            number = digits
        elif country == "US" and len(digits) == 11 and digits.startswith("1"):
            number = digits
        elif country == "US" and len(digits) == 10:
            number = "1" + digits
        elif country in ("GB", "DE") and digits.startswith("0"):
            number = CC[country] + digits[1:]
        else:
            return None
        return "+" + number if 8 <= len(number) <= 15 else None


    contacts = {}
    for path in sorted(Path("site/about").glob("*.html")):
        text = path.read_text(encoding="utf-8")
        parser = PeopleParser()
        parser.feed(text)
        for person in parser.people:
            email = deobfuscate(person.get("email", ""))
            if email in contacts:  # same person listed on two pages
                continue
            phone = e164(person.get("phone", ""), person["country"])
            flags = []
            if not re.fullmatch(r"[\\w.+-]+@[\\w-]+(\\.[\\w-]+)+", email):
                flags.append("email not recognised")
            if not phone:
                flags.append(f"phone not normalised: {person.get('phone', '')}")
            contacts[email] = {"name": person.get("name", ""), "role": person.get("role", ""),
                               "email": email, "phone": phone or "",
                               "country": person["country"], "flag": "; ".join(flags)}

    os.makedirs("out", exist_ok=True)
    with open("out/contacts.csv", "w", newline="", encoding="utf-8") as f:
        cols = ["name", "role", "email", "phone", "country", "flag"]
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\\n")
        w.writeheader()
        w.writerows(sorted(contacts.values(), key=lambda c: c["name"]))
    flagged = sum(1 for c in contacts.values() if c["flag"])
    print(f"{len(contacts)} people, {flagged} flagged for review")
    """
)


def _contacts_playbook(ctx: Ctx) -> Playbook:
    yield sh(
        "ls site/about; grep -c 'class=\"person\"' site/about/*.html",
        say="Let me see the team pages.",
    )
    yield read("site/about/engineering.html", say="Reading one directory page.")
    yield write("extract_contacts.py", _CONTACTS_V1, say="Writing the contact extractor.")
    run = yield sh("python3 extract_contacts.py")
    if not run.ok:
        # berlin.html was saved as ISO-8859-1, so reading it as UTF-8 fails on the umlauts.
        yield sh("file site/about/*.html; grep -o 'charset=[^>]*' site/about/*.html",
                 say="A page is not UTF-8; checking the declared charsets.")  # fmt: skip
        yield edit(
            "extract_contacts.py",
            '    text = path.read_text(encoding="utf-8")',
            "    raw = path.read_bytes()\n"
            "    declared = re.search(rb'charset=\"?([\\w-]+)', raw)\n"
            '    text = raw.decode(declared.group(1).decode() if declared else "utf-8")',
            say="Decoding each page with the charset it declares.",
        )
        run = yield sh("python3 extract_contacts.py")
    yield Reply(f"Wrote out/contacts.csv: {run.stdout.strip()}.")
    _, check = yield [
        sh("grep 'Weiß\\|Krämer' out/contacts.csv", say="Checking the accented names"),
        sh("awk -F, 'NR > 1 && $NF != \"\"' out/contacts.csv", say="and the flagged rows."),
    ]
    flagged = [ln.split(",")[0] for ln in check.stdout.splitlines() if "not normalised" in ln]
    yield Reply(
        f"Checked: the Berlin names decode correctly, every person appears once, and "
        f"{len(flagged)} entries are flagged because their phone could not be normalised "
        f"({', '.join(flagged)})."
    )


_CONTACTS_VERIFY = r"""
import csv, glob, html, re, sys
CC = {"US": "1", "GB": "44", "DE": "49"}
def e164(raw, c):
    d = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        n = d
    elif c == "US" and len(d) in (10, 11):
        n = d if len(d) == 11 else "1" + d
    elif c in ("GB", "DE") and d.startswith("0"):
        n = CC[c] + d[1:]
    else:
        return None
    return "+" + n if 8 <= len(n) <= 15 else None
want = {}
for p in glob.glob("site/about/*.html"):
    raw = open(p, "rb").read()
    t = raw.decode(re.search(rb'charset="([^"]+)"', raw).group(1).decode())
    cards = re.findall(r'<div class="person" data-country="(\w+)">(.*?)</div>', t, re.S)
    for country, card in cards:
        name = html.unescape(re.search(r'class="name">([^<]+)<', card).group(1))
        m = re.search(r'href="mailto:([^"]+)"', card) or re.search(r'class="email">([^<]+)<', card)
        email = re.sub(r"\s*[\[(]dot[\])]\s*", ".", re.sub(r"\s*[\[(]at[\])]\s*", "@", m.group(1)))
        phone = re.search(r'class="phone">([^<]*)<', card).group(1)
        want[email.lower()] = (name, e164(phone, country))
try:
    rows = list(csv.DictReader(open("out/contacts.csv", encoding="utf-8")))
except FileNotFoundError:
    sys.exit("out/contacts.csv is missing")
emails = [r["email"].strip().lower() for r in rows]
if len(emails) != len(set(emails)) or set(emails) != set(want):
    sys.exit(f"expected each of the {len(want)} people once (by email), got {len(rows)} rows")
for r in rows:
    name, phone = want[r["email"].strip().lower()]
    if r["name"] != name:
        sys.exit(f"name {r['name']!r} != {name!r}")
    if phone and (r["phone"] != phone or r["flag"].strip()):
        sys.exit(f"{name}: phone {r['phone']!r} != {phone} (or wrongly flagged)")
    if not phone and not r["flag"].strip():
        sys.exit(f"{name}: phone cannot be normalised but the entry is not flagged")
print(f"ok: {len(rows)} contacts")
"""

# ---------------------------------------------------------------- web-collect-paginated-listings

_HOMES = ["Sunny 2-bed flat", "Loft near the river", "Family house with garden",
          "Studio downtown", "Renovated townhouse", "Quiet 1-bed", "Penthouse with terrace",
          "Cottage by the park"]  # fmt: skip
_TOWNS = ["Porto", "Lyon", "Ghent", "Turin", "Leipzig", "Utrecht"]


def _listings_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    n = 4000 + rng.randrange(3000)
    pages: list[list[tuple]] = []
    for k in range(9):
        items = []
        if k in (2, 4, 7):  # the previous page's last listing shows up again
            items.append(pages[-1][-1])
        for _ in range(rng.randrange(7, 10)):
            n += rng.randrange(1, 9)
            items.append(
                (f"L{n}", rng.choice(_HOMES), rng.randrange(450, 3200), rng.choice(_TOWNS))
            )
        pages.append(items)
    unique = len({item[0] for page in pages for item in page})
    files = {}
    for k, items in enumerate(pages, start=1):
        lis = "\n".join(
            f'<li class="listing" data-id="{i}">\n  <h3 class="title">{t}</h3>\n'
            f'  <span class="price">&euro;{p:,}</span> &middot; '
            f'<span class="city">{c}</span>\n</li>'
            for i, t, p, c in items
        )
        nxt = k + 1 if k < 9 else 2  # a stale "next" link on the last page points back
        prev = f'<a rel="prev" href="page-{k - 1}.html">Previous</a> ' if k > 1 else ""
        summary = (
            f'<p class="summary">Showing <strong>{unique}</strong> listings</p>\n' if k == 1 else ""
        )
        body = (
            f'<h1>Homes for rent - page {k}</h1>\n{summary}<ul class="results">\n{lis}\n</ul>\n'
            f'<nav class="pagination">{prev}<a rel="next" href="page-{nxt}.html">Next</a></nav>'
        )
        files[f"site/listings/page-{k}.html"] = _page(f"Listings page {k}", body)
    return Fixture(files), {"unique": unique}


_LISTINGS_V1 = textwrap.dedent(
    """\
    import json, os
    from html.parser import HTMLParser


    class ListingParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.items, self.next, self.stated = [], None, None
            self.field, self.in_summary = None, False

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "a" and a.get("rel") == "next":
                self.next = a["href"]
            elif tag == "li" and a.get("class") == "listing":
                self.items.append({"id": a["data-id"]})
            elif self.items and a.get("class") in ("title", "price", "city"):
                self.field = a["class"]
            elif a.get("class") == "summary":
                self.in_summary = True

        def handle_endtag(self, tag):
            self.field = None
            if tag == "p":
                self.in_summary = False

        def handle_data(self, data):
            if self.field:
                self.items[-1][self.field] = data.strip()
            elif self.in_summary and data.strip().isdigit():
                self.stated = int(data)


    page = "site/listings/page-1.html"
    listings, stated, pages = {}, None, 0
    while page:
        with open(page, encoding="utf-8") as f:
            parser = ListingParser()
            parser.feed(f.read())
        pages += 1
        stated = stated or parser.stated
        for item in parser.items:  # dedupe by listing id
            listings.setdefault(item["id"], {**item, "page": os.path.basename(page)})
        page = os.path.join(os.path.dirname(page), parser.next) if parser.next else None

    os.makedirs("out", exist_ok=True)
    with open("out/listings.jsonl", "w") as f:
        for item in listings.values():
            f.write(json.dumps(item, ensure_ascii=False) + "\\n")
    print(f"{pages} pages, {len(listings)} unique listings (page 1 says {stated})")
    """
)


def _listings_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls site/listings; grep -c 'class=\"listing\"' site/listings/*.html",
            say="Let me see the listing pages,",
        ),
        read("site/listings/page-1.html", say="and read the first one."),
    ]
    yield write("collect.py", _LISTINGS_V1, say="Writing a collector that follows rel=next.")
    run = yield sh("python3 collect.py", timeout_s=2)
    if not run.ok:
        # The last page's rel=next points back to page 2, so the loop never ends.
        yield sh("grep -o 'rel=\"next\" href=\"[^\"]*\"' site/listings/*.html",
                 say="It never finished; checking where each next link points.")  # fmt: skip
        yield edit(
            "collect.py",
            "while page:\n",
            "visited = set()\nwhile page and page not in visited:\n    visited.add(page)\n",
            say="page-9 links back to page-2; stopping at pages already visited.",
        )
        run = yield sh("python3 collect.py", timeout_s=10)
    yield Reply(f"Collected the listings into out/listings.jsonl: {run.stdout.strip()}.")
    lines, dupes = yield [
        sh("wc -l < out/listings.jsonl", say="Counting lines and duplicate ids."),
        sh("jq -r .id out/listings.jsonl | sort | uniq -d | wc -l"),
    ]
    nums = lines.stdout.split()[:1] + dupes.stdout.split()[-1:]
    yield Reply(
        f"Checked: {nums[0] if nums else '?'} listings, {nums[-1] if nums else '?'} duplicate ids, "
        "matching the total stated on page 1."
    )


_LISTINGS_VERIFY = r"""
import glob, json, re, sys
ids = set()
for p in glob.glob("site/listings/page-*.html"):
    ids |= set(re.findall(r'class="listing" data-id="([^"]+)"', open(p, encoding="utf-8").read()))
first = open("site/listings/page-1.html", encoding="utf-8").read()
stated = int(re.search(r"Showing <strong>(\d+)</strong>", first).group(1))
try:
    rows = [json.loads(line) for line in open("out/listings.jsonl") if line.strip()]
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"out/listings.jsonl missing or invalid: {e}")
got = [r.get("id") for r in rows]
if len(got) != len(set(got)):
    sys.exit("duplicate listing ids in out/listings.jsonl")
if set(got) != ids or len(got) != stated:
    sys.exit(f"{len(got)} listings collected; page 1 states {stated}")
if not all(r.get("title") for r in rows):
    sys.exit("some listings have no title")
print(f"ok: {len(got)} listings")
"""

# ---------------------------------------------------------------- web-polite-robots-crawl

_ROBOTS_TXT = "User-agent: *\nDisallow: /private/\nDisallow: /drafts/\nRequest-rate: 5/1\n"


def _robots_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    posts = rng.sample(["hello-world", "release-notes", "behind-the-scenes", "q3-recap", "tips"], 3)
    items = rng.sample(["lamp", "chair", "desk", "shelf"], 2)
    pages = {
        "index.html": ["about.html", "blog/index.html", "products/index.html", "docs/index.html",
                       "private/index.html", "/drafts/index.html"],
        "about.html": ["index.html", "team.html", "contact.html"],  # team.html was removed
        "contact.html": ["index.html"],
        "blog/index.html": [f"{p}.html" for p in posts] + ["../drafts/upcoming.html"],
        "products/index.html": [f"{i}.html" for i in items] + ["../private/pricing-internal.html"],
        "docs/index.html": ["faq.html"],
        "docs/faq.html": ["../index.html"],
        "private/index.html": ["salaries.html", "pricing-internal.html"],
        "private/salaries.html": [], "private/pricing-internal.html": [],
        "drafts/index.html": ["upcoming.html", "teaser.html"],
        "drafts/upcoming.html": [], "drafts/teaser.html": [],
    }  # fmt: skip
    for p in posts:
        pages[f"blog/{p}.html"] = ["index.html"]
    for i in items:
        pages[f"products/{i}.html"] = ["index.html"]
    files = {"site/robots.txt": _ROBOTS_TXT}
    for path, hrefs in pages.items():
        title = path.removesuffix(".html").replace("/", " / ").title()
        links = "\n".join(f'  <li><a href="{h}">{h}</a></li>' for h in hrefs)
        files[f"site/{path}"] = _page(title, f"<h1>{title}</h1>\n<ul>\n{links}\n</ul>")
    allowed = [p for p in pages if not p.startswith(("private/", "drafts/"))]
    return Fixture(files), {"allowed_pages": len(allowed)}


_ROBOTS_CRAWLER_V1 = textwrap.dedent(
    '''\
    """Polite crawler: honours robots.txt (urllib.robotparser) and its request rate."""

    import csv
    import os
    import time
    from datetime import datetime
    from html.parser import HTMLParser
    from urllib import robotparser
    from urllib.parse import urldefrag, urljoin
    from urllib.request import urlopen

    BASE = "http://127.0.0.1:8000/"
    AGENT = "ise-polite-crawler"


    def fetch(url):
        with urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8")


    class LinkParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.links = []

        def handle_starttag(self, tag, attrs):
            href = dict(attrs).get("href")
            if tag == "a" and href:
                self.links.append(href)


    def main():
        robots = robotparser.RobotFileParser(BASE + "robots.txt")
        robots.read()
        rate = robots.request_rate(AGENT)  # Request-rate: N/S allows N requests per S seconds
        delay = rate.seconds / rate.requests if rate else float(robots.crawl_delay(AGENT) or 1)
        start = BASE + "index.html"
        queue, seen, log, skipped = [start], {start}, [], []
        last = time.monotonic()  # robots.txt was the first request
        while queue:
            url = queue.pop(0)
            if not robots.can_fetch(AGENT, url):
                skipped.append(url)
                continue
            time.sleep(max(0.0, delay - (time.monotonic() - last)))
            last = time.monotonic()
            requested = datetime.now().isoformat(timespec="milliseconds")
            status, body = fetch(url)
            log.append((requested, url, status))
            parser = LinkParser()
            parser.feed(body)
            for href in parser.links:
                link = urldefrag(urljoin(url, href)).url
                if link.startswith(BASE) and link not in seen:
                    seen.add(link)
                    queue.append(link)
        os.makedirs("out", exist_ok=True)
        with open("out/crawl_log.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\\n")
            w.writerow(["timestamp", "url", "status"])
            w.writerows(log)
        print(f"{len(log)} requests logged, {len(skipped)} disallowed URLs skipped, "
              f"{delay:g}s between requests")


    if __name__ == "__main__":
        main()
    '''
)


def _robots_playbook(ctx: Ctx) -> Playbook:
    server, _ = yield [
        start(
            "mkdir -p out && python3 -u -m http.server 8000 --bind 127.0.0.1 --directory site "
            "2>&1 | tee out/server.log",
            say="Serving site/ locally in the background, keeping its access log.",
        ),
        sh(
            "cat site/robots.txt; find site -type f | sort; for i in $(seq 50); do "
            "curl -s -o /dev/null http://127.0.0.1:8000/robots.txt && break; sleep 0.1; done; "
            "curl -sS -o /dev/null -w 'robots.txt: HTTP %{http_code}\\n' "
            "http://127.0.0.1:8000/robots.txt",
            say="Reading the robots rules and checking the server answers.",
        ),
    ]
    job = server.extras.get("job", "job1")
    yield write("scripts/crawl.py", _ROBOTS_CRAWLER_V1, say="Writing a robots-aware crawler.")
    run = yield sh("python3 scripts/crawl.py", timeout_s=90)
    if not run.ok:
        # about.html links to a removed page: urlopen raises HTTPError on the 404.
        yield edit(
            "scripts/crawl.py",
            "from urllib.request import urlopen\n\n"
            'BASE = "http://127.0.0.1:8000/"\n'
            'AGENT = "ise-polite-crawler"\n\n\n'
            "def fetch(url):\n"
            "    with urlopen(url, timeout=10) as resp:\n"
            '        return resp.status, resp.read().decode("utf-8")\n',
            "from urllib.error import HTTPError\n"
            "from urllib.request import urlopen\n\n"
            'BASE = "http://127.0.0.1:8000/"\n'
            'AGENT = "ise-polite-crawler"\n\n\n'
            "def fetch(url):\n"
            "    try:\n"
            "        with urlopen(url, timeout=10) as resp:\n"
            '            return resp.status, resp.read().decode("utf-8")\n'
            "    except HTTPError as err:  # a broken link: log its status and go on\n"
            '        return err.code, ""\n',
            say="A broken link returns 404 and urlopen raises; logging the status instead.",
        )
        run = yield sh("python3 scripts/crawl.py", timeout_s=90)
    yield kill(job, say="Stopping the server.")
    yield Reply(f"Crawled the local site politely: {run.stdout.strip()}. Log: out/crawl_log.csv.")
    log, _ = yield [
        output(job, say="Checking the server's access log for disallowed paths."),
        read("out/crawl_log.csv", say="And the crawler's own log with its timestamps."),
    ]
    hits = sum("GET /" in ln for ln in log.stdout.splitlines())
    bad = sum(("/private/" in ln or "/drafts/" in ln) for ln in log.stdout.splitlines())
    yield Reply(
        f"Checked: the server saw {hits} requests, {bad} of them under /private/ or /drafts/; "
        "the log's request times are at least 0.2 s apart, and the server is stopped."
    )


_ROBOTS_VERIFY = (
    _NO_SERVER_LEFT
    + r"""
import csv, os, posixpath, re, sys
from datetime import datetime
from urllib.parse import urlparse
if not os.path.exists("scripts/crawl.py"):
    sys.exit("scripts/crawl.py is missing")
if "robotparser" not in open("scripts/crawl.py").read():
    sys.exit("scripts/crawl.py does not use urllib.robotparser")
banned = ("private/", "drafts/")
reach, queue = {"index.html"}, ["index.html"]
while queue:
    page = queue.pop()
    for href in re.findall(r'href="([^"]+)"', open("site/" + page, encoding="utf-8").read()):
        t = href.lstrip("/") if href.startswith("/") else posixpath.normpath(
            posixpath.join(posixpath.dirname(page), href))
        if os.path.exists("site/" + t) and not t.startswith(banned) and t not in reach:
            reach.add(t)
            queue.append(t)
try:
    rows = list(csv.DictReader(open("out/crawl_log.csv")))
except FileNotFoundError:
    sys.exit("out/crawl_log.csv is missing")
paths = [urlparse(r["url"]).path.lstrip("/") for r in rows]
if any(p.startswith(banned) for p in paths):
    sys.exit("the crawler requested a disallowed path")
if not reach <= set(paths):
    sys.exit(f"allowed pages never visited: {sorted(reach - set(paths))}")
times = sorted(datetime.fromisoformat(r["timestamp"]) for r in rows)
gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
if min(gaps) < 0.18:
    sys.exit(f"requests only {min(gaps):.3f}s apart; robots.txt allows 5 per second")
if os.path.exists("out/server.log"):
    if re.search(r"GET /(private|drafts)/", open("out/server.log").read()):
        sys.exit("the server log shows requests to disallowed paths")
if server_running(b"http.server"):
    sys.exit("the http.server is still running")
print(f"ok: {len(rows)} visits, min gap {min(gaps):.3f}s")
"""
)

# ---------------------------------------------------------------- web-convert-docs-to-markdown

_DOC_TITLES = {"index": "Overview", "install": "Installation", "quickstart": "Quickstart",
               "config": "Configuration", "cli": "Command line", "api": "Python API",
               "faq": "FAQ", "changelog": "Changelog"}  # fmt: skip
_SNIPPETS = [
    ("bash", "pip install toolkit\ntoolkit --version"),
    ("python", "from toolkit import Client\n\nclient = Client(timeout=5)\n"
               "if client.retries < 3:\n    client.retries = 3"),
    ("toml", '[server]\nport = 8080\nhost = "127.0.0.1"'),
    ("json", '{"name": "demo", "tags": ["a", "b"]}'),
    ("bash", "toolkit init demo && cd demo\ntoolkit run --watch"),
    ("", "$ toolkit doctor\nall checks passed"),
]  # fmt: skip
_SECTIONS = ["Requirements", "Basic usage", "Options", "Troubleshooting", "Examples", "Limits"]
_ITEMS = ["Python 3.11 or newer", "A writable cache directory", "Network access for plugins",
          "git on the PATH", "About 50 MB of disk"]  # fmt: skip


def _doc_page(rng: random.Random, stem: str) -> str:
    title = _DOC_TITLES[stem]
    others = [s for s in _DOC_TITLES if s != stem]
    o1, o2 = rng.sample(others, 2)
    sections = rng.sample(_SECTIONS, 2)
    (lang1, code1), (lang2, code2) = rng.sample(_SNIPPETS, 2)

    def pre(lang: str, code: str) -> str:
        cls = f' class="language-{lang}"' if lang else ""
        return f"<pre><code{cls}>{html.escape(code, quote=False)}</code></pre>"

    items = rng.sample(_ITEMS, 4)
    main = textwrap.dedent(
        f"""\
        <main id="main">
        <h1>{title}</h1>
        <p>This page covers {title.lower()}. See <a href="{o1}.html">{_DOC_TITLES[o1]}</a> and
        <a href="{o2}.html#sec-{rng.randrange(1, 3)}">the {_DOC_TITLES[o2]} notes</a>, or ask on
        <a href="https://example.org/forum">the forum</a>.</p>
        <h2 id="sec-1">{sections[0]}</h2>
        <p>Run <code>toolkit {stem}</code> to <strong>prepare</strong> your project.</p>
        <ul>
        <li>{items[0]}
        <ul>
        <li>{items[1]}</li>
        <li>{items[2]}</li>
        </ul>
        </li>
        <li>{items[3]}</li>
        </ul>
        {pre(lang1, code1)}
        <h2 id="sec-2">{sections[1]}</h2>
        <ol>
        <li>Install the package</li>
        <li>Run the <em>doctor</em> command</li>
        </ol>
        {pre(lang2, code2)}
        </main>"""
    )
    all_pages = "".join(f'<li><a href="{s}.html">{t}</a></li>' for s, t in _DOC_TITLES.items())
    chrome_top = (
        '<header class="topbar"><a class="skip" href="#main">Skip to content</a>\n'
        '<nav><a href="index.html">Docs home</a> <a href="https://example.org/blog">Blog</a></nav>'
        "</header>\n"
        '<aside class="sidebar"><h4>On this page</h4><ul><li><a href="#sec-1">'
        f"{sections[0]}</a></li></ul>\n<h4>All pages</h4><ul>{all_pages}</ul></aside>\n"
    )
    footer = "\n<footer><p>&copy; 2026 Toolkit. All rights reserved.</p></footer>"
    return _page(f"{title} - Toolkit docs", chrome_top + main + footer)


def _docs_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {f"site/docs/{stem}.html": _doc_page(rng, stem) for stem in _DOC_TITLES}
    return Fixture(files), {"pages": len(files)}


_DOCS_V1 = textwrap.dedent(
    """\
    import os, re
    from html.parser import HTMLParser
    from pathlib import Path

    SKIP = {"header", "nav", "aside", "footer", "script", "style"}


    def link_target(href):
        if re.match(r"^[a-z]+:", href) or href.startswith("#"):
            return href
        path, _, frag = href.partition("#")
        if path.endswith(".html"):
            path = path[: -len(".html")] + ".md"
        return path + (f"#{frag}" if frag else "")


    class MarkdownConverter(HTMLParser):
        def __init__(self):
            super().__init__()
            self.out, self.skip, self.lists, self.hrefs, self.in_pre = [], 0, [], [], False

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag in SKIP:
                self.skip += 1
            if self.skip:
                return
            if tag in ("h1", "h2", "h3", "h4"):
                self.out.append("\\n\\n" + "#" * int(tag[1]) + " ")
            elif tag == "p":
                self.out.append("\\n\\n")
            elif tag in ("ul", "ol"):
                self.lists.append([tag, 0])
                if len(self.lists) == 1:
                    self.out.append("\\n")
            elif tag == "li":
                kind = self.lists[-1]
                kind[1] += 1
                marker = f"{kind[1]}." if kind[0] == "ol" else "-"
                self.out.append("\\n" + "  " * (len(self.lists) - 1) + marker + " ")
            elif tag == "pre":
                self.in_pre = True
            elif tag == "code" and self.in_pre:
                lang = (a.get("class") or "").removeprefix("language-")
                self.out.append(f"\\n\\n```{lang}\\n")
            elif tag == "code":
                self.out.append("`")
            elif tag in ("strong", "b"):
                self.out.append("**")
            elif tag in ("em", "i"):
                self.out.append("*")
            elif tag == "a":
                self.hrefs.append(link_target(a.get("href", "")))
                self.out.append("[")

        def handle_endtag(self, tag):
            if tag in SKIP:
                self.skip -= 1
                return
            if self.skip:
                return
            if tag in ("ul", "ol"):
                self.lists.pop()
                if not self.lists:
                    self.out.append("\\n")
            elif tag == "code" and self.in_pre:
                self.out.append("\\n```\\n")
            elif tag == "pre":
                self.in_pre = False
            elif tag == "code":
                self.out.append("`")
            elif tag in ("strong", "b"):
                self.out.append("**")
            elif tag in ("em", "i"):
                self.out.append("*")
            elif tag == "a":
                self.out.append(f"]({self.hrefs.pop()})")

        def handle_data(self, data):
            if self.skip:
                return
            if self.in_pre:
                self.out.append(data)
            elif data.strip():
                self.out.append(re.sub(r"\\s+", " ", data))


    count = 0
    for page in sorted(Path("site/docs").glob("*.html")):
        conv = MarkdownConverter()
        conv.feed(page.read_text(encoding="utf-8"))
        md = re.sub(r"\\n{3,}", "\\n\\n", "".join(conv.out)).strip()
        md = "\\n".join(line.rstrip() for line in md.splitlines()) + "\\n"
        (Path("docs_md") / f"{page.stem}.md").write_text(md, encoding="utf-8")
        count += 1
    print(f"converted {count} pages into docs_md/")
    """
)


def _docs_playbook(ctx: Ctx) -> Playbook:
    yield sh("ls site/docs; grep -c '<pre>' site/docs/*.html", say="Let me see the docs pages.")
    yield read("site/docs/install.html", say="Reading one page to see the chrome and the content.")
    yield write("to_markdown.py", _DOCS_V1, say="Writing an html.parser to Markdown converter.")
    run = yield sh("python3 to_markdown.py")
    if not run.ok:
        # The script writes into docs_md/ but never creates the directory.
        yield edit(
            "to_markdown.py",
            "count = 0\n",
            'os.makedirs("docs_md", exist_ok=True)\ncount = 0\n',
            say="docs_md/ does not exist yet; creating it first.",
        )
        run = yield sh("python3 to_markdown.py")
    yield Reply(f"Converted the docs: {run.stdout.strip()}, with fenced code and .md links.")
    files, leftovers = yield [
        sh(
            "ls docs_md; grep -c '^```' docs_md/*.md | head -3",
            say="Checking fences, leftover chrome and unrewritten links.",
        ),
        sh(
            "grep -l 'On this page\\|Skip to content' docs_md/*.md | wc -l; "
            "grep -o '([a-z]*\\.html[^)]*)' docs_md/*.md | wc -l"
        ),
    ]
    names = files.stdout.strip().splitlines()
    lines = leftovers.stdout.strip().splitlines()
    yield Reply(
        f"Checked: {len([ln for ln in names if ln.endswith('.md')])} Markdown files; "
        f"{lines[-2] if len(lines) > 1 else '?'} still contain navigation chrome and "
        f"{lines[-1] if lines else '?'} internal links still point at .html."
    )


_DOCS_VERIFY = r"""
import glob, html, os, re, sys
def text(s):
    return html.unescape(re.sub(r"<[^>]+>", "", s)).strip()
for page in sorted(glob.glob("site/docs/*.html")):
    stem = os.path.basename(page)[:-5]
    try:
        md = open(f"docs_md/{stem}.md", encoding="utf-8").read()
    except FileNotFoundError:
        sys.exit(f"docs_md/{stem}.md is missing")
    main = re.search(r"<main[^>]*>(.*?)</main>", open(page, encoding="utf-8").read(), re.S).group(1)
    lines = [ln.rstrip() for ln in md.splitlines()]
    for level, h in re.findall(r"<h([1-3])[^>]*>(.*?)</h\1>", main):
        if "#" * int(level) + " " + text(h) not in lines:
            sys.exit(f"{stem}.md: heading {text(h)!r} missing or at the wrong level")
    for marker in ("Skip to content", "On this page", "All rights reserved", "All pages"):
        if marker in md:
            sys.exit(f"{stem}.md still contains navigation chrome ({marker!r})")
    blocks = re.findall(r'<pre><code(?: class="language-(\w+)")?>(.*?)</code></pre>', main, re.S)
    for lang, code in blocks:
        if f"```{lang}\n{html.unescape(code)}\n```" not in md:
            sys.exit(f"{stem}.md: a {lang or 'plain'} code block is not fenced verbatim")
    for href in re.findall(r'href="([^"]+)"', main):
        want = href if "://" in href else re.sub(r"\.html", ".md", href)
        if f"]({want})" not in md:
            sys.exit(f"{stem}.md: link {href!r} should appear as ]({want})")
    if re.search(r"\]\([^):]*\.html", md):
        sys.exit(f"{stem}.md: an internal link still points to .html")
    if "<ul>\n<li>" in main and not re.search(r"^ {2,}[-*] ", md, re.M):
        sys.exit(f"{stem}.md: nested list items are not indented")
print("ok: every page converted")
"""

# ---------------------------------------------------------------- web-audit-html-forms

# page, opening <form> tag, fields (tag, type, name)
_FORM_SPECS = [
    ("index.html", '<form action="/search" class="search">', [("input", "search", "q")]),
    ("account/login.html", '<form action="/account/login" method="post">',
     [("input", "email", "email"), ("input", "password", "password")]),
    ("account/register.html", '<FORM ACTION="/account/register" METHOD="POST">',
     [("input", "text", "name"), ("input", "email", "email"), ("input", "password", "password"),
      ("input", "checkbox", "terms")]),
    ("account/settings.html",
     '<form action="/account/profile" method="Post" enctype="multipart/form-data">',
     [("input", "text", "display_name"), ("input", "file", "avatar")]),
    ("account/settings.html", '<form Action="/account/delete" Method="post" class="danger">',
     [("input", "password", "confirm_password")]),
    ("checkout/cart.html", '<form action="/checkout/coupon" METHOD="Post">',
     [("input", "text", "coupon")]),
    ("checkout/payment.html", '<form ACTION="/checkout/pay" method="POST" id="pay">',
     [("input", "text", "card_number"), ("input", "text", "expiry"), ("input", "text", "cvc")]),
    ("contact.html", '<form action="/contact/send" method="post">',
     [("input", "text", "name"), ("input", "email", "email"), ("textarea", "", "message")]),
    ("blog/index.html", '<form action="/blog/filter" method="get">', [("select", "", "tag")]),
]  # fmt: skip
_FORM_PAGES = ["index.html", "about.html", "faq.html", "contact.html", "privacy.html",
               "account/login.html", "account/register.html", "account/settings.html",
               "checkout/cart.html", "checkout/payment.html", "blog/index.html",
               "blog/first-post.html"]  # fmt: skip


def _forms_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    posts = [i for i, (_, tag, _) in enumerate(_FORM_SPECS) if "post" in tag.lower()]
    no_token = set(rng.sample(posts, 3))
    by_page: dict[str, list[str]] = {p: [] for p in _FORM_PAGES}
    for i, (page, tag, fields) in enumerate(_FORM_SPECS):
        lines = [tag]
        for kind, typ, name in fields:
            if kind == "input":
                lines.append(f'  <label>{name}</label> <input type="{typ}" name="{name}">')
            elif kind == "textarea":
                lines.append(f'  <textarea name="{name}" rows="4"></textarea>')
            else:
                lines.append(
                    f'  <select name="{name}"><option>all</option><option>news</option></select>'
                )
        if i in posts and i not in no_token:
            token = "".join(rng.choice("0123456789abcdef") for _ in range(24))
            variants = [f'  <input type="hidden" name="csrf_token" value="{token}">',
                        f'  <INPUT TYPE="Hidden" NAME="csrf_token" VALUE="{token}">']  # fmt: skip
            lines.append(rng.choice(variants))
        elif i in no_token:
            lines.append('  <input type="hidden" name="return_to" value="/">')
        lines.append('  <button type="submit">Send</button>\n</form>')
        by_page[page].append("\n".join(lines))
    files = {}
    for page in _FORM_PAGES:
        title = page.removesuffix(".html").replace("/", " ").title()
        body = f"<h1>{title}</h1>\n<p>Some text.</p>\n" + "\n".join(by_page[page])
        files[f"site/{page}"] = _page(title, body)
    return Fixture(files), {"forms": len(_FORM_SPECS), "missing_token": len(no_token)}


_FORMS_V1 = textwrap.dedent(
    """\
    import json, os
    from html.parser import HTMLParser
    from pathlib import Path


    class FormParser(HTMLParser):
        \"\"\"html.parser lower-cases tag and attribute names, not attribute values.\"\"\"

        def __init__(self):
            super().__init__()
            self.forms, self.form = [], None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "form":
                self.form = {"action": a.get("action", ""), "method": a.get("method").upper(),
                             "fields": []}
                self.forms.append(self.form)
            elif self.form is not None and tag in ("input", "textarea", "select") and a.get("name"):
                kind = (a.get("type") or "text").lower() if tag == "input" else tag
                self.form["fields"].append({"name": a["name"], "type": kind})

        def handle_endtag(self, tag):
            if tag == "form":
                self.form = None


    inventory = []
    for path in sorted(Path("site").rglob("*.html")):
        parser = FormParser()
        parser.feed(path.read_text(encoding="utf-8"))
        for n, form in enumerate(parser.forms, start=1):
            form["has_csrf_token"] = any(
                f["name"] == "csrf_token" and f["type"] == "hidden" for f in form["fields"])
            inventory.append({"page": path.relative_to("site").as_posix(), "form": n, **form})

    os.makedirs("out", exist_ok=True)
    with open("out/forms.json", "w") as f:
        json.dump(inventory, f, indent=2)
    posts = [f for f in inventory if f["method"] == "POST"]
    missing = [f for f in posts if not f["has_csrf_token"]]
    with open("out/csrf_findings.md", "w") as f:
        f.write("# CSRF findings\\n\\n")
        f.write(f"{len(inventory)} forms found; {len(posts)} use POST; "
                f"{len(missing)} POST forms have no hidden csrf_token field:\\n\\n")
        for m in missing:
            f.write(f"- `{m['page']}` form {m['form']}: action `{m['action']}`\\n")
    print(f"{len(inventory)} forms, {len(posts)} POST, {len(missing)} missing csrf_token")
    """
)


def _forms_playbook(ctx: Ctx) -> Playbook:
    yield sh("find site -name '*.html' | sort; grep -ric '<form' site | grep -v ':0$'",
             say="Finding the pages that contain forms.")  # fmt: skip
    yield read("site/account/login.html", say="Reading a login form.")
    yield write("audit_forms.py", _FORMS_V1, say="Writing the form inventory script.")
    run = yield sh("python3 audit_forms.py")
    if not run.ok:
        # A form without a method attribute: a.get("method") is None.
        yield edit(
            "audit_forms.py",
            '"method": a.get("method").upper(),',
            '"method": (a.get("method") or "get").upper(),',
            say="Some forms have no method attribute; defaulting to GET as browsers do.",
        )
        run = yield sh("python3 audit_forms.py")
    yield Reply(f"Inventoried the forms into out/forms.json: {run.stdout.strip()}.")
    check, _ = yield [
        sh(
            "jq -r '.[] | \"\\(.method) \\(.page) \\(.action) token=\\(.has_csrf_token)\"' "
            "out/forms.json",
            say="Reviewing the inventory and the findings.",
        ),
        read("out/csrf_findings.md"),
    ]
    missing = [ln.split()[1] for ln in check.stdout.splitlines() if ln.endswith("token=false")
               and ln.startswith("POST")]  # fmt: skip
    yield Reply(
        f"Checked: every form is listed with its fields; the POST forms without a csrf_token are "
        f"on {', '.join(missing)}, as named in out/csrf_findings.md."
    )


_FORMS_VERIFY = r"""
import glob, json, os, re, sys
def attrs(s):
    return {k.lower(): v for k, v in re.findall(r'(\w[\w-]*)="([^"]*)"', s)}
want = []
for p in sorted(glob.glob("site/**/*.html", recursive=True)):
    page = os.path.relpath(p, "site")
    for tag, inner in re.findall(r"<form\b([^>]*)>(.*?)</form>", open(p).read(), re.S | re.I):
        a = attrs(tag)
        tags = re.findall(r"<(?:input|textarea|select)\b([^>]*)>", inner, re.I)
        fields = [attrs(f) for f in tags]
        names = sorted(f["name"] for f in fields if "name" in f)
        token = any(f.get("name") == "csrf_token" and f.get("type", "").lower() == "hidden"
                    for f in fields)
        want.append((page, a["action"], a.get("method", "get").upper(), names, token))
try:
    forms = json.load(open("out/forms.json"))
    md = open("out/csrf_findings.md").read()
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"missing or invalid output: {e}")
got = sorted((f["page"].removeprefix("site/"), f["action"], f["method"].upper(),
              sorted(x["name"] if isinstance(x, dict) else x for x in f["fields"])) for f in forms)
if got != sorted(w[:4] for w in want):
    sys.exit(f"inventory mismatch: {len(forms)} forms listed, {len(want)} on the site, "
             "or wrong fields")
for page, action, method, _, token in want:
    if method == "POST" and not token and (action not in md or page not in md):
        sys.exit(f"{page} {action}: POST form without csrf_token not named in the summary")
    if method == "POST" and token and action in md:
        sys.exit(f"{page} {action}: has a csrf_token but is named in the summary")
print(f"ok: {len(forms)} forms")
"""

# ---------------------------------------------------------------- web-fetch-paginated-api

_MOCK_SERVER = textwrap.dedent(
    '''\
    """Mock events API for local testing.

        GET /api/events?limit=N[&cursor=C]
        -> 200 {"events": [...], "next_cursor": "<opaque>" | null, "total": <int>}

    Start it with: python3 mockapi/server.py [PORT]   (default 8100)
    """

    import json
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path
    from urllib.parse import parse_qs, urlparse

    EVENTS = json.loads((Path(__file__).parent / "events.json").read_text())
    INDEX = {event["id"]: i for i, event in enumerate(EVENTS)}
    PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8100
    RATE_LIMIT_EVERY = 5  # like the real upstream: every fifth request is throttled


    class Handler(BaseHTTPRequestHandler):
        served = 0

        def send_json(self, status, payload, headers=()):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            Handler.served += 1
            url = urlparse(self.path)
            if url.path != "/api/events":
                return self.send_json(404, {"error": "not found"})
            if Handler.served % RATE_LIMIT_EVERY == 0:
                return self.send_json(429, {"error": "rate limited"}, [("Retry-After", "1")])
            query = parse_qs(url.query)
            limit = max(2, min(int(query.get("limit", ["20"])[0]), 50))
            cursor = query.get("cursor", [None])[0]
            if cursor is not None and cursor not in INDEX:
                return self.send_json(400, {"error": "bad cursor"})
            start = INDEX[cursor] if cursor else 0  # the cursor's own event is served again
            page = EVENTS[start : start + limit]
            more = start + limit < len(EVENTS)
            self.send_json(200, {"events": page, "next_cursor": page[-1]["id"] if more else None,
                                 "total": len(EVENTS)})


    if __name__ == "__main__":
        print(f"mock API on http://127.0.0.1:{PORT}/api/events", flush=True)
        ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
    '''
)


def _api_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    events, minute = [], 0
    for i in range(1, rng.randrange(240, 261) + 1):
        minute += rng.randrange(1, 30)
        events.append({
            "id": f"evt-{i:05d}",
            "ts": f"2026-03-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z",
            "type": rng.choice(["signup", "login", "purchase", "refund", "logout"]),
            "user": f"u{rng.randrange(100, 999)}",
        })  # fmt: skip
    files = {
        "mockapi/server.py": _MOCK_SERVER,
        "mockapi/events.json": json.dumps(events, indent=1) + "\n",
    }
    return Fixture(files), {"events": len(events)}


_FETCH_V1 = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Fetch every page of /api/events by following next_cursor, then merge them.
    set -euo pipefail
    api="http://127.0.0.1:8100/api/events?limit=25"
    mkdir -p out/pages
    rm -f out/pages/*.json
    url="$api"
    n=0
    while [ -n "$url" ]; do
      n=$((n + 1))
      page="out/pages/$(printf '%03d' "$n").json"
      curl -sSf "$url" -o "$page"
      cursor=$(jq -r '.next_cursor // empty' "$page")
      url=""
      if [ -n "$cursor" ]; then url="$api&cursor=$cursor"; fi
    done
    # Pages overlap by one event (the cursor is inclusive): keep each id once.
    jq -s '[.[].events[]] | unique_by(.id)' out/pages/*.json > out/events.json
    total=$(jq .total out/pages/001.json)
    echo "pages: $n, events: $(jq length out/events.json), total reported: $total"
    """
)


def _api_playbook(ctx: Ctx) -> Playbook:
    server, _ = yield [
        start("python3 mockapi/server.py 8100", say="Starting the mock API in the background."),
        read("mockapi/server.py", 1, 8, say="Reading the API's docstring meanwhile."),
    ]
    job = server.extras.get("job", "job1")
    yield sh(
        "curl -sS --retry 5 --retry-connrefused "
        "'http://127.0.0.1:8100/api/events?limit=2' | jq -c .",
        say="Probing one small page to see the response shape.",
    )
    yield write("fetch_events.sh", _FETCH_V1, say="Writing a curl loop that follows next_cursor.")
    run = yield sh("bash fetch_events.sh", timeout_s=120)
    if not run.ok:
        # Every fifth request gets HTTP 429 with Retry-After; curl -f gives up on it.
        yield edit(
            "fetch_events.sh",
            'curl -sSf "$url" -o "$page"',
            'curl -sSf --retry 5 "$url" -o "$page"  # retries 429s, honouring Retry-After',
            say="The API throttles with 429 and Retry-After; letting curl retry.",
        )
        run = yield sh("bash fetch_events.sh", timeout_s=120)
    yield kill(job, say="Stopping the mock API.")
    yield Reply(f"Fetched every page into out/events.json ({run.stdout.strip()}).")
    log = yield output(job, say="Checking the server's log for the throttled requests.")
    throttled = log.stderr.count('" 429 ')
    served = log.stderr.count('" 200 ')
    yield Reply(
        f"Checked: the server log shows {served} successful requests and {throttled} throttled "
        "ones (429), each retried after its Retry-After delay; the merged file has no duplicate "
        "ids and the server is stopped."
    )


_API_VERIFY = (
    _NO_SERVER_LEFT
    + r"""
import json, sys
want = [e["id"] for e in json.load(open("mockapi/events.json"))]
try:
    got = json.load(open("out/events.json"))
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"out/events.json missing or invalid: {e}")
ids = [e.get("id") for e in got] if isinstance(got, list) else []
if len(ids) != len(set(ids)):
    sys.exit("duplicate events in out/events.json")
if ids != want:
    sys.exit(f"{len(ids)} events merged; the API reports {len(want)} (in order)")
if server_running(b"mockapi/server.py"):
    sys.exit("the mock API is still running")
print(f"ok: {len(ids)} events")
"""
)


RECIPES = [
    TaskRecipe(
        task_id="web-scrape-product-catalog",
        fixture=_product_fixture,
        playbook=_product_playbook,
        verify=_PRODUCT_VERIFY,
        failure_mode="parses prices with float(), which chokes on the comma in $1,249.00",
    ),
    TaskRecipe(
        task_id="web-check-broken-links",
        fixture=_links_fixture,
        playbook=_links_playbook,
        verify=_LINKS_VERIFY,
        failure_mode="reads a['href'] on every <a>, and bare <a id> anchors raise KeyError",
    ),
    TaskRecipe(
        task_id="web-extract-quarterly-tables",
        fixture=_quarterly_fixture,
        playbook=_quarterly_playbook,
        verify=_QUARTERLY_VERIFY,
        failure_mode="converts cells with float() and fails on accounting negatives like (1,234)",
    ),
    TaskRecipe(
        task_id="web-crawl-local-sitemap",
        fixture=_sitemap_fixture,
        playbook=_sitemap_playbook,
        verify=_SITEMAP_VERIFY,
        failure_mode="resolves relative links against the site root, not their page: curl 404s",
    ),
    TaskRecipe(
        task_id="web-index-blog-metadata",
        fixture=_blog_fixture,
        playbook=_blog_playbook,
        verify=_BLOG_VERIFY,
        failure_mode="parses every date with fromisoformat(); old posts use 'March 5, 2024'",
    ),
    TaskRecipe(
        task_id="web-diff-competitor-prices",
        fixture=_prices_fixture,
        playbook=_prices_playbook,
        verify=_PRICES_VERIFY,
        failure_mode="looks for plan names in <h3>, but the new snapshot's cards use <h2>",
    ),
    TaskRecipe(
        task_id="web-fix-job-scraper",
        fixture=_jobs_fixture,
        playbook=_jobs_playbook,
        verify=_JOBS_VERIFY,
        failure_mode="compares class == 'job-card' exactly and misses the two-class featured cards",
    ),
    TaskRecipe(
        task_id="web-extract-team-contacts",
        fixture=_contacts_fixture,
        playbook=_contacts_playbook,
        verify=_CONTACTS_VERIFY,
        failure_mode="reads every page as UTF-8, but one page is saved as ISO-8859-1",
    ),
    TaskRecipe(
        task_id="web-collect-paginated-listings",
        fixture=_listings_fixture,
        playbook=_listings_playbook,
        verify=_LISTINGS_VERIFY,
        failure_mode="follows rel=next without remembering visited pages and loops forever",
    ),
    TaskRecipe(
        task_id="web-polite-robots-crawl",
        fixture=_robots_fixture,
        playbook=_robots_playbook,
        verify=_ROBOTS_VERIFY,
        failure_mode="lets urlopen's HTTPError on a broken link's 404 crash the crawl",
    ),
    TaskRecipe(
        task_id="web-convert-docs-to-markdown",
        fixture=_docs_fixture,
        playbook=_docs_playbook,
        verify=_DOCS_VERIFY,
        failure_mode="writes into docs_md/ without creating the directory first",
    ),
    TaskRecipe(
        task_id="web-audit-html-forms",
        fixture=_forms_fixture,
        playbook=_forms_playbook,
        verify=_FORMS_VERIFY,
        failure_mode="calls .upper() on the method attribute, which is missing on a GET form",
    ),
    TaskRecipe(
        task_id="web-fetch-paginated-api",
        fixture=_api_fixture,
        playbook=_api_playbook,
        verify=_API_VERIFY,
        failure_mode="curl -f gives up on the API's HTTP 429 instead of retrying after Retry-After",
    ),
]
