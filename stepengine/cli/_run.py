"""What ``stepengine run`` does once its arguments are parsed, by click (``run.py``) or by the
click-free fast path (``_fastpath.py``): load, run, report. Nothing here imports click."""

from __future__ import annotations

import contextlib
import sys
import time
import types
import typing as t

from stepengine.cli._errors import ExitRequest
from stepengine.cli._table import RUN, defaults
from stepengine.config import RunOptions
from stepengine.errors import ConfigError

if t.TYPE_CHECKING:
    from stepengine.cli._output import Printer
    from stepengine.cli._terminal import Terminal

#: ``run_command``'s parameters and their defaults: exactly the values click parses for ``run``
#: when an option is not given (both come from ``_table.RUN``; tests/cli/test_fastpath.py checks).
DEFAULTS: dict[str, t.Any] = defaults(RUN)


def split_var(pair: str) -> tuple[str, str] | None:
    """``KEY=VALUE`` → ``(KEY, VALUE)``; None when it is not of that form (no ``=``, or no key)."""
    key, sep, value = pair.partition("=")
    return (key, value) if sep and key else None


def run_command(**params: t.Any) -> None:
    """Load FILE and run its sections; ``params`` are ``_table.RUN``'s (``variables``: ``KEY=VALUE``
    pairs already checked), any left out taking their default.

    Steps' output goes to stdout (as Prefect prints it), or to stderr with ``--output json``, which
    keeps stdout for the JSON; progress, logs and the summary go to stderr. While steps run, file
    descriptors 1 and 2 are masked (``_terminal.Terminal``)."""
    from stepengine.cli._terminal import Terminal
    from stepengine.masking import current_masker

    args = types.SimpleNamespace(**{**DEFAULTS, **params})
    with Terminal(current_masker()) as terminal:
        # everything the steps write to fd 1 is output too: with --output json it goes to stderr
        terminal.stdout_to_stderr = args.output == "json"
        _run(terminal, args)


def run_options(args: types.SimpleNamespace, **more: t.Any) -> RunOptions:
    """The ``RunOptions`` of a ``run``/``plan`` command line (its parsed parameters, by name)."""
    from stepengine.stores import default_resolver

    return RunOptions(
        sections=list(args.sections) or None,
        deployment=args.deployment,
        values=seed_values(args.load_outputs, args.variables),
        resolver=default_resolver(
            values_file=args.values_file, prefect_api_url=args.prefect_api_url, order=args.stores
        ),
        allow_missing=args.allow_missing,
        strict=args.strict,
        from_step=args.from_step,
        only=args.only,
        **more,
    )


def _run(terminal: Terminal, args: types.SimpleNamespace) -> None:
    import stepengine
    from stepengine.cli._output import (
        STDERR,
        STDOUT,
        JsonPrinter,
        TerminalStream,
        configure_logging,
        make_printer,
        print_json,
    )

    json_log = args.log_format == "json" and terminal.capturing
    # --log-format json: stderr is JSON alone; log records and what steps write to fd 1/2 become
    # JSON objects of their own, never raw text in between
    configure_logging(
        quiet=args.quiet,
        verbose=args.verbose,
        log_format=args.log_format,
        stream=TerminalStream(terminal, STDERR) if json_log else None,
    )
    printer = make_printer(
        log_format=args.log_format,
        quiet=args.quiet,
        verbose=args.verbose,
        terminal=terminal,
        output_to=STDERR if args.output == "json" else STDOUT,
    )
    if json_log and isinstance(printer, JsonPrinter):  # (it is: --log-format json)
        terminal.set_deliver(printer.deliver)
    from stepengine.masking import current_masker

    with _reporting(printer, save_outputs=args.save_outputs) as collected:
        from stepengine.checks import load_config

        # schema problems are kept in the config and reported with the step problems, before any step
        config = load_config(args.file, strict=args.strict)
        for warning in config.warnings if not args.quiet else ():
            printer.warn(warning)
        options = run_options(args, install_requires=args.install_requires)
        started = time.perf_counter()
        outputs = stepengine.run(
            config, options, on_event=printer, masker=current_masker(), outputs=collected
        )
    if not args.quiet and args.log_format == "text":
        from stepengine.cli._output import summary_line

        terminal.write(STDERR, summary_line(printer, time.perf_counter() - started) + "\n")
    if args.output == "json":
        print_json(outputs, terminal)


