"""Validation of a loaded document against ``schemas/prefect.yaml.schema.json``, errors located in the file.

All problems are collected (not just the first) and each is rendered as ``FILE:LINE:COL: message
(path)``, the message naming the step it is in (``pull[1] (clone: git_clone)``). Unknown top-level and
deployment keys are warnings with a did-you-mean (errors with ``strict``).
"""

from __future__ import annotations

import functools
import json
import os
import typing as t

from stepengine.errors import Issue, step_label
from stepengine.loader import Document

if t.TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from stepengine.registry import Registry

__all__ = ["check_document", "file_schema", "format_path", "schema_path"]

_SCHEMA_NAME = "prefect.yaml.schema.json"


def schema_path() -> str:
    """Where the schema file is: inside the installed package, or in the source checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (
        os.path.join(here, "schemas", _SCHEMA_NAME),
        os.path.join(os.path.dirname(here), "schemas", _SCHEMA_NAME),
    ):
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"{_SCHEMA_NAME} is missing from the stepengine installation")


@functools.lru_cache(maxsize=1)
def _schema_bytes() -> bytes:
    with open(schema_path(), "rb") as handle:
        return handle.read()


@functools.lru_cache(maxsize=1)
def file_schema() -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], json.loads(_schema_bytes()))


def format_path(path: t.Sequence[t.Any]) -> str:
    """``("pull", 1, "git_clone", "branch")`` → ``pull[1].git_clone.branch`` (dotted keys quoted)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text or any(c in text for c in ".[] "):
                text = json.dumps(text)
            out += ("." if out else "") + text
    return out


def _step_context(data: t.Any, path: t.Sequence[t.Any]) -> tuple[str | None, int]:
    """If ``path`` is inside a step, its label (``pull[1] (clone: git_clone)``) and the step path length."""
    from stepengine.config import FINALLY, SECTIONS

    for start in range(len(path)):
        if path[start] in SECTIONS + (FINALLY,) and (start == 0 or (start == 2 and path[0] == "deployments")):
            if len(path) > start + 1 and isinstance(path[start + 1], int):
                node = _get(data, path[: start + 2])
                function = step_id = None
                if isinstance(node, dict) and len(node) == 1:
                    ((function, args),) = node.items()
                    step_id = args.get("id") if isinstance(args, dict) else None
                label = step_label(
                    path[start],
                    path[start + 1],
                    step_id if isinstance(step_id, str) else None,
                    str(function) if function is not None else None,
                )
                if path[0] == "deployments":
                    dep = _get(data, path[:2])
                    name = dep.get("name") if isinstance(dep, dict) else None
                    label = f"deployment {name!r} {label}" if name else f"deployments[{path[1]}] {label}"
                return label, start + 2
    return None, 0


def _get(data: t.Any, path: t.Sequence[t.Any]) -> t.Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def check_document(document: Document, *, strict: bool = False) -> list[Issue]:
    """Every schema problem in ``document`` (errors and warnings), in file order."""
    from stepengine import _cache

    # A document that a full validation already found valid (same data, schema and jsonschema)
    # skips importing jsonschema; anything else is validated in full (see stepengine._cache).
    key = _cache.document_key(document.data, _schema_bytes())
    errors: list[ValidationError] = []
    if not _cache.is_known_valid(key):
        import jsonschema

        validator = jsonschema.Draft202012Validator(file_schema())
        errors = list(validator.iter_errors(document.data))
        if not errors:
            _cache.remember_valid(key)
    # A step with several keys gets one clear error; the values of its extra keys are not
    # "step arguments", so their type errors would only confuse.
    crowded = {tuple(e.absolute_path) for e in errors if e.validator == "maxProperties"}
    issues = [
        _issue(document, error)
        for error in errors
        if not (error.validator == "type" and tuple(error.absolute_path)[:-1] in crowded)
    ]
    issues.extend(_unknown_keys(document, strict=strict))
    issues.extend(_name_issues(document))
    # values only some Prefect versions accept (warnings naming the versions that refuse them)
    from stepengine.prefect_versions import version_issues

    issues.extend(version_issues(document, strict=strict))
    issues.sort(key=lambda i: (i.line or 0, i.col or 0))
    return issues


