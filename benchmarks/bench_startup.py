#!/usr/bin/env python3
"""Benchmark of start-up and compose (issue 14, item 6). Not part of the test suite.

Side by side in one run, interleaved (one of each per round, so the noise of a shared machine hits
all alike), --reps rounds, median and best:

  - `python -c pass`: the interpreter alone;
  - the floor: `python benchmarks/floor_cli.py --help`, `... send --help` and `... compose
    issues/2012-05`, a do-nothing Typer CLI with nieuwsbrief's commands, options and help texts
    (make_floor_cli.py writes it); its compose is what Typer costs before a command runs;
  - `python -m nieuwsbrief --help` and `... send --help`;
  - `python -m nieuwsbrief compose issues/2012-05`, cold: in a fresh copy of the example home
    (nieuwsbrief.toml, issues/, templates/) every time, so nothing a run wrote helps the next.

Bytecode is written (PYTHONDONTWRITEBYTECODE is dropped) and one unmeasured round goes first, as
for an installed program. Prints a markdown table with wall and CPU time (the child's user +
system time, from wait4: on a shared machine it moves less than the wall time) and the ratios to
the floor.

    python3 benchmarks/run.py startup                 # the peers' venv (run.py setup)
    python benchmarks/bench_startup.py --reps 15      # with any python that has nieuwsbrief
    python benchmarks/bench_startup.py --before PYTHON  # also that nieuwsbrief (before/after)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FLOOR = BENCH / "floor_cli.py"
HOME_PARTS = ("nieuwsbrief.toml", "issues", "templates")  # the example home of the repository
ISSUE = "issues/2012-05"
HELP_FACTOR = 1.2  # issue 14: --help within 1.2x of the floor
COMPOSE_GOAL = 0.5  # issue 14: compose of the example within 0.5 s


@dataclass
class Case:
    """One command measured in every round."""

    label: str
    argv: list[str]
    fresh_home: bool = False  # run in a new copy of the example home
    floor: str | None = None  # the label of the floor case it is compared with
    samples: list[float] = field(default_factory=list)  # wall seconds, process start to exit
    cpu: list[float] = field(default_factory=list)  # the child's user + system seconds


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIEUWSBRIEF_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _fresh_home(root: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=root))
    for name in HOME_PARTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, home / name, ignore=shutil.ignore_patterns("out", "state"))
        else:
            shutil.copy(source, home / name)
    return home


def _time_once(case: Case, env: dict[str, str], scratch: Path) -> tuple[float, float]:
    """Run the case once; return its wall time and its CPU time (user + system), in seconds."""
    cwd = _fresh_home(scratch) if case.fresh_home else REPO
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(
            case.argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's rusage alone
        elapsed = time.perf_counter() - started
        child.returncode = code = os.waitstatus_to_exitcode(status)
        # compose exits 1 when its check finds problems; the files are written all the same.
        if code not in (0, 1) or (code and not case.fresh_home):
            errors.seek(0)
            sys.exit(f"{' '.join(case.argv)} failed ({code}):\n{errors.read().decode()}")
    if case.fresh_home:
        shutil.rmtree(cwd, ignore_errors=True)
    return elapsed, usage.ru_utime + usage.ru_stime


def _cases(python: str, before: str | None) -> list[Case]:
    cases = [
        Case("`python -c pass`", [python, "-c", "pass"]),
        Case("floor `--help`", [python, str(FLOOR), "--help"]),
        Case("floor `send --help`", [python, str(FLOOR), "send", "--help"]),
        # A command that runs: Typer coerces its arguments with pydantic, which --help never loads.
        Case(f"floor `compose {ISSUE}` (does nothing)", [python, str(FLOOR), "compose", ISSUE]),
    ]
    for who, interpreter in (("", python), ("before: ", before)):
        if interpreter is None:
            continue
        nb = [interpreter, "-m", "nieuwsbrief"]
        cases += [
            Case(f"{who}`nieuwsbrief --help`", [*nb, "--help"], floor="floor `--help`"),
            Case(
                f"{who}`nieuwsbrief send --help`",
                [*nb, "send", "--help"],
                floor="floor `send --help`",
            ),
            Case(
                f"{who}`nieuwsbrief compose {ISSUE}` (cold)",
                [*nb, "compose", ISSUE],
                fresh_home=True,
                floor=f"floor `compose {ISSUE}` (does nothing)",
            ),
        ]
    return cases


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()[:60] + (" (with uncommitted changes)" if dirty else "")


def _table(cases: list[Case], load: tuple[float, float]) -> str:
    by_label = {case.label: case for case in cases}
    lines = [
        "| command | wall s, median (best) | CPU s, median | ratio to floor, wall (CPU) | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for case in cases:
        median, cpu = statistics.median(case.samples), statistics.median(case.cpu)
        ratio, goal, ratio_value = "", "", 0.0
        if case.floor is not None:
            floor = by_label[case.floor]
            ratio_value = median / statistics.median(floor.samples)
            ratio = f"{ratio_value:.2f}x ({cpu / statistics.median(floor.cpu):.2f}x)"
        if case.fresh_home:
            verdict = "met" if median <= COMPOSE_GOAL else "not met"
            goal = f"<= {COMPOSE_GOAL} s: {verdict}"
        elif case.floor is not None:
            verdict = "met" if ratio_value <= HELP_FACTOR else "not met"
            goal = f"<= {HELP_FACTOR}x: {verdict}"
        best = min(case.samples)
        lines.append(f"| {case.label} | {median:.3f} ({best:.3f}) | {cpu:.3f} | {ratio} | {goal} |")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += [
        "",
        f"{now}, commit {_commit()}; Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"{len(cases[0].samples)} interleaved rounds; load average {load[0]:.2f} before, "
        f"{load[1]:.2f} after.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=11, help="interleaved rounds (default 11)")
    parser.add_argument(
        "--before", metavar="PYTHON", help="also measure the nieuwsbrief of this interpreter"
    )
    args = parser.parse_args(argv)
    env = _environment()
    cases = _cases(sys.executable, args.before)
    progress: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="nieuwsbrief-startup-") as scratch:
        for case in cases:  # unmeasured: write the bytecode, warm the page cache
            _time_once(case, env, Path(scratch))
        load_before = os.getloadavg()[0]
        for round_number in range(1, args.reps + 1):
            for case in cases:
                wall, cpu = _time_once(case, env, Path(scratch))
                case.samples.append(wall)
                case.cpu.append(cpu)
            progress(f"round {round_number}/{args.reps}")
        load_after = os.getloadavg()[0]
    print(_table(cases, (load_before, load_after)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
