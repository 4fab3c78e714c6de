"""Local execution: what a process worker does with a deployment.

1. Render the deployment's spec (``stepengine deploy`` without build and push), or read one that
   ``deploy --output-file`` wrote.
2. Run its pull steps in a fresh temporary working directory (``{{ ctx.* }}`` stays literal; blocks
   and variables come from the resolver); the flow then runs in the pull's ``directory`` output, as
   Prefect's worker does (so a bare ``git_clone`` pull runs the flow inside the checkout).
3. Check the parameters against the recorded schema when ``enforce_parameter_schema``.
4. Run the entrypoint's function with the parameters in a child interpreter: ``python=`` , else the
   deployment's ``job_variables`` (``python``, ``venv``, ``conda_prefix``), else this one. As a
   process worker, ``job_variables.env`` is set for the pull steps and the flow, and
   ``job_variables.working_dir`` replaces the temporary directory (and is kept). Its output
   streams through; its exit code is the result (0 when the flow returned, 1 when it raised).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

from stepengine.errors import ConfigError
from stepengine.interpreters import find_python, venv_python

if t.TYPE_CHECKING:
    from stepengine.events import EventHandler
    from stepengine.masking import Masker
    from stepengine.resolvers import Resolver
    from stepengine.templating import Placeholder

    #: where the flow's output goes: what ``subprocess.Popen`` takes (``None``: inherited)
    Redirect = int | t.IO[t.Any] | None

__all__ = [
    "SpecSource",
    "choose_python",
    "execute_spec",
    "load_spec",
    "load_spec_with_source",
    "resolve_placeholders",
]

#: the child's program: import the entrypoint's file (never as __main__), call the function. When
#: the interpreter has no Prefect, stepengine's stand-in ``prefect`` package (``STAND_IN``, passed as
#: the second argument) lets ``@flow``/``@task`` code run as the plain functions it decorates.
_CHILD = r"""
import asyncio, importlib.util, inspect, json, os, sys
try:
    import prefect
except ImportError:
    sys.path.append(sys.argv[2])
    import prefect
entrypoint = sys.argv[1]
path, _, name = entrypoint.rpartition(":")
parameters = json.loads(os.environ.pop("STEPENGINE_FLOW_PARAMETERS", "{}"))
sys.path[:0] = [os.getcwd(), os.path.dirname(os.path.abspath(path))]
module_name = "_stepengine_flow_" + os.path.splitext(os.path.basename(path))[0]
spec = importlib.util.spec_from_file_location(module_name, path)
module = importlib.util.module_from_spec(spec)
sys.modules[module_name] = module
spec.loader.exec_module(module)
function = getattr(module, name)
# parameters by name, as Prefect passes them: *args and **kwargs are parameters holding a list/object
args, kwargs = [], dict(parameters)
try:
    signature = inspect.signature(getattr(function, "fn", function))
except (TypeError, ValueError):
    signature = None
