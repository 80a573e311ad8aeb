#!/usr/bin/env python3
"""Set up the benchmarks' peers and run the benchmarks, from any checkout (issue 14, item 9).

    python3 benchmarks/run.py setup              # once: the peers in benchmarks/.peers/
    python3 benchmarks/run.py startup            # start-up and compose beside the floor CLI
    python3 benchmarks/run.py send [--quick]     # send beside smtp-source and mailmerge
    python3 benchmarks/run.py publish | mailbox  # the web edition; 10,000 returns
    python3 benchmarks/run.py all                # every one of them, one after the other

`setup` makes, in benchmarks/.peers/ (git-ignored, relative to this checkout):
  nieuwsbrief/  a venv with this checkout installed (editable: it measures the tree as it is);
  mailmerge/    a venv with mailmerge 2.3.0 from PyPI, the peer of `send`;
and checks that Postfix's smtp-sink and smtp-source are on PATH (installing the Debian package
postfix when they are not and this is root; the postfix daemon is neither needed nor started).
The floor CLI of `startup` runs on the nieuwsbrief venv's Typer, so it needs no venv of its own.
Words after the benchmark's name go to its script (`run.py send --sizes 1000 --reps 1`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / ".peers"
NIEUWSBRIEF_VENV = PEERS / "nieuwsbrief"
MAILMERGE_VENV = PEERS / "mailmerge"
MAILMERGE_VERSION = "2.3.0"
POSTFIX_TOOLS = ("smtp-sink", "smtp-source")
SCRIPTS = {
    "startup": "bench_startup.py",
    "send": "bench_send.py",
    "publish": "bench_publish.py",
    "mailbox": "bench_mailbox.py",
}


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(argv: list[str | Path], **kwargs: object) -> None:
    print("+ " + " ".join(str(a) for a in argv), flush=True)
    subprocess.run([str(a) for a in argv], check=True, **kwargs)  # type: ignore[call-overload]


def _venv(venv: Path, *requirements: str) -> None:
    if not _python(venv).exists():
        _run([sys.executable, "-m", "venv", venv])
    _run([_python(venv), "-m", "pip", "install", "--quiet", "--upgrade", *requirements])


def _postfix_tools() -> list[str]:
    """Return the smtp-sink/smtp-source that cannot be found (on PATH or in /usr/sbin)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return [tool for tool in POSTFIX_TOOLS if shutil.which(tool, path=search) is None]


def setup() -> int:
    PEERS.mkdir(exist_ok=True)  # git-ignored (.gitignore)
    _venv(NIEUWSBRIEF_VENV, "--editable", str(REPO))
    _venv(MAILMERGE_VENV, f"mailmerge=={MAILMERGE_VERSION}")
    missing = _postfix_tools()
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        # Debian's package runs no daemon in a container without an init; nothing here starts one.
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "install", "-y", "--no-install-recommends", "postfix"], env=env)
        missing = _postfix_tools()
    if missing:
        print(
            f"missing: {', '.join(missing)}; install Postfix (Debian: apt-get install postfix), "
            "the daemon need not run. Every benchmark but `send` works without them.",
            file=sys.stderr,
        )
        return 1
    print(f"peers ready in {PEERS.relative_to(REPO)}/")
    return 0


def run(name: str, args: list[str]) -> int:
    python = _python(NIEUWSBRIEF_VENV)
    if not python.exists():
        print(f"no peers yet: run `python3 {Path(__file__).relative_to(REPO)} setup` first")
        return 2
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    argv: list[str | Path] = [python, BENCH / SCRIPTS[name], *args]
    print(f"\n## {name}\n", flush=True)
    return subprocess.run([str(a) for a in argv], cwd=REPO, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("setup", "all", *SCRIPTS):
        print(__doc__)
        return 2
    if argv[0] == "setup":
        return setup()
    names = list(SCRIPTS) if argv[0] == "all" else [argv[0]]
    codes = [run(name, argv[1:] if argv[0] != "all" else []) for name in names]
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
