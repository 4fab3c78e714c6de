"""The typed configuration: ``Config`` → sections of frozen ``Step`` values, and ``Deployment`` overrides.

A ``Step`` is built once from the validated document and travels unchanged from registry to runner, so
no later stage reaches back into raw YAML. Its ``arguments`` are the raw (untemplated) values.
"""

from __future__ import annotations

import typing as t

from stepengine.errors import ConfigError, _step_label, short_name
from stepengine.loader import Document

__all__ = ["CONTROL_KEYS", "FINALLY", "RESERVED_KEYS", "SECTIONS", "Config", "Deployment", "Step"]

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


class _Factory:
    """A field default made fresh for each instance (like ``dataclasses.field(default_factory=...)``)."""

    def __init__(self, make: t.Callable[[], t.Any]) -> None:
        self.make = make


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
        values = dict(zip(self._fields, args))
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

    def __setattr__(self, name: str, value: t.Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _compared(self) -> tuple[t.Any, ...]:
        return tuple(self.__dict__[key] for key in self._fields if key not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared() == t.cast(_Value, other)._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={self.__dict__[key]!r}" for key in self._fields if key not in self._hidden)
        return f"{type(self).__name__}({shown})"

    def replace(self: _V, **changes: t.Any) -> _V:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return type(self)(**{**self.__dict__, **changes})


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
    controls: t.Mapping[str, t.Any] = _Factory(dict)
    file: str | None = None
    line: int | None = None
    col: int | None = None
    #: (line, column) of each argument key, for error messages
    argument_positions: t.Mapping[str, tuple[int, int]] = _Factory(dict)
    #: the document path of the step's argument mapping, e.g. ``("deployments", 0, "pull", 1, "git_clone")``
    path: tuple[t.Any, ...] = ()

    _hidden = frozenset({"argument_positions", "path"})

    @property
    def short_name(self) -> str:
        return short_name(self.function)

    @property
    def label(self) -> str:
        """How messages name this step: ``pull[1] (clone: git_clone)``."""
        return _step_label(self.section, self.index, self.id, self.function)

    @property
    def location(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


class Deployment(_Value):
    """A deployment entry. ``sections`` holds only the sections it overrides."""

    name: str
    index: int
    data: t.Mapping[str, t.Any]
    sections: t.Mapping[str, tuple[Step, ...]]


class Config(_Value):
    """A loaded, validated prefect.yaml. ``sections`` may also hold ``FINALLY`` (cleanup steps)."""

    file: str | None
    data: t.Mapping[str, t.Any]
    sections: t.Mapping[str, tuple[Step, ...]]
    deployments: tuple[Deployment, ...] = ()
    document: Document | None = None
    #: warnings found while loading (unknown keys), already rendered
    warnings: tuple[str, ...] = ()

    _hidden = frozenset({"document"})
    _uncompared = frozenset({"document"})

    @property
    def name(self) -> str | None:
        return self.data.get("name")

    def deployment(self, name: str) -> Deployment:
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        from stepengine._suggest import did_you_mean

        names = [d.name for d in self.deployments]
        raise ConfigError(
            f"no deployment named {name!r}" + did_you_mean(name, names),
            file=self.file,
            hint=f"deployments in this file: {', '.join(names)}" if names else "this file defines no deployments",
        )

    def steps(self, section: str, deployment: str | None = None) -> tuple[Step, ...]:
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

    def steps_for(self, sections: t.Sequence[str] | None, deployment: str | None = None) -> list[Step]:
        """The steps of the chosen sections (default: those present) in order, then ``finally``."""
        chosen = list(sections) if sections else self.present_sections(deployment)
        steps: list[Step] = []
        for section in chosen:
            steps.extend(self.steps(section, deployment))
        steps.extend(self.finally_steps(deployment))
        return steps

    def finally_steps(self, deployment: str | None = None) -> tuple[Step, ...]:
        """The cleanup steps: a deployment's ``finally`` replaces the top-level one (like the others)."""
        return self.steps(FINALLY, deployment)

    def present_sections(self, deployment: str | None = None) -> list[str]:
        present = set(self.sections)
        if deployment is not None:
            present |= set(self.deployment(deployment).sections)
        return [s for s in SECTIONS if s in present]


def build_config(document: Document, *, reserved_keys: frozenset[str] = RESERVED_KEYS) -> Config:
    """Turn a schema-valid document into a ``Config``."""
    data = document.data if isinstance(document.data, dict) else {}
    sections: dict[str, tuple[Step, ...]] = {}
    for section in SECTIONS + (FINALLY,):
        if section in data and data[section] is not None:
            sections[section] = _build_section(document, section, data[section], (section,), reserved_keys)
    deployments = []
    for index, entry in enumerate(data.get("deployments") or ()):
        overrides: dict[str, tuple[Step, ...]] = {}
        for section in SECTIONS + (FINALLY,):
            if entry.get(section) is not None:
                overrides[section] = _build_section(
                    document, section, entry[section], ("deployments", index, section), reserved_keys
                )
        deployments.append(Deployment(name=entry["name"], index=index, data=entry, sections=overrides))
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
    else:
        items = list(value)
        item_paths = [path + (i,) for i in range(len(items))]
    steps = []
    for index, (item, item_path) in enumerate(zip(items, item_paths)):
        ((function, raw),) = item.items()
        raw = raw or {}
        arg_path = item_path + (function,)
        line, col = document.position(arg_path) or (None, None)
        arguments = {k: v for k, v in raw.items() if k not in reserved_keys}
        requires = raw.get("requires") or ()
        if isinstance(requires, str):
            requires = (requires,)
        steps.append(
            Step(
                section=section,
                index=index,
                function=function,
                arguments=arguments,
                id=raw.get("id"),
                requires=tuple(requires),
                controls={k: v for k, v in raw.items() if k in reserved_keys and k not in ("id", "requires")},
                file=document.file,
                line=line,
                col=col,
                argument_positions={
                    k: document.positions[arg_path + (k,)] for k in raw if arg_path + (k,) in document.positions
                },
                path=arg_path,
            )
        )
    return tuple(steps)
