"""Every option that more than one verb (or the fast path) knows, declared once, without click.

``_options.py`` builds click parameters from these records; ``_fastpath.py`` builds its parser for
``stepengine run`` from the same ``RUN`` tuple, and ``_run.DEFAULTS`` is ``defaults(RUN)``. A verb
that words an option's help differently takes the record ``.but(help=...)``; nothing else about an
option is ever written twice (issue 17). No click here: the fast path imports this module.
"""

from __future__ import annotations

import typing as t

from stepengine.config import SECTIONS

__all__ = ["PLAN", "RUN", "Option", "defaults"]


class Option:
    """One option (or, with no ``names``, the positional argument ``dest``): a frozen record.

    A plain class, not a NamedTuple or a dataclass: this module is on the cold path of ``stepengine
    run`` (``_fastpath``), where building a namedtuple class costs more than all of the table."""

    __slots__ = (
        "names",
        "dest",
        "help",
        "kind",
        "choices",
        "default",
        "multiple",
        "metavar",
        "show_default",
        "fast",
    )

    names: tuple[str, ...]
    dest: str
    help: str
    #: flag | value | choice | file (``click.Path(dir_okay=False)``) | existing-file | pairs (KEY=VALUE)
    kind: str
    choices: tuple[str, ...]
    default: t.Any
    multiple: bool
    metavar: str | None
    show_default: bool
    #: whether ``_fastpath`` may parse it (an existing-file check is left to click)
    fast: bool

    def __init__(
        self,
        names: tuple[str, ...],
        dest: str,
        help: str = "",
        *,
        kind: str = "value",
        choices: tuple[str, ...] = (),
        default: t.Any = None,
        multiple: bool = False,
        metavar: str | None = None,
        show_default: bool = False,
        fast: bool = True,
    ) -> None:
        values = (names, dest, help, kind, choices, default, multiple, metavar, show_default, fast)
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: t.Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __repr__(self) -> str:
        return f"Option({self.names!r}, {self.dest!r})"

    def but(self, **changes: t.Any) -> Option:
        """The same option, worded for another verb."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Option(**fields)

    @property
    def flag(self) -> bool:
        return self.kind == "flag"


FILE = Option((), "file", kind="file", default="prefect.yaml")
SECTION = Option(
    ("-s", "--section"),
    "sections",
    "Section to run (repeatable). Default: every section present, in the order build, push, pull.",
    kind="choice",
    choices=SECTIONS,
    multiple=True,
    default=(),
)
DEPLOYMENT = Option(
    ("-d", "--deployment"), "deployment", "Apply this deployment's build/push/pull overrides."
)
VAR = Option(
    ("--var",),
    "variables",
    "Seed a template value, available as {{ KEY }} (repeatable).",
    kind="pairs",
    multiple=True,
    default=(),
    metavar="KEY=VALUE",
)
VALUES = Option(("--values",), "values_file", "YAML/JSON file with blocks: and variables:.", kind="file")
STORES = Option(
    ("--stores",),
    "stores",
    "Stores to read blocks and variables from, first hit wins (default: $STEPENGINE_STORES "
    "or values,env,local,prefect).",
    metavar="ORDER",
)
PREFECT_API_URL = Option(
    ("--prefect-api-url",),
    "prefect_api_url",
    "Read blocks and variables from this Prefect API too (default: $PREFECT_API_URL; key: $PREFECT_API_KEY).",
    metavar="URL",
)
ALLOW_MISSING = Option(
    ("--allow-missing",),
    "allow_missing",
    "Prefect's lenient templating: drop unresolved placeholders.",
    kind="flag",
    default=False,
)
INSTALL_REQUIRES = Option(
    ("--install-requires",),
    "install_requires",
    "Install a step's 'requires' if the step cannot be imported.",
    kind="flag",
    default=False,
)
OUTPUT = Option(
    ("-o", "--output"),
    "output",
    "json: print the data as one JSON document on stdout.",
    kind="choice",
    choices=("text", "json"),
    default="text",
    show_default=True,
)
QUIET = Option(
    ("-q", "--quiet"), "quiet", "Print only errors and the data asked for.", kind="flag", default=False
)
VERBOSE = Option(("-v", "--verbose"), "verbose", "Print more detail.", kind="flag", default=False)
LOG_FORMAT = Option(
    ("--log-format",),
    "log_format",
    "json: one JSON object per line on stderr for every event (schemas/events.schema.json).",
    kind="choice",
    choices=("text", "json"),
    default="text",
)
FROM_STEP = Option(
    ("--from-step",), "from_step", "Resume: start at this step (an id, or e.g. pull[1]).", metavar="ID"
)
ONLY = Option(("--only",), "only", "Run just this step (an id, or e.g. pull[1]).", metavar="ID")
LOAD_OUTPUTS = Option(
    ("--load-outputs",),
    "load_outputs",
    "Seed template values from an outputs file written by --save-outputs.",
    kind="existing-file",
    fast=False,
)
SAVE_OUTPUTS = Option(
    ("--save-outputs",),
    "save_outputs",
    "Write every output (secrets masked) to this JSON file when the run ends, even if it fails.",
    kind="file",
)
STRICT = Option(
    ("--strict",),
    "strict",
    "Treat warnings (unknown keys, values some Prefect versions refuse) as errors.",
    kind="flag",
    default=False,
)

#: ``stepengine run``, in ``--help`` order
RUN: tuple[Option, ...] = (
    FILE,
    DEPLOYMENT,
    SECTION,
    VAR,
    VALUES,
    PREFECT_API_URL,
    STORES,
    ALLOW_MISSING,
    INSTALL_REQUIRES,
    OUTPUT.but(help="json: print all outputs as JSON on stdout (the steps' output goes to stderr)."),
    QUIET.but(help="Print only errors and the data asked for (no progress, no steps' output)."),
    VERBOSE.but(help="Also print each step's inputs and timing, and debug logs."),
    LOG_FORMAT,
    FROM_STEP,
    ONLY,
    LOAD_OUTPUTS,
    SAVE_OUTPUTS,
    STRICT,
)

#: ``stepengine plan``: what a run would do, so the options that choose the steps and their values
PLAN: tuple[Option, ...] = (
    FILE,
    DEPLOYMENT,
    SECTION,
    VAR,
    VALUES,
    PREFECT_API_URL,
    STORES,
    LOAD_OUTPUTS.but(help="Seed template values from an outputs file written by run --save-outputs."),
    FROM_STEP.but(help="Plan a resumed run starting at this step."),
    ONLY.but(help="Plan just this step."),
    ALLOW_MISSING,
    OUTPUT.but(help="json: the plan as one JSON document."),
    QUIET,
    VERBOSE.but(help="Also show each step's arguments as written, before templating."),
    STRICT,
)


def defaults(options: t.Iterable[Option]) -> dict[str, t.Any]:
    """The value of each option's parameter when it is not given (what click parses then)."""
    return {option.dest: option.default for option in options}
