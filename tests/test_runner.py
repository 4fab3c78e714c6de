"""The runner: everything checked before anything runs; Prefect's output rules; located failures."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import StepError, StepExecutionError, TemplateError, ValidationError
from stepengine.events import Event


def load(text: str) -> stepengine.Config:
    return stepengine.loads(textwrap.dedent(text), file="prefect.yaml")


def test_outputs_stored_under_id_and_merged_flat() -> None:
    config = load(
        """\
        pull:
          - produce:
              id: first
              value: 1
          - consume:
              id: second
              by_id: "{{ first.value }}"
              flat: "{{ value }}"
        """
    )
    seen = {}

    def consume(by_id: int, flat: int) -> dict:
        seen.update(by_id=by_id, flat=flat)
        return {"total": by_id + flat}

    outputs = stepengine.run(config, steps={"produce": lambda value: {"value": value}, "consume": consume})
    assert seen == {"by_id": 1, "flat": 1}
    assert outputs == {"value": 1, "first": {"value": 1}, "total": 2, "second": {"total": 2}}


def test_non_dict_result_is_ignored() -> None:
    config = load("pull:\n  - nothing:\n      id: n\n  - echo:\n      x: '{{ n.y }}'\n")
    with pytest.raises(TemplateError, match=r"\{\{ n.y \}\} refers to 'n', which no earlier step produced"):
        stepengine.run(config, steps={"nothing": lambda: 42, "echo": lambda x: {"x": x}})


def test_async_steps() -> None:
    async def fetch(n: int) -> dict:
        await asyncio.sleep(0)
        return {"n": n + 1}

    config = load("pull:\n  - fetch:\n      id: a\n      n: 1\n  - fetch:\n      n: '{{ a.n }}'\n")
    assert stepengine.run(config, steps={"fetch": fetch})["n"] == 3


def test_run_async_twin() -> None:
    config = load("pull:\n  - produce:\n      value: 5\n")
    outputs = asyncio.run(stepengine.run_async(config, steps={"produce": lambda value: {"value": value}}))
    assert outputs == {"value": 5}


def test_null_step_value_means_no_arguments() -> None:
    config = load("pull:\n  - ping:\n")
    assert stepengine.run(config, steps={"ping": lambda: {"pong": True}}) == {"pong": True}


def test_nothing_runs_when_any_step_is_invalid(tmp_path: Path) -> None:
    """Validation covers every step of the run up front: the first step must not run."""
    marker = tmp_path / "ran"
    config = load(
        """\
        pull:
          - touch:
              path: PATH
          - no.such.module.step:
              id: x
          - touch:
              pth: y
          - touch:
              path: "{{ clone.directory }}"
        """.replace("PATH", str(marker))
    )
    with pytest.raises(ValidationError) as info:
        stepengine.run(config, steps={"touch": lambda path: marker.touch()})
    assert not marker.exists()
    rendered = [issue.render() for issue in info.value.issues]
    assert rendered[0].startswith(
        "prefect.yaml:4:5: pull[1] (x: step): unknown step 'no.such.module.step': no entry point of that name "
        "and no module 'no.such.module'"
    )
    assert rendered[1:] == [
        "prefect.yaml:6:5: pull[2] (touch): missing required argument 'path' (pull[2].touch)",
        "prefect.yaml:7:7: pull[2] (touch): unknown argument 'pth' (did you mean 'path'?); it accepts: path "
        "(pull[2].touch.pth)",
        "prefect.yaml:9:7: pull[3] (touch): {{ clone.directory }} refers to 'clone', but no earlier step has "
        "that id (pull[3].touch.path)",
    ]


def test_literal_argument_types_are_checked() -> None:
    def typed(n: int, flag: bool = False, names: list[str] | None = None) -> None:
        pass

    config = load("pull:\n  - typed:\n      n: many\n      flag: 'yes'\n      names: [a, 1]\n")
    with pytest.raises(ValidationError) as info:
        stepengine.run(config, steps={"typed": typed})
    assert [i.message for i in info.value.issues] == [
        "pull[0] (typed): 'n' must be an integer, got str 'many'",
        "pull[0] (typed): 'flag' must be true or false, got str 'yes'",
        "pull[0] (typed): 'names' must be a list or null, got list ['a', 1]",
    ]


def test_templated_values_are_not_type_checked_statically() -> None:
    def typed(n: int) -> dict:
        return {"n": n}

    config = load("pull:\n  - typed:\n      n: '{{ start }}'\n")
    assert stepengine.run(config, steps={"typed": typed}, values={"start": 4}) == {"start": 4, "n": 4}


def test_failure_carries_the_step_and_the_cause() -> None:
    def boom() -> None:
        raise ValueError("disk on fire")

    config = load("pull:\n  - ok:\n  - boom:\n      id: b\n")
    with pytest.raises(StepExecutionError) as info:
        stepengine.run(config, steps={"ok": lambda: {}, "boom": boom})
    error = info.value
    assert (error.section, error.step_index, error.step_id, error.function) == ("pull", 1, "b", "boom")
    assert (error.file, error.line, error.col) == ("prefect.yaml", 3, 5)
    assert isinstance(error.__cause__, ValueError)
    assert str(error) == "prefect.yaml:3:5: pull[1] (b: boom) failed: ValueError: disk on fire"


def test_step_error_message_and_hint() -> None:
    def fails() -> None:
        raise StepError("the repository does not exist", hint="check the URL")

    with pytest.raises(StepExecutionError) as info:
        stepengine.run(load("pull:\n  - fails:\n"), steps={"fails": fails})
    assert str(info.value) == (
        "prefect.yaml:2:5: pull[0] (fails) failed: the repository does not exist\nhint: check the URL"
    )


def test_template_error_is_located_at_the_argument() -> None:
    config = load("pull:\n  - a:\n      id: first\n  - b:\n      x: 1\n      y: '{{ first.missing }}'\n")
    with pytest.raises(TemplateError) as info:
        stepengine.run(config, steps={"a": lambda: {"value": 1}, "b": lambda x, y: {}})
    assert str(info.value) == (
        "prefect.yaml:6:7: pull[1] (b): {{ first.missing }} cannot be resolved: 'first' has no 'missing'\n"
        "hint: first has: value"
    )
    assert info.value.exit_code == 2


def test_sections_run_in_order_and_share_outputs() -> None:
    config = load(
        """\
        pull:
          - record:
              what: "pull after {{ b.what }}"
        build:
          - record:
              id: b
              what: build
        push:
          - record:
              id: p
              what: push
        """
    )
    order = []

    def record(what: str) -> dict:
        order.append(what)
        return {"what": what}

    stepengine.run(config, steps={"record": record})
    assert order == ["build", "push", "pull after build"]
    order.clear()
    stepengine.run(config, sections=["push"], steps={"record": record})
    assert order == ["push"]


def test_deployment_overrides_follow_prefects_rule() -> None:
    """A section key in a deployment replaces the top-level one; `pull: []` means no pull steps."""
    config = load(
        """\
        pull:
          - record: {what: top}
        build:
          - record: {what: top-build}
        deployments:
          - name: empty
            pull: []
          - name: own
            pull:
              - record: {what: own}
          - name: inherit
            pull: null
        """
    )
    seen: list[str] = []
    steps = {"record": lambda what: seen.append(what)}
    stepengine.run(config, sections=["pull"], deployment="empty", steps=steps)
    assert seen == []
    stepengine.run(config, sections=["pull"], deployment="own", steps=steps)
    assert seen == ["own"]
    stepengine.run(config, sections=["pull"], deployment="inherit", steps=steps)
    assert seen == ["own", "top"]
    seen.clear()
    stepengine.run(config, deployment="own", steps=steps)
    assert seen == ["top-build", "own"]


def test_unknown_deployment() -> None:
    config = load("deployments:\n  - name: nightly\n")
    with pytest.raises(stepengine.ConfigError) as info:
        stepengine.run(config, deployment="nighty")
    assert str(info.value) == (
        "prefect.yaml: no deployment named 'nighty' (did you mean 'nightly'?)\nhint: deployments in this file: nightly"
    )


def test_events_in_order_with_raw_inputs_and_durations() -> None:
    events: list[Event] = []
    config = load("pull:\n  - a:\n      id: one\n      x: 1\n  - a:\n      x: '{{ one.x }}'\n")
    stepengine.run(config, steps={"a": lambda x: {"x": x}}, on_event=events.append)
    assert [e.kind for e in events] == [
        "run.started",
        "step.started",
        "step.finished",
        "step.started",
        "step.finished",
        "run.finished",
    ]
    assert events[3].inputs == {"x": "{{ one.x }}"}  # before templating
    assert (events[3].section, events[3].index, events[3].function, events[3].line) == ("pull", 1, "a", 5)
    assert all(e.duration is not None and e.duration >= 0 for e in events if e.kind.endswith("finished"))


def test_failed_event_and_run_failed() -> None:
    events: list[Event] = []

    def bad() -> None:
        raise RuntimeError("nope")

    with pytest.raises(StepExecutionError):
        stepengine.run(load("pull:\n  - bad:\n"), steps={"bad": bad}, on_event=events.append)
    assert [e.kind for e in events] == ["run.started", "step.started", "step.failed", "run.failed"]
    assert events[2].message == "prefect.yaml:2:5: pull[0] (bad) failed: RuntimeError: nope"


def test_secret_values_are_masked_in_events_and_errors() -> None:
    events: list[Event] = []

    def leak(token: str) -> None:
        raise RuntimeError(f"could not log in with {token}")

    resolver = stepengine.InMemoryResolver(blocks={"secret/tok": "hunter2-very-secret"})
    config = load("pull:\n  - leak:\n      token: '{{ prefect.blocks.secret.tok }}'\n")
    with pytest.raises(StepExecutionError) as info:
        stepengine.run(config, steps={"leak": leak}, resolver=resolver, on_event=events.append)
    assert "hunter2-very-secret" not in str(info.value)
    assert str(info.value).endswith("RuntimeError: could not log in with ***")
    assert all("hunter2-very-secret" not in repr(e) for e in events)


def test_vars_seed_the_namespace_and_count_as_known_references() -> None:
    config = load("pull:\n  - echo:\n      x: '{{ cfg.branch }}-{{ n }}'\n")
    outputs = stepengine.run(
        config, steps={"echo": lambda x: {"x": x}}, values={"cfg": {"branch": "main"}, "n": "1"}
    )
    assert outputs["x"] == "main-1"


def test_allow_missing_drops_unresolved_whole_values() -> None:
    seen = {}

    def capture(**kwargs: object) -> None:
        seen.update(kwargs)

    config = load(
        "pull:\n  - capture:\n      a: '{{ nope }}'\n      b: 'x{{ $NOT_SET_ANYWHERE }}'\n      c: 1\n"
    )
    stepengine.run(config, steps={"capture": capture}, allow_missing=True)
    assert seen == {"b": "x", "c": 1}


def test_validate_checks_every_deployment_without_running(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(
        "pull:\n  - set_working_directory:\n      directory: .\ndeployments:\n  - name: d\n    pull:\n      - nope_step:\n"
    )
    with pytest.raises(ValidationError) as info:
        stepengine.validate(path)
    assert len(info.value.issues) == 1
    assert info.value.issues[0].message.startswith("pull[0] (nope_step): unknown step 'nope_step'")
    assert os.getcwd() != str(tmp_path)
