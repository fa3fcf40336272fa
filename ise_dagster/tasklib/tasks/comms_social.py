"""Comms-Social recipes: mailboxes, chat exports and outboxes as local files (nothing is sent)."""

from __future__ import annotations

import json
import random
import textwrap
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from ise_dagster.tasklib.base import Ctx, Fixture, Playbook, Reply, TaskRecipe
from ise_dagster.tasklib.dsl import edit, kill, output, patch, read, sh, start, write
from ise_dagster.tasklib.dsl import swap as _swap

FIRST = ["Maria", "Jonas", "Priya", "Tomasz", "Aiko", "Lucas", "Fatima", "Oskar", "Chen",
         "Elena", "Kwame", "Sofia", "Mateo", "Ingrid", "Ravi", "Nadia", "Hugo", "Leila",
         "Bruno", "Yara", "Emil", "Zofia", "Omar", "Greta", "Tariq", "Lena", "Pavel", "Mina",
         "Dario", "Hanna", "Felix", "Amara"]  # fmt: skip
LAST = ["Lopez", "Becker", "Nair", "Kowalski", "Tanaka", "Moreau", "Haddad", "Lind", "Wei",
        "Petrova", "Mensah", "Rossi", "Silva", "Berg", "Iyer", "Karimi", "Dubois", "Farah",
        "Costa", "Novak", "Brandt", "Wojcik", "Saleh", "Olsen", "Aziz", "Vogel", "Horak",
        "Park"]  # fmt: skip
CUSTOMER_DOMAINS = ["globex.example", "initech.example", "umbrella.example", "hooli.example",
                    "vandelay.example", "stark.example"]  # fmt: skip


def _people(rng: random.Random, n: int) -> list[str]:
    """n distinct 'First Last' names."""
    names: list[str] = []
    while len(names) < n:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if name not in names:
            names.append(name)
    return names


def _addr(name: str, domain: str) -> str:
    return f"{name.lower().replace(' ', '.')}@{domain}"


def _eml(headers: list[tuple[str, str]], body: str) -> str:
    lines = [f"{k}: {v}" for k, v in headers]
    return "\n".join(lines) + "\n\n" + body.rstrip("\n") + "\n"


def _epoch(day: str, hour: int, minute: int) -> float:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00+00:00").timestamp()


# ---------------------------------------------------------------- comms-triage-maildir-inbox

_TRIAGE_URGENT_CUSTOMER = [
    ("URGENT: checkout is failing for all our users", "Since this morning every checkout "
     "attempt returns an error. We are losing orders, please call me."),
    ("Our dashboard is down", "The analytics dashboard has been down for two hours and our "
     "board meeting starts soon. Please escalate."),
    ("Need help ASAP with the data export", "The nightly export we rely on did not run. "
     "We have to send it to our auditors, please look into it."),
    ("Payment API outage on our side", "All payment calls time out with a 504. Our shop is "
     "effectively closed until this is fixed."),
]  # fmt: skip
_TRIAGE_DEADLINE_COLLEAGUE = [
    ("Contract review", "Legal needs your comments on the Globex contract by end of day, "
     "otherwise the signing slips to next month."),
    ("Budget numbers for Q1", "Finance asked for the Q1 headcount numbers by today 16:00. "
     "The sheet is in the shared drive."),
    ("Slides for the customer visit", "Please send me your two slides by tonight so I can "
     "merge the deck before the flight."),
]  # fmt: skip
_TRIAGE_QUESTION = [
    ("Question about our invoice", "Could you explain the extra line item on invoice 4471? "
     "It was not in the quote."),
    ("Renewal options", "Our licence renews in January. Is there a discount for a two-year "
     "term?"),
    ("SSO setup", "We want to connect our identity provider. Which SAML attributes do you "
     "need from us?"),
    ("Seat count", "Can we move five seats from the Berlin team to the Paris team without "
     "a new order?"),
    ("Lunch and learn", "Would you present the new search feature at Thursday's lunch and "
     "learn?"),
    ("Code review", "Could you take a look at my pull request for the retry logic when you "
     "have a moment?"),
    ("Conference talk", "The CFP closes in three weeks. Do you want to co-author a talk "
     "with me?"),
]  # fmt: skip
_TRIAGE_INFO_COLLEAGUE = [
    ("Team lunch moved", "Team lunch moves to Friday this week, same place."),
    ("Offsite photos", "The photos from the offsite are in the shared album now."),
    ("New coffee machine", "Facilities installed the new coffee machine on the 3rd floor."),
    ("Holiday", "Reminder that I am on holiday from the 20th, Sam covers for me."),
]  # fmt: skip
_TRIAGE_AUTO = [
    ("notifications@ci.acme.example", "[ci] build #{n} passed on main",
     "All 412 tests passed in 6m12s."),
    ("noreply@calendar.example", "Invitation accepted: weekly sync",
     "Sam Ortiz accepted your invitation."),
    ("no-reply@newsletter.example", "This week in cloud: {n} stories",
     "Our picks of the week, curated for you."),
    ("alerts@status.acme.example", "[RESOLVED] outage in eu-west-1",
     "The incident opened at 03:12 UTC is resolved. No action needed."),
    ("noreply@github.example", "[acme/api] New release v2.{n}.0",
     "A new release was published by the release bot."),
    ("notifications@billing.acme.example", "Your monthly usage report",
     "Usage for last month is attached to your account page."),
]  # fmt: skip


def _triage_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    people = _people(rng, 24)
    msgs: list[tuple[str, str, str, str]] = []  # (from, subject, body, charset)
    for subj, body in rng.sample(_TRIAGE_URGENT_CUSTOMER, 3):
        name = people.pop()
        msgs.append((f"{name} <{_addr(name, rng.choice(CUSTOMER_DOMAINS))}>", subj, body, ""))
    for subj, body in rng.sample(_TRIAGE_DEADLINE_COLLEAGUE, 2):
        name = people.pop()
        msgs.append((f"{name} <{_addr(name, 'acme.example')}>", subj, body, ""))
    for subj, body in rng.sample(_TRIAGE_QUESTION, 6):
        name = people.pop()
        domain = "acme.example" if "Could you" in body else rng.choice(CUSTOMER_DOMAINS)
        msgs.append((f"{name} <{_addr(name, domain)}>", subj, body, ""))
    for subj, body in rng.sample(_TRIAGE_INFO_COLLEAGUE, 3):
        name = people.pop()
        msgs.append((f"{name} <{_addr(name, 'acme.example')}>", subj, body, ""))
    for _ in range(10):
        sender, subj, body = rng.choice(_TRIAGE_AUTO)
        msgs.append((sender, subj.format(n=rng.randrange(100, 999)), body, ""))
    # A French customer whose client sends raw ISO-8859-1 bytes (8bit transfer encoding).
    msgs.append(
        (
            "Hélène Marchand <helene.marchand@exemple.fr>",
            "Question sur la facture",
            "Bonjour, pourriez-vous préciser la date d'échéance de la facture 5120 ?",
            "iso-8859-1",
        )
    )
    rng.shuffle(msgs)
    files: dict[str, str | bytes] = {}
    base = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    for i, (sender, subj, body, charset) in enumerate(msgs):
        when = base + timedelta(minutes=37 * i + rng.randrange(30))
        stamp = int(when.timestamp())
        name = f"mail/Maildir/new/{stamp}.M{100 + i}P{4000 + rng.randrange(999)}.mx1"
        if charset:
            from_hdr = "=?iso-8859-1?q?H=E9l=E8ne_Marchand?= <helene.marchand@exemple.fr>"
            headers = [("From", from_hdr), ("To", "support@acme.example"),
                       ("Subject", subj), ("Date", format_datetime(when)),
                       ("Message-ID", f"<{stamp}.{i}@exemple.fr>"), ("MIME-Version", "1.0"),
                       ("Content-Type", f"text/plain; charset={charset}"),
                       ("Content-Transfer-Encoding", "8bit")]  # fmt: skip
            files[name] = _eml(headers, body).encode(charset)
        else:
            headers = [("From", sender), ("To", "me@acme.example"), ("Subject", subj),
                       ("Date", format_datetime(when)),
                       ("Message-ID", f"<{stamp}.{i}@mx1.example>"), ("MIME-Version", "1.0"),
                       ("Content-Type", "text/plain; charset=utf-8")]  # fmt: skip
            files[name] = _eml(headers, body)
    for sub in ("cur", "tmp"):
        files[f"mail/Maildir/{sub}/.keep"] = ""
    return Fixture(files), {"messages": len(msgs)}


_TRIAGE_V1 = textwrap.dedent(
    """\
    import email, os, re
    from email import policy
    from email.utils import parseaddr

    NEW = "mail/Maildir/new"
    AUTO = re.compile(r"^(noreply|no-reply|notifications|alerts)@", re.I)
    URGENT = re.compile(r"\\b(urgent|outage|down|asap)\\b", re.I)
    DEADLINE = re.compile(r"\\bby (today|tonight|end of day|EOD)\\b", re.I)
    ORDER = {"urgent": 0, "needs-reply": 1, "fyi": 2}


    def load(path):
        with open(path) as f:
            return email.message_from_file(f, policy=policy.default)


    def triage(msg):
        sender = parseaddr(str(msg["From"]))[1]
        subject = str(msg["Subject"] or "")
        body = msg.get_body(preferencelist=("plain",)).get_content()
        if AUTO.match(sender):
            return "fyi", f"automated notification from {sender}, nothing to do"
        if m := URGENT.search(subject):
            return "urgent", f"the subject flags it as '{m.group(1).lower()}'"
        if m := DEADLINE.search(body):
            return "urgent", f"the body sets a deadline ('{m.group(0)}')"
        if "?" in body:
            return "needs-reply", f"{sender} asks a question that needs an answer"
        return "fyi", "informational message without a question or deadline"


    rows = []
    for name in sorted(os.listdir(NEW)):
        msg = load(os.path.join(NEW, name))
        category, reason = triage(msg)
        sender, subject = str(msg["From"]), str(msg["Subject"])
        rows.append((ORDER[category], name, category, sender, subject, reason))
    rows.sort()
    os.makedirs("out", exist_ok=True)
    with open("out/triage.md", "w") as f:
        f.write(f"# Triage of {NEW} ({len(rows)} messages, urgent first)\\n\\n")
        for _, name, category, sender, subject, reason in rows:
            f.write(f"- {category} | {name} | {sender} | {subject} | {reason}\\n")
    counts = {c: sum(r[2] == c for r in rows) for c in ORDER}
    print(", ".join(f"{n} {c}" for c, n in counts.items()))
    """
)
_TRIAGE_V2 = _swap(
    _TRIAGE_V1,
    "    with open(path) as f:\n        return email.message_from_file(f, policy=policy.default)",
    "    with open(path, 'rb') as f:\n"
    "        return email.message_from_binary_file(f, policy=policy.default)",
)


def _triage_playbook(ctx: Ctx) -> Playbook:
    listing = yield sh(
        "ls mail/Maildir/new | wc -l && ls mail/Maildir/new | head -3",
        say="Counting the unread messages first.",
    )
    first = listing.stdout.splitlines()[1] if listing.ok else ""
    yield read(f"mail/Maildir/new/{first}", say="Looking at one message's headers.")
    yield write("triage.py", _TRIAGE_V1, say="Writing a triage script with explicit rules.")
    run = yield sh("python3 triage.py")
    if not run.ok:
        # One message is raw ISO-8859-1 (8bit); reading it as UTF-8 text blows up.
        yield write(
            "triage.py",
            _TRIAGE_V2,
            say="One message is not UTF-8; parsing the raw bytes with the email package instead.",
        )
        run = yield sh("python3 triage.py")
    yield Reply(
        f"Triaged all unread messages into out/triage.md ({run.stdout.strip()}), urgent first, "
        "each with a one-sentence reason. The Maildir was only read."
    )
    report, maildir = yield [
        sh(
            "grep -c '^- ' out/triage.md; grep -m3 '^- ' out/triage.md",
            say="Checking there is one line per message and nothing moved out of new/.",
        ),
        sh("ls mail/Maildir/new | wc -l; ls mail/Maildir/cur | wc -l"),
    ]
    lines = [
        report.stdout.split("\n")[0] if report.ok else "?",
        maildir.stdout.split("\n")[0] if maildir.ok else "?",
    ]
    yield Reply(
        f"Checked: {lines[0]} report lines for {lines[1]} messages still in new/, cur/ untouched; "
        "the urgent ones head the list."
    )


_TRIAGE_VERIFY = r"""
import email, os, re, sys
from email import policy
from email.utils import parseaddr
NEW = "mail/Maildir/new"
AUTO = re.compile(r"^(noreply|no-reply|notifications|alerts)@", re.I)
def expected(msg):
    sender = parseaddr(str(msg["From"]))[1]
    subject = str(msg["Subject"] or "")
    body = msg.get_body(preferencelist=("plain",)).get_content()
    if AUTO.match(sender):
        return "fyi"
    if re.search(r"\b(urgent|outage|down|asap)\b", subject, re.I):
        return "urgent"
    if re.search(r"\bby (today|tonight|end of day|EOD)\b", body, re.I):
        return "urgent"
    return "needs-reply" if "?" in body else "fyi"
names = sorted(os.listdir(NEW))
if len(names) < 20 or any(":2," in n for n in names):
    sys.exit("the Maildir new/ folder was modified")
if [n for n in os.listdir("mail/Maildir/cur") if not n.startswith(".")]:
    sys.exit("messages were moved to cur/")
try:
    lines = open("out/triage.md", encoding="utf-8").read().splitlines()
except FileNotFoundError:
    sys.exit("out/triage.md is missing")
order = []
for name in names:
    with open(os.path.join(NEW, name), "rb") as f:
        msg = email.message_from_binary_file(f, policy=policy.default)
    hits = [i for i, line in enumerate(lines) if name in line]
    if len(hits) != 1:
        sys.exit(f"{name}: expected one report line, found {len(hits)}")
    line = lines[hits[0]]
    m = re.search(r"\b(urgent|needs-reply|fyi)\b", line, re.I)
    if not m or m.group(1).lower() != expected(msg):
        sys.exit(f"{name}: wrong category in {line!r}, expected {expected(msg)}")
    if len(line.replace(name, "").split()) < 6:
        sys.exit(f"{name}: no reason given in {line!r}")
    order.append((hits[0], m.group(1).lower()))
urgent = [i for i, c in order if c == "urgent"]
other = [i for i, c in order if c != "urgent"]
if not urgent or max(urgent) > min(other):
    sys.exit("urgent messages are not listed first")
print(f"ok: {len(names)} messages triaged, {len(urgent)} urgent first")
"""


# ---------------------------------------------------------------- comms-draft-delay-replies

_DELAY_RE = r"\b(delay|delayed|late|not arrived|hasn't arrived|still waiting|where is my order)\b"
_DELAY_MAILS = [
    ("Where is my order?", "I ordered two weeks ago and the parcel hasn't arrived yet."),
    ("Order delayed?", "The tracking page has not changed for days. Is my order delayed?"),
    ("Still waiting for my package", "I am still waiting for my package, can you check?"),
    ("Delivery is late", "My delivery is late and I need it for a birthday on Saturday."),
    ("Parcel not arrived", "The parcel has not arrived although the estimate was Monday."),
    ("Any news on my delivery?", "Is there a delay with my delivery? Nothing has arrived."),
    ("Shipping delay", "I got an email about a shipping delay. When will it arrive?"),
]  # fmt: skip
_OTHER_MAILS = [
    ("Invoice copy needed", "Could you send me a PDF copy of my last invoice?"),
    ("Change of billing address", "We moved offices, please update the billing address."),
    ("Size question", "Does the jacket run small? I usually wear a medium."),
    ("Loved the product!", "Just wanted to say the lamp looks great in our living room."),
    ("Password reset not working", "The reset link in your email expired immediately."),
    ("Gift wrapping", "Do you offer gift wrapping for orders placed this week?"),
    ("Discount code", "My newsletter discount code is rejected at checkout."),
    ("Return label", "How do I print a return label for the blue vase?"),
]  # fmt: skip


def _delay_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = _people(rng, 30)
    lines, inbox = ["order_id,customer_email,status,eta"], []
    n_delay = 0
    for i, name in enumerate(names):
        email_addr = _addr(name, rng.choice(CUSTOMER_DOMAINS))
        is_delay = i % 3 == 0
        status = "delayed" if is_delay else rng.choice(["shipped", "processing", "delivered"])
        eta = f"2026-11-{rng.randrange(10, 28):02d}"
        lines.append(f"ORD-{rng.randrange(10000, 99999)},{email_addr},{status},{eta}")
        subject, body = rng.choice(_DELAY_MAILS if is_delay else _OTHER_MAILS)
        n_delay += is_delay
        shown = email_addr if rng.random() < 0.6 else email_addr.title()  # case varies
        inbox.append(
            {
                "id": 500 + i,
                "from": f'"{name}" <{shown}>',
                "subject": subject,
                "body": f"Hello,\n\n{body}\n\nThanks,\n{name.split()[0]}",
                "message_id": f"<{rng.randrange(10**9)}.{i}@mail.{email_addr.split('@')[1]}>",
            }
        )
    rng.shuffle(inbox)
    template = textwrap.dedent(
        """\
        Hi {name},

        Thank you for your patience, and sorry that order {order_id} is taking longer than
        planned. Our carrier now expects to deliver it on {eta}. You will get a tracking
        update as soon as the parcel moves again.

        Best regards,
        The Shop Support Team
        """
    )
    files = {
        "mail/inbox.json": json.dumps(inbox, indent=2) + "\n",
        "orders.csv": "\n".join(lines[:1] + sorted(lines[1:])) + "\n",
        "templates/delay_reply.txt": template,
    }
    return Fixture(files), {"delay_emails": n_delay}


