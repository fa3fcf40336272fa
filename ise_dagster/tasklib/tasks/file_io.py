"""File-IO recipes."""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import random
import re
import struct
import tarfile
import textwrap
import zipfile
import zlib

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, kill, output, read, sh, start, write

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
    listing, _sample = yield [
        sh("ls -la exports/ && wc -l exports/*.csv", say="Let me see the exports and the format."),
        read("exports/2026-08.csv", 1, 3),
    ]
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
    # Count wc's per-file lines: ls names the files too, and wc adds a total line.
    n_files = len(re.findall(r"^\s*\d+ exports/\S+\.csv$", listing.stdout, re.M)) if listing else 0
    yield Reply(
        f"Merged the {n_files} monthly exports into out/merged.csv: {run.stdout.strip()}. "
        "The counts are in out/merge_note.md."
    )
    _head, check = yield [
        sh("head -3 out/merged.csv", say="Verifying the header and that no id repeats."),
        sh("cut -d, -f1 out/merged.csv | sort | uniq -d | wc -l"),
    ]
    dupes = check.stdout.strip() if check.ok else "?"
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


# ---------------------------------------------------------------- shared fixture helpers


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, tiny RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _pdf(text: str) -> bytes:
    """A minimal one-page PDF whose content stream carries `text`."""
    body = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
    return (
        "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        "2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        f"3 0 obj\n<< /Length {len(body)} >>\nstream\n{body}\nendstream\nendobj\n"
        "trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    ).encode()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 5, 10, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1767607200, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


_FIRST_NAMES = (
    "Ana", "Ben", "Chloe", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ivan", "Jonas",
    "Kira", "Luca", "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tess",
)  # fmt: skip
_LAST_NAMES = (
    "Silva", "Novak", "Berg", "Costa", "Meyer", "Haddad", "Kowalski", "Rossi", "Dubois",
    "Jansen", "Lindqvist", "Okafor", "Petrov", "Tanaka", "Weber", "Young",
)  # fmt: skip

# ---------------------------------------------------------------- fileio-flatten-nested-json

_CITIES = ("Lisbon", "Porto", "Lyon", "Graz", "Gdansk", "Utrecht", "Malmo", "Turin")
_STREETS = ("Main St", "Harbour Rd", "Mill Lane", "Station Ave", "Park Row")
_ROLES = ("admin", "editor", "viewer", "billing", "support")


def _flatten_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    users = []
    for i in range(rng.randint(46, 54)):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        user: dict = {
            "id": 1000 + i,
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{i}@example.org",
        }
        # The first record has no address, later ones mostly do.
        if i == 1 or (i > 1 and rng.random() < 0.85):
            address = {
                "street": f"{rng.randint(1, 200)} {rng.choice(_STREETS)}",
                "city": rng.choice(_CITIES),
                "zip": f"{rng.randint(1000, 99999):05d}",
            }
            if rng.random() < 0.3:
                address["country"] = rng.choice(("PT", "FR", "AT", "PL", "NL", "SE", "IT"))
            user["address"] = address
        if i == 0 or rng.random() < 0.9:
            prefs: dict = {"theme": rng.choice(("light", "dark")), "newsletter": rng.random() < 0.4}
            if i > 0 and rng.random() < 0.5:
                prefs["notifications"] = {"email": rng.random() < 0.7, "sms": rng.random() < 0.2}
            user["preferences"] = prefs
        if i == 0 or rng.random() < 0.9:
            user["roles"] = rng.sample(_ROLES, rng.randint(1 if i == 0 else 0, 3))
        if rng.random() < 0.2:
            user["phone"] = None
        users.append(user)
    return Fixture({"data/users.json": json.dumps(users, indent=2) + "\n"}), {"records": len(users)}


_FLATTEN_V1 = textwrap.dedent(
    """\
    import csv, json, os


    def flatten(obj, prefix=""):
        flat = {}
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                flat.update(flatten(value, name + "."))
            elif isinstance(value, list):
                flat[name] = "|".join(str(v) for v in value)
            elif value is None:
                flat[name] = ""
            elif isinstance(value, bool):
                flat[name] = str(value).lower()
            else:
                flat[name] = value
        return flat


    with open("data/users.json") as f:
        rows = [flatten(user) for user in json.load(f)]
    fields = list(rows[0])
    os.makedirs("out", exist_ok=True)
    with open("out/users_flat.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} rows, {len(fields)} columns: {', '.join(fields)}")
    """
)


def _flatten_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls -la data/ && jq length data/users.json && jq -c '.[1]' data/users.json",
            say="Looking at the size and shape of the user records, and the first ones in full.",
        ),
        read("data/users.json", 1, 30),
    ]
    yield write("flatten.py", _FLATTEN_V1, say="Writing a flattener with dotted keys.")
    run = yield sh("python3 flatten.py")
    if not run.ok:
        # The header came from record 0, which has no address: DictWriter rejects later rows.
        yield edit(
            "flatten.py",
            "fields = list(rows[0])\n",
            "fields = []\nfor row in rows:  # union of keys: optional fields vary per record\n"
            "    fields += [k for k in row if k not in fields]\n",
            say="The first record lacks optional fields; building the header from all rows.",
        )
        run = yield sh("python3 flatten.py")
    summary = run.stdout.strip().split(":")[0] if run.ok else "no output"
    yield Reply(f"Flattened data/users.json into out/users_flat.csv ({summary}).")
    _head, check = yield [
        sh("head -c 300 out/users_flat.csv", say="Checking the header and the empty cells."),
        sh(
            "python3 -c \"import csv; r = list(csv.DictReader(open('out/users_flat.csv'))); "
            "print(len(r), 'rows,', sum(not x['address.city'] for x in r), 'without a city')\""
        ),
    ]
    counts = check.stdout.strip().splitlines()[-1] if check.ok else "?"
    yield Reply(
        f"Checked: {counts}; nested keys are dotted columns (address.city, "
        "preferences.notifications.email), roles are pipe-joined, missing values are empty."
    )


_FLATTEN_VERIFY = """
import csv, json, sys

def flat(obj, prefix=""):
    out = {}
    for k, v in obj.items():
        n = prefix + k
        if isinstance(v, dict):
            out.update(flat(v, n + "."))
        elif isinstance(v, list):
            out[n] = "|".join(str(x) for x in v)
        elif v is None:
            out[n] = ""
        elif isinstance(v, bool):
            out[n] = str(v).lower()
        else:
            out[n] = str(v)
    return out

users = json.load(open("data/users.json"))
try:
    reader = csv.DictReader(open("out/users_flat.csv", newline=""))
    rows = list(reader)
except FileNotFoundError:
    sys.exit("out/users_flat.csv is missing")
header = set(reader.fieldnames or [])
expected = {str(u["id"]): flat(u) for u in users}
cols = set().union(*expected.values())
if cols - header:
    sys.exit(f"missing columns: {sorted(cols - header)[:5]}")
if len(rows) != len(users):
    sys.exit(f"expected {len(users)} rows, found {len(rows)}")
by_id = {r["id"]: r for r in rows}
if set(by_id) != set(expected):
    sys.exit("the ids in the CSV do not match the records")
for uid, want in expected.items():
    row = by_id[uid]
    for col in header:
        got, exp = (row.get(col) or ""), want.get(col, "")
        if got.lower() != exp.lower():
            sys.exit(f"id {uid}, column {col}: expected {exp!r}, got {got!r}")
print(f"ok: {len(rows)} rows, {len(header)} columns")
"""

# ---------------------------------------------------------------- fileio-convert-latin1-to-utf8

# Every line only uses characters that exist in Latin-1.
_LEGACY_TEXTS = {
    "menu_fr.txt": ("Menu du jour", "Crème brûlée", "Café au lait", "Pâté de campagne",
                    "Soupe à l'oignon", "Tarte flambée", "Crêpe Suzette"),
    "notes_de.txt": ("Grüße aus München", "Bäckerei Müller, Hauptstraße 3", "Größe: 42",
                     "Öffnungszeiten: Mo-Fr", "Übergabe am Dienstag"),
    "readme_es.txt": ("Año nuevo", "El niño y la niña", "Salsa de jalapeño", "Hasta mañana",
                      "¿Qué tal?", "¡Olé!"),
    "glossary.txt": ("naïve: unaffected", "résumé: a CV", "déjà vu", "piñata", "Ångström",
                     "façade"),
    "customers.csv": ("name;city", "José Núñez;Málaga", "Jürgen Weiß;Zürich",
                      "Søren Ærø;Ærøskøbing", "Inês Conceição;São Paulo"),
    "addresses.csv": ("street;city", "Rua da Alegria 5;Évora", "Gärtnerplatz 2;München",
                      "Kungsgatan 12;Göteborg", "Place de l'Église;Besançon"),
    "invoice_template.txt": ("Société Générale", "Betrag: 120,00", "Zahlbar binnen 14 Tagen",
                             "Prix unitaire: 3,50", "Numéro de TVA"),
    "changelog.txt": ("2.1: correção de acentuação", "2.0: Añadido soporte para Ñ",
                      "1.9: Umlaute in Dateinamen (ä, ö, ü)", "1.8: première version"),
}  # fmt: skip


def _latin1_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = sorted(_LEGACY_TEXTS)
    latin1 = set(rng.sample(names, 5))
    lf_only = rng.choice([n for n in names if n not in latin1])  # one UTF-8 file is already fine
    files: dict[str, str | bytes] = {}
    for name in names:
        lines = list(_LEGACY_TEXTS[name])
        head, rest = lines[:1], lines[1:]
        rng.shuffle(rest)
        text = "\r\n".join(head + rest) + "\r\n"
        if name == lf_only:
            text = text.replace("\r\n", "\n")
        files[f"legacy/{name}"] = text.encode("latin-1" if name in latin1 else "utf-8")
    files["legacy/logo.png"] = _png(4, 4, (200, 30, 30))
    return Fixture(files), {"latin1": sorted(latin1), "lf_only": lf_only}


_CONVERT_V1 = textwrap.dedent(
    """\
    import csv, os, subprocess
    from collections import Counter

    # Read and decode everything first, so nothing is written if a file surprises us.
    log, plan = [], []
    for name in sorted(os.listdir("legacy")):
        path = os.path.join("legacy", name)
        enc = subprocess.run(
            ["file", "-b", "--mime-encoding", path], capture_output=True, text=True, check=True
        ).stdout.strip()
        raw = open(path, "rb").read()
        plan.append((path, enc, raw, raw.decode(enc)))

    for path, enc, raw, text in plan:
        data = text.replace("\\r\\n", "\\n").encode("utf-8")
        if data == raw:
            action = "unchanged"
        else:
            with open(path, "wb") as f:
                f.write(data)
            text_enc = enc in ("utf-8", "us-ascii")
            action = "LF line endings" if text_enc else "converted to UTF-8 + LF"
        log.append((path, enc, action))

    os.makedirs("out", exist_ok=True)
    with open("out/encoding_log.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "original_encoding", "action"])
        w.writerows(sorted(log))
    counts = Counter(action for _, _, action in log)
    print("; ".join(f"{n} {action}" for action, n in sorted(counts.items())))
    """
)


