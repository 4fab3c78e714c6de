"""Events and how the CLI shows them (issue 8): the JSON stream and its schema, GitHub Actions
annotations, rich progress on a terminal, and no secret in any of them."""

from __future__ import annotations

import functools
import io
import json
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepengine.cli._output import EventPrinter, JsonPrinter, RichProgress, make_printer
from stepengine.events import KINDS, Event

ROOT = Path(__file__).resolve().parents[1]
SECRET = "evt-s3cr3t-9f8e7d"


def _schema() -> dict:
    return json.loads((ROOT / "schemas" / "events.schema.json").read_text())


@functools.lru_cache(maxsize=1)
def _validator():  # type: ignore[no-untyped-def]
    import jsonschema

    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _project(tmp_path: Path) -> None:
    """Every kind of step event: output, retrying, a continued failure, skipped, finally, a hard failure."""
    (tmp_path / "prefect.yaml").write_text(
        textwrap.dedent(
            f"""
            unknown_top_level_key: 1
            build:
              - prefect.deployments.steps.run_shell_script:
                  id: hello
                  script: echo token={{{{ prefect.blocks.secret.token }}}}
              - prefect.deployments.steps.run_shell_script:
                  script: bash -c 'test -e {tmp_path}/flag || {{ touch {tmp_path}/flag; exit 1; }}'
                  retries: 1
                  retry_delay_seconds: 0.01
              - prefect.deployments.steps.run_shell_script:
                  script: bash -c 'echo {SECRET} >&2; exit 3'
                  continue_on_error: true
              - prefect.deployments.steps.run_shell_script:
                  script: echo never
                  if: success()
              - prefect.deployments.steps.run_shell_script:
                  script: "false"
            finally:
              - prefect.deployments.steps.run_shell_script:
                  script: echo cleanup
            """
        )
    )
    (tmp_path / "values.yaml").write_text(f"blocks:\n  secret:\n    token: {SECRET}\n")


def _run(
    tmp_path: Path, *args: str, env: dict | None = None, merged: bool = False
) -> subprocess.CompletedProcess[str]:
    """``merged``: stdout and stderr into one pipe (as a CI log shows them), in ``.stdout``."""
    base = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "stepengine", "run", "--values", "values.yaml", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**base, **(env or {})},
        timeout=60,
    )


def test_json_event_stream_validates_against_its_schema_and_masks_secrets(tmp_path: Path) -> None:
    _project(tmp_path)
    result = _run(tmp_path, "--log-format", "json")
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    validator = _validator()
    for event in events:
        validator.validate(event)
    assert [(e["kind"], e.get("section"), e.get("index")) for e in events if e["kind"] != "step.output"] == [
        ("warning", None, None),
        ("run.started", None, None),
        ("step.started", "build", 0),
        ("step.finished", "build", 0),
        ("step.started", "build", 1),
        ("step.retrying", "build", 1),
        ("step.finished", "build", 1),
        ("step.started", "build", 2),
        ("step.failed", "build", 2),
        ("step.skipped", "build", 3),
        ("step.started", "build", 4),
        ("step.failed", "build", 4),
        ("step.started", "finally", 0),
        ("step.finished", "finally", 0),
        ("run.failed", None, None),
    ]
    outputs = [(e["index"], e["stream"], e["message"]) for e in events if e["kind"] == "step.output"]
    assert (0, "stdout", "token=***") in outputs and (2, "stderr", "***") in outputs
    by_kind = {(e["kind"], e.get("index")): e for e in events if e.get("section") != "finally"}
    started = by_kind["step.started", 0]
    assert started["inputs"] == {"script": "echo token={{ prefect.blocks.secret.token }}"}
    assert (started["file"], started["line"], started["step_id"]) == ("prefect.yaml", 4, "hello")
    assert (by_kind["step.failed", 2]["outcome"], by_kind["step.failed", 2]["continued"]) == ("failure", True)
    assert "continued" not in by_kind["step.failed", 4]
    assert by_kind["step.retrying", 1]["attempt"] == 2 and by_kind["step.finished", 1]["attempt"] == 2
    assert by_kind["step.skipped", 3]["message"] == "if: success()"


def test_json_mode_reports_a_config_error_as_one_json_line(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "build:\n  - prefect.deployments.steps.run_shell_script: {retries: x}\n"
    )
    (tmp_path / "values.yaml").write_text("{}\n")
    result = _run(tmp_path, "--log-format", "json")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    event = json.loads(line)
    _validator().validate(event)
    assert event["kind"] == "run.failed"
    # every problem at once: the schema's (retries) and the step's (no script), in file order
    assert event["message"].splitlines()[1].startswith("prefect.yaml:2:50: build[0] (run_shell_script): ")
    assert "missing required argument 'script'" in event["message"].splitlines()[0]


