"""The embedding API: load, validate and run a prefect.yaml in a few lines.

Example::

    import stepengine

    outputs = stepengine.run("prefect.yaml", sections=["pull"], values={"branch": "main"})
    print(outputs["clone"]["directory"])
"""

from __future__ import annotations

import os
import typing as t

from stepengine.config import Config, RunOptions
from stepengine.errors import Issue, ValidationError
from stepengine.events import EventHandler
from stepengine.loader import Document, parse_document
from stepengine.masking import Masker, run_masker, scrub_exception
from stepengine.registry import Registry

if t.TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack

    from stepengine.resolvers import Resolver

    class RunFields(TypedDict, total=False):
        """``RunOptions``' fields, as keywords of ``run`` and ``plan``."""

        sections: t.Sequence[str] | None
        deployment: str | None
        values: t.Mapping[str, t.Any] | None
        resolver: Resolver | None
        allow_missing: bool
        steps: t.Mapping[str, t.Callable[..., t.Any]] | None
        env: t.Mapping[str, str] | None
        install_requires: bool
        strict: bool
        from_step: str | None
        only: str | None


__all__ = ["RunOptions", "load", "loads", "run", "run_async", "validate"]

Source = t.Union[str, "os.PathLike[str]", Config]
StepMap = t.Mapping[str, t.Callable[..., t.Any]]


def load(path: str | os.PathLike[str], *, strict: bool = False) -> Config:
    """Read, parse and schema-check a prefect.yaml (and the ``deployment.yaml`` beside it, Prefect
    2.10's two-file layout). Raises ``ConfigError`` (``ValidationError`` lists all)."""
    from stepengine.checks import load_config

    return _valid(load_config(path, strict=strict))


def loads(text: str, *, file: str = "<string>", strict: bool = False) -> Config:
    """Like ``load``, from YAML text."""
    return _from_document(parse_document(text, file), strict=strict)


def _from_document(document: Document, *, strict: bool) -> Config:
    from stepengine.checks import config_from_document

    return _valid(config_from_document(document, strict=strict))


def _valid(config: Config) -> Config:
    """``config``, or a ``ValidationError`` listing the problems it was loaded with (and its warnings)."""
    if config.problems:
        raise ValidationError([*config.problems, *_warnings(config)])
    return config


def _warnings(config: Config) -> list[Issue]:
    return [Issue(w.removeprefix("warning: "), severity="warning") for w in config.warnings]


def validate(
    source: Source,
    *,
    sections: t.Sequence[str] | None = None,
    deployment: str | None = None,
    steps: StepMap | None = None,
    values: t.Mapping[str, t.Any] | None = None,
    strict: bool = False,
) -> list[Issue]:
    """Check a file completely without running anything: schema, every step name, every step's
    arguments, the syntax of every template and every ``{{ id.key }}`` reference, all in one pass.
    Returns the warnings; raises ``ValidationError`` listing every error (and ``.warnings``).

    With no ``sections``/``deployment``, the top-level sections and every deployment's overrides are
    checked. ``deployment`` is chosen as ``Config.deployment`` says (a name, ``FLOW/NAME``, a pattern).
    """
    from stepengine.checks import check_config, check_sections, config_of

    config = config_of(source, strict)
    try:
        check_config(
            config,
            Registry(steps),
            sections=check_sections(sections),
            deployment=deployment,
            values=values or (),
        )
    except ValidationError as exc:
        raise ValidationError([*exc.issues, *_warnings(config)]) from None
    return [Issue(w, severity="warning") for w in config.warnings]


def run(
    source: Source,
    options: RunOptions | None = None,
    *,
    on_event: EventHandler | None = None,
    outputs: dict[str, t.Any] | None = None,
    masker: Masker | None = None,
    keep_directory: bool = False,
    **fields: Unpack[RunFields],
) -> dict[str, t.Any]:
    """Run the chosen sections of a prefect.yaml and return every output.

    :param source: a path, or a ``Config`` from ``load``.
    :param options: what to run and how, as a ``RunOptions``; or give its fields as keywords:
        ``sections``, ``deployment``, ``values``, ``resolver``, ``allow_missing``, ``steps``, ``env``,
        ``install_requires``, ``strict``, ``from_step``, ``only`` (see ``RunOptions``). Keywords given
        with ``options`` replace those fields.
    :param on_event: called with every ``Event`` (masked).
    :param outputs: a dict filled with every output when the run ends, also when it fails (for
        ``--save-outputs``).
    :param masker: the run's secret masker (default: a new one under the current masker); pass one
        to mask what is printed after the run (``--output json``) with the secrets the run found.
    :param keep_directory: leave the process in the directory the steps left it in (to start a flow
        there, as Prefect does after a pull); the caller goes back itself. By default the working
        directory the run started in is restored when it ends, however it ends.

    Runs in one process take turns: each holds a process-wide lock for its whole length, because
    steps share the process working directory (see README "The Python API").

    Returns the template namespace: each step's dict output under its id, merged flat too.
    Raises ``ConfigError`` (nothing ran) or ``StepExecutionError`` (a step failed).

    Example::

        outputs = stepengine.run("prefect.yaml", sections=["pull"], values={"branch": "main"})
        nightly = stepengine.RunOptions(sections=["pull"], deployment="nightly")
        outputs = stepengine.run("prefect.yaml", nightly, on_event=print)
    """
    from stepengine.checks import check_sections, config_of, select_steps, steps_for
    from stepengine.runner import Runner

    opts = run_options(options, fields, "run")
    config = config_of(source, opts.strict)
    masker = run_masker(masker, opts.env)
    resolver = opts.resolver
    if resolver is None:
        from stepengine.stores import default_resolver

        resolver = default_resolver(env=opts.env)
    runner = Runner(
        masker=masker,
        registry=Registry(opts.steps),
        resolver=resolver,
        values=opts.values,
        on_event=on_event,
        allow_missing=opts.allow_missing,
        env=opts.env,
        install_requires=opts.install_requires,
    )
    chosen = steps_for(config, check_sections(opts.sections), opts.deployment)
    try:
        return runner.run(
            select_steps(chosen, from_step=opts.from_step, only=opts.only),
            config=config,
            keep_directory=keep_directory,
        )
    except BaseException as exc:
        # The error outlives the run (and its masker): mask it now, whoever prints it later.
        scrub_exception(exc, masker)
        raise
    finally:
        if outputs is not None:
            outputs.update(runner.namespace)


def run_options(options: RunOptions | None, fields: t.Mapping[str, t.Any], caller: str) -> RunOptions:
    """The ``RunOptions`` a call of ``run``/``plan`` means: ``options``, with keyword ``fields`` over it."""
    if options is not None and not isinstance(options, RunOptions):
        raise TypeError(
            f"{caller}()'s second argument is a stepengine.RunOptions, not {type(options).__name__}; "
            "give sections=... (and the other options) by keyword"
        )
    unknown = sorted(set(fields) - set(RunOptions._fields))
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    if options is None:
        return RunOptions(**fields)
    return options.replace(**fields) if fields else options


async def run_async(source: Source, *args: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
    """``run`` for async callers: the run goes on in a worker thread, so the event loop stays free.

    Takes the same arguments as ``run`` (a ``RunOptions``, keywords). Async steps run on the worker
    thread's own loop. While another run in this process is going on, the worker thread waits for it;
    the event loop does not.
    """
    import asyncio

    return await asyncio.to_thread(run, source, *args, **kwargs)
