"""System-Infrastructure recipes.

Everything runs unprivileged as `agent`: "system" files are copies under the task dir (etc/,
var/, units/), services are real processes started with the process tool, no root or systemd.
"""

from __future__ import annotations

import json
import random
import re
import textwrap
from datetime import datetime, timedelta

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, kill, output, patch, poll, read, sh, start, write
from ise_dagster.tasklib.dsl import swap as _swap

_GIT_INIT = (
    "git init -q && git add -A && GIT_AUTHOR_DATE='2026-01-05T10:00:00' "
    "GIT_COMMITTER_DATE='2026-01-05T10:00:00' git commit -qm 'init'"
)


_NO_SERVICE_LEFT = """
def running(marker):
    import os
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                return pid
        except OSError:
            pass
"""

# ---------------------------------------------------------------- sysinfra-disk-usage-report

_MAKE_TREE = """python3 - <<'EOF'
import json, os, time
now = time.time()
for path, size, age in json.load(open("tree.json")):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(b"\\0" * size)
    os.utime(path, (now - age * 86400, now - age * 86400))
EOF
rm tree.json && ln -s build-0412 var/cache/app/current"""


def _disk_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    def age(lo: int, hi: int) -> float:
        return rng.choice([d for d in range(lo, hi) if not 28 <= d <= 32]) + 0.4

    spec = [
        ("var/log/syslog", 180_000, 0.1),
        ("var/log/app.log", 120_000, 0.2),
        ("var/log/syslog.1", 300_000, 7.4),
    ]
    spec += [
        (f"var/log/syslog.{n}.gz", rng.randrange(40, 90) * 1000, 7 * n + 0.4) for n in range(2, 8)
    ]
    spec += [
        (f"var/log/app.log.{n}.gz", rng.randrange(20, 60) * 1000, age(5, 120)) for n in range(1, 6)
    ]
    spec += [
        (
            f"var/cache/apt/archives/pkg{n:02d}_1.{n}_amd64.deb",
            rng.randrange(50, 1200) * 1000,
            age(3, 250),
        )
        for n in range(30)
    ]
    spec += [
        (
            f"var/cache/app/blob-{rng.randrange(16**6):06x}.bin",
            rng.randrange(1, 30) * 1000,
            age(1, 90),
        )
        for _ in range(70)
    ]
    spec += [
        (f"var/tmp/upload-{n:03d}.part", rng.randrange(1, 500) * 1000, age(0, 120))
        for n in range(45)
    ]
    spec += [
        (
            f"var/crash/core.{rng.randrange(1000, 9999)}",
            rng.randrange(1500, 4000) * 1000,
            age(2, 100),
        )
        for _ in range(5)
    ]
    spec += [(f"var/crash/_usr_bin_worker.{n}.crash", 4000, age(2, 100)) for n in range(4)]
    files = {"tree.json": json.dumps(spec)}
    return Fixture(files, (_MAKE_TREE,)), {}


_DISK_V1 = textwrap.dedent(
    """\
    import csv, os, re, time
    from collections import Counter

    NOW = time.time()
    files = []
    for root, dirs, names in os.walk("var"):
        for name in names:
            path = os.path.join(root, name)
            st = os.stat(path)
            files.append((path, st.st_size, (NOW - st.st_mtime) / 86400))
    dirs = Counter()
    for path, size, _ in files:
        d = os.path.dirname(path)
        while d:
            dirs[d] += size
            d = os.path.dirname(d)

    def candidate(path, age):  # old, and not a live log (rotated logs are fine)
        rotated = re.search(r"\\.\\d+(\\.gz)?$", path)
        return age > 30 and (not path.startswith("var/log/") or rotated)

    cands = sorted((f for f in files if candidate(f[0], f[2])), key=lambda f: -f[1])
    mb = lambda n: f"{n / 1e6:.1f} MB"
    lines = ["# Disk usage report for var/", "",
             f"Total: {mb(dirs['var'])} in {len(files)} files", "", "## Top directories", ""]
    lines += [f"- {mb(s)}  {d}" for d, s in dirs.most_common(10)]
    lines += ["", "## Top files", ""]
    biggest = sorted(files, key=lambda f: -f[1])[:10]
    lines += [f"- {mb(s)}  {p}  ({a:.0f} days old)" for p, s, a in biggest]
    lines += ["", f"## Cleanup candidates (older than 30 days): {len(cands)} files, "
              f"{mb(sum(c[1] for c in cands))}", "",
              "See out/cleanup_candidates.csv. Nothing was deleted."]
    os.makedirs("out", exist_ok=True)
    open("out/disk_report.md", "w").write("\\n".join(lines) + "\\n")
    with open("out/cleanup_candidates.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "size_bytes", "age_days"])
        w.writerows([p, s, f"{a:.1f}"] for p, s, a in cands)
    print(f"{len(files)} files, {mb(dirs['var'])}; {len(cands)} cleanup candidates")
    """
)


def _disk_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("du -sh var/*/", say="Getting a first size overview"),
        sh("find var -type f | wc -l", say="and a file count."),
    ]
    yield write("disk_report.py", _DISK_V1, say="Writing a report script; it deletes nothing.")
    run = yield sh("python3 disk_report.py")
    if not run.ok:
        # var/cache/app/current is a dangling symlink, and os.stat follows it.
        yield sh("find var -xtype l -ls", say="os.stat hit a missing file; looking for symlinks.")
        yield write(
            "disk_report.py",
            _swap(
                _DISK_V1,
                "        st = os.stat(path)\n",
                "        if os.path.islink(path):  # e.g. a dangling 'current' link\n"
                "            continue\n        st = os.stat(path)\n",
            ),
            say="A dangling symlink; skipping links, which use no space anyway.",
        )
        run = yield sh("python3 disk_report.py")
    yield Reply(
        f"Report written to out/disk_report.md ({run.stdout.strip()}); candidates with "
        "their age are in out/cleanup_candidates.csv. Nothing was deleted."
    )
    report, _ = yield [
        read("out/disk_report.md", 1, 12, say="Reviewing the top of the report"),
        sh("head -5 out/cleanup_candidates.csv", say="and of the candidate list."),
    ]
    tops = [ln[2:].strip() for ln in report.stdout.splitlines() if ln.startswith("- ")]
    yield Reply(
        f"Checked the report; below var/ itself the largest directory is "
        f"{tops[1] if len(tops) > 1 else '?'}."
    )


_DISK_VERIFY = """
import csv, os, re, sys, time
now = time.time()
files = {}
for root, _, names in os.walk("var"):
    for n in names:
        p = os.path.join(root, n)
        if not os.path.islink(p):
            st = os.stat(p)
            files[p] = (st.st_size, (now - st.st_mtime) / 86400)
if len(files) < 150:
    sys.exit("files under var/ were deleted")
try:
    report = open("out/disk_report.md").read()
    rows = list(csv.DictReader(open("out/cleanup_candidates.csv")))
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
biggest = max(files, key=lambda p: files[p][0])
if biggest not in report or "var/cache" not in report:
    sys.exit("report does not list the largest files and directories")
want = {p for p, (s, a) in files.items()
        if a > 30 and (not p.startswith("var/log/") or re.search(r"\\.\\d+(\\.gz)?$", p))}
got = {r["path"] for r in rows}
if got != want:
    sys.exit(f"candidates differ: {len(got - want)} extra, {len(want - got)} missing")
if any(abs(float(r["age_days"]) - files[r["path"]][1]) > 1 for r in rows):
    sys.exit("candidate ages are wrong")
print(f"ok: {len(got)} candidates, nothing deleted")
"""

# ---------------------------------------------------------------- sysinfra-analyze-auth-failures

_USERS = ["alice", "bob", "deploy", "carol", "backup", "dave"]
_ATTACK_USERS = ["root", "admin", "test", "oracle", "ubuntu", "postgres", "git", "pi"]


def _auth_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    attackers = [f"203.0.113.{rng.randrange(2, 250)}" for _ in range(3)]
    split_ip = f"198.51.100.{rng.randrange(2, 250)}"  # over the threshold only across both files
    noisy = [f"192.0.2.{rng.randrange(2, 250)}" for _ in range(6)]
    pid = rng.randrange(2000, 9000)

    def lines(day0: int, n: int, split_fails: int, compromise: bool) -> list[str]:
        out = []
        t = datetime(2026, 11, day0, 0, 5)
        events = ["noise"] * n
        events[: 6 * 20] = ["attack"] * (6 * 20)
        events[6 * 20 : 6 * 20 + split_fails] = ["split"] * split_fails
        rng.shuffle(events)
        if compromise:
            events.insert(int(n * 0.8), "compromise")
        for ev in events:
            t += timedelta(seconds=rng.randrange(20, 200))
            host = f"{t:%b} {t.day:2d} {t:%H:%M:%S} web1"
            p = f"sshd[{pid + rng.randrange(500)}]"
            port = rng.randrange(30000, 65000)
            if ev in ("attack", "split"):
                ip = rng.choice(attackers) if ev == "attack" else split_ip
                u = rng.choice(_ATTACK_USERS)
                if u != "root" and rng.random() < 0.5:
                    out.append(f"{host} {p}: Invalid user {u} from {ip} port {port}")
                    out.append(
                        f"{host} {p}: Failed password for invalid user {u} from {ip} "
                        f"port {port} ssh2"
                    )
                else:
                    out.append(f"{host} {p}: Failed password for {u} from {ip} port {port} ssh2")
            elif ev == "compromise":
                out.append(
                    f"{host} {p}: Accepted password for backup from {attackers[0]} port {port} ssh2"
                )
            else:
                kind = rng.random()
                u, ip = rng.choice(_USERS), rng.choice(noisy)
                if kind < 0.02:
                    out.append(f"{host} {p}: Failed password for {u} from {ip} port {port} ssh2")
                elif kind < 0.4:
                    out.append(
                        f"{host} {p}: Accepted publickey for {u} from {ip} port {port} "
                        "ssh2: RSA SHA256:x"
                    )
                elif kind < 0.7:
                    out.append(
                        f"{host} {p}: pam_unix(sshd:session): session opened for user {u}"
                        " by (uid=0)"
                    )
                else:
                    out.append(
                        f"{host} sudo:    {u} : TTY=pts/0 ; PWD=/home/{u} ; USER=root ; "
                        "COMMAND=/usr/bin/systemctl status nginx"
                    )
        return out

    old = lines(1, 420, 6, False)
    new = lines(3, 1150, 7, True)
    # A scanner sent raw bytes as a user name; sshd logs them verbatim.
    bad = f"Nov  4 03:12:44 web1 sshd[{pid}]: Invalid user \\xff\\xfe\\x01adm from {noisy[0]}"
    new.insert(500, bad)
    files = {
        "logs/auth.log.1": ("\n".join(old) + "\n").encode(),
        "logs/auth.log": ("\n".join(new) + "\n")
        .encode()
        .replace(b"\\xff\\xfe\\x01", b"\xff\xfe\x01"),
    }
    return Fixture(files), {}


