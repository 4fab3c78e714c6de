"""Events: what the runner reports to subscribers while a run is under way.

An ``Event`` is an immutable record. ``kind`` is one of ``KINDS``; step events carry the step's
location and its inputs *before* templating (so they never contain a resolved secret); every string in
an event has been masked before any subscriber sees it.

``Event.to_json()`` is the line ``stepengine run --log-format json`` writes for each event; its JSON
Schema is ``schemas/events.schema.json`` (tests validate the stream against it).
"""

from __future__ import annotations

import time
import typing as t

__all__ = ["KINDS", "Event", "EventHandler"]

#: every kind of event the runner emits (later features add kinds here, in one place)
KINDS = frozenset(
    {
        "run.started",
        "run.finished",
        "run.failed",
        "step.started",
        "step.finished",
        "step.failed",
        "step.skipped",
        "step.retrying",
        "step.output",
        "step.warning",
        "warning",
        "log",
    }
)


class Event(t.NamedTuple):
    """One thing that happened during a run."""

    kind: str
    #: ``time.time()`` when it happened
    timestamp: float
    section: str | None = None
    #: (the field shadows ``tuple.index`` on purpose: a public name)
    index: int | None = None  # type: ignore[assignment]
    step_id: str | None = None
    function: str | None = None
    file: str | None = None
    line: int | None = None
    #: seconds, on ``*.finished`` / ``*.failed``
    duration: float | None = None
    #: the step's arguments before templating, on ``step.started``
    inputs: dict[str, t.Any] | None = None
    #: the text of the error, on ``*.failed``; the output line, on ``step.output``
    message: str | None = None
    #: ``stdout`` or ``stderr``, on ``step.output``
    stream: str | None = None
    #: the attempt number (1 = first) when the step has ``retries``; on ``step.retrying``, the next one
    attempt: int | None = None
    #: seconds until the next attempt, on ``step.retrying``
    delay: float | None = None
    #: ``success``, ``failure`` or ``skipped``, on ``step.finished`` / ``step.failed`` / ``step.skipped``
    outcome: str | None = None
    #: ``true`` on ``step.failed`` when ``continue_on_error`` lets the run go on
    continued: bool | None = None

    def to_dict(self) -> dict[str, t.Any]:
        return {k: v for k, v in self._asdict().items() if v is not None}

    def to_json(self) -> str:
        """One line of JSON (``schemas/events.schema.json``); non-JSON input values become strings."""
        import json

        return json.dumps(self.to_dict(), default=str, ensure_ascii=False, separators=(",", ":"))


EventHandler = t.Callable[[Event], None]


def now() -> float:
    return time.time()
