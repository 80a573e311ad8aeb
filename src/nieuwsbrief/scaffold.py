"""`nieuwsbrief init` makes a newsletter home; `nieuwsbrief new` starts the next issue in it."""

from __future__ import annotations

import json
import re
import secrets
from datetime import date
from pathlib import Path

from babel.dates import format_date

from nieuwsbrief import clock
from nieuwsbrief.content.issue import load_agenda, upcoming
from nieuwsbrief.errors import ScaffoldError
from nieuwsbrief.home import CONFIG_FILE, Home
from nieuwsbrief.i18n import _
from nieuwsbrief.templating import BRAND_FILE, template_path

_CONFIG = """\
# The newsletter home of {name}: nieuwsbrief finds this file by walking up from the folder
# you work in, like git finds .git, so every command uses the same state wherever you run it.
# Everything here may be kept in git. Secrets (SMTP password, signing secret) go in .env,
# see .env.example. The real environment overrides both (NIEUWSBRIEF_<KEY>, e.g.
# NIEUWSBRIEF_SMTP_HOST), for CI and servers.

name = "{name}"

# Sender and reply address (default: the e-mail address in the house style's brand.yaml).
# from = "{name} <nieuwsbrief@example.nl>"
# reply_to = "redactie@example.nl"

# One-click unsubscribe (RFC 8058): the page `nieuwsbrief unsubscribe-server` answers.
# unsubscribe_url = "https://www.example.nl/afmelden/{{token}}"
# unsubscribe_mailto = "afmelden@example.nl"

# The web edition (`nieuwsbrief publish`): where its site is served. Set, every e-mail links
# to its web page and calendar files, and photos from the issue folders can be used.
# web_url = "https://www.example.nl/nieuwsbrief/"

# Mail server. Unset: messages go into the local outbox (state/outbox), nothing leaves this
# machine. The login's password belongs in .env (NIEUWSBRIEF_SMTP_PASSWORD).
# smtp_host = "smtp.example.nl"
# smtp_port = 587
# smtp_security = "starttls"
# smtp_user = "nieuwsbrief"

# Folders and files of this home (these are the defaults).
# issues = "issues"
# agenda = "issues/agenda.yaml"
# state = "state"          # ledger, suppression list, signing secret, outbox: keep it safe
# templates = "templates"  # brand.yaml and any template there override the defaults
# subscribers = "abonnees.csv"   # the list `send` uses without --subscribers
"""

_AGENDA = """\
# The events of every issue. Each has an id (used by articles: `event: <id>`), a type,
# a title, a date (YYYY-MM-DD), a city and the web page where people register.
# Optional: time ("13:30-17:00", or only the start), venue and address.
- id: {event_id}
  type: Seminar
  title: Voorbeeldseminar
  date: {event_date}
  city: Utrecht
  url: https://www.example.nl/agenda/voorbeeldseminar
"""

_ENV_EXAMPLE = """\
# Secrets for this newsletter home. Copy to .env (chmod 600 .env); never put them in git.
# NIEUWSBRIEF_SMTP_PASSWORD=change-me
# NIEUWSBRIEF_SECRET=   (usually unset: nieuwsbrief keeps one in state/secret)
"""

_GITIGNORE = """\
# nieuwsbrief: state (ledger, suppression list, signing secret, outbox) and secrets stay out
# of git; back the state folder up instead.
state/
.env
site/
issues/*/out/
"""

_ISSUE = """\
# {month_name}: fill in the subject and the preheader (the line inboxes show after it).
id: {issue_id}
subject: "Nieuwsbrief {month_name}"
preheader: ""
date: {issue_date}
intro: |
  In deze nieuwsbrief leest u ...
articles:
  - 01-artikel.md
"""

_ARTICLE = """\
---
title: Titel van het artikel
{event_line}---
Schrijf hier het artikel in Markdown: **vet**, *cursief*, lijsten en [links](https://www.example.nl).
"""


_BRAND_HEADER = """\
# The house style of {name}: who sends the newsletter, colours, logo, footer.
# Edit every value; the e-mail, the web edition and the unsubscribe pages take them from here.
# Any template of nieuwsbrief can be overridden too: put a file of that name next to this one.
"""


def starter_brand(name: str) -> str:
    """Return the brand.yaml a new home starts with: the default one, with the home's name."""
    text = template_path(None, BRAND_FILE).read_text(encoding="utf-8")
    lines = text.split("\n")
    while lines and lines[0].startswith("#"):  # the default's own header comment
        lines.pop(0)
    quoted = json.dumps(name, ensure_ascii=False)  # a YAML double-quoted string
    body = re.sub(r'^(name|  alt): "[^"\n]*"$', rf"\1: {quoted}", "\n".join(lines), flags=re.M)
    return _BRAND_HEADER.format(name=name) + body


def init_home(target: Path, name: str = "") -> list[Path]:
    """Make a new newsletter home in `target`; refuse when one is already there."""
    target = target.resolve()
    config = target / CONFIG_FILE
    if config.exists():
        raise ScaffoldError(
            _("{path}: already a newsletter home; nothing was changed").format(path=config)
        )
    name = name or target.name.replace("-", " ").title() or "Nieuwsbrief"
    if '"' in name or "\\" in name or "\n" in name:
        raise ScaffoldError(
            _("{name}: a name without quotes, backslashes or line breaks").format(name=repr(name))
        )
    today = clock.today()
    event_date = date(today.year + (today.month == 12), today.month % 12 + 1, 15)
    files = {
        config: _CONFIG.format(name=name),
        target / "issues" / "agenda.yaml": _AGENDA.format(
            event_id=f"seminar-voorbeeld-{event_date:%Y-%m}", event_date=event_date.isoformat()
        ),
        target / "templates" / BRAND_FILE: starter_brand(name),
        target / ".env.example": _ENV_EXAMPLE,
        target / ".gitignore": _GITIGNORE,
    }
    existing = [p for p in files if p.exists()]
    if existing:
        raise ScaffoldError(
            _(
                "{path}: already exists; init makes a new home in an empty folder or one "
                "without these files, and changes nothing here"
            ).format(path=existing[0])
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


def new_issue(home: Home, slug: str = "", today: date | None = None) -> list[Path]:
    """Start the next issue: a folder named by date with issue.yaml and one article."""
    today = today or clock.today()
    if slug and not all(c.isalnum() or c == "-" for c in slug):
        raise ScaffoldError(
            _("{slug}: a slug is letters, digits and '-', e.g. 'extra'").format(slug=repr(slug))
        )
    name = f"{today:%Y-%m}" + (f"-{slug.lower()}" if slug else "")
    folder = home.issues_dir / name
    if folder.exists():
        raise ScaffoldError(
            _(
                "{folder}: already exists; nothing was changed. Start another issue this month "
                "with a slug: nieuwsbrief new extra (makes {name}-extra)"
            ).format(folder=folder, name=name)
        )
    events = load_agenda(home.agenda_path) if home.agenda_path.is_file() else ()
    coming = upcoming(events, today)
    event_line = f"event: {coming[0].id}\n" if coming else ""
    month_name = format_date(today, "MMMM yyyy", locale="nl")
    # Random part: two issues made by `new` never share an id. A folder copied by hand keeps
    # its id; the ledger refuses to send it while the original folder exists.
    issue_id = f"{name}-{secrets.token_hex(3)}"
    files = {
        folder / "issue.yaml": _ISSUE.format(
            month_name=month_name, issue_id=issue_id, issue_date=today.isoformat()
        ),
        folder / "01-artikel.md": _ARTICLE.format(event_line=event_line),
    }
    folder.mkdir(parents=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
