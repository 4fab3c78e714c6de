"""Control keys (issue 8): if, retries / retry_delay_seconds / retry_on, timeout_seconds,
continue_on_error, and the finally section — alone and combined, through the real runner."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stepengine
from stepengine.checks import select_steps
from stepengine.control import MAX_RETRY_DELAY, Controls, condition_source, retry_delay, should_retry
from stepengine.errors import StepTimeoutError, TemplateError
from stepengine.events import Event


class Recorder:
    """The steps of these tests: each call is recorded by name."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.failures_left = 0

    def steps(self) -> dict[str, object]:
        def ok(name: str = "ok", value: object = None) -> dict:
            self.calls.append(name)
            return {"name": name, "value": value}

        def boom(name: str = "boom", kind: str = "RuntimeError") -> None:
            self.calls.append(name)
            raise {
                "RuntimeError": RuntimeError,
                "KeyError": KeyError,
                "FileNotFoundError": FileNotFoundError,
            }[kind]("it broke")

        def flaky(name: str = "flaky", kind: str = "ValueError") -> dict:
            self.calls.append(name)
            if self.failures_left:
                self.failures_left -= 1
                raise {"ValueError": ValueError, "KeyError": KeyError}[kind]("not yet")
            return {"attempts": self.calls.count(name)}

        def sleepy(name: str = "sleepy", seconds: float = 30.0, only_first: bool = False) -> dict:
            self.calls.append(name)
            if not only_first or self.calls.count(name) == 1:
                time.sleep(seconds)
            return {"slept": True}

        async def async_sleepy(seconds: float = 30.0) -> dict:
            self.calls.append("async_sleepy")
            await asyncio.sleep(seconds)
            return {"slept": True}

        return {"ok": ok, "boom": boom, "flaky": flaky, "sleepy": sleepy, "async_sleepy": async_sleepy}


def run(text: str, rec: Recorder, **kwargs: object) -> tuple[dict, list[Event]]:
    events: list[Event] = []
    config = stepengine.loads(textwrap.dedent(text), file="prefect.yaml")
    try:
        outputs = stepengine.run(config, steps=rec.steps(), on_event=events.append, **kwargs)  # type: ignore[arg-type]
    except BaseException as exc:
        exc.events = events  # type: ignore[attr-defined]
        raise
    return outputs, events


def kinds(events: list[Event]) -> list[tuple[str, object]]:
    return [(e.kind, e.step_id) for e in events if e.kind.startswith("step.") and e.kind != "step.output"]


# -- if ----------------------------------------------------------------------------------------------


def test_false_if_skips_the_step_and_it_produces_no_outputs() -> None:
    rec = Recorder()
    outputs, events = run(
        """
        build:
          - ok: {id: a, name: a}
          - ok: {id: b, name: b, if: "a.name == 'x'"}
          - ok: {id: c, name: c, if: "{{ a.name == 'a' }}"}
        """,
        rec,
    )
    assert rec.calls == ["a", "c"]
    assert "b" not in outputs and outputs["c"]["name"] == "c"
    assert kinds(events) == [
        ("step.started", "a"),
        ("step.finished", "a"),
        ("step.skipped", "b"),
        ("step.started", "c"),
        ("step.finished", "c"),
    ]
    skipped = [e for e in events if e.kind == "step.skipped"][0]
    assert (skipped.message, skipped.outcome, skipped.line) == ("if: a.name == 'x'", "skipped", 4)


def test_if_sees_env_vars_and_outcomes() -> None:
    rec = Recorder()
    run(
        """
        build:
          - ok: {id: a, name: a, if: false}
          - ok: {name: env, if: "env.MODE == 'prod' and $MODE == 'prod'"}
          - ok: {name: var, if: "vars.branch == 'main'"}
          - ok: {name: outcome, if: "steps.a.outcome == 'skipped' and success()"}
          - ok: {name: undefined-test, if: "a is not defined"}
        """,
        rec,
        env={"MODE": "prod"},
        values={"branch": "main"},
    )
    assert rec.calls == ["env", "var", "outcome", "undefined-test"]


