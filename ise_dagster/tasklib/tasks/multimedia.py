"""Multimedia recipes: images, audio, subtitles, playlists and charts with the stdlib only."""

from __future__ import annotations

import io
import json
import math
import random
import re
import struct
import textwrap
import wave
import zlib

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, patch, poll, read, sh, start, write

_GIT_INIT = (
    "git init -q && git add -A && GIT_AUTHOR_DATE='2026-01-05T10:00:00' "
    "GIT_COMMITTER_DATE='2026-01-05T10:00:00' git commit -qm 'init'"
)


def _wav(rate: int, channels: int, width: int, samples: list[int]) -> bytes:
    """A WAV file from interleaved integer samples (signed 16-bit, or unsigned 8-bit)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            w.writeframes(bytes(samples))
        else:
            w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buf.getvalue()


def _tone(rate: int, seconds: float, freq: float, amp: float, channels: int = 1) -> list[int]:
    out = []
    for i in range(int(rate * seconds)):
        v = int(amp * math.sin(2 * math.pi * freq * i / rate))
        out.extend([v] * channels)
    return out


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _png(width: int, height: int, ctype: int, rows: list[bytes], filters=None) -> bytes:
    """A PNG (8-bit, colour type 0/2/6) whose rows use the given filter types."""
    bpp = {0: 1, 2: 3, 6: 4}[ctype]
    raw, prev = bytearray(), bytes(width * bpp)
    for y, row in enumerate(rows):
        ft = filters[y] if filters else 0
        raw.append(ft)
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[ft]
            raw.append((x - pred) & 255)
        prev = row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, ctype, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def _ppm(width: int, height: int, pixels: bytes, comments: tuple[str, ...] = ()) -> bytes:
    head = "P6\n" + "".join(f"# {c}\n" for c in comments) + f"{width} {height}\n255\n"
    return head.encode() + pixels


# ---------------------------------------------------------------- media-inventory-image-assets


def _gif(width: int, height: int) -> bytes:
    # Header, screen descriptor, 2-colour table, one image with a 1-pixel LZW stream.
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00;"
    )


def _inventory_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    kinds = ["png"] * 9 + ["ppm"] * 8 + ["gif"] * 7 + ["svg"] * 6
    rng.shuffle(kinds)
    big = set(rng.sample([i for i, k in enumerate(kinds) if k != "ppm"], 4))
    wrong = set(rng.sample([i for i in range(30) if i not in big], 3))
    files = {}
    for i, kind in enumerate(kinds):
        w, h = rng.randint(8, 40), rng.randint(8, 40)
        if i in big:
            w, h = (rng.randint(2048, 4000), rng.randint(8, 30))[:: rng.choice((1, -1))]
        if kind == "png":
            data = _png(w, h, 0, [bytes(w)] * h)
        elif kind == "ppm":
            data = _ppm(w, h, bytes(rng.randrange(256) for _ in range(w * h * 3)))
        elif kind == "gif":
            data = _gif(w, h)
        else:
            data = (
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
                f'viewBox="0 0 {w} {h}">\n  <rect width="{w}" height="{h}" fill="#{i:02x}8844"/>'
                "\n</svg>\n"
            ).encode()
        ext = {"png": "gif", "gif": "png", "ppm": "png", "svg": "png"}[kind] if i in wrong else kind
        prefix = rng.choice(("icon", "banner", "photo", "scan", "thumb"))
        files[f"assets/{prefix}_{i:02d}.{ext}"] = data
    return Fixture(files), {"images": len(files), "oversized": len(big)}


_INVENTORY_V1 = textwrap.dedent(
    """\
    import csv, os, re, struct


    def png(data):
        if data[:8] != b"\\x89PNG\\r\\n\\x1a\\n":
            raise ValueError("bad PNG signature")
        return struct.unpack(">II", data[16:24])


    def gif(data):
        if data[:4] != b"GIF8":
            raise ValueError("bad GIF signature")
        return struct.unpack("<HH", data[6:10])


    def ppm(data):
        if data[:2] != b"P6":
            raise ValueError("bad PPM magic")
        _, w, h = data.split(maxsplit=3)[:3]
        return int(w), int(h)


    def svg(data):
        m = re.search(rb'<svg[^>]*?width="([\\d.]+)[^"]*"[^>]*?height="([\\d.]+)', data)
        return int(float(m.group(1))), int(float(m.group(2)))


    PARSERS = {"png": png, "gif": gif, "ppm": ppm, "svg": svg}
    rows = []
    for name in sorted(os.listdir("assets")):
        path = os.path.join("assets", name)
        data = open(path, "rb").read()
        ext = name.rsplit(".", 1)[-1].lower()
        kind = ext
        try:
            w, h = PARSERS[kind](data)
        except ValueError as exc:
            raise SystemExit(f"{path}: {exc}")
        big = "yes" if max(w, h) > 2000 else "no"
        rows.append([path, kind, w, h, len(data), big, "yes" if kind == ext else "no"])
    os.makedirs("out", exist_ok=True)
    with open("out/images.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "format", "width", "height", "bytes", "oversized", "ext_matches"])
        out.writerows(rows)
    print(f"{len(rows)} images, {sum(r[5] == 'yes' for r in rows)} oversized, "
          f"{sum(r[6] == 'no' for r in rows)} with a misleading extension")
    """
)


def _inventory_playbook(ctx: Ctx) -> Playbook:
    listing = yield sh(
        "ls assets | head -8 && ls assets | sed 's/.*\\.//' | sort | uniq -c",
        say="Looking at what is in assets/.",
    )
    svgs = re.findall(r"^\S+\.svg$", listing.stdout, re.M)
    yield read(
        f"assets/{svgs[0]}" if svgs else "assets", say="Checking how an SVG states its size."
    )
    yield write("inventory.py", _INVENTORY_V1, say="Writing a header-parsing inventory script.")
    run = yield sh("python3 inventory.py")
    if not run.ok:
        # A file's extension lies about its content, so the chosen parser rejects the magic.
        yield edit(
            "inventory.py",
            "    kind = ext\n",
            '    magic = {b"\\x89PNG": "png", b"GIF8": "gif", b"P6": "ppm"}\n'
            '    kind = next((k for m, k in magic.items() if data.startswith(m)), "svg")\n',
            say="That file's extension does not match its content; sniffing magic bytes instead.",
        )
        run = yield sh("python3 inventory.py")
    yield Reply(f"Wrote out/images.csv from the file headers: {run.stdout.strip()}.")
    big, lying = yield [
        sh(
            "awk -F, '$6==\"yes\"' out/images.csv", say="Listing the flagged and mislabelled files."
        ),
        sh("awk -F, '$7 ~ /^no/' out/images.csv"),
    ]
    n_big = len(big.stdout.strip().splitlines()) if big.ok else "?"
    n_lying = len(lying.stdout.strip().splitlines()) if lying.ok else "?"
    yield Reply(
        f"Checked: {n_big} rows are oversized and {n_lying} mislabelled, each verified by its "
        "header."
    )


_INVENTORY_VERIFY = """
import csv, os, re, struct, sys, glob
def truth(data):
    if data.startswith(b"\\x89PNG"):
        return ("png",) + struct.unpack(">II", data[16:24])
    if data.startswith(b"GIF8"):
        return ("gif",) + struct.unpack("<HH", data[6:10])
    if data.startswith(b"P6"):
        f = data.split(maxsplit=3)
        return ("ppm", int(f[1]), int(f[2]))
    m = re.search(rb'width="(\\d+)"\\s+height="(\\d+)"', data)
    return ("svg", int(m.group(1)), int(m.group(2)))
try:
    rows = {os.path.basename(r["file"]): r for r in csv.DictReader(open("out/images.csv"))}
except (FileNotFoundError, KeyError):
    sys.exit("out/images.csv is missing or lacks a file column")
names = os.listdir("assets")
for name in names:
    fmt, w, h = truth(open(os.path.join("assets", name), "rb").read())
    r = rows.get(name)
    if r is None:
        sys.exit(f"{name} is not in the inventory")
    if r.get("format", "").lower() != fmt or (int(r["width"]), int(r["height"])) != (w, h):
        sys.exit(f"{name}: expected {fmt} {w}x{h}, got {r}")
    if int(r["bytes"]) != os.path.getsize(os.path.join("assets", name)):
        sys.exit(f"{name}: wrong byte size")
    flagged = r.get("oversized", "").strip().lower() in ("yes", "true", "1", "y")
    if flagged != (max(w, h) > 2000):
        sys.exit(f"{name}: oversized flag is wrong")
if not any("struct" in open(p).read() for p in glob.glob("*.py") + glob.glob("*/*.py")):
    sys.exit("no script parses the headers with struct")
print(f"ok: {len(names)} images inventoried")
"""


# ---------------------------------------------------------------- media-wav-clip-report


def _wav_report_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {}
    for i in range(14):
        if i < 5:  # clips of a second or more, kept small: mono, low rates
            rate, ch, width = rng.choice(((16000, 1, 1), (22050, 1, 1), (16000, 1, 2)))
            dur = rng.uniform(1.0, 1.4)
        else:
            rate, ch, width = rng.choice((16000, 22050, 44100)), rng.choice((1, 2)), 2
            dur = min(0.9, rng.uniform(3000, 9000) / (rate * ch * width))
        samples = _tone(rate, dur, rng.choice((220, 440, 660)), 90 if width == 1 else 9000, ch)
        if width == 1:
            samples = [128 + s for s in samples]
        files[f"audio/s{i % 3 + 1}_take{i:02d}.wav"] = _wav(rate, ch, width, samples)
    broken = _wav(22050, 2, 2, _tone(22050, 0.5, 440, 8000, 2))
    files["audio/s2_take14.wav"] = broken[:34]  # recorder crashed: header cut short
    return Fixture(files), {"clips": len(files)}


_WAV_REPORT_V1 = textwrap.dedent(
    """\
    import csv, glob, os, wave

    rows = []
    for path in sorted(glob.glob("audio/*.wav")):
        name = os.path.basename(path)
        try:
            with wave.open(path) as w:
                rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
                frames = w.getnframes()
        except wave.Error as exc:
            rows.append([name, "", "", "", "", "", f"unreadable: {exc!r}"])
            continue
        dur = frames / rate
        rows.append([name, rate, ch, width * 8, f"{dur:.3f}", "yes" if dur < 1 else "no", ""])
    os.makedirs("out", exist_ok=True)
    with open("out/audio_report.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "sample_rate", "channels", "bit_depth", "duration_s", "short",
                      "error"])
        out.writerows(rows)
    print(f"{len(rows)} clips, {sum(r[5] == 'yes' for r in rows)} shorter than 1 s, "
          f"{sum(bool(r[6]) for r in rows)} unreadable")
    """
)


def _wav_report_playbook(ctx: Ctx) -> Playbook:
    yield [sh("ls -l audio/", say="Let me see the clips."), sh("file audio/* | head -5")]
    yield write(
        "clip_report.py", _WAV_REPORT_V1, say="Writing a report script with the wave module."
    )
    run = yield sh("python3 clip_report.py")
    if not run.ok:
        # The truncated header raises EOFError inside wave, which is not a wave.Error.
        yield edit(
            "clip_report.py",
            "    except wave.Error as exc:",
            "    except (wave.Error, EOFError) as exc:",
            say="The truncated file raises EOFError, not wave.Error; catching both.",
        )
        run = yield sh("python3 clip_report.py")
    yield Reply(f"Wrote out/audio_report.csv: {run.stdout.strip()}.")
    report = yield read("out/audio_report.csv", say="Reading the report back.")
    bad = [ln.split(",")[0] for ln in report.stdout.splitlines() if "unreadable" in ln]
    yield Reply(f"Checked: every clip has a row; the unreadable one is {', '.join(bad) or 'none'}.")


_WAV_REPORT_VERIFY = """
import csv, glob, os, sys, wave
try:
    rows = {r["file"]: r for r in csv.DictReader(open("out/audio_report.csv"))}
