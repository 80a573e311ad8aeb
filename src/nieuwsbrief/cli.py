"""The nieuwsbrief command line: parse, call one core function, turn errors into exit codes.

This is the only module that imports typer. Every text it shows goes through the gettext catalog
(i18n.py): help texts are marked with N_ where they are declared and translated when the command
line starts, together with Typer's own words ("Usage:", "Options", its error messages).

Start-up: each command imports what it uses inside its function, so `--help` and a usage error
load Typer, the catalog and the configured language, nothing of the program itself
(tests/test_startup.py holds that; benchmarks/bench_startup.py times it).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from nieuwsbrief import i18n
from nieuwsbrief.errors import NieuwsbriefError, UsageError
from nieuwsbrief.i18n import N_, _, ngettext

if TYPE_CHECKING:
    from nieuwsbrief.compose import FactoryMaker
    from nieuwsbrief.config import Settings
    from nieuwsbrief.model import Brand, RenderedIssue

# Answers that mean yes to a question, in either language; anything else but these means no.
YES_ANSWERS = frozenset({"y", "yes", "j", "ja"})
NO_ANSWERS = frozenset({"", "n", "no", "nee"})

# Typer's own words, translated through our catalog (its vendored click has no gettext).
_TYPER_TEXTS = {
    "DEPRECATED_STRING": N_("(deprecated) "),
    "DEFAULT_STRING": N_("[default: {}]"),
    "ENVVAR_STRING": N_("[env var: {}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "ABORTED_TEXT": N_("Aborted."),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),
}
_USAGE_PREFIX = N_("Usage: ")
_OPTIONS_METAVAR = N_("[OPTIONS]")
_SUBCOMMAND_METAVAR = N_("COMMAND [ARGS]...")
_HELP_OPTION_HELP = N_("Show this message and exit.")

# Typer's usage errors are English f-strings; these patterns give them back in the user's language.
# Compiled when a usage error needs them (re caches them), not at every start.
_USAGE_ERRORS: tuple[tuple[str, str], ...] = (
    (
        r"No such command '(?P<name>[^']*)'\. Did you mean (?P<suggestions>.*)\?",
        N_("No such command '{name}'. Did you mean {suggestions}?"),
    ),
    (r"No such command '(?P<name>.*)'\.", N_("No such command '{name}'.")),
    (r"Missing command\.", N_("Missing command.")),
    (
        r"Got unexpected extra argument\(s\) \((?P<args>.*)\)",
        N_("Got unexpected extra argument(s) ({args})"),
    ),
    (r"Option '(?P<name>.*)' requires an argument\.", N_("Option '{name}' requires a value.")),
    (
        r"Option '(?P<name>.*)' requires (?P<count>\d+) arguments\.",
        N_("Option '{name}' requires {count} values."),
    ),
    (
        r"Option '(?P<name>.*)' does not take a value\.",
        N_("Option '{name}' does not take a value."),
    ),
    (r"No such option: (?P<name>.*)", N_("No such option: {name}")),
    (
        r"(?i:file|directory|path) '(?P<path>.*)' does not exist\.",
        N_("'{path}' does not exist."),
    ),
    (r"(?i:file|directory|path) '(?P<path>.*)' is a directory\.", N_("'{path}' is a folder.")),
    (r"(?i:file|directory|path) '(?P<path>.*)' is a file\.", N_("'{path}' is a file.")),
    (
        r"(?i:file|directory|path) '(?P<path>.*)' is not readable\.",
        N_("'{path}' cannot be read."),
    ),
    (r"Input should be a valid number.*", N_("give a number")),
    (r"Input should be a valid integer.*", N_("give a whole number")),
    (
        r"Input should be greater than or equal to (?P<limit>\S+)",
        N_("give a number of at least {limit}"),
    ),
    (r"Input should be greater than (?P<limit>\S+)", N_("give a number above {limit}")),
    (
        r"Input should be less than or equal to (?P<limit>\S+)",
        N_("give a number of at most {limit}"),
    ),
    (r"Input should be less than (?P<limit>\S+)", N_("give a number below {limit}")),
)


def _translated_usage(message: str) -> str:
    for pattern, template in _USAGE_ERRORS:
        match = re.fullmatch(pattern, message.strip())
        if match:
            return _(template).format(**match.groupdict())
    return message


def _localise_typer() -> None:
    """Give Typer's help panels and error box the words of the current language."""
    from typer import rich_utils

    for name, text in _TYPER_TEXTS.items():
        setattr(rich_utils, name, _(text))
    # Typer styles the usage line by its English prefix; give the translated one the same style.
    usage = rf"(?P<usage>{re.escape(_(_USAGE_PREFIX))})"
    if usage not in rich_utils.OptionHighlighter.highlights:
        rich_utils.OptionHighlighter.highlights.append(usage)


