"""How long ``lakeplane --help`` and ``--version`` take, against a bare interpreter start.

Usage::

    .venv/bin/python benchmarks/bench_cli_startup.py [--repeat 7]

Each command runs ``--repeat`` times in a fresh process and its best time is kept. The baseline,
measured in the same run, is ``python -c pass`` (the interpreter alone); ``import lakeplane.lake``
is shown too, as what a command that opens a lake pays before it does anything, and what every
command paid while the CLI imported the whole package up front. The target: ``--help`` well under
half a second, importing none of the data libraries (pyiceberg, pyarrow, duckdb, sqlalchemy,
sqlglot, pyspark).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def best_of(command: list[str], repeat: int) -> float:
    """The quickest of ``repeat`` runs of ``command``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    lakeplane = str(BIN / "lakeplane")
    cases = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "lakeplane --version": [lakeplane, "--version"],
        "lakeplane --help": [lakeplane, "--help"],
        "lakeplane query --help": [lakeplane, "query", "--help"],
        "python -c 'import lakeplane.lake'": [sys.executable, "-c", "import lakeplane.lake"],
    }
    figures = {name: best_of(command, args.repeat) for name, command in cases.items()}
    baseline = figures["python -c pass (baseline)"]
    print(f"best of {args.repeat}, fresh process each")
    for name, seconds in figures.items():
        print(f"  {name:38s} {seconds:6.3f} s  {seconds / baseline:5.1f}x the bare interpreter")


if __name__ == "__main__":
    main()
