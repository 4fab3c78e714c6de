"""run_shell_script: Prefect's line-by-line behaviour, plus `shell: true`, env, streaming, failures."""

from __future__ import annotations

import os
import shlex
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stepengine
from stepengine.builtin_steps.shell import run_shell_script, split_words
from stepengine.errors import ProcessError, StepExecutionError
from stepengine.events import Event


def test_each_line_is_its_own_process_split_like_a_shell() -> None:
    result = run_shell_script("echo 'a  b' c\n\n   \necho \"$HOME\" | cat", stream_output=False)
    # no shell: quotes are honoured, but $HOME and | are passed literally (Prefect's behaviour)
    assert result == {"stdout": "a  b c\n$HOME | cat", "stderr": ""}


def test_shell_true_runs_one_bash_script() -> None:
    script = "X=1\necho $((X + 1)) | tr 2 z\necho err >&2"
    assert run_shell_script(script, shell=True, stream_output=False) == {"stdout": "z", "stderr": "err"}


def test_env_merged_over_the_environment_and_expand_env_vars(tmp_path: Path) -> None:
    result = run_shell_script(
        "printenv GREETING\necho $GREETING ${HOME}",
        env={"GREETING": "hi there"},
        expand_env_vars=True,
        stream_output=False,
        directory=str(tmp_path),
    )
    assert result["stdout"] == f"hi there\nhi there {os.environ['HOME']}"


def test_directory_is_the_working_directory(tmp_path: Path) -> None:
    assert run_shell_script("pwd", directory=str(tmp_path), stream_output=False)["stdout"] == str(tmp_path)


def test_failure_reports_exit_code_and_stderr_tail() -> None:
    with pytest.raises(ProcessError) as info:
        run_shell_script("echo ok\nls /definitely/not/here", stream_output=False)
    assert info.value.returncode == 2
    assert str(info.value).startswith(
        "command `ls /definitely/not/here` exited with code 2:\n    ls: cannot access"
    )


def test_shell_failure_stops_at_the_first_failing_command() -> None:
    with pytest.raises(ProcessError) as info:
        run_shell_script("echo one\nfalse\necho never", shell=True, stream_output=False)
    assert info.value.returncode == 1
    assert info.value.stdout == "one\n"


def test_unknown_command() -> None:
    with pytest.raises(stepengine.StepError, match="^command not found: no-such-command-xyz$"):
        run_shell_script("no-such-command-xyz", stream_output=False)


def test_output_streams_as_events_and_result_through_the_runner(tmp_path: Path) -> None:
    events: list[Event] = []
    config = stepengine.loads(
        textwrap.dedent(
            """\
            pull:
              - prefect.deployments.steps.run_shell_script:
                  id: get-commit
                  script: echo abc123
              - prefect.deployments.steps.run_shell_script:
                  script: echo "commit={{ get-commit.stdout }}"
                  stream_output: false
            """
        )
    )
    outputs = stepengine.run(config, on_event=events.append)
    assert outputs["get-commit"] == {"stdout": "abc123", "stderr": ""}
    assert outputs["stdout"] == "commit=abc123"
    lines = [(e.message, e.stream) for e in events if e.kind == "step.output"]
    assert lines == [("abc123", "stdout")]


def test_failure_through_the_runner_is_one_clear_paragraph() -> None:
    config = stepengine.loads(
        "pull:\n  - run_shell_script:\n      id: s\n      script: sh -c 'echo bad >&2; exit 3'\n",
        file="p.yaml",
    )
    with pytest.raises(StepExecutionError) as info:
        stepengine.run(config)
    assert (
        str(info.value)
        == "p.yaml:2:5: pull[0] (s: run_shell_script) failed: command `sh -c 'echo bad >&2; exit 3'` exited with code 3:\n    bad"
    )


@given(st.text(alphabet=" \t'\"\\abc$\n", max_size=30))
@settings(max_examples=300, deadline=None)
def test_words_are_split_exactly_as_posix_shlex_splits_them(line: str) -> None:
    try:
        expected: list[str] | str = shlex.split(line, comments=False)
    except ValueError as exc:
        expected = str(exc)
    try:
        actual: list[str] | str = split_words(line)
    except ValueError as exc:
        actual = str(exc)
    assert actual == expected


def test_a_2_mb_script_line_is_split_without_hanging() -> None:
    """shlex grows a word a character at a time: a 2 MB word took over 30 s (issue 14). The alarm
    is a bound against that hang, not a timing: the split takes milliseconds."""
    import signal

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("splitting a 2 MB line did not finish in 20 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        words = split_words("echo " + "x" * 2_000_000 + ' "' + 'y\\"' * 300_000 + '"')
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [len(w) for w in words] == [4, 2_000_000, 600_000]
