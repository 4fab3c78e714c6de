"""What ``stepengine run`` does once its arguments are parsed, by click (``run.py``) or by the
click-free fast path (``_fastpath.py``): load, run, report. Nothing here imports click."""

from __future__ import annotations

import contextlib
import sys
import time
import typing as t

from stepengine.cli._errors import ExitRequest
from stepengine.errors import ConfigError

#: ``run_command``'s parameters and their defaults: exactly the values click parses for ``run``
#: when an option is not given (tests/cli/test_fastpath.py checks both agree).
DEFAULTS: dict[str, t.Any] = {
    "file": "prefect.yaml",
    "sections": (),
    "deployment": None,
    "variables": (),
    "values_file": None,
    "prefect_api_url": None,
    "stores": None,
    "allow_missing": False,
    "install_requires": False,
    "output": "text",
    "quiet": False,
    "verbose": False,
    "log_format": "text",
    "from_step": None,
    "only": None,
    "load_outputs": None,
    "save_outputs": None,
    "strict": False,
}


def split_var(pair: str) -> tuple[str, str] | None:
    """``KEY=VALUE`` → ``(KEY, VALUE)``; None when it is not of that form (no ``=``, or no key)."""
    key, sep, value = pair.partition("=")
    return (key, value) if sep and key else None


def run_command(
    file: str,
    sections: tuple[str, ...],
    deployment: str | None,
    variables: tuple[str, ...],
    values_file: str | None,
    prefect_api_url: str | None,
    stores: str | None,
    allow_missing: bool,
    install_requires: bool,
    output: str,
    quiet: bool,
    strict: bool,
    verbose: bool = False,
    log_format: str = "text",
    from_step: str | None = None,
    only: str | None = None,
    load_outputs: str | None = None,
    save_outputs: str | None = None,
) -> None:
    """Load FILE and run its sections; ``variables`` are ``KEY=VALUE`` pairs already checked.

    Steps' output goes to stdout (as Prefect prints it), or to stderr with ``--output json``, which
    keeps stdout for the JSON; progress, logs and the summary go to stderr. While steps run, file
    descriptors 1 and 2 are masked (``_terminal.Terminal``)."""
    from stepengine.cli._terminal import Terminal
    from stepengine.masking import current_masker

    with Terminal(current_masker()) as terminal:
        # everything the steps write to fd 1 is output too: with --output json it goes to stderr
        terminal.stdout_to_stderr = output == "json"
        _run(
            terminal,
            file,
            sections,
            deployment,
            variables,
            values_file,
            prefect_api_url,
            stores,
            allow_missing,
            install_requires,
            output,
            quiet,
            strict,
            verbose,
            log_format,
            from_step,
            only,
            load_outputs,
            save_outputs,
        )


def _run(
    terminal: t.Any,
    file: str,
    sections: tuple[str, ...],
    deployment: str | None,
    variables: tuple[str, ...],
    values_file: str | None,
    prefect_api_url: str | None,
    stores: str | None,
    allow_missing: bool,
    install_requires: bool,
    output: str,
    quiet: bool,
    strict: bool,
    verbose: bool,
    log_format: str,
    from_step: str | None,
    only: str | None,
    load_outputs: str | None,
    save_outputs: str | None,
) -> None:
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

    json_log = log_format == "json" and terminal.capturing
    # --log-format json: stderr is JSON alone; log records and what steps write to fd 1/2 become
    # JSON objects of their own, never raw text in between
    configure_logging(
        quiet=quiet,
        verbose=verbose,
        log_format=log_format,
        stream=TerminalStream(terminal, STDERR) if json_log else None,
    )
    printer = make_printer(
        log_format=log_format,
        quiet=quiet,
        verbose=verbose,
        terminal=terminal,
        output_to=STDERR if output == "json" else STDOUT,
    )
    if json_log and isinstance(printer, JsonPrinter):  # (it is: --log-format json)
        terminal.set_deliver(printer.deliver)
    from stepengine.masking import current_masker
    from stepengine.stores import default_resolver

    resolver = default_resolver(values_file=values_file, prefect_api_url=prefect_api_url, order=stores)
    with _reporting(printer, save_outputs=save_outputs) as collected:
        from stepengine.checks import load_config

        # schema problems are kept in the config and reported with the step problems, before any step
        config = load_config(file, strict=strict)
        for warning in config.warnings if not quiet else ():
            printer.warn(warning)
        started = time.perf_counter()
        outputs = stepengine.run(
            config,
            sections=list(sections) or None,
            deployment=deployment,
            values=seed_values(load_outputs, variables),
            resolver=resolver,
            on_event=printer,
            allow_missing=allow_missing,
            install_requires=install_requires,
            masker=current_masker(),
            from_step=from_step,
            only=only,
            outputs=collected,
        )
    if not quiet and log_format == "text":
        from stepengine.cli._output import summary_line

        terminal.write(STDERR, summary_line(printer, time.perf_counter() - started) + "\n")
    if output == "json":
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
def _reporting(printer: t.Any, *, save_outputs: str | None) -> t.Iterator[dict[str, t.Any] | None]:
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
