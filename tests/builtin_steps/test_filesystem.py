"""set_working_directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stepengine.builtin_steps.filesystem import set_working_directory
from stepengine.errors import StepError


def test_changes_cwd_and_returns_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    os.chdir(tmp_path)
    assert set_working_directory("sub") == {"directory": str(tmp_path / "sub")}
    assert os.getcwd() == str(tmp_path / "sub")


def test_missing_directory(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    with pytest.raises(StepError, match="^cannot change to 'nope': no such directory$"):
        set_working_directory("nope")


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(StepError, match="not a directory"):
        set_working_directory(str(tmp_path / "f"))


def test_an_empty_directory_is_an_error_not_a_silent_stay(tmp_path: Path) -> None:
    """os.path.abspath('') is the current directory: '' (often a template that rendered to
    nothing) must not quietly leave the run where it is."""
    os.chdir(tmp_path)
    with pytest.raises(StepError, match="^directory is empty"):
        set_working_directory("")
    assert os.getcwd() == str(tmp_path)