def _localised_error(exc: Exception) -> Exception:
    """Return Typer's usage error `exc` with its message in the current language."""
    from typer._click import exceptions as click_errors  # no public home for these classes

    if not isinstance(exc, click_errors.UsageError) or isinstance(
        exc, (_LocalisedUsageError, click_errors.NoArgsIsHelpError)
    ):
        return exc
    _localise_typer()
    ctx = exc.ctx
    if isinstance(exc, click_errors.MissingParameter):
        param = exc.param
        name = param.get_error_hint() if param is not None else ""
        kind = exc.param_type or (param.param_type_name if param is not None else "")
        template = (
            N_("Missing argument {name}.") if kind == "argument" else N_("Missing option {name}.")
        )
        message = _(template).format(name=name)
    elif isinstance(exc, click_errors.NoSuchOption):
        message = _translated_usage(exc.message)
        if exc.possibilities:
            options = ", ".join(sorted(exc.possibilities))
            message += " " + _("(did you mean {options}?)").format(options=options)
    elif isinstance(exc, click_errors.BadParameter):
        param = exc.param
        hint = exc.param_hint or (param.get_error_hint() if param is not None else None)
        name = hint if isinstance(hint, str) else " / ".join(repr(h) for h in hint or ())
        reason = _translated_usage(exc.message)
        if name:
            message = _("Invalid value for {name}: {reason}").format(name=name, reason=reason)
        else:
            message = _("Invalid value: {reason}").format(reason=reason)
    else:
        message = _translated_usage(exc.format_message())
    localised = _LocalisedUsageError(message, ctx)
    localised.exit_code = exc.exit_code
    return localised


class _LocalisedUsageError(typer.BadParameter):
    """A usage error whose message is already in the user's language."""

    def format_message(self) -> str:
        return self.message


class _LocalisedHelp:
    """Help output in the current language: usage prefix, help option, Typer's panel titles."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = _(_HELP_OPTION_HELP)
            option.metavar = ""  # a flag takes no value: no "<bool>" placeholder
        return option

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=_(_USAGE_PREFIX))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _localise_typer()
        super().format_help(ctx, formatter)  # type: ignore[misc]


class _Command(_LocalisedHelp, TyperCommand):
    """A command whose help is in the user's language."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except Exception as exc:
            raise _localised_error(exc) from None