_DRAFT_V1 = textwrap.dedent(
    f"""\
    import csv, json, os, re
    from email.message import EmailMessage

    DELAY = re.compile(r"{_DELAY_RE}", re.I)
    inbox = json.load(open("mail/inbox.json"))
    orders = {{r["customer_email"]: r for r in csv.DictReader(open("orders.csv"))}}
    template = open("templates/delay_reply.txt").read()
    os.makedirs("drafts", exist_ok=True)
    drafted = skipped = 0
    for mail in inbox:
        if not DELAY.search(mail["subject"] + " " + mail["body"]):
            skipped += 1
            continue
        order = orders[mail["from"]]
        name = mail["from"].split('"')[1]
        addr = order["customer_email"]
        msg = EmailMessage()
        msg["From"] = "Shop Support <support@shop.example>"
        msg["To"] = f"{{name}} <{{addr}}>"
        msg["Subject"] = "Re: " + mail["subject"]
        msg["In-Reply-To"] = mail["message_id"]
        msg["References"] = mail["message_id"]
        msg.set_content(template.format(name=name.split()[0], order_id=order["order_id"],
                                        eta=order["eta"]))
        with open(f"drafts/reply-{{mail['id']}}.eml", "w") as f:
            f.write(msg.as_string())
        drafted += 1
    print(f"{{drafted}} drafts written, {{skipped}} unrelated emails skipped")
    """
)
_DRAFT_V2 = _swap(
    _swap(
        _DRAFT_V1, "from email.message ", "from email.utils import parseaddr\nfrom email.message "
    ),
    '    order = orders[mail["from"]]\n    name = mail["from"].split(\'"\')[1]\n',
    '    name, sender = parseaddr(mail["from"])\n    order = orders[sender.lower()]\n',
)


def _delay_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "head -c 600 mail/inbox.json; echo; head -3 orders.csv; jq length mail/inbox.json",
            say="Looking at the inbox format and the orders file.",
        ),
        read("templates/delay_reply.txt", say="Reading the reply template."),
    ]
    yield write("draft_replies.py", _DRAFT_V1, say="Writing a script that drafts the replies.")
    run = yield sh("python3 draft_replies.py")
    if not run.ok:
        # The "from" field is '"Name" <Addr>' with varying case; orders.csv keys on bare emails.
        yield write(
            "draft_replies.py",
            _DRAFT_V2,
            say="The from field carries a display name; parsing the address and lowercasing it.",
        )
        run = yield sh("rm -rf drafts && python3 draft_replies.py")
    yield Reply(f"Drafted the delay replies in drafts/: {run.stdout.strip()}.")
    headers, braces = yield [
        sh(
            "ls drafts | wc -l; f=$(ls drafts/*.eml | head -1); "
            "grep -E '^(To|Subject|In-Reply-To):' $f",
            say="Spot-checking one draft's headers and looking for unfilled placeholders.",
        ),
        sh("grep -c '{' drafts/*.eml | grep -v ':0' | wc -l"),
    ]
    counts = [
        headers.stdout.split()[0] if headers.ok and headers.stdout.split() else "?",
        braces.stdout.strip() if braces.ok else "?",
    ]
    yield Reply(
        f"Checked: {counts[0]} .eml drafts with To, Subject and In-Reply-To set; "
        f"{counts[-1]} drafts contain a leftover brace."
    )


_DELAY_VERIFY = r"""
import csv, email, glob, json, re, sys
from email import policy
from email.utils import parseaddr
DELAY = re.compile(r"\b(delay|delayed|late|not arrived|hasn't arrived|still waiting"
                   r"|where is my order)\b", re.I)
inbox = json.load(open("mail/inbox.json"))
orders = {r["customer_email"].lower(): r for r in csv.DictReader(open("orders.csv"))}
expected = {m["message_id"]: m for m in inbox if DELAY.search(m["subject"] + " " + m["body"])}
drafts = glob.glob("drafts/*.eml")
if not drafts:
    sys.exit("no .eml drafts in drafts/")
seen = set()
for path in drafts:
    msg = email.message_from_binary_file(open(path, "rb"), policy=policy.default)
    irt = str(msg["In-Reply-To"] or "").strip()
    if irt not in expected:
        sys.exit(f"{path}: In-Reply-To {irt!r} is not a delivery-delay email")
    if irt in seen:
        sys.exit(f"{path}: second draft for {irt}")
    seen.add(irt)
    mail = expected[irt]
    name, addr = parseaddr(mail["from"])
    order = orders[addr.lower()]
    if parseaddr(str(msg["To"]))[1].lower() != addr.lower():
        sys.exit(f"{path}: To is {msg['To']}, expected {addr}")
    subject = str(msg["Subject"])
    if not subject.lower().startswith("re:") or mail["subject"] not in subject:
        sys.exit(f"{path}: bad Subject {subject!r}")
    body = msg.get_body(preferencelist=("plain",)).get_content()
    for want in (name.split()[0], order["order_id"], order["eta"]):
        if want not in body:
            sys.exit(f"{path}: body does not mention {want!r}")
    if re.search(r"\{\w+\}", body):
        sys.exit(f"{path}: unfilled placeholder in body")
if seen != set(expected):
    sys.exit(f"missing drafts for {len(set(expected) - seen)} delay emails")
print(f"ok: {len(seen)} drafts, {len(inbox) - len(seen)} emails skipped")
"""


# ---------------------------------------------------------------- comms-summarize-release-channel

_RELEASE_DECISIONS = [
    "we ship 4.2 on Thursday without the search rewrite",
    "main is frozen from Wednesday noon until the tag",
    "support for Python 3.8 is dropped in this release",
    "the changelog moves to the keep-a-changelog format",
    "the rollback plan is to redeploy 4.1.3 from the cache",
    "the beta flag stays off for EU customers",
    "release notes go out together with the blog post",
    "rc3 is the last release candidate",
]
_RELEASE_ACTIONS = [
    "draft the release notes",
    "bump the version in setup.cfg",
    "update the migration guide",
    "tag rc3 once CI is green",
    "check the Windows installer",
    "tell support about the freeze",
    "book the go/no-go meeting",
    "archive the 4.0 docs",
]
_RELEASE_CHATTER = [
    "morning all",
    "rc2 is on staging now",
    "anyone else seeing the flaky upload test?",
    "looking into it",
    "thanks!",
    "CI is slow today",
    "I will be late for standup",
    "nice work on the migration script",
]


def _release_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = _people(rng, 6)
    users = [
        {
            "id": f"U0{rng.randrange(10**6, 10**7)}",
            "name": n.lower().replace(" ", "."),
            "real_name": n,
            "profile": {"display_name": n.split()[0]},
        }
        for n in names
    ]
    ids = [u["id"] for u in users]
    days = [(datetime(2026, 10, 30) + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(11)]
    week = days[3:10]  # 2026-11-02 .. 2026-11-08
    msgs: list[dict] = []

    def post(day: str, text: str, user: str | None = None, after: float = 0.0, **extra) -> dict:
        ts = max(
            _epoch(day, rng.randrange(8, 18), rng.randrange(60)), after + rng.randrange(300, 3000)
        )
        m = {"type": "message", "text": text, "ts": f"{ts + rng.randrange(10**6) / 1e6:.6f}"}
        if user:
            m["user"] = user
        m.update(extra)
        msgs.append(m)
        return m

    decisions = rng.sample(_RELEASE_DECISIONS, 7)
    for i, text in enumerate(decisions):
        day = rng.choice(week) if i < 5 else rng.choice(days[:3] + days[10:])
        post(day, f"Decision: {text}", rng.choice(ids))
    actions = rng.sample(_RELEASE_ACTIONS, 7)
    for i, text in enumerate(actions):
        owner = rng.choice(ids)
        if i == 6:
            post(rng.choice(days[:3]), f"Action: <@{owner}> to {text}", rng.choice(ids))
            continue
        k = rng.randrange(0, 5) if i < 2 else rng.randrange(0, 7)
        parent = post(week[k], f"Action: <@{owner}> to {text}", rng.choice(ids))
        if i < 2:  # closed later in the week by the owner, in the thread
            parent["thread_ts"], parent["reply_count"] = parent["ts"], 1
            reply_day = week[rng.randrange(k, 7)]
            post(reply_day, f"Done, {text} is finished", owner, float(parent["ts"]),
                 thread_ts=parent["ts"], parent_user_id=parent["user"])  # fmt: skip
    for day in days:
        for _ in range(rng.randrange(2, 4)):
            post(day, rng.choice(_RELEASE_CHATTER), rng.choice(ids))
        bot = rng.choice(
            [
                f"Deploy of rc{rng.randrange(1, 4)} to staging finished",
                "Reminder: Decision: code freeze starts Wednesday (automated)",
                f"Reminder: Action: <@{rng.choice(ids)}> to fill in the release checklist",
            ]
        )
        post(day, bot, None, subtype="bot_message", bot_id="B0DEPLOY", username="deploybot")
    files: dict[str, str | bytes] = {"chat/export/users.json": json.dumps(users, indent=2) + "\n"}
    for day in days:
        mine = [
            m
            for m in msgs
            if datetime.fromtimestamp(float(m["ts"]), UTC).strftime("%Y-%m-%d") == day
        ]
        mine.sort(key=lambda m: float(m["ts"]))
        files[f"chat/export/release/{day}.json"] = json.dumps(mine, indent=2) + "\n"
    return Fixture(files), {"messages": len(msgs)}


_RELEASE_V1 = textwrap.dedent(
    """\
    import glob, json, re
    from datetime import datetime, timezone

    START = datetime(2026, 11, 2, tzinfo=timezone.utc)
    END = datetime(2026, 11, 9, tzinfo=timezone.utc)
    LINK = "https://acme.slack.com/archives/release/p{}"
    users = {u["id"]: u["profile"]["display_name"] or u["real_name"]
             for u in json.load(open("chat/export/users.json"))}
    MENTION = re.compile(r"<@(U\\w+)>")


    def resolve(text):
        return MENTION.sub(lambda m: "@" + users.get(m.group(1), m.group(1)), text)


    def when(m):
        return datetime.fromtimestamp(float(m["ts"]), timezone.utc)


    def ref(m):
        return f"[ts {m['ts']}]({LINK.format(m['ts'].replace('.', ''))})"


    msgs = []
    for path in sorted(glob.glob("chat/export/release/*.json")):
        msgs += json.load(open(path))
    msgs.sort(key=lambda m: float(m["ts"]))
    decisions, actions, done = [], [], set()
    for m in msgs:
        who = users[m["user"]]
        text = m["text"]
        if text.lower().startswith("done") and "thread_ts" in m:
            done.add((m["thread_ts"], m["user"]))
        if not START <= when(m) < END:
            continue
        if text.startswith("Decision:"):
            decisions.append((m, who, text.removeprefix("Decision:").strip()))
        elif text.startswith("Action:"):
            owner = MENTION.search(text).group(1)
            actions.append((m, who, owner, resolve(text.removeprefix("Action:").strip())))

    lines = ["# #release: week of 2026-11-02 to 2026-11-08", "",
             "Bot messages are ignored; each item links to its message.", "", "## Decisions", ""]
    for m, who, text in decisions:
        lines.append(f"- {when(m):%a %Y-%m-%d %H:%M} UTC, **{who}**: {text} {ref(m)}")
    open_items = [a for a in actions if (a[0]["ts"], a[2]) not in done]
    closed = [a for a in actions if (a[0]["ts"], a[2]) in done]
    lines += ["", "## Open action items", ""]
    for m, who, owner, text in open_items:
        lines.append(f"- [ ] {text} (owner: {users[owner]}, raised by {who}) {ref(m)}")
    lines += ["", "## Closed during the week", ""]
    for m, who, owner, text in closed:
        lines.append(f"- [x] {text} (owner: {users[owner]}) {ref(m)}")
    with open("out/release_week_summary.md", "w") as f:
        f.write("\\n".join(lines) + "\\n")
    print(f"{len(decisions)} decisions, {len(open_items)} open action items, "
          f"{len(closed)} closed, from {len(msgs)} messages")
    """
)
_RELEASE_V2 = _swap(
    _RELEASE_V1,
    '    who = users[m["user"]]\n',
    '    if m.get("subtype") == "bot_message" or "user" not in m:\n'
    "        continue  # deploybot reminders are not decisions\n"
    '    who = users[m["user"]]\n',
)


def _release_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls chat/export/release/ && jq -c '.[] | {user, subtype, text, thread_ts}' "
            "chat/export/release/2026-11-03.json",
            say="Listing the daily files and peeking at one day.",
        ),
        read("chat/export/users.json", 1, 12, say="Checking how user ids map to names."),
    ]
    yield write("summarize.py", _RELEASE_V1, say="Writing a script for decisions and actions.")
    run = yield sh("mkdir -p out && python3 summarize.py")
    if not run.ok:
        # Bot messages have bot_id/username but no "user" key.
        yield write(
            "summarize.py",
            _RELEASE_V2,
            say="Bot messages have no user field; skipping bot chatter explicitly.",
        )
        run = yield sh("python3 summarize.py")
    yield Reply(
        f"Wrote out/release_week_summary.md for 2026-11-02..08: {run.stdout.strip()}. "
        "Bot messages are ignored and every item links to its message timestamp."
    )
    _, check = yield [
        read(
            "out/release_week_summary.md",
            say="Reading the summary back and making sure no bot text slipped in.",
        ),
        sh("grep -c deploybot out/release_week_summary.md || true"),
    ]
    bots = check.stdout.split()[-1] if check.stdout.split() else "?"
    yield Reply(f"Checked: the summary reads cleanly and has {bots} bot messages in it.")


_RELEASE_VERIFY = r"""
import glob, json, re, sys
from datetime import datetime, timezone
START = datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()
END = datetime(2026, 11, 9, tzinfo=timezone.utc).timestamp()
users = {u["id"]: u["profile"]["display_name"] for u in json.load(open("chat/export/users.json"))}
msgs = [m for p in glob.glob("chat/export/release/*.json") for m in json.load(open(p))]
try:
    text = open("out/release_week_summary.md").read()
except FileNotFoundError:
    sys.exit("out/release_week_summary.md is missing")
lines = text.splitlines()
def line_of(ts, section=lines):
    hits = [l for l in section if ts in l or ts.replace(".", "") in l]
    return hits[0] if hits else None
human = [m for m in msgs if "user" in m and m.get("subtype") != "bot_message"]
inweek = lambda m: START <= float(m["ts"]) < END
done = {(m["thread_ts"], m["user"]) for m in human
        if "thread_ts" in m and m["text"].lower().startswith("done")}
for m in msgs:
    if (m.get("subtype") == "bot_message" or not inweek(m)) and line_of(m["ts"]):
        sys.exit(f"summary includes a bot or out-of-week message ({m['ts']})")
start = next((i for i, l in enumerate(lines) if re.search(r"open action", l, re.I)), None)
if start is None:
    sys.exit("no 'Open action items' section")
end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
open_section = lines[start + 1:end]
n_dec = n_open = 0
for m in filter(inweek, human):
    if m["text"].startswith("Decision:"):
        line = line_of(m["ts"])
        if not line or users[m["user"]] not in line:
            sys.exit(f"decision {m['text']!r} missing or without its author and timestamp")
        n_dec += 1
    elif m["text"].startswith("Action:"):
        owner = re.search(r"<@(U\w+)>", m["text"]).group(1)
        line = line_of(m["ts"], open_section)
        if (m["ts"], owner) in done:
            if line:
                sys.exit(f"closed action {m['text']!r} listed as open")
        elif not line or users[owner] not in line:
            sys.exit(f"open action {m['text']!r} missing or without its owner and timestamp")
        else:
            n_open += 1
print(f"ok: {n_dec} decisions, {n_open} open action items")
"""


# ---------------------------------------------------------------- comms-build-meeting-calendar

_MEETING_TITLES = ["Q4 planning", "Design review: search", "Customer call Globex", "Security sync",
                   "Release go/no-go", "Hiring debrief", "Roadmap review", "Budget check-in",
                   "Onboarding for new PMs", "Incident retro"]  # fmt: skip
_MEETING_TZS = ["UTC", "Europe/Berlin", "America/New_York", "Europe/London", "Asia/Tokyo"]


def _ics(uid: str, title: str, organiser: str, start: datetime, end: datetime, tz: str,
         cancel: bool = False) -> str:  # fmt: skip
    from zoneinfo import ZoneInfo

    def stamp(key: str, when: datetime) -> str:
        if tz == "UTC":
            return f"{key}:{when:%Y%m%dT%H%M%SZ}"
        return f"{key};TZID={tz}:{when.astimezone(ZoneInfo(tz)):%Y%m%dT%H%M%S}"

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Acme//Groupware 7.2//EN",
             f"METHOD:{'CANCEL' if cancel else 'REQUEST'}", "BEGIN:VEVENT", f"UID:{uid}",
             f"SEQUENCE:{1 if cancel else 0}", f"SUMMARY:{title}",
             f"ORGANIZER;CN={organiser}:mailto:{_addr(organiser, 'acme.example')}",
             stamp("DTSTART", start), stamp("DTEND", end),
             f"STATUS:{'CANCELLED' if cancel else 'CONFIRMED'}", "END:VEVENT",
             "END:VCALENDAR"]  # fmt: skip
    return "\r\n".join(lines) + "\r\n"


