"""A bounded fuzzer over loader + validate + plan + run: only documented errors ever come out (issue 14).

Generated files go through the Python API exactly as an embedder would call it; the only errors
allowed out are ``ConfigError`` (invalid input: exit 2), ``StoreError`` (exit 2) and
``StepExecutionError`` (a step failed: exit 1). Anything else is a crash (exit 3 on the command line).

Steps are harmless functions passed with ``steps={...}``. As a fence, the registry here sees no
entry point and imports no module (a generated name must never reach a real step such as
``run_shell_script``, or a module such as ``os``): that fence is the only stand-in in this file.

Every crash the fuzzer found is kept as an explicit example (``@example``) and, with a readable
message check, in ``tests/test_bad_input.py``. Runs are bounded by ``max_examples``; no deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
import typing as t
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import stepengine
from stepengine import registry as registry_module
from stepengine.errors import ConfigError, StepError, StepExecutionError, StoreError
from stepengine.plan import plan

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = (ConfigError, StoreError, StepExecutionError)


class Bare(BaseException):
    pass


def echo(**arguments: object) -> dict[str, object]:
    return dict(arguments)


def noop(**arguments: object) -> None:
    return None


def fail(**arguments: object) -> None:
    raise StepError("failed on purpose")


def boom(**arguments: object) -> None:
    raise RuntimeError("boom")


def bare(**arguments: object) -> None:
    raise Bare("bare")


def returns(value: object = None, **arguments: object) -> object:
    return value


STEPS = {f.__name__: f for f in (echo, noop, fail, boom, bare, returns)}
#: step names a file may use: the harmless steps, and names that must fail to resolve cleanly
NAMES = [*STEPS, "no_such_step", ".os.system", "..x.y", "a..b", "x:", ":y", "pkg.mod:func", "", " "]

PLACEHOLDERS = [
    "{{ x }}",
    "{{ s.v }}",
    "{{ s.v[0] }}",
    "{{ s }}",
    "{{ v }}",
    "{{ . }}",
    "{{ [] }}",
    "{{ .. }}",
    "{{ [0] }}",
    "{{ s.missing }}",
    "{{ later.v }}",
    "{{ $HOME }}",
    "{{ $NOPE }}",
    "{{ prefect.blocks.secret.t }}",
    "{{ prefect.blocks.secret.missing }}",
    "{{ prefect.blocks.json.j.a.b }}",
    "{{ prefect.variables.v }}",
    "{{ prefect.variables.nope }}",
    "{{ prefect.blocks. }}",
    "{{ ctx.flow.name }}",
    "{{ 1/0 }}",
    "{{ x | default('d') }}",
    "{{ 'ab' * 3 }}",
    "{{ range(3) | list }}",
    "{{ x.__class__ }}",
    "{{ ",
    "}}",
    "{{}}",
    "{{ s.v }}{{ x }}",
    "a {{ s }} b",
    "{{ x }} and {{ $HOME }}",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.sampled_from(PLACEHOLDERS),
)
keys = st.one_of(
    st.sampled_from(
        ["v", "value", "id", "if", "requires", "timeout_seconds", "continue_on_error", "retries", "retry_on"]
    ),
    st.text(max_size=6),
    st.integers(-3, 3),
    st.none(),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)),
    max_leaves=8,
)


@st.composite
def step(draw: st.DrawFn, names: st.SearchStrategy[object]) -> object:
    arguments = draw(st.dictionaries(keys, values, max_size=4))
    if "retries" in arguments:  # no waiting between attempts: the fuzzer must stay fast
        arguments["retry_delay_seconds"] = 0
    if draw(st.booleans()):
        arguments["id"] = draw(st.sampled_from(["s", "later", "x", "s"]))
    shape = draw(st.sampled_from(["step", "step", "step", "bare-name", "two-keys", "not-a-mapping"]))
    name = draw(names)
    if shape == "bare-name":
        return name
    if shape == "two-keys":
        return {name: arguments, "echo": None}
    if shape == "not-a-mapping":
        return draw(scalars)
    return {name: arguments if draw(st.integers(0, 4)) else draw(values)}


@st.composite
def documents(
    draw: st.DrawFn,
    names: st.SearchStrategy[object] = st.sampled_from(NAMES) | keys,  # noqa: B008 (a strategy, built once)
) -> dict[object, object]:
    step = _step(names)
    document: dict[object, object] = {}
    for section in draw(
        st.lists(st.sampled_from(["build", "push", "pull", "finally"]), max_size=3, unique=True)
    ):
        document[section] = draw(st.one_of(st.lists(step(), max_size=3), step(), st.none(), values))
    if draw(st.integers(0, 3)) == 0:
        document["deployments"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.one_of(st.text(max_size=4), st.integers())},
                    optional={"pull": st.lists(step(), max_size=2), "build": st.none()},
                ),
                max_size=2,
            )
        )
    if draw(st.integers(0, 4)) == 0:
        document[draw(keys)] = draw(values)
    return document


def _step(names: st.SearchStrategy[object]) -> t.Callable[[], st.SearchStrategy[object]]:
    return lambda: step(names)


def _dump(document: object, flow: bool) -> str:
    return yaml.safe_dump(document, default_flow_style=flow, sort_keys=False, allow_unicode=True)


yaml_texts = st.builds(_dump, documents(), st.booleans())

#: raw pieces of YAML (anchors, aliases, merges, tags, odd scalars) put together as lines
FRAGMENTS = [
    "pull:",
    "build:",
    "push:",
    "finally:",
    "deployments:",
    "- name: d",
    "  - echo:",
    "  - noop: {}",
    "  - returns:",
    "      value: ",
    "      v: ",
    "      id: s",
    "      id: later",
    "  - 5: {}",
    "  - ~: {}",
    "  - .os.system: {}",
    "&a",
    "*a",
    "&b [1, 2]",
    "<<: *a",
    "<<: [*a, *b]",
    "!foo",
    "!!binary",
    "!!int x",
    "!!float y",
    "!!timestamp z",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "=",
    "=: 1",
    "? [a]",
    ": 1",
    "{",
    "}",
    "[",
    "]",
    "'",
    '"',
    "|",
    ">",
    "#",
    "%YAML 1.1",
    "---",
    "...",
    "\t",
    "2026-13-45",
    "2026-01-01T10:00:00",
    ".inf",
    ".nan",
    "0x1F",
    "0o17",
    "1_000",
    "1e999",
    "9" * 4301,
    "{{ . }}",
    "{{ s.v }}",
    "{{ [] }}",
    '"{{ x }}"',
    "@",
    "`",
    "\x85",
    "\ufeff",
    "\u2028",
]
raw_texts = st.lists(
    st.tuples(st.integers(0, 8), st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4)),
    max_size=10,
).map(lambda lines: "\n".join(" " * indent + " ".join(parts) for indent, parts in lines) + "\n")


@pytest.fixture
def fenced(monkeypatch: pytest.MonkeyPatch) -> None:
    """No entry point and no import: generated names reach the harmless steps or nothing."""

    def refuse(name: str, package: str | None = None) -> types.ModuleType:
        raise ModuleNotFoundError(f"No module named {name!r} (the fuzzer imports nothing)", name=name)

    monkeypatch.setattr(registry_module.Registry, "registrations", lambda self: {})
    monkeypatch.setattr(
        registry_module,
        "importlib",
        types.SimpleNamespace(import_module=refuse, invalidate_caches=lambda: None),
    )


def _exercise(text: str) -> None:
    """loads → validate → plan → run, each allowed only the documented errors."""
    resolver = stepengine.InMemoryResolver(
        blocks={"secret/t": "tok-5e3a-9d", "json/j": {"a": {"b": [1, 2]}}}, variables={"v": "var"}
    )
    env = {"HOME": "/home/fuzz"}
    try:
        config = stepengine.loads(text, file="fuzz.yaml")
    except DOCUMENTED:
        return
    for call in (
        lambda: stepengine.validate(config, steps=STEPS, values={"x": 1}),
        lambda: plan(config, steps=STEPS, values={"x": 1}, resolver=resolver, env=env),
        lambda: stepengine.run(config, steps=STEPS, values={"x": 1}, resolver=resolver, env=env),
    ):
        try:
            call()
        except DOCUMENTED as exc:
            str(exc)  # the message itself must render
            if isinstance(exc, StepExecutionError):
                assert exc.exit_code == 1
            else:
                assert exc.exit_code == 2


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(yaml_texts)
# the crash corpus (each crashed with something undocumented before; see tests/test_bad_input.py)
@example("pull:\n- 5: {}\n")
@example("pull:\n- null: {}\n")
@example("pull:\n- .os.system: {}\n")
@example("pull:\n- echo:\n    id: s\n    v: '{{ . }}'\n- echo:\n    v: '{{ s }}'\n")
@example("pull:\n- returns:\n    value: {'a': {'x': '{{ [] }}'}}\n")
@example("pull:\n- bare: {}\n")
@example("pull:\n- echo:\n    5: x\n")
def test_generated_files_raise_only_documented_errors(fenced: None, text: str) -> None:
    _exercise(text)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw_texts)
@example("a:\n  =: 1\n")
@example("a:\n  !foo b: 1\n")
@example("a: " + "9" * 4301 + "\n")
@example("a: 2026-13-45\n")
@example("!!timestamp z\n")
@example("a: &a [*a]\n")
@example("a: &a [1]\nb: {<<: *a}\n")
def test_raw_yaml_raises_only_documented_errors(fenced: None, text: str) -> None:
    _exercise(text)


# -- the command, once, with a few generated files ------------------------------------------------

CLI_STEPS = """
def echo(**arguments):
    return dict(arguments)


