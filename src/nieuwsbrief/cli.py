"""The nieuwsbrief command line: parse, call one core function, turn errors into exit codes.

This is the only module that imports typer.
"""

from __future__ import annotations

import os
import shlex
import sys
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
def _root(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="The newsletter home (folder with nieuwsbrief.toml). Default: found by "
            "walking up from the issue folder or the current folder.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compose and send the Bureau | Kennis newsletter from Markdown articles and an agenda."""
    if home is not None:
        os.environ["NIEUWSBRIEF_HOME"] = str(home.resolve())


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


def _settings(start: Path | None = None, *, writes: bool = False) -> Settings:
    """Find the newsletter home from `start` (or the current folder) and load its settings.

    `writes`: the command sends or records, so it may create the signing secret.
    """
    from .errors import ContentError
    from .home import find_home

    if start is not None and not start.is_dir():
        raise ContentError(start, "is not an issue folder (it does not exist or is a file)")
    settings = load_settings(home=find_home(start), create_secret=writes)
    for notice in settings.notices:
        typer.echo(f"Note: {notice}", err=True)
    return settings


def _home_paths(settings: Settings, agenda: Path | None) -> dict[str, Any]:
    """Return the agenda and templates of the home, for compose, check, send and preview."""
    assert settings.home is not None
    return {
        "agenda_path": agenda or settings.home.agenda_path,
        "templates_dir": settings.home.templates_dir,
    }


def _command_line() -> str:
    """Return the command that was run, as one that works when pasted into a shell."""
    program = sys.argv[0]
    module = program.endswith("__main__.py")
    words = [sys.executable, "-m", "nieuwsbrief"] if module else [program]
    return shlex.join([*words, *sys.argv[1:]])


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
    """Turn an issue folder into email.html, email.txt and preview.eml (one sample message).

    Then runs the same check as `check`: exit code 1 on problems (the files are written).
    """
    from .check import check_composed

    settings = _settings(issue_dir)
    composed = compose_mod.compose_issue(
        issue_dir,
        _factory_maker(settings),
        **_home_paths(settings, agenda),
        web_url=settings.web_url,
    )
    out_dir = out or issue_dir / "out"
    written = compose_mod.write_outputs(composed, out_dir)
    typer.echo(compose_mod.summary(composed, written))
    report = check_composed(composed)
    typer.echo(report.format())
    if not report.ok:
        raise typer.Exit(1)


SubscribersOption = Annotated[
    Path | None,
    typer.Option(
        "--subscribers",
        help="Subscriber list: CSV from Excel or a CRM (',' ';' or tab; UTF-8 or Windows-1252).",
        show_default=False,
    ),
]


@app.command()
def send(
    issue_dir: IssueDir,
    subscribers: SubscribersOption = None,
    agenda: AgendaOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and check every message; connect to nothing.")
    ] = False,
    test: Annotated[
        list[str] | None,
        typer.Option(
            "--test",
            help="Send one proof to ADDRESS, subject prefixed [TEST]; not recorded. Repeatable.",
            metavar="ADDRESS",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before sending.")] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.01,
            help="Messages per second, across all connections.",
            show_default=False,
        ),
    ] = None,
    connections: Annotated[
        int, typer.Option("--connections", min=1, max=64, help="Parallel SMTP connections.")
    ] = 4,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Send again only to the recipients that failed.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Send although the check found problems, or the issue changed mid-send.",
        ),
    ] = False,
    retry_window: Annotated[
        float,
        typer.Option(
            "--retry-window",
            min=0,
            metavar="SECONDS",
            help="How long temporary (4xx) refusals are retried before they count as deferred.",
        ),
    ] = 240,
) -> None:
    """Send an issue to every subscriber, once; re-run the same command to resume.

    Example: nieuwsbrief send issues/2012-05 --subscribers abonnees.csv
    """
    import signal
    import threading

    from .send import SendRequest, send_issue

    interactive = sys.stdin.isatty()
    if not (yes or dry_run or test or interactive):
        raise NieuwsbriefError(
            "refusing to send without a terminal to confirm on; add --yes to send, "
            "or --dry-run to check"
        )
    settings = _settings(issue_dir, writes=not dry_run)
    request = SendRequest(
        issue_dir=issue_dir,
        subscribers_path=subscribers,
        agenda_path=agenda,
        dry_run=dry_run,
        test_addresses=tuple(test or ()),
        rate=rate,
        connections=connections,
        retry_failed=retry_failed,
        force=force,
        retry_window=retry_window,
        command=_command_line(),
    )
    if not settings.uses_smtp and not dry_run:
        typer.echo(
            f"No NIEUWSBRIEF_SMTP_HOST is set: messages go into the {settings.server_label} "
            "(a Maildir; open it with a mail program or `nieuwsbrief preview`).",
            err=True,
        )

    def confirm(plan: Any) -> bool:
        typer.echo(plan.describe())
        return yes or typer.confirm("Send now?", default=False)

    progress = _ProgressPrinter(sys.stderr.isatty())
    stop = threading.Event()
    terminated: list[int] = []

    def on_sigterm(signum: int, frame: object) -> None:
        # Like Ctrl-C: let the messages in flight finish and be recorded, then report.
        terminated.append(signum)
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        report = send_issue(
            request,
            settings,
            lambda prefix: _factory_maker(settings, prefix),
            confirm=confirm,
            progress=progress,
            warn=lambda text: typer.echo(f"Warning: {text}", err=True),
            stop=stop,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
    typer.echo(report.describe())
    if report.interrupted or terminated:
        typer.echo(
            f"Interrupted. Run the same command again to continue: {request.command}", err=True
        )
        raise typer.Exit(143 if terminated else 130)
    raise typer.Exit(report.exit_code)


class _ProgressPrinter:
    """Show progress: a bar with rate and ETA on a terminal, a plain line now and then if not."""

    def __init__(self, tty: bool) -> None:
        import time

        self._tty = tty
        self._clock = time.monotonic
        self._started = self._clock()
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if done < total and now - self._last < (0.2 if self._tty else 5.0):
            return
        self._last = now
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        if self._tty:
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            typer.echo(
                f"\r[{bar}] {done}/{total}  {rate:.0f} msg/s  ETA {eta:.0f} s ",
                err=True,
                nl=False,
            )
            self._shown = True
        else:
            typer.echo(f"sent {done}/{total} ({rate:.0f} msg/s, ETA {eta:.0f} s)", err=True)

    def close(self) -> None:
        if self._shown:
            typer.echo("", err=True)


subscribers_app = typer.Typer(help="Work with subscriber lists.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")


@subscribers_app.command("check")
def subscribers_check(
    file: Annotated[Path, typer.Argument(help="The subscriber list (CSV).", show_default=False)],
) -> None:
    """Report what a subscriber list holds: valid, invalid (with line), duplicate, unsubscribed."""
    from .addresses import normalise_address
    from .subscribers import format_report, load_subscribers
    from .suppression import SuppressionList

    settings = _settings()
    listed = load_subscribers(file)
    suppressed = SuppressionList(settings.suppression_path, readonly=True).suppressed_set()
    count = sum(1 for s in listed.subscribers if normalise_address(s.email) in suppressed)
    typer.echo(format_report(listed, suppressed=count))


@app.command()
def unsubscribe(
    items: Annotated[
        list[str] | None,
        typer.Argument(
            help="Addresses, unsubscribe tokens or pasted mail subjects ('afmelden 1AbC...').",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="A file with one address or token per line, or a CSV with an e-mail column.",
            show_default=False,
        ),
    ] = None,
    show_list: Annotated[
        bool, typer.Option("--list", help="Show every unsubscribed address.")
    ] = False,
    remove: Annotated[
        str | None,
        typer.Option(
            "--remove",
            metavar="ADDRESS",
            help="Subscribe ADDRESS again (after a mistake); asks first unless --yes.",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --remove.")] = False,
) -> None:
    """Unsubscribe people who asked by mail or phone; they are never mailed again.

    Example: nieuwsbrief unsubscribe jan@gemeente.nl "Re: afmelden 1AbC..."
    """
    from .unsubscribe import list_report, remove_address, unsubscribe_items

    settings = _settings()
    if show_list:
        typer.echo(list_report(settings))
        return
    if remove is not None:
        if not yes and not typer.confirm(f"Subscribe {remove} again?", default=False):
            raise NieuwsbriefError(f"{remove} stays unsubscribed")
        typer.echo(remove_address(settings, remove))
        return
    report, ok = unsubscribe_items(settings, list(items or ()), from_file)
    typer.echo(report)
    if not ok:
        raise typer.Exit(1)


@app.command()
def mailbox(
    maildir: Annotated[
        Path | None,
        typer.Option(
            "--maildir", help="Read this local Maildir instead of IMAP.", show_default=False
        ),
    ] = None,
    mbox: Annotated[
        Path | None,
        typer.Option(
            "--mbox", help="Read this mbox file (an export) instead of IMAP.", show_default=False
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write the actions here (default: in the state folder).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Read the returns mailbox; bounces, complaints and mailed unsubscribes suppress addresses.

    IMAP settings: NIEUWSBRIEF_IMAP_HOST, _PORT, _USER, _PASSWORD, _FOLDER, _SECURITY.
    Processed messages are marked ($NbProcessed keyword; Maildir: moved to .verwerkt/).
    """
    from .returns.run import run_mailbox

    report = run_mailbox(
        _settings(), maildir=maildir, mbox=mbox, dry_run=dry_run, csv_path=csv_path
    )
    typer.echo(report.describe())


@app.command("unsubscribe-server")
def unsubscribe_server(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8025,
    timeout: Annotated[
        int,
        typer.Option(
            "--timeout", min=1, help="Seconds before an idle or too slow connection is closed."
        ),
    ] = 30,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", min=1, help="Open connections at most; more wait their turn."
        ),
    ] = 2000,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="Requests handled at the same time.")
    ] = 8,
) -> None:
    """Run the one-click unsubscribe endpoint (RFC 8058) for NIEUWSBRIEF_UNSUBSCRIBE_URL."""
    from .unsubscribe import run_server
    from .unsubscribe_app import ServerLimits

    limits = ServerLimits(timeout=timeout, connections=max_connections, threads=threads)
    run_server(_settings(), host, port, limits, announce=typer.echo)


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

    settings = _settings(issue_dir)
    inputs = preview_mod.Inputs(
        issue_dir,
        _factory_maker(settings),
        **_home_paths(settings, agenda),
        subscribers_path=subscribers,
        outbox_dir=None if settings.uses_smtp else settings.outbox_dir,
        web_url=settings.web_url,
    )
    preview_mod.serve_preview(
        inputs, host=host, port=port, open_browser=not no_browser, report=typer.echo
    )


@app.command()
def publish(
    home: Annotated[
        Path | None,
        typer.Argument(
            help="A folder inside the newsletter home. Default: the current folder.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write the site. Default: site/ in the home.", show_default=False
        ),
    ] = None,
) -> None:
    """Build the web edition: every issue as a web page, the agenda with calendar files, feeds.

    The same content gives byte-identical files; upload the folder to NIEUWSBRIEF_WEB_URL.
    """
    from .web import publish as publish_site

    settings = _settings(home)
    assert settings.home is not None
    report = publish_site(settings.home, settings.web_url, out)
    typer.echo(report.describe())


@app.command()
def check(issue_dir: IssueDir, agenda: AgendaOption = None) -> None:
    """Check an issue as the sample subscriber gets it: size, preheader, images, links, ...

    Writes nothing. Exit code 0 when there are no problems (warnings allowed), 1 otherwise.
    """
    from .check import check_issue

    settings = _settings(issue_dir)
    report = check_issue(
        issue_dir,
        _factory_maker(settings),
        **_home_paths(settings, agenda),
        web_url=settings.web_url,
    )
    typer.echo(report.format())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def status(
    issue: Annotated[
        str | None,
        typer.Argument(
            help="An issue folder (or its id). Default: a table of every issue.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show what went out: per issue delivered, failed, deferred, still to send, how to go on."""
    from .status import status_report

    start = Path(issue) if issue and Path(issue).is_dir() else None
    typer.echo(status_report(_settings(start), issue))


@app.command()
def init(
    folder: Annotated[
        Path, typer.Argument(help="Where to make the newsletter home.", show_default=False)
    ] = Path("."),
    name: Annotated[
        str,
        typer.Option("--name", help="The newsletter's name. Default: from the folder name."),
    ] = "",
) -> None:
    """Make a newsletter home: nieuwsbrief.toml, issues/ and an agenda, .env.example, .gitignore."""
    from .scaffold import init_home

    written = init_home(folder, name)
    typer.echo(f"Made a newsletter home in {folder.resolve()}:")
    for path in written:
        typer.echo(f"  {path}")
    typer.echo(f"Next: cd {shlex.quote(str(folder))} && nieuwsbrief new")


@app.command()
def new(
    slug: Annotated[
        str,
        typer.Argument(
            help="Added to the folder name, for a second issue in a month (2026-12-extra).",
            show_default=False,
        ),
    ] = "",
) -> None:
    """Start the next issue in this home: issues/YYYY-MM with issue.yaml and one article."""
    from .scaffold import new_issue

    settings = _settings()
    assert settings.home is not None
    written = new_issue(settings.home, slug)
    typer.echo("Started a new issue:")
    for path in written:
        typer.echo(f"  {settings.home.display(path)}")
    folder = settings.home.display(written[0].parent)
    typer.echo(f"Next: write it, then nieuwsbrief compose {shlex.quote(folder)}")


def main() -> None:
    """Run the command line."""
    app(prog_name="nieuwsbrief")
