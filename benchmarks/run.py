"""Side-by-side benchmarks: stepengine against Prefect, on this machine, in one run.

    python -m benchmarks                       # every scenario, 5 rounds, writes RESULTS.md + ratios.png
    python -m benchmarks --scenarios cold,chain --rounds 9
    python -m benchmarks --engines stepengine --stepengine-python "$(which python3)" --size tiny

Each engine runs in its own venv, both with bytecode compiled (``.bench/``, ignored by git):
``stepengine-venv`` gets this checkout installed (not editable) on every harness run; ``prefect-venv``
(``prefect prefect-docker s3fs 'fastapi<0.151'``) is created once, under a lock file, unless someone
already made it. Every timed run is a fresh process started by this harness (wall time from spawn to
exit, peak RSS from ``wait4``), and the engines take turns (A B A B ...) so that drifting machine load
hits both alike. Each engine has one untimed warm-up run per scenario first (the OS file cache; for
stepengine also its on-disk caches, which is the steady state of a worker); the ``cold`` scenario
also measures stepengine with an empty ``STEPENGINE_HOME`` on every run. The ``docker`` scenario runs
stepengine from a third venv, ``stepengine-docker-venv`` (this checkout plus the ``docker`` extra; see
``ensure_stepengine_docker_venv`` for why it is separate).

Servers (moto S3, git smart-HTTP, a private dockerd without bridge or iptables plus a registry, a
Prefect server) come from ``tests/fixtures/``, bind 127.0.0.1 only, and run only while their own
scenarios do. A scenario whose prerequisite is missing here is skipped, with the reason in RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
BENCH = ROOT / ".bench"
PREFECT_REQUIREMENTS = ["prefect", "prefect-docker", "s3fs", "fastapi<0.151"]
STEPENGINE_EXTRAS = ["s3fs"]  # for the blob scenario (fsspec backends are optional extras)
#: the docker scenario's venv has these on top (its own venv: see ensure_stepengine_docker_venv)
STEPENGINE_DOCKER_EXTRAS = ["docker"]

GNU_TIME = "/usr/bin/time"  # Debian package "time"; without it peak RSS includes the harness's size
MARK_START = "<!-- results:start (written by benchmarks/run.py; edit outside these marks) -->"
MARK_END = "<!-- results:end -->"


# --------------------------------------------------------------------------------------------------
# Environments


@contextlib.contextmanager
def _locked(path: Path) -> t.Iterator[None]:
    """An exclusive ``flock`` on ``path`` (waits for whoever holds it)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _works(python: Path, code: str) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", code], capture_output=True, check=False).returncode == 0


def _uv() -> list[str]:
    uv = shutil.which("uv")
    if uv:
        return [uv]
    if (
        subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False).returncode
        != 0
    ):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv"], check=True)
    return [sys.executable, "-m", "uv"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_prefect_venv() -> Path:
    """The Prefect venv (created once; another engineer may be creating it: we wait for the lock)."""
    venv = BENCH / "prefect-venv"
    python = _venv_python(venv)
    probe = "import prefect.deployments.steps.core, s3fs, yaml"
    if _works(python, probe):
        return python
    with _locked(BENCH / "prefect-venv.lock"):
        if _works(python, probe):
            return python
        deadline = time.monotonic() + 600
        while _pip_running_in(venv) and time.monotonic() < deadline:  # someone without the lock
            _log("waiting for another install into .bench/prefect-venv ...")
            time.sleep(5)
        if _works(python, probe):
            return python
        _log("creating .bench/prefect-venv (once; ~15 s with uv) ...")
        uv = _uv()
        if not python.exists():
            subprocess.run([*uv, "venv", "-q", "--seed", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "-q",
                "--compile-bytecode",
                "--python",
                str(python),
                *PREFECT_REQUIREMENTS,
            ],
            check=True,
        )
    _compile(python)
    return python


def _pip_running_in(venv: Path) -> bool:
    marker = str(venv)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and ("pip" in cmdline or "install" in cmdline) and proc.name != str(os.getpid()):
            return True
    return False


def _compile(python: Path) -> None:
    """Make sure every module of the venv has bytecode (``PYTHONDONTWRITEBYTECODE`` is set here)."""
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", site], capture_output=True, check=False)


def ensure_stepengine_venv() -> Path:
    """``.bench/stepengine-venv`` with this checkout installed (reinstalled each time: it measures the code)."""
    return _checkout_venv("stepengine-venv", [str(ROOT), *STEPENGINE_EXTRAS])


def ensure_stepengine_docker_venv() -> Path:
    """``.bench/stepengine-docker-venv``: this checkout with the ``docker`` extra (reinstalled each time).

    A venv of its own rather than ``docker`` in ``STEPENGINE_EXTRAS``: the extra adds four
    distributions (docker, requests, certifi, charset-normalizer) to the venv, and a run that lists the
    entry points (first run of a file, ``STEPENGINE_NO_CACHE``) reads every distribution's metadata.
    Measured on this machine (cold scenario, two alternating runs each, 15 rounds): the steady-state
    cold run is unchanged (43.0/42.9 ms without, 43.1/43.4 ms with; docker itself is never imported,
    tests/test_cold_start.py), but ``empty cache`` went 151/150 → 153/160 ms and ``caches off``
    148/148 → 154/154 ms. The cold scenario keeps measuring the venv it always did.
    """
    return _checkout_venv("stepengine-docker-venv", [f"{ROOT}[{','.join(STEPENGINE_DOCKER_EXTRAS)}]"])


def _checkout_venv(name: str, requirements: list[str]) -> Path:
    """``.bench/<name>`` with ``requirements`` (this checkout, with any extras) installed, bytecode compiled."""
    venv = BENCH / name
    python = _venv_python(venv)
    with _locked(BENCH / f"{name}.lock"):
        uv = _uv()
        if not python.exists():
            subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        _log(f"installing this checkout into .bench/{name} ...")
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "-q",
                "--compile-bytecode",
                "--python",
                str(python),
                "--reinstall-package",
                "stepengine",
                *requirements,
            ],
            check=True,
        )
    # entry-point listings are not cached while site-packages changed in the last 2 s
    time.sleep(2.1)
    return python


