"""`stepengine steps`: a name filter and a short form, one line per step function (issue 15)."""

from __future__ import annotations

import json

from tests.cli.test_run import stepengine


def test_pattern_keeps_matching_names_only() -> None:
    result = stepengine("steps", "agit")
    assert result.returncode == 0, result.stderr
    names = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert [n.split("(")[0] for n in names] == ["agit_clone", "prefect.deployments.steps.pull.agit_clone"]


def test_wildcards_match_the_whole_name() -> None:
    rows = json.loads(stepengine("steps", "prefect_docker.*", "-o", "json").stdout)
    assert sorted(r["name"] for r in rows) == [
        "prefect_docker.deployments.steps.build_docker_image",
        "prefect_docker.deployments.steps.push_docker_image",
        "prefect_docker.projects.steps.build_docker_image",
        "prefect_docker.projects.steps.push_docker_image",
    ]


def test_short_form_groups_the_names_of_one_function() -> None:
    result = stepengine("steps", "--short", "shell")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "run_shell_script  → stepengine.builtin_steps.shell:run_shell_script  (also "
        "prefect.deployments.steps.run_shell_script, prefect.projects.steps.run_shell_script, "
        "prefect.deployments.steps.utility.run_shell_script, prefect.projects.steps.utility.run_shell_script)"
    ]
    lines = stepengine("steps", "--short").stdout.splitlines()
    assert len(lines) == len({line.split("→")[1] for line in lines})  # one line per function


def test_short_json() -> None:
    (group,) = json.loads(stepengine("steps", "--short", "-o", "json", "pull_with_block").stdout)
    assert group == {
        "name": "pull_with_block",
        "target": "stepengine.builtin_steps.blocks:pull_with_block",
        "distribution": "stepengine",
        "aliases": [
            "prefect.deployments.steps.pull_with_block",
            "prefect.projects.steps.pull_with_block",
            "prefect.deployments.steps.pull.pull_with_block",
            "prefect.projects.steps.pull.pull_with_block",
        ],
    }


def test_no_match_says_so() -> None:
    result = stepengine("steps", "no-such-step-xyz")
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == "no installed step matches 'no-such-step-xyz'\n"
