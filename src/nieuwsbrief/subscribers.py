"""Subscriber lists (CSV from Dutch Excel or a CRM) in, validated and de-duplicated."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from nieuwsbrief.errors import SubscriberListError
from nieuwsbrief.model import Subscriber

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab"}

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
SNIFF_BYTES = 16_384  # csv.Sniffer is slow on big samples and a few lines are enough

# Values reach mail headers (name, merge fields in subjects), so anything that could end a header
# line is refused here: Python 3.11.7 misses some encoded-newline tricks (EMAIL-STANDARDS 2.7).
_LINE_BREAK_RE = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL_RE = re.compile(r"[\x01-\x08\x0e-\x1f\x7f]")
_NON_KEY_RE = re.compile(r"[^a-z0-9]+")
_SEP_HINT_RE = re.compile(r"sep=(.)\r?\n?", re.IGNORECASE)


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
    data = _read_bytes(path)
    text, encoding = _decode(path, data)
    delimiter, skip_lines, text = _detect_delimiter(text)

    rows = _numbered_rows(text, delimiter, first_line=skip_lines + 1)
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
            email = validate_email(
                raw_email, check_deliverability=False, allow_smtputf8=False
            ).normalized
        except EmailNotValidError as exc:
            reason = f"not a valid e-mail address: {str(exc).rstrip('.')}"
            invalid.append(RejectedRow(line, raw_email, reason))
            continue
        # Mailbox local parts are case-sensitive in theory, never in practice: one person, one mail.
        dedupe_key = email.lower()
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


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SubscriberListError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise SubscriberListError(f"{path}: is a folder; give the CSV file inside it") from None
    except OSError as exc:
        raise SubscriberListError(f"{path}: cannot be read ({exc.strerror})") from None


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    if not data.strip():
        raise SubscriberListError(
            f"{path}: the file is empty; export the list as CSV with a header row "
            "that has a column named e-mail or email"
        )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SubscriberListError(
            f"{path}: saved as UTF-16 ('Unicode text'); in Excel choose Save As > 'CSV UTF-8'"
        )
    # Text never has many NULs; one stray NUL from a CRM only costs its row (see _unsafe_value).
    head = data[:8192]
    if data.startswith(b"PK\x03\x04"):
        kind = "an Excel workbook (.xlsx)"
    elif data.startswith(b"\xd0\xcf\x11\xe0"):
        kind = "an Excel 97-2003 workbook (.xls)"
    elif head.count(b"\x00") >= max(2, len(head) // 100):
        kind = "not a text file"
    else:
        kind = ""
    if kind:
        raise SubscriberListError(
            f"{path}: {kind}, not CSV; in Excel choose Save As > 'CSV UTF-8' or 'CSV (;)'"
        )
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise SubscriberListError(
                f"{path}: starts like UTF-8 but byte 0x{data[exc.start]:02x} at offset "
                f"{exc.start} is not; export the list again as 'CSV UTF-8'"
            ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Excel's plain "CSV" export on Dutch Windows is Windows-1252; it leaves five bytes undefined.
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise SubscriberListError(
            f"{path}: not text in UTF-8 or Windows-1252 (byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start}); export the list again as 'CSV UTF-8'"
        ) from None


def _detect_delimiter(text: str) -> tuple[str, int, str]:
    """Return the delimiter, the number of lines consumed by a 'sep=' hint, and the rest."""
    # Excel honours (and some tools write) a first line "sep=;" naming the separator.
    hint = _SEP_HINT_RE.match(text)
    if hint and hint.group(1) in DELIMITERS:
        return hint.group(1), 1, text[hint.end() :]

    header_line = re.split(r"[\r\n]", text.lstrip("\r\n"), maxsplit=1)[0]
    counts = {d: header_line.count(d) for d in DELIMITERS}
    sample = text[:SNIFF_BYTES]
    if len(text) > SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # a cut-off last line misleads the sniffer
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = ""
    # The sniffer can be fooled by commas inside quoted text; a header without the sniffed
    # delimiter but with another candidate tells us the truth.
    if sniffed in DELIMITERS and (counts[sniffed] or not any(counts.values())):
        return sniffed, 0, text
    best = max(DELIMITERS, key=lambda d: counts[d])
    return (best if counts[best] else ","), 0, text


def _numbered_rows(text: str, delimiter: str, first_line: int) -> Iterator[tuple[int, list[str]]]:
    """Yield each row with the physical line on which it starts."""
    # newline="" keeps quoted line breaks intact and lets csv count physical lines itself.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    consumed = 0
    for row in reader:
        yield first_line + consumed, row
        # line_num counts the source lines read so far, including line breaks inside quotes.
        consumed = reader.line_num


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
