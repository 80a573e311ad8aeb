"""The character rules of text.py: what is a control character, a line break, shown text."""

from __future__ import annotations

import pytest

from nieuwsbrief.text import breaks_header, character_name, find_control_character, shown


@pytest.mark.parametrize("char", ["\t", "\n", "\r", " ", "é", "\u00a0"])
def test_tab_line_ends_and_text_are_not_control_characters(char: str) -> None:
    assert find_control_character(f"a{char}b") is None


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9b"])
def test_every_other_cc_character_is_one(char: str) -> None:
    match = find_control_character(f"ab{char}c")
    assert match is not None and match.start() == 2


def test_names_say_which_character() -> None:
    assert character_name("\x1b") == "an ESC character (U+001B)"
    assert character_name("\x9b") == "a control character (U+009B)"


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x85b", "a\u2028b", "a\x00b", "a\x1eb"])
def test_a_header_value_must_be_one_line_without_nul(value: str) -> None:
    assert breaks_header(value)
    assert not breaks_header("Jan de Vries\tjr.")


def test_shown_text_keeps_line_feeds_and_replaces_the_rest() -> None:
    assert shown("550 no\r\n\x1b[31mred\x9b") == "550 no?\n?[31mred?"
    assert shown("250 ok") == "250 ok"
