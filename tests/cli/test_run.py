"""The real console script, in a subprocess: output, exit codes, JSON, validation, listing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.venvs import make_child_venv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello" / "prefect.yaml"


def stepengine(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stepengine")
    assert exe, "the console script is installed by `pip install -e .`"
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def test_bundled_example_runs_with_prefect_style_lines() -> None:
    result = stepengine("run", str(EXAMPLE), "--section", "pull", "--var", "greeting=hi")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        "> Running run_shell_script step...",
        "> Running run_shell_script step...",
        "> Running set_working_directory step...",
    ]
    assert lines[-1].startswith("ok: 3 steps in ")
    # a step's output goes to stdout, as Prefect prints it (issue 13); progress stays on stderr
    assert result.stdout == f"hi from {os.environ['HOME']}\n"


def test_step_output_keeps_its_place_among_the_progress_lines() -> None:
    exe = shutil.which("stepengine")
    assert exe
    result = subprocess.run(
        [exe, "run", str(EXAMPLE), "--section", "pull", "--var", "greeting=hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert result.stdout.splitlines()[:4] == [
        "> Running run_shell_script step...",
        f"hi from {os.environ['HOME']}",
        "> Running run_shell_script step...",
        "> Running set_working_directory step...",
    ]


def test_with_output_json_the_steps_output_goes_to_stderr() -> None:
    result = stepengine("run", str(EXAMPLE), "--section", "pull", "--var", "greeting=hi", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workdir"]["directory"] == os.getcwd()  # stdout: the JSON alone
    assert result.stderr.splitlines()[:2] == [
        "> Running run_shell_script step...",
        f"hi from {os.environ['HOME']}",
    ]


def test_output_json_goes_to_stdout_only() -> None:
    result = stepengine("run", str(EXAMPLE), "-s", "pull", "--output", "json", "-q")
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["shout"] == {"stdout": f"hello from {os.environ['HOME']}!", "stderr": ""}
    assert outputs["workdir"]["directory"] == os.getcwd()
    assert result.stderr == ""


def test_deployment_override() -> None:
    result = stepengine("run", str(EXAMPLE), "--deployment", "hello")
    assert result.returncode == 0, result.stderr
    assert "pulling for the hello deployment" in result.stdout
    assert "from" not in result.stdout.split("pulling")[0]


def test_invalid_file_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    (tmp_path / "prefect.yaml").write_text(
        f"pull:\n  - run_shell_script:\n      script: touch {marker}\n  - run_shell_script:\n      scrip: x\n"
    )
    result = stepengine("run", cwd=tmp_path)
    assert result.returncode == 2
    assert not marker.exists()
    assert result.stderr.splitlines() == [
        "error: prefect.yaml:4:5: pull[1] (run_shell_script): missing required argument 'script' (pull[1].run_shell_script)",
        "error: prefect.yaml:5:7: pull[1] (run_shell_script): unknown argument 'scrip' (did you mean 'script'?); "
        "it accepts: script, directory, env, stream_output, expand_env_vars, shell, venv (pull[1].run_shell_script.scrip)",
    ]


def test_failed_step_exits_1_with_one_paragraph(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - run_shell_script:\n      id: s\n      script: ls /nope/nope\n"
    )
    result = stepengine("run", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        "error: prefect.yaml:2:5: pull[0] (s: run_shell_script) failed: command `ls /nope/nope` exited with code 2:",
        "    ls: cannot access '/nope/nope': No such file or directory",
    ]


def test_yaml_error_exit_2(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text("pull:\n  - a: 1\n  - a: 2\n    a: 3\n")
    result = stepengine("run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: prefect.yaml:4:5: duplicate key 'a' (first defined on line 3); the later value would silently "
        "replace the earlier one"
    )


def test_missing_reference_at_run_time_exits_2(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text("pull:\n  - run_shell_script:\n      script: echo {{ branch }}\n")
    result = stepengine("run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "> Running run_shell_script step...",
        "error: prefect.yaml:3:7: pull[0] (run_shell_script): {{ branch }} refers to 'branch', which no earlier step "
        "produced",
        "hint: available names: none yet",
    ]
    assert stepengine("run", "--var", "branch=main", cwd=tmp_path).returncode == 0


def test_validate_the_example() -> None:
    result = stepengine("validate", str(EXAMPLE))
    assert result.returncode == 0
    assert result.stderr.strip() == f"{EXAMPLE}: valid"


def test_bad_var_syntax_is_a_usage_error() -> None:
    result = stepengine("run", str(EXAMPLE), "--var", "novalue")
    assert result.returncode == 2
    assert "'novalue' is not KEY=VALUE" in result.stderr


def test_validate_reports_all_errors(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(
        "pull:\n  - git_clonee:\n      id: c\n  - run_shell_script:\n      script: echo {{ cl.directory }}\n"
    )
    result = stepengine("validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}:2:5: pull[0] (c: git_clonee): unknown step 'git_clonee'")
    assert "(did you mean 'git_clone'" in lines[0]
    assert lines[-1] == (
        f"{path}:5:7: pull[1] (run_shell_script): {{{{ cl.directory }}}} refers to 'cl', but no earlier step has "
        "that id (pull[1].run_shell_script.script)"
    )


def test_steps_lists_builtins_with_distribution_and_signature() -> None:
    result = stepengine("steps")
    assert result.returncode == 0
    text = result.stdout
    assert "set_working_directory(directory: 'str') -> 'dict[str, str]'" in text
    assert "    from stepengine 0.1.0 (stepengine.builtin_steps.filesystem:set_working_directory)" in text
    as_json = json.loads(stepengine("steps", "-o", "json").stdout)
    names = {row["name"] for row in as_json}
    assert {"prefect.deployments.steps.run_shell_script", "run_shell_script"} <= names


def test_schema_command_prints_composed_schema() -> None:
    result = stepengine("schema")
    schema = json.loads(result.stdout)
    assert "run_shell_script" in schema["$defs"]["stepsByName"]


def test_version_and_help() -> None:
    assert stepengine("--version").stdout.strip() == "stepengine, version 0.1.0"
    for args in (["-h"], ["run", "-h"], ["validate", "--help"]):
        result = stepengine(*args)
        assert result.returncode == 0 and "Usage:" in result.stdout


def test_sigint_exits_130_and_kills_children(tmp_path: Path) -> None:
    """Ctrl-C during a step: exit 130, and the step's child process does not survive."""
    import signal
    import time

    pidfile = tmp_path / "pid"
    (tmp_path / "prefect.yaml").write_text(
        f"pull:\n  - run_shell_script:\n      shell: true\n      script: 'echo $$ > {pidfile}; sleep 30'\n"
    )
    proc = subprocess.Popen(
        [shutil.which("stepengine"), "run"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "interrupted" in err
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_step_plugin_example_installs_and_runs_by_short_name(tmp_path: Path) -> None:
    """examples/step-plugin is a real package: install it into a venv, run a file using its step."""
    venv = make_child_venv(tmp_path / "venv")
    plugin = ROOT / "examples" / "step-plugin"
    install = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            str(plugin),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(
            os.environ, PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="", PIP_DISABLE_PIP_VERSION_CHECK="1"
        ),
    )
    assert install.returncode == 0, install.stderr
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "stepengine",
            "run",
            str(plugin / "prefect.yaml"),
            "--var",
            "who=world",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[:4] == [
        "> Running say_hello step...",
        "hello, world!",
        "> Running run_shell_script step...",
        "hello, world!",
    ]


def test_a_store_that_cannot_be_read_while_templating_exits_2_naming_the_step(tmp_path: Path) -> None:
    """A StoreError is invalid input (exit 2, as documented), not a failed step (exit 1)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "store.db").write_bytes(b"not a database at all" * 200)
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - run_shell_script:\n      script: echo first\n"
        "  - run_shell_script:\n      script: 'echo {{ prefect.variables.branch }}'\n"
    )
    result = stepengine("run", cwd=tmp_path, env={**os.environ, "STEPENGINE_HOME": str(home)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-2] == (
        f"error: prefect.yaml:4:5: pull[1] (run_shell_script): {home / 'store.db'}: not a usable stepengine store "
        "(file is not a database)"
    )


def test_a_reader_that_goes_away_or_a_closed_stdout_ends_nothing_in_a_traceback(tmp_path: Path) -> None:
    """Steps' output goes to stdout: `stepengine run | head -1` (the reader leaves while 1 MB is
    still coming) and a closed stdout drop the rest of the output; the run itself goes on."""
    (tmp_path / "prefect.yaml").write_text(
        "build:\n  - prefect.deployments.steps.run_shell_script: {script: seq 1 200000}\n"
    )
    exe = shutil.which("stepengine")
    assert exe
    proc = subprocess.Popen(
        [exe, "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "1\n"
    proc.stdout.close()  # the reader is gone; more than a pipe's worth is still to come
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err and err.splitlines()[-1].startswith("ok: 1 step in ")
    closed = subprocess.run(
        [exe, "run"],
        cwd=tmp_path,
        stdout=None,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr
