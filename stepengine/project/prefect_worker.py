"""The pull stage of a Prefect flow run: what ``stepengine prefect-pull-and-run`` does in a worker's job.

A Prefect worker (process, docker, kubernetes) starts its job's ``command`` with
``PREFECT__FLOW_RUN_ID`` (and ``PREFECT_API_URL`` / ``PREFECT_API_KEY``) in the environment and the
job's working directory as cwd. Prefect's default command, ``python -m prefect.engine``, reads the
flow run and its deployment, runs the deployment's ``pull_steps`` with Prefect's step runner, then runs
the flow. This module replaces only the first half:

1. read the flow run (``GET /flow_runs/{id}``) and its deployment (``GET /deployments/{id}``);
2. run the deployment's pull steps with stepengine in the current directory — blocks and variables
   from that same server (``PrefectAPIStore``), secrets masked — reporting each step to the flow
   run's logs (``POST /logs/``) and to stderr;
3. change into the pull's ``directory`` output (Prefect's rule), set ``PREFECT__FLOW_ENTRYPOINT`` to
   the deployment's entrypoint and replace this process (``execve``, same PID) with
   ``<python> -m prefect.engine``.

Prefect's engine loads the flow from ``PREFECT__FLOW_ENTRYPOINT`` when it is set (the path Prefect's
own runner uses for ``serve``d flows) and then does not run the pull steps again; states, logs,
retries and cancellation of the flow itself stay Prefect's. Because the PID stays the same, the
worker's kill on cancellation and its exit-code handling reach the engine directly.

While the pull runs:

- a failure (a step failed, a block is missing, the deployment is invalid) is written to the flow
  run's logs and the flow run is set to ``Failed`` with stepengine's message; the command exits 1
  (2 for invalid input), so the worker's later ``Crashed`` proposal finds a final state;
- a cancellation stops the pull: the worker's ``SIGTERM`` (it kills a pending run's process) and
  this module's own poll of the flow run's state (every ``poll_interval`` seconds; ``CANCELLING`` or
  ``CANCELLED``) both interrupt the running step (its process group is killed); the flow run is then
  set ``Cancelled`` and the command exits 130. The flow never starts.

A deployment without pull steps is handed to ``python -m prefect.engine`` unchanged (Prefect's own
storage handling applies).
"""

from __future__ import annotations

import datetime
import os
import signal
import sys
import threading
import typing as t

from stepengine.errors import ConfigError, StepEngineError

if t.TYPE_CHECKING:
    import types

    #: what ``signal.signal`` returns: the previous handler
    SignalHandler = t.Callable[[int, types.FrameType | None], t.Any] | int | None
    #: ``(program, argv, env)`` → anything, in place of ``os.execve``
    Execute = t.Callable[[str, list[str], dict[str, str]], t.Any]

__all__ = ["PrefectRunLog", "pull_and_run"]

#: the state types after which a pull must not go on
_CANCEL_TYPES = frozenset({"CANCELLING", "CANCELLED"})


class PrefectRunLog:
    """A text stream whose lines go to a flow run's logs (``POST /logs/``) and to ``echo``.

    Lines arrive already masked (events are masked; errors are rendered through the masker). A log
    call that fails is reported once on stderr and the pull goes on: logs are not worth a failed run.
    """

    def __init__(
        self, api_url: str, flow_run_id: str, *, echo: t.TextIO | None = None, name: str = "stepengine.pull"
    ) -> None:
        self.api_url = api_url
        self.flow_run_id = flow_run_id
        self.echo = echo
        self.name = name
        self._pending = ""
        self._warned = False
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if self.echo is not None:
            self.echo.write(text)
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
        if lines:
            self.send([line for line in lines if line.strip()])
        return len(text)

    def flush(self) -> None:
        if self.echo is not None:
            self.echo.flush()

    def send(self, lines: t.Sequence[str], level: int = 20) -> None:
        """Post ``lines`` as log records of the flow run (``level``: 20 info, 40 error)."""
        if not lines:
            return
        from stepengine.masking import current_masker
        from stepengine.project.prefect_api import api_request

        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        records = [
            {
                "name": self.name,
                "level": level,
                "message": current_masker().mask(line),
                "timestamp": now,
                "flow_run_id": self.flow_run_id,
            }
            for line in lines
        ]
        try:
            api_request(self.api_url, "POST", "/logs/", records, 15.0)
        except StepEngineError as exc:
            if not self._warned:
                self._warned = True
                sys.stderr.write(f"warning: cannot send logs to the flow run: {exc}\n")


def _set_state(api_url: str, flow_run_id: str, state_type: str, message: str) -> None:
    from stepengine.masking import current_masker
    from stepengine.project.prefect_api import api_request

    body = {
        "state": {"type": state_type, "name": state_type.title(), "message": current_masker().mask(message)},
        "force": True,
    }
    try:
        api_request(api_url, "POST", f"/flow_runs/{flow_run_id}/set_state", body, 15.0)
    except StepEngineError as exc:
        sys.stderr.write(f"warning: cannot set the flow run's state to {state_type}: {exc}\n")


class _CancelWatch:
    """Polls the flow run's state in a daemon thread; on ``CANCELLING``/``CANCELLED`` it interrupts
    the main thread the way the worker's kill does (``SIGTERM`` to this process), once."""

    def __init__(self, api_url: str, flow_run_id: str, interval: float) -> None:
        self.api_url = api_url
        self.flow_run_id = flow_run_id
        self.interval = interval
        self.cancelled = False
        self._stop = threading.Event()
        #: held while deciding to interrupt, so that no SIGTERM is sent once ``__exit__`` returned
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="stepengine-cancel-watch", daemon=True)

    def __enter__(self) -> _CancelWatch:
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._stop.set()

    def state_type(self) -> str | None:
        from stepengine.project.prefect_api import api_request

        try:
            run = api_request(self.api_url, "GET", f"/flow_runs/{self.flow_run_id}", None, 10.0)
        except StepEngineError:
            return None  # a missed poll is not a cancellation
        return ((run or {}).get("state") or {}).get("type")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.state_type() in _CANCEL_TYPES:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self.cancelled = True
                    os.kill(os.getpid(), signal.SIGTERM)
                return


def _render(exc: StepEngineError) -> str:
    text = str(exc)
    return text if text.startswith("error") else f"error: {text}"


def pull_and_run(
    flow_run_id: str | None = None,
    *,
    api_url: str | None = None,
    python: str | None = None,
    poll_interval: float = 1.0,
    echo: t.TextIO | None = None,
    steps: t.Mapping[str, t.Callable[..., t.Any]] | None = None,
    execute: Execute | None = None,
) -> t.Any:
    """Pull the flow run's code with stepengine, then ``execve`` Prefect's engine in it.

    ``flow_run_id`` defaults to ``$PREFECT__FLOW_RUN_ID``, ``api_url`` to ``$PREFECT_API_URL``,
    ``python`` (the interpreter that has Prefect) to this one. ``execute`` replaces ``os.execve``
    (for embedding and tests); it gets ``(program, argv, env)`` and its result is returned.
    """
    from stepengine.project.prefect_api import api_request

    flow_run_id = flow_run_id or os.environ.get("PREFECT__FLOW_RUN_ID")
    if not flow_run_id:
        raise ConfigError(
            "no flow run: set PREFECT__FLOW_RUN_ID (a Prefect worker sets it) or pass --flow-run-id"
        )
    api_url = (api_url or os.environ.get("PREFECT_API_URL") or "").rstrip("/")
    if not api_url:
        raise ConfigError(
            "no Prefect API: set PREFECT_API_URL (a Prefect worker sets it) or pass --prefect-api-url"
        )
    python = python or sys.executable
    echo = sys.stderr if echo is None else echo
    log = PrefectRunLog(api_url, flow_run_id, echo=echo)
    env = dict(os.environ)
    env["PREFECT__FLOW_RUN_ID"] = flow_run_id
    env["PREFECT_API_URL"] = api_url  # the engine talks to the server the pull read
    argv = [python, "-m", "prefect.engine"]
    try:
        flow_run = api_request(api_url, "GET", f"/flow_runs/{flow_run_id}", None, 30.0)
        deployment_id = flow_run.get("deployment_id")
        if not deployment_id:
            raise ConfigError(f"flow run {flow_run_id} has no deployment: there are no pull steps to run")
        deployment = api_request(api_url, "GET", f"/deployments/{deployment_id}", None, 30.0)
        pull_steps = deployment.get("pull_steps") or []
        entrypoint = deployment.get("entrypoint")
        if not pull_steps:
            log.write(
                f"deployment {deployment.get('name')!r} has no pull steps: Prefect's engine loads the flow\n"
            )
            return _hand_over(python, argv, env, execute)
        if not entrypoint:
            raise ConfigError(f"deployment {deployment.get('name')!r} has no entrypoint")
        directory = _pull(deployment, api_url, flow_run_id, log, poll_interval, steps)
        env["PREFECT__FLOW_ENTRYPOINT"] = str(entrypoint)
        env["PWD"] = directory
        log.write(f"stepengine: pull done; Prefect's engine runs {entrypoint} in {directory}\n")
        os.chdir(directory)
        return _hand_over(python, argv, env, execute)
    except StepEngineError as exc:
        message = _render(exc)
        log.send(message.splitlines(), level=40)
        _set_state(api_url, flow_run_id, "FAILED", f"stepengine pull failed: {message}")
        raise


def _pull(
    deployment: dict[str, t.Any],
    api_url: str,
    flow_run_id: str,
    log: PrefectRunLog,
    poll_interval: float,
    steps: t.Mapping[str, t.Callable[..., t.Any]] | None,
) -> str:
    """Run the pull steps in the current directory; the directory the flow must run in."""
    import stepengine
    from stepengine.checks import spec_pull_config
    from stepengine.cli import event_printer
    from stepengine.masking import current_masker
    from stepengine.stores import default_resolver

    config = spec_pull_config(
        deployment, f"deployment {deployment.get('name')!r} ({api_url}/deployments/{deployment.get('id')})"
    )
    resolver = default_resolver(prefect_api_url=api_url)
    log.write(
        f"stepengine: running {len(deployment.get('pull_steps') or [])} pull step(s) of deployment "
        f"{deployment.get('name')!r}\n"
    )
    start = os.getcwd()
    previous = _interrupt_on_sigterm()
    try:
        watch = _CancelWatch(api_url, flow_run_id, poll_interval if previous is not None else 0)
        try:
            with watch:
                outputs = stepengine.run(
                    config,
                    sections=["pull"],
                    resolver=resolver,
                    on_event=event_printer(log),
                    steps=steps,
                    masker=current_masker(),
                    keep_directory=True,  # the flow starts where the pull left it
                )
        except KeyboardInterrupt:
            watch.__exit__()
            state = "CANCELLING" if watch.cancelled else watch.state_type()
            why = "the flow run was cancelled" if state in _CANCEL_TYPES else "interrupted (SIGTERM)"
            log.send([f"stepengine: pull stopped: {why}"], level=30)
            if state in _CANCEL_TYPES:
                _set_state(api_url, flow_run_id, "CANCELLED", f"cancelled during stepengine's pull ({why})")
            raise
        directory = outputs.get("directory")
        return os.path.abspath(directory) if isinstance(directory, str) and directory else os.getcwd()
    finally:
        os.chdir(start)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm() -> SignalHandler:
    """In the main thread, make SIGTERM (the worker's kill, or the cancel watch) raise
    ``KeyboardInterrupt`` so that the running step is stopped and cleaned up; the previous handler,
    or ``None`` when nothing was changed."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _hand_over(python: str, argv: list[str], env: dict[str, str], execute: Execute | None) -> t.Any:
    """Replace this process with Prefect's engine (or call ``execute``)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if execute is not None:
        return execute(python, argv, env)
    try:
        os.execve(python, argv, env)
    except OSError as exc:
        raise ConfigError(
            f"cannot start Prefect's engine with {python}: {exc.strerror}",
            hint="pass --python PATH (an interpreter with prefect installed)",
        ) from None
