"""The same steps through stepengine and through Prefect's own ``run_steps``, outputs compared.

Prefect runs in its own venv (``.bench/prefect-venv``, see ``testkit/prefect_server.py``), with
``PREFECT_HOME`` in a temporary directory, analytics off and ``PREFECT_API_URL`` pointing at a dead
port on 127.0.0.1, so nothing is reached and no temporary server starts: only cases that need no block
or variable run here. One Prefect process runs every case (each in its own directory, with its own
environment and upstream values) and writes what ``run_steps`` returned, or the error it raised.

The cases were written from reading Prefect's tests of its step runner, templating and utility steps
(``tests/deployment/test_steps.py``, ``tests/utilities/test_templating.py``): step output references
by id and merged flat, types kept for a whole-value placeholder, text interpolation, nested mappings
and lists, environment variables, missing values (stepengine with ``allow_missing``), and
``run_shell_script`` (multi-line, stderr, ``env``, ``expand_env_vars``, ``directory``) and
``set_working_directory``. ``DIFFERENCES`` holds the cases where stepengine deliberately differs (the
README's table): each asserts both results, so the table cannot drift from the behaviour.

``SERVER_CASES`` need blocks and variables: Prefect's client saves them on a real ``prefect server``
(the ``prefect_server`` fixture), Prefect's ``run_steps`` reads them from it, and stepengine reads the
same server through its Prefect API store: variables (present and missing, whole and inside text),
secret and custom blocks, fields, list items, the path into a one-field block, and the failures
(missing block, missing field, a block's mapping inside text) both must raise.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import typing as t
from pathlib import Path

import pytest

import stepengine
from tests.fixtures.prefect_server import prefect_venv

PREFECT_PYTHON = prefect_venv() / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not PREFECT_PYTHON.exists(),
    reason=f"Prefect's venv is missing at {prefect_venv()} (.ci/install.d/60-prefect-venv.sh)",
)

#: a step module both runners import by its dotted path: it returns its arguments as its outputs
PARITY_STEPS = """
def echo(**arguments):
    return dict(arguments)
"""

#: runs every case through Prefect's run_steps; one JSON result per case
DRIVER = """
import asyncio, json, os, sys, traceback
from prefect.deployments.steps.core import run_steps

spec = json.load(open(sys.argv[1]))
sys.path.insert(0, spec["steps_dir"])
exec(spec.get("setup", ""))
base_env = dict(os.environ)
results = {}
for case in spec["cases"]:
    os.chdir(case["cwd"])
    os.environ.clear()
    os.environ.update(base_env)
    os.environ.update(case["env"])
    try:
        outputs = asyncio.run(run_steps(case["steps"], case["upstream"], print_function=lambda *a, **k: None))
        results[case["name"]] = {"outputs": outputs}
    except Exception as exc:
        cause = exc.__cause__ or exc
        results[case["name"]] = {"error": type(cause).__name__, "message": str(cause)}
