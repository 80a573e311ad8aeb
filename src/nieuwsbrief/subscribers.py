"""Subscriber lists (CSV from Dutch Excel or a CRM) in, validated and de-duplicated."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

from email_validator import EmailNotValidError, validate_email

from nieuwsbrief.addresses import (
    invalid_reason,
    needs_smtputf8,
    normalise_address,
    smtp_address,
)
from nieuwsbrief.errors import InputFileError, SubscriberListError, TableError
from nieuwsbrief.i18n import N_, _, ngettext
from nieuwsbrief.inputfile import (
    STREAM_LIST_LIMIT,
    open_input,
    too_big,
)
from nieuwsbrief.model import Subscriber
from nieuwsbrief.tabular import (
    DELIMITER_NAMES,
    FIELD_LIMIT,
    SNIFF_BYTES,
    detect_delimiter,
    detect_encoding,
    numbered_rows,
)
from nieuwsbrief.text import character_name, find_control_character, find_line_break

# Aliases are compared after normalise_key(), so "E-mail Address" and "e_mail_address" both match.
EMAIL_ALIASES = (
    "email",
    "e_mail",
    "e_mailadres",
    "emailadres",
    "e_mail_adres",
    "email_adres",
    "mail",
    "e_mail_address",
    "email_address",
    "emailaddress",
    "e_mailaddress",
    "mailadres",
)
NAME_ALIASES = ("naam", "name", "volledige_naam", "full_name")
FIRST_NAME_ALIASES = ("voornaam", "first_name", "firstname", "roepnaam")
MIDDLE_NAME_ALIASES = ("tussenvoegsel", "tussenvoegsels")
LAST_NAME_ALIASES = ("achternaam", "last_name", "lastname", "surname")

REPORT_LIMIT = 20  # problems of each kind shown by format_report before "... and N more"
_Kept = TypeVar("_Kept")

_NON_KEY_RE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class RejectedRow:
    """A row that was skipped because it cannot be sent to."""

    line: int
    value: str  # the offending value as found in the file (the address, or the unsafe field)
    reason: str


@dataclass(frozen=True)
class DuplicateRow:
    """A row whose address already appeared earlier in the list."""

    line: int
    email: str
    first_line: int


def normalise_key(header: str) -> str:
    """Return the merge-field key for a column header: lowercase ASCII letters, digits and '_'."""
    # Strip accents first so "Plaats/Woonplaats" and "Categorië" give readable keys, not "_".
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    return _NON_KEY_RE.sub("_", ascii_text.lower()).strip("_")


@dataclass(frozen=True)
class _Layout:
    """The columns of a list: which one is the address, which ones make the name."""

    headers: list[str]
    keys: list[str]
    email_col: int
    name_col: int | None
    name_parts: list[int]

    def values(self, row: Sequence[str]) -> list[str] | None:
        """Return the row's stripped cells, one per column; None for a row that is blank."""
        values = [cell.strip() for cell in row[: len(self.keys)]]
        values += [""] * (len(self.keys) - len(values))
        return values if any(values) else None  # Excel writes ";;;;" for empty-looking rows

    def check(self, line: int, values: Sequence[str]) -> str | RejectedRow:
        """Return the row's address in normal form (validated), or why the row is skipped."""
        problem = _unsafe_value(self.headers, values)
        if problem is not None:
            return RejectedRow(line, problem[0], problem[1])
        raw_email = values[self.email_col]
        if not raw_email:
            return RejectedRow(line, "", _("no e-mail address"))
        try:
            # A non-ASCII local part is valid (RFC 6531); send needs SMTPUTF8 for it and the
            # report says so. The normalized form keeps an international domain in Unicode.
            return str(validate_email(raw_email, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            reason = _("not a valid e-mail address: {reason}").format(reason=invalid_reason(exc))
            return RejectedRow(line, raw_email, reason)

    def subscriber(self, line: int, values: Sequence[str], email: str) -> Subscriber:
        """Return the subscriber of a checked row whose address is `email`."""
        if self.name_col is not None:
            name = values[self.name_col]
        else:
            name = " ".join(values[col] for col in self.name_parts if values[col])
        fields = dict(zip(self.keys, values, strict=True))
        fields[self.keys[self.email_col]] = email  # merges show the address we actually send to
        return Subscriber(email=email, name=" ".join(name.split()), fields=fields, line=line)


def _layout(
    path: Path, rows: Iterator[tuple[int, list[str]]], delimiter: str, encoding: str
) -> _Layout:
    """Read the header row off `rows` and find the columns."""
    header_line, headers = _first_nonblank(rows, path)
    keys = _column_keys(path, header_line, headers)
    email_col = _find_column(keys, EMAIL_ALIASES)
    if email_col is None:
        seen = ", ".join(repr(h.strip()) for h in headers) or _("none")
        raise SubscriberListError(
            _(
                "{where}: no e-mail column; the header row has {seen} "
                "(read as {delimiter}-separated {encoding}). Add a column named e-mail or email."
            ).format(
                where=f"{path}:{header_line}",
                seen=seen,
                delimiter=_(DELIMITER_NAMES[delimiter]),
                encoding=encoding,
            )
        )
    name_parts = [
        col
        for aliases in (FIRST_NAME_ALIASES, MIDDLE_NAME_ALIASES, LAST_NAME_ALIASES)
        if (col := _find_column(keys, aliases)) is not None
    ]
    return _Layout(headers, keys, email_col, _find_column(keys, NAME_ALIASES), name_parts)


# -- a list read as a stream, twice ----------------------------------------------------------
#
# A send does not hold the list: a first pass validates every row, counts and de-duplicates
# (keeping only a 16-byte digest per address, in a temporary SQLite file) and asks the caller,
# a batch of addresses at a time, which of them to send to; it keeps one byte per row. The
# second pass reads the file again and yields the chosen rows' subscribers, one at a time.

_CHUNK = 1024 * 1024
_BATCH = 500  # addresses per de-duplication query and per `select` call
_LINE_LIMIT = 2 * FIELD_LIMIT  # a longer line is not a list (and would not fit a cell)
_SEND = 1  # chosen; its cell is the address in normal form
_SEND_NORMALISED = 2  # chosen; its address is normalised again in the second pass


@dataclass
class ListScan:
    """A subscriber list after the first pass: its shape, its counts, the rows chosen.

    `selected()` reads the file again and yields the chosen rows' subscribers in file order;
    it raises SubscriberListError if the file changed since the first pass.
    """

    path: Path
    columns: tuple[str, ...]
    encoding: str
    delimiter: str
    valid: int = 0  # unique valid addresses
    invalid: int = 0
    duplicates: int = 0
    chosen: int = 0  # of the valid ones, those `select` said yes to
    smtputf8: int = 0  # of the valid ones, those with a non-ASCII local part
    international: int = 0  # of the valid ones, those with only an international domain
    # What the report shows, bounded whatever the list's size: the first REPORT_LIMIT of each.
    first_invalid: list[RejectedRow] = field(default_factory=list, repr=False)
    first_duplicates: list[DuplicateRow] = field(default_factory=list, repr=False)
    first_smtputf8: list[tuple[int, str]] = field(default_factory=list, repr=False)  # line, address
    first_international: tuple[int, str] | None = None  # the report names one, as an example
    _layout: _Layout | None = field(default=None, repr=False)
    _decisions: bytearray = field(default_factory=bytearray, repr=False)
    _identity: tuple[int, ...] = field(default=(), repr=False)
    _skip_lines: int = 0

    @property
    def rows(self) -> int:
        """Return how many rows the list has (not counting the header and blank rows)."""
        return self.valid + self.invalid + self.duplicates

    def selected(self) -> Generator[Subscriber, None, None]:
        """Yield the subscribers of the chosen rows, reading the file a second time.

        Close the generator (or read it to the end) to close the file.
        """
        layout = self._layout
        assert layout is not None
        decisions = self._decisions
        with _opened(self.path, self.encoding) as (handle, text):
            self._check_same(handle)
            rows = _stream_rows(text, self._skip_lines, self.delimiter)
            next(rows)  # the header row, checked in the first pass
            index = 0
            try:
                for line, row in rows:
                    values = layout.values(row)
                    if values is None:
                        continue
                    if index >= len(decisions):
                        raise self._changed()
                    decision = decisions[index]
                    index += 1
                    if index % 1000 == 0:
                        self._check_same(handle)
                    if not decision:
                        continue
                    email = values[layout.email_col]
                    if decision == _SEND_NORMALISED:
                        checked = layout.check(line, values)
                        if isinstance(checked, RejectedRow):
                            raise self._changed()
                        email = checked
                    yield layout.subscriber(line, values, email)
            except TableError:
                raise self._changed() from None
            if index != len(decisions):
                raise self._changed()
            self._check_same(handle)

    def _check_same(self, handle: BinaryIO) -> None:
        if _identity(handle) != self._identity:
            raise self._changed()

    def _changed(self) -> SubscriberListError:
        return SubscriberListError(
            _(
                "{path}: the list changed while it was being sent; leave the file alone during a "
                "send"
            ).format(path=self.path)
        )


def scan_subscribers(
    path: Path, select: Callable[[Sequence[str]], Sequence[bool]] | None = None
) -> ListScan:
    """Read a subscriber list once, as a stream: validate, count and de-duplicate every row.

    `select(addresses)` gets the valid unique addresses (normal form, file order) a batch at a
    time and says which to keep for `ListScan.selected()`; without it every one is kept.
    Problems that make the list unreadable are raised here, before anything is sent.
    """
    try:
        encoding = detect_encoding(lambda: _chunks(path))
        with _opened(path, encoding) as (handle, text):
            identity = _identity(handle)
            delimiter, skip_lines, rows = _sniffed_rows(text)
            layout = _layout(path, rows, delimiter, encoding)
            scan = ListScan(
                path,
                tuple(layout.keys),
                encoding,
                delimiter,
                _layout=layout,
                _identity=identity,
                _skip_lines=skip_lines,
            )
            _first_pass(scan, layout, rows, select)
            if _identity(handle) != identity:
                raise scan._changed()
    except InputFileError as exc:
        raise SubscriberListError(str(exc)) from None
    except TableError as exc:
        raise SubscriberListError(exc.located(path)) from None
    except sqlite3.Error as exc:  # the temporary file of digests (full disk, no /tmp)
        raise SubscriberListError(
            _(
                "{path}: cannot check the list for duplicates ({reason}); free some space in "
                "the temporary folder, or point SQLITE_TMPDIR elsewhere"
            ).format(path=path, reason=exc)
        ) from None
    return scan


def _first_pass(
    scan: ListScan,
    layout: _Layout,
    rows: Iterator[tuple[int, list[str]]],
    select: Callable[[Sequence[str]], Sequence[bool]] | None,
) -> None:
    decisions = scan._decisions
    pending: list[tuple[int, int, str, str, bool]] = []  # index, line, email, key, as in cell
    seen = _Seen()

    def flush() -> None:
        fresh = []
        for item, first_line in zip(pending, seen.add(pending), strict=True):
            if first_line is None:
                fresh.append(item)
                continue
            scan.duplicates += 1
            _keep_first(scan.first_duplicates, DuplicateRow(item[1], item[2], first_line))
        scan.valid += len(fresh)
        for _index, line, email, _key, _same in fresh:
            if needs_smtputf8(email):
                scan.smtputf8 += 1
                _keep_first(scan.first_smtputf8, (line, email))
            elif not email.isascii():
                scan.international += 1
                scan.first_international = scan.first_international or (line, email)
        keep = select([key for _i, _l, _e, key, _s in fresh]) if select else [True] * len(fresh)
        for (index, _line, _email, _key, same), chosen in zip(fresh, keep, strict=True):
            if chosen:
                decisions[index] = _SEND if same else _SEND_NORMALISED
                scan.chosen += 1
        pending.clear()

    try:
        for line, row in rows:
            values = layout.values(row)
            if values is None:
                continue
            index = len(decisions)
            decisions.append(0)
            email = layout.check(line, values)
            if isinstance(email, RejectedRow):
                scan.invalid += 1
                _keep_first(scan.first_invalid, email)
                continue
            same = email == values[layout.email_col]
            pending.append((index, line, email, normalise_address(email), same))
            if len(pending) >= _BATCH:
                flush()
        flush()
    finally:
        seen.close()


def _keep_first(kept: list[_Kept], item: _Kept) -> None:
    if len(kept) < REPORT_LIMIT:
        kept.append(item)


class _Seen:
    """The addresses seen so far, as 16-byte digests in a temporary SQLite file (no addresses),
    each with the line it was first seen on."""

    def __init__(self) -> None:
        # "": a private temporary database on disk, deleted when closed; its cache stays small.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(
            "CREATE TABLE seen (digest BLOB PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
        )

    def add(self, items: Sequence[tuple[int, int, str, str, bool]]) -> list[int | None]:
        """Return, per (index, line, email, key, same) item, None if its key is new, else the
        line it was first seen on."""
        digests = [hashlib.blake2b(item[3].encode(), digest_size=16).digest() for item in items]
        marks = ",".join("?" * len(digests))
        known: dict[bytes, int] = dict(
            self._db.execute(f"SELECT digest, line FROM seen WHERE digest IN ({marks})", digests)
        )
        firsts: list[int | None] = []
        new: list[tuple[bytes, int]] = []
        for digest, item in zip(digests, items, strict=True):
            first = known.get(digest)
            firsts.append(first)
            if first is None:
                known[digest] = item[1]
                new.append((digest, item[1]))
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO seen VALUES (?, ?)", new)
        self._db.execute("COMMIT")
        return firsts

    def close(self) -> None:
        self._db.close()


def _chunks(path: Path) -> Iterator[bytes]:
    with open_input(path, STREAM_LIST_LIMIT, N_("a subscriber list")) as handle:
        size = 0
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            if size > STREAM_LIST_LIMIT:  # it grew since it was opened
                raise too_big(path, size, STREAM_LIST_LIMIT, N_("a subscriber list"))
            yield chunk


@contextmanager
def _opened(path: Path, encoding: str) -> Iterator[tuple[BinaryIO, io.TextIOWrapper]]:
    handle = open_input(path, STREAM_LIST_LIMIT, N_("a subscriber list"))
    with handle, io.TextIOWrapper(handle, encoding=encoding, newline="") as text:
        yield handle, text


def _identity(handle: BinaryIO) -> tuple[int, ...]:
    info = os.fstat(handle.fileno())
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _lines(text: io.TextIOWrapper) -> Iterator[str]:
    while line := text.readline(_LINE_LIMIT):
        if len(line) == _LINE_LIMIT and not line.endswith(("\n", "\r")):
            raise TableError(
                _("a line is longer than {limit} characters; this is not a subscriber list").format(
                    limit=f"{_LINE_LIMIT:,}"
                )
            )
        yield line


def _sniffed_rows(text: io.TextIOWrapper) -> tuple[str, int, Iterator[tuple[int, list[str]]]]:
    """Return the delimiter, the lines of a 'sep=' hint, and the numbered rows of the stream."""
    lines = _lines(text)
    head: list[str] = []
    size = 0
    for line in lines:
        head.append(line)
        size += len(line)
        if size > SNIFF_BYTES:
            break
    delimiter, skip_lines, rest = detect_delimiter("".join(head))
    stream = itertools.chain(io.StringIO(rest, newline=""), lines)
    return delimiter, skip_lines, numbered_rows(stream, delimiter, first_line=skip_lines + 1)


def _stream_rows(
    text: io.TextIOWrapper, skip_lines: int, delimiter: str
) -> Iterator[tuple[int, list[str]]]:
    lines = _lines(text)
    for _skipped in range(skip_lines):
        next(lines, None)
    return numbered_rows(lines, delimiter, first_line=skip_lines + 1)


def format_report(scan: ListScan, suppressed: int | None = None) -> str:
    """Describe a scanned list in a few lines: what was read, who gets it, what was skipped."""
    delimiter = DELIMITER_NAMES.get(scan.delimiter)
    path = scan.path
    lines = [
        _("{path}: {encoding}, {delimiter}-separated").format(
            path=path,
            encoding=scan.encoding,
            delimiter=_(delimiter) if delimiter else repr(scan.delimiter),
        ),
        "  "
        + ngettext("{count} valid recipient", "{count} valid recipients", scan.valid).format(
            count=scan.valid
        ),
        "  "
        + _("merge fields: {fields}").format(
            fields=", ".join(scan.columns) if scan.columns else _("(none)")
        ),
    ]
    if scan.invalid:
        lines.append(
            "  "
            + ngettext(
                "{count} invalid row (skipped):", "{count} invalid rows (skipped):", scan.invalid
            ).format(count=scan.invalid)
        )
        lines += _limited(
            (
                f"{path}:{r.line}: {r.reason}"
                + (" " + _("(value {value})").format(value=repr(r.value)) if r.value else "")
                for r in scan.first_invalid
            ),
            scan.invalid,
        )
    if scan.duplicates:
        lines.append(
            "  "
            + ngettext(
                "{count} duplicate (skipped):", "{count} duplicates (skipped):", scan.duplicates
            ).format(count=scan.duplicates)
        )
        lines += _limited(
            (
                _("{where}: duplicate of line {line} ({address})").format(
                    where=f"{path}:{d.line}", line=d.first_line, address=d.email
                )
                for d in scan.first_duplicates
            ),
            scan.duplicates,
        )
    if scan.smtputf8:
        lines.append(
            "  "
            + _(
                "{count} with non-ASCII characters before the @, sent only if the mail "
                "server offers SMTPUTF8 (otherwise that recipient fails):"
            ).format(count=scan.smtputf8)
        )
        lines += _limited(
            (
                _("{where}: {address} needs SMTPUTF8").format(where=f"{path}:{line}", address=a)
                for line, a in scan.first_smtputf8
            ),
            scan.smtputf8,
        )
    if scan.first_international:
        line, address = scan.first_international
        lines.append(
            "  "
            + _(
                "{count} with an international domain, sent in its ASCII form "
                "(line {line}: {address})"
            ).format(count=scan.international, line=line, address=smtp_address(address))
        )
    if suppressed is not None:
        lines.append("  " + _("{count} suppressed (will be skipped)").format(count=suppressed))
    return "\n".join(lines)


def _limited(shown: Iterable[str], total: int) -> list[str]:
    # Thousands of problems usually have one cause; the first few show it, the rest only scroll.
    lines = [f"    {item}" for item in shown]
    if total > len(lines):
        lines.append("    " + _("... and {count} more").format(count=total - len(lines)))
    return lines


def _first_nonblank(rows: Iterator[tuple[int, list[str]]], path: Path) -> tuple[int, list[str]]:
    for line, row in rows:
        if any(cell.strip() for cell in row):
            return line, [cell.strip().lstrip("\ufeff").strip() for cell in row]
    raise SubscriberListError(
        _(
            "{path}: the file has no header row; add a first line with a column named e-mail "
            "or email"
        ).format(path=path)
    )


def _column_keys(path: Path, header_line: int, headers: Sequence[str]) -> list[str]:
    keys: list[str] = []
    header_of: dict[str, str] = {}
    for position, header in enumerate(headers, start=1):
        # A trailing delimiter gives a nameless column; give it a key rather than refuse the file.
        key = normalise_key(header) or f"column_{position}"
        if key in header_of:
            raise SubscriberListError(
                _(
                    "{where}: columns {first} and {second} both become merge field '{key}'; "
                    "rename one of them"
                ).format(
                    where=f"{path}:{header_line}",
                    first=repr(header_of[key]),
                    second=repr(header),
                    key=key,
                )
            )
        header_of[key] = header
        keys.append(key)
    return keys


def _find_column(keys: Sequence[str], aliases: Sequence[str]) -> int | None:
    for index, key in enumerate(keys):
        if key in aliases:
            return index
    return None


def _unsafe_value(headers: Sequence[str], values: Sequence[str]) -> tuple[str, str] | None:
    for header, value in zip(headers, values, strict=False):
        column = " ".join(header.split()) or _("a nameless column")
        # Values reach mail headers (name, merge fields in subjects): one line, no controls.
        if find_line_break(value):
            return value, _("{column} contains a line break").format(column=column)
        control = find_control_character(value)
        if control:
            return value, _("{column} contains {character}").format(
                column=column, character=character_name(control.group(0))
            )
    return None
