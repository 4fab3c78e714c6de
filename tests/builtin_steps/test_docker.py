"""build_docker_image and push_docker_image, against a real dockerd and a real registry on 127.0.0.1.

The engine and registry come from ``testkit/docker_engine.py``. Every build passes
``network_mode="none"`` (the engine runs with ``--bridge=none``; see shared/README.md, network rule).
Tests marked ``docker`` are skipped only when dockerd cannot start on this machine.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from stepengine.builtin_steps import _docker_inputs
from stepengine.builtin_steps.docker import build_docker_image, generate_dockerfile, push_docker_image
from stepengine.step_api import StepError
from tests.fixtures.docker_engine import BUSYBOX_PRELUDE, DockerEngine, DockerRegistry

ROOT = Path(__file__).resolve().parents[2]
HEX_ID = re.compile(r"\b[0-9a-f]{12}\b")
#: the installed console script, as a user runs it (or the same entry point through this Python)
STEPENGINE_CLI = (
    [shutil.which("stepengine")]
    if shutil.which("stepengine")
    else [sys.executable, "-c", "import sys; from stepengine.cli import main; sys.exit(main())"]
)


def _project(
    tmp_path: Path, busybox_context: Path, dockerfile: str, name: str = "project", **files: str
) -> Path:
    """A build context with busybox, ``dockerfile`` as its Dockerfile and ``files`` (name → text)."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy2(busybox_context / "busybox", folder / "busybox")
    (folder / "Dockerfile").write_text(dockerfile)
    for filename, text in files.items():
        (folder / filename.replace("__", ".")).write_text(text)
    return folder


def _run(engine: DockerEngine, image: str, *command: str) -> str:
    client = engine.client()
    try:
        output = client.containers.run(image, list(command), network_mode="none", remove=True)
    finally:
        client.close()
    return output.decode()


def _output(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "stepengine.output"]


@pytest.fixture(autouse=True)
def _output_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Outside a run, ``emit_output`` logs each streamed line to ``stepengine.output``."""
    caplog.set_level(logging.INFO, logger="stepengine.output")
    caplog.set_level(logging.INFO, logger="stepengine.steps")


# --------------------------------------------------------------------------- checks before any work


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"image_name": "Team/App"},
            "invalid image name 'Team/App'\nhint: an image name is lowercase letters, digits and separators"
            " (. _ __ -) in /-separated parts, optionally after a registry host[:port]/, e.g. 127.0.0.1:5000/team/app",
        ),
        (
            {"image_name": "team/app:dev"},
            "image_name 'team/app:dev' includes a tag\nhint: pass the tag separately: `image_name: team/app` and `tag: dev`",
        ),
        (
            {"image_name": "team/app@sha256:abc"},
            "image_name 'team/app@sha256:abc' includes a digest\nhint: give the repository only, e.g. `image_name: team/app`",
        ),
        (
            {"image_name": "team/app", "tag": "-dev"},
            "invalid tag '-dev'\nhint: a tag is 1 to 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'",
        ),
        (
            {"image_name": "team/app", "additional_tags": ["ok", "not ok"]},
            "invalid tag 'not ok'\nhint: a tag is 1 to 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'",
        ),
        (
            {"image_name": "team/app", "additional_tags": "v1"},
            "additional_tags must be a list of strings, got 'v1'",
        ),
        (
            {"image_name": "team/app", "tag": 1.10},  # YAML `tag: 1.10` is the float 1.1: refuse to guess
            "invalid tag 1.1\nhint: a tag is 1 to 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'",
        ),
        (
            {"image_name": "team/app", "base_image": "python:3.11"},
            "base_image applies only to `dockerfile: auto`\nhint: set the base image in your Dockerfile",
        ),
        (
            {"image_name": "team/app", "fileobj": "x"},
            "build option(s) not supported by this step: fileobj\nhint: use the step's own `dockerfile` and `tag`,"
            " and `path` for the build context",
        ),
        (
            {"image_name": "team/app", "credentials": "user:pass"},
            "credentials must be a mapping with username, password and registry_url\n"
            'hint: e.g. credentials: "{{ prefect.blocks.docker-registry-credentials.my-registry }}"',
        ),
        ({"image_name": "team/app", "credentials": {"username": "u"}}, "credentials lack password"),
        (
            {"image_name": "team/app", "build_backend": "buildx"},
            "build_backend 'buildx' is not supported by stepengine\n"
            "hint: remove build_backend (the default, docker-py, talks to the engine's API directly)",
        ),
        (
            {"image_name": "team/app", "build_backend": "kaniko"},
            "invalid build_backend 'kaniko': expected 'docker-py' or 'buildx'",
        ),
    ],
)
def test_build_rejects_bad_input_before_any_work(
    kwargs: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invalid names, tags and options fail with one clear message, before the engine is contacted."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StepError) as caught:
        build_docker_image(**kwargs)
    assert str(caught.value) == message


def test_unknown_build_option_lists_the_known_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StepError) as caught:
        build_docker_image(image_name="team/app", network="none")
    assert str(caught.value).startswith(
        "unknown build option(s): network\nhint: options are those of the Docker SDK's build(): "
    )
    assert "network_mode" in str(caught.value) and "buildargs" in str(caught.value)


def test_push_rejects_tag_in_both_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(StepError) as caught:
        push_docker_image(image_name="team/app:dev", tag="prod")
    assert str(caught.value) == (
        "image_name 'team/app:dev' includes a tag\nhint: pass the tag separately: `image_name: team/app` and `tag: dev`"
    )


def test_no_engine_gives_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing listening at DOCKER_HOST, the error names the address and how to point at an engine."""
    socket = tmp_path / "no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    expected = (
        f"cannot connect to the Docker engine at unix://{socket} (No such file or directory)\n"
        "hint: start Docker, or set DOCKER_HOST to the engine's address"
        " (e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375)"
    )
    with pytest.raises(StepError) as caught:
        build_docker_image(image_name="team/app", tag="x", ignore_cache=True)
    assert str(caught.value) == expected
    with pytest.raises(StepError) as caught:
        push_docker_image(image_name="team/app", tag="x", ignore_cache=True)
    assert str(caught.value) == expected
    with pytest.raises(StepError) as caught:  # nothing is generated before the engine answers
        build_docker_image(image_name="team/app", dockerfile="auto", persist_dockerfile=True, base_image="b")
    assert str(caught.value) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]


