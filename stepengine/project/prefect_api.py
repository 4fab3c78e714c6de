"""Register a rendered deployment spec on a Prefect server through its REST API (plain ``urllib``).

Two calls, both upserts on the server side: ``POST /flows/`` (by name; returns the existing flow when
there is one) and ``POST /deployments/`` (by flow and name: creates, or updates in place). Only the
fields Prefect's ``DeploymentCreate`` accepts are sent. ``PREFECT_API_KEY``, when set, is sent as a
bearer token and masked everywhere.
"""

from __future__ import annotations

import json
import os
import typing as t

from stepengine.errors import StepEngineError

if t.TYPE_CHECKING:
    import urllib.error

__all__ = ["api_request", "deployment_body", "register_deployment"]

_SCHEDULE_KEYS = ("active", "schedule", "max_scheduled_runs", "parameters", "slug")
_SCHEDULE_FIELDS = ("cron", "interval", "rrule", "timezone", "anchor_date", "day_or")


def deployment_body(spec: t.Mapping[str, t.Any], flow_id: str) -> dict[str, t.Any]:
    """The ``POST /deployments/`` body for a spec."""
    schedules = []
    for item in spec.get("schedules") or []:
        entry = {k: item[k] for k in _SCHEDULE_KEYS if k in item}
        entry["schedule"] = {k: v for k, v in (item.get("schedule") or {}).items() if k in _SCHEDULE_FIELDS}
        schedules.append(entry)
    body: dict[str, t.Any] = {
        "name": spec["name"],
        "flow_id": flow_id,
        "version": spec.get("version"),
        "description": spec.get("description"),
        "tags": list(spec.get("tags") or []),
        "parameters": dict(spec.get("parameters") or {}),
        "parameter_openapi_schema": spec.get("parameter_openapi_schema") or {},
        "enforce_parameter_schema": bool(spec.get("enforce_parameter_schema", True)),
        "work_pool_name": spec.get("work_pool_name"),
        "work_queue_name": spec.get("work_queue_name"),
        "job_variables": dict(spec.get("job_variables") or {}),
        "pull_steps": list(spec.get("pull_steps") or []),
        "entrypoint": spec.get("entrypoint"),
        "path": spec.get("path"),
        "paused": bool(spec.get("paused")),
        "schedules": schedules,
    }
    limit = spec.get("concurrency_limit")
    if isinstance(limit, dict):
        body["concurrency_limit"] = limit.get("limit")
        if limit.get("collision_strategy"):
            body["concurrency_options"] = {"collision_strategy": limit["collision_strategy"]}
    elif limit is not None:
        body["concurrency_limit"] = limit
    return {k: v for k, v in body.items() if v is not None}


def api_request(api_url: str, method: str, path: str, payload: t.Any = None, timeout: float = 30.0) -> t.Any:
    """One call to the Prefect REST API: the decoded JSON answer (``None`` for an empty one).

    ``payload`` (when not ``None``) is sent as JSON; an HTTP error or an unreachable server is a
    ``StepEngineError`` naming the method and URL, never the key."""
    return _request(api_url, method, path, payload, timeout)


#: answers that mean "busy, ask again" (Prefect's own client retries these too), and the waits
_RETRY_CODES = frozenset({429, 502, 503})
_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


def _request(api_url: str, method: str, path: str, payload: t.Any, timeout: float) -> t.Any:
    import time
    import urllib.error

    for delay in _RETRY_DELAYS:
        try:
            return _request_once(api_url, method, path, payload, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRY_CODES:
                raise _http_error(api_url, method, path, exc) from None
        time.sleep(delay)
    try:
        return _request_once(api_url, method, path, payload, timeout)
    except urllib.error.HTTPError as exc:
        raise _http_error(api_url, method, path, exc) from None


def _http_error(api_url: str, method: str, path: str, exc: urllib.error.HTTPError) -> StepEngineError:
    url = api_url.rstrip("/") + path
    text = exc.read().decode("utf-8", "replace")
    detail: object = text
    try:
        parsed = json.loads(text)
        detail = parsed.get("detail", parsed) if isinstance(parsed, dict) else parsed
    except ValueError:
        pass
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    return StepEngineError(
        f"Prefect API {method} {url} failed with HTTP {exc.code}: {detail}",
        hint="create the work pool first (prefect work-pool create NAME --type process)"
        if exc.code == 404 and "Work pool" in detail
        else None,
    )


def _request_once(api_url: str, method: str, path: str, payload: t.Any, timeout: float) -> t.Any:
    """One attempt; an ``HTTPError`` is left to the caller."""
    import urllib.error
    import urllib.request

    from stepengine.masking import mask

    url = api_url.rstrip("/") + path
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    api_key = os.environ.get("PREFECT_API_KEY")
    if api_key:
        mask(api_key)
        headers["Authorization"] = f"Bearer {api_key}"
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StepEngineError(
            f"cannot reach the Prefect API at {api_url}: {reason}",
            hint="is the server running? (prefect server start)",
        ) from None


def register_deployment(
    spec: t.Mapping[str, t.Any], api_url: str, *, timeout: float = 30.0
) -> dict[str, str]:
    """Create or update the flow and the deployment; returns ``{"flow_id", "deployment_id"}``."""
    flow = _request(api_url, "POST", "/flows/", {"name": spec["flow_name"]}, timeout)
    deployment = _request(api_url, "POST", "/deployments/", deployment_body(spec, flow["id"]), timeout)
    return {"flow_id": str(flow["id"]), "deployment_id": str(deployment["id"])}
