"""Which characters text may hold: the one definition of control characters and line breaks.

Three rules, each used where its name says:

- `find_control_character`: Unicode category Cc (C0, DEL, C1) except tab, line feed and
  carriage return. Content files, agenda CSV, YAML values and subscriber cells refuse them:
  they are invisible, and an ESC or a C1 character in a newsletter is a copy-paste accident.
  Tab is text (a CSV cell, Markdown), and the line ends are what files are made of.
- `find_line_break`: everything that ends a line for Python's e-mail package or a mail reader
  (CR, LF, VT, FF, FS/GS/RS, NEL, U+2028/9). A value that goes into a header (a name, a merge
  field in the subject) must be one line: Python 3.11 misses some encoded-newline tricks
  (EMAIL-STANDARDS 2.7). `breaks_header` (a line break or a NUL) is message.py's last guard.
- `shown`: text from outside (a server's reply) made safe for a terminal, the ledger and a CSV:
  every control character and CR becomes "?"; line feeds stay.

Cheap to import (config.py uses it at start-up); the visible text of HTML is in htmltext.py.
"""

from __future__ import annotations

import re

from nieuwsbrief.i18n import N_, _

_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # Cc without \t \n \r
_CONTROL_RE = re.compile(f"[{_CONTROL}]")
_SHOWN_UNSAFE_RE = re.compile(f"[{_CONTROL}\r]")  # a CR on a terminal overwrites the line
_LINE_BREAK_RE = re.compile("[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_NAMES = {
    "\x00": N_("a NUL character"),
    "\x0b": N_("a vertical tab"),
    "\x1b": N_("an ESC character"),
}
_OTHER_NAME = N_("a control character")


def find_control_character(text: str) -> re.Match[str] | None:
    """Return the first control character of `text` (tab and line ends are not), or None."""
    return _CONTROL_RE.search(text)


def find_line_break(text: str) -> re.Match[str] | None:
    """Return the first character of `text` that ends a line, or None when it is one line."""
    return _LINE_BREAK_RE.search(text)


def breaks_header(value: str) -> bool:
    """Return whether `value` would break a header field: a line break or a NUL in it."""
    return "\x00" in value or _LINE_BREAK_RE.search(value) is not None


def character_name(char: str) -> str:
    """Return how messages name an invisible character: 'an ESC character (U+001B)'."""
    name = _(_NAMES.get(char, _OTHER_NAME))
    return f"{name} (U+{ord(char):04X})"


def shown(text: str) -> str:
    """Return `text` with every control character and CR replaced by '?'."""
    return text if text.isprintable() else _SHOWN_UNSAFE_RE.sub("?", text)
