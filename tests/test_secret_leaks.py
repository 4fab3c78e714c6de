"""End to end: secrets from every source never show up in any byte the engine emits.

Secrets come from a ``secret`` block and a credentials block in the local store, a secret
variable, an environment variable declared secret and a value a step marks with ``mask()``. Runs
go through the real console script (stdout, stderr) and through the API (events, the exception and
its whole chain). No secret is written as a literal in this file: a traceback quoting a source line
would otherwise show it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import stepengine
from stepengine.stores.sqlite import SQLiteStore

BLOCK = "blk" + "-Sekr1t-9f3a"
CREDENTIAL = "ghp" + "_cred-77aa19"
VARIABLE = "var" + "-pa55-0c2d"
ENVIRON = "env" + "-key-41be"
FROM_STEP = "stp" + "-made-5e6f"
ALL = (BLOCK, CREDENTIAL, VARIABLE, ENVIRON, FROM_STEP)

STEPS_MODULE = """
import sys

from stepengine.step_api import emit_output, get_logger, mask


def fetch():
    token = "stp" + "-made-5e6f"
    mask(token)
    get_logger().warning("fetched token %s", token)
    emit_output("token is " + token)
    print("printed " + token, file=sys.stderr)
    sys.stderr.write("written in two parts: " + token[:5])
    sys.stderr.write(token[5:] + "\\n")
    return {"token": token}


def explode(secret, other):
    raise RuntimeError(f"cannot use {secret} or {other}")


class Unprintable:
    def __init__(self, token):
        self.token = token

    def __str__(self):
        raise RuntimeError("cannot print " + self.token)


def sneaky(fd_level=True):
    import logging
    import os

    token = "stp" + "-made-5e6f"
    mask(token)
    sys.stdout.write("two parts: " + token[:6])
    sys.stdout.flush()
    sys.stdout.write(token[6:] + "\\n")
    for char in "one at a time: " + token + "\\n":
        print(char, end="", flush=True)
    sys.stdout.flush()
    sys.stdout.buffer.write(b"bytes: " + token[:2].encode())
    sys.stdout.buffer.flush()
    sys.stdout.buffer.write(token[2:].encode() + b"\\n")
    sys.stdout.flush()
    logging.getLogger("someone.else").warning("logged %s", token)
    if fd_level:
        os.write(1, b"fd one: " + token[:4].encode())
        os.write(1, token[4:].encode() + b"\\n")
        os.write(2, b"fd two: " + token.encode() + b"\\n")
    return {}


def unprintable():
    token = "stp" + "-made-5e6f"
    mask(token)
    return {"value": Unprintable(token)}
"""

SHELL_AND_FAILING_STEP = """
pull:
  - prefect.deployments.steps.run_shell_script:
      id: echo
      script: >-
        sh -c "echo raw={{ prefect.blocks.secret.tok }};
        printf %s {{ prefect.blocks.secret.tok }} | base64;
        printf %s user:{{ prefect.blocks.github-credentials.ci.token }} | base64;
        echo cred={{ prefect.blocks.github-credentials.ci.token }} var={{ prefect.variables.db-password }};
        echo env=$DEPLOY_KEY; echo err={{ prefect.blocks.secret.tok }} >&2"
      stream_output: true
  - leaky_steps.fetch:
      id: fetched
  - leaky_steps.explode:
      secret: "{{ prefect.blocks.secret.tok }}"
      other: "{{ fetched.token }} {{ prefect.variables.db-password }}"
"""

GIT_STEP = """
pull:
  - prefect.deployments.steps.git_clone:
      repository: "file:///nonexistent/{{ prefect.blocks.secret.tok }}/{{ prefect.blocks.github-credentials.ci.token }}.git"
