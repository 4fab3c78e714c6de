"""The config's value classes (``Step``, ``Deployment``, ``Config``): frozen records with value equality."""

from __future__ import annotations

import pytest

from stepengine.config import Config, Step


def _step(**changes: object) -> Step:
    base: dict[str, object] = {"section": "pull", "index": 0, "function": "a.b", "arguments": {"x": 1}}
    return Step(**{**base, **changes})


def test_fields_defaults_and_positional_construction() -> None:
    step = Step("pull", 0, "a.b", {"x": 1})
    assert step == _step()
    assert (step.id, step.requires, step.controls, step.path) == (None, (), {}, ())
    assert _step().controls is not _step().controls  # a fresh default per instance


def test_frozen() -> None:
    step = _step()
    with pytest.raises(AttributeError):
        step.index = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del step.function  # type: ignore[misc]


def test_equality_is_by_value_and_class() -> None:
    assert _step() == _step()
    assert _step() != _step(index=1)
    assert _step() != ("pull", 0, "a.b", {"x": 1})
    # the parsed document is not part of a Config's value
    assert Config("f.yaml", {}, {}, document=object()) == Config("f.yaml", {}, {}, document=object())  # type: ignore[arg-type]
    assert hash(Config("f.yaml", (), ())) == hash(Config("f.yaml", (), ()))  # type: ignore[arg-type]


def test_repr_leaves_out_the_bulky_fields() -> None:
    text = repr(_step(path=("pull", 0), argument_positions={"x": (3, 7)}))
    assert text.startswith("Step(section='pull', index=0, function='a.b', arguments={'x': 1}, id=None")
    assert "argument_positions" not in text and "path" not in text


def test_replace_makes_a_changed_copy() -> None:
    step = _step(id="clone")
    other = step.replace(arguments={"y": 2})
    assert (other.arguments, other.id, step.arguments) == ({"y": 2}, "clone", {"x": 1})
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        step.replace(nope=1)


def test_wrong_construction_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="missing required argument: 'arguments'"):
        Step("pull", 0, "a.b")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        Step("pull", 0, "a.b", {}, section="push")  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 12 arguments"):
        Step(*range(13))  # type: ignore[arg-type]