def _calendar_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    people = _people(rng, 8)
    titles = rng.sample(_MEETING_TITLES, 7)
    meetings = []
    for i, title in enumerate(titles):
        start = datetime(2026, 11, 16 + rng.randrange(3), rng.randrange(8, 16), 0, tzinfo=UTC)
        if i == 1:  # starts half-way through the first meeting: a guaranteed conflict
            start = meetings[0][2] + timedelta(minutes=30)
        if i == 2:  # will be cancelled; it would clash with the first meeting
            start = meetings[0][2]
        end = start + timedelta(minutes=rng.choice([60, 90] if i == 0 else [30, 60, 90]))
        uid = f"{rng.randrange(16**12):012x}@groupware.acme.example"
        meetings.append((uid, title, start, end, rng.choice(_MEETING_TZS), rng.choice(people)))
    invites = [(m, False) for m in meetings] + [(meetings[2], True)]
    plain = [("Lunch on Friday?", "Shall we try the new ramen place?"),
             ("Slides from yesterday", "Attached are my notes from the review."),
             ("Re: expense report", "Approved, thanks."),
             ("Out of office", "I am out until Monday."),
             ("Parking garage closed", "The garage is closed for cleaning on Wednesday."),
             ("Quarterly numbers", "Numbers look good, details in the board deck."),
             ("Welcome aboard", "Please welcome our new designer to the team!")]  # fmt: skip
    items: list[tuple] = [("invite", inv) for inv in invites] + [("plain", p) for p in plain]
    rng.shuffle(items)
    files: dict[str, str | bytes] = {}
    base = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
    for i, (kind, item) in enumerate(items):
        when = base + timedelta(minutes=53 * i + rng.randrange(40))
        msg = EmailMessage()
        msg["Date"] = format_datetime(when)
        msg["To"] = "me@acme.example"
        msg["Message-ID"] = f"<{int(when.timestamp())}.{i}@acme.example>"
        if kind == "invite":
            (uid, title, start, end, tz, organiser), cancel = item
            msg["From"] = f"{organiser} <{_addr(organiser, 'acme.example')}>"
            msg["Subject"] = f"{'Cancelled' if cancel else 'Invitation'}: {title}"
            msg.set_content(f"{'This meeting was cancelled.' if cancel else 'You are invited.'}\n")
            ics = _ics(uid, title, organiser, start, end, tz, cancel)
            if rng.random() < 0.5:
                msg.add_attachment(ics.encode(), maintype="text", subtype="calendar",
                                   filename="invite.ics")  # fmt: skip
            else:
                msg.add_attachment(ics, subtype="calendar", filename="invite.ics")
        else:
            sender = rng.choice(people)
            msg["From"] = f"{sender} <{_addr(sender, 'acme.example')}>"
            msg["Subject"], body = item
            msg.set_content(body + "\n")
            if "notes" in body:
                msg.add_attachment("- search ranking\n- rollout\n", filename="notes.txt")
        name = f"{int(when.timestamp())}.M{200 + i}P{5000 + rng.randrange(999)}.mx1:2,S"
        if msg.is_multipart():  # a fixed boundary keeps the fixture deterministic
            msg.set_boundary(f"==part-{i:02d}-{rng.randrange(16**8):08x}==")
        files[f"mail/Maildir/cur/{name}"] = msg.as_string()
    for sub in ("new", "tmp"):
        files[f"mail/Maildir/{sub}/.keep"] = ""
    return Fixture(files), {"meetings": 6}


_CALENDAR_V1 = textwrap.dedent(
    """\
    import csv, email, glob, os
    from datetime import datetime, timezone
    from email import policy
    from zoneinfo import ZoneInfo


    def vevents(text):
        ev = None
        for line in text.splitlines():
            if line == "BEGIN:VEVENT":
                ev = {}
            elif line == "END:VEVENT":
                yield ev
                ev = None
            elif ev is not None and ":" in line:
                key, value = line.split(":", 1)
                ev[key] = value


    def utc(ev, key):
        return datetime.strptime(ev[key], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


    events, cancelled = {}, set()
    for path in sorted(glob.glob("mail/Maildir/cur/*")):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=policy.default)
        for part in msg.walk():
            if part.get_content_type() != "text/calendar":
                continue
            for ev in vevents(part.get_content()):
                if ev.get("STATUS") == "CANCELLED":
                    cancelled.add(ev["UID"])
                    continue
                events[ev["UID"]] = {
                    "title": ev["SUMMARY"],
                    "organiser": ev["ORGANIZER"].removeprefix("mailto:"),
                    "start": utc(ev, "DTSTART"),
                    "end": utc(ev, "DTEND"),
                }

    meetings = sorted((e for uid, e in events.items() if uid not in cancelled),
                      key=lambda e: e["start"])
    for a in meetings:
        a["conflicts"] = "; ".join(
            b["title"] for b in meetings
            if b is not a and a["start"] < b["end"] and b["start"] < a["end"])
    os.makedirs("out", exist_ok=True)
    with open("out/meetings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["title", "organiser", "start_utc", "end_utc", "conflicts"])
        for m in meetings:
            w.writerow([m["title"], m["organiser"], f"{m['start']:%Y-%m-%dT%H:%M:%SZ}",
                        f"{m['end']:%Y-%m-%dT%H:%M:%SZ}", m["conflicts"]])
    print(f"{len(meetings)} meetings, {len(cancelled)} cancelled, "
          f"{sum(bool(m['conflicts']) for m in meetings)} with conflicts")
    """
)
_CALENDAR_V2 = _swap(
    _swap(
        _swap(
            _CALENDAR_V1,
            '            key, value = line.split(":", 1)\n            ev[key] = value\n',
            '            key, value = line.split(":", 1)\n'
            '            name, *params = key.split(";")\n'
            "            ev[name] = value\n"
            '            ev[name + ";"] = dict(p.split("=", 1) for p in params)\n',
        ),
        '    return datetime.strptime(ev[key], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)\n',
        '    value, tzid = ev[key], ev[key + ";"].get("TZID", "UTC")\n'
        '    if value.endswith("Z"):\n'
        '        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)\n'
        '    local = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=ZoneInfo(tzid))\n'
        "    return local.astimezone(timezone.utc)\n",
    ),
    '"organiser": ev["ORGANIZER"].removeprefix("mailto:"),',
    "\"organiser\": f\"{ev['ORGANIZER;'].get('CN', '')} \"\n"
    "                                 f\"<{ev['ORGANIZER'].removeprefix('mailto:')}>\",",
)


def _calendar_playbook(ctx: Ctx) -> Playbook:
    _, listing = yield [
        sh(
            "ls mail/Maildir/cur | wc -l; grep -l 'text/calendar' mail/Maildir/cur/* | wc -l",
            say="Finding the messages that carry calendar attachments",
        ),
        sh(
            "grep -l 'Content-Transfer-Encoding: 7bit' $(grep -l text/calendar mail/Maildir/cur/*)"
            " | head -1",
            say="and one whose invite is plain text.",
        ),
    ]
    sample = listing.stdout.split()[-1] if listing.ok and listing.stdout.split() else ""
    yield read(sample, say="Reading one invite to see its VEVENT.")
    yield write("build_calendar.py", _CALENDAR_V1, say="Writing a parser for the invites.")
    run = yield sh("python3 build_calendar.py")
    if not run.ok:
        # ORGANIZER;CN=... and DTSTART;TZID=... carry parameters before the colon.
        yield write(
            "build_calendar.py",
            _CALENDAR_V2,
            say="Properties carry parameters (CN, TZID); splitting them off and converting "
            "local times to UTC.",
        )
        run = yield sh("python3 build_calendar.py")
    yield Reply(f"Built out/meetings.csv from the invites: {run.stdout.strip()}.")
    check = yield sh(
        "cat out/meetings.csv",
        say="Reading the calendar back.",
    )
    rows = max(len(check.stdout.strip().splitlines()) - 1, 0)
    yield Reply(
        f"Checked: {rows} meetings in UTC, the cancelled one is gone, and overlapping meetings "
        "name each other in the conflicts column."
    )


_CALENDAR_VERIFY = r"""
import csv, email, glob, sys
from datetime import datetime, timezone
from email import policy
from zoneinfo import ZoneInfo
def parse_ics(text):
    ev = None
    for line in text.splitlines():
        if line == "BEGIN:VEVENT":
            ev = {}
        elif line == "END:VEVENT":
            yield ev
        elif ev is not None and ":" in line:
            key, value = line.split(":", 1)
            name, *params = key.split(";")
            ev[name] = (value, dict(p.split("=", 1) for p in params))
def utc(prop):
    value, params = prop
    if value.endswith("Z"):
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    tz = ZoneInfo(params["TZID"])
    return datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=tz).astimezone(timezone.utc)
events, cancelled = {}, set()
for path in glob.glob("mail/Maildir/cur/*"):
    msg = email.message_from_binary_file(open(path, "rb"), policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            for ev in parse_ics(part.get_content()):
                if ev["STATUS"][0] == "CANCELLED":
                    cancelled.add(ev["UID"][0])
                else:
                    events[ev["UID"][0]] = ev
want = {ev["SUMMARY"][0]: ev for uid, ev in events.items() if uid not in cancelled}
try:
    rows = list(csv.DictReader(open("out/meetings.csv", newline="")))
except FileNotFoundError:
    sys.exit("out/meetings.csv is missing")
got = {r.get("title", ""): r for r in rows}
if set(got) != set(want) or len(rows) != len(want):
    sys.exit(f"meetings differ: got {sorted(got)}, want {sorted(want)}")
def cell(row, *names):
    for n in names:
        if n in row:
            return row[n] or ""
    sys.exit(f"column {names[0]} is missing")
def when(text):
    d = datetime.fromisoformat(text.strip().replace("Z", "").replace(" ", "T"))
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)
span = {t: (utc(ev["DTSTART"]), utc(ev["DTEND"])) for t, ev in want.items()}
for title, row in got.items():
    ev = want[title]
    start, end = when(cell(row, "start_utc", "start")), when(cell(row, "end_utc", "end"))
    if (start, end) != span[title]:
        sys.exit(f"{title}: got {start}..{end}, want {span[title][0]}..{span[title][1]} (UTC)")
    if ev["ORGANIZER"][0].removeprefix("mailto:") not in cell(row, "organiser", "organizer"):
        sys.exit(f"{title}: organiser missing")
    clashes = [t for t, (s, e) in span.items() if t != title and s < end and start < e]
    conflicts = cell(row, "conflicts")
    empty = conflicts.strip(" -").lower() in ("", "none")
    if any(t not in conflicts for t in clashes) or (not clashes and not empty):
        sys.exit(f"{title}: conflicts {conflicts!r}, expected {clashes}")
print(f"ok: {len(rows)} meetings, {len(cancelled)} cancelled")
"""


# ---------------------------------------------------------------- comms-plan-launch-social-posts

_LAUNCH_FEATURES = [
    ("Offline mode", "edit your boards on a plane, on a train or in a tunnel, and every change "
     "syncs the moment you are back online, with clear hints for anything two people edited "
     "at the same time while you were away"),
    ("Smart templates", "start a sprint, a launch plan or a hiring pipeline from a template that "
     "already knows your team's fields, owners and due dates, so a new board takes seconds "
     "instead of an afternoon of copying"),
    ("Timeline view", "drag any list onto a timeline to see dependencies, spot the tasks that "
     "block a release and move whole phases at once when the plan changes, without opening "
     "a single card"),
    ("Guest access", "invite clients and contractors to exactly the boards they need, with "
     "comment-only permissions, automatic expiry dates and an audit trail that shows who saw "
     "what and when"),
    ("Automation rules", "move cards, assign owners and post reminders automatically when a "
     "due date approaches or a checklist is finished, with rules you write in plain English "
     "and can test before switching them on"),
    ("Faster search", "find any card, comment or attachment across every workspace in under "
     "a second, with filters for owner, label and date that remember how you like to search "
     "and work offline too"),
]  # fmt: skip
_LAUNCH_QUOTES = [
    ("We cut our weekly planning meeting from an hour to fifteen minutes.", "Rosa Quint",
     "Head of Delivery at Globex"),
    ("Offline mode alone saved our field team a day a week.", "Ken Ito", "COO at Initech"),
    ("The timeline view finally shows our board what engineering is doing.", "Lea Martins",
     "VP Engineering at Hooli"),
]  # fmt: skip


def _launch_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    product = rng.choice(["Acme Boards", "Acme Planner", "Acme Flow"])
    version = f"{rng.randrange(3, 6)}.0"
    launch = datetime(2026, 11, 16) + timedelta(days=rng.randrange(0, 7))
    features = rng.sample(_LAUNCH_FEATURES, 4)
    quotes = rng.sample(_LAUNCH_QUOTES, 2)
    slug = product.lower().replace(" ", "-")
    notes = [f"# Launch: {product} {version}", "", f"Launch date: {launch:%Y-%m-%d}", "",
             f"Tagline: {product} {version} keeps your team's plans moving, online or off.", "",
             "## Features", ""]  # fmt: skip
    notes += [f"- **{name}**: {desc}." for name, desc in features]
    notes += ["", "## Quotes", ""]
    notes += [f'> "{q}" - {who}, {role}' for q, who, role in quotes]
    notes += ["", "## Links", "", f"- Announcement: https://acme.example/blog/{slug}-{version}",
              f"- Docs: https://docs.acme.example/{slug}/whats-new", "", "## Hashtags", "",
              f"#{product.replace(' ', '')} #Launch #Productivity #RemoteWork", ""]  # fmt: skip
    limits = {
        "x": {"max_chars": 280, "max_hashtags": 2, "windows": ["08:00-10:00", "17:00-19:00"]},
        "linkedin": {"max_chars": 1300, "max_hashtags": 3,
                     "windows": ["07:30-09:00", "12:00-13:00"]},
        "mastodon": {"max_chars": 500, "max_hashtags": 4,
                     "windows": ["10:00-12:00", "18:00-21:00"]},
    }  # fmt: skip
    files = {
        "marketing/launch_notes.md": "\n".join(notes),
        "social/limits.json": json.dumps(limits, indent=2) + "\n",
    }
    return Fixture(files), {"launch": f"{launch:%Y-%m-%d}"}


_VALIDATE_POSTS = textwrap.dedent(
    """\
    \"\"\"Validate social/queue.json against social/limits.json; exit 1 on any violation.\"\"\"
    import json, re, sys
    from datetime import datetime, timedelta

    queue_path = sys.argv[1] if len(sys.argv) > 1 else "social/queue.json"
    limits = json.load(open("social/limits.json"))
    queue = json.load(open(queue_path))
    notes = open("marketing/launch_notes.md").read()
    launch = datetime.strptime(re.search(r"Launch date: (\\S+)", notes).group(1), "%Y-%m-%d")
    week = {(launch + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(7)}
    errors, seen, covered = [], set(), set()
    for i, post in enumerate(queue):
        rule = limits.get(post["platform"])
        if rule is None:
            errors.append(f"post {i}: unknown platform {post['platform']}")
            continue
        text, when = post["text"], post["scheduled_at"]
        if len(text) > rule["max_chars"]:
            errors.append(f"post {i} ({post['platform']}): {len(text)} chars > {rule['max_chars']}")
        tags = re.findall(r"#\\w+", text)
        if len(tags) > rule["max_hashtags"]:
            errors.append(f"post {i} ({post['platform']}): {len(tags)} hashtags")
        hhmm = when[11:16]
        if not any(a <= hhmm <= b for a, b in (w.split("-") for w in rule["windows"])):
            errors.append(f"post {i} ({post['platform']}): {hhmm} is outside the windows")
        key = " ".join(text.lower().split())
        if key in seen:
            errors.append(f"post {i}: repeats the wording of an earlier post")
        seen.add(key)
        covered.add((post["platform"], when[:10]))
    for platform in limits:
        for day in sorted(week):
            if (platform, day) not in covered:
                errors.append(f"no {platform} post on {day}")
    for e in errors:
        print("FAIL", e)
    print(f"{len(queue)} posts checked, {len(errors)} problems")
    sys.exit(1 if errors else 0)
    """
)
_BUILD_QUEUE_V1 = textwrap.dedent(
    """\
    import json, re
    from datetime import datetime, timedelta

    notes = open("marketing/launch_notes.md").read()
    limits = json.load(open("social/limits.json"))
    launch = datetime.strptime(re.search(r"Launch date: (\\S+)", notes).group(1), "%Y-%m-%d")
    tagline = re.search(r"Tagline: (.+)", notes).group(1)
    features = re.findall(r"^- \\*\\*(.+?)\\*\\*: (.+)$", notes, re.M)
    quotes = re.findall(r'^> "(.+?)" - (.+)$', notes, re.M)
    blog = re.search(r"Announcement: (\\S+)", notes).group(1)
    docs = re.search(r"Docs: (\\S+)", notes).group(1)
    tags = re.search(r"## Hashtags\\s+(.+)", notes).group(1).split()

    # One theme per day: launch, four features, a customer quote, the docs.
    days = [(f"Today: {tagline}", blog)]
    days += [(f"New: {name}. You can now {desc}", blog) for name, desc in features]
    days += [(f'"{q}" says {who}', blog) for q, who in quotes[:1]]
    days += [(f"Everything new, step by step, in the docs. {quotes[1][0]}", docs)]
    INTRO = {"x": "", "linkedin": "We are proud to share this: ", "mastodon": "Launch week! "}


    def post_text(platform, body, link):
        rule = limits[platform]
        return f"{INTRO[platform]}{body} {link} {' '.join(tags[:rule['max_hashtags']])}"


    queue = []
    for d, (body, link) in enumerate(days):
        day = launch + timedelta(days=d)
        for platform, rule in limits.items():
            start = rule["windows"][d % len(rule["windows"])].split("-")[0]
            queue.append({"platform": platform,
                          "scheduled_at": f"{day:%Y-%m-%d}T{start}",
                          "text": post_text(platform, body, link)})
    json.dump(queue, open("social/queue.json", "w"), indent=2)
    print(f"{len(queue)} posts queued over {len(days)} days")
    """
)
_BUILD_QUEUE_V2 = _swap(
    _BUILD_QUEUE_V1,
    "    rule = limits[platform]\n"
    "    return f\"{INTRO[platform]}{body} {link} {' '.join(tags[:rule['max_hashtags']])}\"\n",
    "    rule = limits[platform]\n"
    "    tail = f\" {link} {' '.join(tags[:rule['max_hashtags']])}\"\n"
    '    room = rule["max_chars"] - len(INTRO[platform]) - len(tail)\n'
    "    if len(body) > room:  # cut at a word boundary, keep the link and tags\n"
    '        body = body[: room - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"\n'
    '    return f"{INTRO[platform]}{body}{tail}"\n',
)


