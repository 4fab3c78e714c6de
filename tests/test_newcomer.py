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
    # the built-in steps ship inside stepengine's namespace: no generic top-level `builtin_steps`
    names = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "import importlib.util as u, stepengine.builtin_steps.shell as s;"
            "print(u.find_spec('builtin_steps'), s.__name__)",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert names.stdout.split() == ["None", "stepengine.builtin_steps.shell"], names.stdout


def test_the_sdist_and_the_wheel_ship_the_builtin_steps_inside_stepengine(tmp_path: Path) -> None:
    """What PyPI gets: the wheel built from the checkout and the wheel built from the sdist (as pip
    does for a source install) both hold stepengine/builtin_steps/*, and nothing else at top level."""
    import tarfile
    import zipfile

    from hatchling.build import build_sdist, build_wheel

    here = Path.cwd()
    try:
        os.chdir(ROOT)
        direct = tmp_path / "direct"
        wheel = direct / build_wheel(str(direct))
        sdist = tmp_path / "sdist"
        archive = sdist / build_sdist(str(sdist))
        with tarfile.open(archive) as tar:
            tar.extractall(sdist, filter="data")
        os.chdir(next(p for p in sdist.iterdir() if p.is_dir()))
        again = tmp_path / "again"
        rebuilt = again / build_wheel(str(again))
    finally:
        os.chdir(here)
    for built in (wheel, rebuilt):
        names = zipfile.ZipFile(built).namelist()
        top = {n.split("/")[0] for n in names}
        assert top == {"stepengine", next(n.split("/")[0] for n in names if ".dist-info/" in n)}, top
        steps = {n.removeprefix("stepengine/builtin_steps/") for n in names if "/builtin_steps/" in n}
        assert {"__init__.py", "git.py", "blob.py", "shell.py", "pip.py", "docker.py"} <= steps, built
        assert not any("__pycache__" in n for n in names)
