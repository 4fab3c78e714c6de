"""The CLI's one error handler: expected errors → message and exit code; the rest → traceback, exit 3.

It does not import click: ``stepengine run`` usually never loads it (``stepengine.cli._fastpath``).
Click's exceptions are recognised when click is loaded, which is the only way one can be raised.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
import typing as t

from stepengine.errors import StepEngineError, StepExecutionError

if t.TYPE_CHECKING:
    import types

UNEXPECTED = 3
INTERRUPTED = 130


class Outcome:
    code: int = 0


class ExitRequest(Exception):
    """Raised by a verb that has already reported its outcome and only needs the exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def echo(text: str) -> None:
    """A line on stderr (masked: the command's stderr is a masking stream)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _sigterm(signum: int, frame: types.FrameType | None) -> None:
    # Treated like Ctrl-C so that cleanup (finally blocks, atomic directories, child process
    # groups) runs before the process exits.
    raise KeyboardInterrupt


@contextlib.contextmanager
def handle_errors() -> t.Iterator[Outcome]:
    outcome = Outcome()
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        yield outcome
    except ExitRequest as exc:
        outcome.code = exc.code
    except KeyboardInterrupt:
        echo("stepengine: interrupted")
        outcome.code = INTERRUPTED
    except StepEngineError as exc:
        echo(_render(exc))
        outcome.code = exc.exit_code
    except BrokenPipeError:
        outcome.code = 1
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            outcome.code = _unexpected(exc)
        else:  # writing the output (stdout redirected to a file, a cache): the machine's state, not a bug
            where = f" ({exc.filename})" if exc.filename else ""
            try:
                echo(f"error: the disk is full{where}: {exc.strerror}\nhint: free some space and run again")
            except OSError:
                pass
            outcome.code = 2
    except Exception as exc:
        code = _click_outcome(exc)
        outcome.code = _unexpected(exc) if code is None else code
    finally:
        signal.signal(signal.SIGTERM, previous)


#: a full disk, or a full quota
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _unexpected(exc: BaseException) -> int:
    """A bug in stepengine or a step: show everything needed for a report."""
    import traceback

    from stepengine.masking import current_masker

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    echo(current_masker().mask(text).rstrip("\n"))
    echo(
        f"stepengine: unexpected error ({type(exc).__name__}); this is a bug, please report it "
        "with the traceback above"
    )
    return UNEXPECTED


def _click_outcome(exc: Exception) -> int | None:
    """The exit code for one of click's own exceptions (after showing it), else None."""
    click = sys.modules.get("click")
    if click is None:
        return None
    if isinstance(exc, click.exceptions.Exit):
        return int(exc.exit_code)
    if isinstance(exc, click.exceptions.Abort):
        echo("interrupted")
        return INTERRUPTED
    if isinstance(exc, click.ClickException):
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else int(exc.exit_code)
    return None


def _render(exc: StepEngineError) -> str:
    text = str(exc)
    if isinstance(exc, StepExecutionError):
        return f"error: {text}"
    lines = text.splitlines() or [""]
    return "\n".join(f"error: {line}" if not line.startswith("hint:") else line for line in lines)