def _launch_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("marketing/launch_notes.md", say="Reading the launch notes."),
        sh("cat social/limits.json", say="And the per-platform limits."),
    ]
    yield [
        write("scripts/validate_posts.py", _VALIDATE_POSTS, say="Writing the validator"),
        write("scripts/build_queue.py", _BUILD_QUEUE_V1, say="and a script that plans the week."),
    ]
    run = yield sh("python3 scripts/build_queue.py && python3 scripts/validate_posts.py")
    if not run.ok:
        # The feature blurbs are long: with link and hashtags, X posts blow the 280 limit.
        yield write(
            "scripts/build_queue.py",
            _BUILD_QUEUE_V2,
            say="X posts are too long; trimming the body at a word boundary to fit each limit.",
        )
        run = yield sh("python3 scripts/build_queue.py && python3 scripts/validate_posts.py")
    summary = run.stdout.strip().splitlines()
    yield Reply(
        f"Planned the launch week in social/queue.json ({summary[0] if summary else ''}); "
        f"scripts/validate_posts.py reports: {summary[-1] if summary else '?'}."
    )
    check = yield sh(
        "jq -r '.[] | \"\\(.platform)\\t\\(.scheduled_at)\\t\\(.text | length)\"' "
        "social/queue.json | sort | head -8; "
        "jq -r '.[].text' social/queue.json | sort | uniq -d | wc -l",
        say="Looking at lengths per platform and checking for repeated wording.",
    )
    dupes = check.stdout.split()[-1] if check.ok else "?"
    yield Reply(f"Checked: every platform has a post each day within its limits; {dupes} repeats.")


_LAUNCH_VERIFY = r"""
import json, re, subprocess, sys
from datetime import datetime, timedelta
limits = json.load(open("social/limits.json"))
notes = open("marketing/launch_notes.md").read()
launch = datetime.strptime(re.search(r"Launch date: (\S+)", notes).group(1), "%Y-%m-%d")
try:
    queue = json.load(open("social/queue.json"))
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"social/queue.json is missing or invalid: {e}")
need = {(p, (launch + timedelta(days=d)).strftime("%Y-%m-%d")) for p in limits for d in range(7)}
have, texts = set(), set()
for post in queue:
    rule = limits[post["platform"]]
    text, when = post["text"], post["scheduled_at"]
    if len(text) > rule["max_chars"] or len(re.findall(r"#\w+", text)) > rule["max_hashtags"]:
        sys.exit(f"{post['platform']} post breaks the limits: {text[:60]!r}")
    if not any(a <= when[11:16] <= b for a, b in (w.split("-") for w in rule["windows"])):
        sys.exit(f"{post['platform']} post at {when} is outside the posting windows")
    key = " ".join(text.lower().split())
    if key in texts:
        sys.exit(f"repeated wording: {text[:60]!r}")
    texts.add(key)
    have.add((post["platform"], when[:10]))
if need - have:
    sys.exit(f"missing platform/day slots: {sorted(need - have)[:3]}")
try:
    run = subprocess.run([sys.executable, "scripts/validate_posts.py"],
                         capture_output=True, text=True, timeout=30)
except FileNotFoundError:
    sys.exit("scripts/validate_posts.py is missing")
if run.returncode != 0:
    sys.exit(f"the validator rejects the queue: {run.stdout[-300:]}{run.stderr[-300:]}")
print(f"ok: {len(queue)} posts, all within limits")
"""


# ---------------------------------------------------------------- comms-clean-newsletter-list


def _dsn(addr: str, hard: bool, n: int) -> str:
    status = ("5.1.1", "5.2.1", "5.1.10")[n % 3] if hard else ("4.2.2", "4.4.1", "4.7.0")[n % 3]
    boundary = f"----=_DSN_{n:04d}"
    human = (
        "Delivery to the following recipient failed permanently:"
        if hard
        else "Delivery to the following recipient has been delayed; we will keep trying:"
    )
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx{n}.example>\n"
        "To: news@acme.example\n"
        f"Subject: Delivery Status Notification ({'Failure' if hard else 'Delay'})\n"
        f"Date: Mon, 02 Nov 2026 0{n % 10}:12:00 +0000\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain\n\n{human}\n\n    {addr}\n\n"
        f"--{boundary}\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx{n}.example\n\n"
        f"Final-Recipient: rfc822; {addr}\n"
        f"Action: {'failed' if hard else 'delayed'}\n"
        f"Status: {status}\n"
        f"Diagnostic-Code: smtp; {'550' if hard else '452'} {status} "
        f"{'user unknown' if hard else 'mailbox full'}\n\n"
        f"--{boundary}--\n"
    )


def _qmail_bounce(addr: str, n: int) -> str:
    return (
        f"From: MAILER-DAEMON@relay{n}.example\n"
        "To: news@acme.example\n"
        "Subject: failure notice\n"
        f"Date: Tue, 03 Nov 2026 1{n % 10}:40:00 +0000\n\n"
        f"Hi. This is the qmail-send program at relay{n}.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{addr}>:\n"
        "Remote host said: 550 5.1.1 The email account that you tried to reach does not exist\n"
    )


def _exim_bounce(addr: str, n: int) -> str:
    return (
        f"From: Mail Delivery System <Mailer-Daemon@smtp{n}.example>\n"
        "To: news@acme.example\n"
        "Subject: Mail delivery failed: returning message to sender\n"
        f"X-Failed-Recipients: {addr}\n"
        f"Date: Wed, 04 Nov 2026 0{n % 10}:05:00 +0000\n\n"
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        f"  {addr}\n"
        "    SMTP error from remote mail server after RCPT TO:\n"
        "    550 5.2.1 Mailbox disabled for this recipient\n"
    )


def _newsletter_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    emails: list[tuple[str, str]] = []
    used = set()
    while len(emails) < 300:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        addr = _addr(name, rng.choice(CUSTOMER_DOMAINS + ["mail.example", "post.example"]))
        if addr in used:
            addr = addr.replace("@", f"{rng.randrange(2, 99)}@")
        if addr in used:
            continue
        used.add(addr)
        emails.append((addr, name))
    rows = ["email,name,joined"]
    for addr, name in emails:
        shown = addr
        if rng.random() < 0.1:
            shown = f" {addr.title()}"  # messy export: case and leading whitespace
        joined = f"202{rng.randrange(3, 7)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        rows.append(f"{shown},{name},{joined}")
    picks = rng.sample([a for a, _ in emails], 34)
    hard, soft, unsub = picks[:12], picks[12:20], picks[20:33]
    unsub.append(picks[0])  # bounced and also asked to leave
    files: dict[str, str | bytes] = {"lists/subscribers.csv": "\n".join(rows) + "\n"}
    bounces = [("dsn", a, True) for a in hard[:6]] + [("qmail", a, True) for a in hard[6:9]]
    bounces += [("exim", a, True) for a in hard[9:]] + [("dsn", a, False) for a in soft]
    rng.shuffle(bounces)
    for n, (kind, addr, is_hard) in enumerate(bounces, 1):
        shown = addr.upper() if n % 4 == 0 else addr
        if kind == "dsn":
            text = _dsn(shown, is_hard, n)
        elif kind == "qmail":
            text = _qmail_bounce(shown, n)
        else:
            text = _exim_bounce(shown, n)
        files[f"mail/bounces/bounce-{n:02d}.eml"] = text
    lines = ["# unsubscribe requests exported from the web form, 2026-11-05", ""]
    for addr in unsub + ["someone.gone@mail.example"]:
        lines.append(rng.choice([addr, addr.upper(), f"  {addr}", f"{addr.title()}\t"]))
    files["lists/unsubscribes.txt"] = "\n".join(lines) + "\n"
    return Fixture(files), {"hard": len(hard), "soft": len(soft)}


_CLEAN_LIST_V1 = textwrap.dedent(
    """\
    import csv, glob, os, re

    def norm(addr):
        return addr.strip().lower()

    hard, soft = {}, {}
    for path in sorted(glob.glob("mail/bounces/*.eml")):
        text = open(path).read()
        addr = norm(re.search(r"Final-Recipient: rfc822;\\s*(\\S+)", text).group(1))
        status = re.search(r"Status: (\\d\\.\\d+\\.\\d+)", text).group(1)
        (hard if status.startswith("5.") else soft)[addr] = f"{os.path.basename(path)} {status}"

    unsub = {norm(line) for line in open("lists/unsubscribes.txt")
             if line.strip() and not line.startswith("#")}

    os.makedirs("out", exist_ok=True)
    kept = removed = 0
    with open("lists/subscribers.csv", newline="") as src, \\
         open("out/subscribers_clean.csv", "w", newline="") as clean, \\
         open("out/removed.csv", "w", newline="") as log:
        reader = csv.DictReader(src)
        keep = csv.DictWriter(clean, fieldnames=reader.fieldnames)
        keep.writeheader()
        drop = csv.writer(log)
        drop.writerow(["email", "name", "reason", "evidence"])
        for row in reader:
            addr = norm(row["email"])
            reasons, evidence = [], []
            if addr in hard:
                reasons.append("hard_bounce")
                evidence.append(hard[addr])
            if addr in unsub:
                reasons.append("unsubscribed")
                evidence.append("lists/unsubscribes.txt")
            if reasons:
                drop.writerow([addr, row["name"], "+".join(reasons), "; ".join(evidence)])
                removed += 1
            else:
                keep.writerow(row)
                kept += 1
    print(f"{len(hard)} hard and {len(soft)} soft bounces, {len(unsub)} unsubscribes; "
          f"kept {kept}, removed {removed}")
    """
)
_CLEAN_LIST_V2 = _swap(
    _CLEAN_LIST_V1,
    '    addr = norm(re.search(r"Final-Recipient: rfc822;\\s*(\\S+)", text).group(1))\n'
    '    status = re.search(r"Status: (\\d\\.\\d+\\.\\d+)", text).group(1)\n',
    "    # RFC 3464 reports name the address in Final-Recipient, Exim in X-Failed-Recipients,\n"
    "    # qmail only in the text as '<addr>:'.\n"
    '    found = (re.search(r"Final-Recipient: rfc822;\\s*(\\S+)", text)\n'
    '             or re.search(r"X-Failed-Recipients:\\s*(\\S+)", text)\n'
    '             or re.search(r"^<([^>\\s]+@[^>\\s]+)>:", text, re.M))\n'
    "    addr = norm(found.group(1))\n"
    '    status = re.search(r"\\b([45]\\.\\d{1,3}\\.\\d{1,3})\\b", text).group(1)\n',
)


def _newsletter_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "head -3 lists/subscribers.csv; wc -l lists/subscribers.csv; ls mail/bounces | wc -l; "
            "head -5 lists/unsubscribes.txt | cat -A | cut -c1-60",
            say="Looking at the list, the bounces and the unsubscribe file.",
        ),
        read("mail/bounces/bounce-01.eml", say="Reading one bounce message."),
    ]
    yield write("clean_list.py", _CLEAN_LIST_V1, say="Writing the cleaning script.")
    run = yield sh("python3 clean_list.py")
    if not run.ok:
        yield sh(
            "grep -L 'Final-Recipient' mail/bounces/*.eml | head -3 | "
            "xargs grep -n -i -E 'X-Failed|^<|550|452'",
            say="Some bounce has no Final-Recipient; looking at how those name the address.",
        )
        yield write(
            "clean_list.py",
            _CLEAN_LIST_V2,
            say="Adding the Exim header and the qmail '<addr>:' line as fallbacks.",
        )
        run = yield sh("python3 clean_list.py")
    yield Reply(
        f"Cleaned the list into out/subscribers_clean.csv with a log in out/removed.csv: "
        f"{run.stdout.strip()}. Soft (4.x.x) bounces stay on the list."
    )
    kept, removed = yield [
        sh(
            "head -2 out/subscribers_clean.csv; wc -l < out/subscribers_clean.csv",
            say="Checking the columns survived and counting removals by reason.",
        ),
        sh("tail -n +2 out/removed.csv | cut -d, -f3 | sort | uniq -c"),
    ]
    lines = kept.stdout.strip().splitlines()
    reasons = removed.stdout.strip().splitlines()
    by_reason = "; ".join(" ".join(line.split()[::-1]) for line in reasons)
    yield Reply(
        f"Checked: header {lines[0] if lines else '?'} intact, {by_reason or 'no removals'}."
    )


_NEWSLETTER_VERIFY = r"""
import csv, glob, re, sys
norm = lambda a: a.strip().lower()
hard, soft = set(), set()
for path in glob.glob("mail/bounces/*.eml"):
    text = open(path).read()
    m = (re.search(r"Final-Recipient: rfc822;\s*(\S+)", text)
         or re.search(r"X-Failed-Recipients:\s*(\S+)", text)
         or re.search(r"^<([^>\s]+@[^>\s]+)>:", text, re.M))
    status = re.search(r"\b([45])\.\d{1,3}\.\d{1,3}\b", text).group(1)
    (hard if status == "5" else soft).add(norm(m.group(1)))
unsub = {norm(l) for l in open("lists/unsubscribes.txt") if l.strip() and not l.startswith("#")}
src = {norm(r["email"]): r for r in csv.DictReader(open("lists/subscribers.csv", newline=""))}
gone = (hard | unsub) & set(src)
try:
    clean = list(csv.DictReader(open("out/subscribers_clean.csv", newline="")))
    removed = list(csv.DictReader(open("out/removed.csv", newline="")))
except FileNotFoundError as e:
    sys.exit(f"missing output: {e.filename}")
if not clean or set(clean[0]) < {"email", "name", "joined"}:
    sys.exit("the cleaned list lost columns")
kept = {norm(r["email"]): r for r in clean}
if set(kept) != set(src) - gone:
    extra, lost = set(kept) & gone, (set(src) - gone) - set(kept)
    sys.exit(f"cleaned list wrong: {len(extra)} should be removed, {len(lost)} wrongly dropped")
for addr, row in kept.items():
    if (row["name"], row["joined"]) != (src[addr]["name"], src[addr]["joined"]):
        sys.exit(f"{addr}: other columns changed")
if soft - hard - unsub - set(kept):
    sys.exit("soft-bounced addresses were removed")
logged = {}
for r in removed:
    rest = " ".join(v for k, v in r.items() if k != "email" and v)
    logged[norm(r.get("email", ""))] = rest.lower()
if set(logged) != gone:
    sys.exit(f"removal log has {len(logged)} addresses, expected {len(gone)}")
for addr in gone:
    if addr in hard and "bounce" not in logged[addr]:
        sys.exit(f"{addr}: log does not say it bounced")
    if addr in unsub and "unsub" not in logged[addr]:
        sys.exit(f"{addr}: log does not say it unsubscribed")
print(f"ok: kept {len(kept)}, removed {len(gone)}, {len(soft)} soft bounces kept")
"""


# ---------------------------------------------------------------- comms-fix-email-templates

_TEMPLATE_FIELDS = {
    "first_name": "Ada", "last_name": "Lovelace", "order_id": "A-10442",
    "order_total": "EUR 84.90", "eta": "2026-11-20", "tracking_number": "1Z999AA10123456784",
    "support_email": "help@shop.example", "company_name": "Shop Example",
    "invoice_url": "https://shop.example/invoices/A-10442", "reset_link":
    "https://shop.example/reset/7f3a", "coupon_code": "COMEBACK15",
    "unsubscribe_url": "https://shop.example/u/7f3a",
}  # fmt: skip
_TEMPLATE_RENAMED = {"customer_name": "first_name", "tracking_no": "tracking_number",
                     "delivery_date": "eta", "total": "order_total"}  # fmt: skip
_TEMPLATE_TYPOS = {"first_name": "firstname", "order_id": "oder_id", "tracking_number":
                   "trackng_number", "support_email": "supprot_email", "invoice_url":
                   "invoice_ulr", "coupon_code": "copon_code", "reset_link": "reset_lnk",
                   "unsubscribe_url": "unsubscribe_ur", "company_name": "compnay_name"}  # fmt: skip