_AUTH_V1 = textwrap.dedent(
    """\
    import csv, os, re
    from collections import Counter

    FAIL = re.compile(r"Failed password for (?:invalid user )?(\\S+) from (\\S+) port")
    OK = re.compile(r"^(\\w+ +\\d+ [\\d:]+) .*Accepted \\S+ for (\\S+) from (\\S+) port")
    fails, accepted = Counter(), []
    for path in ["logs/auth.log.1", "logs/auth.log"]:  # oldest first
        with open(path) as fh:
            for line in fh:
                if m := FAIL.search(line):
                    fails[(m.group(2), m.group(1))] += 1
                elif m := OK.search(line):
                    accepted.append((m.group(3), m.group(2), m.group(1), path))
    per_ip = Counter()
    for (ip, user), n in fails.items():
        per_ip[ip] += n
    flagged = {ip: n for ip, n in per_ip.items() if n > 10}
    os.makedirs("out", exist_ok=True)
    with open("out/ssh_failures.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ip", "user", "failures", "ip_total", "flagged"])
        for (ip, user), n in sorted(fails.items(), key=lambda kv: (-per_ip[kv[0][0]], -kv[1])):
            w.writerow([ip, user, n, per_ip[ip], "yes" if ip in flagged else "no"])
    md = ["# Failed SSH logins (auth.log.1 + auth.log)", "", "## IPs with > 10 failures", ""]
    md += [f"- {ip}: {n} failures" for ip, n in sorted(flagged.items(), key=lambda kv: -kv[1])]
    md += ["", "## Successful logins from flagged IPs", ""]
    hits = [a for a in accepted if a[0] in flagged]
    md += [f"- **ALERT** {ip} logged in as {u} at {when} ({path})" for ip, u, when, path in hits]
    md += [] if hits else ["- none"]
    open("out/ssh_findings.md", "w").write("\\n".join(md) + "\\n")
    print(f"{sum(fails.values())} failures from {len(per_ip)} IPs; {len(flagged)} flagged; "
          f"{len(hits)} successful logins from flagged IPs")
    """
)


def _auth_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "wc -l logs/auth.log*; grep -c 'Failed password' logs/auth.log*",
            say="Sizing up both rotated logs",
        ),
        read("logs/auth.log", 1, 8, say="and looking at the line formats."),
    ]
    yield write("ssh_failures.py", _AUTH_V1, say="Aggregating failures per IP and user.")
    run = yield sh("python3 ssh_failures.py")
    if not run.ok:
        # A scanner's user name contains raw non-UTF-8 bytes.
        yield write(
            "ssh_failures.py",
            _swap(
                _AUTH_V1,
                "with open(path) as fh:",
                'with open(path, encoding="utf-8", errors="replace") as fh:',
            ),
            say="Some log bytes are not UTF-8 (attacker-supplied user names); decoding leniently.",
        )
        run = yield sh("python3 ssh_failures.py")
    yield Reply(
        f"Parsed auth.log.1 and auth.log: {run.stdout.strip()}. Table in "
        "out/ssh_failures.csv, findings in out/ssh_findings.md."
    )
    check, _ = yield [
        sh("cat out/ssh_findings.md", say="Reviewing the findings"),
        sh("head -5 out/ssh_failures.csv", say="and the top of the table."),
    ]
    alerts = [ln for ln in check.stdout.splitlines() if "ALERT" in ln]
    yield Reply(
        "Checked the findings: "
        + ("; ".join(alerts) or "no successful logins from flagged IPs")
        + "."
    )


_AUTH_VERIFY = """
import csv, re, sys
from collections import Counter
fails, acc = Counter(), []
for p in ("logs/auth.log.1", "logs/auth.log"):
    for line in open(p, encoding="latin-1"):
        m = re.search(r"Failed password for (?:invalid user )?(\\S+) from (\\S+) port", line)
        if m:
            fails[(m.group(2), m.group(1))] += 1
        m = re.search(r"Accepted \\S+ for (\\S+) from (\\S+) port", line)
        if m:
            acc.append((m.group(2), m.group(1)))
per_ip = Counter()
for (ip, _), n in fails.items():
    per_ip[ip] += n
flagged = {ip for ip, n in per_ip.items() if n > 10}
try:
    rows = list(csv.DictReader(open("out/ssh_failures.csv")))
    md = open("out/ssh_findings.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
got = {(r["ip"], r["user"]): int(r["failures"]) for r in rows}
if got != dict(fails):
    sys.exit(f"failure table differs from the logs ({len(got)} vs {len(fails)} ip/user pairs)")
for ip in flagged:
    if ip not in md:
        sys.exit(f"flagged IP {ip} missing from findings")
for ip, user in acc:
    if ip in flagged and not any(ip in l and user in l for l in md.splitlines()):
        sys.exit(f"successful login by {user} from flagged {ip} not highlighted")
print(f"ok: {len(flagged)} flagged IPs")
"""

# ---------------------------------------------------------------- sysinfra-fix-service-unit

_LINT_UNIT = textwrap.dedent(
    """\
    \"\"\"Minimal systemd unit linter: python3 tools/lint_unit.py FILE. Exit 1 on errors.\"\"\"
    import sys

    RESTART = {"no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"}
    path = sys.argv[1]
    sections, current = {}, None
    for n, raw in enumerate(open(path), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
        else:
            print(f"ERROR line {n}: cannot parse {line!r}")
    svc = sections.get("Service", {})
    errors = []
    if not svc.get("ExecStart", "").startswith("/"):
        errors.append("ExecStart must be an absolute path")
    if svc.get("Restart", "no") not in RESTART:
        errors.append(f"Restart={svc['Restart']} is not a valid restart policy")
    if svc.get("User", "root") == "root":
        errors.append("service runs as root; set User= to an unprivileged account")
    if not svc.get("WorkingDirectory", "").startswith("/"):
        errors.append("WorkingDirectory is missing or not absolute")
    if "Install" not in sections:
        errors.append("[Install] section missing")
    for e in errors:
        print(f"ERROR: {e}")
    print(f"{path}: {len(errors)} error(s)")
    sys.exit(1 if errors else 0)
    """
)


def _unit_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    user = rng.choice(["apisvc", "api", "svc-api"])
    port = rng.choice([8080, 8081, 9000])
    layout = textwrap.dedent(
        f"""\
        # api deployment layout

        - Install root: /opt/api/current
        - Binary: /opt/api/current/bin/api-server
        - Config: /etc/api/api.toml
        - Service user: {user}
        - Restart policy: on-failure, 5 s between restarts
        """
    )
    unit = textwrap.dedent(
        f"""\
        [Unit]
        Description=API server
        After=network-online.target
        Wants=network-online.target

        [Service]
        Type=simple
        User=root
        ExecStart=/opt/api/bin/api-server --config /etc/api/api.toml --port {port}
        Restart=always-on
        RestartSec=5
        Environment=API_ENV=production

        [Install]
        WantedBy=multi-user.target
        """
    )
    files = {
        "units/api.service": unit,
        "deploy/LAYOUT.md": layout,
        "tools/lint_unit.py": _LINT_UNIT,
    }
    return Fixture(files), {}


def _unit_playbook(ctx: Ctx) -> Playbook:
    layout, unit = yield [
        read("deploy/LAYOUT.md", say="Reading the intended layout."),
        read("units/api.service", say="And the unit as it is."),
    ]
    user = re.search(r"Service user: (\S+)", layout.stdout)
    user = user.group(1) if user else "apisvc"
    yield [
        edit(
            "units/api.service",
            "User=root\nExecStart=/opt/api/bin/api-server",
            f"User={user}\nExecStart=/opt/api/current/bin/api-server",
            say="Running as the service user, with the binary under current/;",
        ),
        edit(
            "units/api.service",
            "Restart=always-on",
            "Restart=on-failure",
            say="always-on is not a restart policy, LAYOUT says on-failure.",
        ),
    ]
    lint = yield sh("python3 tools/lint_unit.py units/api.service")
    if not lint.ok:
        # The missing WorkingDirectory was easy to overlook: nothing was there to read.
        yield edit(
            "units/api.service",
            "Type=simple\n",
            "Type=simple\nWorkingDirectory=/opt/api/current\n",
            say="I missed the absent WorkingDirectory; adding it.",
        )
        lint = yield sh("python3 tools/lint_unit.py units/api.service")
    yield write(
        "out/unit_fixes.md",
        "# units/api.service fixes\n\n"
        "- ExecStart: /opt/api/bin/api-server -> /opt/api/current/bin/api-server (LAYOUT.md)\n"
        "- WorkingDirectory: added /opt/api/current\n"
        "- Restart: always-on (invalid) -> on-failure (RestartSec=5 kept)\n"
        f"- User: root -> {user}\n\n"
        f"Linter: {lint.stdout.strip()}\n",
        say="Summarising the changes.",
    )
    yield Reply(
        f"Fixed units/api.service with four minimal edits (ExecStart path, "
        f"WorkingDirectory, Restart=on-failure, User={user}); the linter now reports: "
        f"{lint.stdout.strip()}. Summary in out/unit_fixes.md."
    )
    check = yield sh(
        "python3 tools/lint_unit.py units/api.service && grep -n "
        "'^\\(User\\|ExecStart\\|WorkingDirectory\\|Restart\\)=' units/api.service",
        say="Re-linting and showing the fixed lines.",
    )
    yield Reply(
        f"Checked: lint exit status {check.exit_code}, and the four settings read:\n"
        f"{check.stdout.strip()}"
    )


_UNIT_VERIFY = """
import re, subprocess, sys
layout = open("deploy/LAYOUT.md").read()
user = re.search(r"Service user: (\\S+)", layout).group(1)
r = subprocess.run([sys.executable, "tools/lint_unit.py", "units/api.service"],
                   capture_output=True, text=True)
if r.returncode:
    sys.exit("linter still reports errors: " + r.stdout[-300:])
unit = open("units/api.service").read()
kv = dict(re.findall(r"^(\\w+)=(.*)$", unit, re.M))
want = {"User": user, "WorkingDirectory": "/opt/api/current", "Restart": "on-failure"}
bad = {k: kv.get(k) for k, v in want.items() if kv.get(k) != v}
if bad:
    sys.exit(f"wrong settings: {bad}")
want_exec = "/opt/api/current/bin/api-server --config /etc/api/api.toml"
if not kv.get("ExecStart", "").startswith(want_exec):
    sys.exit("ExecStart does not point at the installed binary with its arguments")
for keep in ("Description=API server", "RestartSec=5", "Environment=API_ENV=production",
             "WantedBy=multi-user.target"):
    if keep not in unit:
        sys.exit(f"unrelated line changed: {keep}")
try:
    summary = open("out/unit_fixes.md").read()
except FileNotFoundError:
    sys.exit("out/unit_fixes.md is missing")
if not all(k in summary for k in ("ExecStart", "WorkingDirectory", "Restart", "User")):
    sys.exit("summary does not cover all four fixes")
print("ok: unit fixed and lint-clean")
"""

# ------------------------------------------------------------ sysinfra-enforce-permission-policy

_PERM_POLICY = {
    "rules": [
        {"glob": "srv/app/secrets/*", "mode": "0600"},
        {"glob": "srv/app/secrets", "mode": "0700"},
        {"glob": "srv/app/config/*.conf", "mode": "0640"},
        {"glob": "srv/app/bin/*", "mode": "0755"},
        {"glob": "srv/app/data", "mode": "0750"},
        {"glob": "srv/app/data/*", "mode": "0640"},
        {"glob": "srv/app/logs/*.log", "mode": "0640"},
    ],
    "forbid_world_writable": True,
    "note": "first matching rule wins; other paths keep their mode minus the world-write bit",
}