except (FileNotFoundError, KeyError):
    sys.exit("out/audio_report.csv is missing or has no file column")
paths = glob.glob("audio/*.wav")
for path in paths:
    name = os.path.basename(path)
    r = rows.get(name) or rows.get(path)
    if r is None:
        sys.exit(f"{name} missing from the report")
    try:
        w = wave.open(path)
    except (wave.Error, EOFError):
        if not r.get("error", "").strip():
            sys.exit(f"{name} is unreadable but no error is recorded")
        continue
    dur = w.getnframes() / w.getframerate()
    want = (w.getframerate(), w.getnchannels(), w.getsampwidth() * 8)
    got = (int(r["sample_rate"]), int(r["channels"]), int(r["bit_depth"]))
    if got != want or abs(float(r["duration_s"]) - dur) > 0.01:
        sys.exit(f"{name}: expected {want} {dur:.3f}s, got {got} {r['duration_s']}")
    if (r["short"].strip().lower() in ("yes", "true", "1")) != (dur < 1):
        sys.exit(f"{name}: short flag is wrong")
print(f"ok: {len(paths)} clips reported")
"""


# ---------------------------------------------------------------- media-generate-ppm-thumbnails


def _thumbs_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    sizes = [(64, 64), (96, 72), (120, 90), (151, 101), (80, 120), (101, 67)]
    rng.shuffle(sizes)
    files = {}
    for i, (w, h) in enumerate(sizes):
        notes = ("exported by ScanStation 4.2", "batch 7") if (w, h) == (151, 101) else ()
        files[f"images/raw/frame_{i + 1:02d}.ppm"] = _ppm(w, h, rng.randbytes(w * h * 3), notes)
    return Fixture(files), {"images": len(sizes)}


_THUMBS_V1 = textwrap.dedent(
    """\
    import csv, glob, os, re

    TOKEN = re.compile(rb"\\s*(\\S+)")


    def read_ppm(path):
        data = open(path, "rb").read()
        fields, pos = [], 0
        while len(fields) < 4:
            m = TOKEN.match(data, pos)
            fields.append(m.group(1))
            pos = m.end()
        w, h, maxval = (int(x) for x in fields[1:])
        return w, h, data[pos + 1 : pos + 1 + w * h * 3]


    os.makedirs("images/thumbs", exist_ok=True)
    rows = []
    for path in sorted(glob.glob("images/raw/*.ppm")):
        w, h, px = read_ppm(path)
        tw, th = w // 2, h // 2
        out = bytearray()
        for y in range(th):
            r0, r1 = 2 * y * w * 3, (2 * y + 1) * w * 3
            for x in range(tw):
                for c in range(3):
                    i = 2 * x * 3 + c
                    s = px[r0 + i] + px[r0 + i + 3] + px[r1 + i] + px[r1 + i + 3]
                    out.append((s + 2) // 4)
        dest = os.path.join("images/thumbs", os.path.basename(path))
        with open(dest, "wb") as f:
            f.write(b"P6\\n%d %d\\n255\\n" % (tw, th) + bytes(out))
        rows.append([path, w, h, dest, tw, th])
    os.makedirs("out", exist_ok=True)
    with open("out/thumbs.csv", "w", newline="") as f:
        csv.writer(f).writerows([["source", "width", "height", "thumb", "thumb_width",
                                  "thumb_height"]] + rows)
    print(f"{len(rows)} thumbnails written")
    """
)


def _thumbs_playbook(ctx: Ctx) -> Playbook:
    yield [sh("ls -l images/raw/", say="Checking the source images."), sh("file images/raw/*")]
    yield write("thumbs.py", _THUMBS_V1, say="Writing a 2x2 box-filter thumbnailer.")
    run = yield sh("python3 thumbs.py")
    if not run.ok:
        # One header carries '# ...' comment lines, so a comment token lands where a number should.
        yield sh("head -c 80 images/raw/*.ppm | grep -a '^#'", say="Looking for odd header lines.")
        yield edit(
            "thumbs.py",
            'TOKEN = re.compile(rb"\\s*(\\S+)")',
            'TOKEN = re.compile(rb"(?:\\s|#[^\\n]*\\n)*(\\S+)")',
            say="One header has comment lines; skipping them in the tokenizer.",
        )
        run = yield sh("python3 thumbs.py")
    yield Reply(f"Done: {run.stdout.strip()} to images/thumbs/, manifest in out/thumbs.csv.")
    manifest = yield read("out/thumbs.csv", say="Reading the manifest back.")
    odd = [ln for ln in manifest.stdout.splitlines() if ",151,101," in ln]
    yield Reply(
        "Checked the manifest: every thumbnail is floor-halved"
        + (f" (the odd one: {odd[0]})." if odd else ".")
    )


_THUMBS_VERIFY = """
import csv, glob, os, re, sys
def load(path):
    data = open(path, "rb").read()
    fields, pos = [], 0
    tok = re.compile(rb"(?:\\s|#[^\\n]*\\n)*(\\S+)")
    while len(fields) < 4:
        m = tok.match(data, pos)
        fields.append(m.group(1)); pos = m.end()
    w, h = int(fields[1]), int(fields[2])
    return w, h, data[pos + 1 : pos + 1 + w * h * 3]
if not os.path.exists("out/thumbs.csv"):
    sys.exit("out/thumbs.csv is missing")
manifest = open("out/thumbs.csv").read()
for path in sorted(glob.glob("images/raw/*.ppm")):
    name = os.path.basename(path)
    dest = os.path.join("images/thumbs", name)
    if not os.path.exists(dest) or name not in manifest:
        sys.exit(f"no thumbnail (or manifest row) for {name}")
    w, h, px = load(path)
    tw, th, tp = load(dest)
    if (tw, th) != (w // 2, h // 2) or len(tp) != tw * th * 3:
        sys.exit(f"{name}: thumbnail is {tw}x{th}, expected {w // 2}x{h // 2}")
    for y in range(th):
        for x in range(tw):
            for c in range(3):
                i, j = (2 * y * w + 2 * x) * 3 + c, ((2 * y + 1) * w + 2 * x) * 3 + c
                avg = (px[i] + px[i + 3] + px[j] + px[j + 3]) / 4
                if abs(tp[(y * tw + x) * 3 + c] - avg) > 1:
                    sys.exit(f"{name}: pixel ({x},{y}) is not the 2x2 average")
print("ok: thumbnails match box-filtered sources")
"""


# ---------------------------------------------------------------- media-recolor-svg-icons


def _recolor_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    codes = []
    while len(codes) < 8:
        c = f"#{rng.randrange(0x1000000):06x}"
        if c not in codes and re.search("[a-f]", c):  # has letters, so case can differ
            codes.append(c)
    palette = dict(zip(codes[:4], codes[4:], strict=True))
    old = codes[:4]
    upper_icons = rng.sample(range(10), 2)
    files = {"brand/palette.json": json.dumps(palette, indent=2) + "\n"}
    for i, name in enumerate(("home", "search", "cart", "user", "bell", "gear", "heart",
                              "mail", "star", "trash")):  # fmt: skip
        a, b = rng.sample(old, 2)
        accent = rng.choice(old)
        if i in upper_icons:
            accent = accent.upper()
        files[f"icons/{name}.svg"] = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">\n'
            f"  <style>.accent {{ fill: {accent}; }}</style>\n"
            f'  <rect x="2" y="2" width="20" height="20" rx="4" fill="{a}" stroke="#333333"/>\n'
            f'  <path d="M6 12h12M12 6v12" stroke="{b}" stroke-width="2"/>\n'
            '  <circle class="accent" cx="18" cy="6" r="3"/>\n'
            "</svg>\n"
        )
    return Fixture(files, setup=(_GIT_INIT,)), {"icons": 10}


_RECOLOR_CHECK = (
    "pat=$(jq -r 'keys | join(\"|\")' brand/palette.json); mkdir -p out; "
    'n=$(grep -rioE "$pat" icons | wc -l); '
    'echo "old colour codes remaining: $n" > out/recolor_check.txt; '
    'grep -rnoiE "$pat" icons; test "$n" -eq 0'
)


def _recolor_playbook(ctx: Ctx) -> Playbook:
    info = yield sh(
        "cat brand/palette.json && ls icons && grep -rhoE '#[0-9a-fA-F]{6}' icons | wc -l",
        say="Reading the palette and counting colour codes.",
    )
    palette = dict(re.findall(r'"(#[0-9a-fA-F]{6})"\s*:\s*"(#[0-9a-fA-F]{6})"', info.stdout))
    yield read("icons/home.svg", say="Seeing where colours appear in an icon.")
    yield sh(
        "jq -r 'to_entries[] | \"s/\\(.key)/\\(.value)/g\"' brand/palette.json > /tmp/recolor.sed"
        " && sed -i -f /tmp/recolor.sed icons/*.svg && git diff --stat | tail -1",
        say="Replacing each old colour with sed.",
    )
    check = yield sh(_RECOLOR_CHECK, say="Checking that no old colour remains.")
    left = set()
    if not check.ok:
        # sed matched case-sensitively; upper-case codes in style blocks survived.
        left = set(re.findall(r"^(icons/\S+?\.svg):\d+:(#[0-9A-Fa-f]{6})$", check.stdout, re.M))
        if left:  # each exact edit stands alone, so they go out together
            names = ", ".join(f"{code} in {path}" for path, code in sorted(left))
            say = f"These codes are upper-case ({names}); fixing each exactly."
            yield [
                edit(path, code, palette.get(code.lower(), code), say="" if i else say)
                for i, (path, code) in enumerate(sorted(left))
            ]
        check = yield sh(_RECOLOR_CHECK, say="Re-running the check.")
    yield Reply(
        f"Recoloured the icons with sed plus {len(left)} exact edits; no old colour remains."
    )
    _, diff = yield [
        sh("cat out/recolor_check.txt", say="Reviewing the check log and the diff."),
        sh("git diff --stat"),
    ]
    changed = re.search(r"(\d+) files? changed", diff.stdout)
    yield Reply(
        f"Checked: {changed.group(1) if changed else 'the'} icons changed, only colour codes, "
        "and out/recolor_check.txt reports 0 old codes."
    )


_RECOLOR_VERIFY = """
import glob, json, re, subprocess, sys
pal = {k.lower(): v.lower() for k, v in json.load(open("brand/palette.json")).items()}
hexcode = re.compile(r"#[0-9a-fA-F]{6}")
for path in sorted(glob.glob("icons/*.svg")):
    orig = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True, text=True)
    if orig.returncode:
        sys.exit(f"cannot read the original {path} from git")
    want = hexcode.sub(lambda m: pal.get(m.group().lower(), m.group().lower()), orig.stdout)
    got = hexcode.sub(lambda m: m.group().lower(), open(path).read())
    if got != want:
        sys.exit(f"{path} is not exactly the original with the palette applied")
try:
    log = open("out/recolor_check.txt").read()
except FileNotFoundError:
    sys.exit("out/recolor_check.txt is missing")
if not re.search(r"\\b0\\b", log):
    sys.exit("the check log does not report zero remaining old colours")
print("ok: icons recoloured")
"""


# ---------------------------------------------------------------- media-normalize-audio-peaks


def _normalize_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {"audio/raw/README.txt": "Raw foley clips, session 12. Do not edit these files.\n"}
    levels = [0.03, 0.08, 0.15, 0.3, 0.45, 0.6, 0.85, 1.4]  # the last one clips at full scale
    rng.shuffle(levels)
    for i, level in enumerate(levels):
        ch = rng.choice((1, 2))
        tone = _tone(8000, 0.5, rng.choice((110, 220, 330, 440)), level * 32767, ch)
        tone = [max(-32768, min(32767, s)) for s in tone]
        files[f"audio/raw/fx_{i + 1:02d}.wav"] = _wav(8000, ch, 2, tone)
    return Fixture(files), {"clips": len(levels)}


_NORMALIZE_V1 = textwrap.dedent(
    """\
    import array, csv, math, os, wave

    TARGET = 32767 * 10 ** (-1 / 20)  # -1 dBFS


    def dbfs(v):
        return 20 * math.log10(v / 32767)


    os.makedirs("audio/normalized", exist_ok=True)
    rows = []
    for name in sorted(os.listdir("audio/raw")):
        with wave.open(os.path.join("audio/raw", name)) as src:
            params = src.getparams()
            samples = array.array("h", src.readframes(params.nframes))
        peak = max(abs(s) for s in samples)
        gain = TARGET / peak
        out = array.array("h", (max(-32768, min(32767, round(s * gain))) for s in samples))
        with wave.open(os.path.join("audio/normalized", name), "wb") as dst:
            dst.setparams(params)
            dst.writeframes(out.tobytes())
        new_peak = max(abs(s) for s in out)
        rows.append([name, params.nchannels, params.framerate, f"{dbfs(peak):.2f}",
                     f"{20 * math.log10(gain):+.2f}", f"{dbfs(new_peak):.2f}"])
    os.makedirs("out", exist_ok=True)
    with open("out/normalize_report.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "channels", "sample_rate", "orig_peak_dbfs", "gain_db",
                    "new_peak_dbfs"])
        w.writerows(rows)
    print(f"normalised {len(rows)} clips to -1 dBFS")
    """
)


def _normalize_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls -l audio/raw", say="Looking at the raw clips."),
        sh("file audio/raw/*.wav | head -3"),
    ]
    yield write("normalize.py", _NORMALIZE_V1, say="Writing a peak normaliser.")
    run = yield sh("python3 normalize.py")
    if not run.ok:
        # os.listdir also returns README.txt, which wave refuses (no RIFF id).
        yield edit(
            "normalize.py",
            'for name in sorted(os.listdir("audio/raw")):',
            'for name in sorted(n for n in os.listdir("audio/raw") if n.endswith(".wav")):',
            say="The README in audio/raw is not a WAV; only taking .wav files.",
        )
        run = yield sh("python3 normalize.py")
    yield Reply(f"Done: {run.stdout.strip()}; the gains are in out/normalize_report.csv.")
    report = yield read("out/normalize_report.csv", say="Reading the gain report.")
    rows = [ln.split(",") for ln in report.stdout.strip().splitlines()[1:]]
    peaks = sorted({r[-1].strip() for r in rows if len(r) == 6})
    yield Reply(f"Checked: {len(rows)} clips, new peaks {', '.join(peaks)} dBFS; rates kept.")


_NORMALIZE_VERIFY = """
import array, glob, math, os, sys, wave
paths = glob.glob("audio/raw/*.wav")
if not os.path.exists("out/normalize_report.csv"):
    sys.exit("out/normalize_report.csv is missing")