def test_plain_text_mode_and_save_outputs_never_show_the_secret(tmp_path: Path) -> None:
    _project(tmp_path)
    result = _run(tmp_path, "--save-outputs", "out.json", "-v")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert SECRET not in text
    assert "> Skipped run_shell_script step (if: success())" in text
    assert "> Retrying run_shell_script step (attempt 2 in 0.0" in text
    assert "failed, continuing (continue_on_error)" in text
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["hello"] == {"stdout": "token=***", "stderr": ""}  # written although the run failed
    assert SECRET not in (tmp_path / "out.json").read_text()


def test_resume_from_saved_outputs(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "build:\n"
        "  - prefect.deployments.steps.run_shell_script: {id: a, script: echo first}\n"
        "  - prefect.deployments.steps.run_shell_script: {id: b, script: 'echo got {{ a.stdout }}'}\n"
    )
    (tmp_path / "values.yaml").write_text("{}\n")
    assert _run(tmp_path, "--only", "a", "--save-outputs", "out.json").returncode == 0
    result = _run(tmp_path, "--from-step", "b", "--load-outputs", "out.json", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["b"]["stdout"] == "got first"
    assert result.stderr.splitlines()[:2] == ["> Running run_shell_script step...", "got first"]


def test_github_actions_groups_output_and_annotates_failures(tmp_path: Path) -> None:
    _project(tmp_path)
    result = _run(
        tmp_path, env={"GITHUB_ACTIONS": "true"}, merged=True
    )  # the output (stdout) inside its group
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert SECRET not in result.stdout
    assert lines[1:5] == [
        "::group::build[0] (hello: run_shell_script)",
        "> Running run_shell_script step...",
        "token=***",
        "::endgroup::",
    ]
    errors = [line for line in lines if line.startswith("::error ")]
    assert errors == [
        "::error file=prefect.yaml,line=11,title=build[2] (run_shell_script) failed::prefect.yaml:11:5: build[2] "
        "(run_shell_script) failed: command `bash -c 'echo *** >&2; exit 3'` exited with code 3:%0A    ***",
        "::error file=prefect.yaml,line=17,title=build[4] (run_shell_script) failed::prefect.yaml:17:5: build[4] "
        "(run_shell_script) failed: command `false` exited with code 1",
    ]
    assert lines.count("::endgroup::") == lines.count("::group::build[0] (hello: run_shell_script)") + 4


def test_github_escaping_of_messages_and_properties() -> None:
    stream = io.StringIO()
    printer = EventPrinter(github=True, stream=stream)
    printer(
        Event(
            "step.failed",
            0.0,
            section="pull",
            index=0,
            function="a.b",
            file="dir,x:y.yaml",
            line=3,
            message="100% broken\r\nnext line",
            outcome="failure",
        )
    )
    assert stream.getvalue() == (
        "::error file=dir%2Cx%3Ay.yaml,line=3,title=pull[0] (b) failed::100%25 broken%0D%0Anext line\n"
    )


_values = st.one_of(st.none(), st.text(max_size=10), st.integers(min_value=0, max_value=10**6))


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS - {"log"})),
    message=st.text(max_size=40),
    duration=st.floats(min_value=0, max_value=1e6),
    inputs=st.dictionaries(
        st.text(max_size=8),
        st.recursive(_values, lambda c: st.lists(c, max_size=3), max_leaves=5),
        max_size=4,
    ),
    attempt=st.integers(min_value=1, max_value=100),
)
def test_every_event_the_runner_can_make_fits_the_schema(
    kind: str, message: str, duration: float, inputs: dict, attempt: int
) -> None:
    """Fields as the runner fills them for each kind (see runner.py), with arbitrary values."""
    step = (
        dict(section="pull", index=0, function="f", file="p.yaml", line=1) if kind.startswith("step.") else {}
    )
    extra: dict = {}
    if kind == "step.started":
        extra = {"inputs": inputs}
    elif kind in ("step.finished", "step.failed"):
        extra = {
            "duration": duration,
            "outcome": "success" if kind == "step.finished" else "failure",
            "attempt": attempt,
        }
    elif kind == "step.skipped":
        extra = {"outcome": "skipped", "message": message}
    elif kind == "step.retrying":
        extra = {"attempt": attempt, "delay": duration, "message": message}
    elif kind == "step.output":
        extra = {"message": message, "stream": "stderr"}
    elif kind in ("run.finished", "run.failed"):
        extra = {"duration": duration, **({"message": message} if kind == "run.failed" else {})}
    elif kind == "warning":
        extra = {"message": message}
    event = Event(kind, 1.5, **step, **extra)  # type: ignore[arg-type]
    line = event.to_json()
    assert "\n" not in line
    _validator().validate(json.loads(line))