def _perm_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files, modes = {}, {}
    names = {
        "bin": [f"{n}.sh" for n in ("start", "stop", "migrate", "healthcheck", "rotate")],
        "config": ["app.conf", "db.conf", "cache.conf", "mail.conf", "README.md"],
        "secrets": ["db.key", "api.token", "tls.pem", "signing.key"],
        "data": [f"shard-{n}.db" for n in range(8)],
        "logs": ["app.log", "access.log"],
        "static": [f"asset-{n}.css" for n in range(6)],
        "hooks": ["post-deploy"],
    }
    for d, ns in names.items():
        for n in ns:
            path = f"srv/app/{d}/{n}"
            files[path] = "#!/bin/sh\necho ok\n" if d in ("bin", "hooks") else f"{n}\n"
            if d in ("bin", "hooks"):
                modes[path] = rng.choice(["755", "775", "777", "744", "644"])
            elif d == "secrets":
                modes[path] = rng.choice(["600", "640", "644", "666"])
            else:
                modes[path] = rng.choice(["640", "644", "664", "666", "600"])
        modes[f"srv/app/{d}"] = rng.choice(["755", "775", "777", "750", "700"])
    modes["srv/app/hooks/post-deploy"] = "777"
    modes["srv/app/secrets/db.key"] = "666"
    modes["srv/app/bin/rotate.sh"] = "666"
    files["policy/perms.json"] = json.dumps(_PERM_POLICY, indent=2) + "\n"
    setup = " && ".join(
        f"chmod {m} {p}" for p, m in sorted(modes.items(), key=lambda kv: -len(kv[0]))
    )
    return Fixture(files, (setup,)), {}


_PERM_V1 = textwrap.dedent(
    """\
    import csv, fnmatch, json, os, stat

    policy = json.load(open("policy/perms.json"))
    paths = []
    for root, dirs, files in os.walk("srv/app"):
        paths += [os.path.join(root, n) for n in dirs + files]
    changes = []
    for path in sorted(paths):
        old = stat.S_IMODE(os.lstat(path).st_mode)
        new = next((r["mode"] for r in policy["rules"] if fnmatch.fnmatch(path, r["glob"])), None)
        if new is None:  # no rule: only strip world-write
            new = old & ~0o002 if policy.get("forbid_world_writable") else old
        if new != old:
            changes.append([path, f"{old:04o}", f"{new:04o}"])
    for path, _, new in changes:  # apply only once the whole plan is known
        os.chmod(path, int(new, 8))
    os.makedirs("out", exist_ok=True)
    with open("out/perm_changes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "old_mode", "new_mode"])
        w.writerows(changes)
    print(f"checked {len(paths)} paths, changed {len(changes)}")
    """
)


def _perm_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("policy/perms.json", say="Reading the permission policy."),
        sh("find srv/app -printf '%m %y %p\\n' | sort -k3 | head -50", say="Listing modes."),
    ]
    yield write("enforce_perms.py", _PERM_V1, say="Applying the first matching rule per path.")
    run = yield sh("python3 enforce_perms.py")
    if not run.ok:
        # The policy stores modes as strings like "0600"; os.chmod needs an int.
        yield write(
            "enforce_perms.py",
            _swap(_PERM_V1, 'r["mode"] for r', 'int(r["mode"], 8) for r'),
            say="Modes are octal strings in the policy; parsing with int(m, 8).",
        )
        run = yield sh("python3 enforce_perms.py")
    yield Reply(
        f"Enforced policy/perms.json: {run.stdout.strip()}. Each change with old and new "
        "octal mode is in out/perm_changes.csv."
    )
    check, _ = yield [
        sh(
            "find srv/app -perm -o+w | wc -l; find srv/app/secrets -type f ! -perm 600 | wc -l",
            say="Double-checking the modes",
        ),
        sh("ls -l srv/app/bin srv/app/hooks", say="and that the scripts kept +x."),
    ]
    ww, sec = (check.stdout.split() + ["?", "?"])[:2]
    yield Reply(f"Checked: {ww} world-writable paths, {sec} secrets not at 0600; scripts keep +x.")


_PERM_VERIFY = """
import csv, fnmatch, json, os, stat, sys
rules = json.load(open("policy/perms.json"))["rules"]
paths = []
for root, dirs, files in os.walk("srv/app"):
    paths += [os.path.join(root, n) for n in dirs + files]
for p in paths:
    mode = stat.S_IMODE(os.lstat(p).st_mode)
    rule = next((r for r in rules if fnmatch.fnmatch(p, r["glob"])), None)
    if rule and mode != int(rule["mode"], 8):
        sys.exit(f"{p} is {mode:04o}, policy says {rule['mode']}")
    if mode & 0o002:
        sys.exit(f"{p} is world-writable")
if not os.stat("srv/app/hooks/post-deploy").st_mode & 0o100:
    sys.exit("hooks/post-deploy lost its execute bit")
try:
    rows = list(csv.DictReader(open("out/perm_changes.csv")))
except FileNotFoundError:
    sys.exit("out/perm_changes.csv is missing")
logged = {r["path"] for r in rows}
for p in ("srv/app/secrets/db.key", "srv/app/hooks/post-deploy", "srv/app/bin/rotate.sh"):
    if p not in logged:
        sys.exit(f"change to {p} not logged")
for r in rows:
    now = stat.S_IMODE(os.lstat(r["path"]).st_mode)
    if r["old_mode"] == r["new_mode"] or int(r["new_mode"], 8) != now:
        sys.exit(f"log row does not match the file: {r}")
print(f"ok: {len(paths)} paths comply, {len(rows)} changes logged")
"""

# ---------------------------------------------------------------- sysinfra-kill-runaway-process

_WORKER = textwrap.dedent(
    """\
    \"\"\"Batch worker: --mode batch processes items; --mode poll waits for a flag file.\"\"\"
    import argparse, os, signal, time

    p = argparse.ArgumentParser()
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--mode", choices=["batch", "poll"], default="batch")
    p.add_argument("--items", type=int, default=8)
    a = p.parse_args()
    os.makedirs("run", exist_ok=True)
    open(f"run/worker-{a.id}.pid", "w").write(f"{os.getpid()}\\n")


    def on_term(signum, frame):
        print(f"worker {a.id}: SIGTERM received, will stop after the current unit", flush=True)


    signal.signal(signal.SIGTERM, on_term)
    if a.mode == "poll":
        deadline = time.time() + 300
        while not os.path.exists("run/input.ready") and time.time() < deadline:
            pass  # bug: busy-waits instead of sleeping between checks
    else:
        for _ in range(a.items):
            time.sleep(0.2)
        open(f"run/worker-{a.id}.done", "w").write("ok\\n")
    print(f"worker {a.id}: finished", flush=True)
    """
)


def _runaway_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    spin = rng.randint(1, 4)
    lines = ["#!/bin/bash", "# Nightly batch: four workers in parallel.", 'cd "$(dirname "$0")/.."']
    for n in range(1, 5):
        mode = "poll" if n == spin else "batch"
        lines.append(
            f"python3 tools/worker.py --id {n} --mode {mode} --items {rng.randint(6, 9)} &"
        )
    lines += ["wait", 'echo "workload finished"']
    files = {"tools/workload.sh": "\n".join(lines) + "\n", "tools/worker.py": _WORKER}
    return Fixture(files, ("chmod +x tools/workload.sh",)), {}


def _runaway_playbook(ctx: Ctx) -> Playbook:
    _, job = yield [
        read("tools/workload.sh", say="Reading what the workload launches"),
        start("bash tools/workload.sh", say="and starting it in the background."),
    ]
    job_id = job.extras.get("job", "")
    ps = yield sh(
        "sleep 1; ps -eo pid,ppid,pcpu,etimes,args --sort=-pcpu | grep '[w]orker.py'",
        say="Ranking the workers by CPU.",
    )
    top = ps.stdout.strip().splitlines()[0].split() if ps.stdout.strip() else ["0", "", "?"]
    pid, cpu, cmdline = top[0], top[2], " ".join(top[4:])
    stop = yield sh(
        f"kill {pid}; sleep 0.5; if ps -p {pid} > /dev/null; then echo 'still running:';"
        f" ps -o pid,stat,pcpu,args -p {pid}; exit 1; fi",
        say=f"PID {pid} is at {cpu}% CPU; sending it SIGTERM.",
    )
    if not stop.ok:
        # The worker traps SIGTERM and only stops "after the current unit", which never ends.
        log, stop = yield [
            output(job_id, say=f"PID {pid} survived SIGTERM; checking the workload's output"),
            sh(
                f"kill -KILL {pid}; for i in $(seq 100); do ps -eo args | grep -q '[w]orker.py' "
                "|| break; sleep 0.1; done; ps -eo pid,pcpu,args | grep '[w]orker.py' || "
                "echo 'no workers left'",
                say="and escalating to SIGKILL.",
            ),
        ]
    else:
        log = yield output(job_id, say="Checking the workload's output.")
    state = yield poll(job_id, say="Checking that the workload itself finished.")
    note = (
        "# Incident: runaway worker\n\n"
        f"- Offender: PID {pid} at {cpu}% CPU: `{cmdline}`\n"
        f"- Evidence (ps, sorted by CPU):\n\n```\n{ps.stdout.strip()}\n```\n\n"
        "- SIGTERM was trapped (worker said: "
        f"{next((ln for ln in log.stdout.splitlines() if 'SIGTERM' in ln), 'n/a')}), "
        "so it was stopped with SIGKILL; its siblings were not touched.\n"
        f"- Afterwards: {stop.stdout.strip().splitlines()[-1] if stop.stdout else '?'}; the "
        f"workload exited with {state.extras.get('job_exit_code')}.\n"
        "- Cause: poll mode busy-waits for run/input.ready instead of sleeping between checks.\n"
    )
    yield write("out/runaway_incident.md", note, say="Writing the incident note.")
    yield Reply(
        f"Stopped only the runaway worker, PID {pid} ({cmdline}, {cpu}% CPU), with SIGKILL "
        "after it ignored SIGTERM; the other workers finished. Note: "
        "out/runaway_incident.md."
    )
    check = yield sh("ls run/; cat run/*.done | wc -l", say="Confirming the siblings completed.")
    n = check.stdout.split()[-1] if check.stdout.split() else "?"
    yield Reply(f"Checked: {n} sibling workers wrote their done markers.")


_RUNAWAY_VERIFY = """
import os, re, sys
script = open("tools/workload.sh").read()
spin = re.search(r"--id (\\d) --mode poll", script).group(1)
try:
    note = open("out/runaway_incident.md").read()
    pid = open(f"run/worker-{spin}.pid").read().strip()
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
if pid not in note or "--mode poll" not in note:
    sys.exit("the note does not name the runaway PID and command line")
if os.path.exists(f"/proc/{pid}"):
    sys.exit(f"runaway worker {pid} still running")
for n in "1234":
    if n != spin and not os.path.exists(f"run/worker-{n}.done"):
        sys.exit(f"sibling worker {n} did not finish")
print(f"ok: worker {spin} (pid {pid}) stopped, siblings finished")
"""