def _latin1_playbook(ctx: Ctx) -> Playbook:
    sample = ctx.facts["latin1"][0]
    yield [
        sh(
            "ls -la legacy/ && file legacy/*",
            say="Checking what each legacy file really is, and looking at one Latin-1 file.",
        ),
        read(f"legacy/{sample}"),
    ]
    yield write(
        "convert.py", _CONVERT_V1, say="Writing a converter driven by file's encoding guess."
    )
    run = yield sh("python3 convert.py")
    if not run.ok:
        # `file` reports the PNG's encoding as "binary", which is no Python codec.
        yield edit(
            "convert.py",
            "    plan.append((path, enc, raw, raw.decode(enc)))\n",
            '    if enc == "binary":  # not text: leave it alone, but log it\n'
            '        log.append((path, enc, "skipped (binary)"))\n'
            "        continue\n"
            "    plan.append((path, enc, raw, raw.decode(enc)))\n",
            say="file calls the PNG 'binary', which is no codec; skipping binaries.",
        )
        run = yield sh("python3 convert.py")
    yield Reply(
        f"Converted legacy/ to UTF-8 with LF endings: {run.stdout.strip()}. "
        "Per-file details are in out/encoding_log.csv."
    )
    _types, check = yield [
        sh("file legacy/*", say="Re-checking encodings and looking for leftover CRs."),
        sh("grep -l $'\\r' legacy/* | grep -v logo.png | wc -l"),
    ]
    crs = check.stdout.strip() if check.ok else "?"
    yield Reply(
        f"Checked: every text file now reads as UTF-8, {crs} text files still have CRLF, "
        "and logo.png was left untouched."
    )


_LATIN1_VERIFY = """
import csv, os, struct, sys, zlib
names = sorted(os.listdir("legacy"))
png = open("legacy/logo.png", "rb").read()
if not png.startswith(b"\\x89PNG\\r\\n\\x1a\\n"):
    sys.exit("legacy/logo.png was modified")
pos = 8
while pos < len(png):
    (n,) = struct.unpack(">I", png[pos:pos + 4])
    kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
    if struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0] != zlib.crc32(kind + body):
        sys.exit("legacy/logo.png was modified")
    pos += 12 + n
for name in names:
    if name == "logo.png":
        continue
    data = open(os.path.join("legacy", name), "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        sys.exit(f"legacy/{name} is not valid UTF-8")
    if "\\r" in text:
        sys.exit(f"legacy/{name} still has CR line endings")
    if any(c in text for c in "\\u00c3\\u00c2\\ufffd"):
        sys.exit(f"legacy/{name} looks double-encoded or has replacement characters")
    if not any(ord(c) > 127 for c in text):
        sys.exit(f"legacy/{name} lost its accented characters")
try:
    rows = list(csv.DictReader(open("out/encoding_log.csv", newline="")))
except FileNotFoundError:
    sys.exit("out/encoding_log.csv is missing")
logged = {os.path.basename(r.get("file") or ""): r for r in rows}
if set(names) - set(logged):
    sys.exit(f"files missing from the log: {sorted(set(names) - set(logged))}")
for name, r in logged.items():
    if not (r.get("original_encoding") or "").strip() or not (r.get("action") or "").strip():
        sys.exit(f"log row for {name} lacks an encoding or an action")
if "skip" not in logged["logo.png"]["action"].lower():
    sys.exit("the log should say logo.png was skipped")
if not any("8859" in r["original_encoding"] or "latin" in r["original_encoding"].lower()
           for r in rows):
    sys.exit("the log names no Latin-1 source file")
print(f"ok: {len(names)} files, log complete")
"""

# ---------------------------------------------------------------- fileio-sort-downloads-by-type

# (file name as downloaded, what it really is): several names lie or have no extension.
_DOWNLOADS = (
    ("invoice-2026-03.pdf", "pdf"), ("Boarding pass.pdf", "pdf"), ("statement", "pdf"),
    ("scan_0042.jpg", "pdf"), ("report-final.pdf", "pdf"),
    ("screenshot 2026-02-01.png", "png"), ("IMG_2231.png", "png"), ("diagram.pdf", "png"),
    ("avatar", "png"), ("wallpaper.png", "png"),
    ("photos.zip", "zip"), ("project-export.zip", "zip"), ("backup.dat", "zip"), ("fonts", "zip"),
    ("contacts.csv", "csv"), ("budget.txt", "csv"), ("export", "csv"),
    ("settings.json", "json"), ("response.txt", "json"), ("data.csv", "json"),
    ("notes.txt", "text"), ("README", "text"), ("todo.md", "text"),
    ("meeting minutes.doc", "text"), ("download.crdownload", "empty"),
)  # fmt: skip


def _downloads_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files: dict[str, str | bytes] = {}
    for name, kind in _DOWNLOADS:
        if kind == "pdf":
            data: str | bytes = _pdf(f"{name} total {rng.uniform(10, 900):.2f} EUR")
        elif kind == "png":
            data = _png(rng.randint(2, 12), rng.randint(2, 12), (rng.randrange(256), 90, 160))
        elif kind == "zip":
            data = _zip({f"part{i}.txt": f"chunk {rng.random()}\n".encode() for i in range(3)})
        elif kind == "csv":
            rows = [f"{rng.choice(_FIRST_NAMES)},{rng.randint(18, 80)},{rng.uniform(1, 99):.2f}"
                    for _ in range(rng.randint(5, 9))]  # fmt: skip
            data = "name,age,score\n" + "\n".join(rows) + "\n"
        elif kind == "json":
            doc = {"id": rng.randint(1, 999), "tags": rng.sample(_ROLES, 2), "ok": True}
            data = json.dumps(doc, indent=2) + "\n"
        elif kind == "text":
            data = f"{name}\n\nCall {rng.choice(_FIRST_NAMES)} about the plan on Monday.\n"
        else:
            data = b""
        files[f"downloads/{name}"] = data
    return Fixture(files), {"count": len(_DOWNLOADS)}


_SORT_V1 = textwrap.dedent(
    """\
    import csv, os, subprocess
    from collections import Counter

    CATEGORY = {
        "application/pdf": "documents",
        "text/plain": "documents",
        "text/csv": "data",
        "application/json": "data",
        "image/png": "images",
        "image/jpeg": "images",
        "application/zip": "archives",
        "application/gzip": "archives",
    }

    paths = sorted(
        os.path.join("downloads", n)
        for n in os.listdir("downloads")
        if os.path.isfile(os.path.join("downloads", n))
    )
    out = subprocess.run(
        ["file", "-b", "--mime-type", *paths], capture_output=True, text=True, check=True
    ).stdout.splitlines()

    # Plan every move first, then move, so a surprise leaves the folder untouched.
    plan = []
    for path, mime in zip(paths, out):
        dest = os.path.join("downloads", CATEGORY[mime], os.path.basename(path))
        plan.append((path, dest, mime))
    for src, dest, _ in plan:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.exists(dest):
            raise SystemExit(f"refusing to overwrite {dest}")
        os.rename(src, dest)

    os.makedirs("out", exist_ok=True)
    with open("out/moves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["original", "new", "mime_type"])
        w.writerows(plan)
    counts = Counter(dest.split("/")[1] for _, dest, _ in plan)
    print(f"moved {len(plan)} files: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    """
)


def _downloads_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls -la downloads/ && file downloads/statement downloads/avatar downloads/fonts "
            "downloads/scan_0042.jpg downloads/diagram.pdf",
            say="Listing the downloads, checking the names that look off, and budget.txt, "
            "which may be CSV.",
        ),
        read("downloads/budget.txt", 1, 4),
    ]
    yield write("sort_downloads.py", _SORT_V1, say="Writing a sorter keyed on MIME type.")
    run = yield sh("python3 sort_downloads.py")
    if not run.ok:
        # The half-finished download is empty: `file` says inode/x-empty, not in the table.
        yield edit(
            "sort_downloads.py",
            "CATEGORY[mime]",
            'CATEGORY.get(mime, "other")',
            say="An empty file has no mapped type; unknown types go to other/.",
        )
        run = yield sh("python3 sort_downloads.py")
    yield Reply(
        f"Sorted downloads/ by content type: {run.stdout.strip()}. "
        "Every move is listed in out/moves.csv."
    )
    check, manifest = yield [
        sh(
            "find downloads -maxdepth 1 -type f | wc -l; find downloads -type f | wc -l; "
            "ls downloads/",
            say="Making sure nothing is left loose or missing, against the manifest.",
        ),
        sh("tail -n +2 out/moves.csv | wc -l"),
    ]
    loose, total = (check.stdout.split() + ["?"] * 2)[:2]
    listed = manifest.stdout.strip() or "?"
    yield Reply(
        f"Checked: {loose} files left loose in downloads/, {total} files in the "
        f"subfolders and {listed} rows in the manifest."
    )


_DOWNLOADS_VERIFY = (
    f"EXPECTED = {len(_DOWNLOADS)}\n"
    """
import csv, json, os, sys
try:
    rows = list(csv.DictReader(open("out/moves.csv", newline="")))
except FileNotFoundError:
    sys.exit("out/moves.csv is missing")
loose = [n for n in os.listdir("downloads") if os.path.isfile(os.path.join("downloads", n))]
if loose:
    sys.exit(f"files still loose in downloads/: {loose[:3]}")
found = set()
for root, _, names in os.walk("downloads"):
    found |= {os.path.normpath(os.path.join(root, n)) for n in names}
if len(found) != EXPECTED:
    sys.exit(f"expected {EXPECTED} files under downloads/, found {len(found)}")
cols = list(rows[0]) if rows else []
if len(rows) != EXPECTED or len(cols) < 2:
    sys.exit(f"manifest has {len(rows)} rows, expected {EXPECTED}")
orig_col, new_col = cols[0], cols[1]
moved = {os.path.normpath(r[new_col]) for r in rows}
if moved != found:
    sys.exit("manifest's new paths do not match the files on disk")
for r in rows:
    if os.path.exists(r[orig_col]):
        sys.exit(f"{r[orig_col]} still exists")
for path in found:
    folder = path.split(os.sep)[1]
    data = open(path, "rb").read()
    if data.startswith(b"%PDF"):
        want = "documents"
    elif data.startswith(b"\\x89PNG"):
        want = "images"
    elif data.startswith(b"PK\\x03\\x04"):
        want = "archives"
    elif not data:
        want = "other"
    elif data.lstrip()[:1] in (b"{", b"["):
        want = "data"
    else:
        continue
    if folder != want:
        sys.exit(f"{path} should be in downloads/{want}/")
print(f"ok: {len(found)} files sorted")
"""
)

