"""Block and variable stores, and the default chain a run resolves ``prefect.blocks`` /
``prefect.variables`` with.

Stores (each a resolver, see ``stepengine.resolvers``):

- ``values``  the ``--values`` file (only when one is given)            ``FileResolver``
- ``env``     environment variables (``STEPENGINE_BLOCK_…``, ``STEPENGINE_VAR_…``)  ``EnvStore``
- ``local``   the embedded SQLite store under ``$STEPENGINE_HOME``      ``SQLiteStore``
- ``prefect`` a Prefect server's REST API (only with ``--prefect-api-url`` / ``PREFECT_API_URL``)
                                                                        ``PrefectAPIStore``

The default order is ``values,env,local,prefect``: the first store that has the block or variable
wins, so an explicit file overrides CI's environment, which overrides the machine's store. Change it
with ``--stores`` or ``STEPENGINE_STORES`` (a comma-separated subset, in the order wanted).
Nothing is opened or requested until a template needs a block or a variable.
"""

from __future__ import annotations

import os
import typing as t

from stepengine.errors import ConfigError
from stepengine.resolvers import ChainResolver, Resolver

if t.TYPE_CHECKING:
    from stepengine.stores.sqlite import SQLiteStore

__all__ = ["DEFAULT_ORDER", "STORE_NAMES", "default_resolver", "parse_order"]

STORE_NAMES = ("values", "env", "local", "prefect")
DEFAULT_ORDER = STORE_NAMES


def parse_order(order: str | t.Sequence[str] | None, env: t.Mapping[str, str] | None = None) -> list[str]:
    """``"env,local"`` → ``["env", "local"]``; ``None`` → ``STEPENGINE_STORES`` or the default order."""
    env = os.environ if env is None else env
    if order is None:
        order = env.get("STEPENGINE_STORES") or list(DEFAULT_ORDER)
    names = (
        [n.strip() for n in order.split(",")] if isinstance(order, str) else [str(n).strip() for n in order]
    )
    names = [n for n in names if n]
    for name in names:
        if name not in STORE_NAMES:
            raise ConfigError(
                f"unknown store {name!r} in the store order; stores are: {', '.join(STORE_NAMES)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"the store order {','.join(names)!r} names a store twice")
    return names


def default_resolver(
    *,
    values_file: str | os.PathLike[str] | None = None,
    prefect_api_url: str | None = None,
    order: str | t.Sequence[str] | None = None,
    env: t.Mapping[str, str] | None = None,
) -> ChainResolver:
    """The chain a run uses when no resolver is given: see the module docstring.

    :param values_file: a YAML/JSON file with ``blocks:`` and ``variables:`` (``--values``).
    :param prefect_api_url: a Prefect API URL (default ``PREFECT_API_URL``; none: no Prefect store).
    :param order: store names in priority order (default ``STEPENGINE_STORES`` or
        ``values,env,local,prefect``).
    :param env: the environment to read (default ``os.environ``).
    """
    env = os.environ if env is None else env
    names = parse_order(order, env)
    if values_file is not None and "values" not in names:
        raise ConfigError(
            f"a values file was given, but the store order {','.join(names)!r} leaves out 'values'"
        )
    stores: list[Resolver] = []
    for name in names:
        if name == "values":
            if values_file is not None:
                from stepengine.resolvers import FileResolver

                stores.append(FileResolver(values_file))
        elif name == "env":
            from stepengine.stores.env import EnvStore

            stores.append(EnvStore(env))
        elif name == "local":
            stores.append(_LocalStore(env))
        else:
            from stepengine.stores.prefect_api import PrefectAPIStore

            prefect = PrefectAPIStore.from_env(env, prefect_api_url)
            if prefect is not None:
                stores.append(prefect)
    return ChainResolver(*stores)


class _LocalStore:
    """The embedded store, opened (and its module imported) only when a template asks it something:
    most runs resolve no block or variable and should not pay for it."""

    def __init__(self, env: t.Mapping[str, str]) -> None:
        self._env = env
        self._store: SQLiteStore | None = None

    def _open(self) -> SQLiteStore:
        if self._store is None:
            from stepengine.stores.sqlite import SQLiteStore, default_path

            self._store = SQLiteStore(default_path(self._env))
        return self._store

    def get_block(self, block_type: str, name: str) -> t.Mapping[str, t.Any]:
        return self._open().get_block(block_type, name)

    def get_variable(self, name: str) -> t.Any:
        return self._open().get_variable(name)

    def describe_missing(self, kind: str, block_type: str | None, name: str) -> str:
        return self._open().describe_missing(kind, block_type, name)