# ---------------------------------------------------------------- sysinfra-fix-proxy-upstreams

_SITE_CONF = """\
# app.example.internal reverse proxy
# Managed by hand; the inventory of record is services.json.

upstream auth_backend {{
    server 10.0.1.11:{auth} max_fails=3;
}}

upstream api_backend {{
    server 10.0.1.12:{api};
    keepalive 16;
}}

upstream search_backend {{
    server {search_host}:9200;
}}

upstream static_backend {{
    server unix:/run/static.sock;
}}

upstream billing_backend {{
    server 10.0.1.15:{billing};
}}

server {{
    listen 443 ssl;
    server_name app.example.internal;
    # TLS settings live in snippets/tls.conf
    include snippets/tls.conf;

    location /auth/    {{ proxy_pass http://auth_backend; }}
    location /api/     {{ proxy_pass http://api_backend; proxy_read_timeout 30s; }}
    location /search/  {{ proxy_pass http://search_backend; }}
    location /static/  {{ proxy_pass http://static_backend; }}
    location /billing/ {{ proxy_pass http://billing_backend; }}
}}
"""


def _proxy_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    old = {"auth": 8001, "api": 8002, "billing": rng.randrange(8003, 8099)}
    new = {"auth": rng.randrange(9100, 9199), "api": rng.randrange(9200, 9299)}
    conf = _SITE_CONF.format(search_host="search-v1.internal", **old)
    services = [
        {"name": "auth", "upstream": "auth_backend", "host": "10.0.1.11", "port": new["auth"]},
        {"name": "api", "upstream": "api_backend", "host": "10.0.1.12", "port": new["api"]},
        {"name": "search", "upstream": "search_backend", "host": "search.internal", "port": 9200},
        {"name": "static", "upstream": "static_backend", "socket": "/run/static.sock"},
        {
            "name": "billing",
            "upstream": "billing_backend",
            "host": "10.0.1.15",
            "port": old["billing"],
        },
    ]
    files = {"etc/nginx/sites/app.conf": conf, "services.json": json.dumps(services, indent=2)}
    return Fixture(files, (_GIT_INIT,)), {}


_CHECK_UPSTREAMS = textwrap.dedent(
    """\
    \"\"\"Compare the upstream servers in etc/nginx/sites/app.conf with services.json.\"\"\"
    import json, re, sys

    conf = open("etc/nginx/sites/app.conf").read()
    found = {}
    for name, body in re.findall(r"upstream\\s+(\\w+)\\s*\\{(.*?)\\}", conf, re.S):
        m = re.search(r"^\\s*server\\s+([^\\s;]+)", body, re.M)
        host, port = m.group(1).rsplit(":", 1)
        found[name] = (host, int(port))
    bad = 0
    services = json.load(open("services.json"))
    for s in services:
        want = (s["host"], s["port"]) if "host" in s else ("unix", s["socket"])
        got = found.get(s["upstream"])
        if got != want:
            bad += 1
            shown = f"{got[0]}:{got[1]}" if got else "missing"
            print(f"MISMATCH {s['upstream']}: config {shown}, inventory {want[0]}:{want[1]}")
    print(f"{len(services)} upstreams checked, {bad} mismatches")
    sys.exit(1 if bad else 0)
    """
)


def _proxy_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("services.json", say="Reading the service inventory."),
        read("etc/nginx/sites/app.conf", say="And the proxy config."),
    ]
    yield write("scripts/check_upstreams.py", _CHECK_UPSTREAMS, say="Writing a check script.")
    run = yield sh("python3 scripts/check_upstreams.py")
    if "Traceback" in run.stderr:
        # The static upstream is a unix socket: 'unix:/run/static.sock' has no numeric port.
        yield edit(
            "scripts/check_upstreams.py",
            '    host, port = m.group(1).rsplit(":", 1)\n    found[name] = (host, int(port))\n',
            '    target = m.group(1)\n    if target.startswith("unix:"):\n'
            '        found[name] = ("unix", target[len("unix:"):])\n        continue\n'
            '    host, port = target.rsplit(":", 1)\n    found[name] = (host, int(port))\n',
            say="The static upstream is a unix socket; handling 'unix:' targets.",
        )
        run = yield sh("python3 scripts/check_upstreams.py")
    fixes = re.findall(r"config (\S+), inventory (\S+)", run.stdout)
    sed = " ".join(
        f"-e 's|server {old};|server {new};|' -e 's|server {old} |server {new} |'"
        for old, new in fixes
    )
    fixed = yield sh(
        f"sed -i {sed} etc/nginx/sites/app.conf && python3 scripts/check_upstreams.py",
        say=f"Updating {len(fixes)} stale server lines, then re-checking.",
    )
    yield Reply(
        f"Updated {len(fixes)} upstreams ({', '.join(f'{o} -> {n}' for o, n in fixes)}); "
        f"scripts/check_upstreams.py now says: {fixed.stdout.strip()}"
    )
    _, diff = yield [
        sh("git diff --stat", say="Reviewing the diff:"),
        sh("git diff -U0 | grep '^[-+] '", say="files, then the changed lines."),
    ]
    n = diff.stdout.count("\n+") + diff.stdout.startswith("+") if diff.ok else "?"
    yield Reply(f"Checked: only {n} server lines changed; comments and locations are untouched.")


_PROXY_VERIFY = """
import json, re, subprocess, sys
def upstreams(conf):
    out = {}
    for name, body in re.findall(r"upstream\\s+(\\w+)\\s*\\{(.*?)\\}", conf, re.S):
        out[name] = re.search(r"^\\s*server\\s+([^\\s;]+)", body, re.M).group(1)
    return out
conf = open("etc/nginx/sites/app.conf").read()
got = upstreams(conf)
for s in json.load(open("services.json")):
    want = f"unix:{s['socket']}" if "socket" in s else f"{s['host']}:{s['port']}"
    if got.get(s["upstream"]) != want:
        sys.exit(f"{s['upstream']}: {got.get(s['upstream'])} != {want}")
git = ["git", "show", "HEAD:etc/nginx/sites/app.conf"]
orig = subprocess.run(git, capture_output=True, text=True).stdout
strip = lambda t: [l for l in t.splitlines() if not l.strip().startswith("server ")]
if strip(orig) != strip(conf):
    sys.exit("lines other than upstream servers changed")
r = subprocess.run([sys.executable, "scripts/check_upstreams.py"], capture_output=True, text=True)
if r.returncode:
    sys.exit("scripts/check_upstreams.py does not pass: " + (r.stdout + r.stderr)[-300:])
print("ok: upstreams match the inventory")
"""

# ---------------------------------------------------------------- sysinfra-correlate-error-spike


def _spike_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    t0 = datetime(2026, 11, 5, 13, 0)
    spike = rng.randrange(50, 80)  # minutes after 13:00
    paths = ["/api/orders", "/api/cart", "/api/users", "/health", "/api/search"]
    files = {}
    for inst in (1, 2, 3):
        lines = []
        t = t0
        while t < t0 + timedelta(minutes=120):
            t += timedelta(seconds=rng.uniform(4, 12))
            minute = (t - t0).seconds // 60
            in_spike = spike <= minute < spike + 9
            status = (
                rng.choice([500, 502, 503])
                if rng.random() < (0.8 if in_spike else 0.01)
                else (rng.choice([200, 200, 200, 201, 304, 404]))
            )
            path, ms = rng.choice(paths), rng.randrange(5, 900 if in_spike else 120)
            if inst == 1:
                lines.append(
                    f"{t:%Y-%m-%dT%H:%M:%S}Z level={'ERROR' if status >= 500 else 'INFO'} "
                    f"GET {path} status={status} dur_ms={ms}"
                )
            elif inst == 2:
                lines.append(
                    f"{t:%Y-%m-%d %H:%M:%S},{rng.randrange(1000):03d} [INFO] GET {path} "
                    f"-> {status} ({ms} ms)"
                )
            else:
                lines.append(f'[{t:%d/%b/%Y:%H:%M:%S} +0000] "GET {path} HTTP/1.1" {status} {ms}')
        files[f"logs/app/app-{inst}.log"] = "\n".join(lines) + "\n"
    trigger = t0 + timedelta(minutes=spike - 1, seconds=rng.randrange(5, 50))
    events = [
        (t0 + timedelta(minutes=20), "deploy api v2.14.0 by ci (canary 10%)"),
        (t0 + timedelta(minutes=spike - 15), "config cache.ttl 300 -> 600 by ops"),
        (trigger, "config db.pool.max 50 -> 5 by alice (cost cleanup)"),
        (
            t0 + timedelta(minutes=spike + 9, seconds=10),
            "config db.pool.max 5 -> 50 by alice (revert)",
        ),
        (t0 + timedelta(minutes=spike + 25), "deploy web v1.9.3 by ci"),
    ]
    files["logs/deploy.log"] = "".join(f"{t:%Y-%m-%dT%H:%M:%S}Z {e}\n" for t, e in events)
    return Fixture(files), {}


_SPIKE_V1 = textwrap.dedent(
    """\
    import csv, glob, os, re, statistics
    from collections import Counter
    from datetime import datetime

    STATUS = re.compile(r'(?:status=|-> |" )(\\d{3})\\b')

    def minute(line):
        return datetime.strptime(line[:19], "%Y-%m-%dT%H:%M:%S").strftime("%Y-%m-%d %H:%M")

    errors, total, samples = Counter(), Counter(), {}
    for path in sorted(glob.glob("logs/app/*.log")):
        for line in open(path):
            m = STATUS.search(line)
            if not m:
                continue
            key = minute(line)
            total[key] += 1
            if int(m.group(1)) >= 500:
                errors[key] += 1
                samples.setdefault(key, []).append(f"{os.path.basename(path)}: {line.strip()}")
    minutes = sorted(total)
    os.makedirs("out", exist_ok=True)
    with open("out/errors_per_minute.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["minute", "errors", "requests"])
        w.writerows([k, errors[k], total[k]] for k in minutes)
    base = statistics.median(errors[k] for k in minutes)
    hot = [k for k in minutes if errors[k] > max(5, 4 * base)]
    start, end = hot[0], hot[-1]
    events = [l.strip() for l in open("logs/deploy.log") if l.strip()]
    before = [e for e in events if e[:16].replace("T", " ") <= start]
    trigger = before[-1] if before else "none"
    md = ["# Error spike analysis", "",
          f"- Spike window: {start} to {end} UTC ({sum(errors[k] for k in hot)} errors; "
          f"baseline median {base} errors/min)",
          f"- Peak: {max(hot, key=lambda k: errors[k])} with {max(errors[k] for k in hot)} errors",
          f"- Most plausible trigger (last change before the spike): `{trigger}`", "",
          "## Deploy log around the spike", ""] + [f"    {e}" for e in events] + [
          "", "## First errors in the window", ""] + [f"    {s}" for s in samples[start][:5]]
    open("out/spike_analysis.md", "w").write("\\n".join(md) + "\\n")
    print(f"spike {start} -> {end}; trigger: {trigger}")
    """
)


