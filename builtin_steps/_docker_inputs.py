"""What the docker steps check and derive from their arguments before any work: the image reference
grammar, tags, build options, credentials, and the Dockerfile ``dockerfile: auto`` generates.

Part of ``builtin_steps.docker``; like it, imports only the standard library and the step API.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shlex
import sys
import tempfile
import typing as t
from pathlib import Path

from stepengine.step_api import StepError, mask

# Reference grammar of the distribution spec (github.com/distribution/reference, "grammar").
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_NAME_MAX = 255

#: build options stepengine sets itself, or that make no sense for a step (contexts come from ``path``)
_RESERVED_BUILD_KWARGS = {"dockerfile", "decode", "tag", "fileobj", "custom_context", "encoding", "quiet"}


# --------------------------------------------------------------------------- checks (before any work)


def check_image_name(image_name: t.Any, *, tag_allowed: bool = False) -> tuple[str, str | None]:
    """Validate ``image_name``; return it split into repository and tag (a tag only if allowed)."""
    if not isinstance(image_name, str) or not image_name:
        raise StepError(f"image_name must be a non-empty string, got {image_name!r}")
    if "@" in image_name:
        raise StepError(
            f"image_name {image_name!r} includes a digest",
            hint="give the repository only, e.g. `image_name: team/app`",
        )
    repository, tag = image_name, None
    if ":" in image_name.rsplit("/", 1)[-1]:
        repository, _, tag = image_name.rpartition(":")
        if not tag_allowed:
            raise StepError(
                f"image_name {image_name!r} includes a tag",
                hint=f"pass the tag separately: `image_name: {repository}` and `tag: {tag}`",
            )
        check_tags(tag, None)
    if len(repository) > _NAME_MAX or not _NAME_RE.fullmatch(repository):
        raise StepError(
            f"invalid image name {image_name!r}",
            hint="an image name is lowercase letters, digits and separators (. _ __ -) in /-separated parts,"
            " optionally after a registry host[:port]/, e.g. 127.0.0.1:5000/team/app",
        )
    return repository, tag


def check_backend(build_backend: t.Any) -> None:
    if build_backend == "buildx":
        raise StepError(
            "build_backend 'buildx' is not supported by stepengine",
            hint="remove build_backend (the default, docker-py, talks to the engine's API directly)",
        )
    if build_backend != "docker-py":
        raise StepError(f"invalid build_backend {build_backend!r}: expected 'docker-py' or 'buildx'")


def with_default_namespace(image_name: t.Any) -> t.Any:
    """Prefect's rule: a bare name (``app``) goes under ``PREFECT_DEFAULT_DOCKER_BUILD_NAMESPACE`` if set."""
    namespace = os.environ.get("PREFECT_DEFAULT_DOCKER_BUILD_NAMESPACE", "").strip("/")
    if namespace and isinstance(image_name, str) and image_name and "/" not in image_name:
        return f"{namespace}/{image_name}"
    return image_name


