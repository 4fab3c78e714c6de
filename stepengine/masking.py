"""Secret masking: every value known to be secret is replaced by ``***`` wherever text leaves the engine.

A value is registered once (``Masker.add``); the masker then also knows its base64, URL-encoded and
JSON-escaped forms, and every leaf of a structured secret. ``mask(text)`` replaces all of them, until
none is left. ``StreamMasker`` does the same for text that arrives in chunks, holding back just
enough of the tail that a secret split across chunks is caught. ``scrub_exception`` masks an
exception chain in place, so a traceback printed by anyone (not only the CLI) shows no secret.

Every form is found in one pass by an Aho–Corasick automaton (``ahocorasick_rs``, over UTF-8 bytes),
so the cost of masking grows with the text, not with the number of secrets (issue 16: one regex
alternation of every form cost bytes × secrets). Where that library cannot be installed a regular
expression does the same work, slower.

Values shorter than ``MIN_SECRET_LENGTH`` characters are not masked (a warning says so): masking
"a" or "1" would shred every line while protecting nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
import typing as t

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "ByteStreamMasker",
    "MaskedTextStream",
    "Masker",
    "StreamMasker",
    "current_masker",
    "mask",
    "masked_output",
    "masked_std_streams",
    "scrub_exception",
    "using_masker",
]

MASK = "***"
_MASK_BYTES = MASK.encode()
#: shorter values are not masked: masking "a" or "1" would shred every log line
MIN_SECRET_LENGTH = 4

_log = logging.getLogger("stepengine")


class Masker:
    """A set of secret strings and the forms they are likely to be printed in.

    A masker made with ``parent=`` also masks everything its parent knows (a run's masker sees the
    process-wide secrets); what is added to it stays out of the parent.
    """

    def __init__(self, parent: Masker | None = None) -> None:
        self._parent = parent
        self._forms: set[str] = set()
        self._generation = 0
        self._pattern: _Matcher | None = None
        self._pattern_state: tuple[int, ...] = ()
        self._longest = 0

    def add(self, value: t.Any) -> None:
        """Register ``value`` (a string, or every leaf of a dict/list) as secret."""
        if isinstance(value, t.Mapping):
            for leaf in value.values():
                self.add(leaf)
            return
        if isinstance(value, (list, tuple, set, frozenset)):
            for leaf in value:
                self.add(leaf)
            return
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        text = value if isinstance(value, str) else str(value)
        if len(text) < MIN_SECRET_LENGTH:
            if text:
                _log.warning(
                    "a secret value shorter than %d characters is not masked; use a longer one",
                    MIN_SECRET_LENGTH,
                )
            return
        forms = _encoded_forms(text)
        if "\n" in text:
            # Output is read line by line (child processes, logs): a multi-line secret such as a
            # private key must be caught one line at a time too.
            for line in text.splitlines():
                if len(line.strip()) >= MIN_SECRET_LENGTH:
                    forms |= _encoded_forms(line.strip())
        new = forms - self._forms
        if new:
            self._forms |= new
            self._generation += 1

    def _state(self) -> tuple[int, ...]:
        state = (id(self), self._generation)
        return state + self._parent._state() if self._parent is not None else state

    @property
    def secrets(self) -> frozenset[str]:
        """Every string this masker replaces (each secret and its encoded forms)."""
        forms = set(self._forms)
        if self._parent is not None:
            forms |= self._parent.secrets
        return frozenset(forms)

    def _compiled(self) -> _Matcher | None:
        state = self._state()
        if state != self._pattern_state:
            forms = self.secrets
            self._pattern = _Matcher(forms) if forms else None
            self._longest = self._pattern.longest if self._pattern else 0
            self._pattern_state = state
        return self._pattern

    def mask(self, text: str) -> str:
        """``text`` with every known secret form replaced by ``***``."""
        if not text:
            return text
        matcher = self._compiled()
        if matcher is None or len(text) < matcher.shortest:
            return text
        data = text.encode("utf-8", "surrogatepass")
        masked = matcher.mask(data)
        return text if masked is data else masked.decode("utf-8", "surrogatepass")

    def mask_bytes(self, data: bytes) -> bytes:
        """``data`` (UTF-8) with every known secret form replaced by ``***``."""
        matcher = self._compiled()
        if matcher is None:
            return data
        return matcher.mask(data)

    def mask_data(self, value: t.Any) -> t.Any:
        """Mask every string inside a JSON-like structure (dict keys included)."""
        if self._compiled() is None:
            return value
        return self._mask_data(value)

    def _mask_data(self, value: t.Any) -> t.Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, bytes):
            return self.mask(value.decode("utf-8", "replace")).encode()
        if isinstance(value, dict):
            return {self._mask_data(k): self._mask_data(v) for k, v in value.items()}
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
            return type(value)(*(self._mask_data(v) for v in value))
        if isinstance(value, (list, tuple, set, frozenset)):
            return type(value)(self._mask_data(v) for v in value)
        return value

    @property
    def longest(self) -> int:
        """The length of the longest form: how much of a stream's tail may be a secret's start."""
        self._compiled()
        return self._longest

    @property
    def multiline(self) -> list[str]:
        """The forms that span lines (multi-line secrets), which a stream must not cut at a newline."""
        matcher = self._compiled()
        return matcher.multiline if matcher is not None else []

    @property
    def multiline_bytes(self) -> list[bytes]:
        matcher = self._compiled()
        return matcher.multiline_bytes if matcher is not None else []

    @property
    def longest_bytes(self) -> int:
        """``longest`` in UTF-8 bytes (for streams of bytes)."""
        matcher = self._compiled()
        return matcher.longest_bytes if matcher is not None else 0


class _Matcher:
    """Finds every occurrence of a fixed set of forms in UTF-8 bytes and replaces each by ``***``.

    Occurrences that overlap (one form inside another, a secret next to its own prefix) are all
    covered: the union of their spans becomes one ``***``. Only a form that itself contains ``*``
    can be recreated by a replacement, so only then is the text searched again, until nothing is
    found (each round shortens it).
    """

    def __init__(self, forms: t.Iterable[str]) -> None:
        encoded = sorted({f.encode("utf-8", "surrogatepass") for f in forms}, key=len, reverse=True)
        self.longest = max(len(f.decode("utf-8", "surrogatepass")) for f in encoded)
        self.longest_bytes = len(encoded[0])
        #: no text shorter than this (in characters: a character is at most 4 bytes) holds a form
        self.shortest = max(1, len(encoded[-1]) // 4)
        self.multiline_bytes = [f for f in encoded if b"\n" in f]
        self.multiline = [f.decode("utf-8", "surrogatepass") for f in self.multiline_bytes]
        self._spans, every_occurrence = _span_finder(encoded)
        self._again = not every_occurrence or any(b"*" in f for f in encoded)

    def mask(self, data: bytes) -> bytes:
        while True:
            spans = self._spans(data)
            if not spans:
                return data
            spans.sort()
            pieces: list[bytes] = []
            start, end = spans[0]
            done = 0
            for s, e in spans[1:]:
                if s <= end:
                    end = max(end, e)
                    continue
                pieces += (data[done:start], _MASK_BYTES)
                done, start, end = end, s, e
            pieces += (data[done:start], _MASK_BYTES, data[end:])
            data = b"".join(pieces)
            if not self._again:
                return data


#: length of the form prefixes the first pass looks for (see ``_span_finder``)
_PREFIX = 6
#: up to this many distinct prefixes the first pass is a DFA (fast to search, built in ~15 ms for
#: 4,000); beyond, a contiguous NFA, whose size stays in proportion to the prefixes
_DFA_PREFIXES = 8192


def _span_finder(forms: list[bytes]) -> tuple[t.Callable[[bytes], list[tuple[int, int]]], bool]:
    """A function giving the (start, end) of every occurrence of every form, overlapping ones too,
    and whether it really finds every one (the regular expression finds no overlapping ones).

    Two passes (issue 16: output at disk speed with 1,000 secrets): a fast automaton over the forms'
    first ``_PREFIX`` bytes finds where a form may start; only there (rare: secrets seldom appear in
    output) does the automaton of the whole forms, built on first need, look for occurrences.

    Why nothing is missed: a form occurring at ``p`` has its prefix at ``p``. The first pass is a
    leftmost, non-overlapping search, so it reports a match starting at ``p`` or one before ``p``
    that is still running at ``p`` (any match ending at or before ``p`` is followed by another
    leftmost one starting no later than ``p``). A form starting inside a reported match ``[q, q +
    n)`` ends before ``q + n - 1 + longest``: the whole-form search over that window finds it.
    """
    try:
        import ahocorasick_rs
    except ImportError:  # pragma: no cover - the dependency has wheels for every supported platform
        pattern = re.compile(b"|".join(re.escape(f) for f in forms))  # longest first

        def regex_spans(data: bytes) -> list[tuple[int, int]]:
            return [m.span() for m in pattern.finditer(data)]

        return regex_spans, False
    prefixes = sorted({f[:_PREFIX] for f in forms})
    first_pass = ahocorasick_rs.BytesAhoCorasick(
        prefixes,
        matchkind=ahocorasick_rs.MatchKind.LeftmostFirst,
        implementation=(
            ahocorasick_rs.Implementation.DFA
            if len(prefixes) <= _DFA_PREFIXES
            else ahocorasick_rs.Implementation.ContiguousNFA
        ),
    ).find_matches_as_indexes
    reach = max(len(f) for f in forms) - 1
    whole: list[t.Callable[..., list[tuple[int, int, int]]]] = []

    def spans(data: bytes) -> list[tuple[int, int]]:
        candidates = first_pass(data)
        if not candidates:
            return []
        if not whole:
            whole.append(
                ahocorasick_rs.BytesAhoCorasick(
                    forms,
                    matchkind=ahocorasick_rs.MatchKind.Standard,
                    implementation=ahocorasick_rs.Implementation.ContiguousNFA,
                ).find_matches_as_indexes
            )
        find = whole[0]
        found: list[tuple[int, int]] = []
        window_start, window_end = candidates[0][1], candidates[0][2] + reach
        for _, start, end in [*candidates[1:], (0, len(data), len(data))]:
            if start <= window_end and start < len(data):
                window_end = max(window_end, end + reach)
                continue
            view = memoryview(data)[window_start:window_end]
            found += [(window_start + s, window_start + e) for _, s, e in find(view, overlapping=True)]
            window_start, window_end = start, end + reach
        return found

    return spans, True


def _encoded_forms(text: str) -> set[str]:
    import base64
    import json
    from urllib.parse import quote, quote_plus

    escaped = json.dumps(text, ensure_ascii=False)[1:-1]
    forms = {text, escaped, escaped if text.isascii() else json.dumps(text)[1:-1]}
    forms.add(quote(text, safe=""))
    forms.add(quote_plus(text, safe=""))
    raw = text.encode()
    # Inside a longer base64 text (``base64("user:" + secret)``, a secret followed by more data) the
    # secret's bytes start at any of the three alignments: keep, for each, the characters whose six
    # bits all come from the secret; and the secret's own encoding, unpadded. The URL-safe alphabet
    # differs from the standard one in two characters only: its forms are translations of these.
    standard = [base64.b64encode(raw).decode().rstrip("=")]
    for pad in (0, 1, 2):
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        standard.append(encoded[-(-8 * pad // 6) : 8 * (pad + len(raw)) // 6])
    forms.update(standard)
    forms.update(form.translate(_URL_SAFE) for form in standard)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


_URL_SAFE = str.maketrans("+/", "-_")


class StreamMasker:
    """Masks text that arrives in chunks: a secret split across two chunks is still caught.

    ``feed`` returns the part of the stream that is safe to emit now: everything up to the last
    newline, and of a partial line all but its last ``longest - 1`` characters (already masked),
    which may be the start of a secret the next chunk completes. A flush by the writer releases
    nothing more: the held-back tail waits for more text or for ``flush`` at the end of the stream.
    Every line of a multi-line secret is a form of its own, so a secret is never cut at a newline.
    """

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """Return the part of the stream that is safe to emit now."""
        text = self._masker.mask(self._pending + chunk) if self._pending else self._masker.mask(chunk)
        cut = _safe_cut(text, self._masker.longest, "\n", self._masker.multiline)
        self._pending = text[cut:]
        return text[:cut]

    def flush(self) -> str:
        """The held-back tail, masked: call once the stream has ended."""
        rest, self._pending = self._masker.mask(self._pending), ""
        return rest


class ByteStreamMasker:
    """``StreamMasker`` for a stream of UTF-8 bytes (a pipe, a file descriptor)."""

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """Return the part of the stream that is safe to emit now."""
        data = self._masker.mask_bytes(self._pending + chunk if self._pending else chunk)
        cut = _safe_cut(data, self._masker.longest_bytes, b"\n", self._masker.multiline_bytes)
        self._pending = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        """The held-back tail, masked: call once the stream has ended."""
        rest, self._pending = self._masker.mask_bytes(self._pending), b""
        return rest


_Text = t.TypeVar("_Text", str, bytes)


def _safe_cut(text: _Text, longest: int, newline: _Text, multiline: t.Sequence[_Text]) -> int:
    """Where ``text`` (already masked) may be cut: what follows may be the start of a secret.

    Up to the last newline is safe, unless the text ends with the beginning of a multi-line
    secret that crosses it (a line of such a secret can be too short to be a form of its own).
    """
    at_newline = text.rfind(newline) + 1
    for form in multiline:
        # an unfinished occurrence crossing that newline has one of its own newlines there
        j = form.find(newline)
        while j != -1:
            start = at_newline - 1 - j
            if 0 <= start < at_newline and len(text) - start < len(form) and form.startswith(text[start:]):
                at_newline = start
            j = form.find(newline, j + 1)
    return max(len(text) - max(longest - 1, 0), at_newline, 0)


class MaskedTextStream:
    """A text stream (``sys.stdout``, ``sys.stderr``) that masks what is written through it.

    Text is masked as it arrives, holding back at most the length of the longest secret of a
    partial line (``StreamMasker``): a secret written in pieces, with or without ``flush()``
    between them, is still caught. ``close_masking()`` releases the held-back tail. ``buffer``
    masks bytes written to it the same way, in order with the text. Everything else (``isatty``,
    ``fileno``, ``encoding``…) is the wrapped stream's.
    """

    def __init__(self, stream: t.TextIO, masker: Masker | None = None) -> None:
        self._stream = stream
        self._masker = masker
        self._streamers: dict[int, StreamMasker] = {}
        self._buffer: _MaskedBuffer | None = None
        # threads print through one wrapper: each write masks and passes on its text whole
        self._lock = threading.Lock()

    def _streamer(self) -> StreamMasker:
        # One per masker: with the default (the current masker at each write), two runs in one
        # process keep their held-back text apart.
        masker = self._masker or current_masker()
        streamer = self._streamers.get(id(masker))
        if streamer is None or streamer._masker is not masker:
            streamer = self._streamers[id(masker)] = StreamMasker(masker)
        return streamer

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            out = self._streamer().feed(text)
            if out:
                self._stream.write(out)
        return len(text)

    def writelines(self, lines: t.Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def release(self, masker: Masker) -> None:
        """Write what is held back for ``masker`` (masked): its run has ended."""
        with self._lock:
            streamer = self._streamers.pop(id(masker), None)
            rest = streamer.flush() if streamer is not None and streamer._masker is masker else ""
            if rest:
                self._stream.write(rest)

    def close_masking(self) -> None:
        """Write the held-back tails (masked) and flush: the stream is no longer masked after."""
        if self._buffer is not None:
            self._buffer.flush()
        with self._lock:
            for streamer in self._streamers.values():
                rest = streamer.flush()
                if rest:
                    self._stream.write(rest)
            self._streamers.clear()
        self._stream.flush()

    @property
    def buffer(self) -> _MaskedBuffer:
        if self._buffer is None:
            self._buffer = _MaskedBuffer(self)
        return self._buffer

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._stream, name)


class _MaskedBuffer:
    """``sys.stdout.buffer`` of a ``MaskedTextStream``: bytes are decoded (UTF-8) and masked with the
    text, in the order they were written."""

    def __init__(self, text: MaskedTextStream) -> None:
        import codecs

        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._text.write(self._decoder.decode(bytes(data)))
        return len(data)

    def flush(self) -> None:
        rest = self._decoder.decode(b"", final=True)
        if rest:
            self._text.write(rest)
        self._text.flush()

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._text._stream.buffer, name)


@contextlib.contextmanager
def masked_std_streams(masker: Masker | None = None) -> t.Iterator[None]:
    """Inside the block, ``sys.stdout`` and ``sys.stderr`` mask every secret ``masker`` (default:
    the current masker at each write) knows: a step that ``print``s a token directly is caught too.
    Streams already masked are left alone."""
    import sys

    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, MaskedTextStream):
        sys.stdout = MaskedTextStream(sys.stdout, masker)
    if not isinstance(sys.stderr, MaskedTextStream):
        sys.stderr = MaskedTextStream(sys.stderr, masker)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, MaskedTextStream) and stream not in saved:
                with contextlib.suppress(Exception):
                    stream.close_masking()
        sys.stdout, sys.stderr = saved


_OUTPUT_LOCK = threading.Lock()
_output_users = 0
_saved_output: tuple[t.Any, ...] = ()


@contextlib.contextmanager
def masked_output() -> t.Iterator[None]:
    """While any run is in progress in this process: ``sys.stdout`` and ``sys.stderr`` mask what is
    written through them (``print``, ``sys.stdout.buffer``), and every ``logging`` record is masked
    as it is made, with the masker of the run that writes or logs (``current_masker()``).

    The runner enters this around every run, so a step's ``print()`` and log lines are masked
    through the Python API as well as in the CLI. It cannot see writes to file descriptor 1 or 2
    that bypass ``sys.stdout``/``sys.stderr`` (``os.write``, C extensions, child processes not
    started through ``run_process``): the CLI masks those at the file-descriptor level. Runs in
    several threads share one wrapper; streams already masked are left alone.
    """
    import logging
    import sys

    global _output_users, _saved_output
    with _OUTPUT_LOCK:
        _output_users += 1
        if _output_users == 1:
            factory = logging.getLogRecordFactory()
            saved = (sys.stdout, sys.stderr, factory)
            if sys.stdout is not None and not isinstance(sys.stdout, MaskedTextStream):
                sys.stdout = MaskedTextStream(sys.stdout)
            if sys.stderr is not None and not isinstance(sys.stderr, MaskedTextStream):
                sys.stderr = MaskedTextStream(sys.stderr)
            logging.setLogRecordFactory(_masking_record_factory(factory))
            _saved_output = saved
    masker = current_masker()
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, MaskedTextStream):
                with contextlib.suppress(Exception):
                    stream.release(masker)  # this run's held-back text; other runs' stays held
        with _OUTPUT_LOCK:
            _output_users -= 1
            if _output_users == 0:
                out, err, factory = _saved_output
                _saved_output = ()
                for current, saved_stream, name in ((sys.stdout, out, "stdout"), (sys.stderr, err, "stderr")):
                    if isinstance(current, MaskedTextStream) and current is not saved_stream:
                        with contextlib.suppress(Exception):
                            current.close_masking()
                        if current._stream is saved_stream:  # not replaced by anyone meanwhile
                            setattr(sys, name, saved_stream)
                logging.setLogRecordFactory(factory)


def mask_record(record: logging.LogRecord, masker: Masker | None = None) -> logging.LogRecord:
    """Mask a log record in place: its rendered message, its traceback and its stack.

    A traceback is formatted here (masked) because formatters run after filters and factories and
    reuse ``exc_text`` when it is set. A message that cannot be formatted stays as it is.
    """
    masker = masker or current_masker()
    if masker.longest:
        with contextlib.suppress(Exception):
            record.msg = masker.mask(record.getMessage())
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = masker.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = masker.mask(record.stack_info)
    return record


def _masking_record_factory(make: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """A log record factory masking each record's message (and traceback) when it is made."""

    def make_masked(*args: t.Any, **kwargs: t.Any) -> t.Any:
        return mask_record(make(*args, **kwargs))

    return make_masked


