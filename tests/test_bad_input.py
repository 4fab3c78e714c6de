"""Bad input gets a clear error and its documented exit code, never a crash (issue 14).

Each case here crashed with exit 3 (a traceback asking for a bug report) before: 2 is invalid input,
1 a step that failed. The bounded fuzzer in ``tests/test_fuzz.py`` looks for more; what it finds is
added here as an explicit example.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import StepExecutionError, TemplateError, ValidationError, YAMLSyntaxError
from stepengine.loader import parse_document

ROOT = Path(__file__).resolve().parents[1]


class Bare(BaseException):
    """Not an Exception: what a careless step might raise."""


def echo(**arguments: object) -> dict[str, object]:
    return dict(arguments)


def returns(value: object) -> dict[str, object]:
    return value  # type: ignore[return-value]


def raise_bare() -> None:
    raise Bare("bare")


STEPS = {"echo": echo, "returns": returns, "raise_bare": raise_bare}


def _loads(text: str) -> stepengine.Config:
    return stepengine.loads(textwrap.dedent(text), file="bad.yaml")


# -- the loader ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, position, message",
    [
        (
            "a:\n  =: 1\n",
            (2, 3),
            "could not determine a constructor for the tag 'tag:yaml.org,2002:value'\n"
            "hint: quote it ('=') to keep it as text",
        ),
        (
            "a:\n  !foo b: 1\n",
            (2, 3),
            "could not determine a constructor for the tag '!foo'\n"
            "hint: remove the tag !foo: only YAML's standard tags are read",
        ),
        (
            "a: " + "7" * 4301 + "\n",
            (1, 4),
            "an integer of 4,301 characters is longer than Python reads (4,300 digits)\n"
            "hint: quote it to keep it as text",
        ),
        (
            "? " + "7" * 4400 + "\n: 1\n",
            (1, 3),
            "an integer of 4,400 characters is longer than Python reads (4,300 digits)\n"
            "hint: quote it to keep it as text",
        ),
        (
            "a: 2026-13-45\n",
            (1, 4),
            "cannot read this value (timestamp): month must be in 1..12\nhint: quote it to keep it as text",
        ),
        (
            "a: !!int x\n",
            (1, 4),
            "cannot read this value (int): invalid literal for int() with base 10: 'x'\n"
            "hint: quote it to keep it as text",
        ),
        ("a: !!timestamp z\n", (1, 4), "cannot read 'z' as a timestamp\nhint: quote it to keep it as text"),
    ],
    ids=[
        "equals-key",
        "unknown-tag-key",
        "long-integer",
        "long-integer-key",
        "impossible-date",
        "bad-int-tag",
        "bad-timestamp",
    ],
)
def test_values_yaml_cannot_construct_are_located(text: str, position: tuple[int, int], message: str) -> None:
    with pytest.raises(YAMLSyntaxError) as info:
        parse_document(text, "bad.yaml")
    assert (info.value.line, info.value.col) == position
    assert str(info.value) == f"bad.yaml:{position[0]}:{position[1]}: {message}"


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "pull:\n  - 5: {}\n",
            "bad.yaml:2:5: pull[0]: a step name must be text, got an integer 5; quote it if it is a name (pull[0])",
        ),
        (
            "pull:\n  - ~: {}\n",
            "bad.yaml:2:5: pull[0]: a step name must be text, got null; quote it if it is a name (pull[0])",
        ),
        (
            "pull:\n  - true: {}\n",
            "bad.yaml:2:5: pull[0]: a step name must be text, got a boolean True; quote it if it is a name (pull[0])",
        ),
        (
            "deployments:\n  - name: d\n    pull:\n      - 1.5: {}\n",
            "bad.yaml:4:9: deployment 'd' pull[0]: a step name must be text, got a number 1.5; quote it if it is a name (deployments[0].pull[0])",
        ),
        (
            "pull:\n  - echo:\n      5: x\n",
            "bad.yaml:3:7: pull[0] (echo): an argument name must be text, got an integer 5; quote it if it is a name (pull[0].echo)",
        ),
    ],
    ids=["integer", "null", "boolean", "in-a-deployment", "argument"],
)
def test_a_name_that_is_not_text_is_invalid(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        stepengine.validate(_loads(text), steps=STEPS)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "name", [".os.system", "..os.system", "os..system", "os.system ", "os:sys tem", "os.:system"]
)
def test_a_relative_or_malformed_module_path_is_never_imported(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        stepengine.validate(_loads(f'pull:\n  - "{name}": {{command: "true"}}\n'))
    assert f"unknown step {name!r}" in str(info.value)


def test_a_step_module_that_fails_to_import_is_a_lookup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_syntax.py").write_text("def f(:\n")
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValidationError) as info:
        stepengine.validate(_loads("pull:\n  - broken_syntax.f: {}\n  - exits_on_import.f: {}\n"))
    assert [i.message for i in info.value.issues] == [
        "pull[0] (f): step 'broken_syntax.f': importing broken_syntax failed: SyntaxError: invalid syntax (broken_syntax.py, line 1)",
        "pull[1] (f): step 'exits_on_import.f': importing exits_on_import failed: SystemExit: 4",
    ]


# -- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("placeholder", ["{{ . }}", "{{ [] }}", "{{ .. }}", "{{ [][] }}"])
def test_a_placeholder_naming_nothing_is_invalid(placeholder: str) -> None:
    """It used to resolve to the whole namespace, which a step output then made circular."""
    config = _loads(f'pull:\n  - echo:\n      id: a\n      v: "{placeholder}"\n')
    with pytest.raises(ValidationError) as info:
        stepengine.validate(config, steps=STEPS)
    assert (
        str(info.value) == f"bad.yaml:4:7: pull[0] (a: echo): {placeholder} names no value (pull[0].echo.v)"
    )
    from stepengine.templating import TemplateContext, render

    with pytest.raises(TemplateError, match="names no value"):
        render(placeholder, TemplateContext({"a": 1}))


# -- steps ---------------------------------------------------------------------------------------


def test_a_step_raising_a_bare_base_exception_failed() -> None:
    with pytest.raises(StepExecutionError) as info:
        stepengine.run(_loads("pull:\n  - raise_bare: {}\n"), steps=STEPS)
    assert str(info.value) == "bad.yaml:2:5: pull[0] (raise_bare) failed: Bare: bare"
    assert isinstance(info.value.__cause__, Bare)


def _self_containing() -> dict[str, object]:
    inner: dict[str, object] = {}
    inner["again"] = [inner]
    return {"inner": inner}


@pytest.mark.parametrize(
    "output, problem",
    [
        ({5: "x"}, "has a key that is not text: 5"),
        ({"a": {"b": [{(1, 2): "x"}]}}, "has a key that is not text: (1, 2) in a.b[0]"),
        ({"a": {None: 1}}, "has a key that is not text: None in a"),
        (_self_containing(), "contains itself at inner.again[0] (a circular reference)"),
    ],
    ids=["integer-key", "tuple-key-deep", "null-key", "circular"],
)
def test_a_step_output_that_cannot_be_a_template_value_fails_the_step(output: object, problem: str) -> None:
    with pytest.raises(StepExecutionError) as info:
        stepengine.run(
            _loads("pull:\n  - returns:\n      id: r\n      value: '{{ value }}'\n"),
            steps=STEPS,
            values={"value": output},
        )
    assert str(info.value).startswith(
        "bad.yaml:2:5: pull[0] (r: returns) failed: its output " + problem + "\n"
    )


def test_shared_values_in_an_output_are_not_circular() -> None:
    shared = {"x": 1}
    assert stepengine.run(
        _loads("pull:\n  - returns:\n      id: r\n      value: '{{ value }}'\n"),
        steps=STEPS,
        values={"value": {"a": shared, "b": [shared, shared]}},
    )["r"] == {"a": {"x": 1}, "b": [{"x": 1}] * 2}


# -- through the command: exit codes -------------------------------------------------------------

ODD_STEPS = """
class Bare(BaseException):
    pass


