"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import small_scenario, write_scenario


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    return write_scenario(tmp_path, small_scenario())
