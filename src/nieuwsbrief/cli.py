"""The nieuwsbrief command line: parse, call one core function, turn errors into exit codes.

This is the only module that imports typer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import compose as compose_mod
from .config import Settings, load_settings
from .errors import NieuwsbriefError
from .message import make_factory
from .model import Brand, RenderedIssue


class _Group(TyperGroup):
    """Turn every NieuwsbriefError into 'Error: ...' on stderr and its exit code, in one place."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NieuwsbriefError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Group,
    help="Compose and send the Bureau | Kennis newsletter from Markdown articles and an agenda.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold the SMTP password
)


@app.callback()
def _root() -> None:
    """Compose and send the Bureau | Kennis newsletter from Markdown articles and an agenda."""


IssueDir = Annotated[
    Path,
    typer.Argument(
        help="The issue folder with issue.yaml and the articles, e.g. issues/2012-05.",
        show_default=False,
    ),
]
AgendaOption = Annotated[
    Path | None,
    typer.Option(
        "--agenda",
        help="Agenda file (.yaml or .csv). Default: agenda.yaml beside the issue folder.",
        show_default=False,
    ),
]


def _settings() -> Settings:
    settings = load_settings()
    for notice in settings.notices:
        typer.echo(f"Note: {notice}", err=True)
    return settings


def _factory_maker(settings: Settings, subject_prefix: str = "") -> compose_mod.FactoryMaker:
    def make(rendered: RenderedIssue, brand: Brand) -> Any:
        return make_factory(
            rendered,
            brand,
            secret=settings.secret,
            sender=settings.from_address,
            reply_to=settings.reply_to,
            unsubscribe_url=settings.unsubscribe_url,
            unsubscribe_mailto=settings.unsubscribe_mailto,
            subject_prefix=subject_prefix,
        )

    return make


@app.command()
def compose(
    issue_dir: IssueDir,
    agenda: AgendaOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write the files. Default: ISSUE_DIR/out.", show_default=False
        ),
    ] = None,
) -> None:
    """Turn an issue folder into email.html, email.txt and preview.eml (one sample message)."""
    settings = _settings()
    composed = compose_mod.compose_issue(issue_dir, _factory_maker(settings), agenda_path=agenda)
    out_dir = out or issue_dir / "out"
    written = compose_mod.write_outputs(composed, out_dir)
    typer.echo(compose_mod.summary(composed, written))
    for warning in composed.warnings:
        typer.echo(f"Warning: {warning}", err=True)


@app.command()
def preview(
    issue_dir: IssueDir,
    port: Annotated[
        int, typer.Option(help="Port to listen on; the next free one if it is in use.")
    ] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to listen on; keep the loopback default.")
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open the web browser.")
    ] = False,
    subscribers: Annotated[
        Path | None,
        typer.Option(
            "--subscribers",
            help="Subscriber list (CSV) to preview the message for any of its rows.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    agenda: AgendaOption = None,
) -> None:
    """Show the issue in the browser as recipients get it; it follows every saved change."""
    from . import preview as preview_mod

    settings = _settings()
    inputs = preview_mod.Inputs(
        issue_dir,
        _factory_maker(settings),
        agenda_path=agenda,
        subscribers_path=subscribers,
        outbox_dir=None if settings.uses_smtp else settings.outbox_dir,
    )
    preview_mod.serve_preview(
        inputs, host=host, port=port, open_browser=not no_browser, report=typer.echo
    )


def main() -> None:
    """Run the command line."""
    app(prog_name="nieuwsbrief")