def _spike_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("ls -la logs/app; head -3 logs/app/app-1.log", say="Looking at the instance logs"),
        read("logs/deploy.log", say="and the deploy/config events."),
    ]
    yield write("spike.py", _SPIKE_V1, say="Counting 5xx per minute across instances.")
    run = yield sh("python3 spike.py")
    if not run.ok:
        # app-2 and app-3 use different timestamp formats than app-1.
        yield sh(
            "head -2 logs/app/app-2.log logs/app/app-3.log",
            say="Timestamps differ; checking the other formats.",
        )
        yield write(
            "spike.py",
            _swap(
                _SPIKE_V1,
                '    return datetime.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")'
                '.strftime("%Y-%m-%d %H:%M")\n',
                '    if line.startswith("["):  # [05/Nov/2026:14:03:22 +0000]\n'
                '        t = datetime.strptime(line[1:21], "%d/%b/%Y:%H:%M:%S")\n'
                "    else:  # 2026-11-05T14:03:22Z or 2026-11-05 14:03:22,123\n"
                '        t = datetime.strptime(line[:19].replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")\n'
                '    return t.strftime("%Y-%m-%d %H:%M")\n',
            ),
            say="Parsing all three timestamp styles.",
        )
        run = yield sh("python3 spike.py")
    yield Reply(
        f"Found the spike: {run.stdout.strip()}. Series in out/errors_per_minute.csv, "
        "analysis with supporting lines in out/spike_analysis.md."
    )
    check, _ = yield [
        sh(
            "sort -t, -k2 -nr out/errors_per_minute.csv | head -4",
            say="Checking the busiest error minutes",
        ),
        read("out/spike_analysis.md", say="against the written analysis."),
    ]
    yield Reply(f"Checked the worst minutes (minute, errors, requests):\n{check.stdout.strip()}")


_SPIKE_VERIFY = """
import csv, glob, re, sys
from collections import Counter
from datetime import datetime
err = Counter()
for p in glob.glob("logs/app/*.log"):
    for line in open(p):
        if line.startswith("["):
            t = datetime.strptime(line[1:21], "%d/%b/%Y:%H:%M:%S")
        else:
            t = datetime.strptime(line[:19].replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
        if int(re.search(r'(?:status=|-> |" )(\\d{3})\\b', line).group(1)) >= 500:
            err[t.strftime("%Y-%m-%d %H:%M")] += 1
try:
    rows = list(csv.reader(open("out/errors_per_minute.csv")))[1:]
    md = open("out/spike_analysis.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
got = {r[0].replace("T", " ")[:16]: int(r[1]) for r in rows if int(r[1])}
if got != dict(err):
    sys.exit("per-minute error counts do not match the logs")
hot = sorted(k for k, n in err.items() if n >= 10)
events = [l.strip() for l in open("logs/deploy.log") if l.strip()]
trigger = [e for e in events if e[:16].replace("T", " ") <= hot[0]][-1]
if hot[0][11:] not in md or trigger[21:] not in md:
    sys.exit(f"analysis must name the spike start {hot[0]} and the trigger '{trigger}'")
print(f"ok: spike from {hot[0]}, trigger {trigger}")
"""

# ---------------------------------------------------------------- sysinfra-health-check-services

_SVC = textwrap.dedent(
    """\
    \"\"\"Demo service: python3 services/svc.py NAME PORT [--die-after SECONDS].\"\"\"
    import os, sys, threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    name, port = sys.argv[1], int(sys.argv[2])
    os.makedirs("run", exist_ok=True)
    open(f"run/{name}.pid", "w").write(f"{os.getpid()}\\n")


    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(f"{name} ok\\n".encode())


    if "--die-after" in sys.argv:  # simulates a crash shortly after start
        delay = float(sys.argv[sys.argv.index("--die-after") + 1])
        threading.Timer(delay, lambda: os._exit(3)).start()
    print(f"{name} listening on 127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Health).serve_forever()
    """
)


def _health_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    base = rng.choice([18080, 18180, 18280])
    names = ["api", "auth", "cache"]
    dies = rng.choice(names)
    ports = {n: {"port": base + i + 1, "pid_file": f"run/{n}.pid"} for i, n in enumerate(names)}
    lines = [
        "#!/bin/bash",
        "# Start the demo services; each writes run/<name>.pid.",
        'cd "$(dirname "$0")/.."',
        "mkdir -p run",
    ]
    for n in names:
        extra = " --die-after 1" if n == dies else ""
        lines.append(f"python3 services/svc.py {n} {ports[n]['port']}{extra} &")
    lines.append("wait")
    files = {
        "services/start_all.sh": "\n".join(lines) + "\n",
        "services/svc.py": _SVC,
        "services/ports.json": json.dumps(ports, indent=2) + "\n",
    }
    return Fixture(files), {}


_HEALTH_V1 = textwrap.dedent(
    """\
    \"\"\"Health check: each service must have a live PID and accept connections on its port.\"\"\"
    import json, os, socket, sys

    services = json.load(open("services/ports.json"))
    failed = 0
    for name, port in sorted(services.items()):
        pid_file = f"run/{name}.pid"
        reasons = []
        try:
            pid = int(open(pid_file).read())
            os.kill(pid, 0)
        except FileNotFoundError:
            reasons.append(f"no pid file {pid_file}")
        except ProcessLookupError:
            reasons.append(f"pid {pid} from {pid_file} is not running")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as e:
            reasons.append(f"port {port} not accepting connections ({e.strerror or e})")
        failed += bool(reasons)
        print(f"{name}: {'FAILED: ' + '; '.join(reasons) if reasons else 'healthy'}")
    sys.exit(1 if failed else 0)
    """
)


def _health_playbook(ctx: Ctx) -> Playbook:
    _, job = yield [
        read("services/start_all.sh", say="Reading how the services are started"),
        start("bash services/start_all.sh", say="and starting them."),
    ]
    job_id = job.extras.get("job", "")
    yield write("scripts/healthcheck.py", _HEALTH_V1, say="Writing a PID-and-port health check.")
    run = yield sh("sleep 3; python3 scripts/healthcheck.py")
    if "FAILED" in run.stdout and "healthy" not in run.stdout:
        # Every service "failed", even ones just started: ports.json maps each name to an
        # object, and socket reports the dict port as "Int or String expected".
        yield sh("cat services/ports.json", say="The ports file is not name -> int; checking it.")
        yield write(
            "scripts/healthcheck.py",
            _swap(
                _swap(_HEALTH_V1, "for name, port in sorted", "for name, spec in sorted"),
                '    pid_file = f"run/{name}.pid"\n',
                '    port, pid_file = spec["port"], spec.get("pid_file", f"run/{name}.pid")\n',
            ),
            say="Each entry holds port and pid_file; reading both.",
        )
        run = yield sh(
            "mkdir -p out; python3 scripts/healthcheck.py > out/health.txt; rc=$?; "
            'cat out/health.txt; echo "exit status $rc"'
        )
    yield kill(job_id, say="Stopping all services.")
    failed = [ln for ln in run.stdout.splitlines() if "FAILED" in ln]
    yield Reply(
        f"scripts/healthcheck.py checks each service's PID file and port; "
        f"{len(failed)} failed ({'; '.join(failed)}) so it exits non-zero. Output saved in "
        "out/health.txt; all services are stopped."
    )
    state = yield poll(job_id, say="Confirming the service job is gone.")
    yield Reply(f"Checked: the services job is running={state.extras.get('running')}.")


_HEALTH_VERIFY = (
    _NO_SERVICE_LEFT
    + """
import json, re, subprocess, sys
start = open("services/start_all.sh").read()
dead = re.search(r"svc.py (\\w+) \\d+ --die-after", start).group(1)
try:
    out = open("out/health.txt").read()
except FileNotFoundError:
    sys.exit("out/health.txt is missing")
for name in json.load(open("services/ports.json")):
    line = next((l for l in out.splitlines() if l.startswith(name)), "")
    ok = "healthy" in line and "FAIL" not in line
    if ok == (name == dead) or not line:
        sys.exit(f"wrong status for {name}: {line!r}")
if running("services/svc.py"):
    sys.exit("services are still running")
r = subprocess.run([sys.executable, "scripts/healthcheck.py"], capture_output=True, text=True)
if r.returncode == 0:
    sys.exit("health check exits 0 although every service is down")
print(f"ok: {dead} reported failed, services stopped")
"""
)

# ---------------------------------------------------------------- sysinfra-reconcile-config-drift

_DRIFT_FILES = {
    "app.conf": [
        ("app.hostname", "{env}.app.internal"),
        ("app.workers", "{w}"),
        ("app.request_timeout", "{rt}"),
        ("app.public_url", "https://{env}.example.com"),
    ],
    "db.conf": [
        ("db.host", "db-{env}.internal"),
        ("db.password", "{pw}"),
        ("db.pool_size", "{pool}"),
        ("db.statement_timeout_ms", "{st}"),
    ],
    "cache.conf": [
        ("cache.host", "cache-{env}.internal"),
        ("cache.ttl", "{ttl}"),
        ("cache.max_items", "{mi}"),
    ],
    "logging.conf": [
        ("logging.level", "{lvl}"),
        ("logging.format", "{fmt}"),
        ("logging.retention_days", "{ret}"),
    ],
}


def _drift_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    prod = {
        "w": 8,
        "rt": 30,
        "pool": 40,
        "st": 5000,
        "ttl": 600,
        "mi": 100000,
        "lvl": "info",
        "fmt": "json",
        "ret": 30,
    }
    stage = dict(prod, w=2, pool=10, ttl=300, lvl="debug", fmt="text", ret=rng.choice([7, 14]))
    files = {}
    for name, keys in _DRIFT_FILES.items():
        for env, vals in (("staging", stage), ("production", prod)):
            lines = [f"# {name} for {env}", ""]
            for key, tmpl in keys:
                if env == "staging" and key in ("app.request_timeout", "db.statement_timeout_ms"):
                    continue  # settings production gained later
                pw = f"{env[:4]}-{rng.randrange(16**8):08x}"
                lines.append(f"{key} = {tmpl.format(env=env, pw=pw, **vals)}")
            files[f"{env}/etc/app/{name}"] = "\n".join(lines) + "\n"
    files["drift_allowlist.txt"] = (
        "# keys allowed to differ between environments\n"
        "app.hostname\napp.public_url\ndb.host\ndb.password\n"
        "cache.host\n"
    )
    return Fixture(files, (_GIT_INIT,)), {}


