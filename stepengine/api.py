"""The embedding API: load, validate and run a prefect.yaml in a few lines.

Example::

    import stepengine

    outputs = stepengine.run("prefect.yaml", sections=["pull"], values={"branch": "main"})
    print(outputs["clone"]["directory"])
"""

from __future__ import annotations

import os
import typing as t

from stepengine.config import Config
from stepengine.errors import Issue, ValidationError
from stepengine.events import EventHandler
from stepengine.loader import Document, parse_document
from stepengine.masking import Masker, run_masker, scrub_exception
from stepengine.registry import Registry

__all__ = ["load", "loads", "run", "run_async", "validate"]

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
    sections: t.Sequence[str] | None = None,
    deployment: str | None = None,
    values: t.Mapping[str, t.Any] | None = None,
    resolver: t.Any = None,
    on_event: EventHandler | None = None,
    allow_missing: bool = False,
    *,
    steps: StepMap | None = None,
    env: t.Mapping[str, str] | None = None,
    install_requires: bool = False,
    strict: bool = False,
    from_step: str | None = None,
    only: str | None = None,
    outputs: dict[str, t.Any] | None = None,
    masker: Masker | None = None,
    keep_directory: bool = False,
) -> dict[str, t.Any]:
    """Run the chosen sections of a prefect.yaml and return every output.

    :param source: a path, or a ``Config`` from ``load``.
    :param sections: e.g. ``["pull"]``; default: the sections present, in the order build, push, pull.
    :param deployment: apply this deployment's ``build``/``push``/``pull`` overrides.
    :param values: seed values for templates (what ``--var`` gives on the command line).
    :param resolver: where blocks and variables come from (see ``stepengine.resolvers``); default:
        ``stepengine.stores.default_resolver`` (environment, then the local store, then a Prefect
        server when ``PREFECT_API_URL`` is set).
    :param on_event: called with every ``Event`` (masked).
    :param allow_missing: render a missing value as Prefect does (see README "Templating").
    :param steps: extra steps by name (taking precedence over entry points), e.g. for tests.
    :param env: the environment ``{{ $VAR }}`` reads (default ``os.environ``).
    :param install_requires: install a step's ``requires`` when it cannot be imported.
    :param from_step: resume: start at this step (an id, or ``pull[1]``); earlier outputs come from
        ``values``. The ``finally`` steps still run.
    :param only: run just this step (an id, or ``pull[1]``).
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
    """
    from stepengine.checks import check_sections, config_of, select_steps, steps_for
    from stepengine.runner import Runner

    config = config_of(source, strict)
    masker = run_masker(masker, env)
    if resolver is None:
        from stepengine.stores import default_resolver

        resolver = default_resolver(env=env)
    runner = Runner(
        masker=masker,
        registry=Registry(steps),
        resolver=resolver,
        values=values,
        on_event=on_event,
        allow_missing=allow_missing,
        env=env,
        install_requires=install_requires,
    )
    chosen = steps_for(config, check_sections(sections), deployment)
    try:
        return runner.run(
            select_steps(chosen, from_step=from_step, only=only), config=config, keep_directory=keep_directory
        )
    except BaseException as exc:
        # The error outlives the run (and its masker): mask it now, whoever prints it later.
        scrub_exception(exc, masker)
        raise
    finally:
        if outputs is not None:
            outputs.update(runner.namespace)


async def run_async(source: Source, *args: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
    """``run`` for async callers: the run goes on in a worker thread, so the event loop stays free.

    Takes the same arguments as ``run``. Async steps run on the worker thread's own loop. While
    another run in this process is going on, the worker thread waits for it; the event loop does not.
    """
    import asyncio

    return await asyncio.to_thread(run, source, *args, **kwargs)
