"""Shared fixtures. Real servers live in ``tests/fixtures/`` and are started once per run on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins: list[str] = [
    # first (the fixtures below import it): a missing optional tool skips with the reason; with
    # STEPENGINE_REQUIRE_ALL_TOOLS=1 (set by .ci/run) no test may skip
    "tests.fixtures.tools",
    "tests.fixtures.docker_engine",
    "tests.fixtures.git_server",
    "tests.fixtures.moto_server",
    "tests.fixtures.azurite",
    "tests.fixtures.gcs_emulator",
    "tests.fixtures.prefect_server",
]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME, DOCKER_CONFIG and STEPENGINE_HOME, so nothing lands in ~."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    monkeypatch.setenv("STEPENGINE_HOME", str(home / ".stepengine"))
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


@pytest.fixture(autouse=True)
def _restore_cwd() -> object:
    """Steps like set_working_directory change the process cwd: put it back after each test."""
    cwd = os.getcwd()
    yield
    os.chdir(cwd)