"""


def encoded(secret: str) -> list[str]:
    import base64

    return [secret, base64.b64encode(secret.encode()).decode().rstrip("=")]


def assert_clean(text: str, what: str) -> None:
    for secret in ALL:
        for form in encoded(secret):
            assert form not in text, f"{form!r} ({secret!r}) leaked into {what}:\n{text}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = SQLiteStore()  # $STEPENGINE_HOME, private to this test (tests/conftest.py)
    store.set_block("secret", "tok", {"value": BLOCK})
    store.set_block("github-credentials", "ci", {"token": CREDENTIAL, "username": "ci-bot"})
    store.set_variable("db-password", VARIABLE, secret=True)
    (tmp_path / "leaky_steps.py").write_text(STEPS_MODULE)
    monkeypatch.setenv("DEPLOY_KEY", ENVIRON)
    monkeypatch.setenv("STEPENGINE_SECRET_ENV", "DEPLOY_KEY")
    # prepended: the console script must import this checkout (a worktree's PYTHONPATH), not another
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(project: Path, yaml: str) -> subprocess.CompletedProcess[str]:
    (project / "prefect.yaml").write_text(yaml)
    exe = shutil.which("stepengine")
    assert exe
    return subprocess.run(
        [exe, "run", "--output", "json", "-v"], cwd=project, capture_output=True, text=True, timeout=60
    )


def run_api(project: Path, yaml: str) -> tuple[list[stepengine.Event], BaseException]:
    (project / "prefect.yaml").write_text(yaml)
    events: list[stepengine.Event] = []
    with pytest.raises(stepengine.StepExecutionError) as info:
        stepengine.run(project / "prefect.yaml", on_event=events.append)
    return events, info.value


def exception_text(exc: BaseException) -> str:
    """Everything an exception can show: the printed chain, reprs, args and attributes of each link."""
    parts = ["".join(traceback.format_exception(exc))]
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        parts += [repr(link), repr(link.args), repr(vars(link)), getattr(link, "message", "")]
        link = link.__cause__ or link.__context__
    return "\n".join(map(str, parts))


def test_shell_echo_and_a_failing_step_leak_no_secret(project: Path) -> None:
    result = run_cli(project, SHELL_AND_FAILING_STEP)
    assert result.returncode == 1
    # the run really printed them, masked
    assert "raw=***" in result.stderr
    assert "cred=*** var=***" in result.stderr
    assert "env=***" in result.stderr
    assert "err=***" in result.stderr
    assert "token is ***" in result.stderr
    assert "fetched token ***" in result.stderr
    assert "printed ***" in result.stderr  # a step's own print() to the terminal
    assert "written in two parts: ***" in result.stderr
    assert result.stderr.splitlines()[-1].endswith("failed: RuntimeError: cannot use *** or *** ***")
    assert_clean(result.stdout, "stdout")
    assert_clean(result.stderr, "stderr")

    events, error = run_api(project, SHELL_AND_FAILING_STEP)
    assert [e.kind for e in events][-2:] == ["step.failed", "run.failed"]
    # a step.output event holds the lines that arrived together
    assert any("raw=***" in (e.message or "").splitlines() for e in events if e.kind == "step.output")
    assert_clean(json.dumps([e.to_dict() for e in events], default=str), "events")
    assert_clean(exception_text(error), "the exception")
    assert str(error).endswith("failed: RuntimeError: cannot use *** or *** ***")
    assert_nothing_on_disk(project)


def test_a_failing_git_step_leaks_no_secret(project: Path) -> None:
    result = run_cli(project, GIT_STEP)
    assert result.returncode == 1
    assert "/nonexistent/***/***.git" in result.stderr
    assert_clean(result.stdout + result.stderr, "the CLI's output")

    events, error = run_api(project, GIT_STEP)
    assert_clean(json.dumps([e.to_dict() for e in events], default=str), "events")
    assert_clean(exception_text(error), "the exception")
    assert "/nonexistent/***/***.git" in str(error)
    assert_nothing_on_disk(project)


def test_output_json_is_masked_with_the_secrets_the_run_found(project: Path) -> None:
    (project / "prefect.yaml").write_text(
        "pull:\n  - leaky_steps.fetch:\n      id: fetched\n"
        "  - prefect.deployments.steps.run_shell_script:\n      id: show\n"
        "      script: echo {{ prefect.blocks.secret.tok }}\n"
    )
    exe = shutil.which("stepengine")
    assert exe
    result = subprocess.run(
        [exe, "run", "--output", "json", "-q"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["fetched"] == {"token": "***"}
    assert outputs["show"]["stdout"] == "***"
    assert_clean(result.stdout + result.stderr, "the CLI's output")


def test_an_unexpected_error_after_the_run_is_masked_with_the_runs_secrets(project: Path) -> None:
    """Printing --output json fails (exit 3) after the run: its traceback still knows the secret the
    run registered (issue 14: the run's masker was gone by the time the error was printed)."""
    (project / "prefect.yaml").write_text("pull:\n  - leaky_steps.unprintable: {}\n")
    exe = shutil.which("stepengine")
    assert exe
    for args in (["run", "--output", "json"], ["run", "--output=json", "-s", "pull"]):
        for fastpath in ("1", "0"):  # without click, and through click
            env = {**os.environ, "STEPENGINE_CLI_FASTPATH": fastpath}
            result = subprocess.run(
                [exe, *args], cwd=project, capture_output=True, text=True, timeout=60, env=env
            )
            assert result.returncode == 3, result.stderr
            assert "RuntimeError: cannot print ***" in result.stderr
            assert_clean(result.stdout + result.stderr, "the CLI's output")


def test_a_python_steps_own_output_cannot_bypass_masking_in_the_cli(project: Path) -> None:
    """issue 14: pieces with a flush between, a character at a time, sys.stdout.buffer and fd 1/2
    written directly all printed the secret; the CLI masks fd 1 and 2 on the stream."""
    (project / "prefect.yaml").write_text("pull:\n  - leaky_steps.sneaky: {}\n")
    exe = shutil.which("stepengine")
    assert exe
    result = subprocess.run([exe, "run"], cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for line in ("two parts: ***", "one at a time: ***", "bytes: ***", "fd one: ***"):
        assert line in result.stdout.splitlines()
    assert "fd two: ***" in result.stderr.splitlines() and "logged ***" in result.stderr
    assert_clean(result.stdout + result.stderr, "the CLI's output")


def test_through_the_api_a_steps_print_and_logging_are_masked(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Python API masks sys.stdout/sys.stderr and every log record while a run is in progress
    (not raw writes to fd 1/2: see the README's security section)."""
    import io
    import logging

    (project / "prefect.yaml").write_text("pull:\n  - leaky_steps.sneaky: {fd_level: false}\n")
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    logging.getLogger("someone.else").addHandler(handler)
    try:
        stepengine.run(project / "prefect.yaml")
    finally:
        logging.getLogger("someone.else").removeHandler(handler)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["two parts: ***", "one at a time: ***", "bytes: ***"]
    assert records.getvalue() == "logged ***\n"
    assert_clean(out + err + records.getvalue(), "the API's output")


def assert_nothing_on_disk(*roots: Path) -> None:
    """The engine writes a secret nowhere but into the store."""
    home = Path(os.environ["STEPENGINE_HOME"])
    for root in (*roots, home):
        for path in root.rglob("*"):
            if path.is_file() and not path.name.startswith("store.db"):
                data = path.read_bytes()
                for secret in ALL:
                    assert secret.encode() not in data, f"{secret!r} written to {path}"


def test_block_cli_masks_secrets_unless_revealed(tmp_path: Path) -> None:
    env = dict(os.environ)
    exe = shutil.which("stepengine")
    assert exe

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60)

    assert cli("block", "set", "secret/tok", "--from-file", "-", stdin=BLOCK + "\n").returncode == 0
    assert (
        cli(
            "block",
            "set",
            "aws-credentials/prod",
            "--json",
            json.dumps({"aws_access_key_id": "AKIA-ID", "aws_secret_access_key": CREDENTIAL}),
        ).returncode
        == 0
    )
    assert cli("variable", "set", "pw", VARIABLE, "--secret").returncode == 0
    assert cli("block", "get", "secret/tok").stdout == "***\n"
    assert cli("block", "get", "secret/tok", "--reveal").stdout == BLOCK + "\n"
    assert json.loads(cli("block", "get", "aws-credentials/prod").stdout) == {
        "aws_access_key_id": "AKIA-ID",
        "aws_secret_access_key": "***",
    }
    assert cli("variable", "get", "pw").stdout == "***\n"
    assert cli("variable", "get", "pw", "--reveal").stdout == VARIABLE + "\n"
    listing = cli("block", "ls")
    assert listing.stdout == "aws-credentials/prod\nsecret/tok  (secret)\n"
    assert cli("variable", "ls").stdout == "pw  (secret)\n"


VALUES_BLOCK = "vbl" + "-tok-83c1"
VALUES_VARIABLE = "vvr" + "-pw-2be0"


@pytest.mark.parametrize("verb", ["run", "plan"])
def test_a_values_file_is_never_cached(tmp_path: Path, verb: str) -> None:
    """``--values`` files hold secrets: their parse must not outlive them in the parse cache (issue 14)."""
    root = Path(__file__).resolve().parents[1]
    values = tmp_path / "values.yaml"
    values.write_text(
        f"blocks:\n  secret:\n    vtok: {VALUES_BLOCK}\nsecret_variables:\n  vpass: {VALUES_VARIABLE}\n"
    )
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - prefect.deployments.steps.run_shell_script:\n"
        "      script: echo {{ prefect.blocks.secret.vtok }} {{ prefect.variables.vpass }}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    for _ in range(2):  # the second time a cache, if there were one, would be read
        done = subprocess.run(
            [sys.executable, "-m", "stepengine", verb, "--values", str(values)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "*** ***" in done.stdout + done.stderr
    values.unlink()
    home = Path(os.environ["STEPENGINE_HOME"])
    assert list((home / "cache" / "parsed-documents").iterdir())  # prefect.yaml itself is cached
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (VALUES_BLOCK, VALUES_VARIABLE):
                assert secret.encode() not in data, f"{secret!r} written to {path}"


def test_a_file_holding_a_known_secret_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prefect.yaml that spells out a secret the environment declares is parsed, never cached."""
    from stepengine.loader import load_document

    monkeypatch.setenv("DEPLOY_KEY", ENVIRON)
    monkeypatch.setenv("STEPENGINE_SECRET_ENV", "DEPLOY_KEY")
    path = tmp_path / "prefect.yaml"
    path.write_text(f"pull:\n  - run_shell_script:\n      script: echo {ENVIRON}\n")
    entries = Path(os.environ["STEPENGINE_HOME"]) / "cache" / "parsed-documents"
    assert load_document(path).data["pull"][0]["run_shell_script"]["script"] == f"echo {ENVIRON}"
    assert not entries.exists() or not list(entries.iterdir())
    path.write_text("pull:\n  - run_shell_script:\n      script: echo hello\n")
    load_document(path)
    assert len(list(entries.iterdir())) == 1
