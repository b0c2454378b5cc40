"""Start-up time of the CLI with Numba's on-disk cache warm.

    python benchmarks/startup.py [--repeats 5]

Times, in fresh processes, ``ai-stress --version`` (imports only) and a one-path run of the
shipped ``baseline`` scenario: everything before simulating (imports, validation,
compilation of the scenario, loading the cached kernels) plus one path, its Parquet parts,
the summary and the manifest. The first run fills the cache and is reported separately.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    executable = shutil.which("ai-stress")
    if executable is None:
        raise SystemExit("ai-stress is not on PATH: pip install . first")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        run = [
            executable,
            "run",
            "baseline",
            "--paths",
            "1",
            "--block-size",
            "1",
            "--out",
            str(out),
            "--overwrite",
        ]
        first = wall(run)
        runs = [wall(run) for _ in range(repeats)]
        versions = [wall([executable, "--version"]) for _ in range(repeats)]
    print("| command | median wall time (s) |")
    print("|---|---:|")
    print(f"| `ai-stress --version` | {statistics.median(versions):.2f} |")
    print(f"| `ai-stress run baseline --paths 1` (first, may compile) | {first:.2f} |")
    print(f"| `ai-stress run baseline --paths 1` (cache warm) | {statistics.median(runs):.2f} |")


if __name__ == "__main__":
    main()