def seed_values(load_outputs: str | None, variables: t.Sequence[str]) -> dict[str, t.Any]:
    """Template seed values: a saved outputs file, then --var (which wins; a dotted key nests)."""
    values: dict[str, t.Any] = {}
    if load_outputs:
        import json

        from stepengine.errors import ConfigError

        try:
            with open(load_outputs, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read outputs file: {exc}", file=load_outputs) from None
        if not isinstance(data, dict):
            raise ConfigError("an outputs file must hold a JSON object", file=load_outputs)
        # Values saved masked are never fed back as "***": they are left out, and named.
        masked = data.pop(MASKED_KEY, None)
        for path in masked if isinstance(masked, list) else ():
            if _drop(data, str(path).split(".")):
                from stepengine.cli._errors import echo

                echo(
                    f"warning: {load_outputs}: {path} held a secret and was saved masked; it is left out "
                    f"(give it with --var {path}=… if a step needs it)"
                )
        values.update(data)
    for text in variables:
        pair = split_var(text)
        if pair is None:
            from stepengine.errors import ConfigError

            raise ConfigError(f"--var {text!r} is not KEY=VALUE")
        key, value = pair
        # --var clone.directory=/src gives {{ clone.directory }} (an earlier step's output, to resume)
        *parents, leaf = key.split(".")
        target = values
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[leaf] = value
    return values


@contextlib.contextmanager
def _reporting(printer: Printer, *, save_outputs: str | None) -> t.Iterator[dict[str, t.Any] | None]:
    """Around the load and the run: the live display; with --log-format json, errors as a last
    ``run.failed`` JSON line (nothing else on stderr); --save-outputs written whatever happens."""
    from stepengine.cli._output import JsonPrinter, RichProgress
    from stepengine.errors import StepEngineError
    from stepengine.events import Event

    collected: dict[str, t.Any] | None = {} if save_outputs else None
    live = printer if isinstance(printer, RichProgress) else contextlib.nullcontext()
    try:
        with live:
            yield collected
    except (StepEngineError, KeyboardInterrupt) as exc:
        if not isinstance(printer, JsonPrinter):
            raise
        if not printer.failed_reported:
            message = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            printer(Event("run.failed", time.time(), message=message))
        raise ExitRequest(130 if isinstance(exc, KeyboardInterrupt) else exc.exit_code) from None
    finally:
        if save_outputs and collected is not None:
            in_flight = sys.exc_info()[1]
            try:
                _save(save_outputs, collected)
            except ConfigError as exc:
                if in_flight is None:
                    raise
                # the run's own failure is what matters most: say this one too, and let that go on
                sys.stderr.write(f"error: {exc}\n")


#: in a --save-outputs file: the dotted paths of the values that were masked (--load-outputs leaves them out)
MASKED_KEY = "$masked"


def _drop(data: t.Any, parts: list[str]) -> bool:
    """Remove ``a.b.c`` from nested dicts; whether it was there."""
    for part in parts[:-1]:
        if not isinstance(data, dict) or not isinstance(data.get(part), dict):
            return False
        data = data[part]
    return isinstance(data, dict) and data.pop(parts[-1], None) is not None


def _masked_paths(value: t.Any, masked: t.Any, path: str = "") -> t.Iterator[str]:
    if isinstance(value, dict) and isinstance(masked, dict) and list(value) == list(masked):
        for (key, item), other in zip(value.items(), masked.values(), strict=False):
            yield from _masked_paths(item, other, f"{path}.{key}" if path else str(key))
    elif value != masked and path:
        yield path


def _save(path: str, outputs: dict[str, t.Any]) -> None:
    """Write the outputs (secrets masked) atomically: a temporary sibling, then a rename. The file is
    data for a later ``--load-outputs``: the masked values are listed under ``$masked``, so that they
    are left out there instead of being fed back as ``***``."""
    import json
    import os
    import tempfile

    from stepengine.masking import current_masker

    masked = current_masker().mask_data(outputs)
    changed = sorted(_masked_paths(outputs, masked))
    if changed:
        masked = {**masked, MASKED_KEY: changed}
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".outputs-", dir=directory)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(masked, handle, indent=2, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(sys.exc_info()[1], OSError):
            raise _cannot_write(path, t.cast(OSError, sys.exc_info()[1])) from None
        raise


def _cannot_write(path: str, exc: OSError) -> ConfigError:
    """An outputs file that cannot be written (no such directory, read-only, a full disk): said plainly."""
    import errno

    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return ConfigError(
        f"cannot write the outputs file {path}: {'the disk is full' if full else exc.strerror or exc}",
        hint="free some space and run again"
        if full
        else "--save-outputs needs a writable file in an existing directory",
    )
