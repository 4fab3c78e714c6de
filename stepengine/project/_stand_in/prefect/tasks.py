"""``@task`` of the stand-in: the function, called at once (``submit`` and ``map`` too)."""

from __future__ import annotations

import functools
import typing as t

from prefect.futures import PrefectFuture, resolve, unmapped


class Task:
    """A decorated function; calling it calls the function."""

    def __init__(self, fn: t.Callable[..., t.Any], name: str | None = None, **options: t.Any) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.options = options

    def __call__(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return self.fn(*args, **kwargs)

    def __get__(
        self, instance: t.Any, owner: type | None = None
    ) -> t.Callable[..., t.Any]:  # a task defined in a class body is still a method
        return self if instance is None else functools.partial(self, instance)

    def with_options(self, **options: t.Any) -> Task:
        return Task(self.fn, **{**self.options, "name": self.name, **options})

    def submit(self, *args: t.Any, **kwargs: t.Any) -> PrefectFuture:
        values = [resolve(a) for a in args]
        keywords = {k: resolve(v) for k, v in kwargs.items()}
        try:
            return PrefectFuture(self.fn(*values, **keywords))
        except Exception as exc:  # raised again by .result(), as Prefect does
            return PrefectFuture(error=exc)

    def map(self, *args: t.Any, **kwargs: t.Any) -> list[PrefectFuture]:
        def spread(value: t.Any) -> list[t.Any] | None:
            if isinstance(value, unmapped):
                return None
            return list(resolve(value))

        lists = [spread(a) for a in args] + [spread(v) for v in kwargs.values()]
        count = min((len(x) for x in lists if x is not None), default=0)
        futures = []
        for i in range(count):
            call_args = [a.value if isinstance(a, unmapped) else _item(spread(a), i) for a in args]
            call_kwargs = {
                k: v.value if isinstance(v, unmapped) else _item(spread(v), i) for k, v in kwargs.items()
            }
            futures.append(self.submit(*call_args, **call_kwargs))
        return futures

    def delay(self, *args: t.Any, **kwargs: t.Any) -> PrefectFuture:
        return self.submit(*args, **kwargs)


def _item(values: list[t.Any] | None, index: int) -> t.Any:
    assert values is not None  # only unmapped arguments spread to None
    return values[index]


@t.overload
def task(__fn: t.Callable[..., t.Any], **options: t.Any) -> Task: ...
@t.overload
def task(__fn: None = None, **options: t.Any) -> t.Callable[[t.Callable[..., t.Any]], Task]: ...
def task(
    __fn: t.Callable[..., t.Any] | None = None, **options: t.Any
) -> Task | t.Callable[[t.Callable[..., t.Any]], Task]:
    """``@task`` or ``@task(name=..., retries=...)``: options are accepted and ignored (but name)."""
    if __fn is None:
        return lambda fn: Task(fn, **options)
    return Task(__fn, **options)


__all__ = ["Task", "task"]
