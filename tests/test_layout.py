"""Every verb reads Prefect 2.10's two-file layout (``deployment.yaml`` beside ``prefect.yaml``), and
``-d`` chooses a deployment as ``prefect deploy -n`` does: a name, ``FLOW/NAME``, or a pattern
(issue 13 item 4)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import ConfigError, ValidationError

PREFECT_YAML = """
    name: old-style
    prefect-version: 2.10.4
    pull:
      - prefect.deployments.steps.run_shell_script:
          script: echo top-level pull
"""

DEPLOYMENT_YAML = """
    deployments:
      - name: etl-daily
        entrypoint: flows/etl.py:etl_flow
        pull:
          - prefect.deployments.steps.run_shell_script:
              script: echo daily
      - name: etl-hourly
        entrypoint: flows/etl.py:etl_flow
      - name: prod
        entrypoint: flows/etl.py:etl_flow
        pull:
          - prefect.deployments.steps.run_shell_script:
              script: echo etl prod
      - name: prod
        entrypoint: flows/report.py:report_flow
        pull:
          - prefect.deployments.steps.run_shell_script:
              script: echo report prod
"""


def project(tmp_path: Path, deployments: str = DEPLOYMENT_YAML) -> Path:
    (tmp_path / "prefect.yaml").write_text(textwrap.dedent(PREFECT_YAML).lstrip())
    (tmp_path / "deployment.yaml").write_text(textwrap.dedent(deployments).lstrip())
    return tmp_path / "prefect.yaml"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stepengine", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(
    ("selector", "script"),
    [
        ("etl-daily", "echo daily"),
        ("etl-d*", "echo daily"),  # a pattern that matches one
        ("etl-flow/prod", "echo etl prod"),  # FLOW/NAME: the entrypoint's function, - and _ alike
        ("etl_flow/prod", "echo etl prod"),
        ("report-*/prod", "echo report prod"),  # a pattern on either side
        ("report-flow/p*", "echo report prod"),
        ("etl-hourly", "echo top-level pull"),  # no override: the top-level pull
    ],
)
def test_a_deployment_is_chosen_by_name_flow_and_name_or_pattern(
    tmp_path: Path, selector: str, script: str
) -> None:
    config = stepengine.load(project(tmp_path))
    (step,) = config.steps_for(["pull"], selector)
    assert step.arguments == {"script": script}


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("prod", "'prod' matches 2 deployments: etl-flow/prod, report-flow/prod"),
        ("etl-*", "'etl-*' matches 2 deployments: etl-flow/etl-daily, etl-flow/etl-hourly"),
        ("*/prod", "'*/prod' matches 2 deployments: etl-flow/prod, report-flow/prod"),
        ("nightly-*", "no deployment matches 'nightly-*'"),
        ("etl-dialy", "no deployment named 'etl-dialy' (did you mean 'etl-daily'?)"),
    ],
)
def test_several_matches_or_none_is_an_error_listing_the_deployments(
    tmp_path: Path, selector: str, message: str
) -> None:
    config = stepengine.load(project(tmp_path))
    with pytest.raises(ConfigError) as info:
        config.deployment(selector)
    assert info.value.message == f"{tmp_path / 'prefect.yaml'}: {message}"
    assert info.value.exit_code == 2


def test_validate_plan_and_run_read_deployment_yaml(tmp_path: Path) -> None:
    project(tmp_path)
    result = cli("run", "-d", "report-flow/prod", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "report prod" in result.stdout.splitlines()  # a step's output: stdout, as Prefect prints it
    result = cli("plan", "-d", "etl-d*", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "    script: echo daily" in result.stdout.splitlines()
    result = cli("run", "-d", "prod", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "error: prefect.yaml: 'prod' matches 2 deployments: etl-flow/prod, report-flow/prod"
    )


def test_validate_reports_problems_of_both_files_at_once(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        - name: one
          entrypoint: flows/etl.py:etl_flow
          tags: 5
          pull:
            - prefect.deployments.steps.run_shell_script:
                scrip: typo
    """,
    )
    (tmp_path / "prefect.yaml").write_text(
        textwrap.dedent(PREFECT_YAML).lstrip().replace("script: echo", "scriptt: echo")
    )
    with pytest.raises(ValidationError) as info:
        stepengine.validate(tmp_path / "prefect.yaml")
    where = [(Path(i.file or "").name, i.line) for i in info.value.issues]
    assert where == [
        ("prefect.yaml", 4),
        ("prefect.yaml", 5),
        ("deployment.yaml", 3),
        ("deployment.yaml", 5),
        ("deployment.yaml", 6),
    ], [i.render() for i in info.value.issues]
    result = cli("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert [
        line.split(":")[0] for line in result.stderr.splitlines() if ": " in line and "hint" not in line
    ] == ["prefect.yaml", "prefect.yaml", "deployment.yaml", "deployment.yaml", "deployment.yaml"]


def test_a_deployment_yaml_given_alone_is_read_in_any_of_its_forms(tmp_path: Path) -> None:
    project(
        tmp_path,
        """
        - name: listed
          entrypoint: flows/etl.py:etl_flow
          pull:
            - prefect.deployments.steps.run_shell_script:
                script: echo listed
    """,
    )
    config = stepengine.load(tmp_path / "deployment.yaml")
    assert [d.name for d in config.deployments] == ["listed"]
    assert stepengine.validate(tmp_path / "deployment.yaml") == []