if signature is not None:
    declared = list(signature.parameters.values())
    positional = [p for p in declared if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for p in declared:
        if p.kind is p.VAR_KEYWORD and p.name in kwargs:
            extra = kwargs.pop(p.name)
            kwargs.update(extra)
        elif p.kind is p.VAR_POSITIONAL and p.name in kwargs:
            extra = list(kwargs.pop(p.name))
            args = [kwargs.pop(q.name) if q.name in kwargs else q.default for q in positional] + extra
    if not args:
        for p in positional:
            if p.kind is p.POSITIONAL_ONLY and p.name in kwargs:
                args.append(kwargs.pop(p.name))
result = function(*args, **kwargs)
if inspect.isawaitable(result):
    result = asyncio.run(result)
"""


#: stepengine's stand-in ``prefect`` package lives here (``STAND_IN / "prefect"``)
STAND_IN = Path(__file__).resolve().parent / "_stand_in"


def _flow_run_info(spec: t.Mapping[str, t.Any], parameters: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What the stand-in's ``prefect.runtime`` reports about this run."""
    import datetime
    import secrets
    import uuid

    run_id = str(uuid.uuid4())
    return {
        "id": run_id,
        "name": f"stepengine-{secrets.token_hex(4)}",
        "flow_name": spec.get("flow_name"),
        "parameters": dict(parameters),
        "tags": list(spec.get("tags") or []),
        "scheduled_start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "job_variables": {},  # not repeated: they may hold resolved secrets
        "deployment": {
            "id": spec.get("id"),
            "name": spec.get("name"),
            "version": spec.get("version"),
            "flow_run_id": run_id,
            "parameters": dict(spec.get("parameters") or {}),
        },
    }


def load_spec(path: str | os.PathLike[str]) -> dict[str, t.Any]:
    """A spec written by ``stepengine deploy --output-file`` (one object, or a list holding one)."""
    return load_spec_with_source(path)[0]


def load_spec_with_source(path: str | os.PathLike[str]) -> tuple[dict[str, t.Any], SpecSource]:
    """``load_spec``, and where the spec sits in the file (for located errors)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read a deployment spec: {exc}") from None
    prefix: tuple[t.Any, ...] = ()
    if isinstance(data, list):
        if len(data) != 1:
            raise ConfigError(f"{path}: holds {len(data)} deployments; execute runs one")
        data, prefix = data[0], (0,)
    if not isinstance(data, dict) or not data.get("entrypoint"):
        raise ConfigError(f"{path}: not a deployment spec (no entrypoint)")
    return data, SpecSource(os.fspath(path), prefix)


def choose_python(spec: t.Mapping[str, t.Any], python: str | None = None, *, base: str | None = None) -> str:
    """The interpreter: ``python``, else job variables ``python`` / ``venv`` / ``conda_prefix``, else ours
    (found by ``stepengine.interpreters``).

    A relative path is taken from ``base`` (``execute`` passes the flow's directory: a pull step may
    have created the venv in the checkout).
    """
    variables = spec.get("job_variables") or {}
    if python:
        candidate, origin = python, "--python"
    elif variables.get("python"):
        candidate, origin = str(variables["python"]), "job_variables.python"
    elif variables.get("venv") or variables.get("conda_prefix"):
        key = "venv" if variables.get("venv") else "conda_prefix"
        candidate, origin = venv_python(str(variables[key])), f"job_variables.{key}"
    else:
        return sys.executable
    try:
        return find_python(candidate, base=None if origin == "--python" else base, label=origin)
    except LookupError as exc:
        raise ConfigError(str(exc)) from None


class SpecSource(t.NamedTuple):
    """Where a spec was read from, so that errors in its pull steps name the file, line and column."""

    file: str
    #: the spec's path inside the file: ``()``, ``(0,)`` for a list, ``("flow/name", "spec")`` for a record
    prefix: tuple[t.Any, ...] = ()


def execute_spec(
    spec: t.Mapping[str, t.Any],
    *,
    parameters: t.Mapping[str, t.Any] | None = None,
    python: str | None = None,
    resolver: Resolver | None = None,
    on_event: EventHandler | None = None,
    steps: t.Mapping[str, t.Callable[..., t.Any]] | None = None,
    stdout: Redirect = None,
    stderr: Redirect = None,
    keep_directory: bool = False,
    source: SpecSource | None = None,
) -> int:
    """Pull, then run the flow. Returns the flow process's exit code (0: the flow succeeded).

    Everything is checked before the pull runs but the interpreter a job variable names
    (``python``, ``venv``, ``conda_prefix``): a pull step may create it, so it is looked for after
    the pull, relative to the flow's directory.
    """
    from stepengine.masking import Masker, current_masker, using_masker
    from stepengine.stores.env import env_secrets

    with using_masker(Masker(parent=current_masker())) as masker:
        masker.add(env_secrets())
        return _execute(
            spec,
            parameters,
            python,
            resolver,
            on_event,
            steps,
            stdout,
            stderr,
            keep_directory,
            masker,
            source,
        )


def _execute(
    spec: t.Mapping[str, t.Any],
    parameters: t.Mapping[str, t.Any] | None,
    python: str | None,
    resolver: Resolver | None,
    on_event: EventHandler | None,
    steps: t.Mapping[str, t.Callable[..., t.Any]] | None,
    stdout: Redirect,
    stderr: Redirect,
    keep_directory: bool,
    masker: Masker,
    source: SpecSource | None,
) -> int:
    import stepengine
    from stepengine.checks import check_parameters, spec_pull_config

    variables, spec_parameters = resolve_placeholders(spec, resolver)
    values = {**spec_parameters, **(parameters or {})}
    if spec.get("enforce_parameter_schema"):
        check_parameters(spec, require_all=True, parameters=values)
    if python:
        choose_python(spec, python)  # an interpreter given on the command line exists before the pull
    config = spec_pull_config(spec, source)
    # a process worker's job variables: env (for the pull steps and the flow), working_dir
    job_env = {str(k): "" if v is None else str(v) for k, v in (variables.get("env") or {}).items()}
    if variables.get("working_dir"):
        scratch = os.path.abspath(os.path.expanduser(str(variables["working_dir"])))
        os.makedirs(scratch, exist_ok=True)
        owned = False
    else:
        scratch = tempfile.mkdtemp(prefix="stepengine-run-")
        owned = not keep_directory
    previous = os.getcwd()
    try:
        try:
            os.chdir(scratch)
            with _environment(job_env):
                outputs = stepengine.run(
                    config,
                    sections=["pull"],
                    resolver=resolver,
                    on_event=on_event,
                    steps=steps,
                    masker=masker,
                    keep_directory=True,
                )
            # Prefect's rule: the flow runs where the pull's ``directory`` output points (a
            # git_clone's checkout), else where the pull steps left the working directory.
            directory = outputs.get("directory")
            flow_directory = (
                os.path.abspath(directory) if isinstance(directory, str) and directory else os.getcwd()
            )
        finally:
            os.chdir(previous)
        interpreter = choose_python({**spec, "job_variables": variables}, python, base=flow_directory)
        env = {**os.environ, **job_env, "STEPENGINE_FLOW_PARAMETERS": json.dumps(values)}
        env.pop("PYTHONHOME", None)
        if python is None and interpreter != sys.executable:
            env.pop("VIRTUAL_ENV", None)
        env["STEPENGINE_FLOW_RUN"] = json.dumps(_flow_run_info(spec, values), default=str)
        argv = [interpreter, "-c", _CHILD, str(spec["entrypoint"]), str(STAND_IN)]
        code = _run_flow(argv, flow_directory, env, stdout, stderr)
        return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention
    finally:
        if owned:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _environment(extra: t.Mapping[str, str]) -> t.Iterator[None]:
    """Set ``extra`` in ``os.environ`` for the block, then restore it exactly."""
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def resolve_placeholders(
    spec: t.Mapping[str, t.Any], resolver: Resolver | None
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """The spec's ``job_variables`` and ``parameters`` with their block and variable placeholders
    resolved, as a worker resolves them at run time (``deploy`` keeps every secret one as a
    placeholder). Secret values are registered with the current masker, so logs show ``***``."""
    from stepengine.errors import TemplateError
    from stepengine.templating import KEEP, TemplateContext, render, resolve

    templates = TemplateContext({}, resolver=resolver)

    def lookup(placeholder: Placeholder) -> t.Any:
        return resolve(placeholder, templates) if placeholder.kind in ("block", "variable") else KEEP

    resolved = []
    for key in ("job_variables", "parameters"):
        try:
            resolved.append(dict(render(dict(spec.get(key) or {}), templates, lookup)))
        except TemplateError as exc:
            raise exc.locate(context=f"deployment {spec.get('name')!r} → {key}: ") from exc.__cause__
    return resolved[0], resolved[1]


def _run_flow(argv: list[str], cwd: str, env: dict[str, str], stdout: Redirect, stderr: Redirect) -> int:
    """Run the flow's process; its exit code. When secrets are known (a job variable or a pull step
    resolved one) and the output is not redirected by the caller, the flow's output is relayed
    through the masker, as every other output of stepengine is; otherwise it inherits the streams
    (and the terminal)."""
    from stepengine.masking import current_masker

    masker = current_masker()
    relay = stdout is None and stderr is None and bool(masker.secrets)
    if relay:
        stdout = stderr = subprocess.PIPE
        env = {**env, "PYTHONUNBUFFERED": "1"}  # a pipe would make the child buffer its output
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )
    except OSError as exc:
        raise ConfigError(f"cannot start {argv[0]}: {exc.strerror}") from None
    with process:
        if not relay:
            return process.wait()
        import threading

        threads = [
            threading.Thread(target=_relay, args=(pipe, target, masker), daemon=True)
            for pipe, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr))
        ]
        for thread in threads:
            thread.start()
        try:
            code = process.wait()
        except BaseException:
            process.kill()
            raise
        for thread in threads:
            thread.join()
        return code


def _relay(pipe: t.IO[bytes], target: t.TextIO, masker: Masker) -> None:
    """Copy a child's byte stream to ``target``, masked line by line (a line's end is the only place
    a secret cannot continue past: multi-line secrets are masked one line at a time); a partial
    line waits for its end, or for the end of the stream."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    while True:
        chunk = os.read(pipe.fileno(), 65536)
        pending += decoder.decode(chunk, final=not chunk)
        cut = max(pending.rfind("\n"), pending.rfind("\r")) + 1 if chunk else len(pending)
        if len(pending) - cut > _LONGEST_PARTIAL_LINE:
            # a huge line: mask it whole, hold back only what may be the start of a secret
            pending = masker.mask(pending)
            cut = len(pending) - max(masker.longest - 1, 0)
        if cut > 0:
            target.write(masker.mask(pending[:cut]))
            target.flush()
            pending = pending[cut:]
        if not chunk:
            return


#: a partial line longer than this is passed on without waiting for its end
_LONGEST_PARTIAL_LINE = 1 << 20