def test_vars_in_an_if_are_the_seed_values_and_in_a_template_every_name() -> None:
    """The one meaning each context gives ``vars`` (both built by ``stepengine._expressions.names``): in
    an ``if:`` the ``--var`` values only (README "Control keys"), so an output is not there; a
    ``{{ … }}`` expression cannot tell seed values from outputs, so there ``vars`` holds both."""
    rec = Recorder()
    outputs, _ = run(
        """
        build:
          - ok: {id: a, name: a}
          - ok: {name: seed, if: "vars.branch == 'main' and vars.a is not defined and a.name == 'a'"}
          - ok: {id: t, name: "{{ vars.a.name ~ '/' ~ vars.branch }}"}
        """,
        rec,
        values={"branch": "main"},
    )
    assert rec.calls == ["a", "seed", "a/main"]


def test_if_on_an_output_of_a_skipped_step_fails_with_a_hint() -> None:
    rec = Recorder()
    with pytest.raises(TemplateError) as info:
        run(
            """
            build:
              - ok: {id: a, name: a, if: false}
              - ok: {name: b, if: "a.name == 'a'"}
            """,
            rec,
        )
    assert str(info.value) == (
        "prefect.yaml:4:19: build[1] (ok): if: \"a.name == 'a'\": 'a' is undefined\n"
        "hint: a skipped or failed step has no outputs; test with 'is defined' or steps.<id>.outcome"
    )
    assert rec.calls == []


def test_invalid_control_keys_are_all_reported_before_anything_runs() -> None:
    rec = Recorder()
    # The schema catches types and ranges when loading…
    with pytest.raises(stepengine.ValidationError) as info:
        stepengine.loads("build:\n  - ok: {retries: -1, timeout_seconds: 0, retry_on: []}\n", file="p.yaml")
    assert str(info.value) == (
        "p.yaml:2:10: build[0] (ok): must be at least 0, got -1 (build[0].ok.retries)\n"
        "p.yaml:2:23: build[0] (ok): must be more than 0, got 0 (build[0].ok.timeout_seconds)\n"
        "p.yaml:2:43: build[0] (ok): must not be an empty list (build[0].ok.retry_on)"
    )
    # …and prepare compiles every `if` (and re-checks values given without a schema) up front.
    with pytest.raises(stepengine.ValidationError) as info:
        run(
            """
            build:
              - ok: {name: first}
              - ok: {if: "a =="}
            """,
            rec,
        )
    assert str(info.value) == (
        "prefect.yaml:4:10: build[1] (ok): if: 'a ==' is not a valid expression: "
        "unexpected 'end of template' (build[1].ok.if)"
    )
    assert rec.calls == []


def test_prepare_checks_control_values_given_without_a_schema() -> None:
    """Steps built by an embedder (no file, no schema) get the same checks."""
    from stepengine.config import Step
    from stepengine.registry import Registry
    from stepengine.runner import prepare

    step = Step(
        "build", 0, "ok", {}, controls={"retries": 1.5, "timeout_seconds": 0, "continue_on_error": "yes"}
    )
    with pytest.raises(stepengine.ValidationError) as info:
        prepare([step], Registry(Recorder().steps()))  # type: ignore[arg-type]
    assert [i.message for i in info.value.issues] == [
        "build[0] (ok): retries must be an integer >= 0, got 1.5",
        "build[0] (ok): timeout_seconds must be a number > 0, got 0",
        "build[0] (ok): continue_on_error must be true or false, got 'yes'",
    ]


def test_condition_source_strips_braces_and_reads_booleans() -> None:
    assert condition_source(True) == "true"
    assert condition_source(False) == "false"
    assert condition_source("{{ failure() }}") == "failure()"
    assert condition_source("  a.b == 1 ") == "a.b == 1"


# -- retries ---------------------------------------------------------------------------------------


def test_retries_run_a_failing_step_again_until_it_succeeds() -> None:
    rec = Recorder()
    rec.failures_left = 2
    outputs, events = run(
        """
        build:
          - flaky: {id: f, retries: 3, retry_delay_seconds: 0.001}
        """,
        rec,
    )
    assert outputs["f"] == {"attempts": 3}
    retrying = [e for e in events if e.kind == "step.retrying"]
    assert [(e.attempt, e.message) for e in retrying] == [
        (2, "ValueError: not yet"),
        (3, "ValueError: not yet"),
    ]
    assert all(0.0005 <= e.delay <= 0.004 for e in retrying)  # type: ignore[operator]
    finished = [e for e in events if e.kind == "step.finished"][0]
    assert (finished.attempt, finished.outcome) == (3, "success")


def test_retries_exhausted_raise_the_last_error() -> None:
    rec = Recorder()
    rec.failures_left = 5
    with pytest.raises(stepengine.StepExecutionError) as info:
        run("build:\n  - flaky: {retries: 2}\n", rec)
    assert str(info.value) == "prefect.yaml:2:5: build[0] (flaky) failed: ValueError: not yet"
    assert rec.calls == ["flaky"] * 3


