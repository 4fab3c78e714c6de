"""Blob-storage scenarios: S3 pulls against moto (small objects, re-pull, large objects, 10,000 objects,
one 1 GiB object), a ``file://`` pull of 10,000 files against ``cp -r``, and a large list passed
between steps (peak RSS)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import typing as t
from pathlib import Path

from benchmarks.measurement import CONCURRENCY, Command, Scenario, Skip, concurrently
from benchmarks.scenarios.context import HERE, Context, write
from testkit.moto_server import start_moto_server

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
    count = 20 if ctx.tiny else 1000
    server = moto(stack)
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
        return write(work / name, step)

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


def pull_yaml(work: Path, name: str, url: str, extra: str = "") -> Path:
    text = f"pull:\n  - prefect.deployments.steps.pull_from_remote_storage:\n      url: {url}\n{extra}"
    return write(work / name, text)


def fresh_target(
    make: t.Callable[[Path], Command], target: Path, home: Path | None = None
) -> t.Callable[[], Command]:
    """A command factory that runs ``make(target)`` into an empty ``target`` (and a home without manifests)."""

    def factory() -> Command:
        def before() -> None:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            if home is not None:
                shutil.rmtree(home / "blob-manifests", ignore_errors=True)

        command = make(target)
        command.before = before
        return command

    return factory


def scenario_files(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    count = 50 if ctx.tiny else 10_000
    work = ctx.fresh_dir("files")
    source = work / "source"
    for i in range(count):
        path = source / f"d{i % 100:02d}" / f"f{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 4096)
    yaml_file = pull_yaml(work, "prefect.yaml", source.as_uri())
    home = work / "home"
    commands = ctx.pair(
        fresh_target(
            lambda target: ctx.stepengine(yaml_file, "pull", target, home), work / "out-stepengine", home
        ),
        fresh_target(lambda target: ctx.prefect(yaml_file, "pull", target), work / "out-prefect"),
    )
    if "floor" in ctx.engines:
        commands["cp -r"] = fresh_target(
            lambda target: Command(["cp", "-r", str(source), str(target / "copy")], target, ctx.base_env),
            work / "out-cp",
        )
    note = (
        f"`pull_from_remote_storage` of a `file://` folder of {count} × 4 KiB files (100 folders) into an "
        "empty directory, against `cp -r` of the same folder; the target issue 16 sets is 1.3× `cp -r`."
    )
    return [Scenario("files", f"12. file:// pull, {count} × 4 KiB", commands, note=note)]


def scenario_s3_many(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    server = moto(stack)
    count = 50 if ctx.tiny else 10_000
    client = server.boto3_client()
    client.create_bucket(Bucket="many")
    body = b"x" * 4096
    for i in range(count):
        client.put_object(Bucket="many", Key=f"code/d{i % 100:02d}/f{i:05d}.txt", Body=body)
    work = ctx.fresh_dir("s3-many")
    yaml_file = pull_yaml(work, "prefect.yaml", "s3://many/code", s3_settings(server))
    home = work / "home"
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    commands = ctx.pair(
        fresh_target(
            lambda target: ctx.stepengine(yaml_file, "pull", target, home, env=env),
            work / "out-stepengine",
            home,
        ),
        fresh_target(lambda target: ctx.prefect(yaml_file, "pull", target, env=env), work / "out-prefect"),
    )
    if "floor" in ctx.engines:
        floor_env = {
            **ctx.base_env,
            **env,
            "FLOOR_ENDPOINT": server.endpoint_url,
            "FLOOR_BUCKET": "many",
            "FLOOR_PREFIX": "code/",
            "FLOOR_KEY": server.key,
            "FLOOR_SECRET": server.secret,
        }
        commands["floor: botocore list + presign, http.client GETs, 4 threads"] = lambda: Command(
            [str(ctx.stepengine_python), "-c", S3_FLOOR], work, floor_env
        )
    note = (
        f"`pull_from_remote_storage` of {count} × 4 KiB objects from moto on 127.0.0.1 into an empty directory "
        "(no blob manifest), against the server floor of scenario 4; the target is 1.3× the floor."
    )
    return [Scenario("s3-many", f"13. S3 pull, {count} × 4 KiB", commands, rounds=3, note=note)]


def scenario_s3_gib(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    server = moto(stack)
    size = (4 << 20) if ctx.tiny else (1 << 30)
    client = server.boto3_client()
    client.create_bucket(Bucket="gib")
    work = ctx.fresh_dir("s3-gib")
    blob = work / "object.bin"
    with open(blob, "wb") as out:
        for _ in range(size >> 20):
            out.write(os.urandom(1 << 20))
    client.upload_file(str(blob), "gib", "big/object.bin")  # (multipart: moto keeps it as one object)
    blob.unlink()
    client.put_object(Bucket="gib", Key="small/object.txt", Body=b"x" * 4096)
    big = pull_yaml(work, "big.yaml", "s3://gib/big", s3_settings(server))
    small = pull_yaml(work, "small.yaml", "s3://gib/small", s3_settings(server))
    home = work / "home"
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    commands = ctx.pair(
        fresh_target(
            lambda target: ctx.stepengine(big, "pull", target, home, env=env), work / "out-stepengine", home
        ),
        fresh_target(lambda target: ctx.prefect(big, "pull", target, env=env), work / "out-prefect"),
    )
    if "stepengine" in ctx.engines:
        commands["stepengine, one 4 KiB object (baseline)"] = fresh_target(
            lambda target: ctx.stepengine(small, "pull", target, home, env=env), work / "out-small", home
        )
    text = f"{size >> 30} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"
    note = (
        f"`pull_from_remote_storage` of one {text} object (random bytes) from moto on 127.0.0.1 into an empty "
        "directory; the baseline row pulls one 4 KiB object. Issue 16's target: peak RSS at most 100 MB above "
        "the baseline. moto copies the whole object for every request, ranged or not."
    )
    return [
        Scenario("s3-gib", f"14. S3 pull, 1 × {text}", commands, rounds=2, note=note),
        Scenario(
            "s3-gib-rss",
            f"14b. peak RSS, S3 pull of 1 × {text}",
            dict(commands),
            rss=True,
            same_runs_as="s3-gib",
            note="Peak resident set size of the same runs.",
        ),
    ]


#: the steps of the ``outputs`` scenario (on ``PYTHONPATH`` for both engines, like ``benchsteps``)
OUTPUT_STEPS = """\
pull:
  - benchsteps.make_list:
      id: make
      count: {count}
      size: {size}
  - benchsteps.count_items:
      id: use
      items: "{{{{ make.items }}}}"
