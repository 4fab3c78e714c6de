"""``stepengine run`` parsed without click (``stepengine.cli._fastpath``) means exactly what click
parses, and the command behaves the same whichever parser read its line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepengine.cli._fastpath import parse_run
from stepengine.cli._run import DEFAULTS
from stepengine.cli._table import RUN
from stepengine.cli.run import command

ROOT = Path(__file__).resolve().parents[2]

#: every spelling of run's options (from the one table both parsers are built from), then lines that
#: are not run options, or not in the fast path's plain forms: click must get them
OPTIONS = [name for option in RUN for name in option.names] + [
    "-h",
    "--help",
    "-V",
    "--",
    "-qv",
    "-spull",
    "--quiet=1",
    "--nope",
    "-x",
]
VALUES = [
    "pull",
    "build",
    "push",
    "Pull",
    "text",
    "json",
    "a=b",
    "a.b=c=d",
    "=b",
    "novalue",
    "",
    "-",
    "-q",
    "--x",
    "prefect.yaml",
    "other.yaml",
    "a-dir",
    "values.yaml",
    "out.json",
]


@st.composite
def run_lines(draw: st.DrawFn) -> list[str]:
    tokens = st.one_of(
        st.sampled_from(OPTIONS),
        st.sampled_from(VALUES),
        st.builds(
            lambda o, v: f"{o}={v}",
            st.sampled_from([o for o in OPTIONS if o.startswith("--")]),
            st.sampled_from(VALUES),
        ),
    )
    return ["run", *draw(st.lists(tokens, max_size=8))]


def _click_params(argv: list[str]) -> dict[str, t.Any] | None:
    """What click parses for ``argv`` (None when click rejects it or only prints help)."""
    try:
        with command.make_context("run", list(argv[1:])) as ctx:
            return dict(ctx.params)
    except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
        return None


@pytest.fixture()
def workdir(tmp_path: Path) -> t.Iterator[Path]:
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "values.yaml").write_text("variables: {}\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run_lines())
def test_whenever_the_fast_path_answers_click_answers_the_same(workdir: Path, argv: list[str]) -> None:
    fast = parse_run(argv)
    if fast is not None:
        assert fast == _click_params(argv), argv


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "prefect.yaml", "--section", "pull", "-q"],
        ["run", "-s", "build", "--section=pull", "x.yaml", "-d", "a", "--deployment", "b"],
        ["run", "--var", "a=1", "--var=b.c=2", "--output", "json", "--log-format=json", "-v", "--strict"],
        ["run", "--values", "values.yaml", "--stores", "env", "--prefect-api-url", "http://127.0.0.1:1/api"],
        ["run", "--from-step", "clone", "--only", "pull[1]", "--save-outputs", "out.json", "--allow-missing"],
    ],
)
def test_the_plain_forms_take_the_fast_path(workdir: Path, argv: list[str]) -> None:
    fast = parse_run(argv)
    assert fast is not None
    assert fast == _click_params(argv)
    assert set(fast) == set(DEFAULTS)


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "prefect.yaml"],
        ["run", "--help"],
        ["run", "-qv"],
        ["run", "--section", "nope"],
        ["run", "--var", "novalue"],
        ["run", "a-dir"],  # click.Path(dir_okay=False) rejects a directory
        ["run", "a.yaml", "b.yaml"],
        ["run", "--", "x.yaml"],
        ["run", "--deployment"],
        ["run", "--load-outputs", "out.json"],  # must exist: click checks
    ],
)
def test_everything_else_goes_to_click(workdir: Path, argv: list[str]) -> None:
    assert parse_run(argv) is None


def test_defaults_are_clicks(workdir: Path) -> None:
    assert _click_params(["run"]) == DEFAULTS


def test_both_parsers_know_every_option_of_the_table() -> None:
    """issue 17: run's options are declared once (_table.RUN); click's command is built from it."""
    declared = {p.name: p.opts for p in command.params}
    assert declared == {option.dest: list(option.names) or [option.dest] for option in RUN}


def _stepengine(args: list[str], cwd: Path, fast: bool) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STEPENGINE_CLI_FASTPATH": "1" if fast else "0",
        "STEPENGINE_HOME": str(cwd / "home"),
    }
    code = "import sys, json; from stepengine.cli import main; code = main(sys.argv[1:]); print('modules', json.dumps('click' in sys.modules)); sys.exit(code)"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "args", "exit_code"),
    [
        (
            "pull:\n  - prefect.deployments.steps.run_shell_script:\n      id: hi\n      script: echo hello\n",
            ["run", "prefect.yaml", "-s", "pull", "--output", "json"],
            0,
        ),
        (
            "pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: exit 3\n",
            ["run", "--section", "pull"],
            1,
        ),
        (
            "pull:\n  - prefect.deployments.steps.set_working_directory:\n      directroy: .\n",
            ["run", "prefect.yaml"],
            2,
        ),
        (
            "pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: echo {{ greeting }}\n",
            ["run", "--var", "greeting=hi", "--log-format", "json"],
            0,
        ),
    ],
)
def test_the_command_behaves_the_same_whichever_parser_read_it(
    tmp_path: Path, text: str, args: list[str], exit_code: int
) -> None:
    (tmp_path / "prefect.yaml").write_text(text)
    fast = _stepengine(args, tmp_path, fast=True)
    slow = _stepengine(args, tmp_path, fast=False)

    def normal(out: str) -> str:  # timings and timestamps differ from run to run
        out = re.sub(r"\d+\.\d+ ?s\b", "<t>", out)
        return re.sub(r'"(timestamp|duration|duration_seconds)": ?[0-9.e+-]+', r'"\1": <t>', out)

    assert fast.returncode == slow.returncode == exit_code, (fast.stderr, slow.stderr)
    assert normal(fast.stderr) == normal(slow.stderr)
    fast_out, slow_out = fast.stdout.splitlines(), slow.stdout.splitlines()
    assert fast_out[:-1] == slow_out[:-1]
    assert (fast_out[-1], slow_out[-1]) == (
        "modules false",
        "modules true",
    )  # click loaded only by the slow one
