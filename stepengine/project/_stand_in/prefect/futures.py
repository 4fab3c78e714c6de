"""Futures of the stand-in: a task's ``submit`` runs it at once; the future holds the outcome."""

from __future__ import annotations

import typing as t


class PrefectFuture:
    """The outcome of a submitted task (it has already run)."""

    def __init__(self, value: t.Any = None, error: BaseException | None = None) -> None:
        self._value = value
        self._error = error

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> t.Any:
        if self._error is not None and raise_on_failure:
            raise self._error
        return self._error if self._error is not None else self._value

    def wait(self, timeout: float | None = None) -> None:
        return None


class unmapped:  # Prefect's name
    """An argument passed whole to every call of ``task.map``."""

    def __init__(self, value: t.Any) -> None:
        self.value = value


class allow_failure:  # Prefect's name
    """Accepted and unwrapped (the stand-in has no upstream states)."""

    def __init__(self, value: t.Any) -> None:
        self.value = value


def resolve(value: t.Any) -> t.Any:
    """A future or wrapper as an argument: its value (as Prefect passes results downstream)."""
    if isinstance(value, PrefectFuture):
        return value.result()
    if isinstance(value, (unmapped, allow_failure)):
        return resolve(value.value)
    return value


def wait(futures: t.Iterable[PrefectFuture], timeout: float | None = None) -> t.Iterable[PrefectFuture]:
    """Every future is already done."""
    return futures


def as_completed(
    futures: t.Iterable[PrefectFuture], timeout: float | None = None
) -> t.Iterator[PrefectFuture]:
    return iter(list(futures))


__all__ = ["PrefectFuture", "allow_failure", "as_completed", "resolve", "unmapped", "wait"]
