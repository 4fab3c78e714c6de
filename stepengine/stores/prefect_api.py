"""A Prefect server (or Prefect Cloud) as a store, over its REST API with a plain HTTP client.

Reads block documents *with* their secrets and variables, exactly what Prefect's own template
resolution reads, without Prefect installed:

- ``GET {api}/block_types/slug/{type}/block_documents/name/{name}?include_secrets=true``
- ``GET {api}/variables/name/{name}``

``api`` is ``--prefect-api-url`` or ``PREFECT_API_URL`` (e.g. ``http://127.0.0.1:4200/api``); a
``PREFECT_API_KEY`` is sent as ``Authorization: Bearer …``. A 404 is "not here" (the chain goes on);
any other failure is a ``StoreError`` naming the URL, never the key (the requests and their errors are
``stepengine.prefect_client``'s). Every field the block's schema
lists in ``secret_fields`` is masked for the run, on top of the engine's own rule.
"""

from __future__ import annotations

import os
import typing as t

from stepengine.errors import StoreError

__all__ = ["PrefectAPIStore"]


class PrefectAPIStore:
    """Blocks and variables from a Prefect server's REST API (through ``PrefectClient``).

    Example::

        store = PrefectAPIStore("http://127.0.0.1:4200/api")
        store.get_block("secret", "github-token")   # {"value": "ghp_…"}
    """

    name = "prefect"

    def __init__(self, api_url: str, api_key: str | None = None, *, timeout: float = 15.0) -> None:
        from stepengine.prefect_client import PrefectClient

        self._client = PrefectClient(api_url, api_key, timeout=timeout)
        self.api_url = self._client.api_url
        self.timeout = timeout
        self._cache: dict[str, dict[str, t.Any]] = {}

    def __repr__(self) -> str:  # never the key
        return f"PrefectAPIStore({self.api_url!r})"

    @classmethod
    def from_env(
        cls, env: t.Mapping[str, str] | None = None, api_url: str | None = None
    ) -> PrefectAPIStore | None:
        """The store ``PREFECT_API_URL`` / ``PREFECT_API_KEY`` describe, or ``None`` without a URL."""
        env = os.environ if env is None else env
        url = api_url or env.get("PREFECT_API_URL")
        if not url:
            return None
        return cls(url, env.get("PREFECT_API_KEY") or None)

    def get_block(self, block_type: str, name: str) -> dict[str, t.Any]:
        from urllib.parse import quote

        path = f"/block_types/slug/{quote(block_type, safe='')}/block_documents/name/{quote(name, safe='')}"
        document = self._get(path + "?include_secrets=true", f"{block_type}/{name}")
        data = document.get("data")
        if not isinstance(data, dict):
            raise StoreError(f"{self.api_url}: block {block_type}/{name} has no data", store=self.api_url)
        schema = document.get("block_schema") or {}
        secret_paths = (schema.get("fields") or {}).get("secret_fields") or []
        from stepengine.masking import mask

        for path_ in secret_paths:
            for value in _select(data, str(path_).split(".")):
                mask(value)
        return data

    def describe_missing(self, kind: str, block_type: str | None, name: str) -> str:
        return f"Prefect API {self.api_url}"

    def get_variable(self, name: str) -> t.Any:
        from urllib.parse import quote

        document = self._get(f"/variables/name/{quote(name, safe='')}", name)
        return document.get("value")

    def _get(self, path: str, what: str) -> dict[str, t.Any]:
        if path in self._cache:
            return self._cache[path]
        document = self._client.request("GET", path, missing_ok=True)
        if document is None:
            raise LookupError(what)
        if not isinstance(document, dict):
            raise StoreError(
                f"the Prefect API at {self.api_url} answered an unexpected document", store=self.api_url
            )
        self._cache[path] = document
        return document


def _select(value: t.Any, parts: list[str]) -> t.Iterator[t.Any]:
    """The values at a Prefect ``secret_fields`` path (``a.b``, ``a.*``) inside block data."""
    if not parts:
        yield value
        return
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        if head == "*":
            for item in value.values():
                yield from _select(item, rest)
        elif head in value:
            yield from _select(value[head], rest)
    elif isinstance(value, list) and head == "*":
        for item in value:
            yield from _select(item, rest)