def test_json_log_records_fit_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from stepengine.cli._output import configure_logging

    configure_logging(log_format="json")
    try:
        logging.getLogger("stepengine.steps.x").warning("careful: %s", "this")
    finally:
        configure_logging()
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    _validator().validate(record)
    assert (record["kind"], record["level"], record["logger"], record["message"]) == (
        "log",
        "warning",
        "stepengine.steps.x",
        "careful: this",
    )


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_printer_picks_by_format_terminal_and_environment() -> None:
    assert isinstance(make_printer(log_format="json", stream=_Tty(), environ={}), JsonPrinter)
    assert isinstance(make_printer(stream=_Tty(), environ={"TERM": "xterm"}), RichProgress)
    plain = make_printer(stream=io.StringIO(), environ={})
    assert type(plain) is EventPrinter and not plain.github
    github = make_printer(stream=_Tty(), environ={"GITHUB_ACTIONS": "true"})
    assert type(github) is EventPrinter and github.github
    assert type(make_printer(stream=_Tty(), environ={"TERM": "dumb"})) is EventPrinter
    assert type(make_printer(quiet=True, stream=_Tty(), environ={})) is EventPrinter


def _events() -> list[Event]:
    base = dict(section="build", function="pkg.steps.do_it", file="p.yaml", line=2)
    return [
        Event("run.started", 0.0),
        Event("step.started", 0.0, index=0, step_id="a", inputs={}, **base),  # type: ignore[arg-type]
        Event(
            "step.output",
            0.0,
            index=0,
            step_id="a",
            message="[bold]not markup[/bold]",
            stream="stdout",
            **base,
        ),  # type: ignore[arg-type]
        Event("step.retrying", 0.0, index=0, step_id="a", attempt=2, delay=0.5, message="flaky", **base),  # type: ignore[arg-type]
        Event(
            "step.finished", 0.0, index=0, step_id="a", duration=1.25, attempt=2, outcome="success", **base
        ),  # type: ignore[arg-type]
        Event("step.skipped", 0.0, index=1, message="if: false", outcome="skipped", **base),  # type: ignore[arg-type]
        Event("step.started", 0.0, index=2, inputs={}, **base),  # type: ignore[arg-type]
        Event("step.failed", 0.0, index=2, duration=0.5, message="boom", outcome="failure", **base),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("no_color", [False, True])
def test_rich_progress_ends_with_a_table_of_timings_and_outcomes(no_color: bool) -> None:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, no_color=no_color, color_system="standard")
    with RichProgress(console=console) as progress:
        for event in _events():
            progress(event)
    text = out.getvalue()
    assert "[bold]not markup[/bold]" in text  # step output is printed literally
    table = text[text.index("steps") :]
    for expected in (
        "build[0] (a: do_it)",
        "✓ success",
        "2",
        "1.25 s",
        "build[1] (do_it)",
        "↷ skipped",
        "build[2] (do_it)",
        "✗ failure",
        "0.50 s",
    ):
        assert expected in table
    colors = "\x1b[32m" in text or "\x1b[31m" in text
    assert colors is not no_color
    assert progress.finished == 1


def _pty_run(args: list[str], cwd: Path, env: dict) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_live_progress_and_a_final_table_without_secrets(tmp_path: Path) -> None:
    _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    env.update(TERM="xterm", COLUMNS="120", NO_COLOR="1")
    code, text = _pty_run(
        [sys.executable, "-m", "stepengine", "run", "--values", "values.yaml"], tmp_path, env
    )
    assert code == 1
    assert SECRET not in text
    assert "┏" in text and "outcome" in text and "✓ success" in text and "✗ failure" in text
    assert "↷ skipped" in text and "token=***" in text
    assert "\x1b[32m" not in text and "\x1b[31m" not in text  # NO_COLOR: no colours


