"""Artifacts of the stand-in: logged (there is no server to keep them); each returns an id."""

from __future__ import annotations

import json
import typing as t
import uuid


def _log(kind: str, key: str | None, description: str | None, body: str) -> uuid.UUID:
    from prefect.logging import get_run_logger

    title = "{} artifact{}".format(kind, " " + repr(key) if key else "")
    get_run_logger().info("%s%s: %s", title, " (" + description + ")" if description else "", body)
    return uuid.uuid4()


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None, **kwargs: t.Any
) -> uuid.UUID:
    return _log("markdown", key, description, markdown)


def create_table_artifact(
    table: t.Any, key: str | None = None, description: str | None = None, **kwargs: t.Any
) -> uuid.UUID:
    return _log("table", key, description, json.dumps(table, default=str))


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
    **kwargs: t.Any,
) -> uuid.UUID:
    return _log("link", key, description, link if not link_text else f"{link_text} ({link})")


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None, **kwargs: t.Any
) -> uuid.UUID:
    return _log("progress", key, description, f"{progress}%")


def update_progress_artifact(
    artifact_id: t.Any, progress: float, description: str | None = None, **kwargs: t.Any
) -> uuid.UUID:
    return _log("progress", None, description, f"{progress}%")


def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None, **kwargs: t.Any
) -> uuid.UUID:
    return _log("image", key, description, image_url)


__all__ = [
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]