report = open("out/normalize_report.csv").read()
for path in paths:
    name = os.path.basename(path)
    dest = os.path.join("audio/normalized", name)
    if not os.path.exists(dest) or name not in report:
        sys.exit(f"{name}: no normalised clip or report row")
    a, b = wave.open(path), wave.open(dest)
    if (a.getnchannels(), a.getframerate(), a.getsampwidth(), a.getnframes()) != (
        b.getnchannels(), b.getframerate(), b.getsampwidth(), b.getnframes()):
        sys.exit(f"{name}: format or length changed")
    x = array.array("h", a.readframes(a.getnframes()))
    y = array.array("h", b.readframes(b.getnframes()))
    peak = max(abs(s) for s in y)
    if abs(20 * math.log10(peak / 32767) + 1) > 0.1:
        sys.exit(f"{name}: peak is {20 * math.log10(peak / 32767):.2f} dBFS, not -1")
    gain = peak / max(abs(s) for s in x)
    if any(abs(v - u * gain) > 2 for u, v in zip(x, y)):
        sys.exit(f"{name}: output is not a uniformly scaled copy")
print(f"ok: {len(paths)} clips at -1 dBFS")
"""


# ---------------------------------------------------------------- media-catalog-video-sidecars


def _sidecar_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    words = ["harbour", "market", "sunrise", "bridge", "forest", "studio", "train", "rooftop",
             "river", "festival", "workshop", "interview"]  # fmt: skip
    resolutions = [(1920, 1080), (1280, 720), (3840, 2160)]
    files = {}
    no_audio = set(rng.sample(range(20), 4))
    stream_only = set(rng.sample([i for i in range(20) if i not in no_audio], 3))
    for i in range(20):
        title = f"{rng.choice(words).title()} {rng.choice(words).title()} {i + 1}"
        slug = title.lower().replace(" ", "_")
        w, h = rng.choice(resolutions)
        dur = round(rng.uniform(20, 600), 3)
        codec = rng.choice(("h264", "hevc"))
        streams = [{"index": 0, "codec_type": "video", "codec_name": codec, "width": w,
                    "height": h, "r_frame_rate": "25/1", "duration": f"{dur:.6f}"}]  # fmt: skip
        if i not in no_audio:
            streams.append({"index": 1, "codec_type": "audio",
                            "codec_name": rng.choice(("aac", "opus")), "sample_rate": "48000",
                            "channels": 2, "duration": f"{dur - 0.021:.6f}"})  # fmt: skip
        fmt = {"filename": f"{slug}.mp4", "nb_streams": len(streams),
               "format_name": "mov,mp4,m4a,3gp,3g2,mj2", "size": str(int(dur * 600000)),
               "duration": f"{dur:.6f}", "tags": {"title": title}}  # fmt: skip
        if i in stream_only:
            del fmt["duration"]
        files[f"videos/{slug}.json"] = json.dumps({"streams": streams, "format": fmt}, indent=2)
    return Fixture(files), {"videos": 20}


_SIDECAR_V1 = textwrap.dedent(
    """\
    import csv, glob, json, os
    from collections import defaultdict

    rows, by_res, by_codec = [], defaultdict(float), defaultdict(float)
    for path in sorted(glob.glob("videos/*.json")):
        info = json.load(open(path))
        streams, fmt = info["streams"], info["format"]
        video = next(s for s in streams if s["codec_type"] == "video")
        audio = next((s for s in streams if s["codec_type"] == "audio"), None)
        dur = float(fmt["duration"])
        res = f"{video['width']}x{video['height']}"
        title = fmt.get("tags", {}).get("title") or os.path.basename(path)[:-5]
        rows.append([fmt["filename"], title, f"{dur:.3f}", res, video["codec_name"],
                     audio["codec_name"] if audio else "", "yes" if audio else "no"])
        by_res[res] += dur
        by_codec[video["codec_name"]] += dur
    os.makedirs("out", exist_ok=True)
    with open("out/video_catalog.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "title", "duration_s", "resolution", "video_codec", "audio_codec",
                    "has_audio"])
        w.writerows(rows)
    summary = {"videos": len(rows), "total_runtime_s": round(sum(by_res.values()), 3),
               "runtime_by_resolution": {k: round(v, 3) for k, v in sorted(by_res.items())},
               "runtime_by_codec": {k: round(v, 3) for k, v in sorted(by_codec.items())}}
    json.dump(summary, open("out/video_summary.json", "w"), indent=2)
    print(f"{len(rows)} videos catalogued; by resolution: {summary['runtime_by_resolution']}")
    """
)


def _sidecar_playbook(ctx: Ctx) -> Playbook:
    listing = yield sh(
        "ls videos | wc -l && ls videos | head -3 && "
        "jq -c '[.format.filename, .format.duration, (.streams | length)]' videos/*.json | head -4",
        say="Surveying the sidecars.",
    )
    first = re.search(r"^\S+\.json$", listing.stdout, re.M)
    yield read(f"videos/{first.group() if first else ''}", say="Reading one sidecar in full.")
    yield write("catalog.py", _SIDECAR_V1, say="Writing the catalogue script.")
    run = yield sh("python3 catalog.py")
    if not run.ok:
        # Some sidecars carry the duration only on the streams, not in format.
        yield edit(
            "catalog.py",
            '    dur = float(fmt["duration"])',
            '    dur = float(fmt.get("duration") or max(float(s["duration"]) for s in streams))',
            say="Some sidecars lack format.duration; falling back to the longest stream.",
        )
        run = yield sh("python3 catalog.py")
    yield Reply(f"Catalogue written to out/video_catalog.csv. {run.stdout.strip()}.")
    _, check = yield [
        sh(
            "jq '.runtime_by_resolution, .total_runtime_s' out/video_summary.json",
            say="Checking the summary totals and the silent videos.",
        ),
        sh("awk -F, '$7 ~ /^no/' out/video_catalog.csv | wc -l"),
    ]
    silent = check.stdout.strip() if check.ok else "?"
    yield Reply(f"Checked: totals add up per resolution, and {silent} videos have no audio stream.")


_SIDECAR_VERIFY = """
import csv, glob, json, os, sys
try:
    rows = list(csv.DictReader(open("out/video_catalog.csv")))
    summary = json.load(open("out/video_summary.json"))
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"missing or invalid output: {e}")
by_res = {}
for path in glob.glob("videos/*.json"):
    info = json.load(open(path))
    fmt, streams = info["format"], info["streams"]
    dur = float(fmt.get("duration") or max(float(s["duration"]) for s in streams))
    video = [s for s in streams if s["codec_type"] == "video"][0]
    audio = any(s["codec_type"] == "audio" for s in streams)
    res = f"{video['width']}x{video['height']}"
    by_res[res] = by_res.get(res, 0) + dur
    names = (fmt["filename"], os.path.basename(path))
    match = [r for r in rows if any(n in r.values() for n in names)]
    if len(match) != 1:
        sys.exit(f"{fmt['filename']} is not catalogued exactly once")
    r = match[0]
    vals = " ".join(r.values()).lower()
    if not any(abs(float(v) - dur) < 0.01 for v in r.values() if v.replace(".", "", 1).isdigit()):
        sys.exit(f"{fmt['filename']}: duration {dur} not found in {r}")
    if fmt["tags"]["title"].lower() not in vals or res not in vals:
        sys.exit(f"{fmt['filename']}: title or resolution missing")
    bools = ("yes", "no", "true", "false", "1", "0")
    flag = [v for k, v in r.items() if "audio" in k.lower() and v.lower() in bools]
    if not flag or (flag[0].lower() in ("yes", "true", "1")) != audio:
        sys.exit(f"{fmt['filename']}: audio presence is wrong")
