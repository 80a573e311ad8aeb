"""The newsletter home: state follows the newsletter, not the folder you stand in.

Real `nieuwsbrief` processes against a real SMTP server (aiosmtpd on 127.0.0.1), run from
different folders, at the same time, on issues whose folders share a name.
"""

from __future__ import annotations

import email
import os
import re
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from email import policy
from pathlib import Path

import pytest

from conftest import EXAMPLE_AGENDA, EXAMPLE_ISSUE, TEST_SECRET
from nieuwsbrief.config import load_settings
from nieuwsbrief.errors import ConfigError, HomeError
from nieuwsbrief.home import find_home
from nieuwsbrief.sending.ledger import Ledger
from smtp_server import Fault, SmtpServer
from test_send import members, write_list

PROGRAM = [sys.executable, "-m", "nieuwsbrief"]


def environment(server: SmtpServer | None = None, **extra: str) -> dict[str, str]:
    """The environment of a real run: no secret given, so the home's state/secret is used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIEUWSBRIEF_")}
    env["LANG"] = "C.UTF-8"
    if server is not None:
        env.update(
            NIEUWSBRIEF_SMTP_HOST=server.host,
            NIEUWSBRIEF_SMTP_PORT=str(server.port),
            NIEUWSBRIEF_SMTP_SECURITY="none",
            NIEUWSBRIEF_UNSUBSCRIBE_URL="https://www.bureau-kennis.net/afmelden/{token}",
        )
    env.update(extra)
    return env


def run(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*PROGRAM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def make_issue(home: Path, relative: str, subject: str | None = None) -> Path:
    """Copy the example issue to `home/relative` (and the agenda, once); return the folder."""
    target = home / relative
    shutil.copytree(EXAMPLE_ISSUE, target)
    agenda = home / "issues" / "agenda.yaml"
    if not agenda.exists():
        shutil.copy(EXAMPLE_AGENDA, agenda)
    if subject:
        yaml = target / "issue.yaml"
        text = re.sub(r"^subject: .*$", f'subject: "{subject}"', yaml.read_text(), flags=re.M)
        yaml.write_text(text, encoding="utf-8")
    return target


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under root with its size, mode and modification time."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mode, info.st_mtime_ns)
    return found


def unsubscribe_header(server: SmtpServer, address: str, subject_part: str) -> str:
    for message in server.messages:
        parsed = email.message_from_bytes(message.data, policy=policy.default)
        if message.rcpt_tos == (address,) and subject_part in str(parsed["Subject"]):
            return str(parsed["List-Unsubscribe"])
    raise AssertionError(f"no message to {address} with {subject_part!r}")


def test_send_from_three_folders_mails_everyone_once_and_never_the_unsubscribed(
    tmp_path: Path, smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path
    issue = make_issue(home, "issues/2012-05")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = environment(smtp_server)
    everyone = members(30)
    lists = [write_list(home / f"lijst-{n}.csv", everyone[: 10 * n]) for n in (1, 2, 3)]

    # Staff unsubscribe someone by phone, standing in the issue folder.
    result = run("unsubscribe", "lid00015@example.nl", cwd=issue, env=env)
    assert result.returncode == 0, result.stderr

    first = run(
        "send", "issues/2012-05", "--subscribers", lists[0].name, "--yes", cwd=home, env=env
    )
    assert first.returncode == 0, first.stderr
    second = run(
        "send", str(issue), "--subscribers", str(lists[1]), "--yes", cwd=elsewhere, env=env
    )
    assert second.returncode == 0, second.stderr
    assert "10 already sent, 1 unsubscribed" in second.stdout
    third = run("send", ".", "--subscribers", "../../lijst-3.csv", "--yes", cwd=issue, env=env)
    assert third.returncode == 0, third.stderr
    assert "19 already sent, 1 unsubscribed" in third.stdout

    received = Counter(smtp_server.recipients())
    assert received == Counter(a for _, a in everyone if a != "lid00015@example.nl")
    assert list(elsewhere.iterdir()) == []  # no state next to the user
    assert sorted(p.name for p in (home / "state").iterdir()) == [
        "ledger.sqlite", "locks", "secret", "suppression.sqlite",
    ]  # fmt: skip

    # The next issue, sent from the unrelated folder, signs with the same secret: the
    # unsubscribe links of the first issue keep working.
    make_issue(home, "issues/2012-06", subject="Nieuwsbrief juni 2012")
    fourth = run(
        "send", str(home / "issues/2012-06"), "--subscribers", str(lists[0]), "--yes",
        cwd=elsewhere, env=env,
    )  # fmt: skip
    assert fourth.returncode == 0, fourth.stderr
    assert unsubscribe_header(smtp_server, "lid00001@example.nl", "juni") == unsubscribe_header(
        smtp_server, "lid00001@example.nl", "mei"
    )


def test_two_sends_of_one_issue_at_once_mail_each_address_once(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_issue(tmp_path, "issues/2012-05")
    subscribers = write_list(tmp_path / "lijst.csv", members(300))
    env = environment(smtp_server)
    command = [*PROGRAM, "send", "issues/2012-05", "--subscribers", "lijst.csv", "--yes",
               "--rate", "60"]  # fmt: skip
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for code, _, err in outcomes if code == 2)
    assert re.search(
        r"issue 'issues/2012-05' is being sent right now by process \d+ on \S+ since ", refused
    ), refused
    assert Counter(smtp_server.recipients()) == Counter(a for _, a in members(300))
    again = run("send", "issues/2012-05", "--subscribers", str(subscribers), "--yes",
                cwd=tmp_path, env=env)  # fmt: skip
    assert again.returncode == 0 and "Delivered: 0" in again.stdout


def test_issues_whose_folders_share_a_name_are_both_sent_in_full(
    tmp_path: Path, smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = environment(smtp_server)
    make_issue(tmp_path, "issues/a/2012-06", subject="Editie A")
    make_issue(tmp_path, "issues/b/2012-06", subject="Editie B")
    other_home = tmp_path_factory.mktemp("other-home")
    (other_home / "nieuwsbrief.toml").write_text('name = "Ander blad"\n', encoding="utf-8")
    make_issue(other_home, "issues/2012-06", subject="Editie C")
    subscribers = write_list(tmp_path / "lijst.csv", members(12))
    for issue in (tmp_path / "issues/a/2012-06", tmp_path / "issues/b/2012-06",
                  other_home / "issues/2012-06"):  # fmt: skip
        result = run("send", str(issue), "--subscribers", str(subscribers), "--yes",
                     cwd=tmp_path, env=env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "Delivered: 12" in result.stdout
    subjects = Counter(
        str(email.message_from_bytes(m.data, policy=policy.default)["Subject"])
        for m in smtp_server.messages
    )
    assert subjects == {"Editie A": 12, "Editie B": 12, "Editie C": 12}


def test_a_copied_issue_folder_with_the_same_id_is_refused(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    env = environment(smtp_server)
    original = make_issue(tmp_path, "issues/2012-06")
    yaml = original / "issue.yaml"
    yaml.write_text("id: 2012-06-a1b2c3\n" + yaml.read_text(), encoding="utf-8")
    subscribers = write_list(tmp_path / "lijst.csv", members(5))
    first = run("send", str(original), "--subscribers", str(subscribers), "--yes",
                cwd=tmp_path, env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    copy = tmp_path / "issues" / "2012-07"
    shutil.copytree(original, copy)
    second = run("send", str(copy), "--subscribers", str(subscribers), "--yes",
                 cwd=tmp_path, env=env)  # fmt: skip
    assert second.returncode == 2
    assert (
        "issues/2012-07: its id '2012-06-a1b2c3' is also the id of issues/2012-06, which was "
        "sent to 5 recipients; give this issue an id of its own in its issue.yaml"
    ) in second.stderr
    # Moving a folder keeps its identity: nobody gets it twice.
    shutil.rmtree(copy)
    original.rename(copy)
    third = run("send", str(copy), "--subscribers", str(subscribers), "--yes",
                cwd=tmp_path, env=env)  # fmt: skip
    assert third.returncode == 0 and "5 already sent" in third.stdout
    assert len(smtp_server.messages) == 5


def test_init_new_compose_send_from_an_empty_folder(
    tmp_path_factory: pytest.TempPathFactory, smtp_server: SmtpServer
) -> None:
    empty = tmp_path_factory.mktemp("empty")
    env = environment(smtp_server)
    result = run("init", "blad", "--name", "Het Blad", cwd=empty, env=env)
    assert result.returncode == 0, result.stderr
    home = empty / "blad"
    assert sorted(p.name for p in home.iterdir()) == [
        ".env.example", ".gitignore", "issues", "nieuwsbrief.toml", "templates",
    ]  # fmt: skip
    assert (
        "state/" in (home / ".gitignore").read_text()
        and ".env" in (home / ".gitignore").read_text()
    )
    again = run("init", "blad", cwd=empty, env=env)
    assert again.returncode == 2 and "already a newsletter home" in again.stderr

    result = run("new", cwd=home, env=env)
    assert result.returncode == 0, result.stderr
    (issue,) = (home / "issues").glob("20*")
    assert re.fullmatch(r"\d{4}-\d{2}", issue.name)
    assert re.search(r"^id: \d{4}-\d{2}-[0-9a-f]{6}$", (issue / "issue.yaml").read_text(), re.M)
    article = (issue / "01-artikel.md").read_text()
    assert "event: seminar-voorbeeld-" in article  # the first upcoming agenda event
    refused = run("new", cwd=home, env=env)
    assert refused.returncode == 2 and "already exists; nothing was changed" in refused.stderr

    # As the README says: fill in the subject's details and the preheader, then compose.
    yaml = issue / "issue.yaml"
    yaml.write_text(
        yaml.read_text().replace('preheader: ""', 'preheader: "Het eerste nummer van Het Blad."')
    )
    relative = f"issues/{issue.name}"
    compose = run("compose", relative, cwd=home, env=env)
    assert compose.returncode == 0, compose.stderr
    subscribers = write_list(home / "leden.csv", members(3))
    send = run("send", relative, "--subscribers", subscribers.name, "--yes", cwd=home, env=env)
    assert send.returncode == 0, send.stderr
    assert sorted(smtp_server.recipients()) == sorted(a for _, a in members(3))
    status = run("status", cwd=home / "issues", env=env)
    assert status.returncode == 0 and relative in status.stdout and "Het Blad" in status.stdout


def test_outside_any_home_every_command_says_so_and_writes_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    nowhere = tmp_path_factory.mktemp("nowhere")
    issue = nowhere / "2012-05"
    shutil.copytree(EXAMPLE_ISSUE, issue)
    shutil.copy(EXAMPLE_AGENDA, nowhere / "agenda.yaml")
    before = tree(nowhere)
    for args in (("status",), ("send", str(issue), "--subscribers", "x.csv", "--yes"),
                 ("check", str(issue)), ("unsubscribe", "--list"), ("new",)):  # fmt: skip
        result = run(*args, cwd=nowhere, env=environment())
        assert result.returncode == 2, (args, result.stderr)
        assert "is not inside a newsletter home: no nieuwsbrief.toml" in result.stderr
        assert "nieuwsbrief init FOLDER" in result.stderr
    assert tree(nowhere) == before


@pytest.mark.parametrize("with_state", [False, True], ids=["fresh home", "after a send"])
def test_dry_runs_and_checks_leave_the_home_unchanged(
    tmp_path: Path, make_smtp_server: object, with_state: bool
) -> None:
    server: SmtpServer = make_smtp_server()  # type: ignore[operator]
    env = environment(server)
    issue = make_issue(tmp_path, "issues/2012-05")
    subscribers = write_list(tmp_path / "lijst.csv", members(5))
    if with_state:
        sent = run("send", str(issue), "--subscribers", str(subscribers), "--yes",
                   cwd=tmp_path, env=env)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    received = len(server.messages)
    before = tree(tmp_path)
    out = tmp_path.parent / f"{tmp_path.name}-out"
    for args in (
        ("check", str(issue)),
        ("send", str(issue), "--subscribers", str(subscribers), "--dry-run"),
        ("send", str(issue), "--dry-run", "--test", "redactie@bureau-kennis.net"),
        ("compose", str(issue), "--out", str(out)),
        ("status",),
        ("subscribers", "check", str(subscribers)),
        ("unsubscribe", "--list"),
    ):
        result = run(*args, cwd=tmp_path, env=env)
        assert result.returncode in (0, 1), (args, result.stderr)
    assert tree(tmp_path) == before
    assert len(server.messages) == received  # --dry-run --test sends no proof


def test_status_failures_csv_and_unknown_users_suppressed_for_the_next_issue(
    tmp_path: Path, make_smtp_server: object
) -> None:
    server: SmtpServer = make_smtp_server(  # type: ignore[operator]
        faults={
            "lid00001@example.nl": Fault("550 5.1.1 <lid00001@example.nl>: No such user"),
            "lid00002@example.nl": Fault("554 5.7.1 Message refused by policy"),
            "lid00003@example.nl": Fault("452 4.2.2 Mailbox full", times=99),
        }
    )
    env = environment(server)
    make_issue(tmp_path, "issues/2012-05")
    write_list(tmp_path / "lijst.csv", members(8))
    command = ["send", "issues/2012-05", "--subscribers", "lijst.csv", "--yes",
               "--retry-window", "0"]  # fmt: skip
    first = run(*command, cwd=tmp_path, env=env)
    assert first.returncode == 1, first.stderr
    assert "Suppressed: 1 address the server says does not exist" in first.stdout

    status = run("status", "issues/2012-05", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    text = status.stdout
    for line in (
        "Issue:      issues/2012-05",
        "Delivered:  5",
        "Failed:     2 refused by the server (5xx)",
        "Deferred:   1 still refused temporarily (4xx) when the retries ran out",
        "To send:    0 of the 8 planned",
        "  lid00001@example.nl: failed, 550 5.1.1 <lid00001@example.nl>: No such user",
        "  lid00002@example.nl: failed, 554 5.7.1 Message refused by policy",
        "  lid00003@example.nl: deferred, 452 4.2.2 Mailbox full",
    ):
        assert line in text.splitlines(), (line, text)
    retry = re.search(r"^Retry the failed ones: (.+)$", text, re.M)
    assert retry and retry.group(1).endswith("--retry-window 0 --retry-failed")
    table = run("status", cwd=tmp_path, env=env).stdout
    assert re.search(r"^issues/2012-05\s+\S+ \S+\s+5\s+2\s+1\s+0$", table, re.M), table

    # A retry where only the deferral clears: the CSV still lists every outstanding failure.
    server.faults.pop("lid00003@example.nl")
    retried = run(*shlex.split(retry.group(1))[3:], cwd=tmp_path, env=env)
    assert retried.returncode == 1, retried.stderr
    csv_text = (tmp_path / "issues/2012-05/out/send-failures.csv").read_text("utf-8-sig")
    assert "lid00002@example.nl;refused;554 5.7.1 Message refused by policy" in csv_text
    assert "lid00001@example.nl;refused;550 5.1.1" in csv_text
    assert "lid00003" not in csv_text

    # The next issue skips the address that does not exist, not the policy refusal.
    make_issue(tmp_path, "issues/2012-06", subject="Juni")
    server.faults.clear()
    nxt = run("send", "issues/2012-06", "--subscribers", "lijst.csv", "--yes",
              cwd=tmp_path, env=env)  # fmt: skip
    assert nxt.returncode == 0, nxt.stderr
    june = [
        m.rcpt_tos[0]
        for m in server.messages
        if "Juni" in str(email.message_from_bytes(m.data, policy=policy.default)["Subject"])
    ]
    assert sorted(june) == sorted(a for _, a in members(8) if a != "lid00001@example.nl")
    listing = run("unsubscribe", "--list", cwd=tmp_path, env=env).stdout
    assert "lid00001@example.nl" in listing and "bounce" in listing


def test_ledger_of_the_first_layout_is_moved_into_the_state_folder_and_read(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_issue(tmp_path, "issues/2012-05")
    legacy = tmp_path / "ledger.sqlite"
    with sqlite3.connect(legacy) as db:
        db.executescript(
            """
            CREATE TABLE issues (issue TEXT PRIMARY KEY, content_hash TEXT NOT NULL,
                subject TEXT NOT NULL, started_at TEXT NOT NULL);
            CREATE TABLE recipients (issue TEXT NOT NULL, address TEXT NOT NULL,
                status TEXT NOT NULL, reply TEXT NOT NULL DEFAULT '',
                attempts INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
                PRIMARY KEY (issue, address)) WITHOUT ROWID;
            PRAGMA user_version = 1;
            """
        )
        db.execute("INSERT INTO issues VALUES ('2012-05', 'old', 'mei', '2026-01-01T00:00:00')")
        db.executemany(
            "INSERT INTO recipients VALUES ('2012-05', ?, 'accepted', '250 ok', 1, '2026-01-01')",
            [(a,) for _, a in members(4)],
        )
    db.close()
    (tmp_path / ".nieuwsbrief-secret").write_text(TEST_SECRET + "\n")
    (tmp_path / ".nieuwsbrief-secret").chmod(0o600)
    env = environment(smtp_server)
    subscribers = write_list(tmp_path / "lijst.csv", members(6))
    dry = run("send", "issues/2012-05", "--subscribers", "lijst.csv", "--dry-run",
              cwd=tmp_path, env=env)  # fmt: skip
    assert "Recipients: 2 (of 6 rows; skipped: 4 already sent" in dry.stdout  # read in place
    assert legacy.exists() and not (tmp_path / "state").exists()
    result = run("send", "issues/2012-05", "--subscribers", str(subscribers), "--yes", "--force",
                 cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Delivered: 2" in result.stdout
    assert sorted(smtp_server.recipients()) == ["lid00004@example.nl", "lid00005@example.nl"]
    assert not legacy.exists() and not (tmp_path / ".nieuwsbrief-secret").exists()
    assert (tmp_path / "state" / "secret").read_text().strip() == TEST_SECRET
    status = run("status", cwd=tmp_path, env=env).stdout
    assert re.search(r"^issues/2012-05\s.*\s6\s+0\s+0\s+0$", status, re.M), status


@pytest.mark.parametrize("damage", ["foreign", "damaged"])
def test_a_ledger_that_is_not_ours_or_damaged_is_refused_and_untouched(
    tmp_path: Path, smtp_server: SmtpServer, damage: str
) -> None:
    make_issue(tmp_path, "issues/2012-05")
    env = environment(smtp_server)
    subscribers = write_list(tmp_path / "lijst.csv", members(3))
    ledger = tmp_path / "state" / "ledger.sqlite"
    if damage == "foreign":
        ledger.parent.mkdir()
        with sqlite3.connect(ledger) as db:
            db.execute("CREATE TABLE klanten (naam TEXT, iban TEXT)")
        db.close()
    else:
        ok = run("send", "issues/2012-05", "--subscribers", "lijst.csv", "--yes",
                 cwd=tmp_path, env=env)  # fmt: skip
        assert ok.returncode == 0
        data = bytearray(ledger.read_bytes())
        data[4096 : 4096 + 64] = b"\xff" * 64  # a damaged b-tree page header
        ledger.write_bytes(bytes(data))
    before = ledger.read_bytes()
    sent = len(smtp_server.messages)
    result = run("send", "issues/2012-05", "--subscribers", str(subscribers), "--yes",
                 cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 2
    expected = "is not a nieuwsbrief send ledger" if damage == "foreign" else "damaged"
    assert f"{ledger}: " in result.stderr and expected in result.stderr, result.stderr
    assert ledger.read_bytes() == before
    assert len(smtp_server.messages) == sent


_UNRECORDED_RE = re.compile(
    r"could not be recorded and would get the issue again on a re-run: (.*?)\. "
)


def recorded_and_named(
    ledger: Path, server: SmtpServer, stderr: str
) -> tuple[set[str], set[str], set[str] | None]:
    """After a send the ledger stopped: what it holds, what the server took without a record,
    and the addresses the error message names (None if it names none)."""
    with sqlite3.connect(ledger) as db:
        recorded = {row[0] for row in db.execute("SELECT address FROM recipients")}
    db.close()
    assert recorded <= set(server.recipients())  # nothing recorded the server did not accept
    named = _UNRECORDED_RE.search(stderr)
    return (
        recorded,
        set(server.recipients()) - recorded,
        (set(named.group(1).split(", ")) if named else None),
    )


def assert_rerun_sends_the_rest_and_only_those_twice(
    command: Sequence[str], cwd: Path, env: dict[str, str], server: SmtpServer, twice: set[str]
) -> None:
    rerun = run(*command, cwd=cwd, env=env)
    assert rerun.returncode == 0, rerun.stderr
    total = Counter(server.recipients())
    assert set(total) == {a for _, a in members(200)}
    assert {a for a, n in total.items() if n > 1} == twice


def test_ledger_disk_full_mid_send_stops_cleanly_and_names_the_unrecorded(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_issue(tmp_path, "issues/2012-05")
    env = environment(smtp_server)
    write_list(tmp_path / "lijst.csv", members(200))
    command = [*PROGRAM, "send", "issues/2012-05", "--subscribers", "lijst.csv", "--yes"]
    # One ledger record per accepted message: the file size limit stands in for a full disk
    # a few dozen records in (SQLite's write-ahead log grows a page or two per record).
    limit = 96 * 1024

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        preexec_fn=full_disk,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert "cannot write the send ledger" in result.stderr
    assert "run the same command again" in result.stderr.lower()
    assert 0 < len(set(smtp_server.recipients())) < 200
    ledger = tmp_path / "state" / "ledger.sqlite"
    _recorded, unrecorded, named = recorded_and_named(ledger, smtp_server, result.stderr)
    if unrecorded:
        assert named == unrecorded, result.stderr
    assert len(unrecorded) <= 8  # in flight: one or two per connection

    assert_rerun_sends_the_rest_and_only_those_twice(
        command[3:], tmp_path, env, smtp_server, unrecorded
    )


def test_a_batch_the_ledger_refuses_is_named_whole_and_a_rerun_sends_only_those_again(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # The real SQLite refuses every commit after the 5th record (a trigger, as a disk that
    # fills up would): whatever the server accepted after that is named as unrecorded, all of
    # every batch that failed, and only those get the issue twice.
    make_issue(tmp_path, "issues/2012-05")
    env = environment(smtp_server)
    write_list(tmp_path / "lijst.csv", members(200))
    ledger_path = tmp_path / "state" / "ledger.sqlite"
    Ledger(ledger_path).close()  # the ledger's own schema, then the trap in it
    with sqlite3.connect(ledger_path) as db:
        db.execute(
            "CREATE TRIGGER full BEFORE INSERT ON recipients "
            "WHEN (SELECT count(*) FROM recipients) >= 5 "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    db.close()
    command = ("send", "issues/2012-05", "--subscribers", "lijst.csv", "--yes")
    result = run(*command, cwd=tmp_path, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert "cannot write the send ledger" in result.stderr, result.stderr
    recorded, unrecorded, named = recorded_and_named(ledger_path, smtp_server, result.stderr)
    # A batch is recorded all or none: 5 at most, fewer if the one that crossed 5 had more.
    assert len(recorded) <= 5
    assert unrecorded  # the 6th acceptance at least: its commit was the first refused
    assert named == unrecorded, result.stderr

    with sqlite3.connect(ledger_path) as db:
        db.execute("DROP TRIGGER full")
    db.close()
    assert_rerun_sends_the_rest_and_only_those_twice(
        command, tmp_path, env, smtp_server, unrecorded
    )


def test_sigterm_ends_like_ctrl_c_and_the_printed_command_resumes(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_issue(tmp_path, "issues/2012-05")
    env = environment(smtp_server)
    write_list(tmp_path / "lijst met spatie.csv", members(120))
    command = [*PROGRAM, "send", "issues/2012-05", "--subscribers", "lijst met spatie.csv",
               "--yes", "--rate", "40"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert smtp_server.wait_for_messages(10), "the send never got going"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert re.search(r"^Delivered: \d+", out, re.M), out
    resume = re.search(r"Run the same command again to continue: (.+)$", err, re.M)
    assert resume, err
    first = Counter(smtp_server.recipients())
    assert 10 <= len(first) < 120
    pasted = subprocess.run(
        resume.group(1), shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert pasted.returncode == 0, pasted.stderr
    assert Counter(smtp_server.recipients()) == Counter(a for _, a in members(120))


# -- the config file ------------------------------------------------------------------------


def test_config_file_values_env_file_and_environment_in_that_order(tmp_path: Path) -> None:
    (tmp_path / "nieuwsbrief.toml").write_text(
        'name = "Blad"\nfrom = "Blad <blad@example.nl>"\nsmtp_host = "smtp.example.nl"\n'
        'smtp_port = 2525\nreply_to = "toml@example.nl"\nstate = "private/state"\n',
        encoding="utf-8",
    )
    (tmp_path / ".env").write_text("NIEUWSBRIEF_REPLY_TO=env@example.nl\n", encoding="utf-8")
    (tmp_path / "issues" / "2012-05").mkdir(parents=True)
    home = find_home(tmp_path / "issues" / "2012-05", environ={})
    assert home.root == tmp_path and home.name == "Blad"
    settings = load_settings(
        {"NIEUWSBRIEF_SMTP_PORT": "587", "NIEUWSBRIEF_SECRET": TEST_SECRET}, home=home
    )
    assert settings.from_address == "Blad <blad@example.nl>"
    assert settings.smtp_host == "smtp.example.nl"
    assert settings.smtp_port == 587  # the environment wins over the file
    assert settings.reply_to == "env@example.nl"  # .env wins over nieuwsbrief.toml
    assert settings.ledger_path == tmp_path / "private" / "state" / "ledger.sqlite"


def test_config_file_refuses_secrets_and_unknown_keys_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "nieuwsbrief.toml").write_text(
        'name = "Blad"\n\nsmtp_password = "geheim"\nsmpt_host = "x"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as error:
        load_settings({}, home=find_home(tmp_path, environ={}))
    message = str(error.value)
    config = tmp_path / "nieuwsbrief.toml"
    assert f"{config}:3: 'smtp_password' is a secret and does not belong in the config" in message
    assert "geheim" not in message
    assert f"{config}:4: unknown key 'smpt_host' (did you mean smtp_host?)" in message


def test_config_file_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "nieuwsbrief.toml").write_text('name = "Blad"\nfrom = Blad\n', encoding="utf-8")
    with pytest.raises(HomeError, match=r"nieuwsbrief\.toml: .*line 2"):
        find_home(tmp_path, environ={})


def test_nieuwsbrief_home_variable_points_at_the_home(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert find_home(elsewhere, environ={"NIEUWSBRIEF_HOME": str(tmp_path)}).root == tmp_path
    with pytest.raises(HomeError, match=r"no nieuwsbrief\.toml there"):
        find_home(tmp_path, environ={"NIEUWSBRIEF_HOME": str(elsewhere)})


def test_two_different_issues_go_out_in_parallel_without_losing_a_record(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_issue(tmp_path, "issues/2012-05")
    make_issue(tmp_path, "issues/2012-06", subject="Juni")
    write_list(tmp_path / "lijst.csv", members(150))
    env = environment(smtp_server)
    processes = [
        subprocess.Popen(
            [*PROGRAM, "send", issue, "--subscribers", "lijst.csv", "--yes"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for issue in ("issues/2012-05", "issues/2012-06")
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "Delivered: 150" in out
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite") as db:
        rows = dict(db.execute("SELECT issue, COUNT(*) FROM recipients GROUP BY issue"))
    db.close()
    assert rows == {"issues/2012-05": 150, "issues/2012-06": 150}
    assert len(smtp_server.messages) == 300


def test_two_runs_creating_the_secret_at_once_get_the_same_whole_secret(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import threading

    def load(home: Path, start: threading.Barrier, found: list[str], errors: list[object]) -> None:
        start.wait()
        try:
            found.append(load_settings({}, home=find_home(home, {}), create_secret=True).secret)
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    for _ in range(20):
        home = tmp_path_factory.mktemp("home")
        (home / "nieuwsbrief.toml").write_text('name = "Blad"\n', encoding="utf-8")
        found: list[str] = []
        errors: list[object] = []
        start = threading.Barrier(3)
        threads = [
            threading.Thread(target=load, args=(home, start, found, errors)) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(set(found)) == 1 and len(found[0]) >= 40
        assert (home / "state" / "secret").read_text().strip() == found[0]
        assert [p.name for p in (home / "state").iterdir()] == ["secret"]


def test_progress_counts_only_accepted_and_says_what_waits_for_a_retry(
    tmp_path: Path, make_smtp_server: object
) -> None:
    server: SmtpServer = make_smtp_server(  # type: ignore[operator]
        faults={"lid00007@example.nl": Fault("451 4.7.1 Try again later", times=2)}
    )
    make_issue(tmp_path, "issues/2012-05")
    write_list(tmp_path / "lijst.csv", members(20))
    result = run(
        "send", "issues/2012-05", "--subscribers", "lijst.csv", "--yes", "--retry-window", "12",
        cwd=tmp_path, env=environment(server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # While the one 4xx waits, the line counts only what the server accepted.
    waiting = re.search(
        r"^19/20 delivered .*, 1 waiting for retry, next in (\d+) s$", result.stderr, re.M
    )
    assert waiting and int(waiting.group(1)) <= 10, result.stderr
    assert re.search(r"^20/20 delivered ", result.stderr, re.M), result.stderr
    assert server.attempts("lid00007@example.nl") == 3


def test_many_sends_creating_the_ledger_at_once_all_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Processes that find the ledger half-made by another (header written, no tables) go on."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom nieuwsbrief.sending.ledger import Ledger\n"
        "Ledger(Path(sys.argv[1])).close()\n"
    )
    for _ in range(8):
        path = tmp_path_factory.mktemp("state") / "ledger.sqlite"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(path)], stderr=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=60)[1] for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0, 0], errors
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
