"""Type hints → JSON Schema: the one converter, for step arguments and flow parameters.

Two front ends read a hint into the same small form, ``(name, arguments)``; one set of rules turns
that into a schema:

- ``hint_schema``: a hint as Python holds it (a step's function is imported: ``get_type_hints``);
- ``source_hint_schema``: a hint as written in source (a flow's file is never imported: ``ast``),
  where a name is known by its last part (``typing.List`` and ``List`` alike).

The rules are those of the schema Prefect stores for a flow's parameters (pydantic's): a union is an
``anyOf`` of its distinct members (``{}`` if one of them is unknown or ``Any``); ``Optional[X]`` is
``X | None``; ``Annotated[X, …]`` is ``X``; a ``Literal`` is an ``enum``, with a ``type`` when all its
values are of one kind; a fixed tuple has ``prefixItems`` and its length, ``tuple[X, ...]`` and the
sequences have ``items``; sets add ``uniqueItems``; a mapping's values are its
``additionalProperties``; dates, times, UUIDs, paths and bytes are strings with a ``format``.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    import ast  # imported where a source hint is read: a plain run reads none (cold start)

__all__ = ["hint_schema", "source_hint_schema"]

#: a hint read by either front end: a known name (``""`` for an unknown one) and its arguments
#: (hints, or a ``Literal``'s values; ``...`` stands for the ellipsis of ``tuple[X, ...]``)
Form = tuple[str, tuple[t.Any, ...]]

_SIMPLE: dict[str, dict[str, t.Any]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "Decimal": {"type": "number"},
    "complex": {},
    "str": {"type": "string"},
    "bytes": {"type": "string", "format": "binary"},
    "bool": {"type": "boolean"},
    "dict": {"type": "object"},
    "Dict": {"type": "object"},
    "Mapping": {"type": "object"},
    "MutableMapping": {"type": "object"},
    "list": {"type": "array", "items": {}},
    "List": {"type": "array", "items": {}},
    "Sequence": {"type": "array", "items": {}},
    "MutableSequence": {"type": "array", "items": {}},
    "Iterable": {"type": "array", "items": {}},
    "tuple": {"type": "array", "items": {}},
    "Tuple": {"type": "array", "items": {}},
    "set": {"type": "array", "items": {}, "uniqueItems": True},
    "Set": {"type": "array", "items": {}, "uniqueItems": True},
    "frozenset": {"type": "array", "items": {}, "uniqueItems": True},
    "FrozenSet": {"type": "array", "items": {}, "uniqueItems": True},
    "None": {"type": "null"},
    "NoneType": {"type": "null"},
    "Any": {},
    "object": {},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "timedelta": {"type": "number", "format": "time-delta"},
    "UUID": {"type": "string", "format": "uuid"},
    "Path": {"type": "string", "format": "path"},
    "PurePath": {"type": "string", "format": "path"},
}
_LITERAL_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number"}


def hint_schema(hint: t.Any) -> dict[str, t.Any]:
    """A JSON Schema for a type hint object (``{}`` when it cannot say anything useful)."""
    return _schema(_form(hint))


def source_hint_schema(node: ast.expr | None) -> dict[str, t.Any]:
    """A JSON Schema for a type hint as written in source (a string hint is parsed; ``{}`` for none)."""
    return _schema(_source_form(node)) if node is not None else {}


# -- the rules -------------------------------------------------------------------------------------


def _schema(form: Form) -> dict[str, t.Any]:
    name, args = form
    if name == "Union":
        return _union(args)
    if name == "Literal":
        schema: dict[str, t.Any] = {"enum": list(args)}
        kinds = {type(value) for value in args}
        if len(kinds) == 1 and kinds.pop() in _LITERAL_TYPES:
            schema["type"] = _LITERAL_TYPES[type(args[0])]
        return schema
    base = dict(_SIMPLE.get(name, {}))
    if not args:
        return base
    if base.get("type") == "array":
        if name in ("tuple", "Tuple") and not (len(args) == 2 and args[1] is ...):
            del base["items"]
            base["prefixItems"] = [_schema(a) for a in args if a is not ...]
            base["minItems"] = base["maxItems"] = len(base["prefixItems"])
        else:
            base["items"] = _schema(args[0])
    elif base.get("type") == "object" and len(args) == 2:
        base["additionalProperties"] = _schema(args[1])
    return base


def _union(members: t.Sequence[Form]) -> dict[str, t.Any]:
    schemas: list[dict[str, t.Any]] = []
    for member in members:
        schema = _schema(member)
        if schema == {}:
            return {}  # a union with Any (or an unknown type) accepts anything we can describe
        if schema not in schemas:
            schemas.append(schema)
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


# -- hints as Python holds them ----------------------------------------------------------------------

#: classes known by where they are defined, so that a user's own ``Path`` class is not taken for one
_BY_MODULE = {
    ("datetime", "datetime"): "datetime",
    ("datetime", "date"): "date",
    ("datetime", "time"): "time",
    ("datetime", "timedelta"): "timedelta",
    ("uuid", "UUID"): "UUID",
    ("decimal", "Decimal"): "Decimal",
    ("collections.abc", "Mapping"): "Mapping",
    ("collections.abc", "MutableMapping"): "MutableMapping",
    ("collections.abc", "Sequence"): "Sequence",
    ("collections.abc", "MutableSequence"): "MutableSequence",
    ("collections.abc", "Iterable"): "Iterable",
}
_BUILTINS = {str, int, float, bool, bytes, complex, list, tuple, set, frozenset, dict, object}


def _form(hint: t.Any) -> Form:
    import os
    import types

    if hint is t.Any:
        return ("Any", ())
    if hint is None or hint is type(None):
        return ("None", ())
    origin = t.get_origin(hint)
    args = t.get_args(hint)
    if origin is t.Union or origin is types.UnionType:
        return ("Union", tuple(_form(a) for a in args))
    if origin is t.Literal:
        return ("Literal", args)
    if origin is t.Annotated:
        return _form(args[0])
    if origin is not None:
        name = _class_name(origin)
        return (name, tuple(... if a is ... else _form(a) for a in args)) if name else ("", ())
    if isinstance(hint, type):
        if issubclass(hint, os.PathLike):
            return ("Path", ())
        return (_class_name(hint), ())
    return (_class_name(t.get_origin(hint) or hint), ())  # typing.Mapping, typing.List bare


def _class_name(cls: t.Any) -> str:
    try:
        if cls in _BUILTINS:
            return str(cls.__name__)
    except TypeError:  # an unhashable object as a hint: nothing known about it
        return ""
    return _BY_MODULE.get((getattr(cls, "__module__", ""), getattr(cls, "__qualname__", "")), "")


# -- hints as written in source ----------------------------------------------------------------------


def _name_of(node: ast.expr) -> str | None:
    import ast

    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return None


def _source_form(node: ast.expr) -> Form:
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _source_form(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return ("", ())
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | Y
        return ("Union", tuple(_source_form(member) for member in _flatten_or(node)))
    if isinstance(node, ast.Subscript):
        origin = _name_of(node.value) or ""
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if origin == "Optional":
            return ("Union", (_source_form(args[0]), ("None", ())))
        if origin == "Union":
            return ("Union", tuple(_source_form(a) for a in args))
        if origin == "Annotated":
            return _source_form(args[0])
        if origin == "Literal":
            return ("Literal", tuple(a.value for a in args if isinstance(a, ast.Constant)))
        return (
            origin,
            tuple(
                ... if isinstance(a, ast.Constant) and a.value is Ellipsis else _source_form(a) for a in args
            ),
        )
    return (_name_of(node) or "", ())


def _flatten_or(node: ast.expr) -> t.Iterator[ast.expr]:
    import ast

    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        yield from _flatten_or(node.left)
        yield from _flatten_or(node.right)
    else:
        yield node
