"""What only some Prefect versions accept is a warning naming the versions that refuse it (issue 13).

The facts come from reading each release's ``prefect deploy`` (see ``stepengine/prefect_versions.py``
and the README's version table); ``tests/compat/`` runs Prefect's own ``prefect init`` output.
"""

from __future__ import annotations

import re
import textwrap

import pytest

import stepengine
from stepengine.errors import ValidationError


def _warnings(text: str) -> list[str]:
    config = stepengine.loads(textwrap.dedent(text), file="prefect.yaml")
    return list(config.warnings)


def _errors(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ValidationError) as info:
        stepengine.loads(textwrap.dedent(text), file="prefect.yaml", **kwargs)
    return [issue.render() for issue in info.value.issues]


def test_prefect_init_local_recipe_loads_without_a_word() -> None:
    """What `prefect init --recipe local` (3.9) writes: `name: null` and `schedule: {}`."""
    config = stepengine.loads(
        textwrap.dedent(
            """\
            name: project
            prefect-version: 3.9.1
            build: null
            push: null
            pull:
            - prefect.deployments.steps.set_working_directory:
                directory: /tmp/project
            deployments:
            - name: null
              version: null
              tags: []
              description: null
              schedule: {}
              flow_name: null
              entrypoint: null
              parameters: {}
              work_pool:
                name: null
                work_queue_name: null
                job_variables: {}
            """
        ),
        file="prefect.yaml",
    )
    assert config.warnings == ()
    assert [d.name for d in config.deployments] == [None]
    assert stepengine.validate(config) == []


def test_an_unnamed_deployments_own_steps_are_validated() -> None:
    text = "deployments:\n  - name: null\n    pull:\n      - no_such_step_anywhere: {}\n"
    with pytest.raises(ValidationError) as info:
        stepengine.validate(stepengine.loads(text, file="prefect.yaml"))
    assert "no_such_step_anywhere" in info.value.issues[0].render()


LEGACY = """\
deployments:
  - name: nightly
    schedule:
      cron: "0 0 * * *"
      max_active_runs: 3
      catchup: true
"""


def test_legacy_schedule_keys_warn_naming_the_refusing_version_and_fail_when_strict() -> None:
    assert _warnings(LEGACY) == [
        "warning: prefect.yaml:5:7: deployment 'nightly': schedule: 'max_active_runs' (read only by Prefect 3.0; "
        "2.x and 3.1–3.4.20 ignore it), 'catchup' (read only by Prefect 3.0; 2.x and 3.1–3.4.20 ignore it): "
        "Prefect 3.4.21 and later refuse it (and skip every deployment of the file) "
        "(deployments[0].schedule.max_active_runs)",
    ]
    assert [e.split(": ", 1)[0] for e in _errors(LEGACY, strict=True)] == ["prefect.yaml:5:7"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "deployments:\n  - name: d\n    parameters: null\n",
            "prefect.yaml:3:5: deployment 'd': 'parameters: null': Prefect 3.4.19 and later refuse it",
        ),
        (
            "deployments:\n  - name: d\n    work_pool: {name: p, job_variables: null}\n",
            "prefect.yaml:3:26: deployment 'd': 'job_variables: null': Prefect 3.4.19 and later refuse it",
        ),
        ("deployments: null\n", "prefect.yaml:1:1: 'deployments: null': Prefect 3.4.19 and later refuse it"),
        (
            "prefect-version: 3.1\n",
            "prefect.yaml:1:1: 'prefect-version' is a number: Prefect 3.4.19 and later",
        ),
        (
            "deployments:\n  - name: d\n    version: 2\n",
            "prefect.yaml:3:5: deployment 'd': 'version' is a number: Prefect 3.0 and later refuse it",
        ),
        (
            "deployments:\n  - name: d\n    description: 2024\n",
            "prefect.yaml:3:5: deployment 'd': 'description' is a number: Prefect 3.4.19 and later refuse it",
        ),
        ("pull:\n  - null\n", "prefect.yaml:2:5: pull[0] is null: Prefect 3.4.19 and later refuse it"),
        (
            "deployments:\n  - name: d\n    work_pool: null\n",
            "prefect.yaml:3:5: deployment 'd': 'work_pool: null': Prefect before 3.4.19 refuses it",
        ),
        (
            "deployments:\n  - name: d\n    schedule: [{cron: '0 0 * * *'}]\n",
            "prefect.yaml:3:5: deployment 'd': 'schedule' is a list: Prefect 3.4.19 and later refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedule: {timezone: UTC}\n",
            "prefect.yaml:3:5: deployment 'd': schedule names none of cron, interval or rrule: Prefect 2.16.1 and "
            "later refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedule: {cron: '0 0 * * *', interval: 60}\n",
            "prefect.yaml:3:5: deployment 'd': schedule names 2 kinds (cron, interval): Prefect 2.10–2.16.0 and "
            "3.4.21 and later refuse it; Prefect 2.16.1–3.4.20 use only 'cron'",
        ),
        (
            "deployments:\n  - name: d\n    schedule: {cron: '0 0 * * *'}\n    schedules: []\n",
            "prefect.yaml:3:5: deployment 'd': both 'schedule' and 'schedules': Prefect 2.16.1 and later refuse",
        ),
        (
            "deployments:\n  - name: d\n    schedules: [{cron: '0 0 * * *', tz: UTC}]\n",
            "prefect.yaml:3:37: deployment 'd': schedules[0]: unknown key 'tz': Prefect 3.4.21 and later refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedules: [{cron: '0 0 * * *', day_or: false, slug: s}]\n",
            "prefect.yaml:3:37: deployment 'd': schedules[0]: 'day_or': Prefect 3.4.21–3.4.22 refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedules: [{cron: '0 0 * * *', replaces: old}]\n",
            "prefect.yaml:3:37: deployment 'd': schedules[0]: 'replaces': Prefect 3.4.21–3.6.16 refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedules: [{interval: '3600'}]\n",
            "prefect.yaml:3:18: deployment 'd': schedules[0]: interval '3600' (text, not seconds): Prefect before 3.4.19 "
            "and 3.6.11 and later refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedules: [{interval: '{{ build.seconds }}'}]\n",
            "prefect.yaml:3:18: deployment 'd': schedules[0]: interval '{{ build.seconds }}': Prefect before 3.1.15 "
            "and 3.4.21 and later refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedules: [{interval: PT1H}]\n",
            "prefect.yaml:3:18: deployment 'd': schedules[0]: interval 'PT1H' (text, not seconds): Prefect before "
            "3.4.19 refuse it",
        ),
        (
            "deployments:\n  - name: d\n    schedule: {cron: '0 0 * * *', anchor_date: '2024-01-01'}\n",
            "prefect.yaml:3:35: deployment 'd': schedule: 'anchor_date' without 'interval': Prefect 2.10–2.16.0 refuse",
        ),
    ],
)
def test_values_some_versions_refuse_are_warnings(text: str, expected: str) -> None:
    warnings = _warnings(text)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("warning: " + expected)
    assert len(_errors(text, strict=True)) == 1


