"""Benchmark `nieuwsbrief publish`: the example home, and a generated home of N issues.

Each figure is the median of --reps runs of the real command as a process (`python -m
nieuwsbrief publish HOME --out DIR`, a fresh output folder each time, so every file is written),
plus one re-publish into the same folder (nothing changed: nothing rewritten). The generated
home copies the example issue N times (one per month from January 2012, each with a 2400x1600
JPEG photo of its own), with the example agenda.

    python3 benchmarks/run.py publish                       # example + 100 issues, 3 reps
    python3 benchmarks/run.py publish --issues 20 --reps 1
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "issues"
WEB_URL = "https://www.bureau-kennis.net/nieuwsbrief/"


def make_home(root: Path, count: int) -> Path:
    """Write a home with `count` issues, each the example issue with its own photo."""
    from PIL import Image

    issues = root / "issues"
    issues.mkdir(parents=True)
    (root / "nieuwsbrief.toml").write_text('name = "Benchmark"\n', "utf-8")
    shutil.copy(EXAMPLE / "agenda.yaml", issues / "agenda.yaml")
    for n in range(count):
        year, month = 2012 + n // 12, n % 12 + 1
        folder = issues / f"{year}-{month:02d}"
        shutil.copytree(EXAMPLE / "2012-05", folder, ignore=shutil.ignore_patterns("out"))
        issue_yaml = folder / "issue.yaml"
        issue_yaml.write_text(
            issue_yaml.read_text("utf-8").replace("2012-05-01", f"{year}-{month:02d}-01"), "utf-8"
        )
        photo = Image.linear_gradient("L").resize((2400, 1600)).convert("RGB")
        photo.paste((255, 0, 0), (n * 16, n * 8, n * 16 + 32, n * 8 + 32))  # its own photo
        out = io.BytesIO()
        photo.save(out, "JPEG", quality=90)
        (folder / "foto.jpg").write_bytes(out.getvalue())
        article = folder / "01-social-media.md"
        article.write_text(article.read_text("utf-8") + "\n\n![Foto](foto.jpg)\n", "utf-8")
    return root


def run_publish(home: Path, out: Path) -> tuple[float, float]:
    """Return (wall seconds, CPU seconds) of one `publish` process."""
    env = {**os.environ, "NIEUWSBRIEF_WEB_URL": WEB_URL, "NIEUWSBRIEF_SECRET": "x" * 32}
    command = [sys.executable, "-m", "nieuwsbrief", "publish", str(home), "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"publish failed ({done.returncode}):\n{done.stderr}")
    return elapsed, cpu


def measure(label: str, home: Path, reps: int) -> None:
    runs = [run_publish(home, home / f"site-{rep}") for rep in range(reps)]
    again, again_cpu = run_publish(home, home / "site-0")
    files = sum(1 for p in (home / "site-0").rglob("*") if p.is_file())
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(
        f"{label:<30} wall {wall:6.2f} s, CPU {cpu:6.2f} s (median of {reps}); "
        f"re-publish unchanged: wall {again:.2f} s, CPU {again_cpu:.2f} s; {files} files"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        example = Path(tmp) / "example"
        (example / "issues").mkdir(parents=True)
        (example / "nieuwsbrief.toml").write_text('name = "Voorbeeld"\n', "utf-8")
        shutil.copytree(EXAMPLE / "2012-05", example / "issues" / "2012-05",
                        ignore=shutil.ignore_patterns("out"))  # fmt: skip
        shutil.copy(EXAMPLE / "agenda.yaml", example / "issues" / "agenda.yaml")
        measure("example home (1 issue)", example, args.reps)
        generated = make_home(Path(tmp) / "generated", args.issues)
        measure(f"generated home ({args.issues} issues)", generated, args.reps)


if __name__ == "__main__":
    main()
