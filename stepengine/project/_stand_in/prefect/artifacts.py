"""Artifacts of the stand-in: logged (there is no server to keep them); each returns an id."""

import json
import uuid


def _log(kind, key, description, body):
    from prefect.logging import get_run_logger

    title = "{} artifact{}".format(kind, " " + repr(key) if key else "")
    get_run_logger().info("%s%s: %s", title, " (" + description + ")" if description else "", body)
    return uuid.uuid4()


def create_markdown_artifact(markdown, key=None, description=None, **kwargs):
    return _log("markdown", key, description, markdown)


def create_table_artifact(table, key=None, description=None, **kwargs):
    return _log("table", key, description, json.dumps(table, default=str))


def create_link_artifact(link, link_text=None, key=None, description=None, **kwargs):
    return _log("link", key, description, link if not link_text else f"{link_text} ({link})")


def create_progress_artifact(progress, key=None, description=None, **kwargs):
    return _log("progress", key, description, f"{progress}%")


def update_progress_artifact(artifact_id, progress, description=None, **kwargs):
    return _log("progress", None, description, f"{progress}%")


def create_image_artifact(image_url, key=None, description=None, **kwargs):
    return _log("image", key, description, image_url)


__all__ = [
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]