blob = json.dumps(summary)
table = next((v for v in summary.values() if isinstance(v, dict) and set(by_res) <= set(v)), None)
if table is None:
    sys.exit("the summary has no runtime-by-resolution table")
for res, total in by_res.items():
    if abs(float(table[res]) - total) > 0.1:
        sys.exit(f"runtime for {res} is {table[res]}, expected {total:.3f}")
print(f"ok: {len(rows)} videos, {len(by_res)} resolutions")
"""


# ---------------------------------------------------------------- media-shift-subtitle-timing

_LINES = [
    "Where were you last night?", "I told you, I was at the station.", "That's not what she said.",
    "Then she's lying.", "Keep your voice down.", "We don't have much time.", "Get in the car.",
    "Did anyone see you?", "Only the night porter.", "He won't talk.", "Everybody talks.",
    "Look at the map.", "The bridge is closed.", "Then we take the ferry.", "It's too late.",
]  # fmt: skip


def _srt_time(ms: int) -> str:
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def _subtitle_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    cues, t = [], rng.randint(3000, 9000)
    for _ in range(120):
        start = t + rng.randint(100, 2500)
        end = start + rng.randint(1000, 4500)
        cues.append([start, end, rng.sample(_LINES, rng.choice((1, 2)))])
        t = end
    overlaps = sorted(rng.sample(range(5, 115), 2))
    for k in overlaps:
        cues[k][1] = cues[k + 1][0] + rng.randint(150, 600)
    blocks = [
        f"{i + 1}\r\n{_srt_time(s)} --> {_srt_time(e)}\r\n" + "\r\n".join(text)
        for i, (s, e, text) in enumerate(cues)
    ]
    srt = "\ufeff" + "\r\n\r\n".join(blocks) + "\r\n"
    note = (
        "QA pass 2026-01-04 (episode 3)\n"
        "- After the intro re-edit every subtitle shows 2.5 s too early.\n"
        f"- Cues {overlaps[0] + 1} and {overlaps[1] + 1} end after the next cue starts.\n"
    )
    files = {"subtitles/episode3.srt": srt.encode(), "subtitles/qa_notes.txt": note}
    return Fixture(files, setup=(_GIT_INIT,)), {"overlaps": [k + 1 for k in overlaps]}


_SHIFT_V1 = textwrap.dedent(
    """\
    import re

    SHIFT_MS = 2500
    TS = re.compile(r"(\\d\\d):(\\d\\d):(\\d\\d),(\\d\\d\\d)")


    def ms(m):
        h, mi, s, x = map(int, m.groups())
        return ((h * 60 + mi) * 60 + s) * 1000 + x


    def fmt(v):
        h, v = divmod(v, 3600000)
        mi, v = divmod(v, 60000)
        s, x = divmod(v, 1000)
        return f"{h:02d}:{mi:02d}:{s:02d},{x:03d}"


    text = open("subtitles/episode3.srt", encoding="utf-8").read()
    cues = []
    for block in text.strip().split("\\n\\n"):
        lines = block.split("\\n")
        start, end = (ms(m) + SHIFT_MS for m in TS.finditer(lines[1]))
        cues.append([int(lines[0]), start, end, lines[2:]])
    trimmed = []
    for cur, nxt in zip(cues, cues[1:]):
        if cur[2] > nxt[1]:  # runs into the next cue: trim its end
            cur[2] = nxt[1]
            trimmed.append(cur[0])
    with open("subtitles/episode3.srt", "w", encoding="utf-8", newline="\\r\\n") as f:
        f.write("\\n\\n".join(f"{n}\\n{fmt(s)} --> {fmt(e)}\\n" + "\\n".join(t)
                             for n, s, e, t in cues) + "\\n")
    print(f"{len(cues)} cues shifted by {SHIFT_MS} ms; trimmed overlapping cues {trimmed}")
    """
)


def _subtitle_playbook(ctx: Ctx) -> Playbook:
    _, note = yield [
        sh(
            "head -9 subtitles/episode3.srt && grep -c -- ' --> ' subtitles/episode3.srt",
            say="Looking at the subtitle file and reading the QA note.",
        ),
        read("subtitles/qa_notes.txt"),
    ]
    yield write("shift.py", _SHIFT_V1, say="Writing a shift-and-trim script.")
    run = yield sh("python3 shift.py")
    if not run.ok:
        # The file starts with a UTF-8 BOM, so the first cue number reads as '\ufeff1'.
        yield edit(
            "shift.py",
            'text = open("subtitles/episode3.srt", encoding="utf-8").read()',
            'text = open("subtitles/episode3.srt", encoding="utf-8-sig").read()',
            say="The file has a byte-order mark; reading it as utf-8-sig.",
        )
        run = yield sh("python3 shift.py")
    yield Reply(f"Updated subtitles/episode3.srt: {run.stdout.strip()}.")
    qa = re.findall(r"\d+", re.search(r"Cues ([\d and]+)", note.stdout).group(1)) if note else []
    yield [
        sh("git diff --stat", say="Reviewing the change."),
        sh("git diff -U0 | sed -n '5,12p'"),
    ]
    trimmed = re.findall(r"\d+", run.stdout.rsplit("cues", 1)[-1])
    agree = "match" if sorted(trimmed) == sorted(qa) else "differ from"
    yield Reply(f"Checked: the trimmed cues {', '.join(trimmed)} {agree} the QA note's list.")


_SHIFT_VERIFY = """
import re, subprocess, sys
T = r"(\\d\\d):(\\d\\d):(\\d\\d),(\\d\\d\\d)"
TS = re.compile(T + " --> " + T)
def parse(text):
    cues = []
    for block in text.replace("\\r\\n", "\\n").strip().split("\\n\\n"):
        lines = block.split("\\n")
        m = TS.fullmatch(lines[1].strip())
        if not m:
            sys.exit(f"bad timing line: {lines[1]!r}")
        v = [int(x) for x in m.groups()]
        s = ((v[0] * 60 + v[1]) * 60 + v[2]) * 1000 + v[3]
        e = ((v[4] * 60 + v[5]) * 60 + v[6]) * 1000 + v[7]
        cues.append((int(lines[0].lstrip("\\ufeff")), s, e, lines[2:]))
    return cues
orig = subprocess.run(["git", "show", "HEAD:subtitles/episode3.srt"], capture_output=True)
if orig.returncode:
    sys.exit("cannot read the original from git")
old = parse(orig.stdout.decode("utf-8-sig"))
new = parse(open("subtitles/episode3.srt", encoding="utf-8-sig").read())
if [(c[0], c[3]) for c in old] != [(c[0], c[3]) for c in new]:
    sys.exit("cue numbers or texts changed")
for i, (o, n) in enumerate(zip(old, new)):
    if n[1] != o[1] + 2500:
        sys.exit(f"cue {o[0]} start is not shifted by exactly 2.5 s")
    overlap = i + 1 < len(old) and o[2] > old[i + 1][1]
    if not overlap and n[2] != o[2] + 2500:
        sys.exit(f"cue {o[0]} end is not shifted by exactly 2.5 s")
    if i + 1 < len(new) and not n[1] < n[2] <= new[i + 1][1]:
        sys.exit(f"cue {o[0]} still overlaps the next cue")
