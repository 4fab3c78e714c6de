"""The one way steps start child processes: streamed, masked, killed as a group, errors that explain.

Every external command of the built-in steps (git, pip, shell, docker CLI) goes through
``run_process``. It starts the child in its own process group, streams each output line (masked) to
the run's events as it arrives, and on interrupt, timeout or error kills the whole group, so no
grandchild is left behind. Secrets passed in ``secrets=`` (and every secret the run knows) are masked
in the argv, output and error it reports.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import threading
import typing as t

from stepengine.context import RunContext, current_run, emit_output
from stepengine.errors import ProcessError, StepError
from stepengine.masking import ByteStreamMasker, Masker, current_masker

if t.TYPE_CHECKING:
    import subprocess

__all__ = ["ProcessResult", "run_process"]

#: the children started by the step attempt now running; the runner kills their process groups
#: when the step runs over its ``timeout_seconds`` (issue 8). ``None`` outside such an attempt.
_LIVE: contextvars.ContextVar[set[subprocess.Popen[t.Any]] | None] = contextvars.ContextVar(
    "stepengine_live_processes", default=None
)


@contextlib.contextmanager
def track_processes() -> t.Iterator[set[subprocess.Popen[t.Any]]]:
    """Collect every child ``run_process`` starts inside the block (in this context) into a set."""
    live: set[subprocess.Popen[t.Any]] = set()
    token = _LIVE.set(live)
    try:
        yield live
    finally:
        _LIVE.reset(token)


class ProcessResult(t.NamedTuple):
    """What a finished child process produced (output already masked)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_process(
    args: t.Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: t.Mapping[str, str] | None = None,
    stream_output: bool = True,
    check: bool = True,
    input: str | None = None,
    timeout: float | None = None,
    secrets: t.Iterable[str] = (),
    hint: str | None = None,
) -> ProcessResult:
    """Run ``args`` and return its (masked) output.

    :param env: the *complete* environment of the child (default: the current one).
    :param stream_output: report the output as ``step.output`` events while it runs (each holds the
        complete lines that arrived together).
    :param check: raise ``ProcessError`` on a non-zero exit.
    :param timeout: seconds; the process group is killed after it and ``StepError`` raised.
    :param secrets: values to mask in everything reported about this process.
    :param hint: added to the error when the process fails.

    Example::

        result = run_process(["git", "--version"], stream_output=False)
        print(result.stdout)
    """
    import subprocess  # here, not at module level: step_api imports this module on every run

    masker = current_masker()
    for secret in secrets:
        masker.add(secret)
    argv = [os.fspath(a) for a in args]
    out: list[str] = []
    err: list[str] = []
    threads: list[threading.Thread] = []
    live = _LIVE.get()
    proc: subprocess.Popen[bytes] | None = None
    # Everything after the child exists runs under one try: an interrupt at any point (even while
    # the output threads start) kills the child's whole process group.
    try:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                bufsize=0,
            )
        except FileNotFoundError as exc:
            raise StepError(f"command not found: {argv[0]}", hint=hint) from exc
        except PermissionError as exc:
            raise StepError(f"command not executable: {argv[0]}", hint=hint) from exc
        if live is not None:
            live.add(proc)

        def pump(stream: t.IO[bytes], sink: list[str], name: str) -> None:
            _pump(stream, sink, name, masker, stream_output)

        for stream, sink, name in ((proc.stdout, out, "stdout"), (proc.stderr, err, "stderr")):
            thread = threading.Thread(
                target=contextvars.copy_context().run, args=(pump, stream, sink, name), daemon=True
            )
            threads.append(thread)
            thread.start()
        if input is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(input.encode("utf-8"))
                proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process_group(proc)
            raise StepError(
                f"command `{masker.mask(_join(argv))}` timed out after {timeout:g} s and was stopped"
            ) from None
    except BaseException:
        # KeyboardInterrupt, SystemExit from a signal handler, or a timeout: leave nothing running.
        if proc is not None:
            kill_process_group(proc)
        raise
    finally:
        for thread in threads:
            # an interrupt inside start() leaves a thread that never started: join() would raise
            # RuntimeError and hide the KeyboardInterrupt (exit 1 instead of 130)
            with contextlib.suppress(RuntimeError):
                thread.join(timeout=5)
        if live is not None and proc is not None:
            live.discard(proc)

    stdout = "".join(out)  # masked as it streamed
    stderr = "".join(err)
    if check and returncode != 0:
        raise ProcessError(
            [masker.mask(a) for a in argv], returncode, stdout=stdout, stderr=stderr, hint=hint
        )
    return ProcessResult(argv, returncode, stdout, stderr)


def _pump(stream: t.IO[bytes], sink: list[str], name: str, masker: Masker, stream_output: bool) -> None:
    """Read a child's output as it comes, in chunks: mask it on the stream (a secret split across
    reads is still caught), keep it, and report the complete lines of each chunk as one event.

    Chunks, not lines: the cost is per read, so 10 MB of output streams at disk speed (issue 16).
    Line ends are normalised as text-mode pipes do (``\\r\\n`` and ``\\r`` become ``\\n``)."""
    import codecs

    fd = stream.fileno()
    streamer = ByteStreamMasker(masker)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    run = current_run() if stream_output else None
    partial = ""
    final = False
    try:
        while not final:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                text = decoder.decode(streamer.feed(chunk))
            else:
                final = True
                text = decoder.decode(streamer.flush(), final=True)
            if not text and not final:
                continue
            text = partial + text
            if not final and text.endswith("\r"):
                text, partial = text[:-1], "\r"  # may be the first half of \r\n
            else:
                partial = ""
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            sink.append(text)
            if not stream_output:
                continue
            cut = text.rfind("\n") + 1
            if final or len(text) - cut > 1 << 16:  # the end, or a line too long to hold: all of it
                cut = len(text)
            lines, rest = text[:cut], text[cut:]
            if rest:
                # a partial line waits for its end (it is in ``sink`` already)
                sink.pop()
                sink.append(lines)
                partial = rest + partial
            if lines:
                _report(run, lines[:-1] if lines.endswith("\n") else lines, name)
    finally:
        stream.close()


def _report(run: RunContext | None, lines: str, name: str) -> None:
    if run is None:
        emit_output(lines, name)
    else:  # already masked: the event is not masked again
        run.emit("step.output", premasked=True, message=lines, stream=name)


def kill_process_group(proc: subprocess.Popen[t.Any], grace: float = 3.0) -> None:
    """Stop ``proc`` and every process it started: SIGTERM to the group, SIGKILL after ``grace``."""
    import subprocess

    if proc.poll() is not None:
        kill_group(proc.pid, signal.SIGKILL)
        return
    kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    kill_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pid`` leads (every child ``run_process`` starts leads one);
    one that has already ended is not an error."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _join(argv: t.Sequence[str]) -> str:
    import shlex

    return shlex.join(argv)
