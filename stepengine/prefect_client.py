"""The one client of Prefect's REST API (stdlib ``urllib``; no Prefect needed).

Used by the Prefect store (blocks and variables, ``stores/prefect_api.py``), by ``deploy`` (flows and
deployments, ``project/prefect_api.py``) and by the pull stage of a worker's job
(``project/prefect_worker.py``). One place decides how a request is made and what its failures are:

- ``PREFECT_API_KEY`` (or the key given) is sent as ``Authorization: Bearer …`` and masked for the
  run, as is a password in the URL (a proxy's basic auth); no message names either.
- A busy server (HTTP 429, 502, 503) is asked again after 0.5, 1, 2 and 4 s, as Prefect's own client
  does.
- Every failure is a ``StoreError`` naming the API URL (CLI exit 2) with a hint: unreachable, refused
  (401/403: the key), any other HTTP error with the server's ``detail``, an answer that is not JSON.
  ``missing_ok`` turns a 404 into ``None`` (a store's "not here").
"""

from __future__ import annotations

import json
import os
import typing as t

from stepengine.errors import StoreError

if t.TYPE_CHECKING:
    import urllib.error

__all__ = ["PrefectClient"]

#: answers that mean "busy, ask again" (Prefect's own client retries these too), and the waits
RETRY_CODES = frozenset({429, 502, 503})
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


class PrefectClient:
    """Requests to one Prefect API (``http://127.0.0.1:4200/api``, or Prefect Cloud's).

    Example::

        client = PrefectClient.from_env("http://127.0.0.1:4200/api")
        flow = client.request("POST", "/flows/", {"name": "etl"})
    """

    def __init__(self, api_url: str, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        from urllib.parse import urlsplit

        password = urlsplit(self.api_url).password
        if password:  # credentials in the URL (a proxy's basic auth) are a secret like the key
            from stepengine.masking import mask

            mask(password)

    def __repr__(self) -> str:  # never the key
        return f"PrefectClient({self.api_url!r})"

    @classmethod
    def from_env(
        cls, api_url: str, env: t.Mapping[str, str] | None = None, *, timeout: float = 30.0
    ) -> PrefectClient:
        """A client of ``api_url`` with the key ``PREFECT_API_KEY`` holds (if any)."""
        env = os.environ if env is None else env
        return cls(api_url, env.get("PREFECT_API_KEY") or None, timeout=timeout)

    def request(self, method: str, path: str, payload: t.Any = None, *, missing_ok: bool = False) -> t.Any:
        """The decoded JSON answer (``None`` for an empty one; for a 404 with ``missing_ok``).
        ``payload`` (when not ``None``) is sent as JSON."""
        import time
        import urllib.error

        for delay in (*RETRY_DELAYS, None):
            try:
                return self._once(method, path, payload)
            except urllib.error.HTTPError as exc:
                if exc.code == 404 and missing_ok:
                    return None
                if exc.code not in RETRY_CODES or delay is None:
                    raise self._http_error(method, path, exc) from None
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, path: str, payload: t.Any) -> t.Any:
        """One attempt; an ``HTTPError`` is left to the caller."""
        import urllib.error
        import urllib.request

        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(payload).encode()
        if self._api_key:
            from stepengine.masking import mask

            mask(self._api_key)
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.api_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StoreError(
                f"cannot reach the Prefect API at {self.api_url}: {reason}",
                store=self.api_url,
                hint="is the server running? (--prefect-api-url / PREFECT_API_URL)",
            ) from None
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise StoreError(
                f"the Prefect API at {self.api_url} did not answer JSON to {method} {path}",
                store=self.api_url,
            ) from None

    def _http_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> StoreError:
        if exc.code in (401, 403):
            return StoreError(
                f"the Prefect API at {self.api_url} refused the request (HTTP {exc.code})",
                store=self.api_url,
                hint="check PREFECT_API_KEY" if self._api_key else "set PREFECT_API_KEY",
            )
        text = exc.read().decode("utf-8", "replace")
        detail: object = text
        try:
            parsed = json.loads(text)
            detail = parsed.get("detail", parsed) if isinstance(parsed, dict) else parsed
        except ValueError:
            pass
        if not isinstance(detail, str):
            detail = json.dumps(detail)
        return StoreError(
            f"Prefect API {method} {self.api_url}{path} failed with HTTP {exc.code}: {detail}",
            store=self.api_url,
            hint="create the work pool first (prefect work-pool create NAME --type process)"
            if exc.code == 404 and "Work pool" in detail
            else None,
        )
