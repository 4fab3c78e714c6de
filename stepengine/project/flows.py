"""Flow registration by reading the source: ``@flow`` functions, found with ``ast``, never imported.

A file whose imports are not installed (``pandas``, even ``prefect``) is read just the same. Each flow
gives its name (the decorator's ``name=``, else the function name with ``_`` → ``-``, as Prefect
does), its entrypoint ``path/file.py:function``, its description (``description=`` or the docstring)
and the JSON schema of its parameters, derived from the signature: type hints, defaults, required.
Records go to ``.prefect/flows.json`` in the project directory.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import typing as t
from pathlib import Path

from stepengine.errors import ConfigError
from stepengine.type_schema import source_hint_schema

__all__ = [
    "FlowInfo",
    "find_flows",
    "flow_at",
    "load_registry",
    "parameter_schema",
    "record_flows",
    "register_flows",
    "resolve_entrypoint",
]

FLOWS_FILE = Path(".prefect") / "flows.json"
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "env",
    "__pycache__",
    "node_modules",
    ".prefect",
    ".tox",
    "site-packages",
}


@dataclasses.dataclass(frozen=True)
class FlowInfo:
    """One ``@flow`` function, as the source shows it."""

    name: str
    entrypoint: str
    function: str
    description: str | None
    parameters: dict[str, t.Any]
    line: int = 0
    #: the decorator's ``version=``, else Prefect's default: the MD5 of the flow's file
    version: str | None = None

    def to_json(self) -> dict[str, t.Any]:
        return {
            "entrypoint": self.entrypoint,
            "function": self.function,
            "description": self.description,
            "parameter_openapi_schema": self.parameters,
        }


# ------------------------------------------------------------------------------------------------
# finding flows


def _flow_aliases(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names bound to ``prefect.flow`` and to the ``prefect`` module in this file."""
    names = {"flow"}
    modules = {"prefect"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("prefect", "prefect.flows"):
            for alias in node.names:
                if alias.name == "flow":
                    names.add(alias.asname or "flow")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "prefect":
                    modules.add(alias.asname or "prefect")
    return names, modules


def _flow_decorator(
    node: ast.FunctionDef | ast.AsyncFunctionDef, names: set[str], modules: set[str]
) -> ast.expr | None:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id in names:
            return decorator
        if isinstance(target, ast.Attribute) and target.attr == "flow":
            base = target.value
            if isinstance(base, ast.Name) and base.id in modules:
                return decorator
    return None


def _keyword(decorator: ast.expr, name: str) -> str | None:
    if isinstance(decorator, ast.Call):
        for keyword in decorator.keywords:
            if (
                keyword.arg == name
                and isinstance(keyword.value, ast.Constant)
                and isinstance(keyword.value.value, str)
            ):
                return keyword.value.value
    return None


def parse_source(path: Path) -> tuple[ast.Module, str]:
    """The module's AST and the MD5 of its bytes (Prefect's default flow version)."""
    import hashlib

    try:
        data = path.read_bytes()
        source = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(
            f"invalid Python: {exc.msg}", file=str(path), line=exc.lineno, col=exc.offset
        ) from None
    return tree, hashlib.md5(data, usedforsecurity=False).hexdigest()


def flows_in_file(path: str | os.PathLike[str], *, root: str | os.PathLike[str] = ".") -> list[FlowInfo]:
    """Every module-level ``@flow`` function of one file; entrypoints are relative to ``root``."""
    file = Path(path)
    tree, digest = parse_source(file)
    names, modules = _flow_aliases(tree)
    relative = _relative(file, Path(root))
    found = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        decorator = _flow_decorator(node, names, modules)
        if decorator is None:
            continue
        found.append(
            FlowInfo(
                name=_keyword(decorator, "name") or node.name.replace("_", "-"),
                entrypoint=f"{relative}:{node.name}",
                function=node.name,
                description=_keyword(decorator, "description") or ast.get_docstring(node),
                parameters=parameter_schema(node),
                line=node.lineno,
                version=_keyword(decorator, "version") or digest,
            )
        )
    return found


def _relative(file: Path, root: Path) -> str:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return file.resolve().as_posix()


def find_flows(path: str | os.PathLike[str], *, root: str | os.PathLike[str] = ".") -> list[FlowInfo]:
    """Flows in a file, or in every ``.py`` file under a directory (virtualenvs and ``.git`` skipped)."""
    start = Path(path)
    if start.is_file():
        return flows_in_file(start, root=root)
    if not start.is_dir():
        raise ConfigError(f"{path}: no such file or directory")
    found = []
    for folder, dirs, files in os.walk(start):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                found.extend(flows_in_file(Path(folder) / name, root=root))
    return found


def flow_at(entrypoint: str, *, root: str | os.PathLike[str] = ".") -> FlowInfo:
    """The flow an entrypoint ``path/file.py:function`` names (the function need not be decorated)."""
    file_part, sep, function = entrypoint.rpartition(":")
    if not sep or not file_part or not function:
        raise ConfigError(f"entrypoint {entrypoint!r} is not path/to/file.py:function")
    file = Path(root) / file_part
    if not file.is_file():
        raise ConfigError(f"entrypoint {entrypoint!r}: {file_part} does not exist in {Path(root).resolve()}")
    tree, digest = parse_source(file)
    names, modules = _flow_aliases(tree)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            decorator = _flow_decorator(node, names, modules)
            return FlowInfo(
                name=(_keyword(decorator, "name") if decorator is not None else None)
                or function.replace("_", "-"),
                entrypoint=entrypoint,
                function=function,
                description=(_keyword(decorator, "description") if decorator is not None else None)
                or ast.get_docstring(node),
                parameters=parameter_schema(node),
                line=node.lineno,
                version=(_keyword(decorator, "version") if decorator is not None else None) or digest,
            )
    from stepengine._suggest import did_you_mean

    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    raise ConfigError(
        f"entrypoint {entrypoint!r}: {file_part} defines no function {function!r}"
        + did_you_mean(function, defined)
    )


# ------------------------------------------------------------------------------------------------
# parameter schemas from signatures

_NO_DEFAULT = object()


def _default(node: ast.expr | None) -> t.Any:
    if node is None:
        return _NO_DEFAULT
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ...  # a default exists but is not a literal: not required, no default shown
    if isinstance(value, (tuple, set, frozenset)):
        value = list(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return ...
    return value


def parameter_schema(node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, t.Any]:
    """The parameters' JSON schema, in the shape Prefect stores (``parameter_openapi_schema``)."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=False)) + list(
        zip(args.kwonlyargs, args.kw_defaults, strict=False)
    )
    if args.vararg is not None:  # as Prefect: *args is an array parameter, **kwargs an object one
        pairs.insert(len(positional), (args.vararg, None))
    if args.kwarg is not None:
        pairs.append((args.kwarg, None))
    properties: dict[str, t.Any] = {}
    required = []
    for position, (arg, default_node) in enumerate(pairs):
        if arg is args.vararg or arg is args.kwarg:
            item = source_hint_schema(arg.annotation)
            schema: dict[str, t.Any] = {
                "title": arg.arg,
                "position": position,
                "default": [] if arg is args.vararg else {},
            }
            if arg is args.vararg:
                schema.update(type="array", items=item)
            else:
                schema.update(type="object", additionalProperties=item or True)
            properties[arg.arg] = schema
            continue
        schema = {"title": arg.arg, "position": position}
        schema.update(source_hint_schema(arg.annotation))
        default = _default(default_node)
        if default is _NO_DEFAULT:
            required.append(arg.arg)
        elif default is not ...:
            schema["default"] = default
        properties[arg.arg] = schema
    result: dict[str, t.Any] = {"title": "Parameters", "type": "object", "properties": properties}
    if required:
        result["required"] = required
    return result


# ------------------------------------------------------------------------------------------------
# the registry file


def load_registry(root: str | os.PathLike[str] = ".") -> dict[str, dict[str, t.Any]]:
    """``.prefect/flows.json``: flow name → record. Prefect 2.10's form (name → entrypoint) is read too."""
    path = Path(root) / FLOWS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of flows")
    return {str(k): ({"entrypoint": v} if isinstance(v, str) else dict(v)) for k, v in data.items()}


def register_flows(path: str | os.PathLike[str], *, root: str | os.PathLike[str] = ".") -> list[FlowInfo]:
    """Find the flows under ``path`` and record them in ``<root>/.prefect/flows.json`` (atomically)."""
    flows = find_flows(path, root=root)
    record_flows(flows, root=root)
    return flows


def record_flows(flows: t.Iterable[FlowInfo], *, root: str | os.PathLike[str] = ".") -> None:
    """Add or replace these flows' records in ``<root>/.prefect/flows.json`` (atomically)."""
    registry = load_registry(root)
    for flow in flows:
        registry[flow.name] = flow.to_json()
    target = Path(root) / FLOWS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(dict(sorted(registry.items())), indent=2) + "\n", encoding="utf-8")
    os.replace(staging, target)


def resolve_entrypoint(text: str, *, root: str | os.PathLike[str] = ".") -> str:
    """An entrypoint as ``deploy`` takes it, made relative to ``root``: ``path/file.py:function``
    (``./`` and absolute paths inside ``root`` allowed), or a file or directory holding exactly one
    ``@flow`` (``stepengine deploy ./``)."""
    base = Path(root)
    file_part, sep, function = text.rpartition(":")
    if sep and file_part and function and not Path(text).exists():
        return f"{_relative(base / file_part, base)}:{function}"
    target = base / text
    if not target.exists():
        raise ConfigError(f"entrypoint {text!r} is not path/to/file.py:function, nor a file or directory")
    flows = find_flows(target, root=base)
    if len(flows) == 1:
        return flows[0].entrypoint
    if not flows:
        raise ConfigError(
            f"{text}: no @flow functions found", hint="name the function: path/to/file.py:function"
        )
    listing = ", ".join(f"{f.name} ({f.entrypoint})" for f in flows)
    raise ConfigError(
        f"{text}: {len(flows)} flows found: {listing}",
        hint=f"name one: stepengine deploy {flows[0].entrypoint} -n NAME",
    )


def registered_entrypoint(flow_name: str, *, root: str | os.PathLike[str] = ".") -> str:
    """The entrypoint recorded for ``flow_name`` (``deploy -f``)."""
    registry = load_registry(root)
    if flow_name in registry and registry[flow_name].get("entrypoint"):
        return str(registry[flow_name]["entrypoint"])
    from stepengine._suggest import did_you_mean

    raise ConfigError(
        f"no registered flow named {flow_name!r}" + did_you_mean(flow_name, list(registry)),
        hint="register flows with `stepengine flows register PATH`"
        + (f"; registered: {', '.join(sorted(registry))}" if registry else ""),
    )
