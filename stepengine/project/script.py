"""``stepengine deploy FILE.py``: a flow file that deploys itself, run without Prefect.

Prefect's own pattern keeps the flow and its deployment in one file::

    @flow
    def etl(limit: int = 10): ...

    if __name__ == "__main__":
        source = etl.from_source("https://github.com/org/repo.git", "flows/etl.py:etl")
        source.deploy("nightly", work_pool_name="process")

``python flows/etl.py`` needs Prefect. ``stepengine deploy flows/etl.py`` runs the file as
``__main__`` in this process with stepengine's stand-in ``prefect`` package in place of any other
(whatever is installed), so ``flow.from_source(...).deploy(...)``, ``flow.deploy(...)`` and
``Deployment.build_from_flow(...).apply()`` render, record (``.prefect/deployments.json``) and, with
a Prefect API URL, register each deployment through stepengine's deploy. The file is run: it is
code, like the build steps ``deploy`` runs.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import datetime
import os
import sys
import typing as t
from pathlib import Path

from stepengine.errors import ConfigError, StepEngineError

if t.TYPE_CHECKING:
    from stepengine.events import EventHandler
    from stepengine.resolvers import Resolver

__all__ = ["build_from_script", "deploy_from_script", "deploys_itself", "run_script"]

#: calls in a ``__main__`` block that mean "this file deploys itself"
_DEPLOY_CALLS = {"deploy", "apply", "build_from_flow"}
#: ``Flow.deploy`` keywords stepengine takes as they are
_PASSED = (
    "job_variables",
    "parameters",
    "build",
    "push",
    "work_queue_name",
    "description",
    "tags",
    "version",
    "cron",
    "schedules",
    "enforce_parameter_schema",
    "paused",
)
#: ``Flow.deploy`` keywords that change nothing here
_IGNORED = (
    "print_next_steps",
    "ignore_warnings",
    "concurrency_limit",
    "triggers",
    "version_type",
    "schedule",
)


@dataclasses.dataclass
class _Run:
    resolver: Resolver | None
    on_event: EventHandler | None
    prefect_api_url: str | None
    specs: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


_CURRENT: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("stepengine_script_run", default=None)


def deploys_itself(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has an ``if __name__ == "__main__":`` block that calls ``.deploy``/``.apply``/
    ``build_from_flow`` (read from the source, nothing imported)."""
    from stepengine.project.flows import parse_source

    tree, _ = parse_source(Path(path))
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    target = inner.func
                    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
                    if name in _DEPLOY_CALLS:
                        return True
    return False


def _is_main_test(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


@contextlib.contextmanager
def _stand_in_prefect() -> t.Iterator[None]:
    """``import prefect`` gives the stand-in inside the block; every ``prefect*`` module, path and
    finder is put back afterwards."""
    from stepengine.project.execute import STAND_IN

    saved = {
        name: module
        for name, module in sys.modules.items()
        if name == "prefect" or name.startswith("prefect.")
    }
    for name in saved:
        del sys.modules[name]
    finders = list(sys.meta_path)
    sys.path.insert(0, str(STAND_IN))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(STAND_IN))
        sys.meta_path[:] = finders
        for name in [n for n in sys.modules if n == "prefect" or n.startswith("prefect.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def run_script(
    path: str | os.PathLike[str],
    *,
    resolver: Resolver | None = None,
    on_event: EventHandler | None = None,
    prefect_api_url: str | None = None,
) -> tuple[list[dict[str, t.Any]], list[str]]:
    """Run ``path`` as ``__main__`` with the stand-in ``prefect``; the specs its deploy calls made,
    and warnings (options stepengine ignores)."""
    import runpy

    file = Path(path).resolve()
    run = _Run(resolver, on_event, prefect_api_url)
    token = _CURRENT.set(run)
    saved_argv, saved_path = list(sys.argv), list(sys.path)
    sys.argv[:] = [str(file)]
    sys.path.insert(0, str(file.parent))  # as `python FILE` does
    try:
        with _stand_in_prefect():
            try:
                runpy.run_path(str(file), run_name="__main__")
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    raise ConfigError(f"{path}: exited with {exc.code!r} while deploying") from None
            except StepEngineError:
                raise
            except Exception as exc:  # the file's own code failed: say where in it, not "a bug"
                raise _script_error(path, file, exc) from None
    finally:
        _CURRENT.reset(token)
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path
    if not run.specs:
        raise ConfigError(f"{path}: its __main__ block ran but deployed nothing")
    return run.specs, run.warnings


def _script_error(path: str | os.PathLike[str], file: Path, exc: BaseException) -> ConfigError:
    """The file's exception as an error at its innermost line in the file's directory, with those
    frames (stepengine's and the stand-in's own frames left out)."""
    import traceback

    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and Path(frame.filename).resolve().is_relative_to(file.parent)
    ]
    trail = "".join(traceback.format_list(frames)).rstrip()
    last = frames[-1] if frames else None
    return ConfigError(
        f"{type(exc).__name__} while deploying: {exc}" + (f"\n{trail}" if trail else ""),
        file=os.fspath(path) if last is None or Path(last.filename).resolve() == file else last.filename,
        line=last.lineno if last else None,
        hint="the file ran as `python FILE` would, with stepengine's stand-in prefect module",
    )


