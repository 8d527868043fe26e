"""Shared pytest fixtures: the real market data directory and the test-artifacts directory.

The real data lives OUTSIDE the repository, at ``<repo root>/../shared/data`` (it is never copied into the
repo). Tests that need it use the fixtures below and are skipped with a reason when it is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
"""The repository root (the directory holding ``pyproject.toml``)."""

SHARED_DATA_DIR: Path = (REPO_ROOT / ".." / "shared" / "data").resolve()
"""The shared real-data directory, ``<repo root>/../shared/data``."""

ARTIFACTS_DIR: Path = REPO_ROOT / "test-artifacts"
"""Where tests drop files meant for humans to look at (screenshots, reports); git-ignored."""


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """Return ``<repo root>/../shared/data``; skip the test when it does not exist."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"real data directory not found: {SHARED_DATA_DIR} (expected <repo>/../shared/data)")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def ohlcv_dir(shared_data_dir: Path) -> Path:
    """Return the real OHLCV candle directory ``<shared data>/ohlcv``; skip when absent."""
    path = shared_data_dir / "ohlcv"
    if not path.is_dir():
        pytest.skip(f"real OHLCV directory not found: {path}")
    return path


@pytest.fixture(scope="session")
def ohlcv_file(ohlcv_dir: Path) -> Callable[[str], Path]:
    """Return a function mapping an OHLCV file name (with or without ``.csv.gz``) to its path.

    The function skips the calling test when the file does not exist.
    """

    def resolve(name: str) -> Path:
        path = ohlcv_dir / (name if name.endswith((".csv.gz", ".csv", ".parquet")) else f"{name}.csv.gz")
        if not path.is_file():
            pytest.skip(f"real data file not found: {path}")
        return path

    return resolve


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Return ``<repo root>/test-artifacts`` (created if missing)."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR
