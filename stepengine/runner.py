"""The runner: execute the steps of a run in order, reporting events.

Before the first step, ``Runner.run`` has ``stepengine.checks.prepare`` check them all (step names,
arguments, control keys, template syntax, references, and the problems the file was loaded with),
so no step runs when any is wrong. It then templates each step's arguments just before calling it,
stores a dict result under the step's id and
merges it flat (as Prefect does), and wraps any failure in ``StepExecutionError`` carrying the step's
location.

Control keys (issue 8, see ``stepengine.control``): a step whose ``if`` is false is skipped (no
outputs); a failed attempt is retried ``retries`` times; ``timeout_seconds`` stops an attempt and its
child processes; ``continue_on_error`` records the failure and goes on. After a failure, later steps
run only when their ``if`` says so (``failure()``, ``always()``); steps of the ``finally`` section run
last, always — after a failure and after an interrupt too.

One process, many runs (issue 16): steps rely on the process working directory (the built-in
``set_working_directory`` changes it, and any Python step may), so runs in one process take turns on a
process-wide lock held for the whole run, and each run puts the process back in the directory it
started in when it ends (success, failure, interrupt). A step may itself call ``stepengine.run`` in
its own thread (the lock is re-entrant; the inner run restores the outer step's directory); from
another thread started inside a step it would wait for its own run forever, so that raises
``NestedRunError`` instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
import typing as t

from stepengine.checks import prepare
from stepengine.config import FINALLY, Step
from stepengine.context import RunContext, StepInfo, current_run, run_context
from stepengine.control import Controls, Expired, deadline, evaluate_condition, retry_delay, should_retry
from stepengine.errors import (
    StepEngineError,
    StepExecutionError,
    StepTimeoutError,
    StoreError,
    TemplateError,
)
from stepengine.events import EventHandler
from stepengine.masking import Masker, current_masker, masked_output
from stepengine.registry import Registry, StepFunction
from stepengine.templating import TemplateContext, render_arguments

if t.TYPE_CHECKING:
    import asyncio

    from stepengine.config import Config
    from stepengine.resolvers import Resolver

__all__ = ["NestedRunError", "Runner"]

#: held for the whole of a run: runs in one process share its working directory, so they take turns
_RUN_LOCK = threading.RLock()
#: the thread whose run holds ``_RUN_LOCK`` (outermost acquisition), ``None`` when free
_holder: int | None = None
#: in a run (and in threads and tasks a step starts with its context): the thread running it
_RUN_THREAD: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "stepengine_run_thread", default=None
)
_log = logging.getLogger("stepengine.runner")


class NestedRunError(StepEngineError):
    """``stepengine.run`` was called from a thread started inside a step of a run still going on:
    waiting for that run to end would wait forever."""


#: a step's outcome, available to later ``if`` expressions as ``steps.<id>.outcome``
SUCCESS, FAILURE, SKIPPED = "success", "failure", "skipped"

_DEFAULT_CONTROLS = Controls()
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect


class Runner:
    """Runs steps with one template namespace shared across sections."""

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        resolver: Resolver | None = None,
        values: t.Mapping[str, t.Any] | None = None,
        on_event: EventHandler | None = None,
        allow_missing: bool = False,
        env: t.Mapping[str, str] | None = None,
        install_requires: bool = False,
        masker: Masker | None = None,
    ) -> None:
        self.registry = registry or Registry()
        self.namespace: dict[str, t.Any] = dict(values or {})
        self._seeded = set(self.namespace)
        # Secrets found during a run stay known to the process's masker after it, so that errors and
        # outputs printed later (CLI, embedding tool) are masked too: over-masking is the safe side.
        self.masker = masker or current_masker()
        self.context = RunContext(self.masker, on_event)
        self.templates = TemplateContext(
            self.namespace, env=env, resolver=resolver, allow_missing=allow_missing, masker=self.masker
        )
        self.context.block_loader = self.templates.block_document
        self.install_requires = install_requires
        self._loop: asyncio.AbstractEventLoop | None = None
        self.env = env if env is not None else os.environ
        #: ``success`` / ``failure`` / ``skipped`` of every step with an id that has been reached
        self.outcomes: dict[str, str] = {}
        #: an earlier step failed (``failure()`` is true), even one with ``continue_on_error``
        self.any_failed = False
        self._attempt: int | None = None
        #: the step now running has ``continue_on_error`` (said on its ``step.failed`` event)
        self._continues = False
        self._sleep = time.sleep
        #: warnings already shown in this run: (category, message, file, line)
        self._warned: set[tuple[t.Any, str, str, int]] = set()

    def run(
        self, steps: t.Sequence[Step], *, config: Config | None = None, keep_directory: bool = False
    ) -> dict[str, t.Any]:
        """Check all ``steps`` (with the problems ``config`` was loaded with), then run them in order.
        Returns the template namespace (all outputs).

        Steps of the ``finally`` section run after the others even when one failed or the run was
        interrupted; the first failure (or the interrupt) is raised after them.

        The run holds the process-wide run lock throughout and restores the working directory it
        started in when it ends, unless ``keep_directory`` (the caller then uses where the steps
        left it, and puts the process back itself).
        """
        with _one_run_at_a_time():
            from stepengine.paths import check_working_directory

            check_working_directory()
            started_in = os.getcwd()
            try:
                return self._run(steps, config)
            finally:
                if not keep_directory:
                    try:
                        os.chdir(started_in)
                    except OSError:  # a step deleted it: nowhere to go back to
                        _log.debug("cannot go back to %s after the run: it is gone", started_in)

    def _run(self, steps: t.Sequence[Step], config: Config | None) -> dict[str, t.Any]:
        with run_context(self.context), masked_output():  # a step's print() and logging too
            resolved = prepare(
                steps,
                self.registry,
                known_names=self._seeded,
                install_requires=self.install_requires,
                allow_missing=self.templates.allow_missing,
                config=config,
            )
            started = time.perf_counter()
            self.context.emit("run.started")
            error: BaseException | None = None
            try:
                for step, function in resolved:
                    cleanup = step.section == FINALLY
                    if isinstance(error, KeyboardInterrupt) and not cleanup:
                        self._skip(step, "interrupted")
                        continue
                    try:
                        self._run_step(step, function, halted=error is not None, cleanup=cleanup)
                    except KeyboardInterrupt as exc:
                        if isinstance(error, KeyboardInterrupt):
                            raise  # interrupted again, during cleanup: stop now
                        error = exc
                    except StepEngineError as exc:
                        error = error or exc
                if error is not None:
                    raise error
            except BaseException as exc:
                self.context.step = None
                self.context.emit(
                    "run.failed", duration=time.perf_counter() - started, message=_describe(exc)
                )
                raise
            finally:
                if self._loop is not None:
                    self._loop.close()
                    self._loop = None
            self.context.emit("run.finished", duration=time.perf_counter() - started)
        return self.namespace

    def _run_step(
        self, step: Step, function: StepFunction, *, halted: bool = False, cleanup: bool = False
    ) -> None:
        """Run one step under its control keys. ``halted``: an earlier step failed the run."""
        controls = Controls.of(step.controls) if step.controls else _DEFAULT_CONTROLS
        if controls.condition is None:
            if halted and not cleanup:
                # the run has failed: only steps whose ``if`` asks for it still run
                self._skip(step, "an earlier step failed")
                return
        elif not self._condition_holds(step, controls.condition):
            self._skip(step, f"if: {controls.condition}")
            return
        self._continues = controls.continue_on_error
        try:
            with self.step_context(step):
                kwargs = render_arguments(step, self.templates)
                result = self._attempts(function, kwargs, controls)
                self.store(step, result)
        except StepEngineError:
            self._set_outcome(step, FAILURE)
            self.any_failed = True
            if controls.continue_on_error:
                return
            raise
        except KeyboardInterrupt:
            self._set_outcome(step, FAILURE)
            self.any_failed = True
            raise
        self._set_outcome(step, SUCCESS)

    def _condition_holds(self, step: Step, expression: str) -> bool:
        try:
            return evaluate_condition(
                expression,
                namespace=self.namespace,
                values={k: v for k, v in self.namespace.items() if k in self._seeded},
                env=self.env,
                outcomes=self.outcomes,
                failed=self.any_failed,
            )
        except TemplateError as exc:
            located = exc.locate(step, argument="if")
            self.context.step = _info(step)
            try:
                self.context.emit("step.failed", duration=0.0, message=str(located), outcome=FAILURE)
            finally:
                self.context.step = None
            self._set_outcome(step, FAILURE)
            self.any_failed = True
            raise located from exc.__cause__

    def _skip(self, step: Step, reason: str) -> None:
        self.context.step = _info(step)
        try:
            self.context.emit("step.skipped", message=reason, outcome=SKIPPED)
        finally:
            self.context.step = None
        self._set_outcome(step, SKIPPED)

    def _set_outcome(self, step: Step, outcome: str) -> None:
        if step.id is not None:
            self.outcomes[step.id] = outcome

    def _attempts(self, function: StepFunction, kwargs: dict[str, t.Any], controls: Controls) -> t.Any:
        """Call the step, retrying as its controls say; each attempt under its timeout."""
        from stepengine.process import track_processes

        attempt = 1
        while True:
            self._attempt = attempt if controls.retries else None
            try:
                try:
                    with (
                        track_processes() as live,
                        deadline(controls.timeout_seconds, live),
                        self._warnings(),
                    ):
                        return self._call(function.func, kwargs)
                except Expired:
                    raise StepTimeoutError(t.cast(float, controls.timeout_seconds)) from None
            except Exception as exc:
                if attempt > controls.retries or not should_retry(exc, controls.retry_on):
                    raise
                delay = retry_delay(controls.retry_delay_seconds, attempt)
                self.context.emit("step.retrying", attempt=attempt + 1, delay=delay, message=_describe(exc))
                self._sleep(delay)
                attempt += 1

    @contextlib.contextmanager
    def _warnings(self) -> t.Iterator[None]:
        """Show what a step passes to ``warnings.warn`` as Prefect does (``DeprecationWarning``s
        included, which Python hides by default): a ``step.warning`` event with the message, once per
        message and place in the code for the whole run."""
        import warnings

        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DeprecationWarning)
                yield
        finally:
            for warning in caught:
                key = (warning.category, str(warning.message), warning.filename, warning.lineno)
                if key not in self._warned:
                    self._warned.add(key)
                    self.context.emit("step.warning", message=str(warning.message))

    def store(self, step: Step, result: t.Any) -> None:
        """Prefect's rule: a dict result is merged flat and also kept under the step's id."""
        if isinstance(result, dict):
            problem = _output_problem(result)
            if problem:
                from stepengine.errors import StepError

                raise StepError(
                    f"its output {problem}",
                    hint=(
                        "a step returns a dict whose keys (at every level) are text, with no circular "
                        "reference"
                    ),
                )
            self.namespace.update(result)
            if step.id is not None:
                self.namespace[step.id] = result

    def _call(self, func: t.Callable[..., t.Any], kwargs: dict[str, t.Any]) -> t.Any:
        code = getattr(func, "__code__", None)
        if code is not None and code.co_flags & _CO_COROUTINE:
            return self._await(func(**kwargs))
        result = func(**kwargs)
        if hasattr(result, "__await__"):
            return self._await(result)
        return result

    def _await(self, awaitable: t.Awaitable[t.Any]) -> t.Any:
        import asyncio

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        task = self._loop.create_task(_as_coroutine(awaitable))
        try:
            return self._loop.run_until_complete(task)
        except BaseException:
            # A timeout or interrupt arrived while the loop ran: cancel the step's task, so that it
            # does not resume inside the next async step.
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    self._loop.run_until_complete(task)
            raise

    @contextlib.contextmanager
    def step_context(self, step: Step) -> t.Iterator[None]:
        """Stamp the step onto events and errors raised inside; translate foreign errors."""
        ctx = self.context
        ctx.step = _info(step)
        self._attempt = None
        started = time.perf_counter()
        ctx.emit("step.started", inputs=dict(step.arguments))
        try:
            yield
        except TemplateError as exc:
            ctx.emit(
                "step.failed",
                duration=time.perf_counter() - started,
                message=str(exc),
                attempt=self._attempt,
                outcome=FAILURE,
                continued=self._continues or None,
            )
            raise
        except StoreError as exc:
            # a block/variable store that cannot be read is invalid input (exit 2), not a step failure
            located = StoreError(
                f"{step.location}: {step.label}: {exc.message}"
                if step.location
                else f"{step.label}: {exc.message}",
                store=exc.store,
                hint=exc.hint,
            )
            ctx.emit(
                "step.failed",
                duration=time.perf_counter() - started,
                message=str(located),
                attempt=self._attempt,
                outcome=FAILURE,
                continued=self._continues or None,
            )
            raise located from exc
        except BaseException as exc:  # also SystemExit and a step's own BaseException subclasses
            duration = time.perf_counter() - started
            if isinstance(exc, KeyboardInterrupt):
                ctx.emit(
                    "step.failed",
                    duration=duration,
                    message="interrupted",
                    attempt=self._attempt,
                    outcome=FAILURE,
                )
                raise
            exc = _explain(exc)
            error = StepExecutionError(
                section=step.section,
                step_index=step.index,
                step_id=step.id,
                function=step.function,
                file=step.file,
                line=step.line,
                col=step.col,
                cause=exc,
            )
            ctx.emit(
                "step.failed",
                duration=duration,
                message=error.message,
                attempt=self._attempt,
                outcome=FAILURE,
                continued=self._continues or None,
            )
            raise error from exc
        else:
            ctx.emit(
                "step.finished",
                duration=time.perf_counter() - started,
                attempt=self._attempt,
                outcome=SUCCESS,
            )
        finally:
            ctx.step = None


@contextlib.contextmanager
def _one_run_at_a_time() -> t.Iterator[None]:
    """Hold the process-wide run lock for the block: a run in another thread waits (logged at debug
    level on ``stepengine.runner``); a run inside a step of this thread's run goes on (re-entry)."""
    global _holder
    me = threading.get_ident()
    enclosing = _RUN_THREAD.get()
    if enclosing is not None and enclosing != me and enclosing == _holder:
        raise NestedRunError(
            "stepengine.run was called from a thread started inside a step, while that step's run "
            "still holds the process's run lock (runs in one process take turns): it would wait forever",
            hint="call stepengine.run in the step's own thread (not run_async or a new thread), "
            "or start the second run after the first one ends",
        )
    if not _RUN_LOCK.acquire(blocking=False):
        _log.debug(
            "run waits for the run in progress in this process to end (runs take turns: "
            "they share the working directory)"
        )
        _RUN_LOCK.acquire()
    outermost = _holder is None
    if outermost:
        _holder = me
    token = _RUN_THREAD.set(me)
    try:
        yield
    finally:
        _RUN_THREAD.reset(token)
        if outermost:
            _holder = None
        _RUN_LOCK.release()