def _current() -> _Run:
    run = _CURRENT.get()
    if run is None:  # the stand-in imported some other way: behave as a plain Python call
        return _Run(None, None, None)
    return run


def deploy_from_script(
    source: object,
    entrypoint: str | t.Callable[..., t.Any],
    name: str,
    work_pool_name: str | None,
    options: t.Mapping[str, t.Any],
) -> dict[str, t.Any]:
    """The stand-in's ``Flow.from_source(...).deploy(...)`` and ``Flow.deploy(...)``."""
    from stepengine.project.source import from_source

    run = _current()
    kwargs: dict[str, t.Any] = {k: options[k] for k in _PASSED if options.get(k) is not None}
    interval = options.get("interval")
    if isinstance(interval, datetime.timedelta):
        interval = interval.total_seconds()
    if interval is not None:
        kwargs["interval"] = interval
    if options.get("rrule"):
        rules = options["rrule"] if isinstance(options["rrule"], (list, tuple)) else [options["rrule"]]
        kwargs["schedules"] = [*(kwargs.get("schedules") or ()), *({"rrule": r} for r in rules)]
    image = options.get("image")
    if image is not None:
        if not isinstance(image, str):
            raise ConfigError(
                f"deploy {name!r}: image= must be an image name here (a DockerImage object needs Prefect)"
            )
        kwargs["image"] = image
    for key in options:
        if key in _IGNORED:
            run.warnings.append(f"deploy {name!r}: {key}= is not used by stepengine (ignored)")
        elif key not in _PASSED and key not in ("interval", "image", "rrule"):
            raise ConfigError(f"deploy {name!r}: unknown argument {key!r} to .deploy()")
    spec = from_source(source, entrypoint).deploy(
        name,
        work_pool_name,
        **kwargs,
        resolver=run.resolver,
        on_event=run.on_event,
        prefect_api_url=run.prefect_api_url,
        record=True,
        print_next_steps=False,  # `stepengine deploy FILE.py` says it once for every deployment
    )
    run.specs.append(spec)
    return spec


def build_from_script(
    flow: t.Callable[..., t.Any], name: str, options: t.Mapping[str, t.Any]
) -> dict[str, t.Any]:
    """The stand-in's ``Deployment.build_from_flow(...).apply()``."""
    from stepengine.project.source import build_from_flow

    run = _current()
    options = dict(options)
    for key in ("schedule", "triggers", "infrastructure"):
        if options.pop(key, None) is not None:
            run.warnings.append(f"deployment {name!r}: {key}= is not used by stepengine (ignored)")
    spec = build_from_flow(
        flow,
        name,
        apply=run.prefect_api_url is not None or bool(os.environ.get("PREFECT_API_URL")),
        resolver=run.resolver,
        on_event=run.on_event,
        prefect_api_url=run.prefect_api_url,
        record=True,
        print_next_steps=False,
        **options,
    )
    run.specs.append(spec)
    return spec