_DRIFT_V1 = textwrap.dedent(
    """\
    import difflib, os, re

    ALLOW = {l.strip() for l in open("drift_allowlist.txt") if l.strip() and not l.startswith("#")}
    KV = re.compile(r"^([\\w.]+)\\s*=\\s*(.*)$", re.M)
    report = ["# Config drift: staging vs production", "",
              "| file | key | staging | production | allowed |", "|---|---|---|---|---|"]
    patch = []
    for name in sorted(os.listdir("production/etc/app")):
        stg_path = f"staging/etc/app/{name}"
        stg, prod = open(stg_path).read(), open(f"production/etc/app/{name}").read()
        s, p = dict(KV.findall(stg)), dict(KV.findall(prod))
        for key in sorted(set(s) | set(p)):
            if s.get(key) != p.get(key):
                shown = ("(secret)", "(secret)") if "password" in key else (
                    s.get(key, "(missing)"), p.get(key, "(missing)"))
                report.append(f"| {name} | {key} | {shown[0]} | {shown[1]} | "
                              f"{'yes' if key in ALLOW else 'no'} |")
        # Target: production's file, keeping staging's own values for allowlisted keys.
        target = []
        for line in prod.splitlines():
            m = KV.match(line)
            if m and m.group(1) in ALLOW and m.group(1) in s:
                line = f"{m.group(1)} = {s[m.group(1)]}"
            target.append(line)
        patch += difflib.unified_diff(stg.splitlines(), target, f"a/{stg_path}", f"b/{stg_path}")
    os.makedirs("out", exist_ok=True)
    open("out/drift_report.md", "w").write("\\n".join(report) + "\\n")
    open("out/staging.diff", "w").write("\\n".join(patch) + "\\n")
    print(open("out/staging.diff").read(), end="")
    """
)


def _drift_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "cat drift_allowlist.txt; diff -r staging/etc/app production/etc/app | head -40",
            say="Comparing the two trees and reading the allowlist",
        ),
        read("staging/etc/app/db.conf", say="and checking the file format."),
    ]
    yield write("drift.py", _DRIFT_V1, say="Writing the drift report and patch generator.")
    run = yield sh("python3 drift.py")
    res = yield patch(run.stdout, say="Applying the generated patch to staging.")
    if not res.ok:
        # splitlines() drops newlines but the diff headers keep theirs: joined with '\n' the
        # headers are followed by blank lines, which patch rejects as malformed.
        yield write(
            "drift.py",
            _swap(_DRIFT_V1, 'f"b/{stg_path}")', 'f"b/{stg_path}", lineterm="")'),
            say="The diff has stray blank lines after its headers; using lineterm=''.",
        )
        run = yield sh("python3 drift.py")
        res = yield patch(run.stdout, say="Applying the corrected patch.")
    n_rows = run.stdout.count("\n+++ ") + run.stdout.startswith("+++ ")
    yield Reply(
        f"Wrote out/drift_report.md, saved the patch as out/staging.diff and applied it "
        f"({res.stdout.strip().count('patching file')} files patched, {n_rows} in the "
        "diff). Only allowlisted keys should still differ."
    )
    check = yield sh(
        "diff -r staging/etc/app production/etc/app | grep '^[<>] [a-z]'",
        say="Listing what still differs.",
    )
    keys = sorted({ln.split()[1] for ln in check.stdout.splitlines()})
    yield Reply(f"Checked: the remaining differences are only {', '.join(keys)}, all allowlisted.")


_DRIFT_VERIFY = """
import os, re, subprocess, sys
KV = re.compile(r"^([\\w.]+)\\s*=\\s*(.*)$", re.M)
allow = {l.strip() for l in open("drift_allowlist.txt") if l.strip() and not l.startswith("#")}
try:
    report = open("out/drift_report.md").read()
    diff = open("out/staging.diff").read()
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
if "+++ b/staging" not in diff and "+++ staging" not in diff:
    sys.exit("out/staging.diff is not a diff of the staging files")
for name in os.listdir("production/etc/app"):
    git = ["git", "show", f"HEAD:staging/etc/app/{name}"]
    orig = dict(KV.findall(subprocess.run(git, capture_output=True, text=True).stdout))
    s = dict(KV.findall(open(f"staging/etc/app/{name}").read()))
    p = dict(KV.findall(open(f"production/etc/app/{name}").read()))
    for key in set(orig) | set(p):
        if orig.get(key) != p.get(key) and key not in report:
            sys.exit(f"drift report misses {key}")
        if key in allow:
            if key in orig and s.get(key) != orig[key]:
                sys.exit(f"allowlisted {key} was changed")
        elif s.get(key) != p.get(key):
            sys.exit(f"{name}: {key} still differs")
print("ok: staging matches production except allowlisted keys")
"""

# ---------------------------------------------------------------- sysinfra-audit-user-accounts

_SYSTEM_ACCOUNTS = [
    ("root", 0, 0, "/root", "/bin/bash"),
    ("daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin"),
    ("bin", 2, 2, "/bin", "/usr/sbin/nologin"),
    ("sys", 3, 3, "/dev", "/usr/sbin/nologin"),
    ("sync", 4, 65534, "/bin", "/bin/sync"),
    ("games", 5, 60, "/usr/games", "/usr/sbin/nologin"),
    ("man", 6, 12, "/var/cache/man", "/usr/sbin/nologin"),
    ("lp", 7, 7, "/var/spool/lpd", "/usr/sbin/nologin"),
    ("mail", 8, 8, "/var/mail", "/usr/sbin/nologin"),
    ("news", 9, 9, "/var/spool/news", "/usr/sbin/nologin"),
    ("www-data", 33, 33, "/var/www", "/usr/sbin/nologin"),
    ("backup", 34, 34, "/var/backups", "/usr/sbin/nologin"),
    ("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin"),
    ("sshd", 105, 65534, "/run/sshd", "/usr/sbin/nologin"),
    ("postgres", 106, 110, "/var/lib/postgresql", "/bin/bash"),
]


def _audit_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    accounts = list(_SYSTEM_ACCOUNTS)
    humans = rng.sample(
        [
            "alice",
            "bob",
            "carol",
            "dave",
            "erin",
            "frank",
            "grace",
            "heidi",
            "ivan",
            "judy",
            "mallory",
            "niaj",
            "olivia",
            "peggy",
            "rupert",
            "sybil",
            "trent",
            "victor",
            "walter",
            "yara",
        ],
        18,
    )
    for i, h in enumerate(humans):
        accounts.append((h, 1000 + i, 1000 + i, f"/home/{h}", "/bin/bash"))
    dup = 1000 + rng.randrange(len(humans))
    accounts += [
        ("toor", 0, 0, "/root", "/bin/bash"),  # second UID 0
        ("ci-runner", dup, 1100, "/home/ci-runner", "/bin/bash"),  # duplicate UID
        ("legacy", 1101, 1101, "/home/legacy", "/bin/sh"),  # empty password in shadow
        ("olduser", 1102, 1199, "/home/olduser", "/bin/bash"),  # GID with no group
        ("tempadmin", 1103, 1103, "/nonexistent", "/bin/bash"),  # interactive, no home
    ]
    passwd = [f"{n}:x:{u}:{g}:{n.title()}:{h}:{s}" for n, u, g, h, s in accounts]

    def pw(name: str, shell: str) -> str:
        if name == "legacy":
            return ""  # empty password field
        return "!" if shell.endswith("nologin") else f"$6${rng.randrange(16**10):010x}"

    shadow = [f"{n}:{pw(n, s)}:19800:0:99999:7:::" for n, _, _, _, s in accounts]
    gids = sorted({g for _, _, g, _, _ in accounts if g != 1199} | {27, 100})
    names = {g: n for n, _, g, _, _ in accounts}
    group = [
        f"{names.get(g, 'sudo' if g == 27 else 'users' if g == 100 else f'g{g}')}:x:{g}:"
        for g in gids
    ]
    group = [g + (",".join(humans[:2]) if g.startswith("sudo:") else "") for g in group]
    group.insert(len(group) // 2, "docker:x:998")  # truncated line, members field missing
    files = {
        "audit/etc/passwd": "\n".join(passwd) + "\n",
        "audit/etc/shadow": "\n".join(shadow) + "\n",
        "audit/etc/group": "\n".join(group) + "\n",
    }
    return Fixture(files, (_GIT_INIT,)), {}


_AUDIT_V1 = textwrap.dedent(
    """\
    import os
    from collections import defaultdict

    def lines(path):
        return [l.rstrip("\\n") for l in open(path) if l.strip()]

    findings = []  # (severity, finding, offending line)
    passwd = [(l, l.split(":")) for l in lines("audit/etc/passwd")]
    groups = {}
    for l in lines("audit/etc/group"):
        name, _, gid, members = l.split(":")
        groups[int(gid)] = name
    by_uid = defaultdict(list)
    for l, (name, _, uid, gid, gecos, home, shell) in passwd:
        by_uid[int(uid)].append(l)
        if uid == "0" and name != "root":
            findings.append(("CRITICAL", f"extra UID 0 account '{name}'", l))
        if int(gid) not in groups:
            findings.append(("MEDIUM", f"'{name}' has primary GID {gid} but no such group", l))
        if not shell.endswith(("nologin", "false", "sync")) and home in ("", "/nonexistent"):
            findings.append(("LOW", f"interactive account '{name}' has no home directory", l))
    for uid, ls in by_uid.items():
        if len(ls) > 1 and uid != 0:
            findings += [("HIGH", f"duplicate UID {uid}", l) for l in ls]
    for l in lines("audit/etc/shadow"):
        if l.split(":")[1] == "":
            findings.append(("CRITICAL", f"empty password for '{l.split(':')[0]}'", l))
    order = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
    md = ["# Account audit (audit/etc, read-only review)", "",
          "| severity | finding | offending line |", "|---|---|---|"]
    md += [f"| {s} | {f} | `{l}` |" for s, f, l in sorted(findings, key=lambda x: order[x[0]])]
    os.makedirs("out", exist_ok=True)
    open("out/account_audit.md", "w").write("\\n".join(md) + "\\n")
    print(f"{len(passwd)} accounts, {len(findings)} findings")
    """
)


def _audit_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("wc -l audit/etc/*; ls -l audit/etc", say="Looking at the snapshot files"),
        read("audit/etc/passwd", 1, 10, say="and the passwd format."),
    ]
    yield write("audit.py", _AUDIT_V1, say="Writing a read-only audit script.")
    run = yield sh("python3 audit.py")
    if not run.ok:
        # One group line is truncated ('docker:x:998'), so it does not split into 4 fields.
        yield write(
            "audit.py",
            _swap(
                _AUDIT_V1,
                '    name, _, gid, members = l.split(":")\n',
                '    if l.count(":") != 3:\n'
                '        findings.append(("LOW", "malformed group line", l))\n'
                "        continue\n"
                '    name, _, gid, members = l.split(":")\n',
            ),
            say="A group line has only three fields; reporting it as malformed.",
        )
        run = yield sh("python3 audit.py")
    yield Reply(
        f"Audit done ({run.stdout.strip()}); the report with severity and offending line "
        "per finding is in out/account_audit.md. The snapshot files were not modified."
    )
    found, status = yield [
        sh("grep -c '^| [A-Z]' out/account_audit.md", say="Counting findings"),
        sh("git status --short audit/ | wc -l", say="and confirming the sources are untouched."),
    ]
    n, changed = found.stdout.strip() or "?", status.stdout.strip() or "?"
    yield Reply(f"Checked: {n} findings listed; {changed} source files modified.")


