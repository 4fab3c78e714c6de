"""Register a rendered deployment spec on a Prefect server through its REST API (``PrefectClient``).

Two calls, both upserts on the server side: ``POST /flows/`` (by name; returns the existing flow when
there is one) and ``POST /deployments/`` (by flow and name: creates, or updates in place). Only the
fields Prefect's ``DeploymentCreate`` accepts are sent. ``PREFECT_API_KEY``, when set, is sent as a
bearer token and masked everywhere; a failure is a ``StoreError`` (CLI exit 2).
"""

from __future__ import annotations

import typing as t

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
    r"""One call to the Prefect REST API with ``PREFECT_API_KEY``: the decoded JSON answer (``None``
    for an empty one). Failures are ``StoreError``\ s naming the method and URL, never the key (see
    ``stepengine.prefect_client``)."""
    from stepengine.prefect_client import PrefectClient

    return PrefectClient.from_env(api_url, timeout=timeout).request(method, path, payload)


def register_deployment(
    spec: t.Mapping[str, t.Any], api_url: str, *, timeout: float = 30.0
) -> dict[str, str]:
    """Create or update the flow and the deployment; returns ``{"flow_id", "deployment_id"}``."""
    from stepengine.prefect_client import PrefectClient

    client = PrefectClient.from_env(api_url, timeout=timeout)
    flow = client.request("POST", "/flows/", {"name": spec["flow_name"]})
    deployment = client.request("POST", "/deployments/", deployment_body(spec, flow["id"]))
    return {"flow_id": str(flow["id"]), "deployment_id": str(deployment["id"])}