def fail(**arguments):
    from stepengine.step_api import StepError

    raise StepError("failed on purpose")


def returns(value=None, **arguments):
    return value
"""


def _for_the_command(document: object) -> object:
    """The same document with its harmless step names spelled as this test's module path."""
    if isinstance(document, dict):
        return {
            (f"fuzz_cli_steps.{k}" if k in ("echo", "fail", "returns") else k): _for_the_command(v)
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [_for_the_command(v) for v in document]
    return document


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    documents(st.sampled_from(NAMES)).filter(lambda d: any(k in d for k in ("build", "push", "pull"))),
    st.booleans(),
)
def test_the_command_exits_0_1_or_2_on_generated_files(
    tmp_path_factory: pytest.TempPathFactory, document: object, flow: bool
) -> None:
    """Step names come only from NAMES: the module path of a harmless step here, or a name that
    resolves to nothing (never a real step: this run has no fence)."""
    work = tmp_path_factory.mktemp("cli-fuzz")
    (work / "fuzz_cli_steps.py").write_text(CLI_STEPS)
    text = _dump(_for_the_command(document), flow)
    text = text.replace("no_such_step", "fuzz_cli_steps.no_such_step")
    (work / "prefect.yaml").write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(work)]), "HOME": str(work)}
    for verb in (["validate"], ["plan"], ["run", "--output", "json"]):
        done = subprocess.run(
            [sys.executable, "-m", "stepengine", *verb],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode in (0, 1, 2), f"{verb} exited {done.returncode} on:\n{text}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{verb} on:\n{text}\n{done.stderr}"
