"""Nothing is imported from the working directory, and a deleted one is a clear error (issue 14).

``python -m`` puts the working directory first on ``sys.path``: a ``mysteps.py`` named by an untrusted
prefect.yaml, or a ``yaml.py`` shadowing a dependency, was imported (its top-level code ran) by
``validate`` and ``plan``, which promise to run nothing. Both entry points now search the same places.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PLANTED = """
import pathlib
pathlib.Path(__file__).with_suffix(".ran").write_text("imported")


def f():
    return {}
"""


@pytest.mark.parametrize(
    "verb, code",
    [
        (["validate"], 2),
        (["plan"], 2),
        (["run"], 2),
        (["steps"], 0),
        (["schema"], 0),
        (["validate", "--strict"], 2),
    ],
)
def test_no_module_in_the_working_directory_is_imported(tmp_path: Path, verb: list[str], code: int) -> None:
    for name in ("planted", "yaml", "jsonschema", "click", "importlib_metadata"):
        (tmp_path / f"{name}.py").write_text(PLANTED)
    (tmp_path / "prefect.yaml").write_text("pull:\n  - planted.f: {}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "stepengine", *verb],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    assert sorted(p.name for p in tmp_path.glob("*.ran")) == []
    if code == 2:
        assert "unknown step 'planted.f': no entry point of that name and no module 'planted'" in done.stderr
        assert (
            "hint: planted is in the working directory, which stepengine never imports from; if you trust it, "
            "put it on PYTHONPATH (PYTHONPATH=. stepengine ...)"
        ) in done.stderr


def test_pythonpath_is_honoured(tmp_path: Path) -> None:
    """Asking for the directory explicitly still works (for run, that is how a local step module is used)."""
    (tmp_path / "local_steps.py").write_text("def hello():\n    return {'greeting': 'hi'}\n")
    (tmp_path / "prefect.yaml").write_text("pull:\n  - local_steps.hello:\n      id: h\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    done = subprocess.run(
        [sys.executable, "-m", "stepengine", "run", "--output", "json", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"greeting": "hi"' in done.stdout


@pytest.mark.parametrize(
    "verb", [["run", "/FILE"], ["validate", "/FILE"], ["plan", "/FILE"], ["run", "prefect.yaml"]]
)
def test_a_deleted_working_directory_is_a_clear_error(tmp_path: Path, verb: list[str]) -> None:
    """It used to end in a bare FileNotFoundError traceback (exit 3)."""
    (tmp_path / "prefect.yaml").write_text("pull:\n  - set_working_directory:\n      directory: .\n")
    gone = tmp_path / "gone"
    gone.mkdir()
    args = [a.replace("/FILE", str(tmp_path / "prefect.yaml")) for a in verb]
    script = (
        "import os, subprocess, sys\n"
        f"os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})\n"
        f"sys.exit(subprocess.run([sys.executable, '-m', 'stepengine', *{args!r}]).returncode)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "the working directory no longer exists" in done.stderr


def test_the_api_refuses_to_start_in_a_deleted_working_directory(tmp_path: Path) -> None:
    import stepengine

    config = stepengine.loads("pull:\n  - set_working_directory:\n      directory: .\n")
    gone = tmp_path / "gone"
    gone.mkdir()
    os.chdir(gone)
    gone.rmdir()
    with pytest.raises(stepengine.ConfigError) as info:
        stepengine.run(config)
    assert str(info.value) == (
        "the working directory no longer exists (it was deleted after the shell or a step entered it)\n"
        "hint: cd to an existing directory and run again"
    )


def test_a_step_deleting_the_working_directory_fails_the_next_one_clearly(tmp_path: Path) -> None:
    import stepengine

    gone = tmp_path / "gone"
    gone.mkdir()
    os.chdir(gone)

    def remove_cwd() -> None:
        os.rmdir(os.getcwd())

    config = stepengine.loads(
        "pull:\n  - remove_cwd: {}\n  - set_working_directory:\n      directory: .\n", file="p.yaml"
    )
    with pytest.raises(stepengine.StepExecutionError) as info:
        stepengine.run(config, steps={"remove_cwd": remove_cwd})
    assert str(info.value) == (
        "p.yaml:3:5: pull[1] (set_working_directory) failed: the working directory no longer exists "
        "(it was deleted after the shell or a step entered it)\nhint: a later step must not rely on it"
    )
    assert isinstance(info.value.__cause__.__cause__, FileNotFoundError)
