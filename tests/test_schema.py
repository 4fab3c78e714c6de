"""Schema validation: every problem at once, each located and worded for the user."""

from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest

import stepengine
from stepengine.errors import ValidationError
from stepengine.schema import composed_schema, file_schema, schema_path


def _errors(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ValidationError) as info:
        stepengine.loads(textwrap.dedent(text), file="prefect.yaml", **kwargs)
    return [issue.render() for issue in info.value.issues]


def test_schema_is_valid_draft_2020_12() -> None:
    schema = file_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_all_errors_reported_at_once_with_positions() -> None:
    assert _errors(
        """\
        build:
          - prefect.deployments.steps.run_shell_script:
              id: a
            script: echo
        push: 5
        deployments:
          - name: d1
            schedules:
              - timezone: UTC
            pull: nope
          - name: [x]
        """
    ) == [
        "prefect.yaml:2:5: build[0]: a step must have exactly one key (its function name), found 2: "
        "prefect.deployments.steps.run_shell_script, script; indent the arguments under the function name (build[0])",
        "prefect.yaml:5:1: section 'push' must be a list of steps, got an integer (push)",
        "prefect.yaml:9:9: deployment 'd1': schedules[0] needs one of cron, interval or rrule, found none "
        "(deployments[0].schedules[0])",
        "prefect.yaml:10:5: section 'pull' must be a list of steps, got a string (deployments[0].pull)",
        "prefect.yaml:11:5: expected a string or null, got a list ['x'] (deployments[1].name)",
    ]


@pytest.mark.parametrize("section", ["[]", "{}", "null", "\n  run_shell_script:\n    script: echo hi"])
def test_section_forms_prefect_accepts(section: str) -> None:
    """A section may be a list, a single step mapping, {} or null — as in Prefect."""
    config = stepengine.loads(f"pull: {section}\n")
    steps = config.steps("pull")
    assert len(steps) == (1 if "script" in section else 0)


def test_step_arguments_must_be_a_mapping() -> None:
    assert _errors("pull:\n  - run_shell_script: [a, b]\n") == [
        "prefect.yaml:2:5: pull[0] (run_shell_script): the arguments of a step must be a mapping (or empty), "
        "got a list (pull[0].run_shell_script)"
    ]


def test_step_id_must_be_a_string() -> None:
    assert _errors("pull:\n  - run_shell_script:\n      id: [x]\n      script: a\n") == [
        "prefect.yaml:3:7: pull[0] (run_shell_script): expected a string, got a list ['x'] (pull[0].run_shell_script.id)"
    ]


def test_unknown_keys_warn_with_did_you_mean_and_fail_when_strict() -> None:
    text = "name: x\npul: []\ndeployments:\n  - name: d\n    work_pol: {}\n"
    config = stepengine.loads(text, file="prefect.yaml")
    assert config.warnings == (
        "warning: prefect.yaml:2:1: unknown top-level key 'pul' (did you mean 'pull'?) (pul)",
        "warning: prefect.yaml:5:5: deployment 'd': unknown key 'work_pol' (did you mean 'work_pool'?) "
        "(deployments[0].work_pol)",
    )
    assert _errors(text, strict=True) == [
        "prefect.yaml:2:1: unknown top-level key 'pul' (did you mean 'pull'?) (pul)",
        "prefect.yaml:5:5: deployment 'd': unknown key 'work_pol' (did you mean 'work_pool'?) (deployments[0].work_pol)",
    ]


def test_full_deployment_validates() -> None:
    config = stepengine.loads(
        textwrap.dedent(
            """\
            name: full
            prefect-version: 3.1.0
            deployments:
              - name: nightly
                version: "1.2"
                tags: [a, b]
                description: d
                entrypoint: flows.py:main
                flow_name: main
                parameters: {n: 1}
                enforce_parameter_schema: true
                paused: false
                concurrency_limit: {limit: 2, collision_strategy: CANCEL_NEW}
                work_pool: {name: pool, work_queue_name: q, job_variables: {image: x}}
                schedules:
                  - cron: "0 0 * * *"
                    timezone: Europe/Paris
                    active: true
                  - interval: 3600
                    anchor_date: "2026-01-01T00:00:00"
                  - rrule: "FREQ=DAILY"
                triggers: []
                pull: []
            """
        )
    )
    assert config.deployment("nightly").sections == {"pull": ()}
    assert config.warnings == ()


def test_composed_schema_has_step_argument_schemas() -> None:
    """`stepengine schema` composes each installed step's argument schema (from its signature) in."""
    schema = composed_schema()
    shell = schema["$defs"]["stepsByName"]["prefect.deployments.steps.run_shell_script"]
    assert shell["required"] == ["script"]
    assert shell["additionalProperties"] is False
    assert shell["properties"]["stream_output"] == {"type": "boolean", "default": True}
    assert shell["properties"]["env"] == {  # a union is an anyOf, as in Prefect's parameter schemas
        "anyOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "null"}],
        "default": None,
    }
    assert schema["$defs"]["step"]["properties"]["run_shell_script"] == {
        "$ref": "#/$defs/stepsByName/run_shell_script"
    }
    validator = jsonschema.Draft202012Validator(schema)
    bad = {"pull": [{"run_shell_script": {"scrpt": "x"}}]}
    assert not validator.is_valid(bad)
    assert validator.is_valid({"pull": [{"run_shell_script": {"script": "x"}}]})


def test_schema_file_is_shipped_with_the_package() -> None:
    assert json.load(open(schema_path()))["title"] == "prefect.yaml"
