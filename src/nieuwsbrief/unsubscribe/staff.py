"""The staff side of unsubscribing: `nieuwsbrief unsubscribe` and `unsubscribe-server`.

A request by mail or phone arrives as an address, a token or a pasted subject line; telling them
apart and suppressing each is done here (`unsubscribe_requests`), as are the request file, the
list report, corrections, and starting the one-click endpoint. The list itself is
suppression.py; the endpoint is endpoint.py.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from nieuwsbrief.addresses import invalid_reason, normalise_address
from nieuwsbrief.config import Settings
from nieuwsbrief.errors import ConfigError, InputFileError, SuppressionError, TableError, UsageError
from nieuwsbrief.i18n import N_, _
from nieuwsbrief.inputfile import LIST_LIMIT, read_input
from nieuwsbrief.subscribers import EMAIL_ALIASES, normalise_key
from nieuwsbrief.tabular import decode, detect_delimiter, numbered_rows
from nieuwsbrief.unsubscribe.endpoint import ServerLimits, make_app, serve
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import find_token, verify_token

# -- staff requests ---------------------------------------------------------------------------


class Status(StrEnum):
    """What happened to one staff unsubscribe request."""

    # Marked for the catalog: reports show them translated, _(status).
    ADDED = N_("added")
    ALREADY = N_("already suppressed")
    UNKNOWN_TOKEN = N_("unknown token")
    INVALID_TOKEN = N_("invalid token")
    NOT_AN_ADDRESS = N_("not an address")


@dataclass(frozen=True)
class RequestResult:
    """The result for one item given to `nieuwsbrief unsubscribe` (not a delivery Outcome)."""

    item: str
    status: Status
    address: str | None = None  # the suppressed address, when known


# Loose on purpose: the CLI validates addresses with email-validator; this only tells an address
# from a token, a subject line or a typo.
_ADDRESS_RE = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>.]+")
# A token that lost or gained characters, or a subject like "afmelden 1abc" with a broken token.
_TOKENISH_RE = re.compile(r"(?:^|\s)1[A-Za-z0-9_-]{12,}(?:\s|$)|afmelden", re.IGNORECASE)


def unsubscribe_requests(
    secret: str,
    db: SuppressionList | Path,
    items: Iterable[str],
    source: str = "staff",
) -> list[RequestResult]:
    """Suppress each address, token or pasted subject in `items`; say per item what happened."""
    suppression = db if isinstance(db, SuppressionList) else SuppressionList(db)
    outcomes = []
    for item in items:
        outcomes.append(_one_request(secret, suppression, item.strip(), source))
    return outcomes


def _one_request(
    secret: str, suppression: SuppressionList, item: str, source: str
) -> RequestResult:
    # A token first: a pasted mailto URL contains both an address and the token.
    token = find_token(item)
    if token is not None:
        rid = verify_token(secret, token)
        if rid is None:
            return RequestResult(item, Status.INVALID_TOKEN)
        address = suppression.address_for(rid)
        if address is None:
            return RequestResult(item, Status.UNKNOWN_TOKEN)
        note = "token"
    else:
        candidate = item.removeprefix("mailto:").strip("<>")
        if not _ADDRESS_RE.fullmatch(candidate):
            looks_like_token = _TOKENISH_RE.search(item) and "@" not in item
            status = Status.INVALID_TOKEN if looks_like_token else Status.NOT_AN_ADDRESS
            return RequestResult(item, status)
        address = normalise_address(candidate)
        note = ""
    added = suppression.add(address, source, note)
    return RequestResult(item, Status.ADDED if added else Status.ALREADY, address)


_LINE_END_RE = re.compile(r"\r\n|\r|\n")

_PROBLEMS = (Status.INVALID_TOKEN, Status.UNKNOWN_TOKEN, Status.NOT_AN_ADDRESS)


def unsubscribe_items(
    settings: Settings, items: list[str], from_file: Path | None
) -> tuple[str, bool]:
    """Suppress every address or token given; return the report and whether all were understood."""
    if from_file is not None:
        items = items + read_request_file(from_file)
    if not items:
        raise UsageError(_("nothing to unsubscribe: give addresses or tokens, or --from-file"))
    outcomes = unsubscribe_requests(
        settings.secret, SuppressionList(settings.suppression_path), items
    )
    lines = []
    for outcome in outcomes:
        if outcome.status is Status.NOT_AN_ADDRESS:
            reason = _address_problem(outcome.item)
            lines.append(
                _("{item}: not an address or token ({reason})").format(
                    item=outcome.item, reason=reason
                )
            )
        elif outcome.status in (Status.INVALID_TOKEN, Status.UNKNOWN_TOKEN):
            hint = (
                _("its signature does not match NIEUWSBRIEF_SECRET")
                if outcome.status is Status.INVALID_TOKEN
                else _("no message with this token was sent from this suppression list")
            )
            lines.append(f"{outcome.item}: {_(outcome.status)} ({hint})")
        else:
            lines.append(f"{outcome.item}: {_(outcome.status)} ({outcome.address})")
    added = sum(1 for o in outcomes if o.status is Status.ADDED)
    problems = sum(1 for o in outcomes if o.status in _PROBLEMS)
    lines.append(
        _("{added} unsubscribed, {problems} not understood; {path}").format(
            added=added, problems=problems, path=settings.suppression_path
        )
    )
    return "\n".join(lines), problems == 0


def read_request_file(path: Path) -> list[str]:
    """Return the items of a request file: one per line, or the e-mail column of a CSV."""
    data = read_input(path, LIST_LIMIT, N_("a request file"))
    try:
        text = decode(data)[0]
    except TableError as exc:
        raise InputFileError(path, str(exc), exc.line) from None
    lines = [line.strip() for line in _LINE_END_RE.split(text)]
    wanted = [line for line in lines if line and not line.startswith("#")]
    if not wanted:
        return []
    delimiter = detect_delimiter("\n".join(wanted[:50]))[0]
    try:
        header = next(csv.reader([wanted[0]], delimiter=delimiter))
    except csv.Error:  # not a CSV header (a cell over the limit, say): plain lines
        header = []
    keys = [normalise_key(cell) for cell in header]
    column = next((i for i, key in enumerate(keys) if key in EMAIL_ALIASES), None)
    if column is None:
        return wanted  # one request per line, as typed: a line may hold a comma or a subject
    items = []
    seen_header = False
    try:
        for _, cells in numbered_rows(text, delimiter, first_line=1):
            first = cells[0].strip() if cells else ""
            if first.startswith("#") or not any(cell.strip() for cell in cells):
                continue
            if seen_header and column < len(cells) and cells[column].strip():
                items.append(cells[column].strip())
            seen_header = True
    except TableError as exc:
        raise InputFileError(path, str(exc), exc.line) from None
    return items


def _address_problem(item: str) -> str:
    try:
        validate_email(item, check_deliverability=False)
    except EmailNotValidError as exc:
        return invalid_reason(exc)
    return _("unrecognised")


def list_report(settings: Settings) -> str:
    """Return every suppressed address with when and how it was added."""
    entries = SuppressionList(settings.suppression_path, readonly=True).entries()
    lines = [
        f"{e.added_at}  {e.source:<9}  {e.address}"
        + (f"  {e.reason}" if e.reason else "")
        + (f" ({e.note})" if e.note else "")
        for e in entries
    ]
    lines.append(
        _("{count} unsubscribed in {path}").format(
            count=len(entries), path=settings.suppression_path
        )
    )
    return "\n".join(lines)


def remove_address(settings: Settings, address: str) -> str:
    """Take an address off the suppression list (a re-subscription after a mistake)."""
    if not SuppressionList(settings.suppression_path).remove(address):
        raise SuppressionError(
            _("{address} is not on the suppression list").format(address=address)
        )
    return _("{address} will receive the newsletter again").format(address=address)


def run_server(
    settings: Settings,
    host: str,
    port: int,
    limits: ServerLimits,
    *,
    announce: Callable[[str], None],
) -> None:
    """Serve the one-click unsubscribe endpoint until Ctrl+C."""
    if not settings.unsubscribe_url:
        raise ConfigError(
            _(
                "NIEUWSBRIEF_UNSUBSCRIBE_URL is not set; set it to the public address, e.g. "
                "{example}"
            ).format(example="https://www.bureau-kennis.net/afmelden/{token}")
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    templates_dir = settings.home.templates_dir if settings.home is not None else None
    app = make_app(
        settings.secret,
        settings.suppression_path,
        settings.unsubscribe_url,
        templates_dir=templates_dir,
    )

    def listening(url: str, limits: ServerLimits) -> None:
        announce(
            _(
                "Unsubscribe endpoint for {endpoint} on {url} (time-out {timeout} s, up to "
                "{connections} connections; Ctrl+C stops it)"
            ).format(
                endpoint=settings.unsubscribe_url,
                url=url,
                timeout=limits.timeout,
                connections=limits.connections,
            )
        )

    serve(app, host, port, limits, announce=listening)
