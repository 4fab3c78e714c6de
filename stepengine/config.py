"""The typed configuration: ``Config`` → sections of frozen ``Step`` values, and ``Deployment`` overrides.

A ``Step`` is built once from the validated document and travels unchanged from registry to runner, so
no later stage reaches back into raw YAML. Its ``arguments`` are the raw (untemplated) values.
"""

from __future__ import annotations

import functools
import typing as t

from stepengine.errors import ConfigError, Issue, short_name, step_label
from stepengine.loader import Document

if t.TYPE_CHECKING:
    from stepengine.resolvers import Resolver

__all__ = [
    "CONTROL_KEYS",
    "FINALLY",
    "RESERVED_KEYS",
    "SECTIONS",
    "Config",
    "Deployment",
    "RunOptions",
    "Step",
]

#: the sections a file may have, in the order they run by default
SECTIONS: tuple[str, ...] = ("build", "push", "pull")

#: the cleanup section (top level or per deployment): its steps run after the chosen sections,
#: even when one of them failed or the run was interrupted (issue 8)
FINALLY = "finally"

#: keys that control *how* a step runs (issue 8); Prefect does not know them
CONTROL_KEYS: frozenset[str] = frozenset(
    {"if", "retries", "retry_delay_seconds", "retry_on", "timeout_seconds", "continue_on_error"}
)

#: keys of a step's mapping that belong to the engine, not to the step function (one place for all)
RESERVED_KEYS: frozenset[str] = frozenset({"id", "requires"} | CONTROL_KEYS)


_V = t.TypeVar("_V", bound="_Value")
_T = t.TypeVar("_T")

if t.TYPE_CHECKING:  # typing.dataclass_transform is 3.11+; only the type checker needs it
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: t.Any) -> t.Callable[[_T], _T]:
        return lambda cls: cls


class _Factory:
    """A field default made fresh for each instance (like ``dataclasses.field(default_factory=...)``)."""

    def __init__(self, make: t.Callable[[], t.Any]) -> None:
        self.make = make


def _fresh(*, default_factory: t.Callable[[], _T]) -> _T:
    """A field default made by calling ``default_factory`` for each instance (the field specifier)."""
    return t.cast(_T, _Factory(default_factory))


