"""Step signatures: the argument schema derived from a step function, and the checks made with it.

One source of truth: a step's Python signature (names, defaults, type hints, docstring). From it come
the JSON Schema of its arguments (``stepengine schema``, editor completion) and the validation of the
arguments a file passes (unknown names with did-you-mean, missing required ones, literal values of the
wrong type), all before any step runs.
"""

from __future__ import annotations

import typing as t

from stepengine.type_schema import hint_schema

__all__ = ["argument_issues", "step_schema"]


_MEMO: dict[tuple[str, int], tuple[t.Any, t.Any]] = {}


def _memo(kind: str, func: t.Any, compute: t.Callable[[t.Any], t.Any]) -> t.Any:
    """``compute(func)`` once per plain function: a file calling one step a thousand times would
    otherwise pay ``inspect.signature`` and ``get_type_hints`` a thousand times. (The function is
    kept referenced, so its ``id`` cannot be reused; callers must not mutate the result.)"""
    if type(func).__name__ != "function":  # bound methods, partials, callables: new objects, no memo
        return compute(func)
    key = (kind, id(func))
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is func:
        return hit[1]
    value = compute(func)
    _MEMO[key] = (func, value)
    return value


#: the default of a parameter that has none (a required one)
REQUIRED = object()

_CO_VARKEYWORDS = 0x08  # inspect.CO_VARKEYWORDS


def _parameters(func: t.Callable[..., t.Any]) -> tuple[dict[str, t.Any], bool]:
    """(name → default, or ``REQUIRED``, for each keyword-passable parameter; accepts ``**kwargs``)."""
    return t.cast(tuple[dict[str, t.Any], bool], _memo("parameters", func, _read_parameters))


def _read_parameters(func: t.Callable[..., t.Any]) -> tuple[dict[str, t.Any], bool]:
    """For a plain function, read from its code object (what ``inspect.signature`` does for one,
    without importing ``inspect``: ~4 ms of every cold run); anything else goes to ``inspect``."""
    if type(func).__name__ != "function" or hasattr(func, "__wrapped__") or hasattr(func, "__signature__"):
        return _inspect_parameters(func)
    code = func.__code__
    names = code.co_varnames
    positional = names[: code.co_argcount]
    defaults = func.__defaults__ or ()
    first_default = len(positional) - len(defaults)
    params: dict[str, t.Any] = {}
    for index in range(code.co_posonlyargcount, len(positional)):  # positional-only: not by keyword
        params[positional[index]] = defaults[index - first_default] if index >= first_default else REQUIRED
    keyword_defaults = func.__kwdefaults__ or {}
    for name in names[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]:
        params[name] = keyword_defaults.get(name, REQUIRED)
    return params, bool(code.co_flags & _CO_VARKEYWORDS)


def _inspect_parameters(func: t.Callable[..., t.Any]) -> tuple[dict[str, t.Any], bool]:
    import inspect

    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return {}, True
    params = {}
    var_keyword = False
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            var_keyword = True
        elif param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            params[param.name] = REQUIRED if param.default is param.empty else param.default
    return params, var_keyword


def _hints(func: t.Callable[..., t.Any]) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], _memo("hints", func, _read_hints))


def _read_hints(func: t.Callable[..., t.Any]) -> dict[str, t.Any]:
    try:
        return t.get_type_hints(func)
    except Exception:  # unresolvable forward references: no type information, not an error
        return {}


def step_schema(func: t.Callable[..., t.Any]) -> dict[str, t.Any]:
    """The JSON Schema of a step's arguments (reserved keys ``id``, ``requires``, control keys included)."""
    import inspect

    params, var_keyword = _parameters(func)
    hints = _hints(func)
    properties: dict[str, t.Any] = {
        "id": {"type": "string", "description": "Name under which this step's outputs are available."},
        "requires": {"type": ["string", "array"], "description": "Package(s) providing this step."},
    }
    # the control keys (if, retries, timeout_seconds...) are defined once, in the file schema
    from stepengine.config import CONTROL_KEYS
    from stepengine.schema import file_schema

    controls = file_schema()["$defs"]["stepArguments"]["properties"]
    properties.update({key: controls[key] for key in sorted(CONTROL_KEYS)})
    required = []
    for name, default in params.items():
        schema = hint_schema(hints.get(name, t.Any)) if name in hints else {}
        schema = dict(schema)
        if default is REQUIRED:
            required.append(name)
        elif _jsonable(default):
            schema["default"] = default
        properties[name] = schema
    result: dict[str, t.Any] = {"type": ["object", "null"], "properties": properties}
    if required:
        result["required"] = required
    if not var_keyword:
        result["additionalProperties"] = False
    doc = inspect.getdoc(func)
    if doc:
        result["description"] = doc.strip()
    return result


