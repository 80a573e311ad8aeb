"""The staff side of unsubscribing: process requests, show and correct the suppression list."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from .config import Settings
from .errors import ConfigError, NieuwsbriefError
from .suppression import Status, SuppressionList, read_request_file, unsubscribe_requests
from .unsubscribe_app import make_app, serve

_PROBLEMS = (Status.INVALID_TOKEN, Status.UNKNOWN_TOKEN, Status.NOT_AN_ADDRESS)


def unsubscribe_items(
    settings: Settings, items: list[str], from_file: Path | None
) -> tuple[str, bool]:
    """Suppress every address or token given; return the report and whether all were understood."""
    if from_file is not None:
        items = items + read_request_file(from_file)
    if not items:
        raise NieuwsbriefError("nothing to unsubscribe: give addresses or tokens, or --from-file")
    outcomes = unsubscribe_requests(
        settings.secret, SuppressionList(settings.suppression_path), items
    )
    lines = []
    for outcome in outcomes:
        if outcome.status is Status.NOT_AN_ADDRESS:
            reason = _address_problem(outcome.item)
            lines.append(f"{outcome.item}: not an address or token ({reason})")
        elif outcome.status in (Status.INVALID_TOKEN, Status.UNKNOWN_TOKEN):
            hint = (
                "its signature does not match NIEUWSBRIEF_SECRET"
                if outcome.status is Status.INVALID_TOKEN
                else "no message with this token was sent from this suppression list"
            )
            lines.append(f"{outcome.item}: {outcome.status} ({hint})")
        else:
            lines.append(f"{outcome.item}: {outcome.status} ({outcome.address})")
    added = sum(1 for o in outcomes if o.status is Status.ADDED)
    problems = sum(1 for o in outcomes if o.status in _PROBLEMS)
    lines.append(f"{added} unsubscribed, {problems} not understood; {settings.suppression_path}")
    return "\n".join(lines), problems == 0


def _address_problem(item: str) -> str:
    try:
        validate_email(item, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return "unrecognised"


def list_report(settings: Settings) -> str:
    """Return every suppressed address with when and how it was added."""
    entries = SuppressionList(settings.suppression_path, readonly=True).entries()
    lines = [f"{e.added_at}  {e.source:<9}  {e.address}" for e in entries]
    lines.append(f"{len(entries)} unsubscribed in {settings.suppression_path}")
    return "\n".join(lines)


def remove_address(settings: Settings, address: str) -> str:
    """Take an address off the suppression list (a re-subscription after a mistake)."""
    if not SuppressionList(settings.suppression_path).remove(address):
        raise NieuwsbriefError(f"{address} is not on the suppression list")
    return f"{address} will receive the newsletter again"


def run_server(
    settings: Settings, host: str, port: int, *, announce: Callable[[str], None]
) -> None:
    """Serve the one-click unsubscribe endpoint until Ctrl+C."""
    if not settings.unsubscribe_url:
        raise ConfigError(
            "NIEUWSBRIEF_UNSUBSCRIBE_URL is not set; set it to the public address, e.g. "
            "https://www.bureau-kennis.net/afmelden/{token}"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    app = make_app(settings.secret, settings.suppression_path, settings.unsubscribe_url)
    announce(f"Unsubscribe endpoint for {settings.unsubscribe_url} (Ctrl+C stops it)")
    serve(app, host, port)