@dataclass_transform(frozen_default=True, field_specifiers=(_fresh,))
class _Value:
    """Base of the value classes below: a frozen record with ``==``, ``hash``, ``repr`` and ``replace``.

    This is what ``@dataclass(frozen=True)`` gives, written out: importing ``dataclasses`` (which
    imports ``inspect``, ``ast``, ``dis`` and ``tokenize``) and generating the methods cost ~7 ms, a
    tenth of a cold ``stepengine run``. The fields are the subclass's annotations, in order; a class
    attribute is a field's default (``_Factory`` for a fresh one each time); fields named in
    ``_hidden`` stay out of the repr and those in ``_uncompared`` out of ``==`` and ``hash``.
    """

    _fields: t.ClassVar[tuple[str, ...]] = ()
    _defaults: t.ClassVar[dict[str, t.Any]] = {}
    _hidden: t.ClassVar[frozenset[str]] = frozenset()
    _uncompared: t.ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        annotations = cls.__dict__.get("__annotations__", {})
        cls._fields = tuple(name for name in annotations if not name.startswith("_"))
        cls._defaults = {name: cls.__dict__[name] for name in cls._fields if name in cls.__dict__}
        for name in cls._defaults:
            delattr(cls, name)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        name = type(self).__name__
        if len(args) > len(self._fields):
            raise TypeError(f"{name}() takes {len(self._fields)} arguments but {len(args)} were given")
        values = dict(zip(self._fields, args, strict=False))
        for key, value in kwargs.items():
            if key not in self._fields:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            values[key] = value
        for key in self._fields:
            if key not in values:
                if key not in self._defaults:
                    raise TypeError(f"{name}() missing required argument: {key!r}")
                default = self._defaults[key]
                values[key] = default.make() if isinstance(default, _Factory) else default
        self.__dict__.update((key, values[key]) for key in self._fields)

    @classmethod
    def _trusted(cls: type[_V], **values: t.Any) -> _V:
        """An instance from fields given by name, without ``__init__``'s checks: for the loader's
        hot path (a file with 10,000 deployments builds 30,000 steps)."""
        obj = object.__new__(cls)
        for key, default in cls._defaults.items():
            if key not in values:
                values[key] = default.make() if isinstance(default, _Factory) else default
        obj.__dict__.update(values)
        return obj

    def __setattr__(self, name: str, value: t.Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _compared(self) -> tuple[t.Any, ...]:
        return tuple(self.__dict__[key] for key in self._fields if key not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={self.__dict__[key]!r}" for key in self._fields if key not in self._hidden)
        return f"{type(self).__name__}({shown})"

    def replace(self: _V, **changes: t.Any) -> _V:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return type(self)(**{**{key: self.__dict__[key] for key in self._fields}, **changes})


class Step(_Value):
    """One step of a section, as written in the file (arguments not yet templated)."""

    section: str
    index: int
    #: the function name as written, e.g. ``prefect.deployments.steps.git_clone``
    function: str
    arguments: t.Mapping[str, t.Any]
    id: str | None = None
    requires: tuple[str, ...] = ()
    #: reserved keys other than ``id`` and ``requires`` (control keys), as written
    controls: t.Mapping[str, t.Any] = _fresh(default_factory=dict)
    file: str | None = None
    line: int | None = None
    col: int | None = None
    #: (line, column) of each argument key, for error messages
    argument_positions: t.Mapping[str, tuple[int, int]] = _fresh(default_factory=dict)
    #: the document path of the step's argument mapping, e.g. ``("deployments", 0, "pull", 1, "git_clone")``
    path: tuple[t.Any, ...] = ()

    _hidden = frozenset({"argument_positions", "path"})

    @property
    def short_name(self) -> str:
        return short_name(self.function)

    @property
    def label(self) -> str:
        """How messages name this step: ``pull[1] (clone: git_clone)``."""
        return step_label(self.section, self.index, self.id, self.function)

    @property
    def location(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


class Deployment(_Value):
    """A deployment entry. ``sections`` holds only the sections it overrides.

    ``name`` is ``None`` for an unnamed deployment (``prefect init`` writes ``name: null``; Prefect asks
    for a name, or skips the deployment when it cannot ask): it cannot be chosen by name.
    """

    name: str | None
    index: int
    data: t.Mapping[str, t.Any]
    sections: t.Mapping[str, tuple[Step, ...]]


class Config(_Value):
    """A loaded prefect.yaml. ``sections`` may also hold ``FINALLY`` (cleanup steps).

    A ``Config`` from ``stepengine.load`` is schema-valid. One from ``stepengine.checks.load_config``
    may carry ``problems``: schema errors kept to be reported with the step errors before anything
    runs (``stepengine.checks.prepare`` raises them all); the parts they concern are left out.
    """

    file: str | None
    data: t.Mapping[str, t.Any]
    sections: t.Mapping[str, tuple[Step, ...]]
    deployments: tuple[Deployment, ...] = ()
    document: Document | None = None
    #: warnings found while loading (unknown keys), already rendered
    warnings: tuple[str, ...] = ()
    #: errors found while loading (schema) that did not stop the ``Config`` from being built
    problems: tuple[Issue, ...] = ()

    _hidden = frozenset({"document"})
    _uncompared = frozenset({"document"})

    @property
    def name(self) -> str | None:
        return self.data.get("name")

    def deployment(self, selector: str | Deployment) -> Deployment:
        """The one deployment ``selector`` names, chosen as ``prefect deploy -n`` chooses: a name,
        ``FLOW/NAME`` (FLOW: the entrypoint's function name, ``-`` and ``_`` alike), or a shell-style
        pattern (``etl-*``, ``*/prod``). An exact name wins over a pattern. No match, or several, is
        a ``ConfigError`` listing the deployments.
        """
        if isinstance(selector, Deployment):
            return selector
        matches = self._by_name.get(selector) or self.select_deployments(selector)
        if len(matches) == 1:
            return matches[0]
        names = [_qualified(d) for d in self.deployments]
        if matches:
            raise ConfigError(
                f"{selector!r} matches {len(matches)} deployments: "
                f"{', '.join(_qualified(d) for d in matches)}",
                file=self.file,
                hint="name one of them (FLOW/NAME tells apart deployments of the same name)",
            )
        from stepengine._suggest import did_you_mean

        pattern = any(c in selector for c in "*?[")
        known = [d.name for d in self.deployments if isinstance(d.name, str)]
        raise ConfigError(
            f"no deployment matches {selector!r}"
            if pattern
            else f"no deployment named {selector!r}" + did_you_mean(selector.rpartition("/")[2], known),
            file=self.file,
            hint=f"deployments in this file: {', '.join(names)}"
            if names
            else "this file defines no deployments",
        )

    def select_deployments(self, selector: str) -> list[Deployment]:
        """Every deployment ``selector`` matches (a name, ``FLOW/NAME``, or a pattern of either)."""
        import fnmatch

        flow, slash, name = selector.rpartition("/")
        found = []
        for deployment in self.deployments:
            if not isinstance(deployment.name, str):
                continue
            if not (deployment.name == name or fnmatch.fnmatchcase(deployment.name, name)):
                continue
            if slash:
                function = _flow_function(deployment)
                if function is None or not fnmatch.fnmatchcase(function, flow.replace("_", "-")):
                    continue
            found.append(deployment)
        return found

    @functools.cached_property
    def _by_name(self) -> dict[str, list[Deployment]]:
        index: dict[str, list[Deployment]] = {}
        for deployment in self.deployments:
            if isinstance(deployment.name, str):
                index.setdefault(deployment.name, []).append(deployment)
        return index

    def steps(self, section: str, deployment: str | Deployment | None = None) -> tuple[Step, ...]:
        """The steps of ``section``, with a deployment's override applied.

        Prefect's rule: a ``build``/``push``/``pull`` key present in the deployment replaces the
        top-level one (``pull: []`` means no pull steps); an omitted or null key falls back.
        """
        entry = self.deployment(deployment) if deployment is not None else None
        return self.section_steps(section, entry) or ()

    def section_steps(self, section: str, entry: Deployment | None = None) -> tuple[Step, ...] | None:
        """Like ``steps``, for a deployment entry, and ``None`` when the section is absent everywhere."""
        if entry is not None and section in entry.sections:
            return entry.sections[section]
        return self.sections.get(section)

    def steps_for(
        self, sections: t.Sequence[str] | None, deployment: str | Deployment | None = None
    ) -> list[Step]:
        """The steps of the chosen sections (default: those present) in order, then ``finally``.
        A section named twice runs once."""
        entry = self.deployment(deployment) if deployment is not None else None
        chosen = list(dict.fromkeys(sections)) if sections else self.present_sections(entry)
        steps: list[Step] = []
        for section in chosen + [FINALLY]:
            steps.extend(self.section_steps(section, entry) or ())
        return steps

    def finally_steps(self, deployment: str | Deployment | None = None) -> tuple[Step, ...]:
        """The cleanup steps: a deployment's ``finally`` replaces the top-level one (like the others)."""
        return self.steps(FINALLY, deployment)

    def present_sections(self, deployment: str | Deployment | None = None) -> list[str]:
        present = set(self.sections)
        if deployment is not None:
            present |= set(self.deployment(deployment).sections)
        return [s for s in SECTIONS if s in present]


def _flow_function(deployment: Deployment) -> str | None:
    """The flow name ``-d FLOW/NAME`` matches: the entrypoint's function name, ``_`` written ``-``
    as in Prefect's flow names (``flows/etl.py:etl_flow`` → ``etl-flow``)."""
    entrypoint = deployment.data.get("entrypoint")
    if not isinstance(entrypoint, str) or not entrypoint:
        return None
    return entrypoint.rsplit(":", 1)[-1].replace("_", "-")


def _qualified(deployment: Deployment) -> str:
    """``flow/name`` when the entrypoint says the flow, else the name."""
    function = _flow_function(deployment)
    return f"{function}/{deployment.name}" if function else str(deployment.name)


def build_config(document: Document, *, reserved_keys: frozenset[str] = RESERVED_KEYS) -> Config:
    """Turn a document into a ``Config``. Parts the schema rejects (a step that is not a one-key
    mapping, a section that is not a list, a deployment that is not a mapping) are left out: they
    are reported by the schema check, and the rest can still be checked."""
    data = document.data if isinstance(document.data, dict) else {}
    sections: dict[str, tuple[Step, ...]] = {}
    for section in SECTIONS + (FINALLY,):
        if section in data and data[section] is not None:
            sections[section] = _build_section(document, section, data[section], (section,), reserved_keys)
    deployments = []
    entries = data.get("deployments")
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        if not isinstance(entry, dict):
            continue
        overrides: dict[str, tuple[Step, ...]] = {}
        for section in SECTIONS + (FINALLY,):
            if entry.get(section) is not None:
                overrides[section] = _build_section(
                    document, section, entry[section], ("deployments", index, section), reserved_keys
                )
        deployments.append(Deployment(name=entry.get("name"), index=index, data=entry, sections=overrides))
    return Config(
        file=document.file,
        data=data,
        sections=sections,
        deployments=tuple(deployments),
        document=document,
    )


def _build_section(
    document: Document, section: str, value: t.Any, path: tuple[t.Any, ...], reserved_keys: frozenset[str]
) -> tuple[Step, ...]:
    if isinstance(value, dict):
        # a single step mapping, or {} (both accepted by Prefect)
        items = [value] if value else []
        item_paths = [path] if value else []
    elif isinstance(value, list):
        items = value
        item_paths = [path + (i,) for i in range(len(items))]
    else:
        return ()
    steps = []
    positions = document.positions
    for index, (item, item_path) in enumerate(zip(items, item_paths, strict=False)):
        if not (isinstance(item, dict) and len(item) == 1):
            continue  # an empty item ({} or null) is skipped, as Prefect's step runner skips it
        ((function, raw),) = item.items()
        if not isinstance(function, str) or not (raw is None or isinstance(raw, dict)):
            continue
        raw = raw or {}
        arg_path = item_path + (function,)
        line, col = positions.get(arg_path) or document.position(arg_path) or (None, None)
        arguments = {k: v for k, v in raw.items() if k not in reserved_keys}
        controls = (
            {k: v for k, v in raw.items() if k in reserved_keys and k != "id" and k != "requires"}
            if len(arguments) != len(raw)
            else {}
        )
        requires = raw.get("requires") or ()
        if isinstance(requires, str):
            requires = (requires,)
        step_id = raw.get("id")
        steps.append(
            Step._trusted(
                section=section,
                index=index,
                function=function,
                arguments=arguments,
                id=step_id if isinstance(step_id, str) else None,
                requires=tuple(r for r in requires if isinstance(r, str))
                if isinstance(requires, (list, tuple))
                else (),
                controls=controls,
                file=document.file,
                line=line,
                col=col,
                argument_positions={
                    k: position for k in raw if (position := positions.get(arg_path + (k,))) is not None
                },
                path=arg_path,
            )
        )
    return tuple(steps)


class RunOptions(_Value):
    """What ``stepengine.run`` (and ``stepengine.plan.plan``) runs, and how: one frozen value instead of
    a dozen keyword arguments, to build once and pass around (``options.replace(only="clone")``).

    ``stepengine.run(path, sections=["pull"])`` builds one from its keywords; ``stepengine.run(path,
    options)`` takes it whole, and keywords given too replace its fields. ``plan`` ignores
    ``install_requires`` (it imports no step it cannot find).
    """

    #: e.g. ``["pull"]``; default: the sections present, in the order build, push, pull
    sections: t.Sequence[str] | None = None
    #: apply this deployment's ``build``/``push``/``pull`` overrides (a name, ``FLOW/NAME``, a pattern)
    deployment: str | None = None
    #: seed values for templates (what ``--var`` gives on the command line)
    values: t.Mapping[str, t.Any] | None = None
    #: where blocks and variables come from (see ``stepengine.resolvers``); default:
    #: ``stepengine.stores.default_resolver`` (environment, local store, a Prefect server if configured)
    resolver: Resolver | None = None
    #: render a missing value as Prefect does (see README "Templating")
    allow_missing: bool = False
    #: extra steps by name (taking precedence over entry points), e.g. for tests
    steps: t.Mapping[str, t.Callable[..., t.Any]] | None = None
    #: the environment ``{{ $VAR }}`` reads (default ``os.environ``)
    env: t.Mapping[str, str] | None = None
    #: install a step's ``requires`` when it cannot be imported
    install_requires: bool = False
    #: treat warnings as errors when loading a path
    strict: bool = False
    #: resume: start at this step (an id, or ``pull[1]``); earlier outputs come from ``values``
    from_step: str | None = None
    #: run just this step (an id, or ``pull[1]``)
    only: str | None = None

    #: kept out of the repr: they may hold secrets (a --var token, the environment, an in-memory store)
    _hidden = frozenset({"values", "resolver", "env"})