class _Group(_LocalisedHelp, TyperGroup):
    """The command groups: the user's language, and every NieuwsbriefError turned into 'Error: ...'
    on stderr and its exit code, in one place."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from nieuwsbrief.config import configured_language

        # The language must be known before parsing: --help and usage errors speak it too.
        i18n.setup(configured_language())
        _localise_tree(self)
        return super().main(*args, **kwargs)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except Exception as exc:
            raise _localised_error(exc) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except Exception as exc:
            raise _localised_error(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NieuwsbriefError as exc:
            typer.echo(_("Error: {message}").format(message=exc), err=True)
            raise typer.Exit(exc.exit_code) from None


def _no_type(ctx: Any) -> None:
    return None


def _localise_tree(command: Any) -> None:
    """Translate the help texts and placeholders of `command` and its subcommands in place.

    Typer builds a fresh command tree for every run, so the English originals are never lost.
    """
    for attr in ("help", "short_help", "epilog"):
        text = getattr(command, attr, None)
        if text:
            setattr(command, attr, _(text))
    if command.options_metavar:
        command.options_metavar = _(_OPTIONS_METAVAR)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = _(param.help)
        if param.metavar:
            param.metavar = _(param.metavar)
        elif getattr(param, "is_flag", False):
            param.metavar = ""  # a flag takes no value: no "<bool>" placeholder
        if param.param_type_name == "argument":
            # An argument's metavar already says what it is; Typer would add "<path>" beside it.
            param.display_type_rich = _no_type
    if isinstance(command, TyperGroup):
        command.subcommand_metavar = _(_SUBCOMMAND_METAVAR)
        for sub in command.commands.values():
            _localise_tree(sub)


app = typer.Typer(
    cls=_Group,
    help=N_(
        "Compose and send the Bureau | Kennis newsletter from Markdown articles and an agenda."
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,  # locals may hold the SMTP password
)


@app.callback()
def _root(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help=N_(
                "The newsletter home (folder with nieuwsbrief.toml). Default: found by "
                "walking up from the issue folder or the current folder."
            ),
            metavar=N_("FOLDER"),
            show_default=False,
        ),
    ] = None,
) -> None:
    if home is not None:
        os.environ["NIEUWSBRIEF_HOME"] = str(home.resolve())


IssueDir = Annotated[
    Path,
    typer.Argument(
        help=N_("The issue folder with issue.yaml and the articles, e.g. issues/2012-05."),
        metavar=N_("ISSUE_DIR"),
        show_default=False,
    ),
]
AgendaOption = Annotated[
    Path | None,
    typer.Option(
        "--agenda",
        help=N_("Agenda file (.yaml or .csv). Default: agenda.yaml beside the issue folder."),
        metavar=N_("FILE"),
        show_default=False,
    ),
]


def _confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal; j/ja and y/yes mean yes, Enter means no."""
    hint = _("[y/N]")
    while True:
        answer = typer.prompt(
            f"{question} {hint}", default="", show_default=False, prompt_suffix=" "
        )
        answer = answer.strip().casefold()
        if answer in YES_ANSWERS:
            return True
        if answer in NO_ANSWERS:
            return False
        typer.echo(_("Please answer y (yes) or n (no)."), err=True)


def _settings(start: Path | None = None, *, writes: bool = False) -> Settings:
    """Find the newsletter home from `start` (or the current folder) and load its settings.

    `writes`: the command sends or records, so it may create the signing secret.
    """
    from nieuwsbrief.config import load_settings
    from nieuwsbrief.errors import ContentError
    from nieuwsbrief.home import find_home

    if start is not None and not start.is_dir():
        raise ContentError(start, _("is not an issue folder (it does not exist or is a file)"))
    settings = load_settings(home=find_home(start), create_secret=writes)
    if settings.language:
        i18n.setup(settings.language)  # the home of the issue folder may say more than the cwd's
    for notice in settings.notices:
        typer.echo(_("Note: {notice}").format(notice=notice), err=True)
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


def _warn(text: str) -> None:
    typer.echo(_("Warning: {warning}").format(warning=text), err=True)


def _factory_maker(settings: Settings, subject_prefix: str = "") -> FactoryMaker:
    from nieuwsbrief.message import make_factory

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