json.dump(results, open(sys.argv[2], "w"), default=repr)
"""


class Case(t.NamedTuple):
    name: str
    #: the steps, as they would appear under ``pull:``
    yaml: str
    upstream: dict[str, t.Any] = {}
    env: dict[str, str] = {}
    #: files to create in the case's directory before the run
    files: dict[str, str] = {}
    #: stepengine renders missing values as Prefect does only with allow_missing
    allow_missing: bool = False


ECHO = "parity_steps.echo"
SHELL = "prefect.deployments.steps.run_shell_script"
CHDIR = "prefect.deployments.steps.set_working_directory"

CASES = [
    # -- templating ------------------------------------------------------------------------------
    Case(
        "output by id and merged flat",
        f"""
        - {SHELL}:
            id: first
            script: echo this is a test
        - {SHELL}:
            script: "echo Don\\\\'t Panic, {{{{ first.stdout }}}}"
        - {ECHO}:
            id: seen
            by_id: "{{{{ first.stdout }}}}"
            flat: "{{{{ stdout }}}}"
    """,
    ),
    Case(
        "whole value keeps its type",
        f"""
        - {ECHO}:
            n: "{{{{ n }}}}"
            flag: "{{{{ flag }}}}"
            ratio: "{{{{ ratio }}}}"
            items: "{{{{ items }}}}"
            mapping: "{{{{ mapping }}}}"
            nothing: "{{{{ nothing }}}}"
            second: "{{{{ items[1] }}}}"
            nested: "{{{{ mapping.inner.deep }}}}"
    """,
        upstream={
            "n": 3,
            "flag": True,
            "ratio": 0.5,
            "items": [1, "two"],
            "mapping": {"inner": {"deep": "x"}},
            "nothing": None,
        },
    ),
    Case(
        "text interpolation",
        f"""
        - {ECHO}:
            id: text
            one: "n={{{{ n }}}}"
            two: "{{{{ n }}}}-{{{{ flag }}}} and {{{{ word }}}}"
            float: "r={{{{ ratio }}}}"
            spaces: "{{{{n}}}}|{{{{   word   }}}}"
    """,
        upstream={"n": 3, "flag": False, "ratio": 0.25, "word": "hi"},
    ),
    Case(
        "nested mappings and lists",
        f"""
        - {ECHO}:
            id: nested
            config:
              image: "{{{{ image }}}}"
              tags: ["{{{{ tag }}}}", "latest", "v{{{{ tag }}}}"]
              matrix:
                - os: "{{{{ os }}}}"
                  n: "{{{{ n }}}}"
            plain: [1, 2.5, true, null, "text"]
    """,
        upstream={"image": "org/app", "tag": "1.2", "os": "linux", "n": 2},
    ),
    Case(
        "environment variables",
        f"""
        - {ECHO}:
            id: env
            whole: "{{{{ $PARITY_VAR }}}}"
            number: "{{{{ $PARITY_NUM }}}}"
            inline: "value={{{{ $PARITY_VAR }}}}/{{{{ $PARITY_NUM }}}}"
            mixed: "{{{{ $PARITY_VAR }}}}-{{{{ word }}}}"
    """,
        upstream={"word": "w"},
        env={"PARITY_VAR": "hello", "PARITY_NUM": "42"},
    ),
    Case(
        "seeded values are outputs too",
        f"""
        - {ECHO}:
            copy: "{{{{ seed.key }}}}"
    """,
        upstream={"seed": {"key": "v"}, "other": [1]},
    ),
    Case(
        "missing values with allow_missing",
        f"""
        - {ECHO}:
            id: missing
            env_whole: "{{{{ $PARITY_UNSET }}}}"
            env_inline: "a{{{{ $PARITY_UNSET }}}}b"
            out_whole: "{{{{ nope }}}}"
            out_path: "{{{{ nope.deeper }}}}"
            out_inline: "a{{{{ nope }}}}b{{{{ present }}}}"
            in_list: ["{{{{ nope }}}}", "kept", "{{{{ $PARITY_UNSET }}}}", "x{{{{ nope }}}}"]
            in_mapping:
              gone: "{{{{ nope }}}}"
              here: "{{{{ present }}}}"
    """,
        upstream={"present": "p"},
        allow_missing=True,
    ),
    # -- run_shell_script -------------------------------------------------------------------------
    Case(
        "shell: multi-line, indented, blank lines",
        f"""
        - {SHELL}:
            id: multi
            script: |
              echo First Line

                echo   Second    Line
              echo 'kept  spaces'
    """,
    ),
    Case(
        "shell: stderr and stdout apart",
        f"""
        - {SHELL}:
            id: streams
            script: |
              bash -c '>&2 echo Error Message'
              echo out
              bash -c 'echo both; >&2 echo err2'
    """,
    ),
    Case(
        "shell: env",
        f"""
        - {SHELL}:
            id: with_env
            script: |
              bash -c 'echo $TEST_ENV_VAR'
              echo $TEST_ENV_VAR
            env:
              TEST_ENV_VAR: Test Value
    """,
    ),
    Case(
        "shell: expand_env_vars",
        f"""
        - {SHELL}:
            id: expanded
            script: |
              echo $PARITY_VAR ${{PARITY_VAR}}x $PARITY_UNSET_TOO
              bash -c 'echo $PARITY_VAR'
            expand_env_vars: true
        - {SHELL}:
            id: literal
            script: echo $PARITY_VAR
    """,
        env={"PARITY_VAR": "dummy"},
    ),
    Case(
        "shell: directory and trailing newlines",
        f"""
        - {SHELL}:
            id: where
            script: |
              pwd
              printf 'a\\n\\n\\n'
            directory: sub
    """,
        files={"sub/.keep": ""},
    ),
    Case(
        "shell: a failing line fails the step",
        f"""
        - {SHELL}:
            script: |
              echo before
              false
              echo after
    """,
    ),
    Case(
        "shell: shell true, one command per line",
        f"""
        - {SHELL}:
            id: through_a_shell
            script: |
              echo hello world | tr a-z A-Z
              echo "$PARITY_VAR" && echo second >&2
            shell: true
    """,
        env={"PARITY_VAR": "v"},
    ),
    # -- set_working_directory --------------------------------------------------------------------
    Case(
        "set_working_directory then relative work",
        f"""
        - {CHDIR}:
            id: cd
            directory: project
        - {SHELL}:
            id: here
            script: cat marker.txt
        - {ECHO}:
            id: dirs
            flat: "{{{{ directory }}}}"
            by_id: "{{{{ cd.directory }}}}"
    """,
        files={"project/marker.txt": "inside\n"},
    ),
    # -- values Prefect inserts its own way ------------------------------------------------------
    Case(
        "None inside text",
        f"""
        - {ECHO}:
            id: none_text
            text: "x{{{{ nothing }}}}y"
    """,
        upstream={"nothing": None},
    ),
    Case(
        "a mapping inside text with allow_missing",
        f"""
        - {ECHO}:
            id: mapping_text
            text: "x{{{{ mapping }}}}y {{{{ items }}}}"
    """,
        upstream={"mapping": {"k": "v"}, "items": [1, "a"]},
        allow_missing=True,
    ),
    Case(
        "ctx with allow_missing",
        f"""
        - {ECHO}:
            id: ctx
            whole: "{{{{ ctx.flow.name }}}}"
            text: "x{{{{ ctx.flow.name }}}}y"
    """,
        allow_missing=True,
    ),
    Case(
        "shell: expand_env_vars leaves ~ alone",
        f"""
        - {SHELL}:
            id: tilde
            script: echo ~/x $HOME ~
            expand_env_vars: true
    """,
        env={"HOME": "/home/parity"},
    ),
]

#: where stepengine deliberately differs (README "Where we deliberately differ from Prefect"): each
#: case gives Prefect's outputs and stepengine's, both asserted
DIFFERENCES: list[tuple[Case, dict[str, t.Any], dict[str, t.Any]]] = [
    (
        Case(
            "inserted text is never scanned again",
            f"""
            - {ECHO}:
                id: rescan
                text: "got {{{{ payload }}}}"
        """,
            upstream={"payload": "{{ $PARITY_SECRET }}"},
            env={"PARITY_SECRET": "leaked"},
        ),
        {"text": "got leaked"},
        {"text": "got {{ $PARITY_SECRET }}"},
    ),
    (
        Case(
            "a missing value is an error",
            f"""
            - {ECHO}:
                id: strict
                whole: "{{{{ $PARITY_UNSET }}}}"
        """,
        ),
        {"whole": ""},
        {"error": "TemplateError"},
    ),
    (
        Case(
            "a mapping inside text is an error",
            f"""
            - {ECHO}:
                id: strict
                text: "x{{{{ mapping }}}}"
        """,
            upstream={"mapping": {"k": "v"}},
        ),
        {"text": "x{'k': 'v'}"},
        {"error": "TemplateError"},
    ),
    (
        Case(
            "ctx is left for a worker",
            f"""
            - {ECHO}:
                id: kept
                text: "x{{{{ ctx.flow.name }}}}"
        """,
        ),
        {"text": "x"},
        {"text": "x{{ ctx.flow.name }}"},
    ),
    (
        Case(
            "a Jinja expression is evaluated",
            f"""
            - {ECHO}:
                id: jinja
                text: "{{{{ $PARITY_UNSET | default('d') }}}}"
        """,
        ),
        {"text": "{{ $PARITY_UNSET | default('d') }}"},
        {"text": "d"},
    ),
]


#: blocks and variables saved on a real Prefect server (by Prefect's own client) for SERVER_CASES
SERVER_SETUP = """
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.variables import Variable

