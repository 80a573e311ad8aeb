"""Read small YAML files into plain str/list/dict values, keeping the line of every value.

Everything is read as text (no implicit dates, numbers or booleans): content.py decides what
a value means, so `2012-02-31` becomes a clear error with its line instead of a YAML crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ContentError


@dataclass(frozen=True)
class Node:
    """A YAML value with the 1-based line it starts on."""

    value: str | list[Node] | dict[str, Node] | None
    line: int


def parse_yaml(text: str, path: Path, first_line: int = 1) -> Node:
    """Parse YAML text into a Node tree; `first_line` is the file line of the text's first line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + mark.line if mark else first_line
        problem = exc.problem or exc.context or "invalid YAML"
        raise ContentError(path, f"invalid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise ContentError(path, f"invalid YAML: {exc}", first_line) from None
    if root is None:
        return Node(None, first_line)
    return _convert(root, path, first_line - 1)


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
                raise ContentError(path, "a key must be plain text", key_node.start_mark.line + 1)
            key = str(key_node.value)
            if key in mapping:
                raise ContentError(
                    path, f"'{key}' appears twice", key_node.start_mark.line + 1 + offset
                )
            mapping[key] = _convert(value_node, path, offset)
        return Node(mapping, line)
    raise ContentError(path, "unsupported YAML construct", line)  # pragma: no cover
