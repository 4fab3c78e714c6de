"""``stepengine plan`` through the real console script: what it prints, exit codes, nothing run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SECRET = "plan-cli-s3cr3t-value"


def stepengine(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stepengine", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def _project(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        textwrap.dedent(
            f"""
            pull:
              - prefect.deployments.steps.run_shell_script:
                  id: first
                  script: touch {tmp_path}/created-by-first
                  retries: 2
              - prefect.deployments.steps.run_shell_script:
                  script: "echo {{{{ first.stdout }}}} {{{{ prefect.blocks.secret.token }}}} {{{{ $BRANCH }}}}"
                  if: "env.BRANCH == 'main'"
            """
        )
    )
    (tmp_path / "values.yaml").write_text(f"blocks:\n  secret:\n    token: {SECRET}\n")


def test_plan_prints_each_step_with_templated_inputs_and_runs_nothing(tmp_path: Path) -> None:
    _project(tmp_path)
    result = stepengine("plan", "--values", "values.yaml", cwd=tmp_path, env={"BRANCH": "main"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == textwrap.dedent(
        f"""\
        2 steps would run (nothing was run):

        pull[0] (first: run_shell_script)  prefect.yaml:3:5
          function: prefect.deployments.steps.run_shell_script
          retries: 2
          inputs:
            script: touch {tmp_path}/created-by-first

        pull[1] (run_shell_script)  prefect.yaml:7:5
          function: prefect.deployments.steps.run_shell_script
          if: env.BRANCH == 'main'  (true now)
          inputs:
            script: echo <from first.stdout> *** main
        """
    )
    assert result.stderr == ""
    assert not (tmp_path / "created-by-first").exists()


def test_plan_exits_2_listing_every_problem_and_never_shows_a_secret(tmp_path: Path) -> None:
    _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "BRANCH"}
    result = subprocess.run(
        [sys.executable, "-m", "stepengine", "plan"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "error: prefect.yaml:8:7: pull[1] (run_shell_script): block secret/token not found"
    )
    result = subprocess.run(
        [sys.executable, "-m", "stepengine", "plan", "--values", "values.yaml", "--output", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["steps"][1]["inputs"] == {"script": "<error: see below>"}
    assert data["problems"] == [
        "prefect.yaml:8:7: pull[1] (run_shell_script): environment variable 'BRANCH' is not set\n"
        "hint: export BRANCH=… before the run, or use {{ $BRANCH | default('…') }}"
    ]
    assert SECRET not in result.stdout + result.stderr
    assert not (tmp_path / "created-by-first").exists()


def test_plan_of_an_invalid_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - prefect.deployments.steps.run_shell_script:\n      retries: -1\n"
    )
    result = stepengine("plan", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "retries" in result.stderr


def test_plan_json_output_with_load_outputs_and_from_step(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "outputs.json").write_text(json.dumps({"first": {"stdout": "saved"}}))
    result = stepengine(
        "plan",
        "--values",
        "values.yaml",
        "--load-outputs",
        "outputs.json",
        "--from-step",
        "pull[1]",
        "--output",
        "json",
        cwd=tmp_path,
        env={"BRANCH": "dev"},
    )
    assert result.returncode == 0, result.stderr
    (step,) = json.loads(result.stdout)["steps"]
    assert step["inputs"] == {"script": "echo saved *** dev"}
    assert step["if_now"] is False


def test_plan_says_each_templating_problem_once(tmp_path: Path) -> None:
    """With --output json the problems are in the JSON document: stderr does not print them again."""
    _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "BRANCH"}
    for output in ("text", "json"):
        result = subprocess.run(
            [sys.executable, "-m", "stepengine", "plan", "--values", "values.yaml", "--output", output],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        assert result.returncode == 2
        assert (result.stdout + result.stderr).count("environment variable 'BRANCH' is not set") == 1, output
    assert result.stderr == 'error: 1 problem found while templating (listed in "problems")\n'


def test_a_store_that_cannot_be_read_is_reported_at_the_step_by_plan(tmp_path: Path) -> None:
    _project(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "store.db").write_bytes(b"not a database at all" * 200)
    result = stepengine("plan", cwd=tmp_path, env={"STEPENGINE_HOME": str(home), "BRANCH": "main"})
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: prefect.yaml:8:7: pull[1] (run_shell_script): {home / 'store.db'}: not a usable stepengine store"
    ), result.stderr
