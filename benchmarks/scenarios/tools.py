"""Scenarios around other tools: pip_install_requirements, docker build + push, deploy to a Prefect server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import typing as t
import zipfile
from pathlib import Path

from benchmarks.environments import (
    ensure_stepengine_docker_venv,
    log,
    uv_command,
    venv_python,
    versions,
    works,
)
from benchmarks.measurement import Command, Scenario, Skip
from benchmarks.scenarios.context import Context, write
from testkit.docker_engine import BUSYBOX, EngineUnavailable, start_docker_engine, start_docker_registry
from testkit.prefect_server import prefect_venv, start_prefect_server


def _wheel(directory: Path, name: str) -> Path:
    """A minimal pure-Python wheel, written directly (building 10 with pip would take ~20 s)."""
    dist = f"{name}-1.0"
    path = directory / f"{name}-1.0-py3-none-any.whl"
    files = {
        f"{name}.py": "VALUE = 1\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: stepengine-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{n},," for n in files] + [f"{dist}.dist-info/RECORD,,"]
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def scenario_pip(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    work = ctx.fresh_dir("pip")
    wheels = work / "wheels"
    wheels.mkdir()
    count = 2 if ctx.tiny else 10
    names = [f"stepengine_bench_pkg{i}" for i in range(count)]
    for name in names:
        _wheel(wheels, name)
    write(work / "requirements.txt", f"--no-index\n--find-links {wheels}\n" + "\n".join(names) + "\n")
    yaml_file = write(
        work / "prefect.yaml",
        f"pull:\n  - prefect.deployments.steps.pip_install_requirements:\n      directory: {work}\n",
    )
    uv_file = write(work / "uv.yaml", yaml_file.read_text() + "      installer: uv\n")
    pip_file = write(work / "pip.yaml", yaml_file.read_text() + "      installer: pip\n")
    uv = uv_command()
    pip_env = {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_FIND_LINKS": "",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
    }

    def site_packages(python: Path) -> str:
        """The engine interpreter's import path beyond the standard library (.pth entries included)."""
        code = (
            "import os, sys, sysconfig; std = {sysconfig.get_paths()[k] for k in ('stdlib', 'platstdlib')}; "
            "print(os.pathsep.join(p for p in sys.path[1:] if p and p not in std and 'lib-dynload' not in p "
            "and not p.endswith('.zip')))"
        )
        return subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()

    def make(engine: str) -> t.Callable[[], Command]:
        venv = work / f"venv-{engine}"

        def fresh_venv() -> None:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([*uv, "venv", "-q", "--seed", "--python", sys.executable, str(venv)], check=True)

        def factory() -> Command:
            python = venv_python(venv)
            if engine == "uv pip install":
                command = Command(
                    [*uv, "pip", "install", "-q", "--python", str(python), "-r", "requirements.txt"],
                    work,
                    {**ctx.base_env, **pip_env},
                )
            elif engine.startswith("stepengine"):
                env = {**pip_env, "PYTHONPATH": site_packages(ctx.stepengine_python)}
                source = uv_file if "uv" in engine else pip_file if "installer: pip" in engine else yaml_file
                command = ctx.stepengine(source, "pull", work, work / "home", python=python, env=env)
            else:
                assert ctx.prefect_python is not None
                env = {**pip_env, "PYTHONPATH": site_packages(ctx.prefect_python)}
                command = ctx.prefect(yaml_file, "pull", work, python=python, env=env)
            command.before = fresh_venv
            return command

        return factory

    commands = ctx.pair(make("stepengine"), make("prefect"))
    if "stepengine" in ctx.engines:
        commands["stepengine, installer: pip"] = make("stepengine, installer: pip")
    if "stepengine" in ctx.engines and shutil.which("uv"):
        commands["stepengine, installer: uv"] = make("stepengine, installer: uv")
    if "floor" in ctx.engines:
        commands["uv pip install"] = make("uv pip install")
    note = (
        f"`pip_install_requirements` of {count} local wheels (`--no-index --find-links`) into a fresh "
        "venv per run (the engine runs with that venv's interpreter and its own packages on "
        "`PYTHONPATH`, since both steps install into the running interpreter). Prefect runs "
        "`python -m pip`; stepengine's default `installer: auto` runs uv, byte-compiling as pip does, "
        "when every pip setting in effect (pip.conf, `PIP_*`) has a uv equivalent, pip otherwise. `stepengine, installer: pip` is the same file plus `installer: pip` "
        "(Prefect's way, also `STEPENGINE_PIP_INSTALLER=pip`); `stepengine, installer: uv` plus "
        "`installer: uv` (uv with its own settings, no byte-compiling)."
    )
    return [Scenario("pip", f"6. pip_install_requirements, {count} wheels", commands, target=5.0, note=note)]