_TEMPLATES = {
    "order_confirmation.txt": "Hi [first_name],\n\nThanks for your order [order_id]. We have "
    "received your payment of [order_total] and will let you know as soon as it ships.\n\n"
    "Questions? Write to [support_email].\n\n[company_name]\n",
    "shipping_update.txt": "Hello [first_name] [last_name],\n\nGood news: order [order_id] is "
    "on its way. Your tracking number is [tracking_number] and the expected delivery date is "
    "[eta].\n\n[company_name]\n",
    "password_reset.txt": "Hi [first_name],\n\nSomeone asked to reset the password for your "
    "account. If that was you, open [reset_link] within the next hour.\nIf not, you can "
    "ignore this email or tell us at [support_email].\n",
    "invoice_ready.txt": "Dear [first_name] [last_name],\n\nThe invoice for order [order_id] "
    "([order_total]) is ready: [invoice_url]\n\nKind regards,\n[company_name] accounts\n",
    "welcome.txt": "Welcome to [company_name], [first_name]!\n\nYour account is ready. Reply "
    "to this email or write to [support_email] whenever you need a hand.\n\nYou can leave "
    "our mailing list at any time: [unsubscribe_url]\n",
    "win_back.txt": "Hi [first_name],\n\nWe miss you! Here is 15% off your next order with "
    "code [coupon_code].\n\n[company_name]\nUnsubscribe: [unsubscribe_url]\n",
}  # fmt: skip


def _templates_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files: dict[str, str | bytes] = {}
    styles = ["typo", "renamed", "single", "spaced", "upper"]
    broken = 0
    for n, (name, text) in enumerate(sorted(_TEMPLATES.items())):
        parts = text.split("[")
        out = parts[0]
        for i, part in enumerate(parts[1:]):
            key, rest = part.split("]", 1)
            style = "ok"
            if i == 0 and n in (1, 4):
                style = "single"  # guaranteed: a single-brace placeholder in two templates
            elif rng.random() < 0.4:
                style = rng.choice(styles)
            if style == "typo" and key in _TEMPLATE_TYPOS:
                token = "{{" + _TEMPLATE_TYPOS[key] + "}}"
            elif style == "renamed" and key in _TEMPLATE_RENAMED.values():
                old = [k for k, v in _TEMPLATE_RENAMED.items() if v == key][0]
                token = "{{" + old + "}}"
            elif style == "single":
                token = "{" + key + "}"
            elif style == "spaced":
                token = "{{ " + key + " }}"
            elif style == "upper":
                token = "{{" + key.title() + "}}"
            else:
                style, token = "ok", "{{" + key + "}}"
            broken += style != "ok"
            out += token + rest
        files[f"templates/{name}"] = out
    fields = {"fields": _TEMPLATE_FIELDS, "renamed": _TEMPLATE_RENAMED}
    files["templates/fields.json"] = json.dumps(fields, indent=2) + "\n"
    commit = (
        "git init -q && git add -A && GIT_AUTHOR_DATE='2026-10-01T09:00:00' "
        "GIT_COMMITTER_DATE='2026-10-01T09:00:00' git commit -qm 'email templates'"
    )
    return Fixture(files, setup=(commit,)), {"broken": broken}


_FIX_TEMPLATES_V1 = textwrap.dedent(
    """\
    \"\"\"Rewrite every placeholder in templates/*.txt to a canonical {{field}} name.\"\"\"
    import difflib, glob, json, re

    spec = json.load(open("templates/fields.json"))
    fields, renamed = spec["fields"], spec["renamed"]
    PLACEHOLDER = re.compile(r"\\{\\{\\s*([A-Za-z_]+)\\s*\\}\\}")


    def canonical(key):
        k = key.lower()
        if k in fields:
            return k
        if k in renamed:
            return renamed[k]
        close = difflib.get_close_matches(k, fields, n=1, cutoff=0.75)
        if not close:
            raise SystemExit(f"cannot map placeholder {key!r}")
        return close[0]


    changes = 0
    for path in sorted(glob.glob("templates/*.txt")):
        text = open(path).read()

        def fix(m):
            global changes
            new = "{{" + canonical(m.group(1)) + "}}"
            if new != m.group(0):
                changes += 1
                print(f"{path}: {m.group(0)} -> {new}")
            return new

        open(path, "w").write(PLACEHOLDER.sub(fix, text))
    print(f"{changes} placeholders fixed")
    """
)
_CHECK_TEMPLATES = textwrap.dedent(
    """\
    \"\"\"Render every template with the sample values; log the result, exit 1 on leftovers.\"\"\"
    import glob, json, os, re, sys

    fields = json.load(open("templates/fields.json"))["fields"]
    os.makedirs("out", exist_ok=True)
    failed = 0
    with open("out/template_check.log", "w") as log:
        for path in sorted(glob.glob("templates/*.txt")):
            text = open(path).read()
            unknown = [k for k in re.findall(r"\\{\\{(\\w+)\\}\\}", text) if k not in fields]
            rendered = re.sub(r"\\{\\{(\\w+)\\}\\}",
                              lambda m: fields.get(m.group(1), m.group(0)), text)
            leftover = re.findall(r"\\{+[^{}]*\\}+", rendered)
            status = "OK" if not unknown and not leftover else "FAIL"
            failed += status == "FAIL"
            line = f"{status} {path}"
            if status == "FAIL":
                line += f": unresolved {unknown + leftover}"
            log.write(line + "\\n")
            print(line)
    print(f"{failed} templates failed the render check")
    sys.exit(1 if failed else 0)
    """
)


def _templates_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls templates; jq -c '.renamed, (.fields | keys)' templates/fields.json; "
            "grep -oh '{[^}]*}*' templates/*.txt | sort | uniq -c | sort -rn | head -30",
            say="Listing the placeholders in use against the canonical fields.",
        ),
        read("templates/shipping_update.txt", say="Reading one template in full."),
    ]
    yield [
        write("fix_templates.py", _FIX_TEMPLATES_V1, say="Writing a placeholder fixer"),
        write("check_templates.py", _CHECK_TEMPLATES, say="and a render check with sample data."),
    ]
    run = yield sh("python3 fix_templates.py && python3 check_templates.py")
    if not run.ok:
        # The fixer only matched {{...}}; single-brace {field} placeholders slipped through.
        yield edit(
            "fix_templates.py",
            'PLACEHOLDER = re.compile(r"\\{\\{\\s*([A-Za-z_]+)\\s*\\}\\}")',
            'PLACEHOLDER = re.compile(r"\\{\\{?\\s*([A-Za-z_]+)\\s*\\}?\\}")',
            say="Single-brace placeholders slipped through; making the second brace optional.",
        )
        run = yield sh("python3 fix_templates.py && python3 check_templates.py")
    fixed = run.stdout.strip().splitlines()
    yield Reply(
        f"Fixed the template placeholders ({fixed[-1] if fixed else ''}); the render log is in "
        "out/template_check.log."
    )
    check = yield sh(
        "cat out/template_check.log; git diff --word-diff=porcelain templates | "
        "grep -E '^[-+][^-+]' | grep -v -c -E '\\{\\{|\\{' || true",
        say="Reading the log and confirming the diff only touches placeholders.",
    )
    prose = check.stdout.split()[-1] if check.stdout.split() else "?"
    yield Reply(f"Checked: every template renders; {prose} changed words outside placeholders.")


_TEMPLATES_VERIFY = r"""
import difflib, glob, json, re, subprocess, sys
spec = json.load(open("templates/fields.json"))
fields, renamed = spec["fields"], spec["renamed"]
LOOSE = re.compile(r"\{\{?\s*([A-Za-z_]+)\s*\}?\}")
STRICT = re.compile(r"\{\{([a-z_]+)\}\}")
def canonical(key):
    k = key.lower()
    if k in fields:
        return k
    if k in renamed:
        return renamed[k]
    return (difflib.get_close_matches(k, fields, n=1, cutoff=0.75) or [None])[0]
try:
    log = open("out/template_check.log").read()
except FileNotFoundError:
    sys.exit("out/template_check.log is missing")
for path in sorted(glob.glob("templates/*.txt")):
    old = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True, text=True).stdout
    new = open(path).read()
    want = [canonical(k) for k in LOOSE.findall(old)]
    got = STRICT.findall(new)
    if got != want:
        sys.exit(f"{path}: placeholders {got}, expected {want}")
    if STRICT.sub("\0", new) != LOOSE.sub("\0", old):
        sys.exit(f"{path}: the wording changed")
    if re.search(r"[{}]", STRICT.sub("", new)):
        sys.exit(f"{path}: stray braces left")
    if not re.search(rf"OK\b.*{re.escape(path)}", log):
        sys.exit(f"{path}: no OK line in the render check log")
if "FAIL" in log:
    sys.exit("the render check log still reports failures")
print("ok: every placeholder resolves, wording unchanged")
"""


# ---------------------------------------------------------------- comms-reconstruct-mbox-threads

_THREAD_SUBJECTS = ["Q3 vendor contract renewal", "Offsite agenda", "Broken build on main",
                    "Interview loop for the SRE role", "Pricing page copy", "Budget freeze",
                    "Customer escalation: Globex", "New laptop policy", "Migration to Postgres 16",
                    "Holiday rota", "Security review findings", "Conference sponsorship",
                    "Office move timeline", "Support macros cleanup"]  # fmt: skip
_THREAD_LINES = ["Sounds good to me.", "Can we push this to next week?", "Attached the numbers.",
                 "I disagree, see my notes below.", "Agreed, let's go ahead.",
                 "Who owns the follow-up?", "Adding Sam for visibility.",
                 "Thanks, that answers it.", "One more question on the timeline."]  # fmt: skip


def _mbox_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    people = _people(rng, 10)
    msgs: list[dict] = []
    start = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    for t, subject in enumerate(rng.sample(_THREAD_SUBJECTS, 12)):
        cast = rng.sample(people, rng.randrange(2, 5))
        when = start + timedelta(days=t * 2 + rng.randrange(2), hours=rng.randrange(9))
        thread: list[dict] = []
        for i in range(rng.randrange(3, 8)):
            parent = rng.choice(thread) if thread else None
            when += timedelta(minutes=rng.randrange(20, 400))
            author = cast[i % len(cast)] if i < len(cast) else rng.choice(cast)
            subj = subject if parent is None else "Re: " + parent["subject"].removeprefix("Re: ")
            if parent is not None and i == 3 and t % 3 == 0:  # subject changed mid-thread
                subj = (
                    f"{rng.choice(['Decision needed', 'Next steps', 'Follow-up'])} (was: {subject})"
                )
            msg = {
                "id": f"<{rng.randrange(16**10):010x}.{t}.{i}@mail.acme.example>",
                "parent": parent,
                "author": author,
                "subject": subj,
                "when": when,
                "text": rng.choice(_THREAD_LINES),
            }
            msg["refs"] = (parent["refs"] + [parent["id"]]) if parent else []
            thread.append(msg)
        msgs += thread
    rng.shuffle(msgs)  # the export is not in thread order
    blobs = []
    for n, m in enumerate(msgs):
        zone = rng.choice(["+0000", "+0100", "-0500", "+0200"])
        date = format_datetime(m["when"].astimezone(
            datetime.strptime(zone, "%z").tzinfo))  # fmt: skip
        if n % 9 == 4:  # some relays write -0000 ("unknown local zone")
            date = format_datetime(m["when"]).replace("+0000", "-0000")
        headers = [("From", f"{m['author']} <{_addr(m['author'], 'acme.example')}>"),
                   ("To", "team@acme.example"), ("Subject", m["subject"]), ("Date", date),
                   ("Message-ID", m["id"])]  # fmt: skip
        if m["parent"]:
            headers.append(("In-Reply-To", m["parent"]["id"]))
            if n % 4 != 1:  # some clients drop References
                headers.append(("References", " ".join(m["refs"])))
        envelope = f"From {_addr(m['author'], 'acme.example')} {m['when']:%a %b %d %H:%M:%S %Y}"
        blobs.append(envelope + "\n" + _eml(headers, f"{m['text']}\n\n-- \n{m['author']}"))
    return Fixture({"mail/export.mbox": "\n".join(blobs)}), {"messages": len(msgs)}


_THREADS_V1 = textwrap.dedent(
    """\
    import json, mailbox, os
    from datetime import timezone
    from email.utils import parseaddr, parsedate_to_datetime

    box = mailbox.mbox("mail/export.mbox")
    msgs = {}
    for m in box:
        mid = m["Message-ID"].strip()
        refs = (m["References"] or "").split()
        parent = (m["In-Reply-To"] or "").strip() or (refs[-1] if refs else None)
        msgs[mid] = {"message_id": mid, "parent": parent, "subject": m["Subject"],
                     "from": parseaddr(m["From"])[1], "name": parseaddr(m["From"])[0],
                     "date": parsedate_to_datetime(m["Date"]), "children": []}

    for mid, m in msgs.items():
        if m["parent"] not in msgs:
            m["parent"] = None
        else:
            msgs[m["parent"]]["children"].append(mid)


    def root(mid):
        while msgs[mid]["parent"]:
            mid = msgs[mid]["parent"]
        return mid


    threads = {}
    for mid in msgs:
        threads.setdefault(root(mid), []).append(mid)
    order = sorted(threads, key=lambda r: min(msgs[m]["date"] for m in threads[r]))


    def walk(mid, depth, out):
        m = msgs[mid]
        out.append({"message_id": mid, "depth": depth, "from": m["from"],
                    "subject": m["subject"],
                    "date": m["date"].astimezone(timezone.utc).isoformat()})
        for child in sorted(m["children"], key=lambda c: msgs[c]["date"]):
            walk(child, depth + 1, out)
        return out


    result, md = [], ["# Threads in mail/export.mbox", ""]
    for n, r in enumerate(order, 1):
        items = walk(r, 0, [])
        people = sorted({i["from"] for i in items})
        result.append({"subject": msgs[r]["subject"], "first_date": items[0]["date"],
                       "participants": people, "message_count": len(items), "messages": items})
        md += [f"## {n}. {msgs[r]['subject']} ({len(items)} messages)", "",
               "Participants: " + ", ".join(people), ""]
        for i in items:
            md.append(f"{'  ' * i['depth']}- {i['date'][:16].replace('T', ' ')} UTC "
                      f"{msgs[i['message_id']]['name']}: {i['subject']}")
        md.append("")
    os.makedirs("out", exist_ok=True)
    json.dump(result, open("out/threads.json", "w"), indent=2)
    open("out/threads.md", "w").write("\\n".join(md))
    print(f"{len(msgs)} messages in {len(result)} threads")
    """
)
_THREADS_V2 = _swap(
    _swap(
        _THREADS_V1,
        "from email.utils import parseaddr, parsedate_to_datetime\n",
        "from email.utils import parseaddr, parsedate_to_datetime\n\n\n"
        "def when(header):\n"
        "    d = parsedate_to_datetime(header)\n"
        "    # '-0000' means 'zone unknown' and parses as naive; treat it as UTC.\n"
        "    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)\n\n",
    ),
    '"date": parsedate_to_datetime(m["Date"])',
    '"date": when(m["Date"])',
)


def _mbox_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "grep -c '^From ' mail/export.mbox; grep -c '^References:' mail/export.mbox; "
            "grep -c '^In-Reply-To:' mail/export.mbox; grep -m5 '^Subject:' mail/export.mbox",
            say="Counting messages and how many carry threading headers.",
        ),
        read("mail/export.mbox", 1, 24, say="Reading the first couple of messages."),
    ]
    yield write("threads.py", _THREADS_V1, say="Writing a threader over Message-ID/In-Reply-To.")
    run = yield sh("python3 threads.py")
    if not run.ok:
        yield sh(
            "grep '^Date:' mail/export.mbox | cut -c1-6,32- | sort | uniq -c",
            say="Comparing dates failed; looking for Date headers without a usable zone.",
        )
        yield write(
            "threads.py",
            _THREADS_V2,
            say="-0000 dates parse as naive datetimes; normalising them to UTC.",
        )
        run = yield sh("python3 threads.py")
    yield Reply(
        f"Reconstructed the threads: {run.stdout.strip()}, ordered by first message, in "
        "out/threads.md with the JSON copy in out/threads.json."
    )
    check, _ = yield [
        sh(
            "jq '[.[].message_count] | add' out/threads.json; "
            "jq -r '.[].messages[].message_id' out/threads.json | sort | uniq -d | wc -l",
            say="Checking every message is in exactly one thread and the indentation reads right.",
        ),
        read("out/threads.md", 1, 14),
    ]
    out = check.stdout.split() if check.ok else ["?", "?"]
    yield Reply(f"Checked: {out[0]} messages across the threads, {out[1]} listed twice.")


