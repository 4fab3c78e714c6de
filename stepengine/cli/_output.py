"""How the CLI shows a run. Every printer is an event subscriber (events arrive already masked).
Steps' output goes to stdout, as Prefect prints it (to stderr with ``--output json``, which keeps
stdout for the JSON); everything else goes to stderr. ``make_printer`` picks one:

- ``--log-format json``: one JSON object per line for every event (``schemas/events.schema.json``);
- on a terminal, with the ``rich`` extra installed: a live progress display (one line per step,
  spinner, elapsed time) and a final table of step timings and outcomes (``NO_COLOR`` respected).
  One thread of its own draws everything on the terminal; the others only put events and text in
  its queue, so no two locks can ever be taken in opposite orders (issue 14: the display froze);
- otherwise plain Prefect-style ``> Running … step...`` lines with the steps' output streamed; when
  ``GITHUB_ACTIONS=true`` each step's output is folded with ``::group::`` and a failure becomes an
  ``::error file=…,line=…::`` annotation.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
import typing as t

from stepengine.errors import short_name
from stepengine.events import Event

if t.TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

    from stepengine.cli._terminal import Terminal

_log = logging.getLogger("stepengine")

STDOUT, STDERR = "stdout", "stderr"

__all__ = [
    "EventPrinter",
    "JsonPrinter",
    "RichProgress",
    "configure_logging",
    "make_printer",
    "print_json",
    "summary_line",
]


class TextStream(t.Protocol):
    """What a printer needs of a stream it is given (a file, ``sys.stderr``, a flow run's log):
    ``write`` and ``flush`` (and ``isatty`` when it has one)."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


class Sink(t.Protocol):
    """Where a printer writes: a ``Terminal``, or ``_Streams`` around plain streams."""

    def write(self, name: str, text: str) -> None:
        """Write ``text`` to ``name``: ``stdout`` or ``stderr``."""
        ...

    def isatty(self, name: str) -> bool: ...


#: every printer ``make_printer`` picks: an event subscriber with ``warn`` and a count of steps
Printer = t.Union["EventPrinter", "JsonPrinter", "RichProgress"]


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
        stream: TextStream | None = None,
        terminal: Terminal | None = None,
        output_to: str = STDERR,
    ) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.github = github
        #: where lines go: ``write(name, text)`` with name ``stdout`` or ``stderr``
        self.sink: Sink = terminal or _Streams(stream or sys.stderr, stream)
        self.output_to = output_to
        #: colour codes in steps' output are dropped unless it goes to a terminal (issue 15)
        self.plain = not _colours_allowed(self.sink, output_to)
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
            self._write(strip_ansi(event.message) if self.plain else event.message, self.output_to)
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
            self._write(
                f"> Skipped {short} step ({event.message})" if event.message else f"> Skipped {short} step"
            )
        elif kind == "step.retrying":
            delay = f" in {event.delay:.2f} s" if event.delay else ""
            self._write(f"> Retrying {short} step (attempt {event.attempt}{delay}): {event.message}")

    def _end_group(self) -> None:
        if self._in_group:
            self._write("::endgroup::")
            self._in_group = False

    def warn(self, text: str) -> None:
        self._write(text)

    def _write(self, line: str, name: str = STDERR) -> None:
        with self._lock:
            self.sink.write(name, line + "\n")


class TerminalStream:
    """A text stream writing to one of a ``Terminal``'s real streams (for a logging handler)."""

    def __init__(self, terminal: Terminal, name: str) -> None:
        self._terminal = terminal
        self._name = name

    def write(self, text: str) -> int:
        self._terminal.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        pass


class _Streams:
    """A printer's two destinations when it is given plain streams (tests, embedding): step output
    and everything else, one stream for both unless told otherwise."""

    def __init__(self, err: TextStream, out: TextStream | None = None) -> None:
        self.err = err
        self.out = out
        self._lock = threading.Lock()

    def write(self, name: str, text: str) -> None:
        stream = (self.out or sys.stdout) if name == STDOUT else self.err
        with self._lock:
            stream.write(text)
            stream.flush()

    def isatty(self, name: str) -> bool:
        return _isatty((self.out or sys.stdout) if name == STDOUT else self.err)


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def _colours_allowed(sink: Sink, name: str) -> bool:
    """Whether escape sequences may reach stream ``name``: a terminal, and no ``NO_COLOR``."""
    if "NO_COLOR" in os.environ:
        return False
    try:
        return bool(sink.isatty(name))
    except Exception:
        return False


