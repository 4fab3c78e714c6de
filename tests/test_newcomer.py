"""The README's first command, run as a newcomer runs it: a fresh venv, ``pip install .``, the example.

The venv gets nothing from the network: pip may only read the local wheel folder that
``.ci/install.d/75-wheelhouse.sh`` fills (stepengine's dependencies and its build backend), so this is
the install a user gets, minus the download.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(os.environ.get("STEPENGINE_WHEELHOUSE", "/opt/stepengine-ci/wheelhouse"))


def readme_commands() -> list[str]:
    """The lines of the README's first ``sh`` block: the newcomer's command, then the developer's."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README must start with a ```sh block of two commands"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_a_user_command_and_a_developer_command() -> None:
    user, developer = readme_commands()
    assert "stepengine run examples/" in user
    # the user's install is the package alone, not the test toolchain
    assert "[dev]" not in user and ".ci/install" not in user
    assert "pytest" in developer


@pytest.mark.skipif(
    not any(WHEELHOUSE.glob("hatchling-*.whl")),
    reason=f"no local wheel folder at {WHEELHOUSE} (made by .ci/install.d/75-wheelhouse.sh)",
)
def test_readme_first_command_in_a_fresh_venv(tmp_path: Path) -> None:
    project = tmp_path / "stepengine"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".git", ".bench", ".venv", "*.egg-info", "__pycache__", "build", "dist"
        ),
    )
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "STEPENGINE_"))
    }
    env.update(
        PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(env_dir),
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELHOUSE),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",
        HOME=str(tmp_path / "home"),
        STEPENGINE_HOME=str(tmp_path / "home" / ".stepengine"),
    )
    user_command = readme_commands()[0]
    done = subprocess.run(
        ["bash", "-ec", user_command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the example greets with the --var value and the venv's HOME
    assert f"hi from {tmp_path / 'home'}" in done.stdout + done.stderr
    # the command came from the venv, and stepengine was installed there (not found on the test's path)
    assert (env_dir / "bin" / "stepengine").exists()
    where = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import stepengine; print(stepengine.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(env_dir)), where.stdout
    assert sys.prefix not in where.stdout or sys.prefix == str(env_dir)