def _info(step: Step) -> StepInfo:
    run = current_run()
    return StepInfo(
        step.section, step.index, step.id, step.function, step.file, step.line, run.run_id if run else None
    )


def _explain(exc: BaseException) -> BaseException:
    """A bare ``FileNotFoundError`` (no file named) raised while the working directory is gone is
    about the working directory: say so, keeping the original as the cause."""
    if isinstance(exc, FileNotFoundError) and exc.filename is None:
        try:
            os.getcwd()
        except FileNotFoundError:
            from stepengine.errors import StepError
            from stepengine.paths import WORKING_DIRECTORY_GONE

            explained = StepError(WORKING_DIRECTORY_GONE, hint="a later step must not rely on it")
            explained.__cause__ = exc
            return explained
    return exc


def _output_problem(output: dict[t.Any, t.Any]) -> str | None:
    """What makes ``output`` unusable as template values and JSON: a key that is not text, or a
    container holding itself. ``None`` when it is fine."""
    from stepengine.schema import format_path

    on_path: set[int] = set()
    stack: list[tuple[t.Any, tuple[t.Any, ...], bool]] = [(output, (), False)]
    while stack:
        item, path, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            continue
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    where = f" in {format_path(path)}" if path else ""
                    return f"has a key that is not text: {key!r}{where}"
            # only containers are walked into: a path tuple per string or number of a large list
            # would cost ~240 bytes per item, held all at once (several times the data itself)
            children = [(v, path + (k,)) for k, v in item.items() if isinstance(v, (dict, list, tuple))]
        elif isinstance(item, (list, tuple)):
            children = [(v, path + (i,)) for i, v in enumerate(item) if isinstance(v, (dict, list, tuple))]
        else:
            continue
        if id(item) in on_path:
            return f"contains itself at {format_path(path)} (a circular reference)"
        on_path.add(id(item))
        stack.append((item, path, True))
        stack.extend((child, child_path, False) for child, child_path in reversed(children))
    return None


async def _as_coroutine(awaitable: t.Awaitable[t.Any]) -> t.Any:
    return await awaitable


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, StepEngineError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
