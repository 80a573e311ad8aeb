"""Classifying and acting on returned mail: real MTA bounces, DSNs, ARF, replies; Maildir, mbox."""

from __future__ import annotations

import mailbox
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from nieuwsbrief.errors import ReturnsSourceError
from nieuwsbrief.returns.classify import MAX_MESSAGE_BYTES, Kind, classify, severity
from nieuwsbrief.returns.process import Context, process_mailbox
from nieuwsbrief.returns.sources import MaildirSource, MboxSource
from nieuwsbrief.returns.store import ReturnsStore
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_token, make_verp_token, recipient_id, verp_address
from returns_mail import SqliteSentMail, arf, dsn, reply, write_maildir

CORPUS = Path(__file__).parent / "fixtures" / "returns" / "flufl"
SECRET = "test-secret-0123456789-abcdefghijklmnop"
BOUNCES = "bounces@bureau-kennis.net"
TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("5.1.1", Kind.HARD),  # no such mailbox
        ("5.1.10", Kind.HARD),  # null MX
        ("5.0.0", Kind.HARD),
        ("5.2.2", Kind.SOFT),  # mailbox full: transient, whatever Action says
        ("5.2.1", Kind.SOFT),  # mailbox disabled: suppress on repeats only
        ("4.4.7", Kind.SOFT),  # expired in the queue
        ("4.2.2", Kind.SOFT),
        ("5.7.1", Kind.NOT_ADDRESS),  # a policy block is about us, not the address
        ("5.3.4", Kind.NOT_ADDRESS),  # message too big
        ("", Kind.SOFT),  # no code: never suppress on a guess
    ],
)
def test_the_status_code_decides(status: str, kind: Kind) -> None:
    assert severity(status) is kind


@pytest.mark.parametrize(
    ("name", "kind", "address", "status"),
    [
        ("dsn_01.txt", Kind.HARD, "userx@example.com", "5.0.0"),
        ("dsn_05.txt", Kind.DELAYED, "userx@example.cz", "4.4.1"),
        ("postfix_01.txt", Kind.HARD, "xxxxx@local.ie", "5.1.1"),
        ("exim_01.txt", Kind.HARD, "userx@its.example.nl", "5.1.1"),
        ("qmail_01.txt", Kind.HARD, "userx@example.de", ""),
        ("yahoo_01.txt", Kind.SOFT, "userx@example.com", "4.4.1"),
        ("microsoft_01.txt", Kind.HARD, "userx@example.com", ""),
    ],
)
def test_real_mta_bounces(name: str, kind: Kind, address: str, status: str) -> None:
    returned = classify((CORPUS / name).read_bytes())
    assert returned.kind is kind
    assert [(f.address, f.status) for f in returned.failures][:1] == [(address, status)]


def test_postfix_expiry_says_failed_with_a_4xx_status_and_is_transient() -> None:
    returned = classify(
        dsn(
            None,
            to=BOUNCES,
            recipient="a@example.nl",
            status="4.4.7",
            diagnostic="X-Postfix; delivery temporarily suspended",
        )
    )
    assert returned.kind is Kind.SOFT
    assert "Action: failed" in returned.failures[0].evidence


def test_complaints_replies_and_unsubscribes_are_told_apart() -> None:
    original = b"Message-ID: <m1@bureau-kennis.net>\nTo: a@example.nl\n\nHallo\n"
    complaint = classify(arf(original, mail_from=BOUNCES))
    assert complaint.kind is Kind.COMPLAINT and complaint.message_ids == ["<m1@bureau-kennis.net>"]
    assert (
        classify(arf(original, mail_from=BOUNCES, feedback_type="not-spam")).kind is Kind.FEEDBACK
    )
    ooo = reply(
        sender="a@example.nl",
        to=BOUNCES,
        subject="Afwezig",
        body="Tot 5 januari afwezig. Wilt u zich afmelden? Mail dan naar ...",
        auto=True,
    )
    assert classify(ooo).kind is Kind.AUTO_REPLY
    human = reply(sender="a@example.nl", to=BOUNCES, subject="Re: Nieuwsbrief", body="Dank!\n")
    assert classify(human).kind is Kind.HUMAN
    quoted = reply(
        sender="a@example.nl",
        to=BOUNCES,
        subject="Re: Nieuwsbrief",
        body="Mooi stuk.\n\n> U kunt zich afmelden via ...",
    )
    assert classify(quoted).kind is Kind.HUMAN  # the word is in the quoted newsletter only
    request = reply(
        sender="a@example.nl", to="afmelden@x.nl", subject="Re: x", body="Uitschrijven a.u.b."
    )
    assert classify(request).kind is Kind.UNSUBSCRIBE


def test_huge_malformed_and_hostile_messages_are_skipped_with_a_note() -> None:
    assert classify(b"x" * (MAX_MESSAGE_BYTES + 1)).note.startswith("larger than")
    nested = (
        b"Content-Type: multipart/mixed; boundary=b\n\n"
        + b"--b\nContent-Type: text/plain\n\nx\n" * 300
    )
    assert classify(nested).kind is Kind.SKIPPED and "MIME parts" in classify(nested).note
    garbage = bytes(range(256)) * 50
    assert classify(garbage).kind in (Kind.HUMAN, Kind.SKIPPED)  # read or skipped, never raised
    broken_report = (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: x\n--b--\n"
    )
    assert classify(broken_report).kind is Kind.SKIPPED


