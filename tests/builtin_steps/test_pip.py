"""pip_install_requirements installs from a local wheel folder into the interpreter running the step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tools import missing_tool, needs_program
from tests.fixtures.venvs import make_child_venv
from tests.fixtures.wheels import make_wheel


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A real venv that sees what the test interpreter sees (stepengine, pip), so the step installs into it."""
    return make_child_venv(tmp_path / "venv")


def _sealed_env(wheels: Path) -> dict[str, str]:
    env = dict(os.environ)
    # the machine's pip config adds indexes and find-links; seal pip to our wheel folder only
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_FIND_LINKS=str(wheels),
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",
    )
    return env


needs_uv = needs_program("uv", ".ci/install.d/70-project.sh")


def _run_step(
    project: Path, venv: Path, env: dict[str, str], extra: str = ""
) -> subprocess.CompletedProcess[str]:
    (project / "prefect.yaml").write_text(
        "pull:\n  - prefect.deployments.steps.pip_install_requirements:\n"
        "      id: deps\n      directory: '{{ $PROJECT }}'\n      requirements_file: reqs.txt\n"
        "      stream_output: false\n" + extra
    )
    return subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "stepengine",
            "run",
            str(project / "prefect.yaml"),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env | {"PROJECT": str(project)},
        check=False,
    )


def _two_wheels(tmp_path: Path) -> tuple[Path, Path]:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinypkg-a", "1.0", "VALUE = 'a'\n", requires=("tinypkg-b",))
    make_wheel(wheels, "tinypkg-b", "2.0", "VALUE = 'b'\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "reqs.txt").write_text("tinypkg-a==1.0\n")  # no --find-links: only PIP_FIND_LINKS says where
    return wheels, project


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


@needs_uv
@pytest.mark.parametrize("switch", ["auto", "pip"])
def test_installs_requirements_into_the_running_interpreter(tmp_path: Path, venv: Path, switch: str) -> None:
    """``auto`` is uv, given PIP_FIND_LINKS and PIP_NO_INDEX (without them uv would look for tinypkg on
    PyPI and fail); ``STEPENGINE_PIP_INSTALLER=pip`` is Prefect's ``python -m pip``. Same packages,
    both byte-compiled."""
    wheels, project = _two_wheels(tmp_path)
    run = _run_step(project, venv, _sealed_env(wheels) | {"STEPENGINE_PIP_INSTALLER": switch})
    assert run.returncode == 0, run.stderr
    if switch == "pip":
        assert "Successfully installed tinypkg-a-1.0 tinypkg-b-2.0" in run.stdout
        assert "installing with" not in run.stderr  # no choice made
    else:
        assert "Successfully installed" not in run.stdout
        assert " + tinypkg-a==1.0" in run.stdout and " + tinypkg-b==2.0" in run.stdout  # uv's report
        assert "installing with uv (pip settings passed on: " in run.stderr
        passed = run.stderr.split("passed on: ", 1)[1].split(")", 1)[0].split(", ")
        assert {"find-links", "no-index"} <= set(passed)
    check = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import tinypkg_a, tinypkg_b; print(tinypkg_a.VALUE + tinypkg_b.VALUE)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.stdout.strip() == "ab"
    tag = sys.implementation.cache_tag
    compiled = {p.name for p in (_site_packages(venv) / "__pycache__").glob("*.pyc")}
    assert {f"tinypkg_a.{tag}.pyc", f"tinypkg_b.{tag}.pyc"} <= compiled


def _compiled(venv: Path) -> set[str]:
    tag = sys.implementation.cache_tag
    found = {p.name for p in (_site_packages(venv) / "__pycache__").glob(f"tinypkg_*.{tag}.pyc")}
    return {name.split(".")[0] for name in found}


@needs_uv
@pytest.mark.parametrize("switch", ["auto", "pip", "uv"])
@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        ("      compile_bytecode: false\n", {}, set()),
        ("      compile_bytecode: true\n", {}, {"tinypkg_a", "tinypkg_b"}),
        ("", {"PIP_NO_COMPILE": "0"}, set()),  # pip's reading: no-compile=0 means compile off
        ("", {"PIP_COMPILE": "no"}, set()),
        ("      compile_bytecode: true\n", {"PIP_NO_COMPILE": "0"}, {"tinypkg_a", "tinypkg_b"}),
    ],
)
def test_compile_bytecode_follows_pip_unless_given(
    tmp_path: Path, venv: Path, switch: str, extra: str, env: dict[str, str], expected: set[str]
) -> None:
    """Byte-compiling is a step option; by default each installer does what it does alone: pip (and
    auto, which only picks uv when the result is pip's) compile unless pip's settings say not to; uv
    does not compile. ``compile_bytecode: true/false`` wins over both."""
    wheels, project = _two_wheels(tmp_path)
    uv_alone = {"UV_FIND_LINKS": str(wheels), "UV_NO_INDEX": "1"} if switch == "uv" else {}
    switched = {"STEPENGINE_PIP_INSTALLER": switch}
    run = _run_step(project, venv, _sealed_env(wheels) | env | uv_alone | switched, extra)
    assert run.returncode == 0, run.stderr
    if switch == "uv" and not extra:
        expected = set()  # uv alone does not compile (and does not read pip's settings)
    assert _compiled(venv) == expected
    if switch == "auto":
        assert "installing with uv" in run.stderr  # the setting did not push auto to pip