def _name_issues(document: Document) -> list[Issue]:
    """Step names and argument names must be text (YAML reads ``5:``, ``~:`` or ``true:`` as a
    number, null or boolean, which JSON Schema cannot see: its keys are always strings)."""
    from stepengine.config import FINALLY, SECTIONS

    data = document.data
    if not isinstance(data, dict):
        return []
    places: list[tuple[tuple[t.Any, ...], t.Any]] = [((s,), data.get(s)) for s in SECTIONS + (FINALLY,)]
    deployments = data.get("deployments")
    for index, entry in enumerate(deployments if isinstance(deployments, list) else ()):
        if isinstance(entry, dict):
            places += [(("deployments", index, s), entry.get(s)) for s in SECTIONS + (FINALLY,)]
    issues = []
    for section_path, section in places:
        steps = (
            [(section_path + (i,), step) for i, step in enumerate(section)]
            if isinstance(section, list)
            else ([(section_path, section)] if isinstance(section, dict) else [])
        )
        for step_path, step in steps:
            if not isinstance(step, dict):
                continue
            for name, arguments in step.items():
                if not isinstance(name, str):
                    line, col = document.position(step_path + (name,)) or (None, None)
                    issues.append(
                        Issue(
                            f"{_where(data, step_path)}a step name must be text, got {_describe(name)}; "
                            "quote it if it is a name",
                            document.file,
                            line,
                            col,
                            format_path(step_path),
                        )
                    )
                    continue
                for argument in arguments if isinstance(arguments, dict) else ():
                    if not isinstance(argument, str):
                        line, col = document.position(step_path + (name, argument)) or (None, None)
                        issues.append(
                            Issue(
                                f"{_where(data, step_path + (name,))}an argument name must be text, got "
                                f"{_describe(argument)}; quote it if it is a name",
                                document.file,
                                line,
                                col,
                                format_path(step_path + (name,)),
                            )
                        )
    return issues


def _where(data: t.Any, path: tuple[t.Any, ...]) -> str:
    """``pull[0] (clone: git_clone): `` for a path inside a step, ``pull[0]: `` for the step itself."""
    if isinstance(path[-1], int):
        label = step_label(path[-2], path[-1], None, None)
        if path[0] == "deployments":
            name = _get(data, path[:2] + ("name",))
            label = (
                f"deployment {name!r} {label}" if isinstance(name, str) else f"deployments[{path[1]}] {label}"
            )
        return f"{label}: "
    context = _step_context(data, path)[0]
    return f"{context}: " if context else ""


def _describe(value: t.Any) -> str:
    return "null" if value is None else f"{_kind(value)} {value!r}"


def _issue(document: Document, error: ValidationError) -> Issue:
    import jsonschema.exceptions

    if error.context:
        error = jsonschema.exceptions.best_match(error.context) or error
    path = list(error.absolute_path)
    label, step_length = _step_context(document.data, path)
    message = _message(document.data, error, path, at_arguments=bool(label) and len(path) == step_length + 1)
    if label:
        message = f"{label}: {message}"
    line, col = document.position(path) or (None, None)
    return Issue(message, document.file, line, col, format_path(path))


