"""Run `nieuwsbrief ...` as a real process and measure its peak memory (os.wait4's rusage).

A child's peak as Linux reports it starts from its parent's peak when it was spawned (exec keeps
the high-water mark of the memory it replaces): measured straight from pytest, which grows to
a few hundred MB, every run would seem that large. So a small Python (`_WRAPPER`, about 10 MB)
starts nieuwsbrief and reports its rusage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CliRun:
    """What a finished `nieuwsbrief` process did."""

    returncode: int
    stdout: str
    stderr: str
    max_rss_mb: float  # peak resident memory of the process, in MiB


# argv: REPORT-FILE PROGRAM ARGS...; writes "exit-code max-rss-kB" for PROGRAM to REPORT-FILE.
_WRAPPER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> CliRun:
    """Run `python -m nieuwsbrief ARGS` in `cwd`; kill it after `timeout` seconds."""
    out_path = cwd / ".cli-stdout"
    err_path = cwd / ".cli-stderr"
    report_path = cwd / ".cli-rusage"
    report_path.unlink(missing_ok=True)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        command = [sys.executable, "-m", "nieuwsbrief", *args]
        process = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, str(report_path), *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=os.environ.copy() if env is None else env,
            start_new_session=True,  # the time-out kills wrapper and nieuwsbrief together
        )
        killer = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
        killer.start()
        try:
            process.wait()
        finally:
            killer.cancel()
    assert process.returncode == 0 and report_path.exists(), (
        f"nieuwsbrief {' '.join(args)} ran longer than {timeout} s"
        if process.returncode == -9
        else f"the wrapper failed: {err_path.read_text(encoding='utf-8')}"
    )
    returncode, max_rss_kb = map(int, report_path.read_text(encoding="ascii").split())
    return CliRun(
        returncode=returncode,
        stdout=out_path.read_text(encoding="utf-8"),
        stderr=err_path.read_text(encoding="utf-8"),
        max_rss_mb=max_rss_kb / 1024,  # kilobytes on Linux
    )