# --------------------------------------------------------------------------------------------------
# Measuring


@dataclasses.dataclass
class Command:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    #: run (untimed) before the timed run, e.g. to empty the target directory
    before: t.Callable[[], None] | None = None


@dataclasses.dataclass
class Sample:
    seconds: float
    max_rss_kb: int
    #: user + system CPU time (less disturbed than wall time by other work on a shared machine)
    cpu_seconds: float = 0.0


class RunFailed(RuntimeError):
    pass


def measure(command: Command) -> Sample:
    """Run ``command`` once: wall time from spawn to exit and the process's peak RSS."""
    if command.before:
        command.before()
    # The peak RSS of a child started by this harness would start at the harness's own size (Linux
    # keeps the high-water mark of the memory a child had before exec), so GNU time, a small C
    # program, starts the command and reports its peak RSS. A tiny sh changes directory and execs the
    # command. Both add ~1 ms to every run alike.
    argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(command.cwd), *command.argv]
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r") as rss:
        if os.path.exists(GNU_TIME):
            argv = [GNU_TIME, "-q", "-f", "%M", "-o", rss.name, *argv]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, errors.fileno(), 2),
        ]
        started = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, command.env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-3000:]
            raise RunFailed(f"{' '.join(command.argv[:4])} ... exited {code}:\n{tail}")
        measured = rss.read().strip().splitlines()
    peak = int(measured[-1]) if measured and measured[-1].isdigit() else int(usage.ru_maxrss)
    return Sample(elapsed, peak, usage.ru_utime + usage.ru_stime)


@dataclasses.dataclass
class Scenario:
    key: str
    title: str
    #: engine label -> Command factory (called once per run)
    commands: dict[str, t.Callable[[], Command]]
    #: the pair whose ratio is the result (Prefect ÷ stepengine), and the issue's target
    pair: tuple[str, str] = ("prefect", "stepengine")
    target: float | None = None
    #: at most this many rounds (slow scenarios)
    rounds: int | None = None
    #: at least this many rounds (fast, noisy scenarios), unless fewer are asked for with --size tiny
    min_rounds: int | None = None
    note: str = ""
    #: report peak RSS instead of time
    rss: bool = False
    #: report the runs of this earlier scenario (by key) instead of running again
    same_runs_as: str | None = None


@dataclasses.dataclass
class Result:
    scenario: Scenario
    samples: dict[str, list[Sample]]
    error: str | None = None


def run_scenario(scenario: Scenario, rounds: int, tiny: bool = False) -> Result:
    rounds = min(rounds, scenario.rounds) if scenario.rounds else rounds
    if scenario.min_rounds and not tiny:
        rounds = max(rounds, scenario.min_rounds)
    samples: dict[str, list[Sample]] = {label: [] for label in scenario.commands}
    try:
        for _label, factory in scenario.commands.items():
            measure(factory())  # warm-up, untimed
        for _ in range(rounds):
            for label, factory in scenario.commands.items():  # A B A B ...
                samples[label].append(measure(factory()))
    except RunFailed as exc:
        return Result(scenario, samples, str(exc))
    return Result(scenario, samples)


# --------------------------------------------------------------------------------------------------
# Scenarios