def scrub_exception(exc: BaseException, masker: Masker) -> BaseException:
    """Mask ``exc`` and every exception chained to it, in place; returns ``exc``.

    Masks the arguments and every string-like attribute (an error's message, hint, argv, output),
    so a traceback printed by anyone, after the run, shows no secret.
    """
    if masker._compiled() is None:
        return exc
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        try:
            current.args = tuple(masker._mask_data(a) for a in current.args)
        except (TypeError, AttributeError):  # pragma: no cover - exotic exception types
            pass
        for name, value in list(vars(current).items()):
            if isinstance(value, BaseException):
                stack.append(value)
            elif isinstance(value, (str, bytes, list, tuple, dict)):
                try:
                    setattr(current, name, masker._mask_data(value))
                except (AttributeError, TypeError):  # pragma: no cover - read-only attribute
                    pass
        for name in _C_LEVEL_TEXT:  # OSError and SyntaxError keep their text outside __dict__
            value = getattr(current, name, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(current, name, masker.mask(value))
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            masked_notes = [masker.mask(n) if isinstance(n, str) else n for n in notes]
            current.__notes__ = masked_notes  # type: ignore[attr-defined]  # (3.11+; 3.10's stubs lack it)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        grouped = getattr(current, "exceptions", None)  # an ExceptionGroup (3.11+)
        if isinstance(grouped, tuple):
            stack.extend(e for e in grouped if isinstance(e, BaseException))
    return exc


_C_LEVEL_TEXT = ("strerror", "filename", "filename2", "msg", "text")


_GLOBAL = Masker()
_CURRENT: contextvars.ContextVar[Masker] = contextvars.ContextVar("stepengine_masker", default=_GLOBAL)


def current_masker() -> Masker:
    """The masker of the run in progress (or the process-wide one outside a run)."""
    return _CURRENT.get()


def run_masker(masker: Masker | None, env: t.Mapping[str, str] | None) -> Masker:
    """A run's masker (``masker``, or a new one under the current masker), knowing from the start every
    secret the environment holds."""
    from stepengine.stores.env import env_secrets

    if masker is None:
        masker = Masker(parent=current_masker())
    masker.add(env_secrets(env))
    return masker


@contextlib.contextmanager
def using_masker(masker: Masker) -> t.Iterator[Masker]:
    """Make ``masker`` the current one inside the block (e.g. for a whole CLI command)."""
    token = _CURRENT.set(masker)
    try:
        yield masker
    finally:
        _CURRENT.reset(token)


def mask(value: t.Any) -> t.Any:
    """Mark ``value`` as secret for the rest of the run and return it unchanged.

    Part of the step-author API: call it on any credential a step reads or receives so that it never
    appears in logs, events, errors or outputs.
    """
    current_masker().add(value)
    return value
