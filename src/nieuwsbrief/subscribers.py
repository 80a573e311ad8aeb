"""Subscriber lists (CSV from Dutch Excel or a CRM) in, validated and de-duplicated."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from nieuwsbrief.addresses import needs_smtputf8, normalise_address, smtp_address
from nieuwsbrief.errors import SubscriberListError
from nieuwsbrief.inputfile import LIST_LIMIT, InputFileError, read_input
from nieuwsbrief.model import Subscriber
from nieuwsbrief.tabular import (
    DELIMITER_NAMES,
    UnreadableTable,
    decode,
    detect_delimiter,
    numbered_rows,
)

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
)
NAME_ALIASES = ("naam", "name", "volledige_naam", "full_name")
FIRST_NAME_ALIASES = ("voornaam", "first_name", "firstname", "roepnaam")
MIDDLE_NAME_ALIASES = ("tussenvoegsel", "tussenvoegsels")
LAST_NAME_ALIASES = ("achternaam", "last_name", "lastname", "surname")

REPORT_LIMIT = 20  # problems of each kind shown by format_report before "... and N more"

# Values reach mail headers (name, merge fields in subjects), so anything that could end a header
# line is refused here: Python 3.11.7 misses some encoded-newline tricks (EMAIL-STANDARDS 2.7).
_LINE_BREAK_RE = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL_RE = re.compile(r"[\x01-\x08\x0e-\x1f\x7f]")
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


@dataclass(frozen=True)
class SubscriberList:
    """A loaded subscriber list: valid recipients in file order, plus what was skipped and why."""

    path: Path
    subscribers: tuple[Subscriber, ...]
    invalid: tuple[RejectedRow, ...]
    duplicates: tuple[DuplicateRow, ...]
    columns: tuple[str, ...]  # merge-field keys, in column order
    encoding: str
    delimiter: str


def normalise_key(header: str) -> str:
    """Return the merge-field key for a column header: lowercase ASCII letters, digits and '_'."""
    # Strip accents first so "Plaats/Woonplaats" and "Categorië" give readable keys, not "_".
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    return _NON_KEY_RE.sub("_", ascii_text.lower()).strip("_")


def load_subscribers(path: Path) -> SubscriberList:
    """Read a CSV subscriber list: valid unique addresses kept, every skipped row reported."""
    try:
        data = read_input(path, LIST_LIMIT, "a subscriber list")
    except InputFileError as exc:
        raise SubscriberListError(str(exc)) from None
    try:
        return _parse(path, *decode(data))
    except UnreadableTable as exc:
        raise SubscriberListError(exc.located(path)) from None


def _parse(path: Path, text: str, encoding: str) -> SubscriberList:
    delimiter, skip_lines, text = detect_delimiter(text)

    rows = numbered_rows(text, delimiter, first_line=skip_lines + 1)
    header_line, headers = _first_nonblank(rows, path)
    keys = _column_keys(path, header_line, headers)
    email_col = _find_column(keys, EMAIL_ALIASES)
    if email_col is None:
        seen = ", ".join(repr(h.strip()) for h in headers) or "none"
        raise SubscriberListError(
            f"{path}:{header_line}: no e-mail column; the header row has {seen} "
            f"(read as {DELIMITER_NAMES[delimiter]}-separated {encoding}). "
            "Add a column named e-mail or email."
        )
    name_col = _find_column(keys, NAME_ALIASES)
    name_parts = [
        col
        for aliases in (FIRST_NAME_ALIASES, MIDDLE_NAME_ALIASES, LAST_NAME_ALIASES)
        if (col := _find_column(keys, aliases)) is not None
    ]

    subscribers: list[Subscriber] = []
    invalid: list[RejectedRow] = []
    duplicates: list[DuplicateRow] = []
    first_seen: dict[str, int] = {}
    for line, row in rows:
        values = [cell.strip() for cell in row[: len(keys)]]
        values += [""] * (len(keys) - len(values))
        if not any(values):
            continue  # Excel writes ";;;;" for rows that only look empty
        problem = _unsafe_value(headers, values)
        if problem is not None:
            invalid.append(RejectedRow(line, problem[0], problem[1]))
            continue
        raw_email = values[email_col]
        if not raw_email:
            invalid.append(RejectedRow(line, "", "no e-mail address"))
            continue
        try:
            # A non-ASCII local part is valid (RFC 6531); send needs SMTPUTF8 for it and the
            # report says so. The normalized form keeps an international domain in Unicode.
            email = validate_email(raw_email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            reason = f"not a valid e-mail address: {str(exc).rstrip('.')}"
            invalid.append(RejectedRow(line, raw_email, reason))
            continue
        dedupe_key = normalise_address(email)
        if dedupe_key in first_seen:
            duplicates.append(DuplicateRow(line, email, first_seen[dedupe_key]))
            continue
        first_seen[dedupe_key] = line
        if name_col is not None:
            name = values[name_col]
        else:
            name = " ".join(values[col] for col in name_parts if values[col])
        fields = dict(zip(keys, values, strict=True))
        fields[keys[email_col]] = email  # merges show the address we actually send to
        subscribers.append(
            Subscriber(
                email=email,
                name=" ".join(name.split()),
                fields=fields,
                line=line,
            )
        )

    return SubscriberList(
        path=path,
        subscribers=tuple(subscribers),
        invalid=tuple(invalid),
        duplicates=tuple(duplicates),
        columns=tuple(keys),
        encoding=encoding,
        delimiter=delimiter,
    )


def format_report(lst: SubscriberList, suppressed: int | None = None) -> str:
    """Describe a loaded list in a few lines: what was read, who gets it, what was skipped."""
    lines = [
        f"{lst.path}: {lst.encoding}, {DELIMITER_NAMES.get(lst.delimiter, repr(lst.delimiter))}"
        "-separated",
        f"  {_count(len(lst.subscribers), 'valid recipient')}",
        f"  merge fields: {', '.join(lst.columns) if lst.columns else '(none)'}",
    ]
    if lst.invalid:
        lines.append(f"  {_count(len(lst.invalid), 'invalid row')} (skipped):")
        lines += _limited(
            f"{lst.path}:{r.line}: {r.reason}" + (f" (value {r.value!r})" if r.value else "")
            for r in lst.invalid
        )
    if lst.duplicates:
        lines.append(f"  {_count(len(lst.duplicates), 'duplicate')} (skipped):")
        lines += _limited(
            f"{lst.path}:{d.line}: duplicate of line {d.first_line} ({d.email})"
            for d in lst.duplicates
        )
    smtputf8 = [s for s in lst.subscribers if needs_smtputf8(s.email)]
    if smtputf8:
        lines.append(
            f"  {len(smtputf8)} with non-ASCII characters before the @, sent only if the mail "
            "server offers SMTPUTF8 (otherwise that recipient fails):"
        )
        lines += _limited(f"{lst.path}:{s.line}: {s.email} needs SMTPUTF8" for s in smtputf8)
    idn = [s for s in lst.subscribers if not s.email.isascii() and not needs_smtputf8(s.email)]
    if idn:
        lines.append(
            f"  {len(idn)} with an international domain, sent in its ASCII form "
            f"(line {idn[0].line}: {smtp_address(idn[0].email)})"
        )
    if suppressed is not None:
        lines.append(f"  {suppressed} suppressed (will be skipped)")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _limited(items: Iterable[str]) -> list[str]:
    # Thousands of problems usually have one cause; the first few show it, the rest only scroll.
    shown: list[str] = []
    hidden = 0
    for item in items:
        if len(shown) < REPORT_LIMIT:
            shown.append(f"    {item}")
        else:
            hidden += 1
    if hidden:
        shown.append(f"    ... and {hidden} more")
    return shown


def _first_nonblank(rows: Iterator[tuple[int, list[str]]], path: Path) -> tuple[int, list[str]]:
    for line, row in rows:
        if any(cell.strip() for cell in row):
            return line, [cell.strip().lstrip("\ufeff").strip() for cell in row]
    raise SubscriberListError(
        f"{path}: the file has no header row; add a first line with a column named e-mail or email"
    )


def _column_keys(path: Path, header_line: int, headers: Sequence[str]) -> list[str]:
    keys: list[str] = []
    header_of: dict[str, str] = {}
    for position, header in enumerate(headers, start=1):
        # A trailing delimiter gives a nameless column; give it a key rather than refuse the file.
        key = normalise_key(header) or f"column_{position}"
        if key in header_of:
            raise SubscriberListError(
                f"{path}:{header_line}: columns {header_of[key]!r} and {header!r} both become "
                f"merge field '{key}'; rename one of them"
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
        column = " ".join(header.split()) or "a nameless column"
        if _LINE_BREAK_RE.search(value):
            return value, f"{column} contains a line break"
        if "\x00" in value:
            return value, f"{column} contains a NUL character"
        if _CONTROL_RE.search(value):
            return value, f"{column} contains a control character"
    return None
