"""``validate --prefect-compatible`` (issue 8): every stepengine-only key and feature is reported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import stepengine
from stepengine.compat import prefect_issues

FILE = textwrap.dedent(
    """\
    build:
      - git_clone:
          id: clone
          repository: https://example.com/x.git
          retries: 2
          timeout_seconds: 30
      - prefect.deployments.steps.run_shell_script:
          script: "echo {{ $BRANCH | default('main') }} {{ clone.directory }}"
          if: success()
    finally:
      - prefect.deployments.steps.run_shell_script:
          script: echo bye
          continue_on_error: true
    deployments:
      - name: d
        finally: []
    """
)


def test_every_stepengine_feature_is_reported_in_file_order() -> None:
    config = stepengine.loads(FILE, file="prefect.yaml")
    assert [i.render() for i in prefect_issues(config)] == [
        "warning: prefect.yaml:2:5: build[0] (clone: git_clone): Prefect imports a step by its full dotted path, "
        "not 'git_clone'; write prefect.deployments.steps.git_clone (build[0].git_clone)",
        "warning: prefect.yaml:5:7: build[0] (clone: git_clone): 'retries' is a stepengine control key: Prefect "
        "would pass it to the step as an argument (build[0].git_clone.retries)",
        "warning: prefect.yaml:6:7: build[0] (clone: git_clone): 'timeout_seconds' is a stepengine control key: "
        "Prefect would pass it to the step as an argument (build[0].git_clone.timeout_seconds)",
        "warning: prefect.yaml:8:7: build[1] (run_shell_script): {{ $BRANCH | default('main') }} is a Jinja "
        "expression: Prefect would leave it as literal text "
        '(build[1]."prefect.deployments.steps.run_shell_script".script)',
        "warning: prefect.yaml:9:7: build[1] (run_shell_script): 'if' is a stepengine control key: Prefect would "
        'pass it to the step as an argument (build[1]."prefect.deployments.steps.run_shell_script".if)',
        "warning: prefect.yaml:10:1: 'finally' is a stepengine section: Prefect does not run it (finally)",
        "warning: prefect.yaml:13:7: finally[0] (run_shell_script): 'continue_on_error' is a stepengine control "
        "key: Prefect would pass it to the step as an argument "
        '(finally[0]."prefect.deployments.steps.run_shell_script".continue_on_error)',
        "warning: prefect.yaml:16:5: deployment 'd': 'finally' is a stepengine section: Prefect does not run it "
        "(deployments[0].finally)",
    ]


def test_a_plain_prefect_file_has_nothing_to_report() -> None:
    config = stepengine.loads(
        "pull:\n  - prefect.deployments.steps.git_clone:\n      repository: https://x/y.git\n"
        "      access_token: '{{ prefect.blocks.secret.t }}'\n      branch: '{{ $BRANCH }}'\n",
        file="prefect.yaml",
    )
    assert prefect_issues(config) == []


def _validate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "prefect.yaml").write_text(FILE)
    return subprocess.run(
        [sys.executable, "-m", "stepengine", "validate", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=60,
    )


def test_cli_warns_and_exits_0_and_only_with_the_flag(tmp_path: Path) -> None:
    result = _validate(tmp_path, "--prefect-compatible")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 9 and all(line.startswith("warning: prefect.yaml:") for line in lines[:8])
    assert lines[-1] == "prefect.yaml: valid, but Prefect would not run it the same (8 warnings)"
    assert _validate(tmp_path).stderr == "prefect.yaml: valid\n"


def test_cli_strict_makes_them_errors(tmp_path: Path) -> None:
    result = _validate(tmp_path, "--prefect-compatible", "--strict")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 8 and all(line.startswith("error: prefect.yaml:") for line in lines)
