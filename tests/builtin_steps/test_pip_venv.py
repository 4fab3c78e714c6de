"""pip_install_requirements into another environment: real venvs (uv and ``python -m venv``), sealed
installs from a local wheel folder (no index at all)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stepengine.builtin_steps.pip import pip_install_requirements
from stepengine.errors import StepError
from tests.fixtures.tools import needs_program
from tests.fixtures.wheels import make_wheel

needs_uv = needs_program("uv", ".ci/install.d/70-project.sh")


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose requirements.txt installs ``tinypkg`` from a local wheel folder only."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinypkg", "1.0", "VALUE = 'tiny'\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text(f"--no-index\n--find-links {wheels}\ntinypkg==1.0\n")
    # this machine's pip.conf adds indexes and find-links: read none of it
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    return project


def _import_value(python: str) -> str:
    result = subprocess.run(
        [python, "-c", "import tinypkg; print(tinypkg.VALUE)"], check=False, capture_output=True, text=True
    )
    return result.stdout.strip() or result.stderr.strip().splitlines()[-1]


@needs_uv
def test_uv_creates_the_venv_and_installs_into_it(project: Path) -> None:
    out = pip_install_requirements(
        directory=str(project), venv=".venv", create=True, installer="uv", stream_output=False
    )
    python = project / ".venv" / "bin" / "python"
    assert out["python"] == str(python)
    assert "tinypkg==1.0" in out["stderr"]  # uv reports "+ tinypkg==1.0"
    assert _import_value(str(python)) == "tiny"
    assert _import_value(sys.executable) == "ModuleNotFoundError: No module named 'tinypkg'"
    assert (project / ".venv" / "bin" / "pip").exists()  # seeded: the user's own pip works there


@pytest.mark.slow  # python -m venv + ensurepip + pip: ~14 s on 2 busy cores
def test_pip_creates_the_venv_with_the_venv_module(project: Path) -> None:
    out = pip_install_requirements(
        directory=str(project), venv=".venv", create=True, installer="pip", stream_output=False
    )
    assert "Successfully installed tinypkg-1.0" in out["stdout"]
    assert _import_value(str(project / ".venv" / "bin" / "python")) == "tiny"


@needs_uv
def test_auto_uses_uv_for_an_existing_interpreter(project: Path, tmp_path: Path) -> None:
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(tmp_path / "env")], check=True)
    python = str(tmp_path / "env" / "bin" / "python")
    out = pip_install_requirements(directory=str(project), python=python, stream_output=False)
    assert out["python"] == python
    assert "Successfully installed" not in out["stdout"]  # not pip: uv
    assert _import_value(python) == "tiny"


@needs_uv
@pytest.mark.parametrize("seeded", [True, False])
def test_auto_with_a_setting_uv_cannot_honour(
    project: Path,
    tmp_path: Path,
    seeded: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """pip when the environment has it; a venv without pip keeps uv (as before pip settings were read)."""
    subprocess.run(
        [
            "uv",
            "venv",
            "--quiet",
            *(["--seed"] if seeded else []),
            "--python",
            sys.executable,
            str(tmp_path / "env"),
        ],
        check=True,
    )
    monkeypatch.setenv("PIP_PREFER_BINARY", "1")
    caplog.set_level(logging.DEBUG, logger="stepengine.steps")
    out = pip_install_requirements(directory=str(project), venv=str(tmp_path / "env"), stream_output=False)
    assert _import_value(out["python"]) == "tiny"
    if seeded:
        assert "Successfully installed tinypkg-1.0" in out["stdout"]
        assert "not uv: pip setting 'prefer-binary' (PIP_PREFER_BINARY) has no uv equivalent" in caplog.text
    else:
        assert "+ tinypkg==1.0" in out["stderr"]
        assert "installing with uv, without pip's settings: pip setting 'prefer-binary'" in caplog.text


@needs_uv
def test_auto_passes_pip_settings_to_uv_in_a_venv(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requirements file names no index: only PIP_NO_INDEX / PIP_FIND_LINKS say where tinypkg is."""
    (project / "requirements.txt").write_text("tinypkg==1.0\n")
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(project / ".venv")], check=True)
    monkeypatch.setenv("PIP_NO_INDEX", "yes")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    (tmp_path / "uv-only.txt").write_text("tinypkg==2.0\n")
    monkeypatch.setenv(
        "UV_CONSTRAINT", str(tmp_path / "uv-only.txt")
    )  # uv's own settings are not pip's: dropped
    out = pip_install_requirements(directory=str(project), venv=".venv", stream_output=False)
    assert "+ tinypkg==1.0" in out["stderr"]
    assert _import_value(out["python"]) == "tiny"
    assert list((project / ".venv").glob("lib/python*/site-packages/__pycache__/tinypkg.*.pyc"))


def test_a_missing_venv_needs_create(project: Path) -> None:
    with pytest.raises(StepError) as info:
        pip_install_requirements(directory=str(project), venv="nowhere")
    assert str(info.value) == "environment 'nowhere' does not exist\nhint: add `create: true` to make it"


def test_bad_combinations(project: Path) -> None:
    with pytest.raises(StepError) as info:
        pip_install_requirements(directory=str(project), venv="a", python="b")
    assert str(info.value) == "give python or venv, not both"
    with pytest.raises(StepError) as info:
        pip_install_requirements(directory=str(project), venv="a", installer="conda")
    assert str(info.value) == "installer 'conda' is not one of auto, uv, pip"
    (project / "notenv").mkdir()
    with pytest.raises(StepError) as info:
        pip_install_requirements(directory=str(project), venv="notenv")
    assert str(info.value) == "'notenv' is not a virtual environment or conda prefix (no bin/python)"