def summary_line(printer: Printer, elapsed: float) -> str:
    """``ok: 3 steps in 0.32 s``; when not every step succeeded, how many did, were skipped, or
    failed and the run went on: ``ok: 3 steps in 0.32 s (1 succeeded, 1 skipped, 1 failed and
    continued)``. Every step the run reached is counted (issue 15: only the successes were)."""
    skipped = getattr(printer, "skipped", 0)
    continued = getattr(printer, "continued", 0)
    n = printer.finished + skipped + continued
    text = f"ok: {n} step{'s' if n != 1 else ''} in {elapsed:.2f} s"
    if not skipped and not continued:
        return text
    notes = [f"{printer.finished} succeeded"]
    if skipped:
        notes.append(f"{skipped} skipped")
    if continued:
        notes.append(f"{continued} failed and continued")
    return f"{text} ({', '.join(notes)})"


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

    def __init__(self, stream: TextStream | None = None, terminal: Terminal | None = None) -> None:
        self._terminal = terminal
        self.sink: Sink = terminal or _Streams(stream or sys.stderr)
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
            self.sink.write(STDERR, line + "\n")

    def warn(self, text: str) -> None:
        from stepengine.events import Event

        self(Event("warning", time.time(), message=text))

    def deliver(self, name: str, text: str) -> None:
        """What a step wrote to fd 1/2 (masked): one ``log`` object per line, so that stderr stays
        JSON. Called by the terminal with its lock held: writes through it directly, no lock here."""
        lines = text.splitlines()
        stamp = time.time()
        out = "".join(
            json.dumps(
                {
                    "kind": "log",
                    "timestamp": stamp,
                    "level": "info",
                    "logger": f"step.{name}",
                    "message": line,
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
            + "\n"
            for line in lines
        )
        if out:
            assert self._terminal is not None  # only a terminal delivers (``Terminal.set_deliver``)
            self._terminal.write_real(STDERR, out)


_MARKS = {
    "success": ("✓", "green"),
    "failure": ("✗", "red"),
    "skipped": ("↷", "yellow"),
    "retrying": ("↻", "yellow"),
}


class RichProgress:
    """A live display on a terminal: one line per step with a spinner and its elapsed time; output
    lines scroll above it; a table of timings and outcomes at the end. Needs the ``rich`` extra.

    Only its own thread touches the console and the display (rich's ``Live`` runs without its
    refresh thread): events (``__call__``) and text written to the terminal by steps (``deliver``)
    are queued. So the display cannot deadlock whatever calls it, from whatever thread.
    """

    #: how often the spinner and the elapsed times are redrawn
    REFRESH = 0.1

    def __init__(
        self,
        *,
        verbose: bool = False,
        console: Console | None = None,
        terminal: Terminal | None = None,
        output_to: str = STDERR,
    ) -> None:
        import queue

        from rich.console import Console
        from rich.live import Live

        self.terminal = terminal
        if console is None:
            file = terminal.err if terminal is not None else sys.stderr
            console = Console(file=file, no_color="NO_COLOR" in os.environ or None, width=_width(file))
        self.console = console
        self.verbose = verbose
        self.output_to = output_to
        self.finished = 0
        self.skipped = 0
        self.continued = 0
        self.rows: dict[tuple[t.Any, t.Any], dict[str, t.Any]] = {}
        self._queue: queue.SimpleQueue[tuple[t.Any, ...]] = queue.SimpleQueue()
        self._partial: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        # output lines go above the display unless stdout is elsewhere (a file, a pipe)
        self._output_direct = terminal is not None and output_to == STDOUT and not terminal.isatty(STDOUT)
        self._plain_direct = (
            terminal is not None and self._output_direct and not _colours_allowed(terminal, STDOUT)
        )

    def __enter__(self) -> RichProgress:
        self._live.start()
        if self.terminal is not None:
            self.terminal.set_deliver(self.deliver)
        self._thread = threading.Thread(target=self._draw, name="stepengine-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.terminal is not None:
            self.terminal.set_deliver(None)  # what steps wrote until now is in the queue, in order
        self._queue.put(("stop",))
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._live.stop()
        for name, text in self._partial.items():
            if text:
                self._print_text(name, text + "\n")
        if self.rows:
            self.console.print(self.summary())

    def __call__(self, event: Event) -> None:
        if event.kind.startswith("step."):
            self._queue.put(("event", event))

    def deliver(self, name: str, text: str) -> None:
        """Text a step wrote to the terminal (masked): shown above the display."""
        self._queue.put(("text", name, text))

    def warn(self, text: str) -> None:
        self._queue.put(("text", STDERR, text + "\n"))

    def _draw(self) -> None:
        import queue

        next_refresh = time.monotonic()
        while True:
            timeout = max(0.0, next_refresh - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None:
                if item[0] == "stop":
                    return
                try:
                    self._handle(item)
                except Exception:  # pragma: no cover - a display bug must not stop the run
                    _log.debug("progress display", exc_info=True)
                if time.monotonic() < next_refresh:
                    continue
            try:
                self._live.refresh()
            except Exception:  # pragma: no cover
                _log.debug("progress display", exc_info=True)
            next_refresh = time.monotonic() + self.REFRESH

    def _handle(self, item: tuple[t.Any, ...]) -> None:
        if item[0] == "text":
            _, name, text = item
            text = self._partial.pop(name, "") + text
            cut = text.rfind("\n") + 1
            self._partial[name] = text[cut:]
            if cut:
                self._print_text(name, text[:cut])
            return
        self._apply(item[1])

    def _print_text(self, name: str, text: str) -> None:
        """Complete lines of output: straight to stdout when not the terminal, else above the display."""
        if name == STDOUT and self._output_direct and self.terminal is not None:
            self.terminal.write(STDOUT, strip_ansi(text) if self._plain_direct else text)
            return
        from rich.text import Text

        text = text[:-1] if text.endswith("\n") else text
        if "\x1b" in text:  # colours shown as colours (and dropped with NO_COLOR), never as raw codes
            self.console.print(Text.from_ansi(text))
        else:
            self.console.print(Text(text))

    def _apply(self, event: Event) -> None:
        kind = event.kind
        key = (event.section, event.index)
        row = self.rows.get(key)
        if kind == "step.output":
            if event.message is not None:
                self._print_text(self.output_to if self.output_to == STDOUT else STDERR, event.message + "\n")
            return
        if kind == "step.warning":
            if event.message is not None:
                from rich.text import Text

                self.console.print(Text(event.message, style="yellow"))
            return
        if row is None:
            row = self.rows[key] = {
                "label": _label(event),
                "status": "running",
                "started": time.monotonic(),
                "duration": None,
                "attempt": 1,
                "note": "",
            }
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

    def _render(self) -> Table:
        from rich.spinner import Spinner
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column()
        grid.add_column(justify="right")
        # only the drawing thread reads and changes the rows: no lock
        for row in self.rows.values():
            if row["status"] == "running":
                mark: RenderableType = row.setdefault("spinner", Spinner("dots"))
                elapsed = time.monotonic() - row["started"]
            else:
                symbol, style = _MARKS[row["status"]]
                mark = f"[{style}]{symbol}[/]"
                elapsed = row["duration"]
            timing = f"{elapsed:.1f}s" if elapsed is not None else ""
            attempt = f" (attempt {row['attempt']})" if row["attempt"] > 1 else ""
            grid.add_row(mark, _escape(row["label"]) + attempt, timing)
        return grid

    def summary(self) -> Table:
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
            table.add_row(
                _escape(row["label"]), f"[{style}]{symbol} {outcome}[/]", str(row["attempt"]), duration
            )
        return table


def _width(file: t.IO[str]) -> int | None:
    """The terminal's width, read from the real stream (fd 1 and 2 may be masking pipes)."""
    if os.environ.get("COLUMNS"):
        return None  # rich reads it
    try:
        return os.get_terminal_size(file.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return None


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
    stream: TextStream | None = None,
    environ: t.Mapping[str, str] | None = None,
    terminal: Terminal | None = None,
    output_to: str = STDERR,
) -> Printer:
    """The printer for this terminal and these options (see the module docstring).

    ``terminal`` (``cli._terminal.Terminal``) is where the CLI writes; ``stream`` a single stream
    for everything (tests). ``output_to``: where steps' output goes, ``stdout`` or ``stderr`` (the
    default, for verbs whose stdout carries data, such as ``deploy``).
    """
    environ = os.environ if environ is None else environ
    if log_format == "json":
        return JsonPrinter(stream, terminal=terminal)
    github = environ.get("GITHUB_ACTIONS") == "true"
    tty = terminal.isatty(STDERR) if terminal is not None else _isatty(stream or sys.stderr)
    interactive = not quiet and not github and tty and environ.get("TERM") != "dumb" and rich_available()
    if interactive:
        return RichProgress(verbose=verbose, terminal=terminal, output_to=output_to)
    return EventPrinter(
        quiet=quiet, verbose=verbose, github=github, stream=stream, terminal=terminal, output_to=output_to
    )


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # closed
        return False


class _JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "kind": "log",
                "timestamp": record.created,
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


def configure_logging(
    *, quiet: bool = False, verbose: bool = False, log_format: str = "text", stream: TextStream | None = None
) -> None:
    """The ``stepengine`` logger's handler on ``stream`` (default: ``sys.stderr``)."""
    from stepengine.context import MaskingFilter

    handler = logging.StreamHandler(stream or sys.stderr)
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


def print_json(outputs: t.Any, stream: Terminal | TextStream) -> None:
    """Every output as JSON, masked; ``stream`` a text stream or a ``Terminal`` (its stdout)."""
    from stepengine.masking import current_masker

    masked = current_masker().mask_data(outputs)
    text = json.dumps(masked, indent=2, default=str, sort_keys=False) + "\n"
    from stepengine.cli._terminal import Terminal

    if isinstance(stream, Terminal):
        stream.write(STDOUT, text)
    else:
        stream.write(text)
