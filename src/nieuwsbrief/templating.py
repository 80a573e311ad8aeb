"""Where the house style comes from: the home's templates/ over the defaults in the package.

The defaults (the e-mail, the web edition, the unsubscribe pages and a neutral brand.yaml) ship
inside the installed package, in `nieuwsbrief/templates/`, found with importlib.resources. A
home's own templates folder (`templates/`, or the `templates` key of nieuwsbrief.toml)
overrides them file by file: a file there with the name of a default wins, every other file
comes from the package. `override` below is that folder, or None for the defaults alone.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

DEFAULTS_FOLDER = "templates"  # inside the nieuwsbrief package
BRAND_FILE = "brand.yaml"
_SKIPPED = ("__pycache__",)


def default_templates_dir() -> Path:
    """Return the folder of the templates and brand.yaml that ship with nieuwsbrief."""
    return Path(str(resources.files("nieuwsbrief") / DEFAULTS_FOLDER))


def search_path(override: Path | None) -> tuple[Path, ...]:
    """Return the folders a template is looked up in, the one that wins first."""
    defaults = default_templates_dir()
    return (override, defaults) if override is not None else (defaults,)


def template_path(override: Path | None, name: str) -> Path:
    """Return the file that `name` is read from: the home's if it has one, else the default.

    A name found nowhere gives the default's path, for the message that says it is missing.
    """
    for folder in search_path(override):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return default_templates_dir() / name


def template_files(override: Path | None) -> dict[str, Path]:
    """Return every file of the effective house style: name -> the file in force.

    The names are relative to their folder ('email.mjml.j2', 'sub/x.j2'), in sorted order.
    """
    files: dict[str, Path] = {}
    for folder in reversed(search_path(override)):  # defaults first, the home's replace them
        try:
            paths = sorted(folder.rglob("*"))
        except OSError:
            continue
        for path in paths:
            relative = path.relative_to(folder)
            if any(part in _SKIPPED for part in relative.parts):
                continue
            # Editor swap and backup files change while typing; a render never reads them.
            if path.name.startswith(".") or path.name.endswith("~") or not path.is_file():
                continue
            files[relative.as_posix()] = path
    return dict(sorted(files.items()))


def template_loader(override: Path | None) -> jinja2.BaseLoader:
    """Return the Jinja2 loader of the house style: the home's folder, then the package's."""
    import jinja2

    defaults = jinja2.PackageLoader("nieuwsbrief", DEFAULTS_FOLDER)
    if override is None:
        return defaults
    return jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(override)), defaults])


def style_source(style: str) -> str:
    """Return the CSP source that allows exactly this inline style: 'sha256-...'."""
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"
