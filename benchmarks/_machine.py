"""The machine and versions a benchmark ran on, printed at the top of its output."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import numba
import numpy as np


def machine() -> list[str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or model
    try:
        revision = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        revision = "unknown"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"Machine: {model}, {os.cpu_count()} logical cores, {platform.system()} "
        f"{platform.release()}; load average at start {load}",
        f"Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}; "
        f"ai-stress {importlib.metadata.version('ai-stress')} at git {revision}",
    ]