def test_missing_dockerfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StepError) as caught:
        build_docker_image(image_name="team/app", dockerfile="docker/Dockerfile.prod")
    assert str(caught.value) == (
        f"Dockerfile not found: {tmp_path}/docker/Dockerfile.prod\n"
        "hint: set `dockerfile:` to its path relative to the build context, or use `dockerfile: auto`"
    )


def test_generated_dockerfile_installs_requirements_before_copying_the_project(tmp_path: Path) -> None:
    project = tmp_path / "my-flows"
    project.mkdir()
    assert generate_dockerfile(project, "python:3.11-slim") == (
        "FROM python:3.11-slim\nCOPY . /opt/prefect/my-flows/\nWORKDIR /opt/prefect/my-flows/\n"
    )
    (project / "requirements.txt").write_text("requests\n")
    assert generate_dockerfile(project, "python:3.11-slim") == (
        "FROM python:3.11-slim\n"
        "COPY requirements.txt /opt/prefect/my-flows/requirements.txt\n"
        "RUN python -m pip install -r /opt/prefect/my-flows/requirements.txt\n"
        "COPY . /opt/prefect/my-flows/\n"
        "WORKDIR /opt/prefect/my-flows/\n"
    )
    spaced = tmp_path / "my flows"
    spaced.mkdir()
    (spaced / "requirements.txt").write_text("")
    assert generate_dockerfile(spaced, "base") == (
        "FROM base\n"
        'COPY ["requirements.txt", "/opt/prefect/my flows/requirements.txt"]\n'
        "RUN python -m pip install -r '/opt/prefect/my flows/requirements.txt'\n"
        'COPY [".", "/opt/prefect/my flows/"]\n'
        "WORKDIR /opt/prefect/my flows/\n"
    )


def test_default_base_image_matches_running_python() -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert re.fullmatch(
        rf"prefecthq/prefect:[0-9][0-9.]*-python{re.escape(python)}", _docker_inputs.default_base_image()
    )


def test_importing_the_steps_does_not_import_the_docker_sdk() -> None:
    code = "import stepengine.builtin_steps.docker, sys; print('docker' in sys.modules, 'requests' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "False False"


# --------------------------------------------------------------------------- builds on the real engine


