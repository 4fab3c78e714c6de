"""``@flow`` of the stand-in: the function, and Prefect's deployment methods through stepengine."""

from __future__ import annotations

import functools
import os
import typing as t


class Flow:
    """A decorated function; calling it calls the function."""

    def __init__(
        self,
        fn: t.Callable[..., t.Any],
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        **options: t.Any,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        self.description = description or fn.__doc__
        self.version = version
        self.options = options

    def __call__(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return self.fn(*args, **kwargs)

    def with_options(self, **options: t.Any) -> Flow:
        merged = {"name": self.name, "description": self.description, "version": self.version, **self.options}
        merged.update(options)
        return Flow(self.fn, **merged)

    # -- deployments: the Python forms of `stepengine deploy` ---------------------------------

    @classmethod
    def from_source(cls, source: t.Any, entrypoint: str) -> _Deployable:
        """``flow.from_source(source, "path/file.py:function")``: ``.deploy(...)`` renders it."""
        return _Deployable(source, entrypoint)

    def deploy(self, name: str, work_pool_name: str | None = None, **options: t.Any) -> t.Any:
        """``flow.deploy(...)`` without ``from_source``: the code stays where it is (this directory)."""
        return _Deployable(os.getcwd(), self).deploy(name, work_pool_name, **options)

    def serve(self, *args: t.Any, **kwargs: t.Any) -> None:
        serve()

    def to_deployment(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise RuntimeError(
            "Flow.to_deployment: not in stepengine's stand-in prefect module; use flow.deploy(...) or "
            "flow.from_source(...).deploy(...)"
        )


class _Deployable:
    def __init__(self, source: t.Any, entrypoint: str | Flow) -> None:
        self.source = source
        self.entrypoint = entrypoint

    def deploy(self, name: str, work_pool_name: str | None = None, **options: t.Any) -> t.Any:
        try:
            from stepengine.project.script import deploy_from_script
        except ImportError:
            raise RuntimeError(
                ".deploy(): stepengine is not importable in this interpreter; run the file with "
                "`stepengine deploy FILE.py`"
            ) from None
        return deploy_from_script(self.source, self.entrypoint, name, work_pool_name, options)


@t.overload
def flow(__fn: t.Callable[..., t.Any], **options: t.Any) -> Flow: ...
@t.overload
def flow(__fn: None = None, **options: t.Any) -> t.Callable[[t.Callable[..., t.Any]], Flow]: ...
def flow(
    __fn: t.Callable[..., t.Any] | None = None, **options: t.Any
) -> Flow | t.Callable[[t.Callable[..., t.Any]], Flow]:
    """``@flow`` or ``@flow(name=..., log_prints=...)``: options are accepted (name, description and
    version are kept; the others ignored)."""
    if __fn is None:
        return lambda fn: Flow(fn, **options)
    return Flow(__fn, **options)


# as in Prefect: `from prefect import flow; flow.from_source(...).deploy(...)` (its documented pattern)
vars(flow)["from_source"] = Flow.from_source  # (an attribute of the function, as on Prefect's)


def serve(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
    raise RuntimeError(
        "serve: stepengine does not serve flows (no server, no scheduler); deploy with "
        "`stepengine deploy` and run with `stepengine execute -d NAME`, or install prefect"
    )


__all__ = ["Flow", "flow", "serve"]
