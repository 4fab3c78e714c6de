"""Argument checks from step signatures: memoized per function, with unchanged results."""

from __future__ import annotations

import functools
import typing as t

from hypothesis import given, settings
from hypothesis import strategies as st

from stepengine import signatures
from stepengine.signatures import argument_issues


def step(path: str, count: int = 1) -> dict:
    return {}


def test_repeated_checks_give_the_same_problems_and_read_the_signature_once() -> None:
    signatures._MEMO.clear()
    expected = [
        ("cuont", "unknown argument 'cuont' (did you mean 'count'?); it accepts: path, count"),
        ("path", "'path' must be a string, got int 5"),
    ]
    for _ in range(3):
        assert argument_issues(step, {"path": 5, "cuont": 2}) == expected
    assert sorted(kind for kind, _ in signatures._MEMO) == ["hints", "parameters", "schemas"]
    assert all(func is step for func, _ in signatures._MEMO.values())


def test_callables_that_are_new_objects_each_time_are_not_memoized() -> None:
    signatures._MEMO.clear()
    assert argument_issues(functools.partial(step, count=2), {}) == [
        (None, "missing required argument 'path'")
    ]
    assert signatures._MEMO == {}
    assert argument_issues(lambda **kw: {}, {"anything": 1}) == []
    assert sorted(kind for kind, _ in signatures._MEMO) == [
        "hints",
        "parameters",
        "schemas",
    ]  # the lambda: a plain function


# --- parameters read from the code object (no ``inspect`` on the cold path) -------------------------

_PARAM_NAMES = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]), unique=True, max_size=6)


@st.composite
def _function_source(draw: st.DrawFn) -> str:
    """The source of a function with any mix of positional-only, positional-or-keyword, *args,
    keyword-only and **kwargs parameters, with or without defaults (in the orders Python allows)."""
    names = draw(_PARAM_NAMES)
    cut1 = draw(st.integers(0, len(names)))
    cut2 = draw(st.integers(cut1, len(names)))
    posonly, positional, keyword = names[:cut1], names[cut1:cut2], names[cut2:]
    ordered = posonly + positional
    first_default = draw(st.integers(0, len(ordered)))
    parts = [f"{n}={i!r}" if i >= first_default else n for i, n in enumerate(ordered)]
    if posonly:
        parts.insert(len(posonly), "/")
    star = draw(st.booleans())
    if keyword or star:
        parts.append("*args" if star else "*")
    parts += [f"{n}=None" if draw(st.booleans()) else n for n in keyword]
    if draw(st.booleans()):
        parts.append("**kwargs")
    return f"def step({', '.join(parts)}):\n    pass\n"


@settings(max_examples=300, deadline=None)
@given(_function_source())
def test_parameters_from_the_code_object_match_inspect(source: str) -> None:
    from stepengine.signatures import _inspect_parameters, _read_parameters

    namespace: dict[str, t.Any] = {}
    exec(source, namespace)
    assert _read_parameters(namespace["step"]) == _inspect_parameters(namespace["step"]), source


def test_a_wrapped_function_is_read_through_its_wrapper() -> None:
    """``functools.wraps`` (``__wrapped__``): the parameters are the wrapped function's, as inspect says."""
    import functools

    from stepengine.signatures import REQUIRED, _read_parameters

    def inner(directory: str, depth: int = 1) -> dict[str, t.Any]:
        return {}

    @functools.wraps(inner)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
        return inner(*args, **kwargs)

    assert _read_parameters(wrapper) == ({"directory": REQUIRED, "depth": 1}, False)