_AUDIT_VERIFY = """
import subprocess, sys
if subprocess.run(["git", "diff", "--quiet", "--", "audit"]).returncode:
    sys.exit("the source files were modified")
try:
    report = open("out/account_audit.md").read()
except FileNotFoundError:
    sys.exit("out/account_audit.md is missing")
passwd = open("audit/etc/passwd").read().splitlines()
shadow = open("audit/etc/shadow").read().splitlines()
uids = [l.split(":")[2] for l in passwd]
must = [l for l in passwd if l.startswith("toor:")]
must += [l for l in passwd if uids.count(l.split(":")[2]) > 1 and l.split(":")[2] != "0"]
must += [l for l in shadow if l.split(":")[1] == ""]
must += [l for l in passwd if l.startswith(("olduser:", "tempadmin:"))]
sev = ("critical", "high", "medium", "low")
for line in must:
    hit = [r for r in report.splitlines() if line in r]
    if not hit or not any(s in hit[0].lower() for s in sev):
        sys.exit(f"finding missing or without severity: {line}")
print(f"ok: {len(must)} offending lines reported")
"""

# ---------------------------------------------------------------- sysinfra-apply-sysctl-baseline

_BASELINE = {
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.all.accept_redirects": "0",
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "net.ipv4.tcp_syncookies": "1",
    "kernel.randomize_va_space": "2",
    "fs.protected_symlinks": "1",
}


def _sysctl_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    conf = textwrap.dedent(
        f"""\
        # /etc/sysctl.d/99-custom.conf
        # Local kernel tuning for the web tier.

        # --- network: local tuning (keep) ---
        net.core.somaxconn = {rng.choice([1024, 4096, 8192])}
        net.ipv4.tcp_fin_timeout = {rng.choice([10, 15, 20])}
        net.ipv4.ip_local_port_range = 10240 65000

        # Reverse path filtering
        net.ipv4.conf.all.rp_filter = 0

        # Don't accept ICMP redirects
        net.ipv4.conf.all.accept_redirects = 1

        # --- memory ---
        vm.swappiness = {rng.choice([1, 10, 20])}

        # --- kernel ---
        kernel.kptr_restrict = 1
        kernel.dmesg_restrict = {rng.choice([0, 1])}
        """
    )
    files = {"etc/sysctl.d/99-custom.conf": conf, "baseline.json": json.dumps(_BASELINE, indent=2)}
    return Fixture(files, (_GIT_INIT,)), {}


_SYSCTL_DIFF = textwrap.dedent(
    """\
    \"\"\"Write out/sysctl.diff bringing etc/sysctl.d/99-custom.conf up to baseline.json.\"\"\"
    import difflib, json, os, re

    PATH = "etc/sysctl.d/99-custom.conf"
    baseline = json.load(open("baseline.json"))
    old = open(PATH).read().splitlines(keepends=True)
    new, seen = [], set()
    for line in old:
        m = re.match(r"^([\\w.]+)\\s*=\\s*(.*?)\\s*$", line)
        if m and m.group(1) in baseline:
            seen.add(m.group(1))
            line = f"{m.group(1)} = {baseline[m.group(1)]}\\n"
        new.append(line)
    missing = [k for k in baseline if k not in seen]
    if missing:
        new += ["\\n", "# --- security baseline ---\\n"]
        new += [f"{k} = {baseline[k]}\\n" for k in missing]
    diff = "".join(difflib.unified_diff(old, new, f"a/{PATH}", f"b/{PATH}"))
    os.makedirs("out", exist_ok=True)
    open("out/sysctl.diff", "w").write(diff)
    print(diff, end="")
    """
)


def _sysctl_playbook(ctx: Ctx) -> Playbook:
    base, seen = yield [
        read("baseline.json", say="Reading the baseline"),
        sh(
            "grep -v '^#' etc/sysctl.d/99-custom.conf | grep -v '^$'",
            say="and the effective settings.",
        ),
    ]
    baseline = json.loads(base.stdout) if base.ok else {}
    effective = [ln for ln in seen.stdout.splitlines() if "=" in ln]
    keys = {ln.split("=")[0].strip() for ln in effective}
    body = []
    for ln in effective:
        key = ln.split("=")[0].strip()
        if key in baseline and ln != f"{key} = {baseline[key]}":
            body += [f"-{ln}", f"+{key} = {baseline[key]}"]
        else:
            body.append(f" {ln}")
    body += [f"+{k} = {v}" for k, v in baseline.items() if k not in keys]
    n_old = sum(1 for b in body if not b.startswith("+"))
    n_new = sum(1 for b in body if not b.startswith("-"))
    hand = (
        "--- a/etc/sysctl.d/99-custom.conf\n+++ b/etc/sysctl.d/99-custom.conf\n"
        f"@@ -1,{n_old} +1,{n_new} @@\n" + "\n".join(body) + "\n"
    )
    res = yield patch(hand, say="Writing the diff by hand from the effective settings.")
    if not res.ok:
        # The hand-written hunk skipped the comment lines, so its context matches nothing.
        # Generating the diff from the real file is the fix whatever the file holds, so the
        # generator is written while the full file is read.
        yield [
            read(
                "etc/sysctl.d/99-custom.conf",
                say="The hunk did not match the real file; reading it with its comments",
            ),
            write(
                "scripts/sysctl_diff.py",
                _SYSCTL_DIFF,
                say="and writing a generator that diffs the real file instead.",
            ),
        ]
        gen = yield sh("python3 scripts/sysctl_diff.py")
        res = yield patch(gen.stdout, say="Applying the generated diff.")
    yield Reply(
        f"Applied the baseline ({res.stdout.strip()}); the patch is saved in "
        "out/sysctl.diff for review, and the local tuning lines are untouched."
    )
    _, check = yield [
        sh("git diff --stat", say="Looking at what changed"),
        sh(
            "python3 -c \"import json,re; b=json.load(open('baseline.json'));"
            " c=dict(re.findall(r'^([\\w.]+) = (\\S+)', open('etc/sysctl.d/99-custom.conf')"
            ".read(), re.M)); print(sum(c.get(k)==v for k,v in b.items()), 'of', len(b), "
            "'baseline keys set')\"",
            say="and verifying every baseline key.",
        ),
    ]
    yield Reply(f"Checked: {check.stdout.strip().splitlines()[-1] if check.ok else '?'}.")


_SYSCTL_VERIFY = """
import json, re, subprocess, sys
base = json.load(open("baseline.json"))
conf = open("etc/sysctl.d/99-custom.conf").read()
git = ["git", "show", "HEAD:etc/sysctl.d/99-custom.conf"]
orig = subprocess.run(git, capture_output=True, text=True).stdout
KV = r"^([\\w.]+)\\s*=\\s*(.*?)\\s*$"
pairs = re.findall(KV, conf, re.M)
cur = dict(pairs)
for k, v in base.items():
    if cur.get(k) != v or [p[0] for p in pairs].count(k) != 1:
        sys.exit(f"{k} is not set exactly once to {v}")
for k, v in re.findall(KV, orig, re.M):
    if k not in base and cur.get(k) != v:
        sys.exit(f"local tuning {k} was changed")
for line in orig.splitlines():
    if line.startswith("#") and line not in conf:
        sys.exit(f"comment removed: {line}")
try:
    diff = open("out/sysctl.diff").read()
except FileNotFoundError:
    sys.exit("out/sysctl.diff is missing")
if not re.search(r"^\\+kernel.kptr_restrict *= *2$", diff, re.M):
    sys.exit("out/sysctl.diff is not the applied patch")
print("ok: baseline applied, local tuning kept")
"""

# ---------------------------------------------------------------- sysinfra-resolve-port-conflict

_PORT_SVC = textwrap.dedent(
    """\
    \"\"\"{name} service: serves GET {route} on the port from services/{name}.conf.\"\"\"
    import logging, os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    HERE = os.path.dirname(os.path.abspath(__file__))
    logging.basicConfig(filename=os.path.join(HERE, "{name}.log"), level=logging.INFO,
                        format="%(asctime)s {name} %(levelname)s %(message)s")
    conf = {}
    for line in open(os.path.join(HERE, "{name}.conf")):
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            conf[key.strip()] = value.strip()
    port = int(conf["port"])


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "{route}"
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b"{name} ok\\n" if ok else b"not found\\n")


    try:
        server = HTTPServer(("127.0.0.1", port), Handler)
    except OSError as e:
        logging.error("cannot bind 127.0.0.1:%d: %s", port, e)
        raise SystemExit(1)
    logging.info("listening on 127.0.0.1:%d", port)
    server.serve_forever()
    """
)


def _port_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    base = rng.choice([18090, 18190, 18290])
    files = {
        "services/metrics.py": _PORT_SVC.replace("{name}", "metrics").replace(
            "{route}", "/metrics"
        ),
        "services/admin.py": _PORT_SVC.replace("{name}", "admin").replace(
            "{route}", "/admin/health"
        ),
        "services/metrics.conf": f"# metrics exporter\nport = {base}\n",
        "services/admin.conf": f"# admin API\nport = {base}\n",
        "services/ports_policy.txt": (
            f"Internal services listen on 127.0.0.1, ports {base}-{base + 9}.\n"
            f"Port {base + 1} is reserved for the scheduler; do not use it.\n"
        ),
    }
    return Fixture(files), {}


_BOTH = "python3 services/metrics.py & sleep 0.5; python3 services/admin.py & wait"


def _port_playbook(ctx: Ctx) -> Playbook:
    job = yield start(_BOTH, say="Starting both services in the background.")
    job_id = job.extras.get("job", "")
    probe = yield sh(
        "cat services/*.conf services/ports_policy.txt; sleep 2; echo '--- listening:'; "
        "awk 'NR>1 && $4==\"0A\" {print $2}' /proc/net/tcp; "
        "M=$(sed -n 's/^port *= *//p' services/metrics.conf); "
        "A=$(sed -n 's/^port *= *//p' services/admin.conf); "
        "curl -sf http://127.0.0.1:$M/metrics && curl -sf http://127.0.0.1:$A/admin/health",
        say="Checking the configs, the listening sockets and both endpoints.",
    )
    listening = {
        int(h.split(":")[1], 16)
        for h in re.findall(r"^[0-9A-F]{8}:[0-9A-F]{4}$", probe.stdout, re.M)
    }
    rng_m = re.search(r"ports (\d+)-(\d+)", probe.stdout)
    reserved = {int(p) for p in re.findall(r"Port (\d+) is reserved", probe.stdout)}
    lo, hi = (int(rng_m.group(1)), int(rng_m.group(2))) if rng_m else (0, -1)
    log = yield read("services/admin.log", say="The admin endpoint is not answering; its log:")
    old = re.search(r"127\.0\.0\.1:(\d+): .*in use", log.stdout)
    old_port = old.group(1) if old else str(lo)
    free = next(p for p in range(lo, hi + 1) if p not in listening | reserved)
    stop_old = kill(job_id, say="Stopping the old job to restart both cleanly.")
    if not probe.ok:
        # Both configs say the same port; metrics bound it first, so admin died at startup.
        yield [
            edit(
                "services/admin.conf",
                f"port = {old_port}",
                f"port = {free}",
                say=f"Port {old_port} is taken by metrics; moving admin to free port {free}.",
            ),
            stop_old,
        ]
    else:
        yield stop_old
    job = yield start(_BOTH, say="Restarting both services.")
    job_id = job.extras.get("job", "")
    evidence = next((ln for ln in log.stdout.splitlines() if "in use" in ln), "n/a")
    diagnosis = (
        f"# Port conflict\\n\\nmetrics.conf and admin.conf both set port {old_port}. metrics "
        f"started first and bound it; admin failed at startup. Evidence from services/admin.log:"
        f"\\n\\n    {evidence}\\n\\nListening sockets at the time: {sorted(listening)}.\\n\\n"
        f"Fix: admin.conf now uses port {free}, the first free port in the allowed range "
        f"{lo}-{hi} (reserved: {sorted(reserved)}).\\n"
    )
    both = yield sh(
        f"for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:{free}/ && break; "
        "sleep 0.2; done; "
        f"curl -sf http://127.0.0.1:{old_port}/metrics && "
        f"curl -sf http://127.0.0.1:{free}/admin/health && mkdir -p out && "
        f"printf '{diagnosis}' > out/port_conflict.md",
        say="Checking both endpoints and recording the diagnosis.",
    )
    yield kill(job_id, say="Stopping both services.")
    yield Reply(
        f"Metrics keeps port {old_port}; admin moved to {free} (it had failed with "
        f"'Address already in use'). Both answered ({both.stdout.strip().replace(chr(10), ', ')}). "
        "Diagnosis in "
        "out/port_conflict.md; both services are stopped."
    )
    final = yield output(job_id, say="Confirming the job has ended.")
    yield Reply(f"Checked: the service job is running={final.extras.get('running')}.")


