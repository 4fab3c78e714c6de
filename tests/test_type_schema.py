"""One converter from type hints to JSON Schema (``stepengine.type_schema``) for step arguments and flow
parameters: a hint gives the same schema whether it is read from an imported function or from source."""

from __future__ import annotations

import ast
import datetime
import pathlib
import typing as t

import pytest

from stepengine.signatures import argument_issues, step_schema
from stepengine.type_schema import hint_schema, source_hint_schema

#: (hint as written, the schema; Prefect 3's ``parameter_schema`` gives the same for each)
CASES: list[tuple[str, dict[str, t.Any]]] = [
    ("int", {"type": "integer"}),
    ("str", {"type": "string"}),
    ("bool", {"type": "boolean"}),
    ("float", {"type": "number"}),
    ("None", {"type": "null"}),
    ("Any", {}),
    ("bytes", {"type": "string", "format": "binary"}),
    ("pathlib.Path", {"type": "string", "format": "path"}),
    ("datetime.datetime", {"type": "string", "format": "date-time"}),
    ("list", {"type": "array", "items": {}}),
    ("list[str]", {"type": "array", "items": {"type": "string"}}),
    ("List[int]", {"type": "array", "items": {"type": "integer"}}),
    ("set[int]", {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
    ("dict[str, int]", {"type": "object", "additionalProperties": {"type": "integer"}}),
    ("Mapping[str, str]", {"type": "object", "additionalProperties": {"type": "string"}}),
    # where the two converters differed: Literal (type), tuples (prefixItems), unions (anyOf)
    ("Literal['a', 'b']", {"enum": ["a", "b"], "type": "string"}),
    ("Literal[1, 'a']", {"enum": [1, "a"]}),
    (
        "tuple[int, str]",
        {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "minItems": 2,
            "maxItems": 2,
        },
    ),
    ("tuple[int, ...]", {"type": "array", "items": {"type": "integer"}}),
    ("tuple", {"type": "array", "items": {}}),
    ("Optional[int]", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    ("int | str", {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    ("Union[int, str, None]", {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
    ("Union[int, Any]", {}),
    ("Annotated[int, 'why']", {"type": "integer"}),
    (
        "Optional[Literal['a', 'b']]",
        {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]},
    ),
]

_NAMES = {
    **{
        name: getattr(t, name)
        for name in ("Any", "List", "Mapping", "Literal", "Optional", "Union", "Annotated")
    },
    "pathlib": pathlib,
    "datetime": datetime,
}


@pytest.mark.parametrize(("written", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_hint_has_one_schema_imported_or_read_from_source(written: str, expected: dict[str, t.Any]) -> None:
    assert hint_schema(eval(written, dict(_NAMES))) == expected
    assert source_hint_schema(ast.parse(written, mode="eval").body) == expected


def test_a_step_argument_gets_the_same_rules_and_is_still_checked() -> None:
    def step(mode: t.Literal["a", "b"], pair: tuple[int, str], name: str | None = None) -> None: ...

    properties = step_schema(step)["properties"]
    assert properties["mode"] == {"enum": ["a", "b"], "type": "string"}
    assert properties["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert properties["name"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert argument_issues(step, {"mode": "c", "pair": [1, "x"], "name": 3}) == [
        ("mode", "'mode' must be one of 'a', 'b', got str 'c'"),
        ("name", "'name' must be a string or null, got int 3"),
    ]


def test_a_yaml_date_is_accepted_where_a_date_is_hinted() -> None:
    def step(day: datetime.date, when: datetime.datetime, blob: bytes) -> None: ...

    assert (
        argument_issues(step, {"day": datetime.date(2024, 1, 1), "when": "2024-01-01T00:00:00", "blob": b"x"})
        == []
    )
    assert argument_issues(step, {"day": 3, "when": "x", "blob": b"x"}) == [
        ("day", "'day' must be a string, got int 3")
    ]