_THREADS_VERIFY = r"""
import json, mailbox, re, sys
from datetime import timezone
from email.utils import parseaddr, parsedate_to_datetime
box = list(mailbox.mbox("mail/export.mbox"))
parent, date, sender = {}, {}, {}
for m in box:
    mid = m["Message-ID"].strip()
    parent[mid] = (m["In-Reply-To"] or "").strip() or None
    d = parsedate_to_datetime(m["Date"])
    date[mid] = d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    sender[mid] = parseaddr(m["From"])[1].lower()
def root(mid):
    while parent[mid] in parent:
        mid = parent[mid]
    return mid
def depth(mid):
    return 0 if parent[mid] not in parent else 1 + depth(parent[mid])
want = {}
for mid in parent:
    want.setdefault(root(mid), set()).add(mid)
try:
    threads = json.load(open("out/threads.json"))
    md = open("out/threads.md").read()
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"missing or invalid output: {e}")
seen, firsts = [], []
for t in threads:
    ids = [x["message_id"] for x in t["messages"]]
    seen += ids
    if set(ids) not in want.values():
        sys.exit(f"thread {t['subject']!r} does not match the reply structure")
    if t["message_count"] != len(ids):
        sys.exit(f"thread {t['subject']!r}: wrong message count")
    if {p.lower() for p in t["participants"]} != {sender[i] for i in ids}:
        sys.exit(f"thread {t['subject']!r}: wrong participants")
    for x in t["messages"]:
        if x.get("depth", x.get("level")) != depth(x["message_id"]):
            sys.exit(f"{x['message_id']}: wrong reply depth")
    firsts.append(min(date[i] for i in ids))
    if t["subject"] not in md:
        sys.exit(f"out/threads.md does not show thread {t['subject']!r}")
if sorted(seen) != sorted(parent):
    sys.exit("not every message is in exactly one thread")
if len(threads) != len(want) or firsts != sorted(firsts):
    sys.exit("threads are missing or not ordered by first message date")
if not re.search(r"^\s{2,}\S", md, re.M):
    sys.exit("out/threads.md shows no indented replies")
print(f"ok: {len(parent)} messages in {len(threads)} threads")
"""


# ---------------------------------------------------------------- comms-verify-outbox-dispatcher

_DISPATCHER = textwrap.dedent(
    """\
    \"\"\"Notification dispatcher: polls outbox/queue/ and renders notifications as emails.

    Usage: python3 comms/dispatcher.py [--log PATH] [--once]

    Each file outbox/queue/<name>.json holds one notification as a JSON object. The dispatcher
    renders it with the sender and subject prefix from comms/config.json into
    outbox/sent/<name>.eml and removes it from the queue; files it cannot use are moved to
    outbox/failed/. Nothing is sent over the network: outbox/sent/ is the delivery.
    \"\"\"

    import argparse
    import json
    import os
    import signal
    import sys
    import time
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    OUTBOX = os.path.join(ROOT, "outbox")
    REQUIRED = ("to", "subject", "body")


    def load_config():
        with open(os.path.join(ROOT, "comms", "config.json")) as f:
            return json.load(f)


    def render(note, config):
        msg = EmailMessage()
        msg["From"] = config["sender"]
        msg["To"] = note["to"]
        msg["Subject"] = f"{config['subject_prefix']} {note['subject']}"
        msg["Date"] = formatdate()
        msg["Message-ID"] = make_msgid(domain=config["domain"])
        msg.set_content(note["body"])
        return msg


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--log")
        parser.add_argument("--once", action="store_true")
        args = parser.parse_args()
        config = load_config()
        logfile = open(args.log, "a") if args.log else None

        def log(line):
            line = f"{time.strftime('%H:%M:%S')} {line}"
            print(line, flush=True)
            if logfile:
                logfile.write(line + "\\n")
                logfile.flush()

        def stop(signum, frame):
            log("dispatcher stopped")
            sys.exit(0)

        signal.signal(signal.SIGTERM, stop)
        for sub in ("queue", "sent", "failed"):
            os.makedirs(os.path.join(OUTBOX, sub), exist_ok=True)
        log(f"dispatcher started, polling outbox/queue every {config['poll_interval_s']}s")
        while True:
            for name in sorted(os.listdir(os.path.join(OUTBOX, "queue"))):
                if not name.endswith(".json"):
                    continue
                path = os.path.join(OUTBOX, "queue", name)
                try:
                    with open(path) as f:
                        note = json.load(f)
                    missing = [k for k in REQUIRED if not note.get(k)]
                except ValueError as exc:
                    missing = [f"valid JSON ({exc})"]
                if missing:
                    os.replace(path, os.path.join(OUTBOX, "failed", name))
                    log(f"rejected {name}: missing {', '.join(missing)}")
                    continue
                stem = name[: -len(".json")]
                out = os.path.join(OUTBOX, "sent", stem + ".eml")
                with open(out + ".part", "w") as f:
                    f.write(render(note, config).as_string())
                os.replace(out + ".part", out)
                os.remove(path)
                log(f"sent {name} -> outbox/sent/{stem}.eml to {note['to']}")
            if args.once:
                break
            time.sleep(config["poll_interval_s"])


    if __name__ == "__main__":
        main()
    """
)


def _dispatcher_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    brand = rng.choice(["Acme", "Northwind", "Globex"])
    domain = f"{brand.lower()}.example"
    config = {
        "sender": f"{brand} Notifications <notify@{domain}>",
        "subject_prefix": f"[{brand}]",
        "domain": domain,
        "poll_interval_s": 0.2,
    }
    files = {
        "comms/dispatcher.py": _DISPATCHER,
        "comms/config.json": json.dumps(config, indent=2) + "\n",
        "outbox/queue/.keep": "",
    }
    return Fixture(files), {"sender": config["sender"]}


_QUEUE_TEST_V1 = textwrap.dedent(
    """\
    \"\"\"Queue three test notifications, wait for the dispatcher, check what it delivered.\"\"\"
    import email, json, os, sys, time
    from email import policy

    config = json.load(open("comms/config.json"))
    TESTS = [
        ("test-disk-alert", "ops@example.org", "Disk usage above 80% on db-1",
         "db-1 is at 83% disk usage."),
        ("test-weekly-report", "dana@example.org", "Your weekly report is ready",
         "The report for week 45 is ready."),
        ("test-backup-done", "oncall@example.org", "Nightly backup completed",
         "Backup finished in 14 minutes."),
    ]
    for name, to, subject, body in TESTS:
        note = {"recipient": to, "subject": subject, "body": body}
        tmp = f"outbox/queue/{name}.json.tmp"  # rename into place so no half file is read
        with open(tmp, "w") as f:
            json.dump(note, f)
        os.replace(tmp, tmp[: -len(".tmp")])

    deadline = time.time() + 6
    while time.time() < deadline:  # until the dispatcher has picked up every test file
        if not any(os.path.exists(f"outbox/queue/{n}.json") for n, *_ in TESTS):
            break
        time.sleep(0.1)

    lines, ok = ["# Dispatcher check", ""], True
    for name, to, subject, _ in TESTS:
        path = f"outbox/sent/{name}.eml"
        if not os.path.exists(path):
            lines.append(f"- {name}: NOT delivered")
            ok = False
            continue
        with open(path) as f:
            msg = email.message_from_file(f, policy=policy.default)
        want = {"From": config["sender"], "To": to,
                "Subject": f"{config['subject_prefix']} {subject}"}
        wrong = [f"{h} is {msg[h]!r}" for h, v in want.items() if str(msg[h]) != v]
        ok = ok and not wrong
        lines.append(f"- {name}: " + ("delivered, From/To/Subject correct" if not wrong
                                      else "WRONG " + "; ".join(wrong)))
    os.makedirs("out", exist_ok=True)
    with open("out/dispatch_check.md", "w") as f:
        f.write("\\n".join(lines) + "\\n")
    print("\\n".join(lines))
    sys.exit(0 if ok else 1)
    """
)
_QUEUE_TEST_V2 = _swap(
    _QUEUE_TEST_V1,
    'note = {"recipient": to,',
    'note = {"to": to,',
)


def _dispatcher_playbook(ctx: Ctx) -> Playbook:
    yield read("comms/dispatcher.py", 1, 10, say="Reading the dispatcher's usage notes.")
    job, _ = yield [
        start(
            "mkdir -p out && python3 comms/dispatcher.py --log out/dispatcher.log",
            say="Starting the dispatcher in the background with a log file.",
        ),
        write("scripts/queue_test.py", _QUEUE_TEST_V1, say="Meanwhile, writing a script that "
              "queues three test notifications and checks the delivered headers."),
    ]  # fmt: skip
    job_id = job.extras.get("job", "job1")
    run = yield sh("python3 scripts/queue_test.py", timeout_s=20)
    if not run.ok:
        yield output(job_id, say="Nothing was delivered; reading the dispatcher's output.")
        # The dispatcher wants a "to" field; "recipient" made it reject all three.
        yield write(
            "scripts/queue_test.py",
            _QUEUE_TEST_V2,
            say="It rejected them for a missing 'to' field; renaming recipient to to.",
        )
        run = yield sh("python3 scripts/queue_test.py", timeout_s=20)
    stopped = yield kill(job_id, say="Stopping the dispatcher.")
    yield Reply(
        "Ran the dispatcher as a background job, queued three test notifications and checked "
        f"them (out/dispatch_check.md):\n{run.stdout.strip()}\nThe dispatcher is stopped "
        f"(running={stopped.extras.get('running')}); its log is in out/dispatcher.log."
    )
    check = yield sh(
        "ls outbox/sent/ | wc -l; ls outbox/failed/ | wc -l; tail -n 4 out/dispatcher.log",
        say="Confirming the delivered files and the saved log.",
    )
    counts = check.stdout.split() if check.ok else ["?", "?"]
    yield Reply(
        f"Checked: {counts[0]} messages in outbox/sent/, the log ends with the shutdown; the "
        f"{counts[1]} rejected files from my first attempt are left in outbox/failed/."
    )


_DISPATCHER_VERIFY = r"""
import email, glob, json, os, sys
from email import policy
config = json.load(open("comms/config.json"))
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
    except OSError:
        continue
    if b"comms/dispatcher.py" in cmd:
        sys.exit("the dispatcher is still running")
sent = sorted(glob.glob("outbox/sent/*.eml"))
if len(sent) < 3:
    sys.exit(f"only {len(sent)} messages in outbox/sent/")
for path in sent:
    msg = email.message_from_binary_file(open(path, "rb"), policy=policy.default)
    if str(msg["From"]) != config["sender"]:
        sys.exit(f"{path}: From is {msg['From']}")
    if not str(msg["Subject"] or "").startswith(config["subject_prefix"] + " ") or not msg["To"]:
        sys.exit(f"{path}: bad Subject or To")
if glob.glob("outbox/queue/*.json"):
    sys.exit("notifications are still waiting in the queue")
try:
    note = open("out/dispatch_check.md").read()
    log = open("out/dispatcher.log").read()
except FileNotFoundError as e:
    sys.exit(f"missing {e.filename}")
for path in sent:
    stem = os.path.basename(path)[:-4]
    if stem not in note or f"sent {stem}.json" not in log:
        sys.exit(f"{stem} is not in the verification note or the dispatcher log")
if "NOT delivered" in note or "WRONG" in note:
    sys.exit("the verification note reports a failure")
print(f"ok: {len(sent)} delivered, dispatcher stopped, log saved")
"""


# ---------------------------------------------------------------- comms-build-mention-digest

_MENTION_ASKS = ["can you review the rollout plan?", "do you have the Q4 numbers handy?",
                 "could you approve the budget line for the offsite?",
                 "what do you think about moving the demo to Friday?",
                 "please sign off the copy for the landing page",
                 "is the vendor contract ready to send?", "can you join the 3pm call?",
                 "the design doc needs your comments"]  # fmt: skip
_MENTION_CHATTER = ["deploy went fine", "lunch at 12?", "pushed the fix", "who is on call?",
                    "notes from the retro are in the doc", "great demo today",
                    "@danae the printer is fixed", "I'll take that ticket"]  # fmt: skip


def _mention_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = _people(rng, 6)
    users = [{"id": f"U0{rng.randrange(10**6, 10**7)}", "name": n.lower().replace(" ", "."),
              "real_name": n} for n in names]  # fmt: skip
    dana = {"id": f"U0{rng.randrange(10**6, 10**7)}", "name": "dana", "real_name": "Dana Okafor"}
    danae = {"id": f"U0{rng.randrange(10**6, 10**7)}", "name": "danae", "real_name": "Danae Ruiz"}
    users += [dana, danae]
    rng.shuffle(users)
    others = [u["id"] for u in users if u["name"] not in ("dana",)]
    channels = ["general", "eng", "design", "support", "marketing"]
    days = [f"2026-11-0{d}" for d in range(2, 7)]
    msgs: dict[tuple[str, str], list[dict]] = {}

    def post(channel: str, day: str, user: str, text: str, after: float = 0.0, **extra) -> dict:
        ts = max(
            _epoch(day, rng.randrange(8, 18), rng.randrange(60)), after + rng.randrange(60, 900)
        )
        day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
        m = {"type": "message", "user": user, "text": text,
             "ts": f"{ts + rng.randrange(10**6) / 1e6:.6f}", **extra}  # fmt: skip
        msgs.setdefault((channel, day), []).append(m)
        return m

    for channel in channels:
        for day in days:
            for _ in range(rng.randrange(2, 5)):
                post(channel, day, rng.choice(others), rng.choice(_MENTION_CHATTER))
    for i in range(10):
        channel, day, ask = rng.choice(channels), rng.choice(days), rng.choice(_MENTION_ASKS)
        token = f"<@{dana['id']}>" if i % 2 == 0 else rng.choice(["@dana", "@Dana"])
        text = f"{token} {ask}" if i % 3 else f"quick one for {token}: {ask}"
        m = post(channel, day, rng.choice(others), text)
        if i % 3 == 1:  # Dana answers in the thread
            m["thread_ts"] = m["ts"]
            post(channel, day, dana["id"], "On it, will reply by tomorrow.", float(m["ts"]),
                 thread_ts=m["ts"], parent_user_id=m["user"])  # fmt: skip
    files: dict[str, str | bytes] = {"chat/export/users.json": json.dumps(users, indent=2) + "\n"}
    files["chat/export/channels.json"] = json.dumps([{"name": c} for c in channels], indent=2)
    for (channel, day), items in sorted(msgs.items()):
        items.sort(key=lambda m: float(m["ts"]))
        files[f"chat/export/{channel}/{day}.json"] = json.dumps(items, indent=2) + "\n"
    return Fixture(files), {"dana": dana["id"]}


_DIGEST_V1 = textwrap.dedent(
    """\
    import glob, json, os, re
    from datetime import datetime, timezone

    users = {u["id"]: u for u in json.load(open("chat/export/users.json"))}
    dana = next(u for u in users.values() if u["name"] == "dana")
    MENTION = re.compile(rf"<@{dana['id']}>|@dana\\b", re.I)
    TOKEN = re.compile(r"<@(U\\w+)>")


    def excerpt(text):
        text = TOKEN.sub(lambda m: "@" + users.get(m.group(1), {}).get("name", "?"), text)
        return text if len(text) <= 70 else text[:67] + "..."


    by_channel, answered = {}, set()
    for path in sorted(glob.glob("chat/export/*/*.json")):
        channel = os.path.basename(os.path.dirname(path))
        for m in json.load(open(path)):
            m["channel"] = channel
            m["time"] = datetime.fromtimestamp(m["ts"], timezone.utc)
            if m["user"] == dana["id"] and "thread_ts" in m:
                answered.add((channel, m["thread_ts"], m["time"]))
            elif MENTION.search(m["text"]) and m["user"] != dana["id"]:
                by_channel.setdefault(channel, []).append(m)


    def replied(m):
        thread = m.get("thread_ts", m["ts"])
        return any(c == m["channel"] and t == thread and when > m["time"]
                   for c, t, when in answered)


    lines = [f"# Mentions of @dana ({dana['real_name']}, {dana['id']})", ""]
    waiting = []
    for channel in sorted(by_channel):
        lines += [f"## #{channel}", ""]
        for m in sorted(by_channel[channel], key=lambda m: float(m["ts"])):
            state = "replied" if replied(m) else "awaiting reply"
            if state != "replied":
                waiting.append(m)
            lines.append(f"- {m['time']:%Y-%m-%d %H:%M} UTC, {users[m['user']]['real_name']}: "
                         f"\\"{excerpt(m['text'])}\\" (ts {m['ts']}, {state})")
        lines.append("")
    lines += ["## Awaiting a reply from Dana", ""]
    for m in sorted(waiting, key=lambda m: float(m["ts"])):
        lines.append(f"- #{m['channel']} {m['time']:%Y-%m-%d %H:%M} UTC, "
                     f"{users[m['user']]['real_name']} (ts {m['ts']})")
    os.makedirs("out", exist_ok=True)
    open("out/dana_mentions.md", "w").write("\\n".join(lines) + "\\n")
    total = sum(map(len, by_channel.values()))
    print(f"{total} mentions in {len(by_channel)} channels, {len(waiting)} awaiting a reply")
    """
)
_DIGEST_V2 = _swap(
    _DIGEST_V1,
    'm["time"] = datetime.fromtimestamp(m["ts"], timezone.utc)',
    'm["time"] = datetime.fromtimestamp(float(m["ts"]), timezone.utc)  # ts is a string',
)


def _mention_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh(
            "ls chat/export/ && ls chat/export/eng | head -3 && "
            "grep -rhoi -E '<@U[0-9]+>|@dana\\w*' chat/export/*/ | sort | uniq -c",
            say="Looking at the export layout and how Dana gets mentioned.",
        ),
        read("chat/export/users.json", say="Finding Dana's user id."),
    ]
    yield write("digest.py", _DIGEST_V1, say="Writing the digest script.")
    run = yield sh("python3 digest.py")
    if not run.ok:
        yield write(
            "digest.py",
            _DIGEST_V2,
            say="Slack timestamps are strings; converting ts to float before making dates.",
        )
        run = yield sh("python3 digest.py")
    yield Reply(f"Built out/dana_mentions.md: {run.stdout.strip()}, grouped by channel.")
    check, _ = yield [
        sh(
            "grep -c '^- ' out/dana_mentions.md; grep -c '@danae' out/dana_mentions.md || true",
            say="Checking @danae was not counted and reading the awaiting-reply list.",
        ),
        sh("sed -n '/Awaiting/,$p' out/dana_mentions.md"),
    ]
    first = check.stdout.split() if check.ok else ["?", "?"]
    yield Reply(
        f"Checked: {first[0]} digest lines (mentions plus the awaiting list), {first[1]} "
        "quoting @danae by mistake, and the awaiting list only has unanswered mentions."
    )


