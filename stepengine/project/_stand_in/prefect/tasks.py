"""``@task`` of the stand-in: the function, called at once (``submit`` and ``map`` too)."""

import functools

from prefect.futures import PrefectFuture, resolve, unmapped


class Task:
    """A decorated function; calling it calls the function."""

    def __init__(self, fn, name=None, **options):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.options = options

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __get__(self, instance, owner=None):  # a task defined in a class body is still a method
        return self if instance is None else functools.partial(self, instance)

    def with_options(self, **options):
        return Task(self.fn, **{**self.options, "name": self.name, **options})

    def submit(self, *args, **kwargs):
        args = [resolve(a) for a in args]
        kwargs = {k: resolve(v) for k, v in kwargs.items()}
        try:
            return PrefectFuture(self.fn(*args, **kwargs))
        except Exception as exc:  # raised again by .result(), as Prefect does
            return PrefectFuture(error=exc)

    def map(self, *args, **kwargs):
        def spread(value):
            if isinstance(value, unmapped):
                return None
            return list(resolve(value))

        lists = [spread(a) for a in args] + [spread(v) for v in kwargs.values()]
        count = min((len(x) for x in lists if x is not None), default=0)
        futures = []
        for i in range(count):
            call_args = [a.value if isinstance(a, unmapped) else spread(a)[i] for a in args]
            call_kwargs = {k: v.value if isinstance(v, unmapped) else spread(v)[i] for k, v in kwargs.items()}
            futures.append(self.submit(*call_args, **call_kwargs))
        return futures

    def delay(self, *args, **kwargs):
        return self.submit(*args, **kwargs)


def task(__fn=None, **options):
    """``@task`` or ``@task(name=..., retries=...)``: options are accepted and ignored (but name)."""
    if __fn is None:
        return lambda fn: Task(fn, **options)
    return Task(__fn, **options)


__all__ = ["Task", "task"]
