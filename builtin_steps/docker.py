"""Docker steps: build an image (from a Dockerfile or a generated one) and push it to a registry.

Signatures and outputs follow prefect-docker's ``build_docker_image`` and ``push_docker_image``, so a
``prefect.yaml`` written for Prefect runs unchanged. Differences, all on the safe side:

- image names, tags and build options are checked before any work is done;
- ``dockerfile: auto`` never writes over a file: the generated Dockerfile lives outside the project
  unless ``persist_dockerfile`` asks for it, and then an existing file is an error;
- a failed push raises (the Docker SDK reports push errors only inside its stream);
- build output is streamed line by line through ``emit_output`` (masked), and a failed build names
  the Dockerfile step that failed and shows the last lines of output;
- intermediate build containers are removed (``rm: true``) unless ``rm: false`` is passed;
- a build or push repeated with the same inputs runs once *per run* (Prefect: once per process);
  ``ignore_cache: true`` forces it.

The Docker SDK (``pip install 'stepengine[docker]'``) is imported inside the steps, never at import
time. The engine is the one ``DOCKER_HOST`` (or the default socket) names.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import datetime
import hashlib
import json
import os
import re
import typing as t
from pathlib import Path

from stepengine.step_api import StepError, current_step, emit_output, get_logger, safe_join

from ._docker_inputs import (
    check_backend,
    check_build_kwargs,
    check_credentials,
    check_image_name,
    check_tags,
    default_base_image,
    existing_dockerfile,
    generate_dockerfile,
    plain_tags,
    with_default_namespace,
    would_overwrite,
    write_generated_dockerfile,
)

__all__ = ["build_docker_image", "push_docker_image"]

_OUTPUT_TAIL = 20

#: results of builds and pushes already done, per run, by a digest of their inputs
_DONE: dict[str, dict[str, dict[str, t.Any]]] = {}
#: caches of this many recent runs are kept (an embedding tool may run many in one process)
_RUNS_REMEMBERED = 16
#: the same outside any run (steps called directly): per process, as Prefect's cache is
_DONE_OUTSIDE_RUNS: dict[str, dict[str, t.Any]] = {}


# --------------------------------------------------------------------------- steps


def build_docker_image(
    image_name: str,
    dockerfile: str = "Dockerfile",
    tag: str | None = None,
    additional_tags: list[str] | None = None,
    ignore_cache: bool = False,
    persist_dockerfile: bool = False,
    dockerfile_output_path: str = "Dockerfile.generated",
    push: bool = False,
    credentials: dict[str, t.Any] | None = None,
    build_backend: str = "docker-py",
    **build_kwargs: t.Any,
) -> dict[str, t.Any]:
    """Build a Docker image and tag it ``image_name:tag`` (and each of ``additional_tags``).

    :param image_name: repository, with the registry if any (``127.0.0.1:5000/team/app``), no tag.
    :param dockerfile: path relative to the build context, or ``auto`` to generate one for a Python
        project (``FROM`` ``base_image``, install ``requirements.txt``, copy the project to
        ``/opt/prefect/<folder name>/`` and make it the working directory).
    :param tag: defaults to a slug of the current UTC time, as Prefect does.
    :param persist_dockerfile: keep the generated Dockerfile at ``dockerfile_output_path``.
    :param push: push every tag after the build (the older prefect-docker form).
    :param credentials: ``{username, password, registry_url}``: login for base-image pulls and ``push``.
    :param build_kwargs: passed to the Docker SDK's ``build`` (``path``, ``buildargs``, ``platform``,
        ``network_mode``, ``labels``, ``target``, ``pull``, ...), plus ``base_image`` for ``auto``.

    Example (prefect.yaml)::

        build:
          - prefect_docker.deployments.steps.build_docker_image:
              id: build_image
              image_name: 127.0.0.1:5000/team/app
              tag: dev
              dockerfile: auto
    """
    base_image = build_kwargs.pop("base_image", None)
    check_backend(build_backend)
    image_name = with_default_namespace(image_name)
    check_image_name(image_name)
    tag, additional_tags = plain_tags(tag), plain_tags(additional_tags)
    check_tags(tag, additional_tags)
    check_build_kwargs(build_kwargs)
    if base_image is not None and dockerfile != "auto":
        raise StepError(
            "base_image applies only to `dockerfile: auto`", hint="set the base image in your Dockerfile"
        )
    check_credentials(credentials)
    context = Path(build_kwargs.pop("path", None) or os.getcwd()).absolute()
    if not context.is_dir():
        raise StepError(
            f"build context {context} is not a directory", hint="set `path:` to the project folder"
        )

    key = _digest(
        "build",
        image_name,
        dockerfile,
        tag,
        additional_tags,
        persist_dockerfile,
        dockerfile_output_path,
        push,
        credentials,
        base_image,
        str(context),
        build_kwargs,
    )
    done = _done_in_this_run()
    if not ignore_cache and key in done:
        get_logger().info("image %s was already built in this run with the same inputs", image_name)
        return copy.deepcopy(done[key])

    tag = tag or _timestamp_tag()
    additional_tags = list(additional_tags or [])
    build_kwargs.setdefault("pull", True)  # as Prefect: refresh the base image
    build_kwargs.setdefault("rm", True)  # as `docker build`: no intermediate containers left behind

    persisted: Path | None = None
    if dockerfile != "auto":
        dockerfile_arg = existing_dockerfile(context, dockerfile)
    elif persist_dockerfile:
        persisted = safe_join(context, dockerfile_output_path)
        if persisted.exists():
            raise would_overwrite(persisted)

    with contextlib.ExitStack() as cleanup:
        client = _connect()
        cleanup.callback(client.close)
        if credentials is not None:
            _login(client, credentials)
        if dockerfile == "auto":
            text = generate_dockerfile(context, base_image or default_base_image())
            dockerfile_arg = write_generated_dockerfile(context, text, persisted, cleanup)
        image_id = _build(client, image_name, context, dockerfile_arg, build_kwargs)
        image = client.images.get(image_id)
        for name in (tag, *additional_tags):
            image.tag(repository=image_name, tag=name)
        if push:
            _push(client, image_name, [tag, *additional_tags])

    result = {
        "image_name": image_name,
        "tag": tag,
        "image": f"{image_name}:{tag}",
        "image_id": image_id,
        "additional_tags": additional_tags,
    }
    done[key] = result
    return copy.deepcopy(result)


def push_docker_image(
    image_name: str,
    tag: str | None = None,
    credentials: dict[str, t.Any] | None = None,
    additional_tags: list[str] | None = None,
    ignore_cache: bool = False,
    build_backend: str = "docker-py",
) -> dict[str, t.Any]:
    """Push ``image_name:tag`` (and each of ``additional_tags``) to its registry; raise if any push fails.

    Without ``tag``, a tag inside ``image_name`` (``image_name: "{{ build.image }}"``) is pushed; with
    neither, every local tag of ``image_name`` is (what the engine does for an untagged push). ``image``
    is then ``image_name`` as given.

    Example (prefect.yaml)::

        push:
          - prefect_docker.deployments.steps.push_docker_image:
              image_name: "{{ build_image.image_name }}"
              tag: "{{ build_image.tag }}"
              credentials: "{{ prefect.blocks.docker-registry-credentials.dev-registry }}"
    """
    # `image_name: "{{ build.image }}"` (name and tag in one) is accepted when `tag` is not given
    check_backend(build_backend)
    image_name = with_default_namespace(image_name)
    repository, tag_in_name = check_image_name(image_name, tag_allowed=tag is None)
    tag, additional_tags = plain_tags(tag), plain_tags(additional_tags)
    check_tags(tag, additional_tags)
    check_credentials(credentials)
    key = _digest("push", image_name, tag, credentials, additional_tags)
    done = _done_in_this_run()
    if not ignore_cache and key in done:
        get_logger().info("image %s was already pushed in this run with the same inputs", image_name)
        return copy.deepcopy(done[key])
    additional_tags = list(additional_tags or [])
    client = _connect()
    try:
        if credentials is not None:
            _login(client, credentials)
        _push(client, repository, [tag or tag_in_name, *additional_tags])
    finally:
        client.close()
    result = {
        "image_name": image_name,
        "tag": tag or tag_in_name,
        "image": f"{image_name}:{tag}" if tag else image_name,
        "additional_tags": additional_tags,
    }
    done[key] = result
    return copy.deepcopy(result)


# --------------------------------------------------------------------------- engine


def _connect() -> t.Any:
    try:
        import docker
    except ImportError:
        raise StepError(
            "the docker steps need the Docker SDK for Python, which is not installed",
            hint="pip install 'stepengine[docker]'",
        ) from None
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise StepError(
            f"cannot connect to the Docker engine at {host} ({_root_reason(exc)})",
            hint="start Docker, or set DOCKER_HOST to the engine's address"
            " (e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375)",
        ) from None


def _root_reason(exc: BaseException) -> str:
    """The innermost OS-level reason (``No such file or directory``) inside the SDK's wrapped errors."""
    seen: set[int] = set()
    stack: list[t.Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
        stack.extend([item.__cause__, item.__context__, *item.args])
    return str(exc)


def _login(client: t.Any, credentials: dict[str, t.Any]) -> None:
    import docker

    registry = credentials.get("registry_url")
    username = credentials["username"]
    try:
        client.login(
            username=username,
            password=credentials["password"],
            registry=registry,
            reauth=credentials.get("reauth", True),
        )
    except docker.errors.APIError as exc:
        # ``from None``: the SDK's exception holds the request, whose headers hold the password
        raise StepError(
            f"docker login to {registry or 'Docker Hub'} as {username} failed: {exc.explanation or exc}",
            hint="check the registry credentials (username, password, registry_url)",
        ) from None


def _build(
    client: t.Any, image_name: str, context: Path, dockerfile: str, build_kwargs: dict[str, t.Any]
) -> str:
    import docker

    image_id: str | None = None
    step = None
    tail: collections.deque[str] = collections.deque(maxlen=_OUTPUT_TAIL)
    pending = ""
    # every line went to the run's subscriber (the CLI printed it): the error need not repeat it
    shown = True
    try:
        events = client.api.build(path=str(context), dockerfile=dockerfile, decode=True, **build_kwargs)
        for event in events:
            if "stream" in event:
                pending += event["stream"]
                *lines, pending = pending.split("\n")
                for line in lines:
                    line = line.rstrip("\r")
                    if line.startswith("Step "):
                        step = line
                    if line.strip():
                        tail.append(line)
                        shown = emit_output(line) and shown
            elif "status" in event:  # base image pull progress
                if "progress" not in event:
                    line = ": ".join(str(event[k]) for k in ("id", "status") if event.get(k))
                    tail.append(line)
                    shown = emit_output(line) and shown
            elif "aux" in event and isinstance(event["aux"], dict) and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
            if "error" in event or "errorDetail" in event:
                message = event.get("error") or (event.get("errorDetail") or {}).get("message", "")
                raise _build_failed(image_name, step, message, () if shown else tail)
    except docker.errors.APIError as exc:
        raise _build_failed(image_name, step, str(exc.explanation or exc), () if shown else tail) from None
    except _connection_errors() as exc:
        reason = f"lost the connection to the Docker engine: {_root_reason(exc)}"
        raise _build_failed(image_name, step, reason, () if shown else tail) from None
    if pending.strip():
        emit_output(pending)
    if not image_id:
        raise StepError(f"docker build of {image_name} finished without reporting an image ID")
    return image_id


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def _plain(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def _connection_errors() -> tuple[type[BaseException], ...]:
    import requests

    return (requests.exceptions.ConnectionError,)


def _build_failed(image_name: str, step: str | None, message: str, tail: t.Iterable[str]) -> StepError:
    """The error of a failed build: the instruction, the engine's message and, unless the output
    was already shown as it streamed (issue 15: it was printed twice), its last lines. Colour
    codes are left out: an error is plain text."""
    where = f" at {_plain(step)}" if step else ""
    message = _plain(message)
    text = f"docker build of {image_name} failed{where}\n{message.strip()}"
    lines = [_plain(line) for line in tail if _plain(line).strip() != message.strip()]
    if lines:
        text += "\nlast output:\n" + "\n".join("    " + line for line in lines)
    hint = None
    if step and step.split(" : ", 1)[-1].upper().startswith("FROM "):
        hint = "the engine could not get the base image; if it exists only locally, pass `pull: false`"
    elif "denied" in message.lower() or "unauthorized" in message.lower():
        hint = (
            "the registry refused access: the base image may need `credentials`, or its name is wrong;"
            " a local-only base image needs `pull: false`"
        )
    return StepError(text, hint=hint)


def _push(client: t.Any, image_name: str, tags: list[str | None]) -> None:
    import docker

    for tag in tags:
        reference = f"{image_name}:{tag}" if tag else image_name
        if tag:
            try:
                client.images.get(reference)
            except docker.errors.ImageNotFound:
                raise StepError(
                    f"cannot push {reference}: no such image in the Docker engine",
                    hint="build it first (build_docker_image), or check image_name and tag",
                ) from None
        try:
            for event in client.api.push(image_name, tag=tag, stream=True, decode=True):
                if "error" in event or "errorDetail" in event:
                    message = event.get("error") or (event.get("errorDetail") or {}).get("message", "")
                    raise StepError(f"docker push of {reference} failed: {message}", hint=_push_hint(message))
                if "status" in event and "progress" not in event:
                    emit_output(": ".join(str(event[k]) for k in ("id", "status") if event.get(k)))
        except docker.errors.APIError as exc:
            message = str(exc.explanation or exc)
            raise StepError(
                f"docker push of {reference} failed: {message}", hint=_push_hint(message)
            ) from None


def _push_hint(message: str) -> str | None:
    lowered = message.lower()
    if any(word in lowered for word in ("unauthorized", "authentication required", "denied", "credentials")):
        return "pass `credentials` (username, password, registry_url) for the registry in image_name"
    return None


# --------------------------------------------------------------------------- helpers


def _timestamp_tag() -> str:
    """Prefect's default tag: the current UTC time in ISO format, slugified."""
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    return re.sub(r"[^a-z0-9]+", "-", stamp.lower()).strip("-")


def _done_in_this_run() -> dict[str, dict[str, t.Any]]:
    """The results cache of the run in progress (a fresh one per run), or the per-process one."""
    step = current_step()
    if step is None or step.run_id is None:
        return _DONE_OUTSIDE_RUNS
    if step.run_id not in _DONE:
        while len(_DONE) >= _RUNS_REMEMBERED:
            _DONE.pop(next(iter(_DONE)))
        _DONE[step.run_id] = {}
    return _DONE[step.run_id]


def _digest(*parts: t.Any) -> str:
    """A key for ``_DONE`` that does not keep credentials in memory as plain text."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
