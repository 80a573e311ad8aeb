"""Run `nieuwsbrief ...` as a real process and measure its peak memory (os.wait4's rusage)."""

from __future__ import annotations

import os
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


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> CliRun:
    """Run `python -m nieuwsbrief ARGS` in `cwd`; kill it after `timeout` seconds."""
    out_path = cwd / ".cli-stdout"
    err_path = cwd / ".cli-stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "nieuwsbrief", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=os.environ.copy() if env is None else env,
        )
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            # wait4, not wait: its rusage is this child's alone (RUSAGE_CHILDREN would include
            # every earlier child of the test process).
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode != -9, f"nieuwsbrief {' '.join(args)} ran longer than {timeout} s"
    return CliRun(
        returncode=process.returncode,
        stdout=out_path.read_text(encoding="utf-8"),
        stderr=err_path.read_text(encoding="utf-8"),
        max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
    )