def test_importing_the_cli_does_not_import_rich() -> None:
    code = "import sys, stepengine.cli, stepengine.cli._output, stepengine.cli.plan; print('rich' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_without_rich_a_terminal_gets_plain_lines(tmp_path: Path) -> None:
    """rich is an optional extra: with it unimportable (sys.modules['rich'] = None), plain lines."""
    (tmp_path / "prefect.yaml").write_text(
        "build:\n  - prefect.deployments.steps.run_shell_script: {script: echo hi}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    env["TERM"] = "xterm"
    code = "import sys; sys.modules['rich'] = None; from stepengine.cli import main; main()"
    status, text = _pty_run([sys.executable, "-c", code, "run"], tmp_path, env)
    assert status == 0, text
    lines = text.replace("\r\n", "\n").splitlines()
    assert lines[:2] == ["> Running run_shell_script step...", "hi"]
    assert lines[2].startswith("ok: 1 step in ")


def test_the_last_line_counts_skipped_steps_and_continued_failures(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "build:\n"
        "  - prefect.deployments.steps.run_shell_script: {script: 'false', continue_on_error: true}\n"
        "  - prefect.deployments.steps.run_shell_script: {script: echo x, if: 'success()'}\n"
        "  - prefect.deployments.steps.run_shell_script: {script: echo y}\n"
    )
    (tmp_path / "values.yaml").write_text("{}\n")
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    last = result.stderr.splitlines()[-1]
    # every step is counted (issue 15: "ok: 1 step" for three steps)
    assert last.startswith("ok: 3 steps in ") and last.endswith(
        " s (1 succeeded, 1 skipped, 1 failed and continued)"
    )
    assert result.stdout == "y\n"  # the steps' output on stdout, as Prefect prints it


def test_resume_with_a_dotted_var_for_an_earlier_output(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "build:\n"
        "  - prefect.deployments.steps.run_shell_script: {id: a, script: echo first}\n"
        "  - prefect.deployments.steps.run_shell_script: {id: b, script: 'echo got {{ a.stdout }}'}\n"
    )
    (tmp_path / "values.yaml").write_text("{}\n")
    result = _run(tmp_path, "--from-step", "b", "--var", "a.stdout=given", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["b"]["stdout"] == "got given"


def test_verbose_rich_progress_shows_inputs_as_written() -> None:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, no_color=True)
    with RichProgress(console=console, verbose=True) as progress:
        progress(Event("step.started", 0.0, section="pull", index=0, function="f", inputs={"x": "{{ a.b }}"}))
        progress(
            Event(
                "step.finished", 0.0, section="pull", index=0, function="f", duration=0.1, outcome="success"
            )
        )
    assert 'pull[0] (f) inputs: {"x": "{{ a.b }}"}' in out.getvalue()


def test_json_log_format_keeps_stderr_json_when_a_step_writes_to_the_terminal(tmp_path: Path) -> None:
    """A Python step's own print()s, os.write()s and log records become JSON objects too."""
    (tmp_path / "chatty_steps.py").write_text(
        "import logging, os, sys\n\n\ndef chat():\n"
        "    print('to stdout')\n    print('to stderr', file=sys.stderr)\n    os.write(2, b'raw fd 2\\n')\n"
        "    logging.getLogger('stepengine.steps.chat').warning('a warning')\n    return {}\n"
    )
    (tmp_path / "prefect.yaml").write_text("build:\n  - chatty_steps.chat: {}\n")
    (tmp_path / "values.yaml").write_text("{}\n")
    result = _run(
        tmp_path,
        "--log-format",
        "json",
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    validator = _validator()
    for event in events:
        validator.validate(event)
    messages = {(e["kind"], e.get("message")) for e in events}
    for message in ("to stdout", "to stderr", "raw fd 2", "a warning"):
        assert ("log", message) in messages, events


def test_a_resumed_run_is_never_fed_a_masked_output(tmp_path: Path) -> None:
    """issue 14.10's sibling: --save-outputs masks secrets (nothing but the store writes one to disk),
    so --load-outputs leaves those values out and names them, instead of feeding *** to a step."""
    (tmp_path / "mysteps.py").write_text("def give(value):\n    return {'stdout': value}\n")
    (tmp_path / "prefect.yaml").write_text(
        "build:\n"
        "  - mysteps.give: {id: a, value: '{{ prefect.blocks.secret.token }}'}\n"
        "  - prefect.deployments.steps.run_shell_script: {id: c, script: echo plain}\n"
        "  - prefect.deployments.steps.run_shell_script: {id: b, script: 'echo got {{ a.stdout }} {{ c.stdout }}'}\n"
    )
    (tmp_path / "values.yaml").write_text(json.dumps({"blocks": {"secret": {"token": SECRET}}}))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    assert _run(tmp_path, "--only", "a", "--save-outputs", "out.json", env=env).returncode == 0
    assert _run(tmp_path, "--only", "c", "--save-outputs", "out2.json", env=env).returncode == 0
    saved = json.loads((tmp_path / "out.json").read_text())
    assert (saved["a"]["stdout"], saved["$masked"]) == (
        "***",
        ["a.stdout", "stdout"],
    )  # outputs are merged flat too
    merged = {**saved, **json.loads((tmp_path / "out2.json").read_text())}
    (tmp_path / "both.json").write_text(json.dumps(merged))
    result = _run(tmp_path, "--from-step", "b", "--load-outputs", "both.json", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "warning: both.json: a.stdout held a secret and was saved masked; it is left out "
        "(give it with --var a.stdout=… if a step needs it)"
    )
    assert "***" not in result.stdout
    fed = _run(
        tmp_path, "--from-step", "b", "--load-outputs", "both.json", "--var", f"a.stdout={SECRET}", env=env
    )
    assert fed.returncode == 0, fed.stderr
