"""Subscriber lists (CSV from Dutch Excel or a CRM) in, validated and de-duplicated."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from nieuwsbrief.addresses import (
    invalid_reason,
    needs_smtputf8,
    normalise_address,
    smtp_address,
)
from nieuwsbrief.errors import InputFileError, SubscriberListError, TableError
from nieuwsbrief.i18n import N_, _, ngettext
from nieuwsbrief.inputfile import LIST_LIMIT, read_input
from nieuwsbrief.model import Subscriber
from nieuwsbrief.tabular import (
    DELIMITER_NAMES,
    decode,
    detect_delimiter,
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
        data = read_input(path, LIST_LIMIT, N_("a subscriber list"))
    except InputFileError as exc:
        raise SubscriberListError(str(exc)) from None
    try:
        return _parse(path, *decode(data))
    except TableError as exc:
        raise SubscriberListError(exc.located(path)) from None


def _parse(path: Path, text: str, encoding: str) -> SubscriberList:
    delimiter, skip_lines, text = detect_delimiter(text)

    rows = numbered_rows(text, delimiter, first_line=skip_lines + 1)
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
            invalid.append(RejectedRow(line, "", _("no e-mail address")))
            continue
        try:
            # A non-ASCII local part is valid (RFC 6531); send needs SMTPUTF8 for it and the
            # report says so. The normalized form keeps an international domain in Unicode.
            email = validate_email(raw_email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            reason = _("not a valid e-mail address: {reason}").format(reason=invalid_reason(exc))
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
    delimiter = DELIMITER_NAMES.get(lst.delimiter)
    valid, invalid, duplicates = len(lst.subscribers), len(lst.invalid), len(lst.duplicates)
    lines = [
        _("{path}: {encoding}, {delimiter}-separated").format(
            path=lst.path,
            encoding=lst.encoding,
            delimiter=_(delimiter) if delimiter else repr(lst.delimiter),
        ),
        "  "
        + ngettext("{count} valid recipient", "{count} valid recipients", valid).format(
            count=valid
        ),
        "  "
        + _("merge fields: {fields}").format(
            fields=", ".join(lst.columns) if lst.columns else _("(none)")
        ),
    ]
    if lst.invalid:
        lines.append(
            "  "
            + ngettext(
                "{count} invalid row (skipped):", "{count} invalid rows (skipped):", invalid
            ).format(count=invalid)
        )
        lines += _limited(
            f"{lst.path}:{r.line}: {r.reason}"
            + (" " + _("(value {value})").format(value=repr(r.value)) if r.value else "")
            for r in lst.invalid
        )
    if lst.duplicates:
        lines.append(
            "  "
            + ngettext(
                "{count} duplicate (skipped):", "{count} duplicates (skipped):", duplicates
            ).format(count=duplicates)
        )
        lines += _limited(
            _("{where}: duplicate of line {line} ({address})").format(
                where=f"{lst.path}:{d.line}", line=d.first_line, address=d.email
            )
            for d in lst.duplicates
        )
    smtputf8 = [s for s in lst.subscribers if needs_smtputf8(s.email)]
    if smtputf8:
        lines.append(
            "  "
            + _(
                "{count} with non-ASCII characters before the @, sent only if the mail "
                "server offers SMTPUTF8 (otherwise that recipient fails):"
            ).format(count=len(smtputf8))
        )
        lines += _limited(
            _("{where}: {address} needs SMTPUTF8").format(
                where=f"{lst.path}:{s.line}", address=s.email
            )
            for s in smtputf8
        )
    idn = [s for s in lst.subscribers if not s.email.isascii() and not needs_smtputf8(s.email)]
    if idn:
        lines.append(
            "  "
            + _(
                "{count} with an international domain, sent in its ASCII form "
                "(line {line}: {address})"
            ).format(count=len(idn), line=idn[0].line, address=smtp_address(idn[0].email))
        )
    if suppressed is not None:
        lines.append("  " + _("{count} suppressed (will be skipped)").format(count=suppressed))
    return "\n".join(lines)


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
        shown.append("    " + _("... and {count} more").format(count=hidden))
    return shown


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