def _message(data: t.Any, error: ValidationError, path: list[t.Any], *, at_arguments: bool = False) -> str:
    keyword = error.validator
    instance: t.Any = error.instance
    # both set on every error a validator yields (only a hand-made ValidationError leaves them unset)
    rule_value: t.Any = error.validator_value
    schema_path = list(error.absolute_schema_path)
    in_step = "step" in [p for p in schema_path if isinstance(p, str)] or (
        len(path) >= 2 and isinstance(path[-1], int)
    )
    if keyword == "maxProperties" and isinstance(instance, dict) and in_step:
        keys = ", ".join(map(str, instance))
        return (
            f"a step must have exactly one key (its function name), found {len(instance)}: {keys}; "
            "indent the arguments under the function name"
        )
    if keyword == "minProperties" and isinstance(instance, dict) and not instance:
        return "a step must have exactly one key (its function name), found none"
    if keyword == "type":
        expected = rule_value
        expected = expected if isinstance(expected, list) else [expected]
        names = {
            "object": "a mapping",
            "array": "a list",
            "string": "a string",
            "null": "null",
            "integer": "an integer",
            "number": "a number",
            "boolean": "true or false",
        }
        wanted = " or ".join(str(names.get(e, e)) for e in expected)
        if path and path[-1] in ("build", "push", "pull"):
            return f"section {path[-1]!r} must be a list of steps, got {_kind(instance)}"
        if at_arguments and "maxProperties" not in schema_path:
            return f"the arguments of a step must be a mapping (or empty), got {_kind(instance)}"
        shown = "" if instance is None else " " + _short(instance)
        return f"expected {wanted}, got {_kind(instance)}{shown}"
    if keyword == "required":
        missing = [k for k in rule_value if not (isinstance(instance, dict) and k in instance)]
        return "missing required key " + ", ".join(map(repr, missing))
    if keyword == "enum":
        return f"must be one of {', '.join(map(repr, rule_value))}, got {_short(instance)}"
    if keyword == "minLength":
        return "must not be empty"
    if keyword in ("minimum", "exclusiveMinimum"):
        relation = "at least" if keyword == "minimum" else "more than"
        return f"must be {relation} {rule_value}, got {_short(instance)}"
    if keyword == "pattern" and rule_value == "^[0-9]+$":
        return f"must be a whole number, got {_short(instance)}"
    if keyword == "minItems":
        return "must not be an empty list"
    if keyword == "maxProperties":
        return f"must have at most {rule_value} key(s), found {len(instance)}"
    # A keyword this function does not word yet: name it without dumping the schema (a test scans
    # every message for schema dumps over a set of bad files).
    return f"invalid value {_short(instance)} (fails the schema's {keyword!r} rule)"


def _kind(value: t.Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _short(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_keys(document: Document, *, strict: bool) -> list[Issue]:
    from stepengine._suggest import did_you_mean

    data = document.data
    if not isinstance(data, dict):
        return []
    schema = file_schema()
    severity = "error" if strict else "warning"
    issues = []
    known_top = list(schema["properties"])
    for key in data:
        if key not in known_top:
            line, col = document.position((key,)) or (None, None)
            issues.append(
                Issue(
                    f"unknown top-level key {key!r}" + did_you_mean(str(key), known_top),
                    document.file,
                    line,
                    col,
                    format_path((key,)),
                    severity,
                )
            )
    known_dep = list(schema["$defs"]["deployment"]["properties"])
    deployments = data.get("deployments")
    for index, entry in enumerate(deployments if isinstance(deployments, list) else ()):
        if not isinstance(entry, dict):
            continue
        for key in entry:
            if key not in known_dep:
                path = ("deployments", index, key)
                line, col = document.position(path) or (None, None)
                name = entry.get("name")
                where = f"deployment {name!r}" if isinstance(name, str) else f"deployments[{index}]"
                issues.append(
                    Issue(
                        f"{where}: unknown key {key!r}" + did_you_mean(str(key), known_dep),
                        document.file,
                        line,
                        col,
                        format_path(path),
                        severity,
                    )
                )
    return issues


def composed_schema(registry: Registry | None = None) -> dict[str, t.Any]:
    """The file schema plus, for every installed step, its argument schema derived from its signature.

    Editors then complete step names and check their arguments. Steps that cannot be imported are left
    out (``stepengine steps`` shows why).
    """
    import copy

    from stepengine.registry import Registry
    from stepengine.signatures import step_schema

    registry = registry or Registry()
    schema = copy.deepcopy(file_schema())
    defs = schema["$defs"]
    steps: dict[str, t.Any] = {}
    for name in registry.names():
        try:
            function = registry.resolve(name)
        except Exception:
            continue
        steps[name] = step_schema(function.func)
    defs["stepsByName"] = steps
    defs["step"]["properties"] = {name: {"$ref": f"#/$defs/stepsByName/{_pointer(name)}"} for name in steps}
    return schema


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")
