"""Plan (issue 8): every step checked and templated with what is known before the run; nothing runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import stepengine
from stepengine.plan import plan
from stepengine.resolvers import InMemoryResolver

SECRET = "s3cr3t-plan-token"


def test_plan_runs_nothing(tmp_path: Path) -> None:
    """Neither a shell step that would create a file nor a Python step is run."""
    called: list[str] = []
    marker = tmp_path / "created"
    config = stepengine.loads(
        textwrap.dedent(
            f"""
            build:
              - prefect.deployments.steps.run_shell_script:
                  script: touch {marker}
              - record: {{}}
            finally:
              - record: {{}}
            """
        ),
        file="prefect.yaml",
    )
    result = plan(config, steps={"record": lambda: called.append("x")})
    assert [p.step.label for p in result.steps] == [
        "build[0] (run_shell_script)",
        "build[1] (record)",
        "finally[0] (record)",
    ]
    assert result.issues == []
    assert not marker.exists() and called == []


def test_plan_templates_inputs_masks_secrets_and_defers_outputs() -> None:
    config = stepengine.loads(
        textwrap.dedent(
            """
            pull:
              - prefect.deployments.steps.git_clone:
                  id: clone
                  repository: https://example.com/{{ prefect.variables.repo }}.git
                  branch: "{{ $BRANCH }}"
                  access_token: "{{ prefect.blocks.secret.gh-token }}"
              - prefect.deployments.steps.run_shell_script:
                  script: "cd {{ clone.directory }} && echo {{ directory }} {{ $BRANCH | upper }} {{ tag }}"
                  env: {TOKEN: "{{ prefect.blocks.secret.gh-token }}"}
            """
        ),
        file="prefect.yaml",
    )
    resolver = InMemoryResolver(blocks={"secret/gh-token": SECRET}, variables={"repo": "org/app"})
    result = plan(config, resolver=resolver, env={"BRANCH": "main"}, values={"tag": "v1"})
    assert [p.inputs for p in result.steps] == [
        {"repository": "https://example.com/org/app.git", "branch": "main", "access_token": "***"},
        {"script": "cd <from clone.directory> && echo <from directory> MAIN v1", "env": {"TOKEN": "***"}},
    ]
    assert SECRET not in repr(result)


def test_a_whole_value_from_an_earlier_step_keeps_its_marker() -> None:
    config = stepengine.loads(
        "pull:\n  - a: {id: a}\n  - b: {x: '{{ a.out }}', y: '{{ a.list[0] }}'}\n", file="p.yaml"
    )
    result = plan(config, steps={"a": lambda: {}, "b": lambda x, y: None})
    assert result.steps[1].inputs == {"x": "<from a.out>", "y": "<from a.list[0]>"}


def test_every_templating_problem_is_collected_with_its_location() -> None:
    config = stepengine.loads(
        textwrap.dedent(
            """
            pull:
              - step:
                  x: "{{ $MISSING_ONE }}"
                  y: "{{ prefect.blocks.secret.nope }}"
              - step:
                  x: "{{ $MISSING_TWO }}"
            """
        ),
        file="prefect.yaml",
    )
    result = plan(config, steps={"step": lambda x, y=None: None}, env={})
    assert [i.render() for i in result.issues] == [
        "prefect.yaml:4:7: pull[0] (step): environment variable 'MISSING_ONE' is not set\n"
        "hint: export MISSING_ONE=… before the run, or use {{ $MISSING_ONE | default('…') }}",
        "prefect.yaml:5:7: pull[0] (step): {{ prefect.blocks.secret.nope }} needs a block store, and none is "
        "configured\nhint: pass --values FILE (with a blocks: section) or a resolver to stepengine.run()",
        "prefect.yaml:7:7: pull[1] (step): environment variable 'MISSING_TWO' is not set\n"
        "hint: export MISSING_TWO=… before the run, or use {{ $MISSING_TWO | default('…') }}",
    ]
    assert result.steps[0].inputs == {"x": "<error: see below>", "y": "<error: see below>"}


def test_plan_raises_what_run_would_raise_before_starting() -> None:
    config = stepengine.loads("pull:\n  - nosuchstep_xyz: {}\n", file="p.yaml")
    with pytest.raises(stepengine.ValidationError) as info:
        plan(config)
    assert str(info.value).startswith("p.yaml:2:5: pull[0] (nosuchstep_xyz): ")


def test_if_is_decided_when_it_can_be() -> None:
    config = stepengine.loads(
        textwrap.dedent(
            """
            pull:
              - s: {id: a}
              - s: {if: "env.MODE == 'prod'"}
              - s: {if: "vars.branch == 'dev'"}
              - s: {if: "a.out is defined"}
              - s: {if: "steps.a.outcome == 'success'"}
            """
        ),
        file="p.yaml",
    )
    result = plan(config, steps={"s": lambda: {}}, env={"MODE": "prod"}, values={"branch": "main"})
    assert [p.condition for p in result.steps] == [None, True, False, None, True]


def test_plan_follows_from_step_and_only() -> None:
    config = stepengine.loads(
        "pull:\n  - s: {id: a}\n  - s: {id: b}\nfinally:\n  - s: {id: z}\n", file="p.yaml"
    )
    steps = {"s": lambda: {}}
    assert [p.step.id for p in plan(config, steps=steps, from_step="b").steps] == ["b", "z"]
    assert [p.step.id for p in plan(config, steps=steps, only="a").steps] == ["a"]


def test_to_dict_is_json_ready() -> None:
    import json

    config = stepengine.loads("pull:\n  - s: {id: a, x: 1, retries: 2, if: 'true'}\n", file="p.yaml")
    data = plan(config, steps={"s": lambda x: {}}).to_dict()
    assert json.loads(json.dumps(data)) == {
        "steps": [
            {
                "section": "pull",
                "index": 0,
                "function": "s",
                "location": "p.yaml:2:5",
                "inputs": {"x": 1},
                "id": "a",
                "controls": {"retries": 2, "if": "true"},
                "if_now": True,
            }
        ],
        "problems": [],
    }