@app.command(
    cls=_Command,
    help=N_(
        "Turn an issue folder into email.html, email.txt and preview.eml (one sample message).\n\n"
        "Then runs the same check as `check`: exit code 1 on problems (the files are written)."
    ),
)
def compose(
    issue_dir: IssueDir,
    agenda: AgendaOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help=N_("Where to write the files. Default: ISSUE_DIR/out."),
            metavar=N_("FOLDER"),
            show_default=False,
        ),
    ] = None,
) -> None:
    from nieuwsbrief import compose as compose_mod
    from nieuwsbrief.check import check_composed

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
        help=N_(
            "Subscriber list: CSV from Excel or a CRM (',' ';' or tab; UTF-8 or Windows-1252)."
        ),
        metavar=N_("FILE"),
        show_default=False,
    ),
]


@app.command(
    cls=_Command,
    help=N_(
        "Send an issue to every subscriber, once; re-run the same command to resume.\n\n"
        "Example: nieuwsbrief send issues/2012-05 --subscribers abonnees.csv"
    ),
)
def send(
    issue_dir: IssueDir,
    subscribers: SubscribersOption = None,
    agenda: AgendaOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help=N_("Build and check every message; connect to nothing.")),
    ] = False,
    test: Annotated[
        list[str] | None,
        typer.Option(
            "--test",
            help=N_(
                "Send one proof to ADDRESS, subject prefixed [TEST]; not recorded. Repeatable."
            ),
            metavar=N_("ADDRESS"),
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help=N_("Do not ask before sending."))
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.01,
            help=N_("Messages per second, across all connections."),
            metavar="N",
            show_default=False,
        ),
    ] = None,
    connections: Annotated[
        int,
        typer.Option(
            "--connections", min=1, max=64, help=N_("Parallel SMTP connections."), metavar="N"
        ),
    ] = 4,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help=N_("Send again only to the recipients that failed.")),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help=N_("Send although the check found problems, or the issue changed mid-send."),
        ),
    ] = False,
    retry_window: Annotated[
        float,
        typer.Option(
            "--retry-window",
            min=0,
            metavar=N_("SECONDS"),
            help=N_("How long temporary (4xx) refusals are retried before they count as deferred."),
        ),
    ] = 240,
) -> None:
    import signal
    import threading

    from nieuwsbrief.sending.campaign import SendRequest, send_issue

    interactive = sys.stdin.isatty()
    if not (yes or dry_run or test or interactive):
        raise UsageError(
            _(
                "refusing to send without a terminal to confirm on; add --yes to send, "
                "or --dry-run to check"
            )
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
        preconnect=yes,
    )
    if not settings.uses_smtp and not dry_run:
        typer.echo(
            _(
                "No NIEUWSBRIEF_SMTP_HOST is set: messages go into the {outbox} "
                "(a Maildir; open it with a mail program or `nieuwsbrief preview`)."
            ).format(outbox=settings.server_label),
            err=True,
        )

    def confirm(plan: Any) -> bool:
        typer.echo(plan.describe())
        # No is an answer, not an error: send_issue reports "Nothing was sent." and exit code 0.
        return yes or _confirm(_("Send now?"))

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
            warn=_warn,
            stop=stop,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
    typer.echo(report.describe())
    if report.interrupted or terminated:
        typer.echo(
            _("Interrupted. Run the same command again to continue: {command}").format(
                command=request.command
            ),
            err=True,
        )
        raise typer.Exit(143 if terminated else 130)
    raise typer.Exit(report.exit_code)