class ParityConfig(Block):
    _block_type_slug = "parity-config"
    replicas: int
    tags: list

class ParityValue(Block):
    _block_type_slug = "parity-value"
    value: dict

Secret(value="s3cr3t-value").save("parity-secret", overwrite=True)
ParityConfig(replicas=2, tags=["a", "b"]).save("cfg", overwrite=True)
ParityValue(value={"replicas": 3, "tags": ["c"]}).save("wrapped", overwrite=True)
Variable.set("parity_branch", "main", overwrite=True)
Variable.set("parity_number", 7, overwrite=True)
"""

#: cases that read blocks and variables: run against a real Prefect server (``prefect_server``)
SERVER_CASES = [
    Case(
        "server: variables",
        f"""
        - {ECHO}:
            id: variables
            whole: "{{{{ prefect.variables.parity_branch }}}}"
            number: "{{{{ prefect.variables.parity_number }}}}"
            inline: "on-{{{{ prefect.variables.parity_branch }}}}-{{{{ prefect.variables.parity_number }}}}"
    """,
    ),
    Case(
        "server: missing variables with allow_missing",
        f"""
        - {ECHO}:
            id: missing_variables
            whole: "{{{{ prefect.variables.parity_nope }}}}"
            inline: "a{{{{ prefect.variables.parity_nope }}}}b"
            in_list: ["{{{{ prefect.variables.parity_nope }}}}", "k"]
    """,
        allow_missing=True,
    ),
    Case(
        "server: blocks",
        f"""
        - {ECHO}:
            id: blocks
            secret: "{{{{ prefect.blocks.secret.parity-secret }}}}"
            secret_inline: "token={{{{ prefect.blocks.secret.parity-secret }}}}"
            whole: "{{{{ prefect.blocks.parity-config.cfg }}}}"
            field: "{{{{ prefect.blocks.parity-config.cfg.replicas }}}}"
            item: "{{{{ prefect.blocks.parity-config.cfg.tags[1] }}}}"
            inline_field: "n={{{{ prefect.blocks.parity-config.cfg.replicas }}}}"
            one_field_block: "{{{{ prefect.blocks.parity-value.wrapped }}}}"
            into_value: "{{{{ prefect.blocks.parity-value.wrapped.replicas }}}}"
            through_value: "{{{{ prefect.blocks.parity-value.wrapped.value.tags }}}}"
    """,
    ),
    Case(
        "server: a missing block fails even with allow_missing",
        f"""
        - {ECHO}:
            whole: "{{{{ prefect.blocks.secret.parity-nope }}}}"
    """,
        allow_missing=True,
    ),
    Case(
        "server: a missing block field fails",
        f"""
        - {ECHO}:
            whole: "{{{{ prefect.blocks.parity-config.cfg.nope }}}}"
    """,
        allow_missing=True,
    ),
    Case(
        "server: a block mapping inside text fails",
        f"""
        - {ECHO}:
            text: "x{{{{ prefect.blocks.parity-config.cfg }}}}"
    """,
        allow_missing=True,
    ),
]


def _dedent(yaml_steps: str) -> str:
    return textwrap.dedent(yaml_steps).strip("\n") + "\n"


def _prepare(root: Path, case: Case) -> Path:
    directory = root / case.name.replace(" ", "_").replace(":", "").replace(",", "")
    directory.mkdir(parents=True)
    for rel, text in case.files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(text)
    return directory


def _normalize(value: t.Any, directory: Path) -> t.Any:
    """The case directory's path as ``<dir>``, so the two runs (in two directories) compare."""
    return json.loads(json.dumps(value, default=repr).replace(str(directory), "<dir>"))