def plain_tags(value: t.Any) -> t.Any:
    """YAML reads `tag: 42` as a number: take integers as the tag text (floats stay invalid: 1.10 → 1.1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        return [plain_tags(item) for item in value]
    return value


def check_tags(tag: t.Any, additional_tags: t.Any) -> None:
    if additional_tags is not None and not (
        isinstance(additional_tags, list) and all(isinstance(x, str) for x in additional_tags)
    ):
        raise StepError(f"additional_tags must be a list of strings, got {additional_tags!r}")
    for value in ([tag] if tag is not None else []) + list(additional_tags or []):
        if not isinstance(value, str) or not _TAG_RE.fullmatch(value):
            raise StepError(
                f"invalid tag {value!r}",
                hint=(
                    "a tag is 1 to 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'"
                ),
            )


def check_credentials(credentials: t.Any) -> None:
    if credentials is None:
        return
    if not isinstance(credentials, dict):
        raise StepError(
            "credentials must be a mapping with username, password and registry_url",
            hint='e.g. credentials: "{{ prefect.blocks.docker-registry-credentials.my-registry }}"',
        )
    mask(credentials.get("password"))
    missing = [name for name in ("username", "password") if not credentials.get(name)]
    if missing:
        raise StepError(f"credentials lack {' and '.join(missing)}")


def check_build_kwargs(build_kwargs: dict[str, t.Any]) -> None:
    unsupported = sorted(set(build_kwargs) & _RESERVED_BUILD_KWARGS)
    if unsupported:
        raise StepError(
            f"build option(s) not supported by this step: {', '.join(unsupported)}",
            hint="use the step's own `dockerfile` and `tag`, and `path` for the build context",
        )
    known = _sdk_build_parameters()
    if known is None:  # no SDK: _connect() says so with the install hint
        return
    unknown = sorted(set(build_kwargs) - known)
    if unknown:
        raise StepError(
            f"unknown build option(s): {', '.join(unknown)}",
            hint="options are those of the Docker SDK's build(): "
            + ", ".join(sorted(known - _RESERVED_BUILD_KWARGS)),
        )


def _sdk_build_parameters() -> set[str] | None:
    try:
        from docker.api.build import BuildApiMixin
    except ImportError:
        return None
    return set(inspect.signature(BuildApiMixin.build).parameters) - {"self"}


# --------------------------------------------------------------------------- Dockerfile


def default_base_image() -> str:
    """Prefect's image for the running Python: the installed Prefect's version, else the latest 3.x."""
    from importlib import metadata

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        version = metadata.version("prefect")
    except metadata.PackageNotFoundError:
        version = "3"
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):  # dev and local builds have no published image
        version = version.split(".")[0] if version[:1].isdigit() else "3"
    return f"prefecthq/prefect:{version}-python{python}"


def generate_dockerfile(context: Path, base_image: str) -> str:
    """The Dockerfile ``dockerfile: auto`` builds: requirements first (a cached layer), then the project."""
    folder = f"/opt/prefect/{context.name}/"
    lines = [f"FROM {base_image}"]
    if (context / "requirements.txt").is_file():
        lines.append(_copy_line("requirements.txt", folder + "requirements.txt"))
        lines.append(f"RUN python -m pip install -r {shlex.quote(folder + 'requirements.txt')}")
    lines.append(_copy_line(".", folder))
    lines.append(f"WORKDIR {folder}")
    return "\n".join(lines) + "\n"


def _copy_line(source: str, target: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._/-]+", target):
        return f"COPY {source} {target}"
    return f"COPY {json.dumps([source, target])}"  # the JSON form keeps spaces in folder names


def write_generated_dockerfile(
    context: Path, text: str, persisted: Path | None, cleanup: contextlib.ExitStack
) -> str:
    if persisted is not None:
        try:
            with open(persisted, "x", encoding="utf-8") as handle:  # "x": never replace an existing file
                handle.write(text)
        except FileExistsError:
            raise would_overwrite(persisted) from None
        return os.path.relpath(persisted, context)
    # Outside the project, so nothing in it is ever touched; the SDK adds it to the build context.
    folder = Path(tempfile.mkdtemp(prefix="stepengine-dockerfile-"))
    cleanup.callback(_remove_tree, folder)
    target = folder / "Dockerfile"
    target.write_text(text, encoding="utf-8")
    return str(target)


def would_overwrite(path: Path) -> StepError:
    return StepError(
        f"{path} already exists: refusing to overwrite it with the generated Dockerfile",
        hint="remove it, or set dockerfile_output_path to another file",
    )


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def existing_dockerfile(context: Path, dockerfile: t.Any) -> str:
    if not isinstance(dockerfile, str) or not dockerfile:
        raise StepError(f"dockerfile must be a path or `auto`, got {dockerfile!r}")
    path = Path(dockerfile) if os.path.isabs(dockerfile) else context / dockerfile
    if not path.is_file():
        raise StepError(
            f"Dockerfile not found: {path}",
            hint="set `dockerfile:` to its path relative to the build context, or use `dockerfile: auto`",
        )
    return dockerfile
