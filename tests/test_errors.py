"""The error family: every class in errors.py, the docstring tree true, no bare base raised."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import nieuwsbrief
from nieuwsbrief import errors
from nieuwsbrief.errors import NieuwsbriefError

SRC = Path(nieuwsbrief.__file__).parent
_TREE_LINE_RE = re.compile(r"^(?P<indent>(?:[│ ]   )*)(?:[├└]── )?(?P<name>[A-Z]\w+Error)\s")


def _documented_tree() -> dict[str, tuple[str | None, int]]:
    """Return {class: (parent, exit code)} as the docstring of errors.py draws it."""
    tree: dict[str, tuple[str | None, int]] = {}
    stack: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = _TREE_LINE_RE.match(line)
        if match is None:
            continue
        depth = len(match["indent"]) // 4 + (1 if line[len(match["indent"]) :][:1] in "├└" else 0)
        del stack[depth:]
        parent = stack[-1] if stack else None
        code = re.search(r"\bexit (\d)\b", line)
        inherited = tree[parent][1] if parent else 2
        tree[match["name"]] = (parent, int(code[1]) if code else inherited)
        stack.append(match["name"])
    return tree


def _defined_tree() -> dict[str, tuple[str | None, int]]:
    found: dict[str, tuple[str | None, int]] = {}
    for name, cls in vars(errors).items():
        if inspect.isclass(cls) and issubclass(cls, NieuwsbriefError):
            parent = None if cls is NieuwsbriefError else cls.__bases__[0].__name__
            found[name] = (parent, cls.exit_code)
    return found


def test_the_docstring_tree_is_the_class_tree() -> None:
    documented = _documented_tree()
    assert "NieuwsbriefError" in documented and len(documented) > 10
    assert documented == _defined_tree()


def test_every_error_class_is_defined_in_errors_py() -> None:
    elsewhere = []
    for module in pkgutil.walk_packages(nieuwsbrief.__path__, "nieuwsbrief."):
        if module.name == "nieuwsbrief.__main__":
            continue  # importing it runs the CLI
        loaded = importlib.import_module(module.name)
        for name, cls in vars(loaded).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, NieuwsbriefError)
                and cls.__module__ == module.name
                and module.name != "nieuwsbrief.errors"
            ):
                elsewhere.append(f"{module.name}.{name}")
    assert elsewhere == []


def _calls_of_base(tree: ast.AST) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "NieuwsbriefError"
    ]


def test_core_code_raises_only_subclasses() -> None:
    bare = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "errors.py"
        for line in _calls_of_base(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert bare == []


def test_no_exit_code_is_set_on_an_instance() -> None:
    setters = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "cli.py"  # cli.py copies click's exit code onto its localised error
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute) and target.attr == "exit_code"
    ]
    assert setters == []


def test_errors_imports_only_the_standard_library() -> None:
    # cli.py imports errors before parsing arguments: it must stay cheap.
    tree = ast.parse((SRC / "errors.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] if isinstance(node, ast.Import) else (node.module or "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "pathlib"}