# -- acting on them ---------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> tuple[Context, SqliteSentMail]:
    sent = SqliteSentMail(tmp_path / "sent.sqlite")
    suppression = SuppressionList(tmp_path / "suppression.sqlite")
    ctx = Context(
        SECRET, BOUNCES, sent, suppression, ReturnsStore(tmp_path / "returns.sqlite"), TODAY
    )
    for issue in ("2026-10", "2026-11", "2026-12"):
        for n in range(5):
            address = f"lid{n}@example.nl"
            sent.record(
                issue, address, f"<{issue}.{n}@bureau-kennis.net>", recipient_id(SECRET, address)
            )
    return ctx, sent


def _verp(address: str, issue: str) -> str:
    return verp_address(BOUNCES, make_verp_token(SECRET, address, issue))


def _headers(issue: str, n: int) -> bytes:
    return f"Message-ID: <{issue}.{n}@bureau-kennis.net>\nTo: lid{n}@example.nl\n\n".encode()


def test_matching_order_verp_then_message_id_then_a_mailed_address(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home
    box = write_maildir(
        tmp_path / "Maildir",
        # VERP wins: the report names a forwarding target, the token names lid0.
        dsn(
            None,
            to=_verp("lid0@example.nl", "2026-12"),
            recipient="fwd@elders.example",
            status="5.1.1",
        ),
        # No token: the quoted Message-ID says lid1, whatever the report names.
        dsn(
            _headers("2026-12", 1),
            to=BOUNCES,
            recipient="alias@example.nl",
            status="5.1.1",
            number=2,
        ),
        # Neither: the failed address, because this home mailed it.
        dsn(None, to=BOUNCES, recipient="LID2@example.nl", status="5.1.2", number=3),
        # A stranger: unmatched, nothing changes.
        dsn(None, to=BOUNCES, recipient="stranger@example.org", status="5.1.1", number=4),
    )
    report = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    by = {a.address: (a.matched_by, a.issue, a.outcome) for a in report.actions}
    assert by["lid0@example.nl"] == ("verp", "2026-12", "suppressed")
    assert by["lid1@example.nl"] == ("message-id", "2026-12", "suppressed")
    assert by["lid2@example.nl"] == ("address", "2026-12", "suppressed")
    assert report.tally()["unmatched"] == 1
    entries = {e.address: e for e in ctx.suppression.entries()}
    assert set(entries) == {"lid0@example.nl", "lid1@example.nl", "lid2@example.nl"}
    assert entries["lid0@example.nl"].source == "bounce"
    assert entries["lid0@example.nl"].reason == "hard bounce 5.1.1"
    assert "issue 2026-12" in entries["lid0@example.nl"].note
    assert "Status: 5.1.1" in entries["lid0@example.nl"].note


def test_a_forged_token_changes_nothing_whatever_address_it_names(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home
    token = make_verp_token(SECRET, "lid3@example.nl", "2026-12")
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")
    box = write_maildir(
        tmp_path / "Maildir",
        dsn(
            None,
            to=f"bounces+{altered}@bureau-kennis.net",
            recipient="lid3@example.nl",
            status="5.1.1",
        ),
        # Mailman-style VERP anyone can write: not signed, so forged, even with a quoted Message-ID.
        dsn(
            _headers("2026-12", 4),
            to="bounces+lid4=example.nl@bureau-kennis.net",
            recipient="lid4@example.nl",
            status="5.1.1",
            number=2,
        ),
    )
    report = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    assert [a.outcome for a in report.actions] == ["forged", "forged"]
    assert ctx.suppression.count() == 0


def test_soft_bounces_suppress_only_after_three_across_two_issues_in_thirty_days(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home

    def soft(n: int, issue: str, day: int, number: int) -> bytes:
        return dsn(
            None,
            to=_verp(f"lid{n}@example.nl", issue),
            recipient=f"lid{n}@example.nl",
            status="5.2.2",
            when=datetime(2026, 11, day, 12, tzinfo=UTC),
            number=number,
        )

    box = write_maildir(
        tmp_path / "Maildir",
        # lid0: three in one issue (the relay retried): never enough on its own.
        soft(0, "2026-11", 20, 1),
        soft(0, "2026-11", 21, 2),
        soft(0, "2026-11", 22, 3),
        # lid1: the same report twice on one day counts once; then two more issues.
        soft(1, "2026-11", 20, 4),
        soft(1, "2026-11", 20, 5),
        soft(1, "2026-12", 28, 6),
    )
    process_mailbox(MaildirSource(box), ctx, dry_run=False)
    assert ctx.suppression.count() == 0
    write_maildir(tmp_path / "Maildir", soft(1, "2026-12", 29, 7))
    report = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    assert [a.outcome for a in report.actions] == ["suppressed"]
    entry = ctx.suppression.entries()[0]
    assert entry.address == "lid1@example.nl"
    assert entry.reason.startswith("3 soft bounces across 2 issues within 30 days")


def test_mailed_unsubscribes_by_token_or_by_a_subscribed_sender(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home
    token = make_token(SECRET, "lid0@example.nl")
    box = write_maildir(
        tmp_path / "Maildir",
        reply(
            sender="iemand@elders.example",
            to="afmelden@bureau-kennis.net",
            subject=f"afmelden {token}",
            body="",
        ),
        reply(
            sender="Lid1@Example.nl",
            to="afmelden@bureau-kennis.net",
            subject="Afmelden",
            body="",
            number=2,
        ),
        reply(
            sender="stranger@example.org",
            to="afmelden@bureau-kennis.net",
            subject="afmelden",
            body="",
            number=3,
        ),
        reply(
            sender="lid2@example.nl",
            to="afmelden@bureau-kennis.net",
            subject=f"afmelden {token[:-2]}xx",
            body="",
            number=4,
        ),
    )
    report = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    assert [(a.outcome, a.address, a.matched_by) for a in report.actions] == [
        ("suppressed", "lid0@example.nl", "token"),
        ("suppressed", "lid1@example.nl", "sender"),
        ("unmatched", "", ""),
        ("forged", "", ""),
    ]
    assert {e.source for e in ctx.suppression.entries()} == {"mailto"}


def test_complaint_matched_by_the_return_path_in_original_mail_from(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home
    original = b"Message-ID: <elsewhere@x>\nTo: lid3@example.nl\nSubject: Nieuwsbrief\n\nHallo\n"
    box = write_maildir(
        tmp_path / "Maildir", arf(original, mail_from=_verp("lid3@example.nl", "2026-11"))
    )
    report = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    assert [(a.kind, a.outcome, a.issue) for a in report.actions] == [
        (Kind.COMPLAINT, "suppressed", "2026-11")
    ]
    assert ctx.suppression.entries()[0].reason == "complaint (abuse)"
    assert ctx.store.counts("2026-11") == {"complaint": 1}


def test_dry_run_changes_nothing_and_a_second_run_changes_nothing(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home
    box = write_maildir(
        tmp_path / "Maildir",
        dsn(
            None,
            to=_verp("lid0@example.nl", "2026-12"),
            recipient="lid0@example.nl",
            status="5.1.1",
        ),
        reply(
            sender="lid1@example.nl", to=BOUNCES, subject="Re: nieuwsbrief", body="Top!", number=2
        ),
    )
    before = sorted(p.name for p in (box / "new").iterdir())
    dry = process_mailbox(MaildirSource(box), ctx, dry_run=True)
    assert [a.outcome for a in dry.actions] == ["would suppress", "counted"]
    assert ctx.suppression.count() == 0 and not ctx.store.processed_digests()
    assert sorted(p.name for p in (box / "new").iterdir()) == before

    first = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    assert [a.outcome for a in first.actions] == ["suppressed", "counted"]
    assert not list((box / "new").iterdir())
    done = sorted((box / ".verwerkt" / "cur").iterdir())
    assert len(done) == 2 and all(p.name.endswith(":2,S") for p in done)

    second = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    assert second.actions == [] and ctx.suppression.count() == 1


def test_a_bad_message_is_skipped_with_a_note_and_the_run_goes_on(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home
    box = write_maildir(
        tmp_path / "Maildir",
        b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\nx\n" * 300,
        dsn(
            None,
            to=_verp("lid0@example.nl", "2026-12"),
            recipient="lid0@example.nl",
            status="5.1.1",
        ),
    )
    (box / "new" / "huge").write_bytes(b"Subject: x\n\n" + b"a" * MAX_MESSAGE_BYTES)
    report = process_mailbox(MaildirSource(box), ctx, dry_run=False)
    outcomes = sorted(a.outcome for a in report.actions)
    assert outcomes == ["skipped", "skipped", "suppressed"]
    assert "skipped new/huge" in report.describe()
    assert len(list((box / "new").iterdir())) == 2  # the skipped stay for a later look


def test_mbox_export_is_read_and_remembered_without_being_changed(
    home: tuple[Context, SqliteSentMail], tmp_path: Path
) -> None:
    ctx, _ = home
    path = tmp_path / "export.mbox"
    box = mailbox.mbox(path)
    box.add(
        dsn(
            None,
            to=_verp("lid0@example.nl", "2026-12"),
            recipient="lid0@example.nl",
            status="5.1.1",
        )
    )
    box.add((CORPUS / "exim_01.txt").read_bytes())
    box.close()
    before = path.read_bytes()
    first = process_mailbox(MboxSource(path), ctx, dry_run=False)
    assert [a.outcome for a in first.actions] == ["suppressed", "unmatched"]
    second = process_mailbox(MboxSource(path), ctx, dry_run=False)
    assert second.actions == [] and second.already_processed == 2
    assert path.read_bytes() == before


def test_a_folder_that_is_not_a_maildir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReturnsSourceError, match="is not a Maildir"):
        MaildirSource(tmp_path)
