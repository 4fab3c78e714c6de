"""The run context: which run and which step are in progress, reachable from inside a step.

The runner enters a ``StepContext`` around each step; the step-author API (``current_step``,
``get_logger``, ``emit_output``, ``mask``) reads it through a context variable, so it works in sync
steps, async steps and threads started with ``contextvars.copy_context``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import typing as t

from stepengine.events import Event, EventHandler, now
from stepengine.masking import Masker, using_masker

__all__ = ["StepInfo", "current_step", "emit_output", "get_logger", "load_block"]


class StepInfo(t.NamedTuple):
    """What a running step may know about itself."""

    section: str
    #: (the field shadows ``tuple.index`` on purpose: a public name)
    index: int  # type: ignore[assignment]
    step_id: str | None
    function: str
    file: str | None = None
    line: int | None = None
    #: identifies the run this step belongs to (unique per run in this process), e.g. for a
    #: step that caches work "once per run"
    run_id: str | None = None


class RunContext:
    """State shared by every step of one run."""

    def __init__(self, masker: Masker, on_event: EventHandler | None = None) -> None:
        self.masker = masker
        self._on_event = on_event
        self.step: StepInfo | None = None
        self.run_id = os.urandom(8).hex()
        #: reads a block through the run's store: ``(block_type, name) -> data`` (set by the runner)
        self.block_loader: t.Callable[[str, str], t.Any] | None = None

    def emit(self, kind: str, *, premasked: bool = False, **fields: t.Any) -> None:
        """Send an event to the subscriber, every field masked (``premasked``: but ``message``, which
        the caller masked already, e.g. output masked on its stream)."""
        if self._on_event is None:
            return
        step = self.step
        if step is not None:
            fields.setdefault("section", step.section)
            fields.setdefault("index", step.index)
            fields.setdefault("step_id", step.step_id)
            fields.setdefault("function", step.function)
            fields.setdefault("file", step.file)
            fields.setdefault("line", step.line)
        # every field, not only message and inputs: a field added later is masked too
        message = fields.pop("message", None) if premasked else None
        fields = self.masker.mask_data(fields)
        if premasked:
            fields["message"] = message
        self._on_event(Event(kind=kind, timestamp=now(), **fields))


_RUN: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("stepengine_run", default=None)


@contextlib.contextmanager
def run_context(ctx: RunContext) -> t.Iterator[RunContext]:
    token = _RUN.set(ctx)
    try:
        with using_masker(ctx.masker):
            yield ctx
    finally:
        _RUN.reset(token)


def current_run() -> RunContext | None:
    return _RUN.get()


def current_step() -> StepInfo | None:
    """The step now running, or ``None`` when called outside a run (e.g. a step called directly)."""
    ctx = _RUN.get()
    return ctx.step if ctx is not None else None


def emit_output(line: str, stream: str = "stdout") -> bool:
    """Report one line of a step's output: it is masked, then sent to event subscribers.

    Outside a run the (masked) line goes to the ``stepengine.output`` logger. Returns whether an
    event subscriber received it (so a step need not repeat the output in its error).
    """
    ctx = _RUN.get()
    line = line.rstrip("\n")
    if ctx is None:
        from stepengine.masking import current_masker

        logging.getLogger("stepengine.output").info(current_masker().mask(line))
        return False
    ctx.emit("step.output", message=line, stream=stream)
    return ctx._on_event is not None


def load_block(block_type: str, name: str) -> t.Any:
    """A block document's data (``{"value": …}`` for a secret or string block), read through the run's
    block store as ``{{ prefect.blocks.<block_type>.<name> }}`` would be: once per run, a fresh copy for
    each call, its secrets masked. Outside a run, the default store chain (``--values`` aside) is asked.

    Raises ``StepError`` when no store has the block, naming where it looked.

    Example::

        bucket = load_block("s3-bucket", "code")   # {"bucket_name": ..., "credentials": {...}}
    """
    from stepengine.errors import StepError, TemplateError

    ctx = _RUN.get()
    loader = ctx.block_loader if ctx is not None else None
    if loader is None:
        from stepengine.stores import default_resolver
        from stepengine.templating import TemplateContext

        loader = TemplateContext(resolver=default_resolver()).block_document
    try:
        return loader(block_type, name)
    except TemplateError as exc:
        raise StepError(exc.detail, hint=exc.hint) from None


def get_logger(name: str | None = None) -> logging.Logger:
    """A logger for a step; its records pass the engine's masking filter when the CLI handles them."""
    if name is None:
        step = current_step()
        name = step.function.rsplit(".", 1)[-1] if step else "step"
    return logging.getLogger(f"stepengine.steps.{name}")


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in the rendered message of every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        from stepengine.masking import mask_record

        mask_record(record)
        return True
