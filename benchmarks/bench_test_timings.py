"""The durations tests used to assert as upper bounds, measured here instead (issue 14, item 5).

A test asserts what must hold on any machine; how long something takes on this one is a
measurement. Each row: the median of --reps runs, and the bound the test once asserted.

    .venv/bin/python benchmarks/bench_test_timings.py            # 3 repetitions
    .venv/bin/python benchmarks/bench_test_timings.py --reps 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nieuwsbrief.subscribers import scan_subscribers
from nieuwsbrief.unsubscribe.suppression import SuppressionList

COUNT = 100_000


def load_list(folder: Path) -> Callable[[], None]:
    """tests/test_subscribers.py: loading a list of 100,000 rows (was `< 15 s`)."""
    path = folder / "lijst.csv"
    rows = (f"Lid {i};lid{i}@voorbeeld.nl;Gemeente {i % 300}\r\n" for i in range(COUNT))
    path.write_text("Naam;E-mail;Organisatie\r\n" + "".join(rows), encoding="utf-8")

    def run() -> None:
        assert sum(1 for _ in scan_subscribers(path).selected()) == COUNT

    return run


def register_ids(folder: Path) -> Callable[[], None]:
    """tests/test_suppression.py: registering 100,000 recipient ids at once (was `< 5 s`)."""
    pairs = [(f"id{i:06d}", f"lid{i}@example.nl") for i in range(COUNT)]
    runs = iter(range(1_000_000))

    def run() -> None:
        db = SuppressionList(folder / f"suppression-{next(runs)}.sqlite")
        assert db.register(pairs) == COUNT

    return run


CASES = {
    "scan_subscribers, both passes, 100,000 rows": (load_list, 15.0),
    "SuppressionList.register, 100,000 ids": (register_ids, 5.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {args.reps} repetition(s), medians")
    print(f"{'what':<40} {'seconds':>8} {'old bound':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        cases = {name: (make(Path(tmp)), bound) for name, (make, bound) in CASES.items()}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.reps):  # interleaved, so the machine's noise hits all alike
            for name, (run, _bound) in cases.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    for name, (_run, bound) in cases.items():
        print(f"{name:<40} {statistics.median(times[name]):>8.2f} {bound:>9.0f}s")


if __name__ == "__main__":
    main()
