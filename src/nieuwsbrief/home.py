"""The newsletter home: the folder with nieuwsbrief.toml, found by walking up like git finds .git.

A home holds the config file (everything that is not a secret), the `.env` (secrets), the
issues and their agenda, an optional `templates/` folder whose files override those of the house
style that ships with nieuwsbrief, and the state folder (ledger, suppression list, secret, outbox,
locks). Every command finds the same home, and so the same state, whatever the current folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nieuwsbrief.errors import HomeError
from nieuwsbrief.i18n import _

CONFIG_FILE = "nieuwsbrief.toml"
HOME_VARIABLE = "NIEUWSBRIEF_HOME"
MAX_CONFIG_BYTES = 256 * 1024
STATE_DIR_MODE = 0o700

# Keys of nieuwsbrief.toml that describe the home itself; every other key is a setting and
# stands for the environment variable NIEUWSBRIEF_<KEY> (see config.py).
HOME_KEYS: Mapping[str, str] = {
    "name": "the newsletter's name, shown by `status`",
    "issues": "the folder with the issue folders (default: issues)",
    "agenda": "the agenda file (default: issues/agenda.yaml)",
    "templates": "a folder with brand.yaml and templates that override the defaults",
    "state": "the state folder: ledger, suppression list, secret, outbox (default: state)",
    "subscribers": "the default subscriber list for `send` (optional)",
}


@dataclass(frozen=True)
class Home:
    """A newsletter home and the paths it defines; `settings` are the config's other keys."""

    root: Path
    config_path: Path | None  # None only for a home made up in tests or by `init`
    name: str = ""
    issues_dir: Path = field(default=Path("issues"))
    agenda_path: Path = field(default=Path("issues/agenda.yaml"))
    templates_dir: Path | None = None  # overrides, file by file; None: only the defaults
    state_dir: Path = field(default=Path("state"))
    subscribers_path: Path | None = None
    settings: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # key -> (value, line)

    def relative(self, path: Path) -> str:
        """Return `path` relative to the home (POSIX form), or absolute when outside it."""
        resolved = path.resolve()
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return str(resolved)

    def display(self, path: Path) -> str:
        """Return a path as the user can find it: relative to the current folder when inside it."""
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except (ValueError, OSError):
            return str(path)

    def ensure_state_dir(self) -> Path:
        """Create the state folder (0700) if needed; return it."""
        self.state_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        return self.state_dir


def find_home(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Home:
    """Return the home that holds `start` (default: the current folder), or NIEUWSBRIEF_HOME."""
    environ = os.environ if environ is None else environ
    explicit = (environ.get(HOME_VARIABLE) or "").strip()
    if explicit:
        root = Path(explicit).expanduser()
        if not (root / CONFIG_FILE).is_file():
            raise HomeError(
                _(
                    "{setting}: no {config} there; point it at a newsletter home or make one "
                    "with {command}"
                ).format(
                    setting=f"{HOME_VARIABLE}={explicit}",
                    config=CONFIG_FILE,
                    command=f"`nieuwsbrief init {explicit}`",
                )
            )
        return load_home(root)
    origin = (start or Path.cwd()).resolve()
    folder = origin if origin.is_dir() else origin.parent
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_FILE).is_file():
            return load_home(candidate)
    raise HomeError(
        _(
            "{folder} is not inside a newsletter home: no {config} there or in any folder "
            "above it. Make one with `nieuwsbrief init FOLDER`, work inside one, "
            "or set {variable}=FOLDER"
        ).format(folder=origin, config=CONFIG_FILE, variable=HOME_VARIABLE)
    )


def load_home(root: Path) -> Home:
    """Read `root/nieuwsbrief.toml` into a Home; every problem names the file and line."""
    root = root.resolve()
    path = root / CONFIG_FILE
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise HomeError(
                _("{path}: larger than {size} KB; is it the config?").format(
                    path=path, size=MAX_CONFIG_BYTES // 1024
                )
            )
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise HomeError(
            _("{path}: cannot be read ({reason})").format(path=path, reason=exc.__class__.__name__)
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HomeError(
            _("{path}: {reason}; write {example} lines (text in double quotes)").format(
                path=path, reason=exc, example='`key = "value"`'
            )
        ) from None

    def line_of(key: str) -> int:
        match = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.MULTILINE)
        return text.count("\n", 0, match.start()) + 1 if match else 0

    def where(key: str) -> str:
        line = line_of(key)
        return f"{path}:{line}" if line else str(path)

    home_values: dict[str, str] = {}
    settings: dict[str, tuple[str, int]] = {}
    for key, value in data.items():
        if isinstance(value, dict | list):
            raise HomeError(
                _(
                    "{where}: '{key}' must be a single value (text, number or true/false), "
                    "not a table or list"
                ).format(where=where(key), key=key)
            )
        text_value = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if key in HOME_KEYS:
            home_values[key] = text_value
        else:
            settings[key] = (text_value, line_of(key))

    def folder(key: str, default: str | None) -> Path | None:
        value = home_values.get(key, default)
        if value is None or not value.strip():
            return None
        return (root / Path(value.strip()).expanduser()).resolve()

    templates = folder("templates", "templates")
    if templates is not None and not templates.is_dir():
        if "templates" in home_values:
            raise HomeError(
                _("{where}: the folder {folder} does not exist").format(
                    where=where("templates"), folder=templates
                )
            )
        templates = None  # no override: the defaults that ship with nieuwsbrief
    issues_dir = folder("issues", "issues")
    agenda = folder("agenda", "issues/agenda.yaml")
    state = folder("state", "state")
    assert issues_dir is not None and agenda is not None and state is not None
    return Home(
        root=root,
        config_path=path,
        name=home_values.get("name", "").strip(),
        issues_dir=issues_dir,
        agenda_path=agenda,
        templates_dir=templates,
        state_dir=state,
        subscribers_path=folder("subscribers", None),
        settings=settings,
    )
