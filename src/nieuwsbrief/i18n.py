"""The language nieuwsbrief speaks to its user: gettext catalogs, chosen once per run.

Mark text for translation with `_` (translated when called) or `N_` (only marked, for text defined
at import time and translated later, such as help texts); plurals with `ngettext`. Wrap the
template and format after: `_("{path}: no such file").format(path=path)`. The catalogs live in
`locale/<language>/LC_MESSAGES/nieuwsbrief.po` and are compiled to `.mo` with Babel (README).
English is the source language: it needs no catalog.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "nieuwsbrief"
LANGUAGES = ("en", "nl")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# The order GNU gettext (and Python's gettext) reads the locale from the environment.
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_translation: gettext.NullTranslations = gettext.NullTranslations()


def locale_language(environ: Mapping[str, str] | None = None) -> str:
    """Return 'nl' when the locale is Dutch (nl_NL.UTF-8, nl_BE, nl), else 'en'."""
    environ = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = environ.get(name, "")
        if value:
            first = value.split(":")[0].strip().lower()
            return "nl" if first == "nl" or first.startswith(("nl_", "nl-", "nl.")) else "en"
    return "en"


def setup(language: str | None = None) -> str:
    """Speak `language` ('nl' or 'en'), or the locale's language when None; return the choice."""
    global _translation
    chosen = language if language in LANGUAGES else locale_language()
    if chosen == "en":
        _translation = gettext.NullTranslations()
    else:
        # fallback=False: a missing catalog is a packaging mistake, not a reason to go English.
        _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[chosen])
    return chosen


def _(message: str) -> str:
    """Return `message` in the current language."""
    return _translation.gettext(message)


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it yet; translate it later with _()."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """Return the singular or plural form for `n` in the current language."""
    return _translation.ngettext(singular, plural, n)