def test_compile_bytecode_must_be_a_boolean(tmp_path: Path) -> None:
    from stepengine.builtin_steps.pip import pip_install_requirements
    from stepengine.errors import StepError

    (tmp_path / "requirements.txt").write_text("x\n")
    with pytest.raises(StepError, match="compile_bytecode must be true or false, not 'no'"):
        pip_install_requirements(directory=str(tmp_path), compile_bytecode="no")  # type: ignore[arg-type]


@needs_uv
def test_a_setting_uv_cannot_honour_means_pip(tmp_path: Path, venv: Path) -> None:
    """PIP_TARGET: pip installs into that directory, as Prefect would; uv would ignore it."""
    wheels, project = _two_wheels(tmp_path)
    target = tmp_path / "target"
    run = _run_step(project, venv, _sealed_env(wheels) | {"PIP_TARGET": str(target)})
    assert run.returncode == 0, run.stderr
    assert "Successfully installed tinypkg-a-1.0 tinypkg-b-2.0" in run.stdout
    assert "installing with pip" in run.stderr
    assert sorted(p.name for p in target.glob("*.py")) == ["tinypkg_a.py", "tinypkg_b.py"]
    assert not (_site_packages(venv) / "tinypkg_a.py").exists()


@needs_uv
def test_the_environments_own_pip_conf_is_read(tmp_path: Path, venv: Path) -> None:
    """A key in ``<sys.prefix>/pip.conf`` that uv has no equivalent for: pip runs."""
    from stepengine.builtin_steps import _pip_settings
    from stepengine.builtin_steps.pip import _find_uv, _uv_flags

    wheels, project = _two_wheels(tmp_path)
    (tmp_path / "xdg").mkdir()
    # read the config files (not /dev/null), but not this machine's /etc/xdg ones
    env = _sealed_env(wheels) | {
        "PIP_CONFIG_FILE": str(tmp_path / "none.conf"),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
    }
    (venv / "pip.conf").write_text("[install]\nprefer-binary = yes\n")
    run = _run_step(project, venv, env)
    assert run.returncode == 0, run.stderr
    assert "Successfully installed tinypkg-a-1.0 tinypkg-b-2.0" in run.stdout
    assert "installing with pip" in run.stderr
    (venv / "pip.conf").write_text("[install]\nno-color = yes\n")  # ignorable
    again = _run_step(project, venv, env | {"PIP_FORCE_REINSTALL": ""})  # empty: unset
    assert again.returncode == 0, again.stderr
    found = _pip_settings.read(env, str(venv))  # /etc/pip.conf is this machine's: what does it hold?
    assert found["no-color"].source == f"{venv / 'pip.conf'} [install]"
    if (
        _pip_settings.translate(found, env, in_venv=True, uv_flags=_uv_flags(_find_uv() or "uv")).refusal
        is None
    ):
        assert "installing with uv" in again.stderr