_MENTION_VERIFY = r"""
import glob, json, os, re, sys
users = {u["id"]: u for u in json.load(open("chat/export/users.json"))}
dana = next(u for u in users.values() if u["name"] == "dana")
MENTION = re.compile(rf"<@{dana['id']}>|@dana\b", re.I)
msgs = []
for path in glob.glob("chat/export/*/*.json"):
    for m in json.load(open(path)):
        m["channel"] = os.path.basename(os.path.dirname(path))
        msgs.append(m)
replies = [m for m in msgs if m["user"] == dana["id"] and "thread_ts" in m]
def answered(m):
    thread = m.get("thread_ts", m["ts"])
    return any(r["channel"] == m["channel"] and r["thread_ts"] == thread
               and float(r["ts"]) > float(m["ts"]) for r in replies)
mentions = [m for m in msgs if m["user"] != dana["id"] and MENTION.search(m["text"])]
try:
    lines = open("out/dana_mentions.md").read().splitlines()
except FileNotFoundError:
    sys.exit("out/dana_mentions.md is missing")
sections, current = {}, None
for line in lines:
    if line.startswith("#"):
        current = line
    sections.setdefault(current, []).append(line)
awaiting = next((v for k, v in sections.items() if k and "await" in k.lower()), None)
if awaiting is None:
    sys.exit("no section listing mentions awaiting a reply")
for m in msgs:
    if m not in mentions and any(m["ts"] in l for l in lines):
        sys.exit(f"{m['ts']} is not a mention of Dana but is in the digest")
order = {}
for m in mentions:
    head = next((k for k in sections if k and re.search(rf"#{m['channel']}\b", k)
                 and "await" not in k.lower()), None)
    if head is None:
        sys.exit(f"no section for channel {m['channel']}")
    hits = [i for i, l in enumerate(sections[head]) if m["ts"] in l]
    author = users[m["user"]]
    names = (author["real_name"], author["name"])
    if not hits or not any(n in sections[head][hits[0]] for n in names):
        sys.exit(f"mention {m['ts']} in #{m['channel']} missing or without its author")
    order.setdefault(head, []).append((hits[0], float(m["ts"])))
    listed = any(m["ts"] in l for l in awaiting)
    if listed == answered(m):
        sys.exit(f"mention {m['ts']} is {'wrongly' if listed else 'not'} in the awaiting list")
for head, pairs in order.items():
    if [t for _, t in sorted(pairs)] != sorted(t for _, t in pairs):
        sys.exit(f"{head} is not sorted by time")
print(f"ok: {len(mentions)} mentions, {sum(not answered(m) for m in mentions)} awaiting")
"""


# ---------------------------------------------------------------- comms-redact-chat-export

_AGENTS = ["Sam", "Robin", "Jordan", "Alex"]
_PHONE_FORMATS = ["+1 415-555-{n:04d}", "(415) 555-{n:04d}", "415.555.{n:04d}",
                  "+44 20 7946 {n:04d}", "+49 30 555{n:04d}"]  # fmt: skip


def _redact_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    names = _people(rng, 45)
    people = []
    for i, name in enumerate(names):
        phone = _PHONE_FORMATS[i % len(_PHONE_FORMATS)].format(n=rng.randrange(100, 9999))
        people.append({"name": name, "email": _addr(name, rng.choice(CUSTOMER_DOMAINS)),
                       "phone": phone})  # fmt: skip
    convs = []
    for c in range(80):
        p = people[c] if c < len(people) else rng.choice(people)  # some customers come back
        first = p["name"].split()[0]
        agent = rng.choice(_AGENTS)
        order = f"#{rng.randrange(10000, 99999)}"
        msgs = [
            ("customer", f"Hi, this is {p['name']}. My order {order} arrived damaged."),
            ("agent", f"Sorry to hear that, {first}. Can you confirm your email address?"),
            ("customer", f"Sure, it's {p['email']}."),
            ("agent", f"Thanks {first}, I found the order. A replacement is on its way."),
        ]
        if c % 2 == 0:
            msgs.append(("customer", f"Great. If the courier needs me, call {p['phone']}."))
        if c % 5 == 0:
            msgs.append(
                ("agent", f"Noted, {p['name']}. I also sent a confirmation to {p['email']}.")
            )
        convs.append(
            {
                "id": f"conv-{1000 + c}",
                "channel": rng.choice(["web", "email", "app"]),
                "agent": agent,
                "customer": {"name": p["name"], "email": p["email"]},
                "messages": [{"from": who, "text": text} for who, text in msgs],
            }
        )
    data = {"exported_at": "2026-11-05", "conversations": convs}
    files = {"chat/support_export.json": json.dumps(data, indent=2, ensure_ascii=False) + "\n"}
    return Fixture(files), {"people": len(people)}


_REDACT_V1 = textwrap.dedent(
    """\
    import json, os, re

    EMAIL = re.compile(r"[\\w.+-]+@[\\w-]+(\\.[\\w-]+)+")
    PHONE = re.compile(r"\\+\\d{1,3} \\d{2,3}[ -]\\d{3,4}[ -]?\\d{0,4}")
    # Anything with 9+ digits in a phone-like run counts as a leftover phone number.
    SCAN = re.compile(r"\\(?\\+?\\d[\\d\\s().-]{7,}\\d")

    data = json.load(open("chat/support_export.json"))
    pseudonyms, mapping = {}, {}


    def pseudonym(person):
        key = person["email"].lower()
        if key not in pseudonyms:
            pseudonyms[key] = f"Customer-{len(pseudonyms) + 1:03d}"
            mapping[pseudonyms[key]] = {"name": person["name"], "emails": [person["email"]],
                                        "phones": []}
        return pseudonyms[key]


    def redact(text, person, alias):
        text = text.replace(person["name"], alias)
        text = re.sub(rf"\\b{re.escape(person['name'].split()[0])}\\b", alias, text)
        text = EMAIL.sub(f"[email {alias}]", text)
        for phone in PHONE.findall(text):
            if phone not in mapping[alias]["phones"]:
                mapping[alias]["phones"].append(phone)
        return PHONE.sub(f"[phone {alias}]", text)


    for conv in data["conversations"]:
        alias = pseudonym(conv["customer"])
        conv["customer"] = {"name": alias, "email": f"[email {alias}]"}
        for msg in conv["messages"]:
            msg["text"] = redact(msg["text"], mapping[alias], alias)

    leftovers = [m.group(0) for c in data["conversations"] for msg in c["messages"]
                 for m in SCAN.finditer(msg["text"])
                 if sum(ch.isdigit() for ch in m.group(0)) >= 9]
    leftovers += [m.group(0) for c in data["conversations"] for msg in c["messages"]
                  for m in EMAIL.finditer(msg["text"])]
    if leftovers:
        raise SystemExit(f"{len(leftovers)} contact details survived, e.g. {leftovers[:3]}")
    os.makedirs("share", exist_ok=True)
    os.makedirs("private", exist_ok=True)
    json.dump(data, open("share/support_export_redacted.json", "w"), indent=2)
    json.dump(mapping, open("private/pseudonyms.json", "w"), indent=2)
    print(f"{len(data['conversations'])} conversations redacted, {len(mapping)} people")
    """
)
_REDACT_V2 = _swap(
    _REDACT_V1,
    'PHONE = re.compile(r"\\+\\d{1,3} \\d{2,3}[ -]\\d{3,4}[ -]?\\d{0,4}")',
    "# International, (415) 555-0134 and 415.555.0134 styles.\n"
    'PHONE = re.compile(r"(?:\\+\\d{1,3}[ .-]?)?(?:\\(\\d{3}\\)|\\d{2,3})"\n'
    '                   r"[ .-]\\d{3,4}[ .-]?\\d{3,4}")',
)


def _redact_playbook(ctx: Ctx) -> Playbook:
    yield [
        sh("jq '.conversations | length' chat/support_export.json", say="Counting the "
           "conversations and looking at the first one's structure."),
        sh("jq '.conversations[0]' chat/support_export.json"),
    ]  # fmt: skip
    yield write("redact.py", _REDACT_V1, say="Writing the redaction script with a final scan.")
    run = yield sh("python3 redact.py")
    if not run.ok:
        yield sh(
            "grep -ohE '\\(?\\+?[0-9][0-9 ().-]{7,}[0-9]' chat/support_export.json "
            "| sed -E 's/[0-9]/9/g' | sort | uniq -c",
            say="The scan found leftover numbers; checking which phone formats exist.",
        )
        yield write(
            "redact.py",
            _REDACT_V2,
            say="My phone pattern only knew '+CC' numbers; covering (415) and dotted styles.",
        )
        run = yield sh("python3 redact.py")
    yield Reply(
        f"Redacted the export: {run.stdout.strip()}. The shareable copy is "
        "share/support_export_redacted.json; the pseudonym mapping is private/pseudonyms.json, "
        "outside share/."
    )
    _, check = yield [
        read("share/support_export_redacted.json", 1, 30, say="Reading the redacted output,"),
        sh(
            "ls share/; grep -cE '@[a-z]+\\.example' share/support_export_redacted.json || true",
            say="and making sure only the redacted file is in share/ and no address is left.",
        ),
    ]
    left = check.stdout.split()[-1] if check.stdout.split() else "?"
    yield Reply(
        f"Checked: share/ holds only the redacted export and {left} email addresses remain."
    )


_REDACT_VERIFY = r"""
import json, os, re, sys
src = json.load(open("chat/support_export.json"))["conversations"]
try:
    red = json.load(open("share/support_export_redacted.json"))["conversations"]
    mapping = json.load(open("private/pseudonyms.json"))
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"missing or invalid output: {e}")
for root, _, names in os.walk("share"):
    for n in names:
        if "pseudonym" in n or "mapping" in n:
            sys.exit(f"a mapping file is inside share/: {n}")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
SCAN = re.compile(r"\(?\+?\d[\d\s().-]{7,}\d")
if [c["id"] for c in red] != [c["id"] for c in src]:
    sys.exit("conversations were dropped or reordered")
alias_of = {}
for a, info in mapping.items():
    alias_of[json.dumps(info)] = a
blob = json.dumps(red, ensure_ascii=False)
if EMAIL.search(blob):
    sys.exit(f"an email address is left: {EMAIL.search(blob).group(0)}")
for m in SCAN.finditer(blob):
    if sum(ch.isdigit() for ch in m.group(0)) >= 9:
        sys.exit(f"a phone number is left: {m.group(0)}")
seen = {}
for s, r in zip(src, red):
    if [m["from"] for m in s["messages"]] != [m["from"] for m in r["messages"]]:
        sys.exit(f"{s['id']}: conversation structure changed")
    name = s["customer"]["name"]
    text = json.dumps(r, ensure_ascii=False)
    for part in (name, name.split()[0]):
        if re.search(rf"\b{re.escape(part)}\b", text):
            sys.exit(f"{s['id']}: customer name {part!r} is still there")
    alias = r["customer"]["name"]
    if seen.setdefault(s["customer"]["email"].lower(), alias) != alias:
        sys.exit(f"{name} got two different pseudonyms")
    if name not in json.dumps(mapping.get(alias, ""), ensure_ascii=False):
        sys.exit(f"{s['id']}: pseudonym {alias!r} does not map back to the customer")
    if alias not in " ".join(m["text"] for m in r["messages"]):
        sys.exit(f"{s['id']}: messages do not use the pseudonym {alias!r}")
if len(set(seen.values())) != len(seen):
    sys.exit("two people share a pseudonym")
print(f"ok: {len(red)} conversations, {len(seen)} people pseudonymised")
"""


# ---------------------------------------------------------------- comms-apply-mail-filter-rules

_FILTER_RULES = [
    {"name": "receipts", "match": {"from_domain": ["shop.example", "payments.example"]},
     "folder": ".Receipts"},
    {"name": "alerts", "match": {"subject_regex": "^\\[(ALERT|ALARM)\\]"}, "folder": ".Alerts"},
    {"name": "ci", "match": {"from_domain": ["ci.acme.example"]}, "folder": ".CI"},
    {"name": "newsletters", "match": {"header": "List-Id", "contains": "newsletter"},
     "folder": ".Newsletters"},
    {"name": "mailing-lists", "match": {"header": "List-Id"}, "folder": ".Lists"},
    {"name": "invoices", "match": {"subject_regex": "(?i)\\b(invoice|receipt)\\b"},
     "folder": ".Receipts"},
    {"name": "social", "match": {"from_domain": ["social.example"]}, "folder": ".Social"},
]  # fmt: skip
_FILTER_KINDS = [
    ("orders@shop.example", "Your order {n} has shipped", None),
    ("billing@payments.example", "Payment received for invoice {n}", None),
    ("monitor@status.acme.example", "[ALERT] CPU above 90% on web-{n}", None),
    ("builds@ci.acme.example", "[ALERT] Pipeline {n} failed on main", None),
    ("builds@ci.acme.example", "Pipeline {n} passed", None),
    ("digest@news.example", "The weekly digest #{n}", "<weekly.newsletter.news.example>"),
    ("deals@shop.example", "Weekend deals #{n}", "<deals.newsletter.shop.example>"),
    ("dev-list@lists.example.org", "[dev] RFC {n}: async handlers", "<dev.lists.example.org>"),
    ("accounts@vendor.example", "Invoice {n} for November", None),
    ("notify@social.example", "{n} people viewed your profile", None),
    ("{person}", "Dinner on Saturday?", None),
    ("{person}", "Photos from the trip", None),
    ("{person}", "Re: your question about the receipt scanner", None),
]  # fmt: skip


def _filter_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    people = _people(rng, 10)
    files: dict[str, str | bytes] = {"mail/rules.json": json.dumps({"rules": _FILTER_RULES},
                                                                   indent=2) + "\n"}  # fmt: skip
    kinds = _FILTER_KINDS + [rng.choice(_FILTER_KINDS) for _ in range(40 - len(_FILTER_KINDS))]
    rng.shuffle(kinds)
    base = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
    for i, (sender, subject, list_id) in enumerate(kinds):
        if sender == "{person}":
            name = rng.choice(people)
            sender = f"{name} <{_addr(name, rng.choice(['mail.example', 'post.example']))}>"
        when = base + timedelta(minutes=23 * i + rng.randrange(20))
        headers = [("From", sender), ("To", "me@home.example"),
                   ("Subject", subject.format(n=rng.randrange(100, 999))),
                   ("Date", format_datetime(when)),
                   ("Message-ID", f"<{int(when.timestamp())}.{i}@mx.home.example>")]  # fmt: skip
        if list_id:
            headers.append(("List-Id", list_id))
            headers.append(("List-Unsubscribe", f"<mailto:leave-{i}@lists.example.org>"))
        name = f"{int(when.timestamp())}.M{300 + i}P{6000 + rng.randrange(999)}.mx"
        files[f"mail/Maildir/new/{name}"] = _eml(headers, "Message body.\n")
    for sub in ("cur", "tmp"):
        files[f"mail/Maildir/{sub}/.keep"] = ""
    return Fixture(files), {"messages": len(kinds)}


_FILTER_V1 = textwrap.dedent(
    """\
    import csv, email, json, os, re
    from email import policy
    from email.utils import parseaddr

    MAILDIR = "mail/Maildir"
    rules = json.load(open("mail/rules.json"))["rules"]


    def matches(rule, msg):
        cond = rule["match"]
        if "from_domain" in cond:
            domain = parseaddr(str(msg["From"]))[1].rsplit("@", 1)[-1].lower()
            if not any(domain == d or domain.endswith("." + d) for d in cond["from_domain"]):
                return False
        subject = str(msg["Subject"] or "")
        if "subject_regex" in cond and not re.search(cond["subject_regex"], subject):
            return False
        if "header" in cond:
            value = msg[cond["header"]]
            if value is None or cond.get("contains", "") not in str(value):
                return False
        return True


    counts = {r["name"]: 0 for r in rules}
    moves = []
    new = os.path.join(MAILDIR, "new")
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), "rb") as f:
            msg = email.message_from_binary_file(f, policy=policy.default)
        rule = next((r for r in rules if matches(r, msg)), None)  # first match wins
        if rule:
            counts[rule["name"]] += 1
            moves.append((name, rule["folder"]))

    for name, folder in moves:
        # Delivered mail that has been seen goes to cur/ with the ':2,' info suffix.
        os.rename(os.path.join(new, name), os.path.join(MAILDIR, folder, "cur", name + ":2,"))

    unmatched = len(os.listdir(new))
    os.makedirs("out", exist_ok=True)
    with open("out/filter_report.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rule", "folder", "matched"])
        for r in rules:
            w.writerow([r["name"], r["folder"], counts[r["name"]]])
        w.writerow(["(no match)", "new", unmatched])
    print(f"{len(moves)} messages moved, {unmatched} left in new/: "
          + ", ".join(f"{k}={v}" for k, v in counts.items()))
    """
)
_FILTER_V2 = _swap(
    _FILTER_V1,
    "for name, folder in moves:\n",
    "for folder in {f for _, f in moves}:\n"
    '    for sub in ("cur", "new", "tmp"):  # a Maildir++ folder needs all three\n'
    "        os.makedirs(os.path.join(MAILDIR, folder, sub), exist_ok=True)\n"
    "for name, folder in moves:\n",
)


