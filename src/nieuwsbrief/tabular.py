"""Text tables as Dutch Excel and CRMs export them: encoding, delimiter, numbered rows.

Shared by the subscriber list, the agenda CSV and staff's unsubscribe request files. Problems
raise TableError with a message (no file name); each caller names the file in its own
NieuwsbriefError.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator

from nieuwsbrief.errors import TableError
from nieuwsbrief.i18n import N_, _

# The longest cell a table may have. Python's csv module stops at 131,072 characters by default
# with a bare "_csv.Error"; real cells (an address, a name, a note) are far shorter, and a cell
# over this limit is reported with its line (usually a quote that is never closed).
FIELD_LIMIT = 1_000_000
csv.field_size_limit(FIELD_LIMIT)
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {
    ",": N_("comma (,)"),
    ";": N_("semicolon (;)"),
    "\t": N_("tab"),
}  # translate: _()
SNIFF_BYTES = 16_384  # csv.Sniffer is slow on big samples and a few lines are enough
_SEP_HINT_RE = re.compile(r"sep=(.)\r?\n?", re.IGNORECASE)


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding): UTF-8 with or without BOM, else Windows-1252 (Excel's 'CSV')."""
    encoding = detect_encoding(lambda: (data,))
    return data.decode(encoding), encoding


def detect_encoding(chunks: Callable[[], Iterable[bytes]]) -> str:
    """Return the encoding of the bytes `chunks()` yields: 'utf-8-sig', 'utf-8' or 'cp1252'.

    Reads the chunks once, twice if they are not UTF-8 (so a file can be checked as a stream);
    refuses what is not a text table with TableError.
    """
    head = b""
    blank = True
    utf8 = _Undecodable("utf-8")  # checked while reading the head: one read for most files
    for chunk in chunks():
        if len(head) < 8192:
            head += chunk[: 8192 - len(head)]
        blank = blank and not chunk.strip()
        if not utf8.feed(chunk) and not blank:
            break  # not UTF-8, and not empty: that is all this read can tell
    utf8.end()
    if blank:
        raise TableError(_("the file is empty; export it as CSV with a header row"))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TableError(
            _("saved as UTF-16 ('Unicode text'); in Excel choose Save As > 'CSV UTF-8'")
        )
    # Text never has many NULs; one stray NUL from a CRM only costs its row.
    if head.startswith(b"PK\x03\x04"):
        kind = _("an Excel workbook (.xlsx)")
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        kind = _("an Excel 97-2003 workbook (.xls)")
    elif head.count(b"\x00") >= max(2, len(head) // 100):
        kind = _("not a text file")
    else:
        kind = ""
    if kind:
        raise TableError(
            _("{kind}, not CSV; in Excel choose Save As > 'CSV UTF-8' or 'CSV (;)'").format(
                kind=kind
            )
        )
    if head.startswith(codecs.BOM_UTF8):
        bad = utf8.bad
        if bad is not None:
            raise TableError(
                _(
                    "starts like UTF-8 but byte {byte} at offset {offset} is not; "
                    "export it again as 'CSV UTF-8'"
                ).format(byte=f"0x{bad[1]:02x}", offset=bad[0])
            )
        return "utf-8-sig"
    if utf8.bad is None:
        return "utf-8"
    # Excel's plain "CSV" export on Dutch Windows is Windows-1252; it leaves five bytes undefined.
    cp1252 = _Undecodable("cp1252")
    for chunk in chunks():
        if not cp1252.feed(chunk):
            break
    cp1252.end()
    bad = cp1252.bad
    if bad is not None:
        raise TableError(
            _(
                "not text in UTF-8 or Windows-1252 (byte {byte} at offset {offset}); "
                "export it again as 'CSV UTF-8'"
            ).format(byte=f"0x{bad[1]:02x}", offset=bad[0])
        )
    return "cp1252"


class _Undecodable:
    """Feeds chunks to a decoder; `bad` is (offset, byte) of the first undecodable byte."""

    def __init__(self, encoding: str) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._offset = 0  # of the next chunk's first byte in the whole
        self.bad: tuple[int, int] | None = None

    def feed(self, chunk: bytes, final: bool = False) -> bool:
        """Decode one more chunk; return False once a byte could not be decoded."""
        if self.bad is not None:
            return False
        try:
            self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            # exc.object is what the decoder held back from earlier chunks, then this chunk.
            start = self._offset + len(chunk) - len(exc.object) + exc.start
            self.bad = (start, exc.object[exc.start])
            return False
        self._offset += len(chunk)
        return True

    def end(self) -> None:
        """The whole was fed: a sequence cut off at the end is undecodable too."""
        self.feed(b"", final=True)


def detect_delimiter(text: str) -> tuple[str, int, str]:
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


def numbered_rows(
    text: str | Iterable[str], delimiter: str, first_line: int
) -> Iterator[tuple[int, list[str]]]:
    """Yield each row with the physical line on which it starts (`text`: a str or its lines)."""
    # newline="" keeps quoted line breaks intact and lets csv count physical lines itself.
    lines = io.StringIO(text, newline="") if isinstance(text, str) else text
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    consumed = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = first_line + consumed
            if "field larger than field limit" in str(exc):
                raise TableError(
                    _(
                        "a cell in the row starting here is longer than {limit} characters "
                        '(the limit); often a quote (") that is never closed swallows the rest of '
                        "the file: check the quotes in this row"
                    ).format(limit=f"{FIELD_LIMIT:,}"),
                    line,
                ) from None
            raise TableError(
                _("cannot be read as CSV ({reason}); check this row").format(reason=exc), line
            ) from None
        yield first_line + consumed, row
        # line_num counts the source lines read so far, including line breaks inside quotes.
        consumed = reader.line_num
