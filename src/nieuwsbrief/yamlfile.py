"""Read small YAML files into plain str/list/dict values, keeping the line of every value.

Everything is read as text (no implicit dates, numbers or booleans): content.py decides what
a value means, so `2012-02-31` becomes a clear error with its line instead of a YAML crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from nieuwsbrief.errors import ContentError
from nieuwsbrief.i18n import N_, _


@dataclass(frozen=True)
class Node:
    """A YAML value with the 1-based line it starts on (and of its key, in a mapping).

    A block value starts below its key (`tags:` then `  - a`), and an error about the key
    itself (unknown, misspelt) belongs on the key's line: `key_line` (0 outside a mapping).
    """

    value: str | list[Node] | dict[str, Node] | None
    line: int
    key_line: int = 0


MAX_DEPTH = 32  # our files nest three levels; a deeper file is a mistake or an attack
# PyYAML needs about 700 bytes per value: 5 MB of "- a" lines would take 900 MB and 30 s.
MAX_VALUES = 100_000  # an agenda of 10,000 events has 70,000


class _Refused(Exception):
    """A construct our files do not allow; `line` is 0-based within the parsed text."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer without anchors and aliases, and with a nesting limit.

    An alias makes one node appear many times: nine levels of them in 432 bytes (a "billion
    laughs") expand to millions of values, and `&a [*a]` contains itself. Our files never need
    them, so they are refused where they are written.
    """

    _depth = 0
    _values = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            # An alias always follows its anchor, so a lone *name is text that lacks quotes.
            hint = (
                " " + _("(text that starts with * needs quotes)")
                if isinstance(event, yaml.AliasEvent)
                else ""
            )
            raise _Refused(
                _("aliases ({aliases}) are not allowed; write the value out").format(
                    aliases=f"&{anchor} / *{anchor}"
                )
                + hint,
                event.start_mark.line,
            )
        if self._depth >= MAX_DEPTH:
            raise _Refused(
                _(
                    "values are nested more than {depth} levels deep; "
                    "this file needs at most a list of mappings"
                ).format(depth=MAX_DEPTH),
                event.start_mark.line,
            )
        self._values += 1
        if self._values > MAX_VALUES:
            raise _Refused(
                _("the file has more than {count} values; is this the right file?").format(
                    count=f"{MAX_VALUES:,}"
                ),
                event.start_mark.line,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str, path: Path, first_line: int = 1) -> Node:
    """Parse YAML text into a Node tree; `first_line` is the file line of the text's first line."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except _Refused as exc:
        raise ContentError(path, str(exc), first_line + exc.line) from None
    except yaml.reader.ReaderError as exc:
        line = first_line + text.count("\n", 0, exc.position)
        raise ContentError(
            path,
            _("contains the character {character}, which YAML does not allow; delete it").format(
                character=f"U+{exc.character:04X}"
            ),
            line,
        ) from None
    except RecursionError:  # MAX_DEPTH stops nesting long before this; kept as a last guard
        raise ContentError(path, _("values are nested too deeply"), first_line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + mark.line if mark else first_line
        problem = yaml_problem(exc.problem or exc.context or "")
        advice = _quote_advice(text, line - first_line) if mark else ""
        raise ContentError(
            path,
            (_("invalid YAML: {problem}{advice}").format(problem=problem, advice=advice)),
            line,
        ) from None
    except yaml.YAMLError as exc:
        raise ContentError(path, (_("invalid YAML: {exc}").format(exc=exc)), first_line) from None
    finally:
        loader.dispose()
    if root is None:
        return Node(None, first_line)
    return _convert(root, path, first_line - 1)


# PyYAML explains in English; its common problems are msgids of our catalog, so they read the
# same in English and are translated for Dutch. Others stay as the library wrote them.
_YAML_PROBLEMS = frozenset(
    (
        N_("mapping values are not allowed here"),
        N_("could not find expected ':'"),
        N_("found unexpected end of stream"),
        N_("found character '\\t' that cannot start any token"),
        N_("expected <block end>, but found '<block mapping start>'"),
        N_("expected <block end>, but found '?'"),
    )
)


def yaml_problem(problem: str) -> str:
    """Return PyYAML's `problem` in the user's language when it is a common one."""
    if not problem:
        return _("invalid YAML")
    return _(problem) if problem in _YAML_PROBLEMS else problem


# `key: value` with a plain (unquoted) value; characters YAML reads as syntax break such lines.
_PLAIN_VALUE_RE = re.compile(r"^(\s*(?:-\s+)?[A-Za-z_][\w-]*):[ \t]+([^'\"\s|>].*?)\s*$")
_NEEDS_QUOTES_RE = re.compile(r": |\s#|^[@`*&!%{\[]")


def _quote_advice(text: str, index: int) -> str:
    """Say how to quote a value that YAML read as syntax, with the fixed line as an example."""
    lines = text.split("\n")
    if not 0 <= index < len(lines):
        return ""
    match = _PLAIN_VALUE_RE.match(lines[index])
    if match is None or not _NEEDS_QUOTES_RE.search(match[2]):
        return ""
    value = match[2].replace("\\", "\\\\").replace('"', '\\"')
    return _(
        "; a value with ': ' (or starting with a sign such as @ * & "
        '!) needs quotes, like this: {key}: "{value}"'
    ).format(key=match[1].strip(), value=value)


def _convert(node: yaml.Node, path: Path, offset: int) -> Node:
    line = node.start_mark.line + 1 + offset
    if isinstance(node, yaml.ScalarNode):
        value = str(node.value)
        if node.tag == "tag:yaml.org,2002:null" and node.style is None:
            return Node(None, line)
        return Node(value, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(item, path, offset) for item in node.value], line)
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1 + offset
                raise ContentError(path, _("a key must be plain text"), line)
            key = str(key_node.value)
            if key in mapping:
                raise ContentError(
                    path,
                    _("'{key}' appears twice").format(key=key),
                    key_node.start_mark.line + 1 + offset,
                )
            converted = _convert(value_node, path, offset)
            mapping[key] = replace(converted, key_line=key_node.start_mark.line + 1 + offset)
        return Node(mapping, line)
    raise ContentError(path, _("unsupported YAML construct"), line)  # pragma: no cover
