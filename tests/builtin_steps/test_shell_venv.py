"""run_shell_script with ``venv``: the environment's bin first on PATH, VIRTUAL_ENV (or CONDA_PREFIX) set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stepengine.builtin_steps.shell import run_shell_script
from stepengine.errors import StepError


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shellvenv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    return root


def test_python_and_virtual_env_come_from_the_venv(venv: Path) -> None:
    out = run_shell_script(
        'python -c "import sys; print(sys.prefix)"\nprintenv VIRTUAL_ENV', venv=str(venv), stream_output=False
    )
    assert out["stdout"].splitlines() == [str(venv), str(venv)]


def test_relative_to_directory_and_in_shell_mode(venv: Path) -> None:
    out = run_shell_script(
        'echo "$VIRTUAL_ENV" && command -v python',
        directory=str(venv.parent),
        venv="env",
        shell=True,
        stream_output=False,
    )
    assert out["stdout"].splitlines() == [str(venv), str(venv / "bin" / "python")]


def test_a_conda_prefix(tmp_path: Path, venv: Path) -> None:
    """A conda environment is a prefix with conda-meta/ and bin/ (conda itself is not installed here:
    the prefix is laid out by hand around a real interpreter)."""
    prefix = tmp_path / "conda-env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python").symlink_to(venv / "bin" / "python")
    out = run_shell_script(
        "printenv CONDA_PREFIX\nwhich python", venv=str(prefix), env={"VIRTUAL_ENV": "x"}, stream_output=False
    )
    assert out["stdout"].splitlines() == [str(prefix), str(prefix / "bin" / "python")]


def test_not_an_environment(tmp_path: Path) -> None:
    with pytest.raises(StepError) as info:
        run_shell_script("true", venv=str(tmp_path))
    assert (
        str(info.value)
        == f"venv {str(tmp_path)!r} is not a virtual environment or conda prefix (no bin/ in {tmp_path})"
    )