def test_retry_on_filters_by_exception_class() -> None:
    rec = Recorder()
    rec.failures_left = 1
    with pytest.raises(stepengine.StepExecutionError):
        run("build:\n  - flaky: {retries: 3, retry_on: [KeyError]}\n", rec)
    assert rec.calls == ["flaky"]  # a ValueError is not retried

    rec = Recorder()
    rec.failures_left = 1
    outputs, _ = run("build:\n  - flaky: {id: f, kind: KeyError, retries: 3, retry_on: KeyError}\n", rec)
    assert outputs["f"] == {"attempts": 2}


def test_retry_on_matches_base_classes_and_qualified_names() -> None:
    assert should_retry(FileNotFoundError("x"), ["OSError"])
    assert should_retry(FileNotFoundError("x"), ["builtins.FileNotFoundError"])
    assert should_retry(StepTimeoutError(1), ["TimeoutError"])
    assert not should_retry(ValueError("x"), ["OSError"])
    assert not should_retry(KeyboardInterrupt(), [])
    assert should_retry(ValueError("x"), [])


@settings(max_examples=300, deadline=None)
@given(
    base=st.floats(min_value=0.001, max_value=1000),
    retry=st.integers(min_value=1, max_value=200),
    jitter=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_retry_delay_doubles_is_capped_and_jittered(base: float, retry: int, jitter: float) -> None:
    delay = retry_delay(base, retry, rng=lambda: jitter)
    full = min(base * 2 ** (retry - 1), max(base, MAX_RETRY_DELAY))
    assert full / 2 <= delay <= full
    assert delay <= max(base, MAX_RETRY_DELAY)


def test_retry_delay_zero_means_no_wait() -> None:
    assert retry_delay(0, 5) == 0.0


# -- timeout ---------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_timeout_stops_a_python_step_and_says_so() -> None:
    rec = Recorder()
    started = time.monotonic()
    with pytest.raises(stepengine.StepExecutionError) as info:
        run("build:\n  - sleepy: {timeout_seconds: 0.2}\n", rec)
    assert time.monotonic() - started < 5
    assert str(info.value) == (
        "prefect.yaml:2:5: build[0] (sleepy) failed: timed out after 0.2 s (timeout_seconds) and was "
        "stopped, with its child processes"
    )
    assert isinstance(info.value.__cause__, StepTimeoutError)


@pytest.mark.parametrize("thread", ["main", "worker"])
def test_timeout_kills_the_child_and_grandchild_processes(tmp_path: Path, thread: str) -> None:
    """The shell (child) starts `sleep` (grandchild) in the background: both die on timeout, in the
    main thread (SIGALRM) and in a worker thread (run_async: watchdog)."""
    pidfile = tmp_path / "pids"
    text = textwrap.dedent(
        f"""
        build:
          - prefect.deployments.steps.run_shell_script:
              script: bash -c 'sleep 300 & echo "$$ $!" > {pidfile}; wait'
              stream_output: false
              timeout_seconds: 0.5
        """
    )
    config = stepengine.loads(text, file="prefect.yaml")
    started = time.monotonic()
    with pytest.raises(stepengine.StepExecutionError) as info:
        if thread == "main":
            stepengine.run(config)
        else:
            asyncio.run(stepengine.run_async(config))
    assert time.monotonic() - started < 10
    assert "timed out after 0.5 s" in str(info.value)
    shell, grandchild = map(int, pidfile.read_text().split())
    assert _wait_dead(shell), "the child survived the timeout"
    assert _wait_dead(grandchild), "the grandchild survived the timeout"


def test_timeout_stops_an_async_step() -> None:
    rec = Recorder()
    with pytest.raises(stepengine.StepExecutionError) as info:
        run("build:\n  - async_sleepy: {timeout_seconds: 0.2}\n  - ok: {}\n", rec)
    assert "timed out after 0.2 s" in str(info.value)
    assert rec.calls == ["async_sleepy"]


def test_a_timed_out_attempt_is_retried() -> None:
    rec = Recorder()
    outputs, events = run(
        """
        build:
          - sleepy: {id: s, only_first: true, timeout_seconds: 0.2, retries: 1, retry_on: [TimeoutError]}
        """,
        rec,
    )
    assert outputs["s"] == {"slept": True} and rec.calls == ["sleepy", "sleepy"]
    (retrying,) = [e for e in events if e.kind == "step.retrying"]
    assert (
        retrying.message
        == "timed out after 0.2 s (timeout_seconds) and was stopped, with its child processes"
    )


def test_a_timeout_is_not_retried_when_retry_on_excludes_it() -> None:
    rec = Recorder()
    with pytest.raises(stepengine.StepExecutionError):
        run(
            "build:\n  - sleepy: {only_first: true, timeout_seconds: 0.2, retries: 2, retry_on: [KeyError]}\n",
            rec,
        )
    assert rec.calls == ["sleepy"]


# -- continue_on_error, failure(), always() ---------------------------------------------------------


def test_continue_on_error_goes_on_and_failure_becomes_true() -> None:
    rec = Recorder()
    outputs, events = run(
        """
        build:
          - boom: {id: b, continue_on_error: true}
          - ok: {name: default}
          - ok: {name: on-failure, if: "failure() and steps.b.outcome == 'failure'"}
          - ok: {name: on-success, if: success()}
        """,
        rec,
    )
    assert rec.calls == ["boom", "default", "on-failure"]
    failed = [e for e in events if e.kind == "step.failed"][0]
    assert (failed.step_id, failed.outcome) == ("b", "failure")
    assert events[-1].kind == "run.finished"


def test_after_a_failure_only_steps_that_ask_for_it_run() -> None:
    rec = Recorder()
    with pytest.raises(stepengine.StepExecutionError) as info:
        run(
            """
            build:
              - boom: {id: b}
              - ok: {name: default}
              - ok: {name: on-failure, if: failure()}
              - ok: {name: always, if: always()}
              - ok: {name: on-success, if: success()}
            """,
            rec,
        )
    assert rec.calls == ["boom", "on-failure", "always"]
    assert str(info.value) == "prefect.yaml:3:5: build[0] (b: boom) failed: RuntimeError: it broke"
    events = info.value.events  # type: ignore[attr-defined]
    assert events[-1].kind == "run.failed"
    # every step that did not run says so, and why
    skipped = [(e.index, e.message, e.outcome) for e in events if e.kind == "step.skipped"]
    assert skipped == [(1, "an earlier step failed", "skipped"), (4, "if: success()", "skipped")]


# -- finally -----------------------------------------------------------------------------------------


def test_finally_runs_after_success_and_after_failure() -> None:
    rec = Recorder()
    run("build:\n  - ok: {name: a}\nfinally:\n  - ok: {name: cleanup}\n", rec)
    assert rec.calls == ["a", "cleanup"]

    rec = Recorder()
    with pytest.raises(stepengine.StepExecutionError) as info:
        run(
            """
            build:
              - boom: {}
              - ok: {name: never}
            finally:
              - ok: {name: cleanup-1}
              - boom: {name: cleanup-fails}
              - ok: {name: cleanup-2}
            """,
            rec,
        )
    assert rec.calls == ["boom", "cleanup-1", "cleanup-fails", "cleanup-2"]
    assert "build[0] (boom) failed" in str(info.value)  # the first failure is the one reported


def test_a_failing_finally_step_fails_a_successful_run() -> None:
    rec = Recorder()
    with pytest.raises(stepengine.StepExecutionError) as info:
        run("build:\n  - ok: {}\nfinally:\n  - boom: {}\n", rec)
    assert str(info.value) == "prefect.yaml:4:5: finally[0] (boom) failed: RuntimeError: it broke"


def test_deployment_finally_replaces_the_top_level_one() -> None:
    rec = Recorder()
    text = """
    pull:
      - ok: {name: pull}
    finally:
      - ok: {name: top-cleanup}
    deployments:
      - name: d
        finally:
          - ok: {name: deployment-cleanup}
    """
    run(text, rec, deployment="d")
    assert rec.calls == ["pull", "deployment-cleanup"]
    rec.calls.clear()
    run(text, rec, sections=["pull"])
    assert rec.calls == ["pull", "top-cleanup"]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_finally_runs_on_sigint_and_the_run_exits_130(tmp_path: Path, signame: str) -> None:
    """A real Ctrl-C (SIGINT to the CLI process) or SIGTERM in the middle of a step: cleanup still runs."""
    import signal
    import subprocess

    marker = tmp_path / "cleaned"
    started = tmp_path / "started"
    (tmp_path / "prefect.yaml").write_text(
        textwrap.dedent(
            f"""
            build:
              - prefect.deployments.steps.run_shell_script:
                  script: bash -c 'echo $$ > {tmp_path / "pid"}; touch {started}; sleep 60'
              - prefect.deployments.steps.run_shell_script:
                  script: touch {tmp_path / "never"}
            finally:
              - prefect.deployments.steps.run_shell_script:
                  script: touch {marker}
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stepengine.cli import main; main()", "run", "prefect.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists()
        proc.send_signal(getattr(signal, signame))
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert _wait_dead(int((tmp_path / "pid").read_text())), "the interrupted step's process survived"
    assert marker.exists()
    assert not (tmp_path / "never").exists()
    assert stderr.rstrip().endswith("interrupted")


# -- resume / only -----------------------------------------------------------------------------------


def test_select_steps_from_step_and_only() -> None:
    config = stepengine.loads(
        "build:\n  - ok: {id: a}\n  - ok: {id: b}\n  - ok: {}\nfinally:\n  - ok: {id: z}\n", file="p.yaml"
    )
    all_steps = config.steps_for(None)
    label = lambda ss: [s.id or f"{s.section}[{s.index}]" for s in ss]  # noqa: E731
    assert label(select_steps(all_steps, from_step="b")) == ["b", "build[2]", "z"]
    assert label(select_steps(all_steps, from_step="build[2]")) == ["build[2]", "z"]
    assert label(select_steps(all_steps, only="b")) == ["b"]
    assert label(select_steps(all_steps)) == ["a", "b", "build[2]", "z"]
    with pytest.raises(stepengine.ConfigError) as info:
        select_steps(all_steps, only="c")
    assert str(info.value) == "no step 'c' in this run\nhint: steps: a, b, build[2], z"


def test_from_step_needs_the_earlier_outputs_and_takes_them_from_values() -> None:
    rec = Recorder()
    text = "build:\n  - ok: {id: a, name: a}\n  - ok: {id: b, name: '{{ a.name }}-b'}\n"
    with pytest.raises(stepengine.ValidationError) as info:
        run(text, rec, from_step="b")
    assert "refers to 'a', but no earlier step has that id" in str(info.value)
    outputs, _ = run(text, rec, from_step="b", values={"a": {"name": "saved"}})
    assert rec.calls == ["saved-b"] and outputs["b"]["name"] == "saved-b"


def test_controls_defaults() -> None:
    assert Controls.of({}) == Controls()
    assert Controls.of({"retry_on": "KeyError", "timeout_seconds": 2, "if": True}) == Controls(
        condition="true", retry_on=("KeyError",), timeout_seconds=2.0
    )


def test_outputs_collects_what_finished_even_when_the_run_fails() -> None:
    rec = Recorder()
    collected: dict = {}
    with pytest.raises(stepengine.StepExecutionError):
        run("build:\n  - ok: {id: a}\n  - boom: {}\n", rec, outputs=collected)
    assert collected["a"] == {"name": "ok", "value": None}


def test_schema_errors_in_finally_steps_name_the_step() -> None:
    with pytest.raises(stepengine.ValidationError) as info:
        stepengine.loads(
            "finally:\n  - a: {retries: -1}\ndeployments:\n  - name: d\n    finally:\n      - b: {timeout_seconds: 0}\n",
            file="p.yaml",
        )
    assert str(info.value) == (
        "p.yaml:2:9: finally[0] (a): must be at least 0, got -1 (finally[0].a.retries)\n"
        "p.yaml:6:13: deployment 'd' finally[0] (b): must be more than 0, got 0 "
        "(deployments[0].finally[0].b.timeout_seconds)"
    )


def test_timeout_with_continue_on_error_then_a_finally_step_that_checks_the_outcome() -> None:
    rec = Recorder()
    outputs, events = run(
        """
        build:
          - sleepy: {id: slow, timeout_seconds: 0.2, continue_on_error: true}
          - ok: {id: after, name: after}
        finally:
          - ok: {name: report-failure, if: "steps.slow.outcome == 'failure' and failure()"}
          - ok: {name: only-on-success, if: success()}
        """,
        rec,
    )
    assert rec.calls == ["sleepy", "after", "report-failure"]
    assert "slow" not in outputs and outputs["after"]["name"] == "after"
    failed = [e for e in events if e.kind == "step.failed"][0]
    assert failed.continued is True and "timed out after 0.2 s" in (failed.message or "")


def test_retries_with_continue_on_error_exhaust_then_go_on() -> None:
    rec = Recorder()
    rec.failures_left = 10
    outputs, events = run(
        "build:\n  - flaky: {id: f, retries: 2, continue_on_error: true}\n  - ok: {id: next}\n", rec
    )
    assert rec.calls == ["flaky", "flaky", "flaky", "ok"]
    assert [e.kind for e in events if e.step_id == "f"] == [
        "step.started",
        "step.retrying",
        "step.retrying",
        "step.failed",
    ]
    assert "next" in outputs


def test_the_composed_editor_schema_knows_the_control_keys() -> None:
    """`stepengine schema` (file schema + each step's signature) accepts control keys on any step."""
    import jsonschema

    from stepengine.registry import Registry
    from stepengine.schema import composed_schema

    def greet(name: str) -> dict:
        return {}

    validator = jsonschema.Draft202012Validator(composed_schema(Registry({"greet": greet})))
    good = {
        "build": [
            {
                "greet": {
                    "name": "x",
                    "if": "success()",
                    "retries": 2,
                    "retry_on": ["OSError"],
                    "retry_delay_seconds": 0.5,
                    "timeout_seconds": 3,
                    "continue_on_error": True,
                }
            }
        ],
        "finally": [{"greet": {"name": "bye"}}],
    }
    assert list(validator.iter_errors(good)) == []
    bad = {"build": [{"greet": {"name": "x", "retries": -1}}]}
    assert [e.message for e in validator.iter_errors(bad)] == ["-1 is less than the minimum of 0"]


def test_a_nested_run_keeps_the_outer_deadline() -> None:
    """A step that runs stepengine itself (both with timeouts) must not cancel the outer timer."""
    rec = Recorder()
    inner_steps = rec.steps()

    def nested() -> dict:
        stepengine.run(stepengine.loads("build:\n  - ok: {timeout_seconds: 5}\n"), steps=inner_steps)
        time.sleep(30)
        return {}

    started = time.monotonic()
    with pytest.raises(stepengine.StepExecutionError) as info:
        stepengine.run(
            stepengine.loads("build:\n  - nested: {timeout_seconds: 0.5}\n", file="p.yaml"),
            steps={"nested": nested},
        )
    assert time.monotonic() - started < 10
    assert "timed out after 0.5 s" in str(info.value)


def test_reserved_keys_and_the_schema_agree() -> None:
    """RESERVED_KEYS (config.py) is the one list; the file schema must describe exactly those keys."""
    from stepengine.config import CONTROL_KEYS, RESERVED_KEYS
    from stepengine.schema import file_schema

    described = set(file_schema()["$defs"]["stepArguments"]["properties"])
    assert described == set(RESERVED_KEYS) == {"id", "requires"} | CONTROL_KEYS


def test_infinite_or_nan_timeouts_and_delays_are_invalid_with_their_place(tmp_path: Path) -> None:
    """YAML's .inf and .nan are floats: a timeout that never fires, a delay that cannot be slept."""
    file = tmp_path / "prefect.yaml"
    file.write_text(
        "build:\n  - ok:\n      timeout_seconds: .inf\n      retries: 1\n      retry_delay_seconds: .nan\n"
        "  - ok:\n      retry_delay_seconds: .inf\n      retries: -1\n"
    )
    with pytest.raises(stepengine.ValidationError) as info:
        stepengine.validate(file, steps=Recorder().steps())  # type: ignore[arg-type]
    assert [(i.line, i.col, i.message) for i in info.value.issues] == [
        (3, 7, "build[0] (ok): timeout_seconds must be a finite number, got inf"),
        (5, 7, "build[0] (ok): retry_delay_seconds must be a finite number, got nan"),
        (7, 7, "build[1] (ok): retry_delay_seconds must be a finite number, got inf"),
        (8, 7, "build[1] (ok): must be at least 0, got -1"),  # the schema's word only, not twice
    ]
    assert info.value.exit_code == 2


def test_a_dollar_name_inside_a_quoted_string_stays_text() -> None:
    """`$NAME` is shorthand for env.NAME only outside string literals: '$HOME' is the text $HOME."""
    rec = Recorder()
    run(
        """
        build:
          - ok: {name: quoted, if: "'$HOME' == '$' ~ 'HOME'"}
          - ok: {name: mixed, if: "$MODE ~ ' costs $5 (not $MODE)' == 'prod costs $5 (not $MODE)'"}
          - ok: {name: double, if: "\\"$MODE\\" != $MODE"}
        """,
        rec,
        env={"MODE": "prod", "HOME": "/home/u"},
    )
    assert rec.calls == ["quoted", "mixed", "double"]
