"""Control keys: *how* a step runs — ``if``, ``retries`` with backoff, ``timeout_seconds``,
``continue_on_error`` (issue 8). The runner reads them from ``Step.controls``.

- ``if``: a Jinja2 expression in the sandbox (``ImmutableSandboxedEnvironment``, ``StrictUndefined``)
  over step outputs (``clone.directory``), ``env``, ``vars``, ``steps.<id>.outcome`` and the functions
  ``success()``, ``failure()``, ``always()``. ``{{ … }}`` around it is optional.
- ``retries`` / ``retry_delay_seconds`` / ``retry_on``: exponential backoff (doubling, capped at
  ``MAX_RETRY_DELAY``) with jitter; ``retry_on`` names exception classes (matched against the whole
  class hierarchy, so ``OSError`` also catches ``FileNotFoundError``); default: any error.
- ``timeout_seconds``: the step is stopped when it runs over, and with it every child process it
  started through ``run_process`` (each in its own process group, killed as a group).
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
import typing as t

from stepengine.errors import TemplateError

if t.TYPE_CHECKING:
    import subprocess
    import types

__all__ = [
    "MAX_RETRY_DELAY",
    "Controls",
    "condition_source",
    "control_issues",
    "deadline",
    "retry_delay",
    "should_retry",
]

#: the longest wait between two attempts, however many retries came before
MAX_RETRY_DELAY = 300.0

_WRAPPED_RE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


class Controls(t.NamedTuple):
    """A step's control keys, with their defaults."""

    #: the ``if`` expression (source text), or ``None``: run while the run has not failed
    condition: str | None = None
    retries: int = 0
    retry_delay_seconds: float = 0.0
    retry_on: tuple[str, ...] = ()
    timeout_seconds: float | None = None
    continue_on_error: bool = False

    @classmethod
    def of(cls, controls: t.Mapping[str, t.Any]) -> Controls:
        """Read a step's ``controls`` mapping (already checked by ``control_issues``)."""
        retry_on = controls.get("retry_on") or ()
        return cls(
            condition=condition_source(controls["if"]) if "if" in controls else None,
            retries=int(controls.get("retries") or 0),
            retry_delay_seconds=float(controls.get("retry_delay_seconds") or 0),
            retry_on=(retry_on,) if isinstance(retry_on, str) else tuple(retry_on),
            timeout_seconds=float(controls["timeout_seconds"]) if controls.get("timeout_seconds") else None,
            continue_on_error=bool(controls.get("continue_on_error", False)),
        )


def condition_source(value: t.Any) -> str:
    """The expression of an ``if:`` value: ``true``/``false`` for booleans, ``{{ }}`` stripped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    match = _WRAPPED_RE.match(text)
    return (match.group(1) if match else text).strip()


def control_issues(controls: t.Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """Problems with a step's control keys, as (key, message); the ``if`` expression is compiled."""
    issues = []

    def number(key: str, *, integer: bool = False, positive: bool = False) -> None:
        if key not in controls:
            return
        value = controls[key]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, float) and not math.isfinite(value):  # YAML's .inf and .nan
            issues.append((key, f"{key} must be a finite number, got {value!r}"))
            return
        if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (positive and value == 0):
            wanted = "an integer" if integer else "a number"
            wanted += " > 0" if positive else " >= 0"
            issues.append((key, f"{key} must be {wanted}, got {value!r}"))

    number("retries", integer=True)
    number("retry_delay_seconds")
    number("timeout_seconds", positive=True)
    if "continue_on_error" in controls and not isinstance(controls["continue_on_error"], bool):
        issues.append(
            (
                "continue_on_error",
                f"continue_on_error must be true or false, got {controls['continue_on_error']!r}",
            )
        )
    if "retry_on" in controls:
        value = controls["retry_on"]
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            issues.append(
                ("retry_on", f"retry_on must be an exception class name or a list of them, got {value!r}")
            )
    if "if" in controls:
        value = controls["if"]
        if not isinstance(value, (str, bool)):
            issues.append(("if", f"if must be an expression (a string) or true/false, got {value!r}"))
        elif not isinstance(value, bool):
            try:
                _compile(condition_source(value))
            except TemplateError as exc:
                issues.append(("if", exc.detail))
    return issues


# -- if --------------------------------------------------------------------------------------------


def _compile(expression: str) -> t.Any:
    from stepengine._expressions import compile_expression

    if not expression:
        raise TemplateError("if: the expression is empty")
    return compile_expression(expression, _label(expression))