@pytest.fixture(scope="module")
def steps_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("parity-steps")
    (directory / "parity_steps.py").write_text(PARITY_STEPS)
    return directory


@pytest.fixture(scope="module")
def prefect_results(tmp_path_factory: pytest.TempPathFactory, steps_dir: Path) -> dict[str, t.Any]:
    """Every offline case through Prefect's run_steps, in one process."""
    root = tmp_path_factory.mktemp("prefect-side")
    env = {
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": "http://127.0.0.1:9/api",  # a dead port: no server, no temporary server
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    return _run_prefect(root, CASES + [d[0] for d in DIFFERENCES], steps_dir, env)


@pytest.fixture(scope="module")
def server_results(
    tmp_path_factory: pytest.TempPathFactory, steps_dir: Path, prefect_server: t.Any
) -> dict[str, t.Any]:
    """The block and variable cases through Prefect's run_steps against a real server."""
    root = tmp_path_factory.mktemp("prefect-server-side")
    env = {k: v for k, v in prefect_server.env().items() if k.startswith("PREFECT_")}
    return _run_prefect(root, SERVER_CASES, steps_dir, env, setup=SERVER_SETUP)


def _run_prefect(
    root: Path, chosen: list[Case], steps_dir: Path, prefect_env: dict[str, str], *, setup: str = ""
) -> dict[str, t.Any]:
    import yaml

    cases = []
    for case in chosen:
        directory = _prepare(root, case)
        cases.append(
            {
                "name": case.name,
                "cwd": str(directory),
                "env": case.env,
                "upstream": case.upstream,
                "steps": yaml.safe_load(_dedent(case.yaml)),
            }
        )
    (root / "spec.json").write_text(json.dumps({"steps_dir": str(steps_dir), "cases": cases, "setup": setup}))
    (root / "driver.py").write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PARITY_", "PYTHON"))}
    env.update(prefect_env)
    result = subprocess.run(
        [str(PREFECT_PYTHON), str(root / "driver.py"), str(root / "spec.json"), str(root / "out.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((root / "out.json").read_text())
    return {
        name: _normalize(value, Path(spec["cwd"]))
        for spec in cases
        for name, value in results.items()
        if name == spec["name"]
    }


def _stepengine(
    case: Case, root: Path, steps_dir: Path, monkeypatch: pytest.MonkeyPatch, resolver: t.Any = None
) -> dict[str, t.Any]:
    directory = _prepare(root, case)
    for name in [k for k in os.environ if k.startswith("PARITY_")]:
        monkeypatch.delenv(name)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(directory)
    monkeypatch.syspath_prepend(str(steps_dir))
    config = stepengine.loads("pull:\n" + textwrap.indent(_dedent(case.yaml), "  "), file="prefect.yaml")
    try:
        outputs = stepengine.run(
            config,
            values=case.upstream,
            allow_missing=case.allow_missing,
            resolver=resolver or stepengine.InMemoryResolver(),
        )
    except stepengine.StepExecutionError as exc:
        cause = exc.__cause__ or exc
        return {"error": type(cause).__name__, "message": str(cause)}
    except stepengine.ConfigError as exc:  # a placeholder that cannot be rendered
        return {"error": type(exc).__name__, "message": str(exc)}
    return _normalize({"outputs": outputs}, directory)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_outputs_as_prefect(
    case: Case,
    prefect_results: dict[str, t.Any],
    steps_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefect = prefect_results[case.name]
    assert ("error" in prefect) == ("fail" in case.name), prefect
    ours = _stepengine(case, tmp_path, steps_dir, monkeypatch)
    if "error" in prefect:
        assert "error" in ours, f"Prefect failed ({prefect}), stepengine did not: {ours}"
    else:
        assert ours == prefect


@pytest.mark.slow
@pytest.mark.parametrize("case", SERVER_CASES, ids=[c.name for c in SERVER_CASES])
def test_same_blocks_and_variables_as_prefect(
    case: Case,
    server_results: dict[str, t.Any],
    prefect_server: t.Any,
    steps_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """stepengine reads the same server through its Prefect API store."""
    from stepengine.stores.prefect_api import PrefectAPIStore

    prefect = server_results[case.name]
    assert ("error" in prefect) == ("fail" in case.name), prefect
    ours = _stepengine(
        case, tmp_path, steps_dir, monkeypatch, resolver=PrefectAPIStore(prefect_server.api_url)
    )
    if "error" in prefect:
        assert "error" in ours, f"Prefect failed ({prefect}), stepengine did not: {ours}"
    else:
        assert ours == prefect


@pytest.mark.parametrize("case,theirs,mine", DIFFERENCES, ids=[d[0].name for d in DIFFERENCES])
def test_documented_differences(
    case: Case,
    theirs: dict[str, t.Any],
    mine: dict[str, t.Any],
    prefect_results: dict[str, t.Any],
    steps_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefect = prefect_results[case.name]
    ours = _stepengine(case, tmp_path, steps_dir, monkeypatch)
    assert _summary(prefect, theirs) == theirs
    assert _summary(ours, mine) == mine


def _summary(result: dict[str, t.Any], like: dict[str, t.Any]) -> dict[str, t.Any]:
    if "error" in result:
        return {"error": result["error"]}
    return {k: result["outputs"].get(k) for k in like}