@dataclasses.dataclass
class Context:
    work: Path
    size: str
    engines: list[str]
    stepengine_python: Path
    prefect_python: Path | None
    base_env: dict[str, str]
    #: ``--stepengine-python`` was given: use that interpreter everywhere (no ``.bench`` venvs)
    stepengine_given: bool = False

    @property
    def tiny(self) -> bool:
        return self.size == "tiny"

    def fresh_dir(self, name: str) -> Path:
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def stepengine_program(
        self, python: Path | None = None, *, script: bool = False, env: dict[str, str] | None = None
    ) -> list[str]:
        """How to start the CLI: the venv's ``stepengine`` script if it has stepengine installed (the
        benchmark venvs, or ``script=True``), else ``python -c`` (the pip scenario's fresh venvs)."""
        python = python or self.stepengine_python
        path = python.parent / "stepengine"
        if (
            path.exists()
            and (script or python == self.stepengine_python)
            and not (env or {}).get("PYTHONPATH")
        ):
            return [str(path)]
        return [
            str(python),
            "-c",
            "import sys; from stepengine.cli import main; sys.argv[0] = 'stepengine'; main()",
        ]

    def stepengine(
        self,
        yaml_file: Path,
        section: str,
        cwd: Path,
        home: Path,
        *,
        python: Path | None = None,
        env: dict[str, str] | None = None,
        script: bool = False,
    ) -> Command:
        argv = [
            *self.stepengine_program(python, script=script, env=env),
            "run",
            str(yaml_file),
            "--section",
            section,
            "-q",
        ]
        return Command(argv, cwd, {**self.base_env, "STEPENGINE_HOME": str(home), **(env or {})})

    def prefect(
        self,
        yaml_file: Path,
        section: str,
        cwd: Path,
        *,
        python: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Command:
        assert self.prefect_python is not None
        home = self.work / "prefect-home"
        home.mkdir(exist_ok=True)
        argv = [str(python or self.prefect_python), str(HERE / "prefect_runner.py"), str(yaml_file), section]
        prefect_env = {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # a dead port: steps without blocks/variables never need the API, and Prefect does not
            # spend seconds starting a temporary server
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
        }
        return Command(argv, cwd, {**self.base_env, **prefect_env, **(env or {})})

    def pair(
        self, make_stepengine: t.Callable[[], Command], make_prefect: t.Callable[[], Command]
    ) -> dict[str, t.Callable[[], Command]]:
        out: dict[str, t.Callable[[], Command]] = {}
        if "stepengine" in self.engines:
            out["stepengine"] = make_stepengine
        if "prefect" in self.engines and self.prefect_python:
            out["prefect"] = make_prefect
        return out


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def scenario_cold(ctx: Context) -> list[Scenario]:
    work = ctx.fresh_dir("cold")
    yaml_file = _write(
        work / "prefect.yaml",
        "pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: .\n",
    )
    home = work / "home"
    empty_home = work / "empty-home"

    def cold_cache() -> Command:
        command = ctx.stepengine(yaml_file, "pull", work, empty_home)
        command.before = lambda: shutil.rmtree(empty_home, ignore_errors=True)
        return command

    commands = ctx.pair(
        lambda: ctx.stepengine(yaml_file, "pull", work, home), lambda: ctx.prefect(yaml_file, "pull", work)
    )
    if "stepengine" in ctx.engines:
        commands["stepengine, empty cache"] = cold_cache
        commands["stepengine, caches off"] = lambda: ctx.stepengine(
            yaml_file, "pull", work, home, env={"STEPENGINE_NO_CACHE": "1"}
        )
    if "floor" in ctx.engines:
        python = str(ctx.stepengine_python)
        commands["python -c pass"] = lambda: Command([python, "-c", "pass"], work, ctx.base_env)
        commands["python -c 'import click, yaml'"] = lambda: Command(
            [python, "-c", "import click, yaml"], work, ctx.base_env
        )
    note = (
        "A new process runs a 1-step pull (`set_working_directory`): stepengine's CLI "
        "(`stepengine run --section pull -q`) against `run_steps` in a fresh Prefect process. "
        "`stepengine, empty cache` starts with an empty `STEPENGINE_HOME` every time (first run of a "
        "file on a machine); `caches off` sets `STEPENGINE_NO_CACHE=1` (the engine before the caches)."
    )
    return [
        Scenario("cold", "1. cold process, 1-step pull", commands, target=20.0, note=note, min_rounds=15),
        Scenario(
            "rss",
            "7. peak RSS, 1-step pull",
            dict(commands),
            target=3.0,
            rss=True,
            same_runs_as="cold",
            note="Peak resident set size of the same runs (from `wait4`).",
        ),
    ]


def scenario_chain(ctx: Context) -> list[Scenario]:
    steps = 5 if ctx.tiny else 1000
    work = ctx.fresh_dir("chain")
    lines = ["pull:", "  - benchsteps.chain:", "      id: s0", "      previous: 0"]
    for i in range(1, steps):
        lines += ["  - benchsteps.chain:", f"      id: s{i}", f"      previous: '{{{{ s{i - 1}.n }}}}'"]
    yaml_file = _write(work / "prefect.yaml", "\n".join(lines) + "\n")
    env = {"PYTHONPATH": str(HERE)}
    home = work / "home"
    commands = ctx.pair(
        lambda: ctx.stepengine(yaml_file, "pull", work, home, env=env),
        lambda: ctx.prefect(yaml_file, "pull", work, env=env),
    )
    note = (
        f"{steps} steps `benchsteps.chain` (a module on `PYTHONPATH`), each templating the previous "
        "step's output (`'{{ s41.n }}'`); whole process, so startup is included."
    )
    return [
        Scenario("chain", f"2. {steps} chained trivial steps", commands, target=10.0, rounds=3, note=note)
    ]


def scenario_shell(ctx: Context) -> list[Scenario]:
    work = ctx.fresh_dir("shell")
    n = 3 if ctx.tiny else 20
    script = "\n".join(f"        echo line {i}" for i in range(n))
    yaml_file = _write(
        work / "prefect.yaml",
        f"pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: |\n{script}\n",
    )
    home = work / "home"
    commands = ctx.pair(
        lambda: ctx.stepengine(yaml_file, "pull", work, home), lambda: ctx.prefect(yaml_file, "pull", work)
    )
    return [
        Scenario(
            "shell", f"3. run_shell_script, {n} lines", commands, note="One process per line in both engines."
        )
    ]


#: the least work a client can do for the S3 pull: botocore lists and presigns (no request goes
#: through it), then plain ``http.client`` GETs every URL on 4 keep-alive connections, bodies read
#: and dropped; any failed GET fails the run (a thread's error would otherwise go unnoticed)
S3_FLOOR = """\
import http.client, os, queue, sys, threading, urllib.parse
import botocore.session
client = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["FLOOR_ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["FLOOR_KEY"], aws_secret_access_key=os.environ["FLOOR_SECRET"])
bucket, prefix = os.environ["FLOOR_BUCKET"], os.environ["FLOOR_PREFIX"]
work, errors = queue.Queue(), []
for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get("Contents", []):
        work.put(client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": item["Key"]}))
count = work.qsize()
def fetch():
    conn = None
    while True:
        try:
            url = urllib.parse.urlsplit(work.get_nowait())
        except queue.Empty:
            return
        conn = conn or http.client.HTTPConnection(url.netloc)
        conn.request("GET", url.path + "?" + url.query)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            errors.append(answer.status)
threads = [threading.Thread(target=fetch) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.exit(f"GET failed: {errors[:3]}" if errors or not count else 0)
"""


def scenario_s3(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    try:
        from tests.fixtures.moto_server import start_moto_server
    except ImportError as exc:
        raise Skip(f"the moto fixture cannot be imported here ({exc})") from None
    count = 20 if ctx.tiny else 1000
    server = stack.enter_context(start_moto_server(check_credentials=False))
    client = server.boto3_client()
    client.create_bucket(Bucket="bench")
    blob = b"x" * 4096
    for i in range(count):
        client.put_object(Bucket="bench", Key=f"code/d{i % 10}/f{i:04d}.txt", Body=blob)
    # the second size: a few large objects (random bytes, so nothing compresses)
    big_count, big_size = (2, 64 * 1024) if ctx.tiny else (20, 5 * 1024 * 1024)
    for i in range(big_count):
        client.put_object(Bucket="bench", Key=f"big/f{i:02d}.bin", Body=os.urandom(big_size))
    work = ctx.fresh_dir("s3")

    def pull_file(name: str, prefix: str) -> Path:
        step = (
            "pull:\n  - prefect.deployments.steps.pull_from_remote_storage:\n"
            f"      url: s3://bench/{prefix}\n"
            f"      key: {server.key}\n      secret: {server.secret}\n"
            f"      client_kwargs:\n        endpoint_url: {server.endpoint_url}\n"
        )
        return _write(work / name, step)

    yaml_file = pull_file("prefect.yaml", "code")
    big_file = pull_file("prefect-big.yaml", "big")
    env = {"AWS_EC2_METADATA_DISABLED": "true"}

    def fresh(
        engine: str, keep: bool, source: Path = yaml_file, label: str = "", empty_home: bool = False
    ) -> t.Callable[[], Command]:
        target = work / f"{engine}-{'again' if keep else 'first'}{label}{'-empty-home' if empty_home else ''}"
        home = (
            work / f"home-{engine}-{'again' if keep else 'first'}{label}{'-empty-home' if empty_home else ''}"
        )

        def make() -> Command:
            if not keep:
                shutil.rmtree(target, ignore_errors=True)
                # a first pull remembers nothing of earlier pulls (no manifest); the engine's own caches
                # stay warm, as on a worker that has run the file before, unless empty_home
                shutil.rmtree(home if empty_home else home / "blob-manifests", ignore_errors=True)
            target.mkdir(exist_ok=True)
            if engine == "stepengine":
                return ctx.stepengine(source, "pull", target, home, env=env)
            return ctx.prefect(source, "pull", target, env=env)

        return make

    first = ctx.pair(fresh("stepengine", False), fresh("prefect", False))
    if "stepengine" in ctx.engines:
        first["stepengine, empty STEPENGINE_HOME"] = fresh("stepengine", False, empty_home=True)
    if "floor" in ctx.engines:
        floor_env = {
            **ctx.base_env,
            **env,
            "FLOOR_ENDPOINT": server.endpoint_url,
            "FLOOR_BUCKET": "bench",
            "FLOOR_PREFIX": "code/",
            "FLOOR_KEY": server.key,
            "FLOOR_SECRET": server.secret,
        }
        first["floor: botocore list + presign, http.client GETs, 4 threads"] = lambda: Command(
            [str(ctx.stepengine_python), "-c", S3_FLOOR], work, floor_env
        )
    again = ctx.pair(fresh("stepengine", True), fresh("prefect", True))
    big = ctx.pair(fresh("stepengine", False, big_file, "-big"), fresh("prefect", False, big_file, "-big"))
    note = (
        f"`pull_from_remote_storage` of {count} × 4 KiB objects from moto S3 on 127.0.0.1 into an empty "
        "directory (stepengine keeps its engine caches, not its blob manifest; `empty STEPENGINE_HOME` "
        "drops both). The `floor` row does the least a client can: botocore lists and presigns, plain "
        "`http.client` GETs on 4 keep-alive connections, bodies read and dropped, nothing written; "
        "moto's own time per request bounds every engine."
    )
    note2 = "The same pull again into the directory of the previous run (stepengine keeps a manifest and skips unchanged objects)."
    mib = big_size / (1024 * 1024)
    size_text = f"{mib:g} MiB" if mib >= 1 else f"{big_size // 1024} KiB"
    note3 = f"`pull_from_remote_storage` of {big_count} × {size_text} objects (random bytes) into an empty directory."
    return [
        Scenario("s3", f"4. S3 pull, {count} × 4 KiB", first, target=2.0, note=note),
        Scenario("s3-again", "4b. S3 re-pull, unchanged", again, target=10.0, note=note2),
        Scenario("s3-big", f"4c. S3 pull, {big_count} × {size_text}", big, note=note3),
    ]


def scenario_git(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    try:
        from tests.fixtures.git_server import create_bare_repo, start_git_server
    except ImportError as exc:
        raise Skip(f"the git server fixture cannot be imported here ({exc})") from None
    files = 20 if ctx.tiny else 2000
    root = ctx.fresh_dir("git-root")
    create_bare_repo(root / "public" / "app.git", files=files, commits=1 if ctx.tiny else 20)
    server = stack.enter_context(start_git_server(root))
    url = server.url("public/app.git")
    work = ctx.work / "git"
    yaml_file = _write(
        work / "prefect.yaml", f"pull:\n  - prefect.deployments.steps.git_clone:\n      repository: {url}\n"
    )
    no_cache_file = _write(work / "no-cache.yaml", yaml_file.read_text() + "      cache: false\n")
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}

    def make(engine: str, warm: bool) -> t.Callable[[], Command]:
        slug = "-".join(engine.replace(":", "").replace(",", "").split())

        def factory() -> Command:
            if engine == "stepengine, re-run":  # the same directory every time (the warm-up clones)
                cwd = work / slug
                cwd.mkdir(parents=True, exist_ok=True)
            else:
                cwd = ctx.fresh_dir(f"git/{slug}-{'warm' if warm else 'cold'}")
            home = work / f"home-{slug}"
            if not warm:
                shutil.rmtree(home, ignore_errors=True)
            if engine in ("stepengine", "stepengine, re-run"):
                return ctx.stepengine(yaml_file, "pull", cwd, home, env=env)
            if engine == "stepengine, cache: false":
                return ctx.stepengine(no_cache_file, "pull", cwd, home, env=env)
            if engine == "floor":
                return Command(["git", "clone", "-q", "--depth", "1", url], cwd, {**ctx.base_env, **env})
            return ctx.prefect(yaml_file, "pull", cwd, env=env)

        return factory

    first = ctx.pair(make("stepengine", False), make("prefect", False))
    second = ctx.pair(make("stepengine", True), make("prefect", True))
    if "stepengine" in ctx.engines:
        first["stepengine, cache: false"] = make("stepengine, cache: false", False)
        second["stepengine, re-run into the same directory"] = make("stepengine, re-run", True)
    if "floor" in ctx.engines:
        first["git clone --depth 1"] = make("floor", False)
        second["git clone --depth 1"] = make("floor", False)
    note = (
        f"`git_clone` of a {files}-file repository from the loopback smart-HTTP server into an empty "
        "directory, with an empty `STEPENGINE_HOME` (no object cache). `stepengine, cache: false` is "
        "the same file plus `cache: false` (a stepengine-only argument: no shared object cache, the objects "
        "are fetched straight into the checkout)."
    )
    note2 = (
        "A second clone into another empty directory on the same machine (a worker's next run): "
        "stepengine's object cache under `STEPENGINE_HOME` is warm; Prefect clones again. "
        "`stepengine, re-run into the same directory` runs the file again where its previous run "
        "left the checkout (nothing new upstream), with the cache warm."
    )
    return [
        Scenario("git", f"5a. git clone, {files} files, first", first, note=note),
        Scenario("git-again", "5b. git clone, second", second, target=5.0, note=note2),
    ]


#: N clones of one repository at once, each into its own empty directory; fails if any fails
CONCURRENT_CLONES = """\
work=$1; shift; pids=""
for dir in "$work"/*/; do (cd "$dir" && exec "$@") & pids="$pids $!"; done
rc=0; for pid in $pids; do wait "$pid" || rc=1; done; exit $rc
"""
#: process counts of the concurrent-clones scenario (issue 16)
CONCURRENCY = (1, 2, 4, 8)


def scenario_git_concurrent(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    try:
        from tests.fixtures.git_server import create_bare_repo, start_git_server
    except ImportError as exc:
        raise Skip(f"the git server fixture cannot be imported here ({exc})") from None
    # 2,000 files as in scenario 5 (10,000 made one round of 8 take minutes of untimed directory
    # removal on a shared disk)
    files = 20 if ctx.tiny else 2000
    root = ctx.fresh_dir("git-concurrent-root")
    create_bare_repo(root / "public" / "big.git", files=files, commits=1 if ctx.tiny else 20)
    server = stack.enter_context(start_git_server(root))
    url = server.url("public/big.git")
    work = ctx.work / "git-concurrent"
    yaml_file = _write(
        work / "prefect.yaml", f"pull:\n  - prefect.deployments.steps.git_clone:\n      repository: {url}\n"
    )
    env = {**ctx.base_env, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}

    def make(engine: str, count: int) -> t.Callable[[], Command]:
        slug = "-".join(engine.replace(":", "").replace(",", "").split())
        home = work / f"home-{slug}"

        def prepare() -> None:
            runs = ctx.fresh_dir(f"git-concurrent/{slug}-{count}")
            for n in range(count):
                (runs / str(n)).mkdir()
            if engine == "stepengine, cold cache":
                shutil.rmtree(home, ignore_errors=True)

        def factory() -> Command:
            runs = work / f"{slug}-{count}"
            if engine == "git clone --depth 1":
                program = ["git", "clone", "-q", "--depth", "1", url]
            else:
                program = [*ctx.stepengine_program(), "run", str(yaml_file), "--section", "pull", "-q"]
            argv = ["/bin/sh", "-c", CONCURRENT_CLONES, "concurrent-clones", str(runs), *program]
            return Command(argv, work, {**env, "STEPENGINE_HOME": str(home)}, before=prepare)

        return factory

    scenarios = []
    for count in CONCURRENCY:
        commands: dict[str, t.Callable[[], Command]] = {}
        if "stepengine" in ctx.engines:
            commands["stepengine"] = make("stepengine", count)
            commands["stepengine, cold cache"] = make("stepengine, cold cache", count)
        if "floor" in ctx.engines:
            commands["git clone --depth 1"] = make("git clone --depth 1", count)
        note = (
            f"{count} processes started at once, each cloning the same {files}-file repository from the "
            "loopback smart-HTTP server into its own empty directory (wall time until the last one ends; "
            "runs/s under Derived). `stepengine`: one `STEPENGINE_HOME` shared by all, its object cache warm "
            "(the warm-up run fills it); `stepengine, cold cache`: that home emptied before each run, so "
            "the processes race to fill it; `git clone --depth 1`: plain git, no cache."
        )
        scenarios.append(
            Scenario(
                f"git-concurrent-{count}",
                f"12. {count} concurrent git clones, {files} files",
                commands,
                rounds=3,
                note=note,
            )
        )
    return scenarios


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


def scenario_pip(ctx: Context) -> list[Scenario]:
    work = ctx.fresh_dir("pip")
    wheels = work / "wheels"
    wheels.mkdir()
    count = 2 if ctx.tiny else 10
    names = [f"stepengine_bench_pkg{i}" for i in range(count)]
    for name in names:
        _wheel(wheels, name)
    _write(work / "requirements.txt", f"--no-index\n--find-links {wheels}\n" + "\n".join(names) + "\n")
    yaml_file = _write(
        work / "prefect.yaml",
        f"pull:\n  - prefect.deployments.steps.pip_install_requirements:\n      directory: {work}\n",
    )
    uv_file = _write(work / "uv.yaml", yaml_file.read_text() + "      installer: uv\n")
    pip_file = _write(work / "pip.yaml", yaml_file.read_text() + "      installer: pip\n")
    uv = _uv()
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
            python = _venv_python(venv)
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


class Skip(Exception):
    """A scenario that cannot run here (say why in RESULTS.md)."""


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
    try:
        from tests.fixtures.docker_engine import (
            BUSYBOX,
            EngineUnavailable,
            start_docker_engine,
            start_docker_registry,
        )
    except ImportError as exc:
        raise Skip(f"the docker fixture cannot be imported here ({exc})") from None
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
        if not _works(python, "import docker"):
            raise Skip(f"the docker SDK (stepengine's `docker` extra) is not installed for {python}")
    if (
        "prefect" in ctx.engines
        and ctx.prefect_python
        and not _works(ctx.prefect_python, "import prefect_docker")
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
        _write(folder / "Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n")
        text = DOCKER_STEPS.format(
            registry=registry.address,
            engine=engine_name,
            username=registry.username,
            password=registry.password,
        )
        return _write(folder / "prefect.yaml", text)

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
        "`tests/fixtures/docker_engine.py`. Each engine builds and pushes its own repository; after the "
        "untimed warm-up every build hits the layer cache and every push finds its layers in the "
        "registry, so what is measured is what each engine adds around the same Docker calls "
        "(imports, client set-up, reading the build and push streams). stepengine runs from "
        "`.bench/stepengine-docker-venv` (this checkout plus the `docker` extra), Prefect with "
        "prefect-docker."
    )
    return [Scenario("docker", "8. docker build + push", commands, note=note)]


DEPLOY_FLOW = "from prefect import flow\n\n\n@flow\ndef f(a: int = 1, b: str = 'x'):\n    print(a, b)\n"


def scenario_deploy(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    try:
        from tests.fixtures._servers import free_port, stop
        from tests.fixtures.prefect_server import (
            PrefectServer,
            _wait_healthy,
            prefect_venv,
        )
    except ImportError as exc:
        raise Skip(f"the Prefect server fixture cannot be imported here ({exc})") from None
    venv = prefect_venv()  # STEPENGINE_PREFECT_VENV or .bench/prefect-venv, as the tests use
    prefect = venv / "bin" / "prefect"
    if not prefect.exists():
        raise Skip(f"no Prefect venv at {venv} to run the server (.ci/install.d/60-prefect-venv.sh makes it)")
    work = ctx.fresh_dir("deploy")
    server_home = work / "server-home"
    server_home.mkdir()
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", server_home, venv)
    prefect_settings = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_CLI_PROMPT": "false"}
    server_env = {
        **ctx.base_env,
        **prefect_settings,
        "PREFECT_HOME": str(server_home),
        "PREFECT_API_URL": server.api_url,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
    }
    _log(f"  starting a Prefect server on 127.0.0.1:{port} (untimed) ...")
    with open(server_home / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(prefect),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ui",
                "--no-services",
            ],
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    stack.callback(stop, proc)
    _wait_healthy(server.api_url, proc, server_home / "server.log")
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
    _write(project / "flows" / "f.py", DEPLOY_FLOW)
    version = _versions(venv / "bin" / "python", ["prefect"]).removeprefix("prefect ")
    _write(
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
            "--output",
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
        "by `tests/fixtures/prefect_server.py`'s recipe). Every run reads prefect.yaml, renders the "
        "deployment (parameter schema from the flow's signature) and creates or updates the flow and the "
        "deployment on the server; after the warm-up each run is an update of the same deployment."
    )
    return [Scenario("deploy", "9. deploy to a Prefect server", commands, note=note)]


def _deployments_file(path: Path, count: int) -> Path:
    """``count`` deployments, each overriding pull with a clone and a templated chdir (issue 16)."""
    lines = [
        "pull:",
        "  - prefect.deployments.steps.set_working_directory:",
        "      directory: .",
        "deployments:",
    ]
    for i in range(count):
        lines += [
            f"  - name: dep-{i}",
            f"    entrypoint: flows.py:flow_{i % 7}",
            "    work_pool: {name: pool}",
            "    pull:",
            "      - prefect.deployments.steps.git_clone:",
            "          id: clone",
            f"          repository: https://git.example/org/r{i}.git",
            "      - prefect.deployments.steps.set_working_directory:",
            "          directory: '{{ clone.directory }}'",
        ]
    return _write(path, "\n".join(lines) + "\n")


def scenario_validate(ctx: Context) -> list[Scenario]:
    work = ctx.fresh_dir("validate")
    big, small = (20, 2) if ctx.tiny else (10_000, 1_000)
    files = {n: _deployments_file(work / f"{n}.yaml", n) for n in (big, small)}
    env = {**ctx.base_env, "STEPENGINE_HOME": str(work / "home")}

    def validate(n: int) -> t.Callable[[], Command]:
        return lambda: Command([*ctx.stepengine_program(), "validate", str(files[n])], work, env)

    commands = (
        {"stepengine": validate(big), f"stepengine, {small:,} deployments": validate(small)}
        if "stepengine" in ctx.engines
        else {}
    )
    note = (
        f"`stepengine validate` of a file with {big:,} deployments, each overriding pull with a git_clone "
        "and a templated set_working_directory (every step of every deployment checked), warm caches; "
        f"and of {small:,}. Prefect has no such verb."
    )
    return [Scenario("validate", f"10. validate, {big:,} deployments", commands, note=note)]


def scenario_masking(ctx: Context) -> list[Scenario]:
    """Issue 16: output at disk speed whatever the number of secrets the run must mask."""
    import random

    work = ctx.fresh_dir("masking")
    size = 100_000 if ctx.tiny else 10_000_000
    rng = random.Random(16)
    words = ["build", "step", "layer", "cache", "download", "GET", "200", "ok", "src/app.py", "wheel", "done"]
    lines, total = [], 0
    while total < size:
        line = (
            f"{total:09d} "
            + " ".join(rng.choice(words) for _ in range(10))
            + f" {rng.getrandbits(64):016x}\n"
        )
        lines.append(line)
        total += len(line)
    data = _write(work / "data.txt", "".join(lines))
    yaml_file = _write(
        work / "prefect.yaml",
        f"pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: cat {data}\n",
    )
    home = work / "home"

    def with_secrets(n: int) -> t.Callable[[], Command]:
        # n secrets from the environment (STEPENGINE_SECRET_ENV): each masked raw, in base64 at every
        # alignment, URL- and JSON-escaped (about 14 forms each); none occurs in the output
        names = [f"BENCH_SECRET_{i}" for i in range(n)]
        # a slash, a space and a quote: the URL-, form- and JSON-escaped forms differ from the raw one
        secrets = {name: f'tok/{i:05d} "{rng.getrandbits(96):024x}' for i, name in enumerate(names)}
        env = {**secrets, "STEPENGINE_SECRET_ENV": ",".join(names)} if n else {}

        def make() -> Command:
            argv = [
                *ctx.stepengine_program(),
                "run",
                str(yaml_file),
                "--section",
                "pull",
            ]  # not -q: output printed
            return Command(argv, work, {**ctx.base_env, "STEPENGINE_HOME": str(home), **env})

        return make

    python = str(ctx.stepengine_python)
    copy_lines = "import sys\nfor line in sys.stdin: sys.stdout.write(line)"
    commands: dict[str, t.Callable[[], Command]] = {}
    if "stepengine" in ctx.engines:
        for n, label in ((0, "no secret"), (1, "1 secret"), (100, "100 secrets"), (1000, "1,000 secrets")):
            commands[f"stepengine, {label}"] = with_secrets(n)
    if "floor" in ctx.engines:
        commands["cat | python (line copy)"] = lambda: Command(
            ["/bin/sh", "-c", 'cat "$0" | "$1" -c "$2"', str(data), python, copy_lines], work, ctx.base_env
        )
        commands["python -c pass"] = lambda: Command([python, "-c", "pass"], work, ctx.base_env)
    note = (
        f"A shell step `cat`s a {size / 1e6:g} MB file of log lines (stepengine's CLI, output printed to "
        "/dev/null) while the run knows 0 to 1,000 secrets (environment variables named in "
        "`STEPENGINE_SECRET_ENV`, each masked in all its forms: raw, base64 at every alignment, URL-, form- and JSON-escaped, 8 for these values). The ratio is no secret ÷ 1,000 secrets "
        "(target ≥ 0.5: within 2×). Floor: the same file through `cat | python` copying line by line; "
        "subtract `python -c pass` and the engine's start-up for the throughput."
    )
    return [
        Scenario(
            "masking",
            f"11. masked output, {size / 1e6:g} MB",
            commands,
            pair=("stepengine, no secret", "stepengine, 1,000 secrets"),
            target=0.5,
            note=note,
            rounds=5,
        )
    ]


SCENARIOS: dict[str, t.Callable[..., list[Scenario]]] = {
    "cold": scenario_cold,
    "chain": scenario_chain,
    "shell": scenario_shell,
    "s3": scenario_s3,
    "git": scenario_git,
    "git-concurrent": scenario_git_concurrent,
    "pip": scenario_pip,
    "docker": scenario_docker,
    "deploy": scenario_deploy,
    "validate": scenario_validate,
    "masking": scenario_masking,
}
#: scenarios that start servers: they get an ExitStack that is closed once their scenarios have run
NEEDS_STACK = {"s3", "git", "git-concurrent", "docker", "deploy"}

from benchmarks import scale  # noqa: E402  (issue 16's scale scenarios; they use the helpers above)

SCENARIOS.update(scale.SCENARIOS)
NEEDS_STACK |= scale.NEEDS_STACK


# --------------------------------------------------------------------------------------------------
# Reporting


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def _summary(samples: list[Sample], rss: bool) -> str:
    if not samples:
        return "–"
    if rss:
        values = [s.max_rss_kb / 1024 for s in samples]
        return f"{statistics.median(values):.1f} MB ({min(values):.1f}–{max(values):.1f})"
    values = [s.seconds for s in samples]
    return f"{_ms(statistics.median(values))} ({_ms(min(values))}–{_ms(max(values))}, n={len(values)})"


def _median(samples: list[Sample], rss: bool) -> float:
    return statistics.median([s.max_rss_kb if rss else s.seconds for s in samples])


def ratio(result: Result) -> float | None:
    """Prefect ÷ stepengine of the medians (for RSS: stepengine ÷ Prefect, lower is better)."""
    a, b = result.scenario.pair
    if not result.samples.get(a) or not result.samples.get(b):
        return None
    if result.scenario.rss:
        return _median(result.samples[b], True) / _median(result.samples[a], True)
    return _median(result.samples[a], False) / _median(result.samples[b], False)


def _verdict(result: Result, value: float | None) -> str:
    target = result.scenario.target
    if value is None or target is None:
        return "–"
    if result.scenario.rss:
        return f"≤ 1/{target:g}: " + ("met" if value <= 1 / target else "**missed**")
    return f"≥ {target:g}×: " + ("met" if value >= target else "**missed**")


def machine() -> list[str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem} RAM",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine is shared)",
        f"- Python {platform.python_version()}, {git}",
    ]


def _versions(python: Path | None, names: list[str]) -> str:
    if python is None:
        return "not used"
    code = (
        "import importlib.metadata as m, sys; print(', '.join(f'{n} {m.version(n)}' for n in sys.argv[1:]))"
    )
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=False)
    return out.stdout.strip() or out.stderr.strip()[-200:]


def report(results: list[Result], skipped: dict[str, str], ctx: Context, rounds: int) -> str:
    lines = [MARK_START, "", "### Machine", ""]
    lines += machine()
    lines += [
        f"- stepengine venv: {_versions(ctx.stepengine_python, ['stepengine', 'PyYAML', 'click', 'Jinja2', 'jsonschema'])}",
        f"- Prefect venv: {_versions(ctx.prefect_python, ['prefect', 'prefect-docker', 's3fs', 'fastapi'])}",
        (
            f"- rounds: {rounds} by default (n = runs per engine in each cell), engines alternating, one untimed "
            "warm-up each; bytecode compiled in both venvs"
        ),
        "",
        "### Results (median, min–max)",
        "",
        "| scenario | stepengine | Prefect | Prefect ÷ stepengine | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        value = ratio(result)
        sc = result.scenario
        shown = "–" if value is None else (f"{value:.2f} of Prefect's" if sc.rss else f"**{value:.1f}×**")
        lines.append(
            f"| {sc.title} | {_summary(result.samples.get('stepengine', []), sc.rss)} | "
            f"{_summary(result.samples.get('prefect', []), sc.rss)} | {shown} | {_verdict(result, value)} |"
        )
    others = [(r, label) for r in results for label in r.samples if label not in ("stepengine", "prefect")]
    if others:
        lines += [
            "",
            "### Floors and variants",
            "",
            "| scenario | run | median (min–max) |",
            "| --- | --- | --- |",
        ]
        for result, label in others:
            lines.append(
                f"| {result.scenario.title} | {label} | {_summary(result.samples[label], result.scenario.rss)} |"
            )
    derived = _derived(results)
    if derived:
        lines += ["", "### Derived", ""] + derived
    lines += ["", "### Scenarios", ""]
    for result in results:
        lines.append(f"- **{result.scenario.title}**: {result.scenario.note}")
        if result.error:
            lines.append(f"  - FAILED: `{result.error.splitlines()[0]}`")
    for key, why in skipped.items():
        lines.append(f"- **{key}**: skipped: {why}")
    lines += ["", MARK_END]
    return "\n".join(lines)


def _derived(results: list[Result]) -> list[str]:
    by_key = {r.scenario.key: r for r in results}
    out = []
    cold, chain = by_key.get("cold"), by_key.get("chain")
    if cold and chain:
        steps = int(chain.scenario.title.split()[1])
        for engine in ("stepengine", "prefect"):
            if cold.samples.get(engine) and chain.samples.get(engine) and steps > 1:
                per = (_median(chain.samples[engine], False) - _median(cold.samples[engine], False)) / (
                    steps - 1
                )
                cpu = (
                    statistics.median(s.cpu_seconds for s in chain.samples[engine])
                    - statistics.median(s.cpu_seconds for s in cold.samples[engine])
                ) / (steps - 1)
                out.append(
                    f"- {engine}: {per * 1000:.3f} ms wall, {cpu * 1000:.3f} ms CPU per chained step "
                    f"(chain minus 1-step cold run, ÷ {steps - 1})"
                )
    validate = by_key.get("validate")
    if validate and len(validate.samples) == 2 and all(validate.samples.values()):
        (big, big_samples), (small, small_samples) = validate.samples.items()
        wall = _median(big_samples, False) / _median(small_samples, False)
        cpu = statistics.median(s.cpu_seconds for s in big_samples) / statistics.median(
            s.cpu_seconds for s in small_samples
        )
        scale = validate.scenario.title.split(", ")[1]
        out.append(
            f"- validate, {scale} ÷ {small.split(', ')[1]}: {wall:.1f}× wall, {cpu:.1f}× CPU (linear: 10×); "
            f"CPU time {_ms(statistics.median(s.cpu_seconds for s in big_samples))}"
        )
    for result in results:
        if result.scenario.key.startswith("git-concurrent-"):
            count = int(result.scenario.key.rsplit("-", 1)[1])
            rates = ", ".join(
                f"{label} {count / _median(samples, False):.2f}"
                for label, samples in result.samples.items()
                if samples
            )
            out.append(f"- {count} concurrent git clones, runs/s: {rates}")
        if result.scenario.key.startswith("git"):
            # CPU time (the process and the git processes it waited for) moves less than wall time
            # when the machine is shared
            cpu = ", ".join(
                f"{label} {_ms(statistics.median(s.cpu_seconds for s in samples))}"
                for label, samples in result.samples.items()
                if samples
            )
            out.append(f"- {result.scenario.title}, CPU time (user + system, median): {cpu}")
    if cold and cold.samples.get("stepengine") and cold.samples.get("python -c pass"):
        x = _median(cold.samples["stepengine"], False) / _median(cold.samples["python -c pass"], False)
        out.append(f"- stepengine cold run = {x:.1f}× a bare `python -c pass` (wall time)")
    if cold:
        cpu = {
            label: statistics.median(s.cpu_seconds for s in samples)
            for label, samples in cold.samples.items()
            if samples
        }
        shown = ", ".join(f"{label} {_ms(value)}" for label, value in cpu.items())
        out.append(f"- cold runs, CPU time (user + system, median): {shown}")
        if cpu.get("stepengine") and cpu.get("python -c pass"):
            out.append(
                f"- stepengine cold run = {cpu['stepengine'] / cpu['python -c pass']:.1f}× a bare `python -c pass` (CPU time)"
            )
        if cpu.get("stepengine") and cpu.get("prefect"):
            out.append(
                f"- Prefect ÷ stepengine, cold run CPU time: {cpu['prefect'] / cpu['stepengine']:.1f}×"
            )
    return out


def write_results(path: Path, section: str) -> None:
    """Replace the marked section of ``path`` (keeping the hand-written findings around it)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        tail = rest.split(MARK_END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def plot(results: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _log("matplotlib is not installed: no plot")
        return False
    rows = [(r.scenario.title, ratio(r), r.scenario.target, r.scenario.rss) for r in results]
    rows = [(title, 1 / v if rss else v, target) for title, v, target, rss in rows if v]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.2))
    labels = [r[0] for r in rows]
    ax.barh(labels, [r[1] for r in rows], color="#4477aa")
    for i, (_, _, target) in enumerate(rows):
        if target:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="#cc3311")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("Prefect ÷ stepengine (median; RSS: Prefect's ÷ ours); red: target")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def run_all(scenarios: list[Scenario], results: list[Result], ctx: Context, rounds: int) -> None:
    """Run ``scenarios`` one after the other, appending to ``results`` and logging each summary."""
    for scenario in scenarios:
        _log(f"{scenario.title} ...")
        started = time.monotonic()
        if scenario.same_runs_as:
            source = next(r for r in results if r.scenario.key == scenario.same_runs_as)
            result = Result(scenario, source.samples, source.error)
        else:
            result = run_scenario(scenario, rounds, ctx.tiny)
        results.append(result)
        value = ratio(result)
        summary = ", ".join(f"{k}: {_summary(v, scenario.rss)}" for k, v in result.samples.items())
        _log(
            f"  {summary}"
            + (f"; ratio {value:.2f}" if value else "")
            + f"; {time.monotonic() - started:.0f} s"
            + (f"\n  FAILED: {result.error}" if result.error else "")
        )


# --------------------------------------------------------------------------------------------------


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated: {','.join(SCENARIOS)}"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--engines", default="stepengine,prefect,floor", help="comma-separated: stepengine,prefect,floor"
    )
    parser.add_argument(
        "--size", choices=["full", "tiny"], default="full", help="tiny: a few steps/files (smoke test)"
    )
    parser.add_argument(
        "--stepengine-python",
        type=Path,
        help="use this interpreter's stepengine instead of .bench/stepengine-venv",
    )
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--plot", type=Path, default=HERE / "ratios.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a new temporary one)")
    args = parser.parse_args(argv)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    sys.path.insert(0, str(ROOT))  # tests.fixtures
    stepengine_python = args.stepengine_python or ensure_stepengine_venv()
    prefect_python = ensure_prefect_venv() if "prefect" in engines else None
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STEPENGINE_"))}
    base_env.pop("PYTHONPATH", None)
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stepengine-bench-")))
        ctx = Context(
            work,
            args.size,
            engines,
            Path(stepengine_python),
            prefect_python,
            base_env,
            stepengine_given=args.stepengine_python is not None,
        )
        results: list[Result] = []
        skipped: dict[str, str] = {}
        for key in keys:
            with contextlib.ExitStack() as servers:  # a scenario's servers stop before the next one runs
                started = time.monotonic()
                try:
                    scenarios = SCENARIOS[key](ctx, servers) if key in NEEDS_STACK else SCENARIOS[key](ctx)
                except Skip as exc:
                    skipped[key] = str(exc)
                    _log(f"{key}: skipped: {exc}")
                    continue
                _log(f"{key}: set up in {time.monotonic() - started:.0f} s (untimed: inputs, venvs, servers)")
                run_all(scenarios, results, ctx, args.rounds)
        section = report(results, skipped, ctx, args.rounds)
    write_results(args.results, section)
    if not args.no_plot:
        plot(results, args.plot)
    print(section)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