class _ProgressPrinter:
    """Show progress: a bar with rate and ETA on a terminal, a plain line now and then if not."""

    def __init__(self, tty: bool) -> None:
        import time

        self._tty = tty
        self._clock: Callable[[], float] = time.monotonic
        self._started = self._clock()
        self._last = 0.0
        self._shown = False

    def __call__(self, progress: Any) -> None:
        """Show a `send.Progress`: only what the server accepted counts as delivered."""
        now = self._clock()
        done, total = progress.done, progress.total
        if done == 0 and not progress.waiting:
            self._started = now  # the first call: delivery starts, after compose and planning
            return
        if done < total and now - self._last < (0.2 if self._tty else 5.0):
            return
        self._last = now
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        numbers = {
            "delivered": progress.delivered,
            "total": total,
            "rate": f"{rate:.0f}",
            "eta": f"{eta:.0f}",
        }
        line = _("{delivered}/{total} delivered  {rate} msg/s  ETA {eta} s").format(**numbers)
        if progress.failed:
            line += ", " + ngettext("{count} failed", "{count} failed", progress.failed).format(
                count=progress.failed
            )
        if progress.waiting:
            line += ", " + ngettext(
                "{count} waiting for retry, next in {seconds} s",
                "{count} waiting for retry, next in {seconds} s",
                progress.waiting,
            ).format(count=progress.waiting, seconds=f"{progress.next_retry_in:.0f}")
        if self._tty:
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            typer.echo(f"\r[{bar}] {line}\x1b[K", err=True, nl=False)
            self._shown = True
        else:
            typer.echo(line, err=True)

    def close(self) -> None:
        if self._shown:
            typer.echo("", err=True)


subscribers_app = typer.Typer(
    cls=_Group, help=N_("Work with subscriber lists."), no_args_is_help=True
)
app.add_typer(subscribers_app, name="subscribers")


@subscribers_app.command(
    "check",
    cls=_Command,
    help=N_(
        "Report what a subscriber list holds: valid, invalid (with line), duplicate, unsubscribed."
    ),
)
def subscribers_check(
    file: Annotated[
        Path,
        typer.Argument(
            help=N_("The subscriber list (CSV)."), metavar=N_("FILE"), show_default=False
        ),
    ],
) -> None:
    from collections.abc import Sequence

    from nieuwsbrief.subscribers import format_report, scan_subscribers
    from nieuwsbrief.unsubscribe.suppression import SuppressionList

    # The same one pass over the file as a send's, as a stream: a list that can be sent can
    # be checked, whatever its size, and nothing of it is held but what the report shows.
    suppression = SuppressionList(_settings().suppression_path, readonly=True)
    suppressed = 0

    def count_suppressed(keys: Sequence[str]) -> list[bool]:
        nonlocal suppressed
        suppressed += len(suppression.suppressed_among(keys))
        return [False] * len(keys)  # nothing is sent: no row need be read again

    scan = scan_subscribers(file, count_suppressed)
    typer.echo(format_report(scan, suppressed=suppressed))


@app.command(
    cls=_Command,
    help=N_(
        "Unsubscribe people who asked by mail or phone; they are never mailed again.\n\n"
        'Example: nieuwsbrief unsubscribe jan@gemeente.nl "Re: afmelden 1AbC..."'
    ),
)
def unsubscribe(
    items: Annotated[
        list[str] | None,
        typer.Argument(
            help=N_("Addresses, unsubscribe tokens or pasted mail subjects ('afmelden 1AbC...')."),
            metavar=N_("ADDRESS_OR_TOKEN"),
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help=N_("A file with one address or token per line, or a CSV with an e-mail column."),
            metavar=N_("FILE"),
            show_default=False,
        ),
    ] = None,
    show_list: Annotated[
        bool, typer.Option("--list", help=N_("Show every unsubscribed address."))
    ] = False,
    remove: Annotated[
        str | None,
        typer.Option(
            "--remove",
            metavar=N_("ADDRESS"),
            help=N_("Subscribe ADDRESS again (after a mistake); asks first unless --yes."),
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help=N_("Do not ask before --remove."))
    ] = False,
) -> None:
    from nieuwsbrief.unsubscribe.staff import list_report, remove_address, unsubscribe_items

    settings = _settings()
    if show_list:
        typer.echo(list_report(settings))
        return
    if remove is not None:
        if not yes and not _confirm(_("Subscribe {address} again?").format(address=remove)):
            typer.echo(_("{address} stays unsubscribed.").format(address=remove))
            return
        typer.echo(remove_address(settings, remove))
        return
    report, ok = unsubscribe_items(settings, list(items or ()), from_file)
    typer.echo(report)
    if not ok:
        raise typer.Exit(1)


