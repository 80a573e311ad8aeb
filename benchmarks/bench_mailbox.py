"""Benchmark of `nieuwsbrief mailbox --maildir` on a Maildir of returns (issue 12).

Builds a home state for one issue sent to N recipients (a real ledger and suppression list, the
recipient ids `send` registers), a Maildir of N returns (a mix: VERP-addressed Postfix DSNs, hard
and soft, ARF complaints, out-of-office and human replies, mailed unsubscribes, unmatched and
forged reports), then times `python -m nieuwsbrief mailbox --maildir ...` as a process, end to end
(median of --reps runs, each on a fresh copy). Not part of the test suite.

    python3 benchmarks/run.py mailbox                       # 10,000 returns, 3 repetitions
    python3 benchmarks/run.py mailbox --count 1000 --reps 1
"""

from __future__ import annotations

import argparse
import mailbox
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from nieuwsbrief.sending.ledger import ACCEPTED, Ledger
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_token, make_verp_token, recipient_id, verp_address

SECRET = "bench-secret-0123456789-abcdefghij"
BOUNCES = "bounces@bureau-kennis.net"
ISSUE = "issues/2012-05"  # the ledger's identity of an issue: its path in the home


def _dsn(to: str, recipient: str, status: str, n: int) -> bytes:
    now = format_datetime(datetime.now(UTC))
    return f"""\
Return-Path: <>
Delivered-To: {to}
Date: {now}
From: MAILER-DAEMON@mx.gemeente.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{n}"
Message-Id: <bench-{n}@mx.gemeente.example>

--B{n}
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

<{recipient}>: host mx.gemeente.example said: 550 {status} User unknown

--B{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.gemeente.example

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: {status}
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected

--B{n}
Content-Type: text/rfc822-headers

From: Bureau | Kennis <nieuwsbrief@bureau-kennis.net>
To: {recipient}
Subject: Nieuwsbrief mei 2012
Message-ID: <bench-orig-{n}@bureau-kennis.net>

--B{n}--
""".encode()


def _arf(mail_from: str, n: int) -> bytes:
    return f"""\
From: feedback@arf.mail.yahoo.example
To: fbl@bureau-kennis.net
Subject: complaint
Message-ID: <arf-{n}@yahoo.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B{n}"

--B{n}
Content-Type: text/plain

An abuse report.

--B{n}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{mail_from}>

--B{n}
Content-Type: message/rfc822

From: nieuwsbrief@bureau-kennis.net
To: redacted@yahoo.example
Subject: Nieuwsbrief mei 2012

Hallo
--B{n}--
""".encode()


def _reply(sender: str, subject: str, auto: bool, n: int) -> bytes:
    extra = "Auto-Submitted: auto-replied\n" if auto else ""
    return (
        f"From: {sender}\nTo: {BOUNCES}\nSubject: {subject}\nMessage-ID: <r{n}@x>\n{extra}"
        "Content-Type: text/plain; charset=utf-8\n\nDank voor de nieuwsbrief.\n"
    ).encode()


def build(base: Path, count: int) -> Path:
    """Create the home state and the Maildir of `count` returns under `base`."""
    addresses = [f"lid{n:06d}@example.nl" for n in range(count)]
    base.mkdir(parents=True)
    (base / "nieuwsbrief.toml").write_text('name = "Benchmark"\n', encoding="utf-8")
    ledger = Ledger(base / "ledger.sqlite")
    ledger.begin_issue(ISSUE, "hash", "Nieuwsbrief mei 2012", force=False)
    for address in addresses:
        ledger.record(ISSUE, address, ACCEPTED, "250 OK", 1)
    ledger.close()
    SuppressionList(base / "suppression.sqlite").register(
        (recipient_id(SECRET, a), a) for a in addresses
    )
    box = mailbox.Maildir(base / "Maildir", create=True)
    for n, address in enumerate(addresses):
        verp = verp_address(BOUNCES, make_verp_token(SECRET, address, ISSUE))
        kind = n % 10
        if kind < 4:
            data = _dsn(verp, address, "5.1.1", n)
        elif kind < 6:
            data = _dsn(verp, address, "4.4.7", n)
        elif kind == 6:
            data = _arf(verp, n)
        elif kind == 7:
            data = _reply(address, "Automatisch antwoord: afwezig", True, n)
        elif kind == 8:
            data = _reply(address, f"afmelden {make_token(SECRET, address)}", False, n)
        else:
            data = _dsn(f"bounces+1{'a' * 40}@bureau-kennis.net", address, "5.1.1", n)  # forged
        box.add(data)
    return base


def run_once(template: Path, work: Path) -> tuple[float, float, str]:
    shutil.copytree(template, work)
    env = {
        **os.environ,
        "NIEUWSBRIEF_SECRET": SECRET,
        "NIEUWSBRIEF_BOUNCE_ADDRESS": BOUNCES,
        "NIEUWSBRIEF_LEDGER_DB": str(work / "ledger.sqlite"),
        "NIEUWSBRIEF_SUPPRESSION_DB": str(work / "suppression.sqlite"),
    }
    cpu_before = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "nieuwsbrief", "mailbox", "--maildir", str(work / "Maildir")],
        capture_output=True, text=True, env=env, cwd=work, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if result.returncode != 0:
        raise SystemExit(f"mailbox failed ({result.returncode}):\n{result.stderr}")
    return elapsed, cpu, result.stdout


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nb-bench-mailbox-") as tmp:
        template = build(Path(tmp) / "template", args.count)
        times, cpus = [], []
        for rep in range(args.reps):
            elapsed, cpu, out = run_once(template, Path(tmp) / f"run{rep}")
            times.append(elapsed)
            cpus.append(cpu)
            print(f"run {rep + 1}: {elapsed:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
        print(out)
        median = statistics.median(times)
        print(
            f"{args.count} returns: median {median:.2f} s end to end "
            f"({args.count / median:.0f} messages/s), {statistics.median(cpus):.2f} s CPU "
            f"(user + system), over {args.reps} runs; load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