# ---------------------------------------------------------------- fileio-find-duplicate-backups

_PHOTO_DIRS = ("2024/summer", "2024/winter", "2025/spring", "phone/DCIM/Camera")
_COPY_DIRS = ("copy of 2024/summer", "old_laptop/Pictures", "phone/backup_2025-01")


def _dupes_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files: dict[str, str | bytes] = {}
    originals = []
    for number in rng.sample(range(1000, 9999), 40):
        data = (
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
            + rng.randbytes(rng.randint(300, 1500))
            + b"\xff\xd9"
        )
        path = f"photos_backup/{rng.choice(_PHOTO_DIRS)}/IMG_{number}.jpg"
        files[path] = data
        originals.append(path)
    copied = rng.sample(originals, 14)
    copies = 0
    for k, src in enumerate(copied):
        stem = src.rsplit("/", 1)[1][:-4]
        names = (f"{stem} (1).jpg", f"copy_of_{stem}.jpg", f"{stem}_backup.jpg")
        for j in range(2 if k < 6 else 1):  # 6 photos copied twice, 8 once: 20 copies
            path = f"photos_backup/{_COPY_DIRS[(k + j) % 3]}/{names[(k + j) % 3]}"
            files[path] = files[src]
            copies += 1
    setup = (
        "mkdir -p photos_backup/phone && "
        "ln -s /media/sdcard/DCIM/IMG_9999.jpg photos_backup/phone/last_import.jpg",
    )
    return Fixture(files, setup), {"files": len(files), "copies": copies}


_DUPES_V1 = textwrap.dedent(
    """\
    import hashlib, json, os
    from collections import defaultdict

    by_hash = defaultdict(list)
    for root, dirs, files in os.walk("photos_backup"):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            by_hash[digest].append(path)

    groups = []
    for digest, paths in sorted(by_hash.items()):
        if len(paths) < 2:
            continue
        paths.sort(key=lambda p: (len(p), p))  # keep the copy with the shortest path
        size = os.path.getsize(paths[0])
        groups.append({
            "sha256": digest,
            "size": size,
            "keep": paths[0],
            "duplicates": paths[1:],
            "reclaimable_bytes": size * (len(paths) - 1),
        })
    total = sum(g["reclaimable_bytes"] for g in groups)
    copies = sum(len(g["duplicates"]) for g in groups)
    os.makedirs("out", exist_ok=True)
    with open("out/duplicates.json", "w") as f:
        json.dump({"groups": groups, "redundant_copies": copies, "reclaimable_bytes": total},
                  f, indent=2)
    print(f"{len(groups)} duplicate groups, {copies} redundant copies, {total} bytes reclaimable")
    """
)


def _dupes_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("find photos_backup -type d | sort", say="Getting a feel for the backup tree."),
        sh("find photos_backup -type f | wc -l && du -sb photos_backup"),
    ]
    yield write("find_dupes.py", _DUPES_V1, say="Writing a SHA-256 duplicate finder.")
    run = yield sh("python3 find_dupes.py")
    if not run.ok:
        yield sh(
            "find photos_backup -type l -ls", say="A file vanished under me; looking for links."
        )
        yield edit(
            "find_dupes.py",
            "        path = os.path.join(root, name)\n",
            "        path = os.path.join(root, name)\n"
            "        if os.path.islink(path):  # links are not copies (and may dangle)\n"
            "            continue\n",
            say="The dangling last_import.jpg symlink is not a photo; skipping symlinks.",
        )
        run = yield sh("python3 find_dupes.py")
    yield Reply(
        f"Scanned photos_backup/ without moving anything: {run.stdout.strip()}. "
        "The report is out/duplicates.json."
    )
    _report, check = yield [
        read(
            "out/duplicates.json",
            1,
            14,
            say="Checking the first group in the report, and that all files are still in place.",
        ),
        sh("find photos_backup -type f | wc -l"),
    ]
    yield Reply(
        f"Checked: the groups name the shortest path as the copy to keep, and all "
        f"{check.stdout.strip()} files are still in photos_backup/."
    )


_DUPES_VERIFY = """
import hashlib, json, os, sys
from collections import defaultdict
groups = defaultdict(list)
for root, _, names in os.walk("photos_backup"):
    for n in names:
        p = os.path.normpath(os.path.join(root, n))
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        groups[hashlib.sha256(open(p, "rb").read()).hexdigest()].append(p)
expected = {h: sorted(ps) for h, ps in groups.items() if len(ps) > 1}
try:
    report = json.load(open("out/duplicates.json"))
except FileNotFoundError:
    sys.exit("out/duplicates.json is missing")
got = {g["sha256"]: g for g in report["groups"]}
if set(got) != set(expected):
    sys.exit(f"expected {len(expected)} duplicate groups, report has {len(got)}")
total = 0
for h, g in got.items():
    members = sorted(os.path.normpath(p) for p in [g["keep"], *g["duplicates"]])
    if members != expected[h]:
        sys.exit(f"group {h[:12]} lists {members}, expected {expected[h]}")
    if len(os.path.normpath(g["keep"])) != min(len(p) for p in members):
        sys.exit(f"group {h[:12]} does not keep the shortest path")
    size = os.path.getsize(members[0])
    if g.get("size") != size:
        sys.exit(f"group {h[:12]} has the wrong size")
    total += size * (len(members) - 1)
if report.get("reclaimable_bytes") != total:
    sys.exit(f"reclaimable bytes should be {total}, report says {report.get('reclaimable_bytes')}")
print(f"ok: {len(got)} groups, {total} bytes reclaimable")
"""

# ---------------------------------------------------------------- fileio-split-log-by-day

_LOG_MESSAGES = (
    "GET /api/orders 200 {n}ms", "POST /api/cart 201 {n}ms", "cache miss key=user:{n}",
    "job {n} done", "GET /health 200 1ms", "retrying upstream call ({n})",
    "session {n} expired", "queue depth {n}",
)  # fmt: skip
_TRACEBACKS = (
    ('  File "/srv/app/jobs.py", line 88, in run', "    result = handler(payload)",
     '  File "/srv/app/handlers.py", line 41, in handle',
     '    raise ValueError(f"bad payload {pid}")', "ValueError: bad payload {n}"),
    ('  File "/srv/app/db.py", line 120, in query', "    return conn.execute(sql)",
     "TimeoutError: query exceeded {n}ms"),
    ('  File "/srv/app/api.py", line 57, in get_user', "    return USERS[user_id]",
     "KeyError: {n}"),
)  # fmt: skip


def _split_log_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    first = datetime.date(2026, 3, rng.randint(1, 15))
    lines = []
    for d in range(10):
        day = first + datetime.timedelta(days=d)
        seconds = sorted(rng.sample(range(86398), rng.randint(215, 235)))
        if d == 3:
            seconds.append(86399)  # an error logged just before midnight
        for s in seconds:
            level = rng.choices(("INFO", "DEBUG", "WARNING", "ERROR"), (70, 15, 10, 5))[0]
            if s == 86399:
                level = "ERROR"
            stamp = (
                f"{day}T{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}.{rng.randrange(1000):03d}"
            )
            msg = rng.choice(_LOG_MESSAGES).format(n=rng.randint(1, 9999))
            if level == "ERROR":
                msg = "unhandled exception in worker"
            lines.append(f"{stamp} {level:<7} [w{rng.randint(1, 4)}] {msg}")
            if level == "ERROR":
                lines.append("Traceback (most recent call last):")
                for tb in rng.choice(_TRACEBACKS):
                    lines.append(tb.format(n=rng.randint(1, 9999), pid="{payload_id}"))
    last = (first + datetime.timedelta(days=9)).isoformat()
    return Fixture({"logs/app-full.log": "\n".join(lines) + "\n"}), {
        "lines": len(lines),
        "latest": last,
    }


_SPLIT_V1 = textwrap.dedent(
    """\
    import gzip, os
    from datetime import datetime

    days = {}
    with open("logs/app-full.log") as f:
        for line in f:
            day = datetime.strptime(line[:10], "%Y-%m-%d").date().isoformat()
            days.setdefault(day, []).append(line)

    os.makedirs("logs/daily", exist_ok=True)
    latest = max(days)
    for day, lines in sorted(days.items()):
        if day == latest:
            with open(f"logs/daily/{day}.log", "w") as f:
                f.writelines(lines)
        else:
            with gzip.open(f"logs/daily/{day}.log.gz", "wt") as f:
                f.writelines(lines)
        print(f"{day}: {len(lines)} lines")
    print(f"total: {sum(len(v) for v in days.values())} lines in {len(days)} files")
    """
)


def _split_log_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l logs/app-full.log && head -3 logs/app-full.log && tail -2 logs/app-full.log",
            say="Checking the size and timestamp format of the log, and reading its start.",
        ),
        read("logs/app-full.log", 1, 25),
    ]
    yield write("split_log.py", _SPLIT_V1, say="Writing a splitter keyed on the date prefix.")
    run = yield sh("python3 split_log.py")
    if not run.ok:
        # Traceback lines carry no timestamp: strptime chokes on 'Traceback '.
        yield edit(
            "split_log.py",
            '        day = datetime.strptime(line[:10], "%Y-%m-%d").date().isoformat()\n',
            '        if line[:4].isdigit() and line[4:5] == "-":\n'
            "            day = line[:10]  # lines without a stamp belong to the entry above\n",
            say="Traceback lines have no timestamp; they stay with the entry above them.",
        )
        run = yield sh("python3 split_log.py")
    total = run.stdout.strip().splitlines()[-1] if run.ok else "no output"
    yield Reply(
        f"Split logs/app-full.log into logs/daily/ ({total}); every day except "
        f"{ctx.facts['latest']} is gzip-compressed."
    )
    _days, check = yield [
        sh(
            "ls logs/daily/",
            say="Listing the days and re-joining them to compare with the original.",
        ),
        sh(
            "(zcat logs/daily/*.log.gz; cat logs/daily/*.log) "
            "| cmp - logs/app-full.log && echo 'identical to the original'"
        ),
    ]
    same = "identical to" if "identical" in check.stdout else "different from"
    yield Reply(
        f"Checked: the daily files joined in order are {same} the original log, "
        "tracebacks included."
    )