def _jsonable(value: t.Any) -> bool:
    return (
        value is None
        or isinstance(value, (str, int, float, bool))
        or (isinstance(value, (list, dict)) and not value)
    )


def argument_issues(
    func: t.Callable[..., t.Any], arguments: t.Mapping[str, t.Any]
) -> list[tuple[str | None, str]]:
    """Problems with ``arguments`` for ``func``: a list of (argument name or None, message).

    Values that contain a ``{{ placeholder }}`` are not type-checked (they are known only at run time).
    """
    from stepengine._suggest import did_you_mean
    from stepengine.templating import iter_strings

    params, var_keyword = _parameters(func)
    problems: list[tuple[str | None, str]] = []
    if not var_keyword:
        for name in arguments:
            if name not in params:
                problems.append(
                    (name, f"unknown argument {name!r}" + did_you_mean(str(name), params) + _accepts(params))
                )
    missing = [n for n, default in params.items() if default is REQUIRED and n not in arguments]
    if missing:
        problems.append(
            (
                None,
                "missing required argument"
                + ("s " if len(missing) > 1 else " ")
                + ", ".join(map(repr, missing)),
            )
        )
    schemas = _argument_schemas(func)
    for name, value in arguments.items():
        schema = schemas.get(name)
        if not schema or name not in params:
            continue
        if "{{" in value if isinstance(value, str) else any("{{" in s for s in iter_strings(value)):
            continue
        if not _matches(value, schema):
            problems.append(
                (name, f"{name!r} must be {_describe(schema)}, got {type(value).__name__} {value!r}")
            )
    return problems


def _argument_schemas(func: t.Callable[..., t.Any]) -> dict[str, dict[str, t.Any]]:
    """The JSON Schema of each type-hinted parameter (once per function: a file may call a step
    thousands of times)."""
    return t.cast(
        dict[str, dict[str, t.Any]],
        _memo("schemas", func, lambda f: {name: hint_schema(hint) for name, hint in _hints(f).items()}),
    )


def _accepts(params: t.Mapping[str, t.Any]) -> str:
    if not params:
        return "; this step takes no arguments"
    return "; it accepts: " + ", ".join(params)


_TYPES: dict[str, t.Callable[[t.Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _no(value: t.Any) -> bool:
    return False


#: values YAML gives as Python objects that a string ``format`` stands for (a date is a ``date``)
_FORMATS: dict[t.Any, t.Callable[[t.Any], bool]] = {
    "date": lambda v: type(v).__module__ == "datetime" and type(v).__name__ == "date",
    "date-time": lambda v: type(v).__module__ == "datetime" and type(v).__name__ in ("date", "datetime"),
    "binary": lambda v: isinstance(v, bytes),
}


def _matches(value: t.Any, schema: dict[str, t.Any]) -> bool:
    """A small structural check (types, enums, union branches): enough for argument hints."""
    if "anyOf" in schema:
        return any(_matches(value, s) for s in schema["anyOf"])
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = kind if isinstance(kind, list) else [kind]
    if not any(_TYPES[k](value) for k in kinds) and not _FORMATS.get(schema.get("format"), _no)(value):
        return False
    if isinstance(value, list) and "items" in schema:
        return all(_matches(v, schema["items"]) for v in value)
    return True


def _describe(schema: dict[str, t.Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    if "anyOf" in schema:
        return " or ".join(_describe(s) for s in schema["anyOf"])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    names = {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "array": "a list",
        "object": "a mapping",
        "null": "null",
    }
    return " or ".join(names.get(str(k), str(k)) for k in kinds)