@app.command(
    cls=_Command,
    help=N_(
        "Read the returns mailbox; bounces, complaints and mailed unsubscribes suppress "
        "addresses.\n\n"
        "IMAP settings: NIEUWSBRIEF_IMAP_HOST, _PORT, _USER, _PASSWORD, _FOLDER, _SECURITY. "
        "Processed messages are marked ($NbProcessed keyword; Maildir: moved to .verwerkt/)."
    ),
)
def mailbox(
    maildir: Annotated[
        Path | None,
        typer.Option(
            "--maildir",
            help=N_("Read this local Maildir instead of IMAP."),
            metavar=N_("FOLDER"),
            show_default=False,
        ),
    ] = None,
    mbox: Annotated[
        Path | None,
        typer.Option(
            "--mbox",
            help=N_("Read this mbox file (an export) instead of IMAP."),
            metavar=N_("FILE"),
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help=N_("Show what would happen; change nothing."))
    ] = False,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help=N_("Write the actions here (default: in the state folder)."),
            metavar=N_("FILE"),
            show_default=False,
        ),
    ] = None,
) -> None:
    from nieuwsbrief.returns.run import run_mailbox

    report = run_mailbox(
        _settings(), maildir=maildir, mbox=mbox, dry_run=dry_run, csv_path=csv_path
    )
    typer.echo(report.describe())


@app.command(
    "unsubscribe-server",
    cls=_Command,
    help=N_("Run the one-click unsubscribe endpoint (RFC 8058) for NIEUWSBRIEF_UNSUBSCRIBE_URL."),
)
def unsubscribe_server(
    host: Annotated[
        str, typer.Option("--host", help=N_("Address to listen on."), metavar=N_("ADDRESS"))
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help=N_("Port (0: any free port)."), metavar=N_("PORT")
        ),
    ] = 8025,
    timeout: Annotated[
        int,
        typer.Option(
            "--timeout",
            min=1,
            help=N_("Seconds before an idle or too slow connection is closed."),
            metavar=N_("SECONDS"),
        ),
    ] = 30,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            min=1,
            help=N_("Open connections at most; more wait their turn."),
            metavar="N",
        ),
    ] = 2000,
    threads: Annotated[
        int,
        typer.Option(
            "--threads", min=1, help=N_("Requests handled at the same time."), metavar="N"
        ),
    ] = 8,
) -> None:
    from nieuwsbrief.unsubscribe.endpoint import ServerLimits
    from nieuwsbrief.unsubscribe.staff import run_server

    limits = ServerLimits(timeout=timeout, connections=max_connections, threads=threads)
    run_server(_settings(), host, port, limits, announce=typer.echo)