_SPLIT_VERIFY = """
import gzip, os, re, sys
stamp = re.compile(r"\\d{4}-\\d{2}-\\d{2}T")
src = open("logs/app-full.log").read().splitlines(keepends=True)
days, cur = {}, None
for line in src:
    if stamp.match(line):
        cur = line[:10]
    days.setdefault(cur, []).append(line)
if not os.path.isdir("logs/daily"):
    sys.exit("logs/daily/ is missing")
names = os.listdir("logs/daily")
latest = max(days)
total = 0
for day, lines in sorted(days.items()):
    found = [n for n in names if day in n]
    if len(found) != 1:
        sys.exit(f"expected one file for {day} in logs/daily/, found {found}")
    path = os.path.join("logs/daily", found[0])
    if day == latest:
        if path.endswith(".gz"):
            sys.exit("the most recent day should stay uncompressed")
        data = open(path).read()
    else:
        if not path.endswith(".gz"):
            sys.exit(f"{path} should be gzip-compressed")
        data = gzip.open(path, "rt").read()
    if data != "".join(lines):
        sys.exit(f"{path} does not hold exactly the entries of {day}")
    total += len(lines)
if total != len(src):
    sys.exit(f"daily files hold {total} lines, the original has {len(src)}")
print(f"ok: {len(days)} days, {total} lines")
"""

# ---------------------------------------------------------------- fileio-validate-order-records

_STATUSES = ("pending", "paid", "shipped", "cancelled", "refunded")
_ORDER_RULES = {
    "version": 3,
    "fields": {
        "order_id": {"type": "string", "required": True, "pattern": "^ORD-[0-9]{6}$"},
        "customer_id": {"type": "string", "required": True, "pattern": "^C[0-9]{4}$"},
        "order_date": {"type": "string", "required": True,
                       "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "status": {"type": "string", "required": True, "allowed": list(_STATUSES)},
        "amount": {"type": "number", "required": True},
        "quantity": {"type": "integer", "required": True},
        "currency": {"type": "string", "allowed": ["EUR", "USD", "GBP"]},
        "coupon": {"type": "string", "pattern": "^[A-Z0-9]{6,10}$"},
        "notes": {"type": "string"},
    },
}  # fmt: skip
_ORDER_BREAKERS = (
    lambda r: r.pop("customer_id"),
    lambda r: r.pop("order_date"),
    lambda r: r.update(amount=str(r["amount"])),
    lambda r: r.update(quantity=r["quantity"] + 0.5),
    lambda r: r.update(status="complete"),
    lambda r: r.update(status=r["status"].upper()),
    lambda r: r.update(order_date=r["order_date"].replace("-", "/")),
    lambda r: r.update(order_id=r["order_id"].replace("ORD-", "ORD")),
    lambda r: r.update(currency="eur"),
    lambda r: r.update(coupon="spring-sale"),
    lambda r: r.update(amount=None),
    lambda r: r.update(quantity=True),
    lambda r: r.pop("status"),
)


def _orders_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    n = rng.randint(95, 105)
    bad = set(rng.sample(range(n), rng.randint(14, 16)))
    lines = []
    for i in range(n):
        rec: dict = {
            "order_id": f"ORD-{rng.randrange(100000, 999999)}",
            "customer_id": f"C{rng.randrange(10000):04d}",
            "order_date": f"2026-{rng.randint(1, 6):02d}-{rng.randint(1, 28):02d}",
            "status": rng.choice(_STATUSES),
            "amount": round(rng.uniform(5, 500), 2),
            "quantity": rng.randint(1, 12),
        }
        if rng.random() < 0.7:
            rec["currency"] = rng.choice(("EUR", "USD", "GBP"))
        if rng.random() < 0.2:
            rec["coupon"] = rng.choice(("SPRING26", "WELCOME10", "VIP2026"))
        if rng.random() < 0.1:
            rec["notes"] = "leave at the door"
        if i in bad:
            _ORDER_BREAKERS[sorted(bad).index(i) % len(_ORDER_BREAKERS)](rec)
        lines.append(json.dumps(rec))
    files = {
        "data/orders.jsonl": "\n".join(lines) + "\n",
        "schema/order_rules.json": json.dumps(_ORDER_RULES, indent=2) + "\n",
    }
    return Fixture(files), {"records": n, "invalid": len(bad)}


_VALIDATE_V1 = textwrap.dedent(
    """\
    import json, os, re
    from collections import Counter

    with open("schema/order_rules.json") as f:
        rules = json.load(f)["fields"]
    TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


    def violations(rec):
        errors = []
        for field, rule in rules.items():
            if rule["required"] and field not in rec:
                errors.append(f"{field}: missing required field")
                continue
            if field not in rec:
                continue
            value = rec[field]
            # bool is a subclass of int in Python; only accept it for boolean fields.
            if isinstance(value, bool) != (rule["type"] == "boolean") or not isinstance(
                value, TYPES[rule["type"]]
            ):
                errors.append(f"{field}: expected {rule['type']}, got {json.dumps(value)}")
                continue
            if "allowed" in rule and value not in rule["allowed"]:
                errors.append(f"{field}: {value!r} is not one of {rule['allowed']}")
            if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
                errors.append(f"{field}: {value!r} does not match {rule['pattern']}")
        return errors


    valid, rejected, reasons = [], [], Counter()
    with open("data/orders.jsonl") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            errors = violations(rec)
            if errors:
                rejected.append({"line": lineno, "record": rec, "errors": errors})
                reasons.update(e.split(":")[0] for e in errors)
            else:
                valid.append(line if line.endswith("\\n") else line + "\\n")

    os.makedirs("out", exist_ok=True)
    with open("out/orders_valid.jsonl", "w") as f:
        f.writelines(valid)
    with open("out/orders_rejected.jsonl", "w") as f:
        for r in rejected:
            f.write(json.dumps(r) + "\\n")
    print(f"{len(valid) + len(rejected)} records: {len(valid)} valid, {len(rejected)} rejected")
    print("violations by field: " + ", ".join(f"{k}={v}" for k, v in reasons.most_common()))
    """
)


def _orders_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("schema/order_rules.json", say="Reading the field rules."),
        sh("wc -l data/orders.jsonl && head -3 data/orders.jsonl", say="And a few records."),
    ]
    yield write("validate.py", _VALIDATE_V1, say="Writing a validator driven by the rules file.")
    run = yield sh("python3 validate.py")
    if not run.ok:
        # Optional fields simply omit "required" in the rules file.
        yield edit(
            "validate.py",
            'if rule["required"] and field not in rec:',
            'if rule.get("required", False) and field not in rec:',
            say="Optional fields have no 'required' key; treating it as false by default.",
        )
        run = yield sh("python3 validate.py")
    summary = run.stdout.strip().replace("\n", "; ")
    yield Reply(
        f"Validated data/orders.jsonl: {summary}. Valid records are unchanged in "
        "out/orders_valid.jsonl; rejects with their reasons are in "
        "out/orders_rejected.jsonl."
    )
    _counts, check = yield [
        sh(
            "wc -l out/orders_valid.jsonl out/orders_rejected.jsonl",
            say="Counting both outputs and spot-checking the rejects.",
        ),
        sh("jq -c '[.line, .errors]' out/orders_rejected.jsonl | head -5"),
    ]
    lines = check.stdout.strip().splitlines()
    first = lines[0] if lines else "?"
    yield Reply(
        f"Checked: the two files add up to the input, and each reject carries its "
        f"violations, e.g. {first}."
    )


_ORDERS_VERIFY = """
import json, re, sys
rules = json.load(open("schema/order_rules.json"))["fields"]
types = {"string": str, "integer": int, "number": (int, float), "boolean": bool}

def ok(rec):
    for field, rule in rules.items():
        if field not in rec:
            if rule.get("required"):
                return False
            continue
        v = rec[field]
        if isinstance(v, bool) != (rule["type"] == "boolean"):
            return False
        if not isinstance(v, types[rule["type"]]):
            return False
        if "allowed" in rule and v not in rule["allowed"]:
            return False
        if "pattern" in rule and not re.fullmatch(rule["pattern"], v):
            return False
    return True

lines = [l for l in open("data/orders.jsonl").read().splitlines() if l.strip()]
want_valid = [l for l in lines if ok(json.loads(l))]
want_rejected = [json.loads(l) for l in lines if not ok(json.loads(l))]
try:
    got_valid = [l for l in open("out/orders_valid.jsonl").read().splitlines() if l.strip()]
    got_rejected = [json.loads(l) for l in open("out/orders_rejected.jsonl") if l.strip()]
except FileNotFoundError as e:
    sys.exit(f"missing output: {e.filename}")
if got_valid != want_valid:
    sys.exit(f"expected {len(want_valid)} unchanged valid lines, got {len(got_valid)}")
if [r.get("record") for r in got_rejected] != want_rejected:
    sys.exit(f"expected {len(want_rejected)} rejected records, got {len(got_rejected)}")
if not all(isinstance(r.get("errors"), list) and r["errors"] for r in got_rejected):
    sys.exit("every rejected record needs a non-empty list of violations")
print(f"ok: {len(got_valid)} valid, {len(got_rejected)} rejected")
"""

# ---------------------------------------------------------------- fileio-rename-scans-by-index

_SCAN_TITLES = (
    "Lease Agreement", "Car Insurance Policy", "Electricity Bill March", "Tax Return 2025",
    "Dentist Invoice", "Passport Copy", "Bank Statement Q1", "Gym Membership Contract",
    "Landlord's Letter", "Invoice #4471 (Plumber)", "Pension Overview",
    "Warranty - Washing Machine", "Vet Bill", "School Enrolment Form", "Parking Permit",
    "Mortgage Offer", "Water Bill", "Phone Contract", "Health Insurance Card",
    "Birth Certificate", "Council Tax Notice", "Train Season Ticket",
)  # fmt: skip