def test_missing_requirements_file(tmp_path: Path) -> None:
    from stepengine.builtin_steps.pip import pip_install_requirements
    from stepengine.errors import StepError

    with pytest.raises(StepError, match=r"requirements file .*/requirements.txt does not exist"):
        pip_install_requirements(directory=str(tmp_path))


@pytest.mark.parametrize("switch", ["auto", "pip"])
def test_unresolvable_requirement_fails_with_the_installers_error(
    tmp_path: Path, venv: Path, switch: str
) -> None:
    if switch == "auto" and shutil.which("uv") is None:
        missing_tool("uv is not installed (.ci/install.d/70-project.sh)")
    (tmp_path / "requirements.txt").write_text("not-a-real-package-xyz==1\n")
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - pip_install_requirements:\n      directory: " + str(tmp_path) + "\n"
    )
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "stepengine", "run", str(tmp_path / "prefect.yaml")],
        capture_output=True,
        text=True,
        env=_sealed_env(tmp_path) | {"STEPENGINE_PIP_INSTALLER": switch},
        check=False,
    )
    assert run.returncode == 1
    assert "pull[0] (pip_install_requirements) failed: command" in run.stderr
    if switch == "pip":
        assert "No matching distribution found for not-a-real-package-xyz==1" in run.stderr
    else:
        assert "not-a-real-package-xyz was not found in the provided package locations" in run.stderr
    assert "hint: check the requirements file" in run.stderr


def test_an_externally_managed_interpreter_is_left_to_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sysconfig

    from stepengine.builtin_steps.pip import _environment_refusal

    (tmp_path / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=use apt\n")
    real = sysconfig.get_path
    monkeypatch.setattr(
        sysconfig,
        "get_path",
        lambda name, *a, **k: str(tmp_path) if name == "stdlib" else real(name, *a, **k),
    )
    assert (
        _environment_refusal(in_venv=False)
        == "the interpreter is externally managed (PEP 668): pip's rules apply"
    )
    assert _environment_refusal(in_venv=True) is None


def test_the_installer_switch_must_be_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stepengine.builtin_steps.pip import pip_install_requirements
    from stepengine.errors import StepError

    (tmp_path / "requirements.txt").write_text("x\n")
    monkeypatch.setenv("STEPENGINE_PIP_INSTALLER", "conda")
    with pytest.raises(StepError, match="STEPENGINE_PIP_INSTALLER='conda' is not one of auto, uv, pip"):
        pip_install_requirements(directory=str(tmp_path))


def test_requires_is_a_hint_unless_install_requires_is_given(tmp_path: Path, venv: Path) -> None:
    """A step that cannot be imported fails with "install X"; --install-requires installs X, then runs."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinysteps", "0.1", "def hello(name):\n    return {'greeting': 'hi ' + name}\n")
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - tinysteps.hello:\n      requires: tinysteps==0.1\n      name: bob\n"
    )
    python = str(venv / "bin" / "python")
    env = _sealed_env(wheels)
    env["PATH"] = str(venv / "bin") + os.pathsep + "/usr/bin:/bin"  # no uv on PATH: pip is used
    first = subprocess.run(
        [python, "-m", "stepengine", "run", "--output", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert first.returncode == 2
    assert "unknown step 'tinysteps.hello'" in first.stderr
    assert (
        "hint: install it with: pip install tinysteps==0.1   (or run with --install-requires)" in first.stderr
    )
    second = subprocess.run(
        [python, "-m", "stepengine", "run", "--install-requires", "--output", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert '"greeting": "hi bob"' in second.stdout