@pytest.mark.docker
def test_engine_follows_the_network_rule(docker_host: DockerEngine) -> None:
    """The fixture's dockerd has no bridge network, and no docker0 or private 172.17 address exists."""
    client = docker_host.client()
    try:
        assert sorted(n.name for n in client.networks.list()) == ["host", "none"]
    finally:
        client.close()
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert "docker0" not in addresses and "172.17." not in addresses


@pytest.mark.docker
def test_build_context_is_streamed_not_held_in_memory(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path
) -> None:
    """A 256 MB file in the context does not grow the step's peak memory by anything like 256 MB."""
    project = _project(tmp_path, busybox_context, "FROM scratch\nCOPY busybox /bin/busybox\n")
    with open(project / "big.bin", "wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(256):
            handle.write(block)
    code = (
        "import resource, sys\n"
        "import docker\n"  # the SDK's own import counted in the baseline
        "from stepengine.builtin_steps.docker import build_docker_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "build_docker_image(image_name='stepengine-tests/big-context', tag='1', path=sys.argv[1], network_mode='none')\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(project)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, "DOCKER_HOST": docker_host.host},
    )
    grown_mb = int(result.stdout.strip().splitlines()[-1])
    assert grown_mb < 64, f"peak memory grew by {grown_mb} MB for a 256 MB build context"


