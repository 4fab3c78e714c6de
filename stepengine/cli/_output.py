"""How the CLI shows a run. Every printer is an event subscriber writing to stderr (events arrive
already masked); ``make_printer`` picks one:

- ``--log-format json``: one JSON object per line for every event (``schemas/events.schema.json``);
- on a terminal, with the ``rich`` extra installed: a live progress display (one line per step,
  spinner, elapsed time) and a final table of step timings and outcomes (``NO_COLOR`` respected);
- otherwise plain Prefect-style ``> Running … step...`` lines with the steps' output streamed; when
  ``GITHUB_ACTIONS=true`` each step's output is folded with ``::group::`` and a failure becomes an
  ``::error file=…,line=…::`` annotation.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import typing as t

from stepengine.errors import short_name
from stepengine.events import Event

__all__ = ["EventPrinter", "JsonPrinter", "RichProgress", "configure_logging", "make_printer", "print_json",
           "summary_line"]


def _label(event: Event) -> str:
    where = f"{event.section}[{event.index}]"
    short = short_name(event.function or "")
    return f"{where} ({event.step_id}: {short})" if event.step_id else f"{where} ({short})"


class EventPrinter:
    """Plain lines: ``> Running git_clone step...`` then the step's output, as Prefect prints them."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        verbose: bool = False,
        github: bool = False,
        stream: t.TextIO | None = None,
    ) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.github = github
        self.stream = stream or sys.stderr
        self.finished = 0
        #: steps skipped by their ``if``, and failures the run went on after (continue_on_error)
        self.skipped = 0
        self.continued = 0
        self._lock = threading.Lock()
        self._in_group = False

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind == "step.finished":
            self.finished += 1
        elif kind == "step.skipped":
            self.skipped += 1
        elif kind == "step.failed" and event.continued:
            self.continued += 1
        if self.github and kind == "step.failed":
            self._end_group()
            self._write(_github_error(event))
        if self.quiet:
            return
        short = short_name(event.function or "")
        if kind == "step.started":
            if self.github:
                self._write(f"::group::{_github_data(_label(event))}")
                self._in_group = True
            self._write(f"> Running {short} step...")
            if self.verbose and event.inputs:
                self._write(f"  inputs: {json.dumps(event.inputs, default=str, sort_keys=True)}")
        elif kind == "step.output" and event.message is not None:
            self._write(event.message)
        elif kind == "step.warning" and event.message is not None:
            self._write(event.message)  # as Prefect prints a step's warning: the message alone
        elif kind == "step.finished":
            if self.verbose:
                self._write(f"> Finished {short} step in {event.duration or 0:.2f} s")
            self._end_group()
        elif kind == "step.failed":
            self._end_group()
            if event.continued:
                self._write(f"> {short} step failed, continuing (continue_on_error): {event.message}")
        elif kind == "step.skipped":
            self._write(f"> Skipped {short} step ({event.message})" if event.message else f"> Skipped {short} step")
        elif kind == "step.retrying":
            delay = f" in {event.delay:.2f} s" if event.delay else ""
            self._write(f"> Retrying {short} step (attempt {event.attempt}{delay}): {event.message}")

    def _end_group(self) -> None:
        if self._in_group:
            self._write("::endgroup::")
            self._in_group = False

    def _write(self, line: str) -> None:
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def summary_line(printer: t.Any, elapsed: float) -> str:
    """``ok: 3 steps in 0.32 s`` (+ ``(1 skipped, 1 failed and continued)`` when there were such)."""
    n = printer.finished
    text = f"ok: {n} step{'s' if n != 1 else ''} in {elapsed:.2f} s"
    notes = []
    if getattr(printer, "skipped", 0):
        notes.append(f"{printer.skipped} skipped")
    if getattr(printer, "continued", 0):
        notes.append(f"{printer.continued} failed and continued")
    return text + (f" ({', '.join(notes)})" if notes else "")


