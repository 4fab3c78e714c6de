"""Fixtures shared by the built-in steps' tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, made the cwd for the test (steps write relative to it)."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path
