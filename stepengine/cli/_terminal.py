"""The CLI's real stdout and stderr while ``stepengine run`` runs steps, and the masking of file
descriptors 1 and 2 (issue 14).

A Python step can write to the process's own output in ways no Python-level wrapper sees: a secret
printed in pieces, ``sys.stdout.buffer``, a C extension or a child process writing to fd 1. So while
the steps run, fd 1 and 2 are pipes (``dup2``), each read by a thread that masks what arrives on the
stream (``ByteStreamMasker``: a secret split across writes is still caught) and passes it on. The
engine's own printers write their (already masked) text to the real streams kept here, through
``Terminal.write``, which first drains what a step wrote before, so the order of a step's own
output and the engine's lines is kept.

Where the streams are not the process's file descriptors (tests driving the CLI in-process), nothing
is captured and the masking text streams of ``command_scope`` do the work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import typing as t

from stepengine.masking import ByteStreamMasker, Masker

__all__ = ["Terminal"]

STDOUT, STDERR = "stdout", "stderr"
_CHUNK = 1 << 16


class _Capture:
    """One captured file descriptor: the pipe now at ``fd`` and the real stream it stood for."""

    def __init__(self, name: str, fd: int, masker: Masker) -> None:
        self.name = name
        self.fd = fd
        self.saved = os.dup(fd)
        self.read_end, write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        os.dup2(write_end, fd)
        os.close(write_end)
        self.streamer = ByteStreamMasker(masker)

    def restore(self) -> None:
        os.dup2(self.saved, self.fd)


class Terminal:
    """The real stdout/stderr of a command (``out``, ``err``) and the masking of fd 1 and 2.

    ``write`` is how the engine prints (text already masked). What anyone else writes to fd 1 or
    2 is masked and goes to ``deliver``: by default the matching real stream; a live display sets
    it to enqueue the text instead, so that one thread alone draws on the terminal.
    """

    def __init__(self, masker: Masker, *, capture: bool = True) -> None:
        self.masker = masker
        self._lock = threading.Lock()
        self._captures: dict[str, _Capture] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: where masked text that was written to fd 1/2 goes: (stream name, text) -> None
        self.deliver: t.Callable[[str, str], None] = self.write_real
        #: fd 1 output is shown on stderr (``--output json`` keeps stdout for the JSON)
        self.stdout_to_stderr = False
        self.out: t.TextIO = sys.stdout
        self.err: t.TextIO = sys.stderr
        #: the first error writing a real stream (not a reader gone): raised when the command ends
        self.error: OSError | None = None
        #: streams that cannot be written any more (closed, or a reader gone: ``| head``)
        self._gone: set[str] = {
            name for name, stream in ((STDOUT, sys.stdout), (STDERR, sys.stderr)) if stream is None
        }
        self._decoders: dict[str, t.Any] = {}
        if capture and _is_process_stream(sys.stdout, 1) and _is_process_stream(sys.stderr, 2):
            self._start()

    # -- set-up and tear-down ------------------------------------------------------------------

    def _start(self) -> None:
        import codecs

        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            for name, fd in ((STDOUT, 1), (STDERR, 2)):
                self._captures[name] = _Capture(name, fd, self.masker)
        except OSError:  # out of file descriptors: mask at the Python level only
            self._undo()
            return
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        self.out = open(self._captures[STDOUT].saved, "w", encoding=encoding, errors="replace", closefd=False)
        self.err = open(
            self._captures[STDERR].saved,
            "w",
            encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
            errors="backslashreplace",
            closefd=False,
        )
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in self._captures}
        self._thread = threading.Thread(target=self._read_loop, name="stepengine-fd-masking", daemon=True)
        self._thread.start()

    @property
    def capturing(self) -> bool:
        return bool(self._captures)

    def close(self) -> None:
        """Put fd 1 and 2 back, pass on (masked) whatever is still in the pipes, stop the thread."""
        if not self._captures:
            self._silence_gone_stdout()
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for capture in self._captures.values():
            capture.restore()  # our write ends close: a pipe still held open by a child is not waited for
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for capture in self._captures.values():
                self._drain(capture)
                self._pass_on(capture, capture.streamer.flush(), final=True)
        self._undo()

    def _undo(self) -> None:
        for capture in self._captures.values():
            capture.restore()
            for fd in (capture.read_end, capture.saved):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._captures.clear()
        for stream in (self.out, self.err):
            if stream not in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
        self.out, self.err = sys.stdout, sys.stderr
        self._silence_gone_stdout()

    def _silence_gone_stdout(self) -> None:
        if STDOUT in self._gone and sys.stdout is not None:
            # Python's own flush of stdout at exit would report the broken pipe
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close()
        if exc_type is None and self.error is not None:
            raise self.error

    # -- the engine's own output ---------------------------------------------------------------

    def write(self, name: str, text: str) -> None:
        """Write ``text`` (masked already) to the real stream ``name``, after what a step wrote to
        that file descriptor before."""
        self._flush_python_streams()
        with self._lock:
            for capture in self._captures.values():
                self._drain(capture)
            self.write_real(name, text)

    def set_deliver(self, deliver: t.Callable[[str, str], None] | None) -> None:
        """Send what steps write to fd 1/2 to ``deliver`` from now on (None: the real streams),
        after passing what is already written to the previous one: nothing is lost in between."""
        self._flush_python_streams()
        with self._lock:
            for capture in self._captures.values():
                self._drain(capture)
            self.deliver = deliver or self.write_real

    def _flush_python_streams(self) -> None:
        # What a Python step (the main thread) print()ed and Python still buffers goes first. Never
        # under our lock, nor from another thread: a flush can wait for the pipe, which only our
        # thread empties, and a thread flushing may wait for the main thread's write to finish.
        if self._captures and threading.current_thread() is threading.main_thread():
            for own in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    own.flush()

    def isatty(self, name: str) -> bool:
        stream = self.out if name == STDOUT else self.err
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    # -- what others write to fd 1 and 2 -------------------------------------------------------

    def _read_loop(self) -> None:
        import select

        fds = {c.read_end: c for c in self._captures.values()}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select(list(fds), [], [], 0.05)
            except (OSError, ValueError):
                return
            for fd in ready:
                with self._lock:
                    if not self._stop.is_set():
                        self._drain(fds[fd])

    def _drain(self, capture: _Capture) -> None:
        """Pass on everything now in ``capture``'s pipe (called with the lock held)."""
        while True:
            try:
                chunk = os.read(capture.read_end, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            self._pass_on(capture, capture.streamer.feed(chunk))

    def _pass_on(self, capture: _Capture, data: bytes, final: bool = False) -> None:
        text = self._decoders[capture.name].decode(data, final=final)
        if text:
            name = STDERR if self.stdout_to_stderr else capture.name
            with contextlib.suppress(Exception):  # a closed stdout (| head) must not kill the thread
                self.deliver(name, text)

    def write_real(self, name: str, text: str) -> None:
        if name in self._gone:
            return
        stream = self.out if name == STDOUT else self.err
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError, AttributeError):
            # the reader went away (``stepengine run | head``) or the stream is closed: the run goes
            # on, its output is dropped, and nothing is printed about it
            self._gone.add(name)
        except OSError as exc:  # a full disk, an I/O error: said once, at the end if not now
            self._gone.add(name)
            if self.error is None:
                self.error = exc
            if threading.current_thread() is threading.main_thread():
                raise


def _is_process_stream(stream: t.TextIO | None, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, ValueError, OSError):  # a stand-in without a file descriptor, closed
        return False