@pytest.mark.docker
def test_build_from_scratch_with_additional_tags(
    docker_host: DockerEngine,
    busybox_context: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A FROM scratch + busybox image is built, tagged three ways, and its build output streamed."""
    project = _project(
        tmp_path,
        busybox_context,
        BUSYBOX_PRELUDE + "COPY . /app/\nRUN echo built > /built\n",
        hello__txt="hi\n",
        secret__env="TOKEN=1\n",
        __dockerignore="secret.env\n",
    )
    monkeypatch.chdir(project)
    result = build_docker_image(
        image_name="stepengine-tests/scratch", tag="dev", additional_tags=["v1", 2], network_mode="none"
    )  # YAML reads `- 2` as an integer: it is the tag "2"
    client = docker_host.client()
    try:
        image_id = client.images.get("stepengine-tests/scratch:dev").id
        assert {client.images.get(f"stepengine-tests/scratch:{t}").id for t in ("v1", "2")} == {image_id}
    finally:
        client.close()
    assert result == {
        "image_name": "stepengine-tests/scratch",
        "tag": "dev",
        "image": "stepengine-tests/scratch:dev",
        "image_id": image_id,
        "additional_tags": ["v1", "2"],
    }
    assert _run(docker_host, result["image"], "sh", "-c", "cat /built; ls -A /app") == (
        "built\n.dockerignore\nDockerfile\nbusybox\nhello.txt\n"
    )  # secret.env stayed out: .dockerignore is respected
    lines = _output(caplog)
    assert lines[0] == "Step 1/5 : FROM scratch"
    assert "Step 5/5 : RUN echo built > /built" in lines


@pytest.mark.docker
def test_build_kwargs_pass_through_and_default_tag(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path
) -> None:
    """buildargs, labels and target reach the engine; the default tag is a UTC timestamp slug."""
    dockerfile = (
        "FROM scratch AS greeter\nCOPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "ARG GREETING=unset\nRUN echo $GREETING > /greeting\n"
        "FROM scratch AS final\nCOPY busybox /bin/busybox\n"
    )
    project = _project(tmp_path, busybox_context, dockerfile)
    result = build_docker_image(
        image_name="stepengine-tests/kwargs",
        path=str(project),
        buildargs={"GREETING": "hello from buildargs"},
        labels={"org.example.team": "data"},
        target="greeter",
        network_mode="none",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dt\d\d-\d\d-\d\d-\d{6}-00-00", result["tag"]), result["tag"]
    assert _run(docker_host, result["image"], "cat", "/greeting") == "hello from buildargs\n"
    client = docker_host.client()
    try:
        assert client.images.get(result["image"]).labels == {"org.example.team": "data"}
    finally:
        client.close()


@pytest.mark.docker
def test_bare_name_goes_under_the_default_namespace(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect's PREFECT_DEFAULT_DOCKER_BUILD_NAMESPACE applies to a name without a '/'."""
    monkeypatch.setenv("PREFECT_DEFAULT_DOCKER_BUILD_NAMESPACE", "stepengine-tests/ns")
    project = _project(tmp_path, busybox_context, "FROM scratch\nCOPY busybox /bin/busybox\n")
    result = build_docker_image(image_name="app", tag="1", path=str(project), network_mode="none")
    assert (result["image_name"], result["image"]) == ("stepengine-tests/ns/app", "stepengine-tests/ns/app:1")
    other = build_docker_image(image_name="team/app", tag="1", path=str(project), network_mode="none")
    assert other["image"] == "team/app:1"  # a name with a namespace is left alone


@pytest.mark.docker
def test_base_image_that_cannot_be_pulled(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pull` defaults to true (as in Prefect): a local-only base image then fails with a hint to use
    `pull: false`. The engine's reason varies with the network (DNS failure, access denied), so only
    the rest of the message is compared."""
    base = build_docker_image(
        image_name="stepengine-tests/local-only",
        tag="1",
        network_mode="none",
        path=str(_project(tmp_path, busybox_context, "FROM scratch\nCOPY busybox /bin/busybox\n")),
    )
    project = tmp_path / "needs-pull"
    project.mkdir()
    monkeypatch.chdir(project)
    with pytest.raises(StepError) as caught:
        build_docker_image(
            image_name="stepengine-tests/needs-pull",
            tag="1",
            dockerfile="auto",
            base_image=base["image"],
            network_mode="none",
        )
    first, *_ = str(caught.value).split("\n")
    assert (
        first
        == "docker build of stepengine-tests/needs-pull failed at Step 1/3 : FROM stepengine-tests/local-only:1"
    )
    assert str(caught.value).endswith(
        "last output:\n    Step 1/3 : FROM stepengine-tests/local-only:1\n"
        "hint: the engine could not get the base image; if it exists only locally, pass `pull: false`"
    )


@pytest.mark.docker
def test_build_error_names_the_failing_instruction(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dockerfile = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"]\n'
    monkeypatch.chdir(_project(tmp_path, busybox_context, dockerfile))
    with pytest.raises(StepError) as caught:
        build_docker_image(image_name="stepengine-tests/broken", tag="x", network_mode="none", nocache=True)
    assert HEX_ID.sub("<id>", str(caught.value)) == (
        'docker build of stepengine-tests/broken failed at Step 3/3 : RUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"]\n'
        "The command '/bin/busybox sh -c echo about to fail; exit 3' returned a non-zero code: 3\n"
        "last output:\n"
        "    Step 1/3 : FROM scratch\n"
        "     ---> \n"
        "    Step 2/3 : COPY busybox /bin/busybox\n"
        "     ---> <id>\n"
        '    Step 3/3 : RUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"]\n'
        "     ---> Running in <id>\n"
        "    about to fail"
    )


@pytest.mark.docker
def test_interrupted_build_stops_in_the_engine(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt (here SIGALRM, as the runner's step timeout uses) during a build returns at once,
    and the engine stops the build: no container is left running, no generated Dockerfile left over."""

    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    # a base image whose `python` only sleeps, so the generated `RUN python -m pip ...` takes a minute
    sleepy_python = "RUN printf '#!/bin/sh\\nexec sleep 60\\n' > /bin/python && chmod +x /bin/python\n"
    base = build_docker_image(
        image_name="stepengine-tests/busybox-base",
        tag="sleepy",
        network_mode="none",
        path=str(_project(tmp_path, busybox_context, BUSYBOX_PRELUDE + sleepy_python)),
    )
    project = tmp_path / "slow"
    project.mkdir()
    (project / "requirements.txt").write_text("anything\n")
    monkeypatch.chdir(project)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the generated Dockerfile goes
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            build_docker_image(
                image_name="stepengine-tests/slow",
                tag="1",
                dockerfile="auto",
                base_image=base["image"],
                pull=False,
                network_mode="none",
            )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 5
    assert not list(tmp_path.glob("stepengine-dockerfile-*"))
    client = docker_host.client()
    try:
        deadline = time.monotonic() + 15
        while client.containers.list() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.containers.list() == []
    finally:
        client.close()


@pytest.mark.docker
def test_same_build_twice_runs_once(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Idempotence: identical inputs reuse the first result; ignore_cache builds again."""
    project = _project(tmp_path, busybox_context, "FROM scratch\nCOPY busybox /bin/busybox\n")
    kwargs = dict(image_name="stepengine-tests/once", tag="t", path=str(project), network_mode="none")
    first = build_docker_image(**kwargs)
    built_lines = len(_output(caplog))
    assert built_lines > 0
    assert build_docker_image(**kwargs) == first
    assert len(_output(caplog)) == built_lines  # nothing was built the second time
    assert "image stepengine-tests/once was already built in this run with the same inputs" in caplog.messages
    assert build_docker_image(**kwargs, ignore_cache=True) == first  # same content: same image ID
    assert len(_output(caplog)) > built_lines


@pytest.mark.docker
def test_dockerfile_auto_builds_a_python_project(
    docker_host: DockerEngine,
    python_base_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`dockerfile: auto` on a locally imported Python image (this machine's own Python and pip).

    requirements.txt names only ``pip``, which the base image has, so the generated ``RUN python -m pip
    install -r ...`` really runs pip without needing any network. The project's own Dockerfile is
    left untouched and nothing generated stays behind in the project.
    """
    project = tmp_path / "my_flows"
    project.mkdir()
    (project / "requirements.txt").write_text("pip\n")
    (project / "flow.py").write_text("print('flow ran')\n")
    (project / "Dockerfile").write_text("FROM scratch\n# the user's own, never overwritten\n")
    before = {p.name: p.read_text() for p in project.iterdir()}
    monkeypatch.chdir(project)
    result = build_docker_image(
        image_name="stepengine-tests/auto",
        tag="dev",
        dockerfile="auto",
        base_image=python_base_image,
        pull=False,
        network_mode="none",
    )
    assert {p.name: p.read_text() for p in project.iterdir()} == before
    out = "\n".join(_output(caplog))
    assert f"Step 1/5 : FROM {python_base_image}" in out
    assert "Step 3/5 : RUN python -m pip install -r /opt/prefect/my_flows/requirements.txt" in out
    assert "Requirement already satisfied: pip" in out
    listing = _run(
        docker_host,
        result["image"],
        "python",
        "-c",
        "import os, runpy; print(os.getcwd()); runpy.run_path('flow.py')",
    )
    assert listing == "/opt/prefect/my_flows\nflow ran\n"


@pytest.mark.docker
def test_dockerfile_auto_persisted_and_never_overwritten(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = build_docker_image(
        image_name="stepengine-tests/busybox-base",
        tag="1",
        path=str(_project(tmp_path, busybox_context, BUSYBOX_PRELUDE)),
        network_mode="none",
    )
    project = tmp_path / "app"
    project.mkdir()
    (project / "main.txt").write_text("x")
    monkeypatch.chdir(project)
    kwargs = dict(
        image_name="stepengine-tests/persisted",
        tag="1",
        dockerfile="auto",
        base_image=base["image"],
        persist_dockerfile=True,
        dockerfile_output_path="Dockerfile.generated",
        pull=False,
        network_mode="none",
    )
    build_docker_image(**kwargs)
    generated = (project / "Dockerfile.generated").read_text()
    assert generated == f"FROM {base['image']}\nCOPY . /opt/prefect/app/\nWORKDIR /opt/prefect/app/\n"
    with pytest.raises(StepError) as caught:
        build_docker_image(**kwargs, ignore_cache=True)
    assert str(caught.value) == (
        f"{project}/Dockerfile.generated already exists: refusing to overwrite it with the generated Dockerfile\n"
        "hint: remove it, or set dockerfile_output_path to another file"
    )
    assert (project / "Dockerfile.generated").read_text() == generated


# --------------------------------------------------------------------------- pushes to the real registry


@pytest.fixture()
def scratch_image(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    """Build a tiny image for the registry under a per-test repository name."""

    def build(registry: DockerRegistry, **kwargs: object) -> dict:
        project = _project(
            tmp_path,
            busybox_context,
            f"FROM scratch\nCOPY busybox /bin/busybox\nLABEL test={request.node.name}\n",
        )
        name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
        return build_docker_image(
            image_name=f"{registry.address}/tests/{name}", path=str(project), network_mode="none", **kwargs
        )

    return build


@pytest.mark.docker
def test_push_with_credentials(
    docker_host: DockerEngine, docker_registry: DockerRegistry, scratch_image
) -> None:
    """Every tag arrives in the registry, and the image pulls back from it."""
    built = scratch_image(docker_registry, tag="dev", additional_tags=["v1"])
    result = push_docker_image(
        image_name=built["image_name"],
        tag="dev",
        additional_tags=["v1"],
        credentials=docker_registry.credentials,
    )
    assert result == {
        "image_name": built["image_name"],
        "tag": "dev",
        "image": f"{built['image_name']}:dev",
        "additional_tags": ["v1"],
    }
    repository = built["image_name"].split("/", 1)[1]
    assert docker_registry.tags(repository) == ["dev", "v1"]
    client = docker_host.client()
    try:
        client.images.remove(built["image"])
        auth = {"username": docker_registry.username, "password": docker_registry.password}
        assert client.images.pull(built["image_name"], tag="dev", auth_config=auth).id == built["image_id"]
    finally:
        client.close()


@pytest.mark.docker
def test_push_with_wrong_password_fails_and_never_shows_it(
    docker_host: DockerEngine,
    docker_registry: DockerRegistry,
    scratch_image,
    caplog: pytest.LogCaptureFixture,
) -> None:
    built = scratch_image(docker_registry, tag="dev")
    wrong = "wrong-" + docker_registry.password
    with pytest.raises(StepError) as caught:
        push_docker_image(
            image_name=built["image_name"],
            tag="dev",
            credentials={**docker_registry.credentials, "password": wrong},
        )
    assert str(caught.value) == (
        f"docker login to {docker_registry.address} as {docker_registry.username} failed:"
        f" login attempt to http://{docker_registry.address}/v2/ failed with status: 401 Unauthorized\n"
        "hint: check the registry credentials (username, password, registry_url)"
    )
    assert caught.value.__cause__ is None  # the SDK's error (and its request headers) is not chained
    seen = "\n".join([str(caught.value), repr(caught.value.args), caplog.text])
    for form in (wrong, base64.b64encode(f"{docker_registry.username}:{wrong}".encode()).decode()):
        assert form not in seen
    assert docker_registry.tags(built["image_name"].split("/", 1)[1]) == []


@pytest.mark.docker
def test_push_without_credentials_raises_from_the_stream(
    docker_host: DockerEngine, docker_registry: DockerRegistry, scratch_image
) -> None:
    """The SDK's push does not raise; the step reads the stream's error and does."""
    built = scratch_image(docker_registry, tag="dev")
    with pytest.raises(StepError) as caught:
        push_docker_image(image_name=built["image_name"], tag="dev")
    assert str(caught.value) == (
        f"docker push of {built['image']} failed: no basic auth credentials\n"
        "hint: pass `credentials` (username, password, registry_url) for the registry in image_name"
    )


@pytest.mark.docker
def test_push_of_a_missing_image(docker_host: DockerEngine, docker_registry: DockerRegistry) -> None:
    with pytest.raises(StepError) as caught:
        push_docker_image(image_name=f"{docker_registry.address}/tests/never-built", tag="dev")
    assert str(caught.value) == (
        f"cannot push {docker_registry.address}/tests/never-built:dev: no such image in the Docker engine\n"
        "hint: build it first (build_docker_image), or check image_name and tag"
    )


@pytest.mark.docker
def test_build_with_push_true_and_push_of_build_image(
    docker_host: DockerEngine,
    docker_registry: DockerRegistry,
    scratch_image,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`push: true` pushes every tag after the build; pushing `{{ build.image }}` (name:tag) works too,
    and the same push twice runs once."""
    built = scratch_image(
        docker_registry, tag="dev", additional_tags=["v2"], push=True, credentials=docker_registry.credentials
    )
    repository = built["image_name"].split("/", 1)[1]
    assert docker_registry.tags(repository) == ["dev", "v2"]

    client = docker_host.client()
    try:
        client.images.get(built["image"]).tag(built["image_name"], "v3")
    finally:
        client.close()
    image = f"{built['image_name']}:v3"
    pushed = push_docker_image(image_name=image, credentials=docker_registry.credentials)
    assert pushed == {"image_name": image, "tag": "v3", "image": image, "additional_tags": []}
    assert docker_registry.tags(repository) == ["dev", "v2", "v3"]
    lines = len(_output(caplog))
    assert push_docker_image(image_name=image, credentials=docker_registry.credentials) == pushed
    assert len(_output(caplog)) == lines
    assert "image " + image + " was already pushed in this run with the same inputs" in caplog.messages


# --------------------------------------------------------------------------- a real prefect.yaml, end to end

E2E_PREFECT_YAML = """\
name: docker-e2e
prefect-version: 3.0.0

build:
  - prefect_docker.deployments.steps.build_docker_image:
      id: build_image
      requires: prefect-docker>=0.3.1
      image_name: "{{ registry }}/e2e/{{ app }}"
      tag: dev
      additional_tags: ["{{ $E2E_EXTRA_TAG }}"]
      dockerfile: Dockerfile
      network_mode: none

push:
  - prefect_docker.deployments.steps.push_docker_image:
      id: push_image
      requires: prefect-docker>=0.3.1
      image_name: "{{ build_image.image }}"
      credentials: "{{ prefect.blocks.docker-registry-credentials.test-registry }}"

deployments:
  - name: app
    entrypoint: flows.py:hello
    work_pool:
      name: docker-pool
      job_variables:
        image: "{{ build_image.image }}"
"""


def _e2e_project(tmp_path: Path, busybox_context: Path) -> Path:
    project = _project(
        tmp_path, busybox_context, "FROM scratch\nCOPY busybox /bin/busybox\nCOPY flows.py /flows/\n"
    )
    (project / "flows.py").write_text("def hello():\n    return 'hi'\n")
    (project / "prefect.yaml").write_text(E2E_PREFECT_YAML)
    return project


@pytest.mark.docker
def test_prefect_yaml_build_then_push_chained(
    docker_host: DockerEngine,
    docker_registry: DockerRegistry,
    busybox_context: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """build → push chained through ``{{ build_image.image }}``, credentials from a block and a tag
    from the environment; no event shows the password."""
    import stepengine

    project = _e2e_project(tmp_path, busybox_context)
    monkeypatch.chdir(project)
    monkeypatch.setenv("E2E_EXTRA_TAG", "v7")
    events: list[stepengine.Event] = []
    config = stepengine.load("prefect.yaml")
    outputs = stepengine.run(
        config,
        values={"registry": docker_registry.address, "app": "api"},
        resolver=stepengine.InMemoryResolver(
            blocks={"docker-registry-credentials/test-registry": docker_registry.credentials}
        ),
        on_event=events.append,
    )
    image = f"{docker_registry.address}/e2e/api:dev"
    assert (outputs["build_image"]["image"], outputs["build_image"]["additional_tags"]) == (image, ["v7"])
    assert outputs["push_image"] == {"image_name": image, "tag": "dev", "image": image, "additional_tags": []}
    assert docker_registry.tags("e2e/api") == ["dev"]  # `{{ build_image.image }}` pushes that one tag
    assert [e.kind for e in events if e.kind != "step.output"] == [
        "run.started",
        "step.started",
        "step.finished",
        "step.started",
        "step.finished",
        "run.finished",
    ]
    assert any(e.message == "Step 1/3 : FROM scratch" for e in events if e.kind == "step.output")
    assert docker_registry.password not in repr(events)


@pytest.mark.docker
def test_cli_deploy_builds_pushes_and_resolves_the_image(
    docker_host: DockerEngine, docker_registry: DockerRegistry, busybox_context: Path, tmp_path: Path
) -> None:
    """`stepengine deploy -n app` in a subprocess: build and push run, and the spec's
    ``job_variables.image`` is the pushed image. A wrong password fails with exit 1 and is shown nowhere."""
    import json

    project = _e2e_project(tmp_path, busybox_context)
    values = project / "values.yaml"

    def cli(password: str, *command: str) -> subprocess.CompletedProcess[str]:
        values.write_text(
            "blocks:\n  docker-registry-credentials/test-registry:\n"
            f"    username: {docker_registry.username}\n    password: {password}\n"
            f"    registry_url: {docker_registry.address}\n"
        )
        env = {**os.environ, "DOCKER_HOST": docker_host.host, "E2E_EXTRA_TAG": "v8"}
        return subprocess.run(
            [
                *STEPENGINE_CLI,
                *command,
                "--values",
                str(values),
                "--var",
                f"registry={docker_registry.address}",
                "--var",
                "app=cli",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    wrong = "not-" + docker_registry.password
    failed = cli(wrong, "run", "prefect.yaml", "--section", "build", "--section", "push")
    assert failed.returncode == 1, failed.stderr
    assert (
        f"push[0] (push_image: push_docker_image) failed: docker login to {docker_registry.address} as"
        f" {docker_registry.username} failed: login attempt to http://{docker_registry.address}/v2/ failed"
        " with status: 401 Unauthorized\nhint: check the registry credentials (username, password, registry_url)"
    ) in failed.stderr
    assert wrong not in failed.stdout + failed.stderr

    done = cli(docker_registry.password, "deploy", "-n", "app")
    assert done.returncode == 0, done.stderr
    spec = json.loads(done.stdout)
    image = f"{docker_registry.address}/e2e/cli:dev"
    assert spec["job_variables"] == {"image": image}
    assert (spec["name"], spec["work_pool_name"]) == ("app", "docker-pool")
    assert docker_registry.tags("e2e/cli") == ["dev"]
    assert docker_registry.password not in done.stdout + done.stderr


@pytest.mark.docker
def test_same_build_runs_once_per_run(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical build steps in one run build once; the next run builds again."""
    import stepengine

    step = (
        "  - prefect_docker.deployments.steps.build_docker_image:\n"
        "      id: {id}\n      image_name: stepengine-tests/per-run\n      tag: one\n      network_mode: none\n"
    )
    project = _project(tmp_path, busybox_context, "FROM scratch\nCOPY busybox /bin/busybox\n")
    (project / "prefect.yaml").write_text("build:\n" + step.format(id="first") + step.format(id="again"))
    monkeypatch.chdir(project)

    def builds_in_one_run() -> list[str]:
        events: list[stepengine.Event] = []
        outputs = stepengine.run("prefect.yaml", on_event=events.append)
        assert outputs["first"] == outputs["again"]
        return [
            e.step_id for e in events if e.kind == "step.output" and e.message == "Step 1/2 : FROM scratch"
        ]

    assert builds_in_one_run() == ["first"]
    assert builds_in_one_run() == ["first"]


@pytest.mark.docker
def test_build_output_is_masked(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret block passed as a build arg and echoed by the build never reaches an event or error."""
    import stepengine

    token = "tok-" + os.urandom(8).hex()
    dockerfile = (
        BUSYBOX_PRELUDE + 'ARG TOKEN\nRUN echo "token is $TOKEN"\nRUN echo "again: $TOKEN" && exit 4\n'
    )
    project = _project(tmp_path, busybox_context, dockerfile)
    (project / "prefect.yaml").write_text(
        "build:\n  - prefect_docker.deployments.steps.build_docker_image:\n"
        "      image_name: stepengine-tests/masked\n      tag: one\n      network_mode: none\n"
        '      buildargs: {TOKEN: "{{ prefect.blocks.secret.build-token }}"}\n'
    )
    monkeypatch.chdir(project)
    events: list[stepengine.Event] = []
    with pytest.raises(stepengine.StepExecutionError) as caught:
        stepengine.run(
            "prefect.yaml",
            resolver=stepengine.InMemoryResolver(blocks={"secret/build-token": token}),
            on_event=events.append,
        )
    lines = [e.message for e in events if e.kind == "step.output"]
    assert "token is ***" in lines and "again: ***" in lines
    # the subscriber got the output as it streamed: the error does not repeat it (issue 15)
    assert "last output" not in str(caught.value)
    assert token not in repr(events) + str(caught.value)


@pytest.mark.docker
def test_a_failed_build_through_the_cli_prints_its_output_once_and_without_colour_codes(
    docker_host: DockerEngine, busybox_context: Path, tmp_path: Path
) -> None:
    """issue 15: the streamed output was repeated as "last output" in the error, and colour codes
    reached a pipe (and NO_COLOR) as they were."""
    script = r"printf '\033[31mcoloured line\033[0m\n'; echo about to fail; exit 3"
    run = json.dumps(["/bin/busybox", "sh", "-c", script])
    project = _project(tmp_path, busybox_context, f"FROM scratch\nCOPY busybox /bin/busybox\nRUN {run}\n")
    (project / "prefect.yaml").write_text(
        "build:\n  - prefect_docker.deployments.steps.build_docker_image:\n"
        "      image_name: stepengine-tests/colours\n      tag: x\n      network_mode: none\n      nocache: true\n"
    )
    for env in ({}, {"NO_COLOR": "1"}):
        result = subprocess.run(
            [*STEPENGINE_CLI, "run"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
        )
        assert result.returncode == 1, result.stderr
        text = result.stdout + result.stderr
        assert "\x1b" not in text
        assert "coloured line" in result.stdout.splitlines()
        # streamed on stdout; the error does not repeat it
        assert [line.strip() for line in text.splitlines()].count("about to fail") == 1
        assert "The command '/bin/busybox sh -c" in result.stderr and "last output" not in result.stderr