def _filter_playbook(ctx: Ctx) -> Playbook:
    yield [
        read("mail/rules.json", say="Reading the routing rules."),
        sh(
            "ls -a mail/Maildir; ls mail/Maildir/new | wc -l; "
            "grep -h '^Subject:' mail/Maildir/new/* | head -8",
            say="And the Maildir layout with a sample of subjects.",
        ),
    ]
    yield write("apply_rules.py", _FILTER_V1, say="Writing a first-match-wins filter script.")
    run = yield sh("python3 apply_rules.py")
    if not run.ok:
        # None of the target folders exist yet; rename() into .Receipts/cur fails.
        yield write(
            "apply_rules.py",
            _FILTER_V2,
            say="The target folders do not exist yet; creating cur/new/tmp before moving.",
        )
        run = yield sh("ls mail/Maildir/new | wc -l && python3 apply_rules.py")
    yield Reply(f"Applied mail/rules.json: {run.stdout.strip().splitlines()[-1]}. "
                "Per-rule counts are in out/filter_report.csv.")  # fmt: skip
    _, check = yield [
        read(
            "out/filter_report.csv",
            say="Comparing the report with what is actually in each folder.",
        ),
        sh('for d in mail/Maildir/.*/cur; do echo "$d $(ls $d | wc -l)"; done'),
    ]
    folders = [line for line in check.stdout.splitlines() if "/cur " in line]
    yield Reply("Checked: the report matches the folders: " + "; ".join(folders) + ".")


_FILTER_VERIFY = r"""
import csv, email, glob, json, os, re, sys
from email import policy
from email.utils import parseaddr
rules = json.load(open("mail/rules.json"))["rules"]
def matches(rule, msg):
    cond = rule["match"]
    if "from_domain" in cond:
        domain = parseaddr(str(msg["From"]))[1].rsplit("@", 1)[-1].lower()
        if not any(domain == d or domain.endswith("." + d) for d in cond["from_domain"]):
            return False
    if "subject_regex" in cond and not re.search(cond["subject_regex"], str(msg["Subject"] or "")):
        return False
    if "header" in cond:
        value = msg[cond["header"]]
        if value is None or cond.get("contains", "") not in str(value):
            return False
    return True
where, counts = {}, {r["name"]: 0 for r in rules}
for path in glob.glob("mail/Maildir/new/*") + glob.glob("mail/Maildir/.*/*/*"):
    if os.path.basename(path).startswith("."):
        continue
    key = os.path.basename(path).split(":")[0]
    if key in where:
        sys.exit(f"{key} exists twice")
    msg = email.message_from_binary_file(open(path, "rb"), policy=policy.default)
    rule = next((r for r in rules if matches(r, msg)), None)
    here = os.path.relpath(path, "mail/Maildir").split(os.sep)
    want = [rule["folder"], "cur"] if rule else ["new"]
    if here[:-1] != want:
        sys.exit(f"{key} is in {'/'.join(here[:-1])}, expected {'/'.join(want)}")
    where[key] = rule["name"] if rule else None
    if rule:
        counts[rule["name"]] += 1
if not any(where.values()):
    sys.exit("no message was moved")
try:
    report = {r["rule"]: int(r["matched"]) for r in csv.DictReader(open("out/filter_report.csv"))}
except (FileNotFoundError, KeyError, ValueError) as e:
    sys.exit(f"out/filter_report.csv is missing or malformed: {e}")
for name, n in counts.items():
    if report.get(name, 0) != n:
        sys.exit(f"report says {report.get(name)} for rule {name}, folders hold {n}")
print(f"ok: {sum(counts.values())} moved, {list(where.values()).count(None)} unmatched")
"""


# ---------------------------------------------------------------- comms-fix-standup-bot-command

_BOT_COMMANDS = textwrap.dedent(
    """\
    \"\"\"Slash-command handlers. Each takes (args, user) and returns the reply text.\"\"\"


    def help_command(args, user):
        from bot.registry import describe

        return "Commands:\\n" + "\\n".join(f"{name}  {text}" for name, text in describe())


    def ping(args, user):
        return "pong"


    def echo(args, user):
        return args or "(nothing to echo)"
    """
)
_BOT_REGISTRY_OLD = textwrap.dedent(
    """\
    \"\"\"Command registry: maps slash commands to their handlers.\"\"\"

    from bot import commands

    COMMANDS = {
        "/help": commands.help_command,
        "/ping": commands.ping,
        "/echo": commands.echo,
    }


    def dispatch(text, user="someone"):
        name, _, args = text.strip().partition(" ")
        handler = COMMANDS.get(name)
        if handler is None:
            return f"Unknown command {name}. Try /help."
        return handler(args.strip(), user)
    """
)
_BOT_REGISTRY = textwrap.dedent(
    """\
    \"\"\"Command registry: maps slash commands to their handlers and help texts.\"\"\"

    from bot import commands

    _COMMANDS = {}


    def register(name, handler, help_text=""):
        if not name.startswith("/"):
            raise ValueError(f"command names start with '/': {name!r}")
        _COMMANDS[name] = (handler, help_text)


    def describe():
        return [(name, _COMMANDS[name][1]) for name in sorted(_COMMANDS)]


    def dispatch(text, user="someone"):
        name, _, args = text.strip().partition(" ")
        entry = _COMMANDS.get(name)
        if entry is None:
            return f"Unknown command {name}. Try /help."
        return entry[0](args.strip(), user)


    register("/help", commands.help_command, "list the commands")
    register("/ping", commands.ping, "check that the bot is alive")
    register("/echo", commands.echo, "repeat the text back")
    """
)
_BOT_MAIN = textwrap.dedent(
    """\
    \"\"\"Local console: python3 -m bot [--user NAME] < commands.txt prints a transcript.\"\"\"
    import argparse
    import sys

    from bot.registry import dispatch

    parser = argparse.ArgumentParser()
    parser.add_argument("--user", default="you")
    args = parser.parse_args()
    for line in sys.stdin:
        if line.strip():
            print(f"{args.user}> {line.strip()}")
            for reply in dispatch(line, user=args.user).splitlines():
                print(f"bot> {reply}")
    """
)
_BOT_TESTS = textwrap.dedent(
    """\
    import unittest

    from bot.registry import dispatch


    class CommandTest(unittest.TestCase):
        def test_ping(self):
            self.assertEqual(dispatch("/ping"), "pong")

        def test_echo(self):
            self.assertEqual(dispatch("/echo hello there"), "hello there")

        def test_unknown(self):
            self.assertIn("Unknown command", dispatch("/nope"))

        def test_help_lists_commands(self):
            self.assertIn("/ping", dispatch("/help"))


    if __name__ == "__main__":
        unittest.main()
    """
)
_STANDUP_FUNC = textwrap.dedent(
    """\


    def standup(args, user):
        \"\"\"/standup yesterday: ...; today: ...; blockers: ...\"\"\"
        parts = {}
        for chunk in args.split(";"):
            key, _, value = chunk.partition(":")
            if key.strip():
                parts[key.strip().lower()] = value.strip()
        if not parts.get("yesterday") or not parts.get("today"):
            return "Usage: /standup yesterday: ...; today: ...; blockers: ..."
        blockers = parts.get("blockers", "")
        return "\\n".join([
            f"*Standup from {user}*",
            f"Yesterday: {parts['yesterday']}",
            f"Today: {parts['today']}",
            "Blockers: " + blockers or "none",
        ])
    """
)
_STANDUP_TESTS = textwrap.dedent(
    """\
    import unittest

    from bot.registry import dispatch


    class StandupTest(unittest.TestCase):
        def test_full_update(self):
            reply = dispatch("/standup yesterday: fixed login; today: write docs; "
                             "blockers: waiting on review", user="dana")
            self.assertEqual(reply, "*Standup from dana*\\nYesterday: fixed login\\n"
                                    "Today: write docs\\nBlockers: waiting on review")

        def test_no_blockers(self):
            reply = dispatch("/standup yesterday: triage; today: release", user="sam")
            self.assertEqual(reply.splitlines()[-1], "Blockers: none")

        def test_missing_today(self):
            self.assertTrue(dispatch("/standup yesterday: triage").startswith("Usage"))

        def test_listed_in_help(self):
            self.assertIn("/standup", dispatch("/help"))


    if __name__ == "__main__":
        unittest.main()
    """
)
_STANDUP_LINE = "/standup yesterday: {y}; today: {t}"


def _unified(path: str, old: str, new: str) -> str:
    import difflib

    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    src = "/dev/null" if not old else f"a/{path}"
    return "".join(difflib.unified_diff(a, b, src, f"b/{path}"))


def _standup_diff(registry_before: str, registry_after: str, func: str) -> str:
    return (
        _unified("bot/commands.py", _BOT_COMMANDS, _BOT_COMMANDS + func)
        + _unified("bot/registry.py", registry_before, registry_after)
        + _unified("bot/tests/test_standup.py", "", _STANDUP_TESTS)
    )


_STANDUP_PATCH = _standup_diff(
    _BOT_REGISTRY_OLD,
    _swap(_BOT_REGISTRY_OLD, '    "/echo": commands.echo,\n',
          '    "/echo": commands.echo,\n    "/standup": commands.standup,\n'),
    _STANDUP_FUNC,
)  # fmt: skip
_STANDUP_PATCH_PORTED = _standup_diff(
    _BOT_REGISTRY,
    _BOT_REGISTRY
    + 'register("/standup", commands.standup, "post yesterday, today and blockers")\n',
    _swap(_STANDUP_FUNC, '"Blockers: " + blockers or "none",',
          '"Blockers: " + (blockers or "none"),'),
)  # fmt: skip


def _standup_fixture(rng: random.Random) -> tuple[Fixture, dict]:
    files = {
        "bot/__init__.py": "",
        "bot/__main__.py": _BOT_MAIN,
        "bot/commands.py": _BOT_COMMANDS,
        "bot/registry.py": _BOT_REGISTRY,
        "bot/tests/test_commands.py": _BOT_TESTS,
        "bot/patches/standup-command.diff": _STANDUP_PATCH,
    }
    y, t = rng.choice([("reviewed the billing PR", "pair on the importer"),
                       ("fixed the flaky upload test", "ship the CSV export"),
                       ("migrated the cron jobs", "write the runbook")])  # fmt: skip
    return Fixture(files), {"sample": _STANDUP_LINE.format(y=y, t=t)}


def _standup_playbook(ctx: Ctx) -> Playbook:
    _, diff = yield [
        sh("ls -R bot && cat bot/registry.py", say="Looking at the bot and its registry."),
        read("bot/patches/standup-command.diff", say="Reading the patch."),
    ]
    applied = yield patch(diff.stdout, say="Applying the patch as it is.")
    if not applied.ok:
        # The registry hunk edits a COMMANDS dict that was replaced by register() calls; the
        # Blockers line also has an `or` precedence bug ("Blockers: " + "" is never falsy).
        applied = yield patch(
            _STANDUP_PATCH_PORTED,
            say="The registry hunk targets the old COMMANDS dict. Porting it to register(), and "
            "fixing the Blockers line's `or` precedence while I am in there.",
        )
    sample = ctx.facts.get("sample", "/standup yesterday: a; today: b")
    tests, transcript = yield [
        sh(
            "python3 -m unittest discover bot/tests 2>&1 | tail -3; exit ${PIPESTATUS[0]}",
            say="Running the tests and recording a sample transcript.",
        ),
        sh(
            "mkdir -p out && printf '%s\\n' "
            f"'{sample}' '{sample}; blockers: waiting on the API keys' '/standup yesterday: x' "
            "| python3 -m bot --user dana | tee out/standup_transcript.txt"
        ),
    ]
    yield Reply(
        f"Applied the /standup patch (registry hunk ported) and the tests pass "
        f"({tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else '?'}). "
        f"Sample transcript in out/standup_transcript.txt:\n{transcript.stdout.strip()}"
    )
    _, check = yield [
        sh(
            "grep -n standup bot/registry.py",
            say="Confirming the command is registered and listed in /help.",
        ),
        sh("python3 -m bot <<< '/help' | grep standup"),
    ]
    listed = check.stdout.strip().splitlines()[-1] if check.ok else "not listed"
    yield Reply(f"Checked: /standup is registered and /help lists it: {listed!r}.")


_STANDUP_VERIFY = r"""
import os, subprocess, sys
if not os.path.exists("bot/tests/test_standup.py"):
    sys.exit("the standup tests from the patch are not there")
run = subprocess.run([sys.executable, "-m", "unittest", "discover", "bot/tests"],
                     capture_output=True, text=True, timeout=60)
if run.returncode != 0:
    sys.exit("unit tests fail:\n" + run.stderr[-400:])
sys.path.insert(0, os.getcwd())
from bot.registry import dispatch
want = "*Standup from x*\nYesterday: a\nToday: b\nBlockers: none"
if dispatch("/standup yesterday: a; today: b", user="x") != want:
    sys.exit("the /standup reply is formatted wrongly")
try:
    text = open("out/standup_transcript.txt").read()
except FileNotFoundError:
    sys.exit("out/standup_transcript.txt is missing")
if "/standup" not in text or "bot> Blockers:" not in text or "bot> Blockers: \n" in text + "\n":
    sys.exit("the transcript does not show a correct /standup reply")
print("ok: /standup registered, tests pass, transcript saved")
"""


RECIPES = [
    TaskRecipe(
        task_id="comms-triage-maildir-inbox",
        fixture=_triage_fixture,
        playbook=_triage_playbook,
        verify=_TRIAGE_VERIFY,
        failure_mode="opens messages as UTF-8 text; an 8bit ISO-8859-1 message raises "
        "UnicodeDecodeError",
    ),
    TaskRecipe(
        task_id="comms-draft-delay-replies",
        fixture=_delay_fixture,
        playbook=_delay_playbook,
        verify=_DELAY_VERIFY,
        failure_mode="looks orders up by the raw From field, which carries a display name "
        "and mixed case",
    ),
    TaskRecipe(
        task_id="comms-summarize-release-channel",
        fixture=_release_fixture,
        playbook=_release_playbook,
        verify=_RELEASE_VERIFY,
        failure_mode="assumes every message has a user field; bot messages only have bot_id",
    ),
    TaskRecipe(
        task_id="comms-build-meeting-calendar",
        fixture=_calendar_fixture,
        playbook=_calendar_playbook,
        verify=_CALENDAR_VERIFY,
        failure_mode="splits ICS lines on the first colon only; ORGANIZER;CN= and DTSTART;TZID= "
        "keys carry parameters",
    ),
    TaskRecipe(
        task_id="comms-plan-launch-social-posts",
        fixture=_launch_fixture,
        playbook=_launch_playbook,
        verify=_LAUNCH_VERIFY,
        failure_mode="pastes the full feature blurb plus link and hashtags into every platform; "
        "the X posts exceed 280 characters",
    ),
    TaskRecipe(
        task_id="comms-clean-newsletter-list",
        fixture=_newsletter_fixture,
        playbook=_newsletter_playbook,
        verify=_NEWSLETTER_VERIFY,
        failure_mode="expects every bounce to be an RFC 3464 report with Final-Recipient; "
        "qmail and Exim bounces name the address elsewhere",
    ),
    TaskRecipe(
        task_id="comms-fix-email-templates",
        fixture=_templates_fixture,
        playbook=_templates_playbook,
        verify=_TEMPLATES_VERIFY,
        failure_mode="the fixer only matches {{double}} braces, so single-brace placeholders "
        "fail the render check",
    ),
    TaskRecipe(
        task_id="comms-reconstruct-mbox-threads",
        fixture=_mbox_fixture,
        playbook=_mbox_playbook,
        verify=_THREADS_VERIFY,
        failure_mode="sorts by parsed Date headers; '-0000' dates parse as naive datetimes and "
        "cannot be compared with aware ones",
    ),
    TaskRecipe(
        task_id="comms-verify-outbox-dispatcher",
        fixture=_dispatcher_fixture,
        playbook=_dispatcher_playbook,
        verify=_DISPATCHER_VERIFY,
        failure_mode="queues notifications with a 'recipient' field; the dispatcher requires "
        "'to' and rejects them",
    ),
    TaskRecipe(
        task_id="comms-build-mention-digest",
        fixture=_mention_fixture,
        playbook=_mention_playbook,
        verify=_MENTION_VERIFY,
        failure_mode="passes Slack's string ts straight to datetime.fromtimestamp",
    ),
    TaskRecipe(
        task_id="comms-redact-chat-export",
        fixture=_redact_fixture,
        playbook=_redact_playbook,
        verify=_REDACT_VERIFY,
        failure_mode="the phone pattern only covers +CC numbers, so the final scan finds "
        "(415) and dotted numbers left",
    ),
    TaskRecipe(
        task_id="comms-apply-mail-filter-rules",
        fixture=_filter_fixture,
        playbook=_filter_playbook,
        verify=_FILTER_VERIFY,
        failure_mode="renames messages into .Folder/cur before creating the Maildir++ folders",
    ),
    TaskRecipe(
        task_id="comms-fix-standup-bot-command",
        fixture=_standup_fixture,
        playbook=_standup_playbook,
        verify=_STANDUP_VERIFY,
        failure_mode="applies the patch as shipped; its registry hunk targets the old COMMANDS "
        "dict and is rejected",
    ),
]