def _label(expression: str) -> str:
    return f"if: {expression!r}"


def evaluate_condition(
    expression: str,
    *,
    namespace: t.Mapping[str, t.Any],
    values: t.Mapping[str, t.Any],
    env: t.Mapping[str, str],
    outcomes: t.Mapping[str, str],
    failed: bool,
) -> bool:
    """Evaluate an ``if`` expression. ``failed``: an earlier step of this run has failed (even one
    that had ``continue_on_error``). ``vars`` is ``values``: the seed values (``--var``), not outputs."""
    if expression in ("true", "false"):  # the common literal case needs no Jinja at all
        return expression == "true"
    from stepengine._expressions import evaluate_with, names

    _compile(expression)
    condition_names = {
        **names(namespace, values, env),
        "steps": {step_id: {"outcome": outcome} for step_id, outcome in outcomes.items()},
        "success": lambda: not failed,
        "failure": lambda: failed,
        "always": lambda: True,
    }
    return t.cast(
        bool,
        evaluate_with(
            expression,
            condition_names,
            label=_label(expression),
            hint="a skipped or failed step has no outputs; test with 'is defined' or steps.<id>.outcome",
            convert=bool,
        ),
    )


# -- retries ---------------------------------------------------------------------------------------


def retry_delay(base: float, retry: int, rng: t.Callable[[], float] | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (1-based): ``base·2^(retry-1)``, capped at
    ``MAX_RETRY_DELAY`` (or ``base`` if larger), then jittered to between half and all of it, so that
    many runs failing together do not retry in lockstep."""
    if base <= 0:
        return 0.0
    if rng is None:
        import random  # only when a retry waits: not on every run's import path

        rng = random.random
    capped = min(base * 2.0 ** min(retry - 1, 64), max(base, MAX_RETRY_DELAY))
    return capped * (0.5 + rng() / 2)


def should_retry(exc: BaseException, retry_on: t.Sequence[str]) -> bool:
    """Whether a failed attempt is worth another: not on interrupts; on any error unless ``retry_on``
    names classes, then only on those (or subclasses; plain or ``module.Class`` names)."""
    if not isinstance(exc, Exception):
        return False
    if not retry_on:
        return True
    names = set()
    for cls in type(exc).__mro__:
        names.add(cls.__name__)
        names.add(f"{cls.__module__}.{cls.__qualname__}")
    return any(name in names for name in retry_on)


# -- timeout ---------------------------------------------------------------------------------------


class Expired(BaseException):
    """Raised inside a step that ran over its timeout (a ``BaseException``, so a step's own
    ``except Exception`` does not swallow it). The runner turns it into ``StepTimeoutError``."""


@contextlib.contextmanager
def deadline(seconds: float | None, live: t.Collection[subprocess.Popen[t.Any]]) -> t.Iterator[None]:
    """Raise ``Expired`` in the block when it runs longer than ``seconds``, after killing the process
    group of every child in ``live`` (the children the step started, see ``process.track_processes``).

    In the main thread a ``SIGALRM`` timer interrupts even a blocking call; elsewhere (or when the
    timer is already in use, e.g. by an outer run) a watchdog thread kills the children, which ends
    any wait on them, and raises in the step's thread — a step blocked in pure Python there (a long
    ``time.sleep``) is stopped only when it returns to Python code.
    """
    if not seconds:
        yield
        return
    if (
        threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0  # the timer is free (no outer deadline)
    ):
        with _alarm(seconds, live):
            yield
    else:
        with _watchdog(seconds, live):
            yield


def _kill_children(live: t.Collection[subprocess.Popen[t.Any]]) -> None:
    from stepengine.process import kill_group

    for proc in list(live):
        kill_group(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def _alarm(seconds: float, live: t.Collection[subprocess.Popen[t.Any]]) -> t.Iterator[None]:
    def expire(signum: int, frame: types.FrameType | None) -> None:
        _kill_children(live)
        raise Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _watchdog(seconds: float, live: t.Collection[subprocess.Popen[t.Any]]) -> t.Iterator[None]:
    import ctypes

    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def expire() -> None:
        with lock:
            if state["done"]:
                return
            state["fired"] = True
            _kill_children(live)
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(Expired))

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["done"] = True
        timer.cancel()
        if state["fired"]:
            # The exception may still be pending (the block ended before it was delivered): clear it
            # and raise it here, so it can never surface later in unrelated code.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
            raise Expired