def _github_data(text: str) -> str:
    """Escape a workflow command's message (GitHub's rule: %, CR and LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def _github_error(event: Event) -> str:
    props = []
    if event.file:
        props.append(f"file={_github_property(event.file)}")
        if event.line:
            props.append(f"line={event.line}")
    props.append(f"title={_github_property(_label(event) + ' failed')}")
    return f"::error {','.join(props)}::{_github_data(event.message or 'failed')}"


class JsonPrinter:
    """``--log-format json``: every event as one line of JSON."""

    def __init__(self, stream: t.TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.finished = 0
        self.failed_reported = False
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.kind == "step.finished":
            self.finished += 1
        if event.kind == "run.failed":
            self.failed_reported = True
        line = event.to_json()
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


_MARKS = {"success": ("✓", "green"), "failure": ("✗", "red"), "skipped": ("↷", "yellow"), "retrying": ("↻", "yellow")}


class RichProgress:
    """A live display on a terminal: one line per step with a spinner and its elapsed time; output
    lines scroll above it; a table of timings and outcomes at the end. Needs the ``rich`` extra."""

    def __init__(self, *, verbose: bool = False, console: t.Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(stderr=True, no_color="NO_COLOR" in os.environ or None)
        self.verbose = verbose
        self.finished = 0
        self.skipped = 0
        self.continued = 0
        self.rows: dict[tuple[t.Any, t.Any], dict[str, t.Any]] = {}
        self._lock = threading.RLock()
        self._live = Live(console=self.console, get_renderable=self._render, refresh_per_second=10, transient=True)

    def __enter__(self) -> RichProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self._live.stop()
        if self.rows:
            self.console.print(self.summary())

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if not kind.startswith("step."):
            return
        key = (event.section, event.index)
        with self._lock:
            row = self.rows.get(key)
            if kind in ("step.output", "step.warning"):
                if event.message is not None:
                    from rich.text import Text

                    self.console.print(Text(event.message, style="yellow" if kind == "step.warning" else ""))
                return
            if row is None:
                row = self.rows[key] = {"label": _label(event), "status": "running", "started": time.monotonic(),
                                        "duration": None, "attempt": 1, "note": ""}
                if self.verbose and event.inputs:
                    from rich.text import Text

                    inputs = json.dumps(event.inputs, default=str, sort_keys=True)
                    self.console.print(Text(f"{row['label']} inputs: {inputs}", style="dim"))
            if kind == "step.finished":
                self.finished += 1
                row.update(status="success", duration=event.duration)
            elif kind == "step.failed":
                self.continued += 1 if event.continued else 0
                row.update(status="failure", duration=event.duration)
                if event.message:
                    self.console.print(f"[red]✗ {_escape(row['label'])}:[/] {_escape(event.message)}")
            elif kind == "step.skipped":
                self.skipped += 1
                row.update(status="skipped", duration=None, note=event.message or "")
            elif kind == "step.retrying":
                row.update(attempt=event.attempt or row["attempt"] + 1)
                self.console.print(
                    f"[yellow]↻ {_escape(row['label'])}: attempt {event.attempt} in {event.delay or 0:.2f} s:[/] "
                    f"{_escape(event.message or '')}"
                )
        self._live.refresh()

    def _render(self) -> t.Any:
        from rich.spinner import Spinner
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column()
        grid.add_column(justify="right")
        with self._lock:
            for row in self.rows.values():
                if row["status"] == "running":
                    mark: t.Any = Spinner("dots")
                    elapsed = time.monotonic() - row["started"]
                else:
                    symbol, style = _MARKS[row["status"]]
                    mark = f"[{style}]{symbol}[/]"
                    elapsed = row["duration"]
                timing = f"{elapsed:.1f}s" if elapsed is not None else ""
                attempt = f" (attempt {row['attempt']})" if row["attempt"] > 1 else ""
                grid.add_row(mark, _escape(row["label"]) + attempt, timing)
        return grid

    def summary(self) -> t.Any:
        """The final table: each step, its outcome, attempts and duration."""
        from rich.table import Table

        table = Table(title="steps", title_justify="left")
        table.add_column("step")
        table.add_column("outcome")
        table.add_column("attempts", justify="right")
        table.add_column("duration", justify="right")
        for row in self.rows.values():
            symbol, style = _MARKS.get(row["status"], ("…", "yellow"))
            outcome = row["status"] if row["status"] != "running" else "interrupted"
            duration = f"{row['duration']:.2f} s" if row["duration"] is not None else "-"
            table.add_row(_escape(row["label"]), f"[{style}]{symbol} {outcome}[/]", str(row["attempt"]), duration)
        return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def rich_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def make_printer(
    *,
    log_format: str = "text",
    quiet: bool = False,
    verbose: bool = False,
    stream: t.TextIO | None = None,
    environ: t.Mapping[str, str] | None = None,
) -> t.Any:
    """The printer for this terminal and these options (see the module docstring)."""
    environ = os.environ if environ is None else environ
    stream = stream or sys.stderr
    if log_format == "json":
        return JsonPrinter(stream)
    github = environ.get("GITHUB_ACTIONS") == "true"
    interactive = (
        not quiet and not github and _isatty(stream) and environ.get("TERM") != "dumb" and rich_available()
    )
    if interactive:
        return RichProgress(verbose=verbose)
    return EventPrinter(quiet=quiet, verbose=verbose, github=github, stream=stream)


def _isatty(stream: t.TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {"kind": "log", "timestamp": record.created, "level": record.levelname.lower(), "logger": record.name,
             "message": record.getMessage()},
            ensure_ascii=False,
            separators=(",", ":"),
        )


def configure_logging(*, quiet: bool = False, verbose: bool = False, log_format: str = "text") -> None:
    from stepengine.context import MaskingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    if log_format == "json":
        handler.setFormatter(_JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("stepengine")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO))
    logger.propagate = False
    # The output logger carries step output lines when a step runs outside an event subscriber.
    logging.getLogger("stepengine.output").setLevel(logging.WARNING if quiet else logging.INFO)


def print_json(outputs: t.Any, stream: t.TextIO) -> None:
    from stepengine.masking import current_masker

    masked = current_masker().mask_data(outputs)
    json.dump(masked, stream, indent=2, default=str, sort_keys=False)
    stream.write("\n")