def test_empty_step_items_are_skipped_as_prefect_skips_them() -> None:
    config = stepengine.loads("pull:\n  - {}\n  - null\n  - run_shell_script: {script: echo}\n")
    assert [(s.index, s.function) for s in config.steps("pull")] == [(2, "run_shell_script")]


@pytest.mark.parametrize(
    "text",
    [
        "deployments:\n  - name: d\n    schedules: [{}]\n",
        "deployments:\n  - name: d\n    schedules: [{interval: every hour}]\n",
    ],
)
def test_what_no_version_accepts_is_an_error(text: str) -> None:
    assert len(_errors(text)) == 1


def test_everything_every_version_accepts_is_silent() -> None:
    assert (
        _warnings(
            """\
        name: p
        prefect-version: "2.10.21"
        pull: {}
        build: null
        deployments:
          - name: a
            version: null
            tags: null
            parameters: {}
          - name: c
            tags: [prod, 2024]
            schedule: null
            schedules: null
            concurrency_limit: 2
            triggers: []
            enforce_parameter_schema: true
            paused: false
            work_pool: {name: p, job_variables: {}}
          - name: b
            schedule: {}
            concurrency_limit: {limit: 1, collision_strategy: ENQUEUE, grace_period_seconds: 30}
            sla: []
            version_type: vcs:git
            schedules:
              - cron: "0 * * * *"
                day_or: false
                timezone: UTC
              - cron: "0 * * * *"
                timezone: UTC
                active: "{{ prefect.variables.active }}"
                parameters: {n: 1}
                slug: hourly
              - interval: 3600
                anchor_date: "2024-01-01T00:00:00"
              - rrule: FREQ=DAILY
        """
        )
        == []
    )


# Bad files whose every message must be worded for a person: no schema dumps.
BAD_FILES = [
    "build: 5\n",
    "pull: [5]\n",
    "pull: [{a: 1, b: 2}]\n",
    "pull: [{run_shell_script: [x]}]\n",
    "pull: [{run_shell_script: {id: ''}}]\n",
    "pull: [{run_shell_script: {id: 3, requires: {x: 1}}}]\n",
    "pull: [{run_shell_script: {retries: -1, timeout_seconds: 0, retry_on: [], continue_on_error: x, if: []}}]\n",
    "deployments: {a: 1}\n",
    "deployments: [5, null, []]\n",
    "deployments: [{name: '', tags: [[1]], parameters: [], work_pool: 5}]\n",
    "deployments: [{name: d, concurrency_limit: {collision_strategy: NOPE}}]\n",
    "deployments: [{name: d, concurrency_limit: -1}]\n",
    "deployments: [{name: d, concurrency_limit: 'x'}]\n",
    "deployments: [{name: d, schedule: cron}]\n",
    "deployments: [{name: d, schedules: [{cron: 5, interval: [1], rrule: {}, timezone: 1}]}]\n",
    "deployments: [{name: d, schedules: {cron: x}, triggers: {}, sla: 1, paused: maybe}]\n",
    "deployments: [{name: d, pull: [{run_shell_script: {script: x}, extra: 1}], build: 'x'}]\n",
    "deployments: [{name: d, work_pool: {name: [1], job_variables: []}}]\n",
    "name: [1]\nprefect-version: {}\n",
]

_DUMP = re.compile(
    r"\{'(anyOf|oneOf|allOf|type|properties|required|\$ref)'|is not valid under any of the given schemas"
    r"|is not of type|Failed validating|On instance|\$defs|additionalProperties|is too short|is a required property"
)


@pytest.mark.parametrize("text", BAD_FILES)
def test_every_schema_message_is_worded_for_a_person(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        stepengine.loads(text, file="prefect.yaml")
    issues = info.value.issues + info.value.warnings
    assert issues
    for issue in issues:
        rendered = issue.render()
        assert not _DUMP.search(rendered), rendered
        assert rendered.startswith(("prefect.yaml:", "warning: prefect.yaml:")), rendered