@app.command(
    cls=_Command,
    help=N_("Show the issue in the browser as recipients get it; it follows every saved change."),
)
def preview(
    issue_dir: IssueDir,
    port: Annotated[
        int,
        typer.Option(
            help=N_("Port to listen on; the next free one if it is in use."), metavar=N_("PORT")
        ),
    ] = 8000,
    host: Annotated[
        str,
        typer.Option(
            help=N_("Address to listen on; keep the loopback default."), metavar=N_("ADDRESS")
        ),
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help=N_("Do not open the web browser."))
    ] = False,
    subscribers: Annotated[
        Path | None,
        typer.Option(
            "--subscribers",
            help=N_("Subscriber list (CSV) to preview the message for any of its rows."),
            metavar=N_("FILE"),
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    agenda: AgendaOption = None,
) -> None:
    from nieuwsbrief.preview import server as preview_mod
    from nieuwsbrief.preview.state import Inputs

    settings = _settings(issue_dir)
    inputs = Inputs(
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


@app.command(
    cls=_Command,
    help=N_(
        "Build the web edition: every issue as a web page, the agenda with calendar files, "
        "feeds.\n\n"
        "The same content gives byte-identical files; upload the folder to NIEUWSBRIEF_WEB_URL."
    ),
)
def publish(
    home: Annotated[
        Path | None,
        typer.Argument(
            help=N_("A folder inside the newsletter home. Default: the current folder."),
            metavar=N_("FOLDER"),
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help=N_("Where to write the site. Default: site/ in the home."),
            metavar=N_("FOLDER"),
            show_default=False,
        ),
    ] = None,
) -> None:
    from nieuwsbrief.web import publish as publish_site

    settings = _settings(home)
    assert settings.home is not None
    report = publish_site(settings.home, settings.web_url, out)
    typer.echo(report.describe())


@app.command(
    cls=_Command,
    help=N_(
        "Check an issue as the sample subscriber gets it: size, preheader, images, links, ...\n\n"
        "Writes nothing. Exit code 0 when there are no problems (warnings allowed), 1 otherwise."
    ),
)
def check(issue_dir: IssueDir, agenda: AgendaOption = None) -> None:
    from nieuwsbrief.check import check_issue

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


@app.command(
    cls=_Command,
    help=N_(
        "Show what went out: per issue delivered, failed, deferred, still to send, how to go on."
    ),
)
def status(
    issue: Annotated[
        str | None,
        typer.Argument(
            help=N_("An issue folder (or its id). Default: a table of every issue."),
            metavar=N_("ISSUE"),
            show_default=False,
        ),
    ] = None,
) -> None:
    from nieuwsbrief.status import status_report

    start = Path(issue) if issue and Path(issue).is_dir() else None
    typer.echo(status_report(_settings(start), issue))


@app.command(
    cls=_Command,
    help=N_(
        "Make a newsletter home: nieuwsbrief.toml, issues/ and an agenda, .env.example, .gitignore."
    ),
)
def init(
    folder: Annotated[
        Path,
        typer.Argument(
            help=N_("Where to make the newsletter home."), metavar=N_("FOLDER"), show_default=False
        ),
    ] = Path("."),
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help=N_("The newsletter's name. Default: from the folder name."),
            metavar=N_("NAME"),
        ),
    ] = "",
) -> None:
    from nieuwsbrief.scaffold import init_home

    written = init_home(folder, name)
    typer.echo(_("Made a newsletter home in {folder}:").format(folder=folder.resolve()))
    for path in written:
        typer.echo(f"  {path}")
    typer.echo(
        _("Next: {command}").format(command=f"cd {shlex.quote(str(folder))} && nieuwsbrief new")
    )


@app.command(
    cls=_Command,
    help=N_("Start the next issue in this home: issues/YYYY-MM with issue.yaml and one article."),
)
def new(
    slug: Annotated[
        str,
        typer.Argument(
            help=N_("Added to the folder name, for a second issue in a month (2026-12-extra)."),
            metavar=N_("SUFFIX"),
            show_default=False,
        ),
    ] = "",
) -> None:
    from nieuwsbrief.scaffold import new_issue

    settings = _settings()
    assert settings.home is not None
    written = new_issue(settings.home, slug)
    typer.echo(_("Started a new issue:"))
    for path in written:
        typer.echo(f"  {settings.home.display(path)}")
    folder = settings.home.display(written[0].parent)
    typer.echo(
        _("Next: write it, then {command}").format(
            command=f"nieuwsbrief compose {shlex.quote(folder)}"
        )
    )


def main() -> None:
    """Run the command line.

    On the way out the heap is frozen, so the collections of interpreter shutdown skip it:
    after a send the final sweep took 40-60 ms of a 1.4 s run (benchmarks/README.md). Nothing
    is lost by it: files and connections are closed by their `with` blocks, atexit handlers
    still run, and the operating system takes the memory back.
    """
    import gc

    try:
        app(prog_name="nieuwsbrief")
    finally:
        gc.freeze()