def bare():
    raise Bare("bare")


def tuple_keys():
    return {"a": {(1, 2): "x"}}


def circular():
    d = {}
    d["self"] = d
    return {"c": d}
"""


@pytest.mark.parametrize(
    "text, verb, code, expected",
    [
        ("pull:\n  - 5: {}\n", "validate", 2, "a step name must be text"),
        ("pull:\n  - ~: {}\n", "plan", 2, "a step name must be text"),
        ("pull:\n  - .os.system: {command: 'true'}\n", "validate", 2, "unknown step '.os.system'"),
        ("pull:\n  - set_working_directory:\n      =: 1\n", "validate", 2, "quote it ('=')"),
        ("pull:\n  - set_working_directory:\n      !foo a: 1\n", "validate", 2, "remove the tag !foo"),
        (
            "pull:\n  - set_working_directory:\n      directory: " + "1" * 5000 + "\n",
            "validate",
            2,
            "4,300 digits",
        ),
        ('pull:\n  - set_working_directory:\n      directory: "{{ . }}"\n', "plan", 2, "names no value"),
        ("pull:\n  - odd_steps.bare: {}\n", "run", 1, "failed: Bare: bare"),
        (
            "pull:\n  - odd_steps.tuple_keys: {}\n",
            "run --output json",
            1,
            "its output has a key that is not text: (1, 2) in a",
        ),
        (
            "pull:\n  - odd_steps.circular: {}\n",
            "run --save-outputs out.json",
            1,
            "its output contains itself at c.self",
        ),
    ],
)
def test_the_command_gives_the_documented_exit_code(
    tmp_path: Path, text: str, verb: str, code: int, expected: str
) -> None:
    (tmp_path / "odd_steps.py").write_text(ODD_STEPS)
    (tmp_path / "prefect.yaml").write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    done = subprocess.run(
        [sys.executable, "-m", "stepengine", *verb.split()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "expression, problem",
    [
        ("'a' * 10**10", "is not allowed: the result would have more than 1,000,000 characters or items"),
        ("[1] * 10**9", "is not allowed: the result would have more than 1,000,000 characters or items"),
        ("10**5000", "is not allowed: the result would be an integer too large to use"),
        ("(10**4000) * (10**4000)", "is not allowed: the result would be an integer too large to use"),
        ("2**100000000", "is not allowed: the result would be an integer too large to use"),
    ],
)
def test_an_expression_cannot_expand_without_bound(expression: str, problem: str) -> None:
    """A few bytes of expression used to take the whole memory, never end, or crash printing an integer."""
    config = _loads(f'pull:\n  - echo:\n      v: "{{{{ {expression} }}}}"\n')
    with pytest.raises(TemplateError) as info:
        stepengine.run(config, steps=STEPS)
    assert str(info.value) == f"bad.yaml:3:7: pull[0] (echo): {{{{ {expression} }}}} {problem}"


def test_small_products_and_powers_still_work() -> None:
    config = _loads(
        'pull:\n  - echo:\n      id: e\n      a: "{{ \'ab\' * 3 }}"\n      b: "{{ 2 ** 100 }}"\n      c: "{{ 6 * 7 }}"\n'
    )
    assert stepengine.run(config, steps=STEPS)["e"] == {"a": "ababab", "b": 2**100, "c": 42}


@pytest.mark.parametrize(
    "expression, problem",
    [
        ("'a'|center(10**9)", "an argument over 1,000,000 (a size could take the whole memory)"),
        ("'a b'|wordwrap(10**8)", "an argument over 1,000,000 (a size could take the whole memory)"),
        ("lipsum(10**9)", "an argument over 1,000,000 (a size could take the whole memory)"),
        ("'a'.zfill(10**9)", "an argument over 1,000,000 (a size could take the whole memory)"),
        ("'%999999999d' % 1", "a width or precision over 1,000,000 in a format pattern"),
        ("'%999999999d'|format(1)", "a width or precision over 1,000,000 in a format pattern"),
        ("'{:>999999999}'.format(1)", "a width or precision over 1,000,000 in a format pattern"),
    ],
)
def test_sizes_given_to_filters_functions_and_patterns_are_bounded(expression: str, problem: str) -> None:
    config = _loads(f'pull:\n  - echo:\n      v: "{{{{ {expression} }}}}"\n')
    with pytest.raises(TemplateError) as info:
        stepengine.run(config, steps=STEPS)
    assert (
        str(info.value) == f"bad.yaml:3:7: pull[0] (echo): {{{{ {expression} }}}} is not allowed: {problem}"
    )


def test_values_inserted_by_a_pattern_are_not_sizes() -> None:
    config = _loads(
        "pull:\n  - echo:\n      id: e\n"
        "      a: \"{{ 'build-{}'.format(1700000000000) }}\"\n"
        "      b: \"{{ '%s-%05d'|format(1700000000000, 42) }}\"\n"
        "      c: \"{{ '%d' % 1700000000000 }}\"\n"
        "      d: \"{{ 'x'|center(5) }}\"\n"
    )
    assert stepengine.run(config, steps=STEPS)["e"] == {
        "a": "build-1700000000000",
        "b": "1700000000000-00042",
        "c": "1700000000000",
        "d": "  x  ",
    }