def _scans_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    n = 20
    titles = rng.sample(_SCAN_TITLES, n + 1)
    missing = sorted(rng.sample(range(1, n + 1), 2))
    dates = sorted(
        datetime.date(2025, 1, 1) + datetime.timedelta(days=d)
        for d in rng.sample(range(480), n + 1)
    )
    files: dict[str, str | bytes] = {}
    rows = []
    for no in range(1, n + 1):
        files[f"scans/IMG_{no:04d}.pdf"] = _pdf(f"Scan IMG_{no:04d}: {titles[no - 1]}")
        if no not in missing:
            rows.append((no, dates[no - 1].isoformat(), titles[no - 1]))
    # One index row points at a scan that was never made.
    rows.insert(rng.randrange(len(rows)), (n + 3, dates[n].isoformat(), titles[n]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["image_no", "date", "title"])
    w.writerows(rows)
    # Exported from a spreadsheet: UTF-8 with a byte-order mark and CRLF endings.
    files["scans/index.csv"] = ("\ufeff" + buf.getvalue()).encode("utf-8")
    return Fixture(files), {"missing": [f"IMG_{m:04d}.pdf" for m in missing], "extra": n + 3}


_RENAME_V1 = textwrap.dedent(
    """\
    import csv, os, re, shlex


    def slug(title):
        return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


    renames, no_file = [], []
    with open("scans/index.csv", newline="") as f:
        for row in csv.DictReader(f):
            src = f"scans/IMG_{int(row['image_no']):04d}.pdf"
            if not os.path.exists(src):
                no_file.append(f"index row {row['image_no']} ({row['title']}): no {src}")
                continue
            dest = f"scans/{row['date']}_{slug(row['title'])}.pdf"
            if os.path.exists(dest) or dest in {d for _, d in renames}:
                raise SystemExit(f"{dest} already exists")
            renames.append((src, dest))

    indexed = {src for src, _ in renames}
    unmatched = sorted(
        f"scans/{n}" for n in os.listdir("scans")
        if re.fullmatch(r"IMG_\\d{4}\\.pdf", n) and f"scans/{n}" not in indexed
    )
    for src, dest in renames:
        os.rename(src, dest)

    os.makedirs("out", exist_ok=True)
    with open("out/rollback.sh", "w") as f:
        f.write("#!/bin/sh\\n# Undo the scan renames.\\nset -e\\n")
        f.write('cd "$(dirname "$0")/.."\\n')
        for src, dest in renames:
            f.write(f"mv -n -- {shlex.quote(dest)} {shlex.quote(src)}\\n")
    os.chmod("out/rollback.sh", 0o755)
    with open("out/unmatched.txt", "w") as f:
        f.write("# scans with no index entry (left as they are)\\n")
        f.writelines(p + "\\n" for p in unmatched)
        f.write("# index entries with no scan\\n")
        f.writelines(p + "\\n" for p in no_file)
    print(f"renamed {len(renames)} scans; not in the index: {', '.join(unmatched) or 'none'}; "
          f"index rows without a file: {len(no_file)}")
    """
)


def _scans_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls scans/ && ls scans/*.pdf | wc -l", say="Listing the scans and reading the index."),
        read("scans/index.csv"),
    ]
    yield write("rename_scans.py", _RENAME_V1, say="Writing the renamer with a rollback script.")
    run = yield sh("python3 rename_scans.py")
    if not run.ok:
        yield sh(
            "head -c 32 scans/index.csv | od -c | head -3",
            say="KeyError on image_no; looking at the raw header bytes.",
        )
        yield edit(
            "rename_scans.py",
            'open("scans/index.csv", newline="")',
            'open("scans/index.csv", newline="", encoding="utf-8-sig")',
            say="The index starts with a UTF-8 BOM; reading it with utf-8-sig.",
        )
        run = yield sh("python3 rename_scans.py")
    yield Reply(
        f"Done: {run.stdout.strip()}. out/rollback.sh undoes every rename and "
        "out/unmatched.txt lists what was left alone."
    )
    check = yield sh(
        "rm -rf /tmp/rollback-test && mkdir /tmp/rollback-test && cp -r scans out "
        "/tmp/rollback-test/ && sh /tmp/rollback-test/out/rollback.sh && "
        "ls /tmp/rollback-test/scans | grep -c '^IMG_'",
        say="Dry-running the rollback on a copy.",
    )
    restored = check.stdout.strip() if check.ok else "?"
    yield Reply(
        f"Checked: on a copy, out/rollback.sh restores {restored} IMG_ names; "
        "the real folder keeps the new names."
    )


_SCANS_VERIFY = """
import csv, os, re, shutil, subprocess, sys, tempfile

def slug(t):
    return re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-")

def scans_in(folder):
    found = {}
    for name in os.listdir(folder):
        if name.endswith(".pdf"):
            m = re.search(rb"Scan (IMG_\\d{4})", open(os.path.join(folder, name), "rb").read())
            found[m.group(1).decode()] = name
    return found

index = {int(r["image_no"]): r
         for r in csv.DictReader(open("scans/index.csv", encoding="utf-8-sig", newline=""))}
found = scans_in("scans")
if len(found) != 20:
    sys.exit(f"expected 20 scans, found {len(found)}")
for img, name in sorted(found.items()):
    no = int(img[4:])
    want = f"{index[no]['date']}_{slug(index[no]['title'])}.pdf" if no in index else f"{img}.pdf"
    if name != want:
        sys.exit(f"{img} should be named {want}, found {name}")
try:
    listing = open("out/unmatched.txt").read()
except FileNotFoundError:
    sys.exit("out/unmatched.txt is missing")
for img in found:
    if int(img[4:]) not in index and img not in listing:
        sys.exit(f"{img} is unmatched but not listed")
if not os.path.exists("out/rollback.sh"):
    sys.exit("out/rollback.sh is missing")
tmp = tempfile.mkdtemp()
shutil.copytree("scans", os.path.join(tmp, "scans"))
shutil.copytree("out", os.path.join(tmp, "out"))
r = subprocess.run(["sh", "out/rollback.sh"], cwd=tmp, capture_output=True, text=True)
if r.returncode:
    sys.exit(f"rollback failed: {r.stderr.strip()[:200]}")
for img, name in scans_in(os.path.join(tmp, "scans")).items():
    if name != f"{img}.pdf":
        sys.exit(f"after rollback {img} is still named {name}")
print("ok: scans renamed, rollback restores every name")
"""

# ---------------------------------------------------------------- fileio-inventory-archives


def _archives_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    reports = {
        f"reports/{m}.csv": b"region,revenue\n"
        + "".join(f"{r},{rng.randint(1000, 90000)}\n" for r in ("north", "south", "east")).encode()
        for m in ("jan", "feb", "mar")
    }
    reports["README.txt"] = b"Quarterly revenue exports, one file per month.\n"
    site = {
        "css/site.css": f"body {{ margin: {rng.randint(0, 16)}px; }}\n".encode(),
        "js/app.js": f"console.log('build {rng.randint(100, 999)}');\n".encode(),
        "img/logo.png": _png(rng.randint(3, 9), 3, (20, 120, rng.randrange(256))),
    }
    upload = {
        "upload/data.json": json.dumps({"rows": rng.randint(10, 99)}).encode() + b"\n",
        "upload/notes.txt": b"Uploaded via the customer portal.\n",
        "../../../payload.sh": b"#!/bin/sh\necho owned > /tmp/owned\n",
    }
    batch = _zip(
        {f"scan_{i:02d}.txt": f"page {i}\n{rng.randbytes(600).hex()}\n".encode() for i in range(6)}
    )
    files = {
        "incoming/reports-2026-q1.tar.gz": _targz(reports),
        "incoming/site-assets.zip": _zip(site),
        "incoming/customer-upload.tar.gz": _targz(upload),
        "incoming/scans-batch.zip": batch[: len(batch) * 55 // 100],  # transfer cut short
    }
    return Fixture(files), {"archives": len(files)}


_EXTRACT_V1 = textwrap.dedent(
    """\
    import csv, hashlib, os, shutil, tarfile, zipfile


    def inside(dest, member):
        target = os.path.realpath(os.path.join(dest, member))
        return target.startswith(os.path.realpath(dest) + os.sep)


    def extract(path, dest):
        problems = []
        if path.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                safe = []
                for m in tar.getmembers():
                    if inside(dest, m.name) and (m.isfile() or m.isdir()):
                        safe.append(m)
                    else:
                        problems.append((os.path.basename(path), m.name, "unsafe entry, skipped"))
                tar.extractall(dest, members=safe)
        else:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if inside(dest, info.filename):
                        zf.extract(info, dest)
                    else:
                        problems.append(
                            (os.path.basename(path), info.filename, "unsafe entry, skipped")
                        )
        return problems


    problems = []
    for name in sorted(os.listdir("incoming")):
        path = os.path.join("incoming", name)
        dest = os.path.join("extracted", name.removesuffix(".tar.gz").removesuffix(".zip"))
        shutil.rmtree(dest, ignore_errors=True)  # start each archive from a clean folder
        os.makedirs(dest)
        problems += extract(path, dest)

    os.makedirs("out", exist_ok=True)
    count = 0
    with open("out/inventory.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["archive", "path", "size", "sha256"])
        for root, dirs, files in sorted(os.walk("extracted")):
            for n in sorted(files):
                p = os.path.join(root, n)
                rel = os.path.relpath(p, "extracted")
                digest = hashlib.sha256(open(p, "rb").read()).hexdigest()
                w.writerow([rel.split(os.sep)[0], rel, os.path.getsize(p), digest])
                count += 1
    with open("out/extract_report.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["archive", "entry", "problem"])
        w.writerows(problems)
    print(f"{count} files inventoried; {len(problems)} problem(s): "
          + "; ".join(f"{a} {e} {p}".replace("  ", " ") for a, e, p in problems))
    """
)


def _archives_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls -l incoming/ && file incoming/*",
            say="Listing the archives and the contents of the tarballs.",
        ),
        sh('for f in incoming/*.tar.gz; do echo "== $f"; tar tzvf "$f"; done'),
    ]
    yield write("extract.py", _EXTRACT_V1, say="Writing an extractor that refuses ../ entries.")
    run = yield sh("python3 extract.py")
    if not run.ok:
        # scans-batch.zip was cut short: no central directory, so ZipFile() raises.
        yield edit(
            "extract.py",
            "    problems += extract(path, dest)\n",
            "    try:\n"
            "        problems += extract(path, dest)\n"
            "    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:\n"
            "        shutil.rmtree(dest, ignore_errors=True)\n"
            '        problems.append((name, "", f"corrupted, not extracted: {exc}"))\n',
            say="One zip is truncated; reporting corrupted archives instead of crashing.",
        )
        run = yield sh("python3 extract.py")
    yield Reply(
        f"Extracted incoming/ into extracted/<archive>/: {run.stdout.strip()}. "
        "The inventory is out/inventory.csv, problems are in out/extract_report.csv."
    )
    _report, check = yield [
        read(
            "out/extract_report.csv",
            say="Reading the problem report and confirming nothing landed outside extracted/.",
        ),
        sh(
            "ls extracted/ && find extracted -type f | wc -l && "
            "(test -e ../payload.sh && echo 'payload escaped!' "
            "|| echo 'nothing outside extracted/')"
        ),
    ]
    tail = check.stdout.strip().splitlines()[-1] if check.ok else "?"
    yield Reply(
        f"Checked: {tail}; the ../ entry was skipped and scans-batch.zip is reported as corrupted."
    )


_ARCHIVES_VERIFY = """
import csv, glob, hashlib, os, sys
for bad in ("../payload.sh", "payload.sh", "extracted/payload.sh", "../../payload.sh"):
    if os.path.lexists(bad):
        sys.exit(f"the path-traversal entry was extracted to {bad}")
try:
    rows = list(csv.DictReader(open("out/inventory.csv", newline="")))
except FileNotFoundError:
    sys.exit("out/inventory.csv is missing")
actual = {}
for root, _, names in os.walk("extracted"):
    for n in names:
        p = os.path.join(root, n)
        actual[os.path.relpath(p, "extracted")] = (
            os.path.getsize(p), hashlib.sha256(open(p, "rb").read()).hexdigest())
for want in ("reports-2026-q1/reports/jan.csv", "reports-2026-q1/README.txt",
             "site-assets/css/site.css", "site-assets/img/logo.png",
             "customer-upload/upload/data.json"):
    if want not in actual:
        sys.exit(f"extracted/{want} is missing")
if any(k.startswith("scans-batch") for k in actual):
    sys.exit("files from the corrupted scans-batch.zip were kept")
listed = {}
for r in rows:
    key = os.path.normpath(r["path"])
    key = key[len("extracted/"):] if key.startswith("extracted/") else key
    listed[key] = (int(r["size"]), r["sha256"])
if listed != actual:
    sys.exit(f"inventory lists {len(listed)} files that do not match the {len(actual)} extracted")
report = ""
for p in glob.glob("out/*"):
    if os.path.basename(p) != "inventory.csv" and os.path.isfile(p):
        report += open(p, errors="replace").read()
if "scans-batch" not in report or "payload.sh" not in report:
    sys.exit("the report must name the corrupted archive and the unsafe entry")
print(f"ok: {len(actual)} files inventoried")
"""

# ---------------------------------------------------------------- fileio-parse-fixed-width-export

_PAYROLL_LAYOUT = textwrap.dedent(
    """\
    # PAYROLL DETAIL RECORD (REC_TYPE = D), 80 BYTES
    # field      start  width  type
    REC_TYPE     1      1      str
    EMP_ID       2      6      int
    NAME         8      24     str
    DEPT         32     4      str
    PAY_DATE     36     8      date
    GROSS        44     11     amount
    TAX          55     11     amount
    NET          66     11     amount
    # amount: implied 2 decimals, trailing sign (+/-)
    # date: YYYYMMDD
    """
)


def _amount(cents: int) -> str:
    return f"{abs(cents):010d}{'-' if cents < 0 else '+'}"


def _payroll_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    n = rng.randint(76, 84)
    pay_date = f"2026{rng.randint(1, 6):02d}28"
    lines = [f"HPAYROLL EXPORT {pay_date} SYS=HRMS01".ljust(80)]
    for emp in sorted(rng.sample(range(1000, 99999), n)):
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}".upper()
        gross = rng.randint(180000, 750000)
        tax = gross * rng.randint(18, 34) // 100
        if rng.random() < 0.08:  # reversal of an earlier payment
            gross, tax = -gross, -tax
        lines.append(
            f"D{emp:06d}{name:<24}{rng.choice(('FIN', 'ENG', 'OPS', 'HR', 'SALE')):<4}"
            f"{pay_date}{_amount(gross)}{_amount(tax)}{_amount(gross - tax)}".ljust(80)
        )
    lines.append(f"T{n:06d}".ljust(80))
    files = {"data/payroll.txt": "\n".join(lines) + "\n", "data/layout.txt": _PAYROLL_LAYOUT}
    return Fixture(files), {"records": n}


_PAYROLL_V1 = textwrap.dedent(
    """\
    import csv, os
    from decimal import Decimal

    layout = []
    for line in open("data/layout.txt"):
        if not line.strip() or line.startswith("#"):
            continue
        name, start, width, kind = line.split()
        if name != "REC_TYPE":
            layout.append((name.lower(), int(start), int(width), kind))


    def convert(raw, kind):
        raw = raw.strip()
        if kind == "int":
            return int(raw)
        if kind == "amount":  # implied decimals, trailing sign
            sign = -1 if raw.endswith("-") else 1
            return f"{sign * Decimal(raw[:-1]) / 100:.2f}"
        if kind == "date":
            return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
        return raw


    rows, trailer = [], None
    for line in open("data/payroll.txt"):
        if line.startswith("T"):
            trailer = int(line[1:7])
        elif line.startswith("D"):
            rows.append({name: convert(line[start:start + width], kind)
                         for name, start, width, kind in layout})
    if trailer != len(rows):
        raise SystemExit(f"trailer says {trailer} records, parsed {len(rows)}")

    os.makedirs("out", exist_ok=True)
    with open("out/payroll.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[name for name, *_ in layout])
        w.writeheader()
        w.writerows(rows)
    gross = sum(Decimal(r["gross"]) for r in rows)
    print(f"parsed {len(rows)} records (trailer: {trailer}); total gross {gross}")
    """
)


def _payroll_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("data/layout.txt", say="Reading the column layout."),
        sh("head -3 data/payroll.txt | cat -A | cut -c1-90 && tail -1 data/payroll.txt "
           "&& wc -l data/payroll.txt", say="And the first and last records."),
    ]  # fmt: skip
    yield write("parse_payroll.py", _PAYROLL_V1, say="Writing a layout-driven parser.")
    run = yield sh("python3 parse_payroll.py")
    if not run.ok:
        # The layout's start positions are 1-based (COBOL style); Python slices are 0-based.
        yield edit(
            "parse_payroll.py",
            "line[start:start + width]",
            "line[start - 1:start - 1 + width]",
            say="The layout counts columns from 1; shifting the slices by one.",
        )
        run = yield sh("python3 parse_payroll.py")
    yield Reply(f"Parsed data/payroll.txt into out/payroll.csv: {run.stdout.strip()}.")
    _head, check = yield [
        sh("head -3 out/payroll.csv", say="Checking the columns and the negative amounts."),
        sh("grep -c ',-' out/payroll.csv || true"),
    ]
    negatives = check.stdout.strip() if check.ok and check.stdout.strip() else "some"
    yield Reply(
        f"Checked: names and departments are trimmed, amounts are signed decimals "
        f"({negatives} reversal rows are negative), and the count matches the trailer."
    )


_PAYROLL_VERIFY = """
import csv, sys
from decimal import Decimal
layout = []
for line in open("data/layout.txt"):
    if line.strip() and not line.startswith("#"):
        name, start, width, kind = line.split()
        layout.append((name.lower(), int(start) - 1, int(width), kind))
want, trailer = [], None
for line in open("data/payroll.txt"):
    if line.startswith("T"):
        trailer = int(line[1:7])
    if not line.startswith("D"):
        continue
    rec = {}
    for name, s, w, kind in layout:
        raw = line[s:s + w].strip()
        if kind == "amount":
            raw = (-1 if raw.endswith("-") else 1) * Decimal(raw[:-1]) / 100
        elif kind == "int":
            raw = int(raw)
        elif kind == "date":
            raw = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
        rec[name] = raw
    want.append(rec)
try:
    rows = [{k.lower(): v for k, v in r.items()}
            for r in csv.DictReader(open("out/payroll.csv", newline=""))]
except FileNotFoundError:
    sys.exit("out/payroll.csv is missing")
if len(rows) != trailer or len(want) != trailer:
    sys.exit(f"expected {trailer} rows (trailer), found {len(rows)}")
for i, (exp, got) in enumerate(zip(want, rows), 1):
    for name, value in exp.items():
        if name == "rec_type":
            continue
        cell = (got.get(name) or "").strip()
        try:
            if isinstance(value, Decimal):
                ok = Decimal(cell) == value
            elif isinstance(value, int):
                ok = int(cell) == value
            else:
                ok = cell == value
        except Exception:
            ok = False
        if not ok:
            sys.exit(f"row {i}, {name}: expected {value}, got {cell!r}")
print(f"ok: {len(rows)} records")
"""

# ---------------------------------------------------------------- fileio-update-ini-hostnames

_INI_FILES = {
    "app.ini": """\
; Main application settings
; The database moved to db-old.internal in 2023 (ticket OPS-1182)
[server]
bind = 0.0.0.0
port = {port}

[database]
host = db-old.internal
port = 5432
name = app
# pool size tuned for the old host
pool = {pool}

[reporting]
# reporting reads from the same primary for now
host = db-old.internal
port = 5432

[cache]
url = redis://cache-old.internal:6379/0
ttl = {ttl}
""",
    "worker.ini": """\
# Background worker
[queue]
broker = redis://cache-old.internal:6379/1
concurrency = {workers}

[database]
dsn = postgresql://worker@db-old.internal:5432/app
; the analytics replica is NOT part of this migration
analytics_host = analytics-db-old.internal
""",
    "reporting.ini": """\
[warehouse]
host = analytics-db-old.internal
port = 5439

[source]
; nightly export from db-old.internal
host = db-old.internal
user = reporting
""",
    "scheduler.ini": """\
[scheduler]
timezone = Europe/Lisbon
lock_backend = cache-old.internal:11211
; cache-old.internal keeps the job locks

[jobs]
cleanup = 0 3 * * *
rotate = {rotate} 4 * * *
""",
    "api.ini": """\
[http]
port = {api_port}
; rate limits live in the cache (cache-old.internal)

[ratelimit]
backend = cache-old.internal
window = 60

[database]
host=db-old.internal
readonly = true
""",
}


def _ini_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    values = {
        "port": rng.choice((8000, 8080, 8443)),
        "pool": rng.randint(5, 40),
        "ttl": rng.choice((60, 300, 900)),
        "workers": rng.randint(2, 16),
        "rotate": rng.randint(0, 59),
        "api_port": rng.choice((9000, 9080)),
    }
    mapping = {
        "db-old.internal": f"db-{rng.randint(1, 9):02d}.prod.internal",
        "cache-old.internal": f"cache-{rng.randint(1, 9):02d}.prod.internal",
    }
    files: dict[str, str | bytes] = {
        f"config/{n}": t.format(**values) for n, t in _INI_FILES.items()
    }
    files["migration.json"] = json.dumps(mapping, indent=2) + "\n"
    setup = (
        "git init -q && git add -A && GIT_AUTHOR_DATE='2026-01-05T10:00:00' "
        "GIT_COMMITTER_DATE='2026-01-05T10:00:00' git commit -qm 'config baseline'",
    )
    return Fixture(files, setup), {"mapping": mapping}


_INI_REPLACE = textwrap.dedent(
    """\
    python3 - <<'EOF'
    import glob, json, re

    mapping = json.load(open("migration.json"))
    # Whole hostnames only: analytics-db-old.internal must stay as it is.
    host = re.compile(r"(?<![\\w.-])(" + "|".join(map(re.escape, mapping)) + r")(?![\\w-]|\\.\\w)")
    for path in sorted(glob.glob("config/*.ini")):
        with open(path, newline="") as f:
            lines = f.readlines()
        changed = 0
        for i, line in enumerate(lines):
            if line.lstrip().startswith((";", "#")):
                continue  # comments stay as they are
            new = host.sub(lambda m: mapping[m.group(1)], line)
            changed += new != line
            lines[i] = new
        if changed:
            with open(path, "w", newline="") as f:
                f.writelines(lines)
        print(f"{path}: {changed} line(s) updated")
    EOF
    """
)


def _ini_playbook(ctx: Ctx) -> Playbook:
    new_db = ctx.facts["mapping"]["db-old.internal"]
    yield [
        sh(
            "cat migration.json && git status --short && grep -rn 'old\\.internal' config/",
            say="Seeing which hosts move and where they are referenced; reading app.ini in full.",
        ),
        read("config/app.ini"),
    ]
    first = yield edit(
        "config/app.ini",
        "host = db-old.internal",
        f"host = {new_db}",
        say="Updating the primary database host.",
    )
    if not first.ok:
        # [database] and [reporting] both say exactly that; the edit needs its section.
        yield edit(
            "config/app.ini",
            "[database]\nhost = db-old.internal",
            f"[database]\nhost = {new_db}",
            say="That line appears twice; anchoring the edit on its [database] section.",
        )
    run = yield sh(_INI_REPLACE, say="Applying the rest of the mapping to non-comment lines.")
    yield sh(
        "mkdir -p out && git diff -- config > out/config_changes.diff && git diff --stat -- config",
        say="Saving the audit diff.",
    )
    yield Reply(
        f"Updated the hostnames in config/*.ini from migration.json "
        f"({run.stdout.strip().replace(chr(10), '; ')}); comments and ordering are "
        "untouched and the diff is in out/config_changes.diff."
    )
    check, diffstat = yield [
        sh(
            "grep -rn 'old\\.internal' config/",
            say="Checking what still mentions an old host, and counting the diff's lines.",
        ),
        sh("grep -c '^+[^+]' out/config_changes.diff"),
    ]
    left = check.stdout.strip().splitlines()
    yield Reply(
        f"Checked: the only remaining 'old.internal' mentions are "
        f"{len(left)} comment or analytics-db lines (not in the mapping), and the "
        f"diff shows {diffstat.stdout.strip() or '?'} rewritten lines."
    )


_INI_VERIFY = """
import json, re, subprocess, sys
mapping = json.load(open("migration.json"))
pat = re.compile(r"(?<![\\w.-])(" + "|".join(map(re.escape, mapping)) + r")(?![\\w-]|\\.\\w)")
files = subprocess.run(["git", "ls-files", "config"], capture_output=True, text=True,
                       check=True).stdout.split()
pairs = []
for f in files:
    old = subprocess.run(["git", "show", f"HEAD:{f}"], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    new = open(f).read().splitlines()
    if len(old) != len(new):
        sys.exit(f"{f}: lines were added or removed")
    for a, b in zip(old, new):
        want = a if a.lstrip().startswith((";", "#")) else pat.sub(lambda m: mapping[m.group(1)], a)
        if b != want:
            sys.exit(f"{f}: expected {want!r}, found {b!r}")
        if a != b:
            pairs.append((a, b))
if not pairs:
    sys.exit("no hostname was changed")
try:
    diff = open("out/config_changes.diff").read().splitlines()
except FileNotFoundError:
    sys.exit("out/config_changes.diff is missing")
for a, b in pairs:
    if "-" + a not in diff or "+" + b not in diff:
        sys.exit(f"the diff does not show the change {a!r} -> {b!r}")
print(f"ok: {len(pairs)} lines changed, diff saved")
"""

# ---------------------------------------------------------------- fileio-extract-markdown-tables

_MD_DOCS = {
    "api.md": """\
# API reference

Base URL: `https://api.example.test/v1`. All responses are JSON.

## Endpoints

| Method | Path | Description |
|:-------|:-----|:------------|
| `GET` | `/users` | List users ({page} per page) |
| `GET` | `/users/{{id}}` | Fetch one user |
| `POST` | `/users` | Create a user |
| `DELETE` | `/users/{{id}}` | Remove a user |

## Request / Response fields

| Field | Type | Notes |
|-------|------|-------|
| `id` | integer | read-only |
| `status` | string | one of `active \\| suspended \\| deleted` |
| `role` | string | `admin \\| member` |
| `quota_mb` | integer | default {quota} |
""",
    "deployment.md": """\
# Deployment guide

Check the pods with `kubectl get pods | grep api` before and after a rollout.

## Environments

| Name | URL | Replicas |
|------|-----|---------:|
| dev | https://dev.example.test | 1 |
| staging | https://staging.example.test | 2 |
| production | https://example.test | {replicas} |

## Ports

| Service | Port | Protocol |
|:--------|-----:|:--------:|
| api | 8080 | TCP |
| metrics | 9090 | TCP |
| dns | 53 | UDP |
""",
    "pricing.md": """\
# Pricing

## Plans

| Plan | Monthly | Seats |
|:-----|--------:|------:|
| Starter | {starter} EUR | 3 |
| Team | {team} EUR | 20 |
| Enterprise | on request | unlimited |

Prices exclude VAT.

## Add-ons

| Add-on | Price |
|--------|------:|
| Extra storage (100 GB) | 5 EUR |
| Priority support | {support} EUR |
""",
    "faq.md": """\
# FAQ

## Limits

| Resource | Limit |
|----------|-------|
| Requests per minute | {rpm} |
| Upload size | 25 MB |
| Projects | 50 |

## Who do I contact?

Write to support@example.test.
""",
}


def _md_tables_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    values = {
        "page": rng.choice((20, 50, 100)),
        "quota": rng.choice((512, 1024, 2048)),
        "replicas": rng.randint(3, 8),
        "starter": rng.randint(5, 15),
        "team": rng.randint(30, 90),
        "support": rng.randint(50, 200),
        "rpm": rng.choice((600, 1200)),
    }
    files: dict[str, str | bytes] = {f"docs/{n}": t.format(**values) for n, t in _MD_DOCS.items()}
    return Fixture(files), {"tables": 7}


_MD_TABLES_V1 = textwrap.dedent(
    """\
    import csv, glob, os, re

    ALIGN = re.compile(r"^\\|?(\\s*:?-{3,}:?\\s*\\|)*\\s*:?-{3,}:?\\s*\\|?$")


    def cells(line):
        inner = line.strip()
        if inner.startswith("|"):
            inner = inner[1:]
        if inner.endswith("|") and not inner.endswith("\\\\|"):
            inner = inner[:-1]
        # Split on pipes that are not escaped, then restore the escaped ones.
        return [c.strip().replace("\\\\|", "|") for c in re.split(r"(?<!\\\\)\\|", inner)]


    os.makedirs("out/tables", exist_ok=True)
    index = []
    for path in sorted(glob.glob("docs/*.md")):
        doc = os.path.splitext(os.path.basename(path))[0]
        lines = open(path).read().splitlines()
        heading, i = "", 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif (
                line.lstrip().startswith("|")
                and i + 1 < len(lines)
                and ALIGN.match(lines[i + 1].strip())
            ):
                header, rows = cells(line), []
                i += 2
                while i < len(lines) and lines[i].lstrip().startswith("|"):
                    rows.append(cells(lines[i]))
                    i += 1
                name = heading.lower().replace(" ", "-")
                out = f"out/tables/{doc}__{name}.csv"
                with open(out, "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(header)
                    w.writerows(rows)
                index.append((path, heading, out))
                continue
            i += 1

    with open("out/tables/index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "heading", "path"])
        w.writerows(index)
    print(f"{len(index)} tables from {len({p for p, _, _ in index})} documents")
    """
)


def _md_tables_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "grep -c '^|' docs/*.md; grep -n '^#' docs/*.md",
            say="Counting table rows and headings per document, and reading api.md, which has "
            "escaped pipes.",
        ),
        read("docs/api.md"),
    ]
    yield write("extract_tables.py", _MD_TABLES_V1, say="Writing a pipe-table extractor.")
    run = yield sh("python3 extract_tables.py")
    if not run.ok:
        # "Request / Response fields" keeps its slash in the file name: a missing directory.
        yield edit(
            "extract_tables.py",
            'name = heading.lower().replace(" ", "-")',
            'name = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")',
            say="A heading with a slash made a bad file name; slugging headings properly.",
        )
        run = yield sh("python3 extract_tables.py")
    yield Reply(
        f"Extracted {run.stdout.strip()} into out/tables/, one CSV per table, "
        "listed in out/tables/index.csv."
    )
    _index, check = yield [
        sh("cat out/tables/index.csv", say="Checking the index and the table with escaped pipes."),
        sh("cat out/tables/api__request-response-fields.csv"),
    ]
    restored = "restored" if "active | suspended" in check.stdout else "NOT restored"
    yield Reply(
        f"Checked: the index has one row per table, and escaped pipes are {restored} "
        "as literal '|' inside the cells."
    )


_MD_TABLES_VERIFY = """
import csv, glob, os, re, sys
align = re.compile(r"^\\|?(\\s*:?-{3,}:?\\s*\\|)*\\s*:?-{3,}:?\\s*\\|?$")

def cells(line):
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    if inner.endswith("|") and not inner.endswith("\\\\|"):
        inner = inner[:-1]
    return [c.strip().replace("\\\\|", "|").replace("`", "")
            for c in re.split(r"(?<!\\\\)\\|", inner)]

tables = {}
for path in sorted(glob.glob("docs/*.md")):
    lines = open(path).read().splitlines()
    heading, i = "", 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = lines[i].lstrip("#").strip()
        elif (lines[i].lstrip().startswith("|") and i + 1 < len(lines)
              and align.match(lines[i + 1].strip())):
            rows = [cells(lines[i])]
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            tables[(os.path.basename(path), heading)] = rows
            continue
        i += 1
try:
    index = list(csv.DictReader(open("out/tables/index.csv", newline="")))
except FileNotFoundError:
    sys.exit("out/tables/index.csv is missing")
if len(index) != len(tables):
    sys.exit(f"expected {len(tables)} tables in the index, found {len(index)}")
seen = set()
for r in index:
    key = (os.path.basename(r["source"]), r["heading"])
    if key not in tables:
        sys.exit(f"index row {key} matches no table")
    seen.add(key)
    out = r["path"]
    if os.path.splitext(key[0])[0] not in os.path.basename(out):
        sys.exit(f"{out} is not named after its document")
    try:
        got = [[c.replace("`", "") for c in row] for row in csv.reader(open(out, newline=""))]
    except FileNotFoundError:
        sys.exit(f"{out} is missing")
    if got != tables[key]:
        sys.exit(f"{out} does not match the table under {key[1]!r} in {key[0]}")
if len(seen) != len(tables):
    sys.exit("some tables are missing from the index")
print(f"ok: {len(tables)} tables extracted")
"""

# ---------------------------------------------------------------- fileio-aggregate-growing-stream

_EMIT_PY = textwrap.dedent(
    """\
    \"\"\"Append simulated sensor readings to data/stream.csv, ten rows per second.\"\"\"
    import random
    import time

    DEVICES = ["sensor-a1", "sensor-b2", "sensor-c3", "sensor-d4"]
    rng = random.Random()
    stop_at = time.time() + 600  # safety net: never run longer than ten minutes
    n = 0
    while time.time() < stop_at:
        time.sleep(0.1)
        line = f"{rng.choice(DEVICES)},{int(time.time())},{round(rng.gauss(21.0, 3.0), 2)}\\n"
        with open("data/stream.csv", "a") as f:
            # The row goes out in two writes, so a reader can catch half of it.
            cut = rng.randrange(1, len(line) - 1)
            f.write(line[:cut])
            f.flush()
            time.sleep(0.01)
            f.write(line[cut:])
        n += 1
        print(f"appended row {n}", flush=True)
    """
)


def _stream_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    ts = 1767225600 + rng.randrange(86400)
    rows = ["device,ts,value"]
    for i in range(5):
        rows.append(
            f"sensor-{rng.choice(('a1', 'b2', 'c3', 'd4'))},{ts + i},"
            f"{round(rng.gauss(21.0, 3.0), 2)}"
        )
    # An earlier run was killed mid-row: the file ends without a newline.
    partial = f"sensor-{rng.choice(('a1', 'b2', 'c3', 'd4'))},{ts + 5},"
    files = {"gen/emit.py": _EMIT_PY, "data/stream.csv": "\n".join(rows) + "\n" + partial}
    return Fixture(files), {"initial_rows": 5}


_AGGREGATE_V1 = textwrap.dedent(
    """\
    import csv, json, os
    from collections import defaultdict

    values = defaultdict(list)
    with open("data/stream.csv", newline="") as f:
        for row in csv.DictReader(f):
            values[row["device"]].append(float(row["value"]))

    summary = {
        device: {"count": len(v), "min": min(v), "max": max(v), "mean": round(sum(v) / len(v), 3)}
        for device, v in sorted(values.items())
    }
    rows = sum(len(v) for v in values.values())
    os.makedirs("out", exist_ok=True)
    with open("out/stream_summary.json", "w") as f:
        json.dump({"rows": rows, "devices": summary}, f, indent=2)
    print(f"{rows} rows from {len(summary)} devices: "
          + ", ".join(f"{d} n={s['count']} mean={s['mean']}" for d, s in summary.items()))
    """
)


def _stream_playbook(ctx: Ctx) -> Playbook:
    started = yield start("python3 gen/emit.py", say="Starting the generator in the background.")
    job = started.extras.get("job", "job1") if started else "job1"
    yield [
        sh(
            "sleep 3; head -n 3 data/stream.csv; wc -l data/stream.csv; tail -n 2 data/stream.csv",
            say="Following the file for 3 seconds and checking the generator's own log.",
            timeout_s=15,
        ),
        output(job),
    ]
    stopped, _ = yield [
        kill(job, say="Three seconds are up; stopping the generator and writing the per-device "
             "aggregation."),
        write("aggregate.py", _AGGREGATE_V1),
    ]  # fmt: skip
    run = yield sh("python3 aggregate.py")
    if not run.ok:
        # A row cut short by an interrupted write broke float(): aggregate complete rows only.
        yield edit(
            "aggregate.py",
            "    for row in csv.DictReader(f):\n"
            '        values[row["device"]].append(float(row["value"]))\n',
            "    text = f.read()\n"
            "skipped = 0\n"
            "# Skip the header and whatever follows the last newline (a row being written).\n"
            'for line in text.split("\\n")[1:-1]:\n'
            "    try:\n"
            '        device, _ts, value = line.split(",")\n'
            "        values[device].append(float(value))\n"
            "    except ValueError:  # a partial or garbled row\n"
            "        skipped += 1\n"
            'print(f"skipped {skipped} incomplete row(s)")\n',
            say="Some rows are incomplete; only whole, well-formed lines count now.",
        )
        run = yield sh("python3 aggregate.py")
    state = "stopped" if stopped and not stopped.extras.get("running", True) else "stop requested"
    yield Reply(
        f"Ran gen/emit.py in the background for 3 s ({state}) and aggregated "
        f"data/stream.csv: {run.stdout.strip().replace(chr(10), '; ')}. The summary is "
        "in out/stream_summary.json."
    )
    yield read("out/stream_summary.json", say="Reading the summary back.")
    yield Reply(
        "Checked: the summary has count, min, max and mean per device, computed from "
        "complete rows only; the generator is no longer running."
    )


_STREAM_VERIFY = """
import json, os, sys
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"gen/emit.py" in cmd:
            sys.exit("the generator is still running")
stats = {}
for line in open("data/stream.csv").read().split("\\n")[1:-1]:
    parts = line.split(",")
    if len(parts) != 3:
        continue
    try:
        value = float(parts[2])
    except ValueError:
        continue
    stats.setdefault(parts[0], []).append(value)
total = sum(len(v) for v in stats.values())
if total < 20:
    sys.exit(f"only {total} complete rows: the generator did not run for ~3 s")
try:
    summary = json.load(open("out/stream_summary.json"))
except FileNotFoundError:
    sys.exit("out/stream_summary.json is missing")
devices = summary.get("devices", summary)
if set(devices) != set(stats):
    sys.exit(f"devices {sorted(devices)} != {sorted(stats)}")
for dev, vals in stats.items():
    got = devices[dev]
    if got.get("count") != len(vals):
        sys.exit(f"{dev}: count {got.get('count')} != {len(vals)}")
    if abs(got["min"] - min(vals)) > 1e-6 or abs(got["max"] - max(vals)) > 1e-6:
        sys.exit(f"{dev}: wrong min/max")
    if abs(got["mean"] - sum(vals) / len(vals)) > 0.01:
        sys.exit(f"{dev}: wrong mean")
print(f"ok: {total} complete rows over {len(stats)} devices")
"""


RECIPES = [
    TaskRecipe(
        task_id="fileio-merge-csv-exports",
        fixture=_merge_csv_fixture,
        playbook=_merge_csv_playbook,
        verify=_MERGE_VERIFY,
        failure_mode="assumes every export is comma-delimited; the semicolon file breaks it",
    ),
    TaskRecipe(
        task_id="fileio-flatten-nested-json",
        fixture=_flatten_fixture,
        playbook=_flatten_playbook,
        verify=_FLATTEN_VERIFY,
        failure_mode="takes the CSV header from the first record, which lacks optional fields",
    ),
    TaskRecipe(
        task_id="fileio-convert-latin1-to-utf8",
        fixture=_latin1_fixture,
        playbook=_latin1_playbook,
        verify=_LATIN1_VERIFY,
        failure_mode="feeds file's 'binary' encoding guess for the PNG to bytes.decode()",
    ),
    TaskRecipe(
        task_id="fileio-sort-downloads-by-type",
        fixture=_downloads_fixture,
        playbook=_downloads_playbook,
        verify=_DOWNLOADS_VERIFY,
        failure_mode="the MIME-to-folder table has no fallback, so an empty file is a KeyError",
    ),
    TaskRecipe(
        task_id="fileio-find-duplicate-backups",
        fixture=_dupes_fixture,
        playbook=_dupes_playbook,
        verify=_DUPES_VERIFY,
        failure_mode="opens every walked name, including a dangling symlink, and crashes",
    ),
    TaskRecipe(
        task_id="fileio-split-log-by-day",
        fixture=_split_log_fixture,
        playbook=_split_log_playbook,
        verify=_SPLIT_VERIFY,
        failure_mode="parses a date from every line, but traceback lines carry no timestamp",
    ),
    TaskRecipe(
        task_id="fileio-validate-order-records",
        fixture=_orders_fixture,
        playbook=_orders_playbook,
        verify=_ORDERS_VERIFY,
        failure_mode="reads rule['required'] although optional fields omit that key",
    ),
    TaskRecipe(
        task_id="fileio-rename-scans-by-index",
        fixture=_scans_fixture,
        playbook=_scans_playbook,
        verify=_SCANS_VERIFY,
        failure_mode="reads the spreadsheet's index without utf-8-sig, so the BOM hides image_no",
    ),
    TaskRecipe(
        task_id="fileio-inventory-archives",
        fixture=_archives_fixture,
        playbook=_archives_playbook,
        verify=_ARCHIVES_VERIFY,
        failure_mode="guards against ../ entries but not a truncated zip, which raises BadZipFile",
    ),
    TaskRecipe(
        task_id="fileio-parse-fixed-width-export",
        fixture=_payroll_fixture,
        playbook=_payroll_playbook,
        verify=_PAYROLL_VERIFY,
        failure_mode="slices with the layout's 1-based start positions as if they were 0-based",
    ),
    TaskRecipe(
        task_id="fileio-update-ini-hostnames",
        fixture=_ini_fixture,
        playbook=_ini_playbook,
        verify=_INI_VERIFY,
        failure_mode="an exact edit of 'host = db-old.internal' is ambiguous: two sections use it",
    ),
    TaskRecipe(
        task_id="fileio-extract-markdown-tables",
        fixture=_md_tables_fixture,
        playbook=_md_tables_playbook,
        verify=_MD_TABLES_VERIFY,
        failure_mode="slugs headings by replacing spaces only, so a '/' breaks the file path",
    ),
    TaskRecipe(
        task_id="fileio-aggregate-growing-stream",
        fixture=_stream_fixture,
        playbook=_stream_playbook,
        verify=_STREAM_VERIFY,
        failure_mode="parses every line as a full row, but an interrupted write left a partial one",
    ),
]