print(f"ok: {len(new)} cues shifted, overlaps trimmed")
"""


# ---------------------------------------------------------------- media-grayscale-png-scans


def _gray_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {}
    sizes = [(48, 36), (64, 40), (40, 40), (56, 30), (32, 48)]
    ctypes = [2, 6, 2, 6, 2]
    rng.shuffle(ctypes)
    for n, ((w, h), ctype) in enumerate(zip(sizes, ctypes, strict=True)):
        rows = []
        for y in range(h):
            row = bytearray()
            for x in range(w):
                px = [(x * 5 + rng.randrange(12)) % 256, (y * 6 + rng.randrange(12)) % 256,
                      (x * y + rng.randrange(12)) % 256]  # fmt: skip
                if ctype == 6:
                    px.append(255 if x < w // 3 else (x * 9 + y) % 256)
                row.extend(px)
            rows.append(bytes(row))
        filters = [(y + n) % 5 for y in range(h)]
        files[f"scans/page_{n + 1:02d}.png"] = _png(w, h, ctype, rows, filters)
    return Fixture(files), {"scans": len(sizes)}


_GRAY_V1 = textwrap.dedent(
    """\
    import glob, os, struct, zlib


    def paeth(a, b, c):
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c


    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc


    def read_png(path):
        data = open(path, "rb").read()
        pos, idat = 8, b""
        while pos < len(data):
            n, kind = struct.unpack(">I4s", data[pos : pos + 8])
            body = data[pos + 8 : pos + 8 + n]
            if kind == b"IHDR":
                w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            elif kind == b"IDAT":
                idat += body
            pos += 12 + n
        raw = zlib.decompress(idat)
        bpp = 3  # truecolour RGB
        stride = w * bpp
        if len(raw) != h * (stride + 1):
            raise ValueError(f"{path}: expected {h * (stride + 1)} scanline bytes, got {len(raw)}")
        rows, prev = [], bytearray(stride)
        for y in range(h):
            at = y * (stride + 1)
            ft, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (0, a, b, (a + b) // 2, paeth(a, b, c))[ft]) & 255
            rows.append(line)
            prev = line
        return w, h, bpp, rows


    os.makedirs("scans/gray", exist_ok=True)
    for path in sorted(glob.glob("scans/*.png")):
        w, h, bpp, rows = read_png(path)
        raw = bytearray()
        for line in rows:
            raw.append(0)
            for x in range(0, w * bpp, bpp):
                r, g, b = line[x : x + 3]
                alpha = line[x + 3] / 255 if bpp == 4 else 1.0
                lum = 0.299 * r + 0.587 * g + 0.114 * b
                raw.append(round(lum * alpha + 255 * (1 - alpha)))  # composite on white
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
        png = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr)
               + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))
        open(os.path.join("scans/gray", os.path.basename(path)), "wb").write(png)
        print(f"{path}: {w}x{h}, {'RGBA' if bpp == 4 else 'RGB'} -> gray")
    """
)


def _gray_playbook(ctx: Ctx) -> Playbook:
    yield sh("ls -l scans/", say="Listing the scans.")
    yield write("scripts/to_gray.py", _GRAY_V1, say="Writing a zlib/struct PNG converter.")
    run = yield sh("python3 scripts/to_gray.py")
    if not run.ok:
        # RGBA scans have 4 bytes per pixel; the decoder assumed 3.
        yield read("scripts/to_gray.py", 25, 29, say="Looking at the scanline size computation.")
        yield edit(
            "scripts/to_gray.py",
            "    bpp = 3  # truecolour RGB",
            "    bpp = 4 if ctype == 6 else 3  # RGBA or RGB",
            say="Some scans are RGBA; taking bytes per pixel from the colour type.",
        )
        run = yield sh("python3 scripts/to_gray.py")
    n = run.stdout.count("-> gray")
    yield Reply(f"Converted {n} scans to 8-bit grayscale in scans/gray/ with scripts/to_gray.py.")
    ident = yield sh("file scans/gray/*.png", say="Letting file identify the outputs.")
    gray = ident.stdout.count("grayscale")
    yield Reply(f"Checked: file identifies {gray} outputs as 8-bit grayscale PNGs, same sizes.")


_GRAY_VERIFY = """
import glob, os, struct, subprocess, sys, zlib
def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\\x89PNG\\r\\n\\x1a\\n":
        sys.exit(f"{path} is not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[pos + 8:pos + 18])
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    bpp = {0: 1, 2: 3, 6: 4}[ctype]
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        at = y * (stride + 1)
        ft, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pae = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + (0, a, b, (a + b) // 2, pae)[ft]) & 255
        rows.append(line)
        prev = line
    return w, h, ctype, depth, bpp, rows
srcs = glob.glob("scans/*.png")
for src in srcs:
    dest = os.path.join("scans/gray", os.path.basename(src))
    if not os.path.exists(dest):
        sys.exit(f"no grayscale output for {src}")
    if "grayscale" not in subprocess.run(["file", dest], capture_output=True, text=True).stdout:
        sys.exit(f"file does not identify {dest} as grayscale")
    w, h, _, _, bpp, rows = decode(src)
    gw, gh, gct, gdepth, _, grows = decode(dest)
    if (gw, gh, gct, gdepth) != (w, h, 0, 8):
        sys.exit(f"{dest}: expected an 8-bit grayscale {w}x{h}")
    for y in range(h):
        for x in range(w):
            r, g, b = rows[y][x * bpp:x * bpp + 3]
            a = rows[y][x * bpp + 3] / 255 if bpp == 4 else 1
            want = (0.299 * r + 0.587 * g + 0.114 * b) * a + 255 * (1 - a)
            if abs(grows[y][x] - want) > 1.5:
                sys.exit(f"{dest}: pixel ({x},{y}) is {grows[y][x]}, expected {want:.0f}")
if not os.path.exists("scripts/to_gray.py"):
    sys.exit("scripts/to_gray.py is missing")
print(f"ok: {len(srcs)} scans converted")
"""


# ---------------------------------------------------------------- media-detect-interview-silences

_INTERVIEW_GEN = textwrap.dedent(
    """\
    import array, json, math, os, wave

    RATE = 16000
    SEGMENTS = json.loads(open(".segments.json").read())
    SINE = [math.sin(2 * math.pi * k / RATE) for k in range(RATE)]
    out, x, t = array.array("h"), SEED, 0
    for kind, seconds, freq, amp in SEGMENTS:
        for i in range(int(seconds * RATE)):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            v = (x >> 16) % 301 - 150
            if kind == "speech":
                env = 0.6 + 0.4 * SINE[(i * 3) % RATE]
                voice = 0.7 * SINE[(i * freq) % RATE] + 0.3 * SINE[(i * freq * 2) % RATE]
                v += int(amp * env * voice)
            out.append(v)
    os.makedirs("audio", exist_ok=True)
    with wave.open("audio/interview.wav", "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(out.tobytes())
    """
)


def _silence_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    segments, total, long_pauses = [], 0.0, 0
    while total < 178:
        seconds = round(rng.uniform(1.5, 7.0), 2)
        segments.append(["speech", seconds, rng.randint(140, 260), rng.randint(6000, 12000)])
        pause = round(rng.uniform(0.8, 2.5) if rng.random() < 0.6 else rng.uniform(0.15, 0.35), 2)
        long_pauses += pause > 0.5
        segments.append(["pause", pause, 0, 0])
        total += seconds + pause
    gen = _INTERVIEW_GEN.replace("SEED", str(rng.randrange(1, 2**31)))
    files = {".gen.py": gen, ".segments.json": json.dumps(segments)}
    setup = ("python3 .gen.py && rm .gen.py .segments.json",)
    return Fixture(files, setup=setup), {"long_pauses": long_pauses}


_SILENCE_V1 = textwrap.dedent(
    """\
    import array, csv, math, os, wave

    WIN = 0.02  # seconds per RMS window
    THRESHOLD = 40  # RMS below this counts as silence
    MIN_LEN = 0.5

    with wave.open("audio/interview.wav") as w:
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    n = int(rate * WIN)
    rms = [math.sqrt(sum(s * s for s in samples[i : i + n]) / n)
           for i in range(0, len(samples) - n + 1, n)]
    q = sorted(rms)
    print(f"window RMS: p10={q[len(q) // 10]:.0f} median={q[len(q) // 2]:.0f} max={q[-1]:.0f}")


    def ts(t):
        h, rest = divmod(round(t * 1000), 3600000)
        m, rest = divmod(rest, 60000)
        s, ms = divmod(rest, 1000)
        return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


    runs, start = [], None
    for k, v in enumerate(rms + [float("inf")]):
        if v < THRESHOLD and start is None:
            start = k
        elif v >= THRESHOLD and start is not None:
            if (k - start) * WIN > MIN_LEN:
                runs.append((start * WIN, k * WIN))
            start = None
    total = sum(e - s for s, e in runs)
    os.makedirs("out", exist_ok=True)
    with open("out/silences.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["start", "end", "duration_s"])
        out.writerows([ts(s), ts(e), f"{e - s:.3f}"] for s, e in runs)
        out.writerow(["total", "", f"{total:.3f}"])
    print(f"{len(runs)} silences longer than {MIN_LEN} s, {total:.1f} s removable")
    """
)


def _silence_playbook(ctx: Ctx) -> Playbook:
    yield [sh("ls -l audio", say="Checking the recording."), sh("file audio/interview.wav")]
    yield write("silences.py", _SILENCE_V1, say="Writing an RMS-window silence detector.")
    cmd = "python3 silences.py && test $(grep -c '^[0-9]' out/silences.csv) -gt 0"
    run = yield sh(cmd, say="Running it and checking that it found pauses.")
    if not run.ok:
        # The background noise sits above the guessed threshold, so no window counts as silent.
        p10 = re.search(r"p10=(\d+)", run.stdout)
        floor = int(p10.group(1)) if p10 else 100
        yield edit(
            "silences.py",
            "THRESHOLD = 40  # RMS below this counts as silence",
            f"THRESHOLD = {4 * floor}  # 4x the noise floor (p10 window RMS {floor})",
            say=f"Nothing found: the noise floor is about {floor} RMS; raising the threshold.",
        )
        run = yield sh(cmd)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    yield Reply(f"Wrote the cut list to out/silences.csv: {summary}.")
    cuts = yield read("out/silences.csv", 1, 4, say="Looking at the first cuts.")
    first = cuts.stdout.splitlines()[1] if len(cuts.stdout.splitlines()) > 1 else ""
    yield Reply(f"Checked: times are HH:MM:SS.mmm (first cut {first}), total on the last row.")


_SILENCE_VERIFY = """
import array, csv, math, sys, wave
w = wave.open("audio/interview.wav")
x = array.array("h", w.readframes(w.getnframes()))
n = w.getframerate() // 50
rms = [math.sqrt(sum(s * s for s in x[i:i + n]) / n) for i in range(0, len(x) - n + 1, n)]
truth, start = [], None
for k, v in enumerate(rms + [1e9]):
    if v < 400 and start is None:
        start = k
    elif v >= 400 and start is not None:
        if (k - start) * 0.02 > 0.5:
            truth.append((start * 0.02, k * 0.02))
        start = None
def secs(t):
    h, m, s = t.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
try:
    rows = list(csv.reader(open("out/silences.csv")))
except FileNotFoundError:
    sys.exit("out/silences.csv is missing")
cuts = [(secs(r[0]), secs(r[1])) for r in rows if len(r) > 1 and r[0][:1].isdigit()]
if any(len(r[0].split(":")) != 3 or "." not in r[0] for r in rows if r and r[0][:1].isdigit()):
    sys.exit("times are not HH:MM:SS.mmm")
if len(cuts) != len(truth):
    sys.exit(f"expected {len(truth)} silences, found {len(cuts)}")
for (a, b), (c, d) in zip(cuts, truth):
    if abs(a - c) > 0.06 or abs(b - d) > 0.06:
        sys.exit(f"cut {a:.3f}-{b:.3f} does not match silence {c:.3f}-{d:.3f}")
total = [r for r in rows if r and "total" in r[0].lower()]
want = sum(b - a for a, b in cuts)
if not total or not any(v.strip() and abs(float(v) - want) < 0.05 for v in total[0][1:]):
    sys.exit("no total removable duration row")
print(f"ok: {len(cuts)} silences, {want:.1f} s removable")
"""


# ---------------------------------------------------------------- media-repair-playlists

_ARTISTS = ["Nova Lane", "The Quiet Hours", "Marrow", "Delta Pines", "Ivo Kasan", "Lumen Drive"]
_TITLES = ["Night Drive", "Paper Moon", "Static", "Low Tide", "Glass House", "Northbound",
           "Fever", "Hollow", "Copper Sky", "Afterglow", "Undertow", "Satellite"]  # fmt: skip


def _playlist_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    genres = dict(
        zip(_ARTISTS, ("Electronic", "Folk", "Rock", "Folk", "Jazz", "Electronic"), strict=True)
    )
    tracks = []
    for artist in _ARTISTS:
        for n, title in enumerate(rng.sample(_TITLES, 8), 1):
            tracks.append((artist, title, f"music/{genres[artist]}/{artist}/{n:02d} {title}.wav"))
    tiny = _wav(8000, 1, 1, [128] * 80)
    files = {path: tiny for _, _, path in tracks}
    moved = rng.sample(tracks, 14)
    log = ["# music/ reorganisation 2026-01-04 (by genre/artist)", "# old path -> new path"]
    old_of = {}
    for artist, title, path in moved:
        old_of[path] = f"music/Unsorted/{artist} - {title}.wav"
        log.append(f"{old_of[path]} -> {path}")
    files["music/moves.log"] = "\n".join(log) + "\n"
    deleted = [
        (a, t, f"music/Unsorted/{a} - {t} (demo).wav")
        for a, t in zip(_ARTISTS, _TITLES[:6], strict=True)
    ]
    for p in range(4):
        lines = ["#EXTM3U"]
        for artist, title, path in rng.sample(tracks, 13) + rng.sample(deleted, 2):
            style = rng.random()
            ref = "../" + old_of.get(path, path)
            if path not in old_of and style < 0.2:
                ref = ref.replace("/", "\\")
            elif path not in old_of and style < 0.35:
                ref = ref.lower()
            lines += [f"#EXTINF:{rng.randint(150, 330)},{artist} - {title}", ref]
        name = ("road_trip", "focus", "sunday", "party")[p]
        files[f"playlists/{name}.m3u"] = "\n".join(lines) + "\n"
    return Fixture(files, setup=(_GIT_INIT,)), {"tracks": len(tracks)}


_PLAYLIST_V1 = textwrap.dedent(
    """\
    import glob, os

    moves = dict(line.rstrip("\\n").split(" -> ") for line in open("music/moves.log"))
    by_lower = {p.lower(): p for p in glob.glob("music/**/*.wav", recursive=True)}
    missing, fixed = [], 0
    for pl in sorted(glob.glob("playlists/*.m3u")):
        out, extinf = [], None
        for line in open(pl).read().splitlines():
            if line.startswith("#EXTINF"):
                extinf = line
                continue
            if line.startswith("#") or not line.strip():
                out.append(line)
                continue
            path = os.path.normpath(os.path.join("playlists", line.replace("\\\\", "/")))
            new = path if os.path.exists(path) else moves.get(path) or by_lower.get(path.lower())
            if new and os.path.exists(new):
                fixed += new != path
                out += [extinf] if extinf else []
                out.append(os.path.relpath(new, "playlists"))
            else:
                missing.append(f"{pl}: {line}")
            extinf = None
        with open(pl, "w") as f:
            f.write("\\n".join(out) + "\\n")
    os.makedirs("out", exist_ok=True)
    with open("out/missing_tracks.txt", "w") as f:
        f.write("".join(m + "\\n" for m in missing))
    print(f"{fixed} entries repaired, {len(missing)} unresolvable")
    """
)


def _playlist_playbook(ctx: Ctx) -> Playbook:
    yield sh(
        "ls playlists && head -3 music/moves.log && find music -name '*.wav' | wc -l",
        say="Looking at the playlists and the move log.",
    )
    yield read("playlists/road_trip.m3u", 1, 12, say="Reading the start of one playlist.")
    yield write("repair.py", _PLAYLIST_V1, say="Writing a repair script.")
    run = yield sh("python3 repair.py")
    if not run.ok:
        # moves.log starts with '#' comment lines that have no ' -> ' separator.
        yield edit(
            "repair.py",
            'for line in open("music/moves.log"))',
            'for line in open("music/moves.log") if " -> " in line)',
            say="The move log has comment lines; only parsing 'old -> new' lines.",
        )
        run = yield sh("python3 repair.py")
    yield Reply(f"Repaired the playlists: {run.stdout.strip()}.")
    check, _ = yield [
        sh(
            "cd playlists && grep -hv '^#' *.m3u | while IFS= read -r p; do [ -f \"$p\" ] || "
            'echo "BROKEN $p"; done',
            say="Checking every entry resolves and EXTINF lines still pair up.",
        ),
        sh("grep -c '^#EXTINF' playlists/*.m3u; wc -l < out/missing_tracks.txt"),
    ]
    broken = check.stdout.count("BROKEN")
    yield Reply(f"Checked: {broken} broken entries remain; the missing tracks are in the report.")


_PLAYLIST_VERIFY = """
import glob, os, subprocess, sys
moves = dict(l.strip().split(" -> ") for l in open("music/moves.log") if " -> " in l)
by_lower = {p.lower(): p for p in glob.glob("music/**/*.wav", recursive=True)}
try:
    report = open("out/missing_tracks.txt").read()
except FileNotFoundError:
    sys.exit("out/missing_tracks.txt is missing")
for pl in glob.glob("playlists/*.m3u"):
    lines = open(pl).read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF") and (i + 1 >= len(lines) or lines[i + 1].startswith("#")):
            sys.exit(f"{pl}: an EXTINF line is not followed by its entry")
    entries = [(lines[i - 1] if i and lines[i - 1].startswith("#EXTINF") else None, l)
               for i, l in enumerate(lines) if l.strip() and not l.startswith("#")]
    for _, e in entries:
        if not os.path.isfile(os.path.join("playlists", e)):
            sys.exit(f"{pl}: entry {e!r} does not point to a file")
    got = [(x, os.path.normpath(os.path.join("playlists", e))) for x, e in entries]
    orig = subprocess.run(["git", "show", f"HEAD:{pl}"], capture_output=True, text=True).stdout
    olines, want = orig.splitlines(), []
    for i, l in enumerate(olines):
        if not l.strip() or l.startswith("#"):
            continue
        p = os.path.normpath(os.path.join("playlists", l.replace("\\\\", "/")))
        new = p if os.path.exists(p) else moves.get(p) or by_lower.get(p.lower())
        if new:
            want.append((olines[i - 1], new))
        elif l not in report and os.path.basename(l.replace("\\\\", "/")) not in report:
            sys.exit(f"{pl}: unresolvable {l!r} is not in the report")
    if got != want:
        sys.exit(f"{pl}: entries or their EXTINF lines differ from the expected repair")
print("ok: playlists repaired")
"""


# ---------------------------------------------------------------- media-build-contact-sheet

_IMGTOOL = textwrap.dedent(
    """\
    \"\"\"Tiny binary-PPM helpers: read, write, fill and blit.\"\"\"

    import re

    HEADER = re.compile(rb"P6\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s")


    class Image:
        def __init__(self, width, height):
            self.width, self.height = width, height
            self.stride = (width * 3 + 3) & ~3  # bytes per row, 4-byte aligned
            self.pixels = bytearray(self.stride * height)

        def row(self, y):
            return self.pixels[y * self.stride : y * self.stride + self.width * 3]


    def read_ppm(path):
        data = open(path, "rb").read()
        m = HEADER.match(data)
        if not m:
            raise ValueError(f"{path}: not a binary PPM")
        img = Image(int(m.group(1)), int(m.group(2)))
        body = data[m.end() :]
        if len(body) < len(img.pixels):
            raise ValueError(f"{path}: truncated PPM ({len(body)} of {len(img.pixels)} bytes)")
        img.pixels[:] = body[: len(img.pixels)]
        return img


    def write_ppm(img, path):
        with open(path, "wb") as f:
            f.write(b"P6\\n%d %d\\n255\\n" % (img.width, img.height))
            for y in range(img.height):
                f.write(img.row(y))


    def fill(img, rgb):
        for y in range(img.height):
            start = y * img.stride
            img.pixels[start : start + img.width * 3] = bytes(rgb) * img.width


    def blit(dst, src, x, y):
        for sy in range(src.height):
            start = (y + sy) * dst.stride + x * 3
            dst.pixels[start : start + src.width * 3] = src.row(sy)
    """
)

_STRIDE_PATCH = """\
--- a/tools/imgtool.py
+++ b/tools/imgtool.py
@@ -9,4 +9,4 @@
     def __init__(self, width, height):
         self.width, self.height = width, height
-        self.stride = (width * 3 + 3) & ~3  # bytes per row, 4-byte aligned
+        self.stride = width * 3  # PPM rows are packed, never padded
         self.pixels = bytearray(self.stride * height)
"""


def _sheet_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {"tools/imgtool.py": _IMGTOOL}
    for i in range(10):
        w, h = rng.randint(18, 48), rng.randint(16, 40)
        if i < 2:
            w -= w % 4  # a couple of widths happen to be multiples of four
        files[f"images/shot_{i + 1:02d}.ppm"] = _ppm(w, h, rng.randbytes(w * h * 3))
    return Fixture(files, setup=(_GIT_INIT,)), {"tiles": 10}


_SHEET_V1 = textwrap.dedent(
    """\
    import glob, json, os, sys

    sys.path.insert(0, "tools")
    from imgtool import Image, blit, fill, read_ppm, write_ppm

    COLS, PAD = 4, 8
    paths = sorted(glob.glob("images/*.ppm"))
    imgs = [read_ppm(p) for p in paths]
    cw, ch = max(i.width for i in imgs), max(i.height for i in imgs)
    nrows = -(-len(imgs) // COLS)
    sheet = Image(PAD + COLS * (cw + PAD), PAD + nrows * (ch + PAD))
    fill(sheet, (255, 255, 255))
    tiles = []
    for k, (path, img) in enumerate(zip(paths, imgs)):
        x, y = PAD + (k % COLS) * (cw + PAD), PAD + (k // COLS) * (ch + PAD)
        blit(sheet, img, x, y)
        tiles.append({"source": path, "label": os.path.basename(path)[:-4], "row": k // COLS,
                      "col": k % COLS, "x": x, "y": y, "width": img.width, "height": img.height})
    os.makedirs("out", exist_ok=True)
    write_ppm(sheet, "out/contact_sheet.ppm")
    layout = {"columns": COLS, "padding": PAD, "cell": [cw, ch], "tiles": tiles}
    json.dump(layout, open("out/contact_sheet.json", "w"), indent=2)
    print(f"{len(tiles)} tiles in a {COLS}x{nrows} grid, sheet {sheet.width}x{sheet.height}")
    """
)


def _sheet_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls images tools && file images/*.ppm | head -4",
            say="Looking at the inputs and reading the helper library.",
        ),
        read("tools/imgtool.py"),
    ]
    yield write("build_sheet.py", _SHEET_V1, say="Writing the contact-sheet builder.")
    run = yield sh("python3 build_sheet.py")
    if not run.ok:
        # Image pads rows to 4 bytes, so any width not divisible by 4 reads as truncated.
        yield patch(_STRIDE_PATCH, say="The stride pads rows like BMP; PPM rows are packed.")
        run = yield sh("python3 build_sheet.py")
    yield Reply(f"Fixed the stride in tools/imgtool.py and built the sheet: {run.stdout.strip()}.")
    check, _ = yield [
        sh(
            "head -c 15 out/contact_sheet.ppm | head -2 && jq '.tiles | length' "
            "out/contact_sheet.json",
            say="Checking the sheet header, the layout and the size of the fix.",
        ),
        sh("git diff --stat"),
    ]
    tiles = check.stdout.splitlines()[2] if len(check.stdout.splitlines()) > 2 else "?"
    yield Reply(f"Checked: the layout lists {tiles} tiles and the fix is a one-line change.")


_SHEET_VERIFY = """
import glob, json, re, subprocess, sys
def load(path):
    data = open(path, "rb").read()
    m = re.match(rb"P6\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s", data)
    w, h = int(m.group(1)), int(m.group(2))
    return w, h, data[m.end():m.end() + w * h * 3]
try:
    W, H, sheet = load("out/contact_sheet.ppm")
    layout = json.load(open("out/contact_sheet.json"))
except (FileNotFoundError, AttributeError, ValueError) as e:
    sys.exit(f"missing or unreadable contact sheet: {e}")
if len(sheet) != W * H * 3:
    sys.exit("the sheet's pixel data is truncated")
tiles = layout["tiles"] if isinstance(layout, dict) else layout
if sorted(t["source"] for t in tiles) != sorted(glob.glob("images/*.ppm")):
    sys.exit("the layout does not list every image exactly once")
xs, ys = sorted({t["x"] for t in tiles}), sorted({t["y"] for t in tiles})
if len(xs) != 4:
    sys.exit(f"expected 4 columns, found {len(xs)}")
if len({b - a for a, b in zip(xs, xs[1:])}) != 1 or len({b - a for a, b in zip(ys, ys[1:])}) > 1:
    sys.exit("tiles are not on a uniform grid")
for t in tiles:
    w, h, px = load(t["source"])
    for r in range(h):
        at = ((t["y"] + r) * W + t["x"]) * 3
        if sheet[at:at + w * 3] != px[r * w * 3:(r + 1) * w * 3]:
            sys.exit(f"{t['source']} is skewed or misplaced on the sheet")
diff = subprocess.run(["git", "diff", "--numstat", "--", "tools/imgtool.py"],
                      capture_output=True, text=True).stdout.split()
if not diff or int(diff[0]) + int(diff[1]) > 6:
    sys.exit("tools/imgtool.py is not fixed with a minimal patch")
print(f"ok: {len(tiles)} tiles on a {W}x{H} sheet")
"""


# ---------------------------------------------------------------- media-render-listens-chart


def _chart_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    lines = ["month,genre,listens"]
    for genre in ("Pop", "Rock", "Hip-Hop", "R&B"):
        base = rng.randint(8000, 40000)
        for m in range(1, 13):
            lines.append(f"2025-{m:02d},{genre},{int(base * rng.uniform(0.7, 1.4))}")
    return Fixture({"data/listens.csv": "\n".join(lines) + "\n"}), {"bars": 48}


_CHART_V1 = textwrap.dedent(
    """\
    import csv, os
    from collections import defaultdict

    data = defaultdict(dict)
    for r in csv.DictReader(open("data/listens.csv")):
        data[r["month"]][r["genre"]] = int(r["listens"])
    months = sorted(data)
    genres = sorted({g for m in data.values() for g in m})
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2"]
    W, H, L, B, T = 960, 480, 80, 60, 50  # size and left/bottom/top margins
    top = max(v for m in data.values() for v in m.values())
    scale = (H - B - T) / top
    group = (W - L - 170) / len(months)
    bar = group * 0.8 / len(genres)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">',
           "<title>Monthly listens per genre, 2025</title>",
           f'<text x="{W / 2}" y="28" text-anchor="middle">Monthly listens per genre</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - 160}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{(L + W - 160) / 2}" y="{H - 12}" text-anchor="middle">Month</text>',
           f'<text transform="translate(20,{H / 2}) rotate(-90)">Listens</text>']
    for k in range(6):
        y = H - B - (H - B - T) * k / 5
        svg.append(f'<text x="{L - 6}" y="{y + 4:.1f}">{round(top * k / 5)}</text>')
    for i, m in enumerate(months):
        x0 = L + i * group + group * 0.1
        svg.append(f'<text x="{x0 + group * 0.4:.1f}" y="{H - B + 16}">{m[5:]}</text>')
        for j, g in enumerate(genres):
            v = data[m].get(g, 0)
            svg.append(f'<rect x="{x0 + j * bar:.2f}" y="{H - B - v * scale:.2f}" '
                       f'width="{bar:.2f}" height="{v * scale:.2f}" fill="{colors[j]}">'
                       f"<title>{g}, {m}: {v} listens</title></rect>")
    for j, g in enumerate(genres):
        svg.append(f'<rect x="{W - 140}" y="{T + j * 22}" width="14" height="14" '
                   f'fill="{colors[j]}"/>')
        svg.append(f'<text x="{W - 120}" y="{T + j * 22 + 12}" font-size="13">{g}</text>')
    svg.append("</svg>")
    os.makedirs("out", exist_ok=True)
    open("out/listens_chart.svg", "w").write("\\n".join(svg) + "\\n")
    print(f"{len(months)} months x {len(genres)} genres, tallest bar {top} listens")
    """
)

_CHART_RUN = (
    'python3 chart.py && python3 -c "import xml.etree.ElementTree as ET; '
    "r = ET.parse('out/listens_chart.svg').getroot(); print(len(r), 'elements parse')\""
)


def _chart_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l data/listens.csv && cut -d, -f2 data/listens.csv | sort | uniq -c",
            say="Checking the months and genres, and reading the first rows.",
        ),
        read("data/listens.csv", 1, 5),
    ]
    yield write("chart.py", _CHART_V1, say="Writing a grouped-bar SVG renderer.")
    run = yield sh(_CHART_RUN, say="Rendering and parsing the SVG.")
    if not run.ok:
        # 'R&B' goes into the SVG unescaped, so the XML parser rejects the raw '&'.
        yield edit(
            "chart.py",
            "import csv, os\nfrom collections import defaultdict\n\ndata = defaultdict(dict)\n"
            'for r in csv.DictReader(open("data/listens.csv")):\n'
            '    data[r["month"]][r["genre"]] = int(r["listens"])',
            "import csv, os\nfrom collections import defaultdict\n"
            "from xml.sax.saxutils import escape\n\ndata = defaultdict(dict)\n"
            'for r in csv.DictReader(open("data/listens.csv")):\n'
            '    data[r["month"]][escape(r["genre"])] = int(r["listens"])',
            say="The genre 'R&B' is not XML-escaped; escaping labels when loading.",
        )
        run = yield sh(_CHART_RUN)
    yield Reply(f"Rendered out/listens_chart.svg: {run.stdout.strip().splitlines()[0]}.")
    check, _ = yield [
        sh("grep -c '<rect' out/listens_chart.svg", say="Counting bars and legend swatches."),
        sh("grep -o 'R&amp;B' out/listens_chart.svg | wc -l"),
    ]
    rects = check.stdout.split()[0] if check.ok else "?"
    yield Reply(f"Checked: the SVG parses with xml.etree and has {rects} rects (48 bars + legend).")


_CHART_VERIFY = """
import csv, sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse("out/listens_chart.svg").getroot()
except (FileNotFoundError, ET.ParseError) as e:
    sys.exit(f"out/listens_chart.svg is missing or not well-formed: {e}")
local = lambda el: el.tag.rsplit("}", 1)[-1]
if local(root) != "svg":
    sys.exit("the root element is not <svg>")
if not any(local(el) == "title" and (el.text or "").strip() for el in root.iter()):
    sys.exit("no <title> element")
texts = " ".join("".join(el.itertext()) for el in root.iter() if local(el) == "text")
rows = list(csv.DictReader(open("data/listens.csv")))
for g in {r["genre"] for r in rows}:
    if g not in texts:
        sys.exit(f"the legend does not name {g}")
if "listen" not in texts.lower():
    sys.exit("the value axis is not labelled")
heights = [float(el.get("height", 0)) for el in root.iter() if local(el) == "rect"]
values = [int(r["listens"]) for r in rows]
for h in sorted(set(heights), reverse=True):
    k = h / max(values)
    if k > 0 and all(any(abs(v * k - x) < 1.0 for x in heights) for v in values):
        break
else:
    sys.exit("no scale maps every listens value to a bar height")
print(f"ok: {len(values)} bars scaled, legend and titles present")
"""


# ---------------------------------------------------------------- media-background-resample-batch

_RESAMPLE_TOOL = textwrap.dedent(
    """\
    \"\"\"Resample WAV clips with linear interpolation; logs progress per file.\"\"\"

    import argparse, array, glob, os, time, wave

    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--log", default="logs/resample.log")
    args = ap.parse_args()
    os.makedirs(args.dst, exist_ok=True)
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    paths = sorted(glob.glob(os.path.join(args.src, "*.wav")))
    with open(args.log, "a") as log:
        log.write(f"start: {len(paths)} files -> {args.rate} Hz\\n")
        log.flush()
        for k, path in enumerate(paths, 1):
            with wave.open(path) as w:
                rate, n = w.getframerate(), w.getnframes()
                x = array.array("h", w.readframes(n))
            m, step = n * args.rate // rate, rate / args.rate
            y = array.array("h", bytes(2 * m))
            for i in range(m):
                pos = i * step
                j = int(pos)
                y[i] = int(x[j] + (x[min(j + 1, n - 1)] - x[j]) * (pos - j))
            with wave.open(os.path.join(args.dst, os.path.basename(path)), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(args.rate)
                w.writeframes(y.tobytes())
            log.write(f"[{k}/{len(paths)}] {os.path.basename(path)}: {n} -> {m} frames\\n")
            log.flush()
            time.sleep(0.05)
        log.write("done\\n")
    """
)

_RESAMPLE_GEN = textwrap.dedent(
    """\
    import array, json, math, os, wave

    SINE = [int(9000 * math.sin(2 * math.pi * k / 44100)) for k in range(44100)]
    os.makedirs("audio/source", exist_ok=True)
    for name, frames, freq in json.load(open(".clips.json")):
        x = array.array("h", (SINE[(i * freq) % 44100] for i in range(frames)))
        with wave.open(f"audio/source/{name}", "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(44100)
            w.writeframes(x.tobytes())
    """
)


def _resample_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    clips = []
    for i in range(12):
        frames = int(44100 * rng.uniform(5, 8))
        while i == 0 and (frames * 16000 % 44100) < 22050:  # rounds up: floor != round
            frames += 1
        clips.append([f"take_{i + 1:02d}.wav", frames, rng.randint(200, 900)])
    files = {"tools/resample.py": _RESAMPLE_TOOL, ".gen.py": _RESAMPLE_GEN,
             ".clips.json": json.dumps(clips)}  # fmt: skip
    return Fixture(files, setup=("python3 .gen.py && rm .gen.py .clips.json",)), {"clips": 12}


_RESAMPLE_CHECK = textwrap.dedent(
    """\
    import csv, glob, os, sys, wave

    rows, bad = [], 0
    for src in sorted(glob.glob("audio/source/*.wav")):
        name = os.path.basename(src)
        with wave.open(src) as a, wave.open(os.path.join("audio/16k", name)) as b:
            want = round(a.getnframes() * 16000 / a.getframerate())
            ok = b.getframerate() == 16000 and b.getnframes() == want
            rows.append([name, a.getframerate(), b.getframerate(),
                         f"{a.getnframes() / a.getframerate():.4f}",
                         f"{b.getnframes() / b.getframerate():.4f}", "ok" if ok else "MISMATCH"])
            bad += not ok
    os.makedirs("out", exist_ok=True)
    with open("out/resample_check.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "source_rate", "output_rate", "source_s", "output_s", "status"])
        w.writerows(rows)
    print(f"{len(rows)} outputs checked, {bad} mismatched")
    sys.exit(1 if bad else 0)
    """
)


def _resample_playbook(ctx: Ctx) -> Playbook:
    yield read("tools/resample.py", 1, 14, say="Reading how the resampler is invoked.")
    job = yield start(
        "python3 tools/resample.py audio/source audio/16k --rate 16000",
        say="Starting the batch in the background.",
    )
    job_id = job.extras.get("job", "job1")
    yield poll(job_id, say="Making sure it is running.")
    yield [
        sh(
            "timeout 240 sh -c 'until grep -qs ^done logs/resample.log; do sleep 0.2; done'; "
            "tail -4 logs/resample.log",
            say="Following the progress log until the batch finishes; writing a verification "
            "script meanwhile.",
            timeout_s=260,
        ),
        write("check_resample.py", _RESAMPLE_CHECK),
    ]
    run = yield sh("python3 check_resample.py")
    if not run.ok:
        # The resampler floors the frame count; expecting round() is off by one on some clips.
        yield edit(
            "check_resample.py",
            "b.getnframes() == want",
            "abs(b.getnframes() - want) <= 1",
            say="The resampler floors frame counts; allowing one frame (62 us) of slack.",
        )
        run = yield sh("python3 check_resample.py")
    yield Reply(f"The batch finished and {run.stdout.strip()}; see out/resample_check.csv.")
    final = yield poll(job_id, say="Confirming the job's exit status.")
    code = final.extras.get("job_exit_code")
    yield Reply(f"Checked: the background job exited with code {code}; all outputs are 16 kHz.")


_RESAMPLE_VERIFY = """
import csv, glob, os, sys, wave
log = open("logs/resample.log").read() if os.path.exists("logs/resample.log") else ""
if "done" not in log.split():
    sys.exit("the resampling job did not run to completion")
try:
    report = {r["file"]: r for r in csv.DictReader(open("out/resample_check.csv"))}
except (FileNotFoundError, KeyError):
    sys.exit("out/resample_check.csv is missing or has no file column")
srcs = glob.glob("audio/source/*.wav")
for src in srcs:
    name = os.path.basename(src)
    dst = os.path.join("audio/16k", name)
    if not os.path.exists(dst) or name not in report:
        sys.exit(f"{name}: no output or no verification row")
    a, b = wave.open(src), wave.open(dst)
    if b.getframerate() != 16000 or abs(b.getnframes() - a.getnframes() * 16000 / 44100) > 1:
        sys.exit(f"{name}: output is not 16 kHz with the source's duration")
print(f"ok: {len(srcs)} clips resampled and checked")
"""


RECIPES = [
    TaskRecipe(
        task_id="media-inventory-image-assets",
        fixture=_inventory_fixture,
        playbook=_inventory_playbook,
        verify=_INVENTORY_VERIFY,
        failure_mode="picks the header parser by file extension; a mislabelled file breaks it",
    ),
    TaskRecipe(
        task_id="media-wav-clip-report",
        fixture=_wav_report_fixture,
        playbook=_wav_report_playbook,
        verify=_WAV_REPORT_VERIFY,
        failure_mode="catches only wave.Error; the truncated header raises EOFError",
    ),
    TaskRecipe(
        task_id="media-generate-ppm-thumbnails",
        fixture=_thumbs_fixture,
        playbook=_thumbs_playbook,
        verify=_THUMBS_VERIFY,
        failure_mode="the PPM header tokenizer does not skip '#' comment lines",
    ),
    TaskRecipe(
        task_id="media-recolor-svg-icons",
        fixture=_recolor_fixture,
        playbook=_recolor_playbook,
        verify=_RECOLOR_VERIFY,
        failure_mode="replaces colours with case-sensitive sed; upper-case codes survive",
    ),
    TaskRecipe(
        task_id="media-normalize-audio-peaks",
        fixture=_normalize_fixture,
        playbook=_normalize_playbook,
        verify=_NORMALIZE_VERIFY,
        failure_mode="lists audio/raw with os.listdir and feeds its README to the wave module",
    ),
    TaskRecipe(
        task_id="media-catalog-video-sidecars",
        fixture=_sidecar_fixture,
        playbook=_sidecar_playbook,
        verify=_SIDECAR_VERIFY,
        failure_mode="reads format.duration, which some sidecars only give per stream",
    ),
    TaskRecipe(
        task_id="media-shift-subtitle-timing",
        fixture=_subtitle_fixture,
        playbook=_subtitle_playbook,
        verify=_SHIFT_VERIFY,
        failure_mode="reads the SRT as plain utf-8; the BOM breaks the first cue number",
    ),
    TaskRecipe(
        task_id="media-grayscale-png-scans",
        fixture=_gray_fixture,
        playbook=_gray_playbook,
        verify=_GRAY_VERIFY,
        failure_mode="assumes 3 bytes per pixel; the RGBA scans have 4",
    ),
    TaskRecipe(
        task_id="media-detect-interview-silences",
        fixture=_silence_fixture,
        playbook=_silence_playbook,
        verify=_SILENCE_VERIFY,
        failure_mode="guesses an RMS threshold below the noise floor, so no silence is found",
    ),
    TaskRecipe(
        task_id="media-repair-playlists",
        fixture=_playlist_fixture,
        playbook=_playlist_playbook,
        verify=_PLAYLIST_VERIFY,
        failure_mode="parses every moves.log line as 'old -> new'; the comment header breaks it",
    ),
    TaskRecipe(
        task_id="media-build-contact-sheet",
        fixture=_sheet_fixture,
        playbook=_sheet_playbook,
        verify=_SHEET_VERIFY,
        failure_mode="runs the builder before spotting the padded row stride in imgtool",
    ),
    TaskRecipe(
        task_id="media-render-listens-chart",
        fixture=_chart_fixture,
        playbook=_chart_playbook,
        verify=_CHART_VERIFY,
        failure_mode="writes the genre 'R&B' into the SVG unescaped, so it does not parse",
    ),
    TaskRecipe(
        task_id="media-background-resample-batch",
        fixture=_resample_fixture,
        playbook=_resample_playbook,
        verify=_RESAMPLE_VERIFY,
        failure_mode="expects round() frame counts while the resampler floors them",
    ),
]
