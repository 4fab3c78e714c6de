"""The checks before anything runs (stepengine.checks, issue 13 item 3): every kind of problem —
schema, structure, unknown step, arguments, template syntax (Jinja too), references — collected in
one pass and reported together, whichever comes first; no verb runs a step while any is known."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import ValidationError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stepengine", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


#: a schema error (a deployment's parameters), then three step errors of three kinds
FOUR_PROBLEMS = """
    pull:
      - prefect.deployments.steps.run_shell_script:
          script: touch {marker}
          scirpt: typo
      - no_such_module.no_such_step:
          x: 1
      - prefect.deployments.steps.run_shell_script:
          script: "{{{{ clone.directory }}}}"
    deployments:
      - name: nightly
        parameters: [not, a, mapping]
"""


def test_a_schema_error_and_three_step_errors_are_reported_together(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(tmp_path / "prefect.yaml", FOUR_PROBLEMS.format(marker=marker))
    with pytest.raises(ValidationError) as info:
        stepengine.validate(tmp_path / "prefect.yaml")
    rendered = [issue.render() for issue in info.value.issues]
    file = str(tmp_path / "prefect.yaml")
    assert [r.split(": ", 1)[0] for r in rendered] == [
        f"{file}:4:7",
        f"{file}:5:5",
        f"{file}:8:7",
        f"{file}:11:5",
    ]
    assert "unknown argument 'scirpt'" in rendered[0]
    assert "unknown step 'no_such_module.no_such_step'" in rendered[1]
    assert "{{ clone.directory }} refers to 'clone', but no earlier step has that id" in rendered[2]
    assert "deployments[0].parameters" in rendered[3]

    result = cli("validate", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("prefect.yaml:")]
    assert [e.split(": ", 1)[0] for e in errors] == [
        "prefect.yaml:4:7",
        "prefect.yaml:5:5",
        "prefect.yaml:8:7",
        "prefect.yaml:11:5",
    ]
    for verb in ("run", "plan"):
        result = cli(verb, cwd=tmp_path)
        assert result.returncode == 2, (verb, result.stderr)
        assert (
            len([line for line in result.stderr.splitlines() if line.startswith("error: prefect.yaml:")]) == 4
        )
    assert not marker.exists()


def test_a_jinja_syntax_error_in_step_2_stops_the_run_before_step_1(tmp_path: Path) -> None:
    marker = tmp_path / "step-1-ran"
    write(
        tmp_path / "prefect.yaml",
        f"""
        pull:
          - prefect.deployments.steps.run_shell_script:
              script: touch {marker}
          - prefect.deployments.steps.run_shell_script:
              script: "echo {{{{ $HOME | replace('/' }}}}"
    """,
    )
    expected = (
        "prefect.yaml:5:7: pull[1] (run_shell_script): {{ $HOME | replace('/' }} is not a valid expression"
    )
    result = cli("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(expected), result.stderr
    for verb in ("run", "plan"):
        result = cli(verb, cwd=tmp_path)
        assert result.returncode == 2, (verb, result.stderr)
        assert f"error: {expected}" in result.stderr
    assert not marker.exists()


def test_template_syntax_errors_of_every_kind_are_found_without_evaluating(tmp_path: Path) -> None:
    write(
        tmp_path / "prefect.yaml",
        """
        pull:
          - prefect.deployments.steps.run_shell_script:
              script: "{{ prefect.blocks.secret }}"
              env:
                A: "{{ 1 + }}"
          - prefect.deployments.steps.run_shell_script:
              script: "{{ undefined_name | upper }}"
    """,
    )
    with pytest.raises(ValidationError) as info:
        stepengine.validate(tmp_path / "prefect.yaml")
    messages = [i.message for i in info.value.issues]
    assert len(messages) == 2  # an undefined name is known only at run time: not a syntax error
    assert "a block reference needs a type and a name" in messages[0]
    assert "{{ 1 + }} is not a valid expression" in messages[1]


def test_a_malformed_step_hides_neither_the_others_nor_invents_reference_errors(tmp_path: Path) -> None:
    """Arguments not indented under the function name: one schema error; the step's id still counts,
    so a later reference to it is not reported as well; the next step's error is reported too."""
    write(
        tmp_path / "prefect.yaml",
        """
        pull:
          - prefect.deployments.steps.git_clone:
            id: clone
            repository: https://example.invalid/r.git
          - prefect.deployments.steps.set_working_directory:
              directory: "{{ clone.directory }}"
              extra: 1
    """,
    )
    with pytest.raises(ValidationError) as info:
        stepengine.validate(tmp_path / "prefect.yaml")
    messages = [i.message for i in info.value.issues]
    assert len(messages) == 2, messages
    assert "a step must have exactly one key" in messages[0]
    assert "unknown argument 'extra'" in messages[1]


def test_deploy_reports_schema_and_step_problems_together_and_builds_nothing(tmp_path: Path) -> None:
    from stepengine.project.deploy import deploy_project
    from stepengine.project.layout import load_project

    marker = tmp_path / "built"
    write(tmp_path / "flows.py", "def main():\n    pass\n")
    write(
        tmp_path / "prefect.yaml",
        f"""
        build:
          - prefect.deployments.steps.run_shell_script:
              script: touch {marker}
        pull:
          - prefect.deployments.steps.set_working_directory:
              directory: "{{{{ $HOME | }}}}"
        deployments:
          - name: one
            entrypoint: flows.py:main
            tags: 5
    """,
    )
    with pytest.raises(ValidationError) as info:
        deploy_project(load_project(tmp_path))
    messages = [i.message for i in info.value.issues]
    assert len(messages) == 2, messages
    assert "is not a valid expression" in messages[0]
    assert not marker.exists()


def test_each_step_is_checked_once_however_many_deployments_share_it(tmp_path: Path) -> None:
    """validate walks every deployment's run; a top-level step in all of them is checked once, so
    validation grows with the file, not with deployments x steps (issue 16)."""
    from stepengine import signatures

    calls = []
    original = signatures.argument_issues

    def counting(func: object, arguments: object) -> object:
        calls.append(arguments)
        return original(func, arguments)  # type: ignore[arg-type]

    deployments = "".join(
        f"  - name: d{i}\n    pull:\n      - prefect.deployments.steps.set_working_directory:\n"
        f"          directory: /d{i}\n"
        for i in range(50)
    )
    write(
        tmp_path / "prefect.yaml",
        "build:\n  - prefect.deployments.steps.run_shell_script:\n"
        "      script: echo shared\ndeployments:\n" + deployments,
    )
    signatures.argument_issues = counting  # type: ignore[assignment]
    try:
        stepengine.validate(tmp_path / "prefect.yaml")
    finally:
        signatures.argument_issues = original  # type: ignore[assignment]
    assert len(calls) == 1 + 50