#: the same two steps for both engines (Prefect's step names; stepengine registers them as built-ins)
DOCKER_STEPS = """\
build:
  - prefect_docker.deployments.steps.build_docker_image:
      id: build_image
      image_name: {registry}/bench/{engine}
      tag: bench
      dockerfile: Dockerfile
      network_mode: none
      pull: false
  - prefect_docker.deployments.steps.push_docker_image:
      image_name: "{{{{ build_image.image_name }}}}"
      tag: "{{{{ build_image.tag }}}}"
      credentials:
        username: {username}
        password: {password}
        registry_url: {registry}
"""


def scenario_docker(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    # the cheap checks first: nothing is installed or started for a scenario that cannot run
    missing = [tool for tool in ("dockerd", "docker-registry", "htpasswd") if shutil.which(tool) is None]
    if missing:
        raise Skip(f"{', '.join(missing)} not installed (.ci/install.d/50-docker.sh installs them)")
    if not Path(BUSYBOX).exists():
        raise Skip(f"{BUSYBOX} (busybox-static) is not installed: the image is FROM scratch + busybox")
    if "stepengine" not in ctx.engines and not ("prefect" in ctx.engines and ctx.prefect_python):
        raise Skip("neither stepengine nor Prefect is among the engines")
    python = ctx.stepengine_python
    if "stepengine" in ctx.engines:
        if not ctx.stepengine_given:
            python = ensure_stepengine_docker_venv()
        if not works(python, "import docker"):
            raise Skip(f"the docker SDK (stepengine's `docker` extra) is not installed for {python}")
    if (
        "prefect" in ctx.engines
        and ctx.prefect_python
        and not works(ctx.prefect_python, "import prefect_docker")
    ):
        raise Skip("prefect-docker is not installed in the Prefect venv")
    try:  # dockerd with --bridge=none --iptables=false ...; the registry on 127.0.0.1; both stopped by PID
        engine = stack.enter_context(start_docker_engine())
        registry = stack.enter_context(start_docker_registry(ctx.fresh_dir("docker-registry")))
    except EngineUnavailable as exc:
        raise Skip(f"no Docker engine: {exc}".splitlines()[0]) from None
    work = ctx.fresh_dir("docker")
    env = {"DOCKER_HOST": engine.host, "DOCKER_CONFIG": str(work / "docker-config")}
    home = work / "stepengine-home"

    def project(engine_name: str) -> Path:
        folder = work / engine_name
        folder.mkdir()
        shutil.copy2(BUSYBOX, folder / "busybox")
        write(folder / "Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n")
        text = DOCKER_STEPS.format(
            registry=registry.address,
            engine=engine_name,
            username=registry.username,
            password=registry.password,
        )
        return write(folder / "prefect.yaml", text)

    def local_engine(command: Command) -> Command:
        """Only the private dockerd: no TLS settings or docker context from the caller's environment."""
        for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
            command.env.pop(name, None)
        return command

    ours, theirs = project("stepengine"), project("prefect")
    commands = ctx.pair(
        lambda: local_engine(
            ctx.stepengine(ours, "build", ours.parent, home, python=python, env=env, script=True)
        ),
        lambda: local_engine(ctx.prefect(theirs, "build", theirs.parent, env=env)),
    )
    note = (
        "`build_docker_image` (a `FROM scratch` image holding a static busybox; `network_mode: none`, "
        "`pull: false`) then `push_docker_image` with credentials, against a private dockerd "
        "(`--bridge=none --iptables=false`) and a registry with htpasswd auth on 127.0.0.1, both from "
        "`testkit/docker_engine.py`. Each engine builds and pushes its own repository; after the "
        "untimed warm-up every build hits the layer cache and every push finds its layers in the "
        "registry, so what is measured is what each engine adds around the same Docker calls "
        "(imports, client set-up, reading the build and push streams). stepengine runs from "
        "`.bench/stepengine-docker-venv` (this checkout plus the `docker` extra), Prefect with "
        "prefect-docker."
    )
    return [Scenario("docker", "8. docker build + push", commands, note=note)]


DEPLOY_FLOW = "from prefect import flow\n\n\n@flow\ndef f(a: int = 1, b: str = 'x'):\n    print(a, b)\n"


def scenario_deploy(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    venv = prefect_venv()  # STEPENGINE_PREFECT_VENV or .bench/prefect-venv, as the tests use
    prefect = venv / "bin" / "prefect"
    if not prefect.exists():
        raise Skip(f"no Prefect venv at {venv} to run the server (.ci/install.d/60-prefect-venv.sh makes it)")
    work = ctx.fresh_dir("deploy")
    log("  starting a Prefect server on 127.0.0.1 (untimed) ...")
    server = stack.enter_context(start_prefect_server(work / "server-home", venv))
    prefect_settings = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_CLI_PROMPT": "false"}
    # Prefect's CLI as a client: its own PREFECT_HOME (not the server's database directory)
    client_env = {
        **ctx.base_env,
        **prefect_settings,
        "PREFECT_HOME": str(work / "prefect-home"),
        "PREFECT_API_URL": server.api_url,
    }
    subprocess.run(
        [str(prefect), "work-pool", "create", "pool", "--type", "process"],
        env=client_env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    project = work / "project"
    write(project / "flows" / "f.py", DEPLOY_FLOW)
    version = versions(venv / "bin" / "python", ["prefect"]).removeprefix("prefect ")
    write(
        project / "prefect.yaml",
        f"name: project\nprefect-version: {version}\n"
        "pull:\n  - prefect.deployments.steps.set_working_directory:\n"
        f"      directory: {project}\n"
        "deployments:\n  - name: d\n    entrypoint: flows/f.py:f\n"
        "    work_pool:\n      name: pool\n",
    )
    home = work / "stepengine-home"
    spec = work / "spec.json"

    def ours() -> Command:
        argv = [
            *ctx.stepengine_program(),
            "deploy",
            "-n",
            "d",
            "--prefect-api-url",
            server.api_url,
            "-q",
            "--output-file",
            str(spec),
        ]
        return Command(argv, project, {**ctx.base_env, "STEPENGINE_HOME": str(home)})

    def theirs() -> Command:
        program = ctx.prefect_python.parent / "prefect" if ctx.prefect_python else prefect
        return Command([str(program), "--no-prompt", "deploy", "-n", "d"], project, client_env)

    commands = ctx.pair(ours, theirs)
    note = (
        "`stepengine deploy -n d --prefect-api-url URL` against `prefect --no-prompt deploy -n d` in the same "
        "one-flow project (`flows/f.py:f` with two parameters, a `process` work pool, one pull step), "
        "both talking to one Prefect server (`prefect server start --no-ui --no-services` from the "
        "Prefect venv, on 127.0.0.1, its database in a temporary `PREFECT_HOME`; started once, untimed, "
        "by `testkit/prefect_server.py`'s recipe). Every run reads prefect.yaml, renders the "
        "deployment (parameter schema from the flow's signature) and creates or updates the flow and the "
        "deployment on the server; after the warm-up each run is an update of the same deployment."
    )
    return [Scenario("deploy", "9. deploy to a Prefect server", commands, note=note)]