"""
#: the floor: Python itself holding the same list
PYTHON_LIST = (
    "import sys; items = ['x' * (int(sys.argv[2]) - 8) + f'{i:08d}' for i in range(int(sys.argv[1]))]"
)


def scenario_outputs(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    work = ctx.fresh_dir("outputs")
    count, size = (100, 1000) if ctx.tiny else (100_000, 1000)
    big = write(work / "big.yaml", OUTPUT_STEPS.format(count=count, size=size))
    tiny = write(work / "tiny.yaml", OUTPUT_STEPS.format(count=1, size=size))
    env = {"PYTHONPATH": str(HERE)}
    home = work / "home"
    commands = ctx.pair(
        lambda: ctx.stepengine(big, "pull", work, home, env=env),
        lambda: ctx.prefect(big, "pull", work, env=env),
    )
    if "stepengine" in ctx.engines:
        commands["stepengine, a 1-item list (baseline)"] = lambda: ctx.stepengine(
            tiny, "pull", work, home, env=env
        )
    if "floor" in ctx.engines:
        python = str(ctx.stepengine_python)
        commands["python holding the same list"] = lambda: Command(
            [python, "-c", PYTHON_LIST, str(count), str(size)], work, ctx.base_env
        )
        commands["python -c pass"] = lambda: Command([python, "-c", "pass"], work, ctx.base_env)
    megabytes = count * size / 1e6
    note = (
        f"A step returns a list of {count} strings of {size} bytes ({megabytes:g} MB of text); the next step "
        "takes it as `items: '{{ make.items }}'` and returns its length. Peak RSS; the floor rows are Python "
        "building the same list, and doing nothing."
    )
    return [
        Scenario(
            "outputs",
            f"15. peak RSS, a {megabytes:g} MB list between steps",
            commands,
            rss=True,
            rounds=3,
            note=note,
        )
    ]


def scenario_s3_concurrent(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    """Issue 16 item 3: N processes pull the same bucket at once, sharing one STEPENGINE_HOME."""
    server = moto(stack)
    count = 10 if ctx.tiny else 200
    client = server.boto3_client()
    client.create_bucket(Bucket="shared")
    for i in range(count):
        client.put_object(Bucket="shared", Key=f"code/d{i % 10}/f{i:04d}.txt", Body=b"x" * 4096)
    work = ctx.fresh_dir("s3-concurrent")
    yaml_file = pull_yaml(work, "prefect.yaml", "s3://shared/code", s3_settings(server))
    env = {**ctx.base_env, "AWS_EC2_METADATA_DISABLED": "true"}
    floor_env = {
        **env,
        "FLOOR_ENDPOINT": server.endpoint_url,
        "FLOOR_BUCKET": "shared",
        "FLOOR_PREFIX": "code/",
        "FLOOR_KEY": server.key,
        "FLOOR_SECRET": server.secret,
    }

    def make(engine: str, processes: int) -> t.Callable[[], Command]:
        slug = engine.split(":")[0].replace(" ", "-")
        home = work / f"home-{slug}"
        runs = work / f"{slug}-{processes}"

        def prepare() -> None:
            # every process starts from an empty target and no manifest (a first pull), one home shared
            ctx.fresh_dir(f"s3-concurrent/{slug}-{processes}")
            for n in range(processes):
                (runs / str(n)).mkdir()
            shutil.rmtree(home / "blob-manifests", ignore_errors=True)

        def factory() -> Command:
            if engine == "stepengine":
                program = [*ctx.stepengine_program(), "run", str(yaml_file), "--section", "pull", "-q"]
                run_env = {**env, "STEPENGINE_HOME": str(home)}
            else:
                program, run_env = [str(ctx.stepengine_python), "-c", S3_FLOOR], floor_env
            return Command(concurrently(runs, program), work, run_env, before=prepare)

        return factory

    scenarios = []
    for processes in CONCURRENCY:
        commands: dict[str, t.Callable[[], Command]] = {}
        if "stepengine" in ctx.engines:
            commands["stepengine"] = make("stepengine", processes)
        if "floor" in ctx.engines:
            commands["floor: botocore list + presign, http.client GETs, 4 threads"] = make("floor", processes)
        note = (
            f"{processes} processes started at once, each pulling the same bucket ({count} × 4 KiB objects, moto "
            "on 127.0.0.1) into its own empty directory with one `STEPENGINE_HOME` shared by all (blob "
            "manifests emptied before each run); wall time until the last one ends, runs/s under Derived. "
            "The floor row starts as many copies of scenario 4's server floor at once."
        )
        scenarios.append(
            Scenario(
                f"s3-concurrent-{processes}",
                f"17. {processes} concurrent S3 pulls, {count} × 4 KiB",
                commands,
                rounds=3,
                note=note,
            )
        )
    return scenarios


def moto(stack: contextlib.ExitStack) -> t.Any:
    """A moto S3 server on 127.0.0.1 for the scenario (no credential check), stopped with ``stack``."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        raise Skip("moto[server] and boto3 are not installed for the harness's interpreter (the `dev` extra)")
    return stack.enter_context(start_moto_server(check_credentials=False))


def s3_settings(server: t.Any) -> str:
    return (
        f"      key: {server.key}\n      secret: {server.secret}\n"
        f"      client_kwargs:\n        endpoint_url: {server.endpoint_url}\n"
    )