_PORT_VERIFY = (
    _NO_SERVICE_LEFT
    + """
import re, sys
policy = open("services/ports_policy.txt").read()
lo, hi = map(int, re.search(r"ports (\\d+)-(\\d+)", policy).groups())
reserved = int(re.search(r"Port (\\d+) is reserved", policy).group(1))
m_port = int(re.search(r"port = (\\d+)", open("services/metrics.conf").read()).group(1))
a_port = int(re.search(r"port = (\\d+)", open("services/admin.conf").read()).group(1))
if m_port != lo:
    sys.exit("metrics.conf should keep its port")
if a_port == m_port or a_port == reserved or not lo <= a_port <= hi:
    sys.exit(f"admin port {a_port} conflicts or is outside the allowed range")
try:
    md = open("out/port_conflict.md").read()
except FileNotFoundError:
    sys.exit("out/port_conflict.md is missing")
if "in use" not in md or str(a_port) not in md or str(m_port) not in md:
    sys.exit("diagnosis lacks the evidence or the ports")
if running("metrics.py") or running("admin.py"):
    sys.exit("services are still running")
print(f"ok: admin moved to {a_port}")
"""
)

# ---------------------------------------------------------------- sysinfra-profile-memory-growth

_LEAKY = textwrap.dedent(
    """\
    \"\"\"Synthetic request loop with a response cache.\"\"\"
    import hashlib, time

    CACHE = {{}}


    def handle(i):
        key = f"req-{{i}}"
        body = hashlib.sha256(key.encode()).hexdigest() * {reps}
        CACHE[key] = body  # responses are cached but never evicted
        return len(body)


    print("leaky service started", flush=True)
    i = 0
    while True:
        handle(i)
        i += 1
        if i % 10 == 0:
            time.sleep(0.05)
    """
)

_SAMPLER = textwrap.dedent(
    """\
    \"\"\"Sample VmRSS of a PID every 0.1 s: python3 sample_rss.py PID [SECONDS].\"\"\"
    import csv, os, sys, time
    from datetime import datetime

    INTERVAL = 0.1
    pid, seconds = int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    rows, t0 = [], time.time()
    for _ in range(round(seconds / INTERVAL)):
        with open(f"/proc/{pid}/status") as fh:
            rss = next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))
        now = time.time()
        stamp = datetime.fromtimestamp(now).isoformat(timespec="milliseconds")
        rows.append((round(now - t0, 3), stamp, rss))
        time.sleep(INTERVAL)
    xs, ys = [r[0] for r in rows], [r[2] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    os.makedirs("out", exist_ok=True)
    with open("out/rss_samples.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["elapsed_s", "timestamp", "rss_kb"])
        w.writerows(rows)
    print(f"samples={len(rows)} first_kb={ys[0]} last_kb={ys[-1]} slope_kb_per_s={slope:.1f}")
    """
)


def _leak_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    return Fixture({"svc/leaky.py": _LEAKY.format(reps=rng.choice([48, 64, 80]))}), {}


def _leak_playbook(ctx: Ctx) -> Playbook:
    _, job = yield [
        read("svc/leaky.py", say="Reading the service loop"),
        start("python3 svc/leaky.py", say="and starting it in the background."),
    ]
    job_id = job.extras.get("job", "")
    yield write("sample_rss.py", _SAMPLER, say="Writing a /proc sampler with a linear fit.")
    run = yield sh(
        'PID=$(pgrep -f leaky.py); python3 sample_rss.py "$PID" 3',
        timeout_s=15,
        say="Sampling RSS every 0.1 s for 3 s.",
    )
    if not run.ok:
        # pgrep -f also matches this very shell, whose command line contains 'leaky.py'.
        # A bracketed pattern does not match its own command line. (The job's PID would work
        # too, but a PID baked into the call would not survive Stage 3's replay.)
        run = yield sh(
            "python3 sample_rss.py \"$(pgrep -f 'svc/[l]eaky[.]py')\" 3",
            timeout_s=15,
            say="pgrep matched my own shell too; using a pattern that cannot match itself.",
        )
    stats = dict(kv.split("=") for kv in run.stdout.split()) if run.ok else {}
    slope = float(stats.get("slope_kb_per_s", 0))
    verdict = "LEAK" if slope > 50 else "no leak"
    yield [
        kill(job_id, say="Sampling done; stopping the service"),
        write(
            "out/memory_verdict.md",
            f"# Memory verdict for svc/leaky.py: {verdict}\n\n"
            f"- {stats.get('samples')} RSS samples, one every 0.1 s (out/rss_samples.csv)\n"
            f"- RSS went from {stats.get('first_kb')} KB to {stats.get('last_kb')} KB\n"
            f"- Linear trend: {slope:.1f} KB/s ({slope * 60 / 1024:.1f} MB/min)\n"
            "- Cause: CACHE in handle() stores every response and never evicts; growth is "
            "linear and unbounded, so this is a leak.\n",
            say="and writing the verdict.",
        ),
    ]
    yield Reply(
        f"Verdict: {verdict}. RSS grew at {slope:.1f} KB/s ({run.stdout.strip()}); "
        "samples in out/rss_samples.csv, verdict in out/memory_verdict.md. The service "
        "is stopped."
    )
    state = yield poll(job_id, say="Confirming the service process is gone.")
    yield Reply(f"Checked: the service job is running={state.extras.get('running')}.")


_LEAK_VERIFY = (
    _NO_SERVICE_LEFT
    + """
import csv, re, sys
try:
    rows = list(csv.DictReader(open("out/rss_samples.csv")))
    verdict = open("out/memory_verdict.md").read()
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
if len(rows) < 25 or not all(r.get("timestamp") for r in rows):
    sys.exit(f"expected ~30 timestamped samples, got {len(rows)}")
xs = [float(r["elapsed_s"]) for r in rows]
ys = [float(r["rss_kb"]) for r in rows]
mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
nums = [float(n) for n in re.findall(r"\\d+(?:\\.\\d+)?", verdict)]
if "leak" not in verdict.lower() or not any(abs(n - slope) <= 0.1 * slope for n in nums):
    sys.exit(f"verdict must call the leak and give the growth rate (~{slope:.0f} KB/s)")
if running("svc/leaky.py"):
    sys.exit("svc/leaky.py is still running")
print(f"ok: {len(rows)} samples, {slope:.0f} KB/s")
"""
)


RECIPES = [
    TaskRecipe(
        task_id="sysinfra-disk-usage-report",
        fixture=_disk_fixture,
        playbook=_disk_playbook,
        verify=_DISK_VERIFY,
        failure_mode="os.stat follows a dangling symlink under var/cache and raises",
    ),
    TaskRecipe(
        task_id="sysinfra-analyze-auth-failures",
        fixture=_auth_fixture,
        playbook=_auth_playbook,
        verify=_AUTH_VERIFY,
        failure_mode="reads auth.log as UTF-8; an attacker-supplied user name has raw bytes",
    ),
    TaskRecipe(
        task_id="sysinfra-fix-service-unit",
        fixture=_unit_fixture,
        playbook=_unit_playbook,
        verify=_UNIT_VERIFY,
        failure_mode="fixes the visible errors but overlooks the missing WorkingDirectory",
    ),
    TaskRecipe(
        task_id="sysinfra-enforce-permission-policy",
        fixture=_perm_fixture,
        playbook=_perm_playbook,
        verify=_PERM_VERIFY,
        failure_mode="passes the policy's octal strings ('0600') straight to os.chmod",
    ),
    TaskRecipe(
        task_id="sysinfra-kill-runaway-process",
        fixture=_runaway_fixture,
        playbook=_runaway_playbook,
        verify=_RUNAWAY_VERIFY,
        failure_mode="sends SIGTERM, which the busy worker traps and never acts on",
    ),
    TaskRecipe(
        task_id="sysinfra-fix-proxy-upstreams",
        fixture=_proxy_fixture,
        playbook=_proxy_playbook,
        verify=_PROXY_VERIFY,
        failure_mode="the check script parses every upstream as host:port; one is a unix socket",
    ),
    TaskRecipe(
        task_id="sysinfra-correlate-error-spike",
        fixture=_spike_fixture,
        playbook=_spike_playbook,
        verify=_SPIKE_VERIFY,
        failure_mode="parses every log's timestamp as ISO 8601; two instances use other formats",
    ),
    TaskRecipe(
        task_id="sysinfra-health-check-services",
        fixture=_health_fixture,
        playbook=_health_playbook,
        verify=_HEALTH_VERIFY,
        failure_mode="assumes ports.json maps names to port numbers; it maps them to objects",
    ),
    TaskRecipe(
        task_id="sysinfra-reconcile-config-drift",
        fixture=_drift_fixture,
        playbook=_drift_playbook,
        verify=_DRIFT_VERIFY,
        failure_mode="difflib on splitlines() without lineterm='' yields a malformed patch",
    ),
    TaskRecipe(
        task_id="sysinfra-audit-user-accounts",
        fixture=_audit_fixture,
        playbook=_audit_playbook,
        verify=_AUDIT_VERIFY,
        failure_mode="unpacks every group line into four fields; one line is truncated",
    ),
    TaskRecipe(
        task_id="sysinfra-apply-sysctl-baseline",
        fixture=_sysctl_fixture,
        playbook=_sysctl_playbook,
        verify=_SYSCTL_VERIFY,
        failure_mode="hand-writes the hunk from the comment-stripped view, so it does not apply",
    ),
    TaskRecipe(
        task_id="sysinfra-resolve-port-conflict",
        fixture=_port_fixture,
        playbook=_port_playbook,
        verify=_PORT_VERIFY,
        failure_mode="probes admin on the shared port and gets metrics' 404",
    ),
    TaskRecipe(
        task_id="sysinfra-profile-memory-growth",
        fixture=_leak_fixture,
        playbook=_leak_playbook,
        verify=_LEAK_VERIFY,
        failure_mode="PID=$(pgrep -f leaky.py) also matches the sampling shell itself",
    ),
]
