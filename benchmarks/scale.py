"""Scenarios of issue 16 item 5 (memory in proportion to data; many small files at the floor), for ``run.py``.

- ``files``: a ``file://`` pull of 10,000 × 4 KiB files against ``cp -r`` of the same folder;
- ``s3-many``: an S3 pull of 10,000 × 4 KiB objects against the server floor (``run.S3_FLOOR``);
- ``s3-gib``: an S3 pull of one 1 GiB object: time, and peak RSS next to a pull of one 4 KiB object
  (the engine's baseline);
- ``outputs``: a 100 MB list passed from one step to the next by a whole-value reference (peak RSS),
  next to Python holding the same list and to a run whose list is tiny.

Every row is a fresh process started by the harness (``run.measure``: wall time and peak RSS).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import typing as t
from pathlib import Path

from benchmarks import run
from benchmarks.run import Command, Context, Scenario, Skip

HERE = Path(__file__).resolve().parent


def _pull_yaml(work: Path, name: str, url: str, extra: str = "") -> Path:
    text = f"pull:\n  - prefect.deployments.steps.pull_from_remote_storage:\n      url: {url}\n{extra}"
    return run._write(work / name, text)


def _fresh(
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


def scenario_files(ctx: Context) -> list[Scenario]:
    count = 50 if ctx.tiny else 10_000
    work = ctx.fresh_dir("files")
    source = work / "source"
    for i in range(count):
        path = source / f"d{i % 100:02d}" / f"f{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 4096)
    yaml_file = _pull_yaml(work, "prefect.yaml", source.as_uri())
    home = work / "home"
    commands = ctx.pair(
        _fresh(lambda target: ctx.stepengine(yaml_file, "pull", target, home), work / "out-stepengine", home),
        _fresh(lambda target: ctx.prefect(yaml_file, "pull", target), work / "out-prefect"),
    )
    if "floor" in ctx.engines:
        commands["cp -r"] = _fresh(
            lambda target: Command(["cp", "-r", str(source), str(target / "copy")], target, ctx.base_env),
            work / "out-cp",
        )
    note = (
        f"`pull_from_remote_storage` of a `file://` folder of {count} × 4 KiB files (100 folders) into an "
        "empty directory, against `cp -r` of the same folder; the target issue 16 sets is 1.3× `cp -r`."
    )
    return [Scenario("files", f"12. file:// pull, {count} × 4 KiB", commands, note=note)]


def scenario_s3_many(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    server = _moto(stack)
    count = 50 if ctx.tiny else 10_000
    client = server.boto3_client()
    client.create_bucket(Bucket="many")
    body = b"x" * 4096
    for i in range(count):
        client.put_object(Bucket="many", Key=f"code/d{i % 100:02d}/f{i:05d}.txt", Body=body)
    work = ctx.fresh_dir("s3-many")
    yaml_file = _pull_yaml(work, "prefect.yaml", "s3://many/code", _s3_settings(server))
    home = work / "home"
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    commands = ctx.pair(
        _fresh(
            lambda target: ctx.stepengine(yaml_file, "pull", target, home, env=env),
            work / "out-stepengine",
            home,
        ),
        _fresh(lambda target: ctx.prefect(yaml_file, "pull", target, env=env), work / "out-prefect"),
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
            [str(ctx.stepengine_python), "-c", run.S3_FLOOR], work, floor_env
        )
    note = (
        f"`pull_from_remote_storage` of {count} × 4 KiB objects from moto on 127.0.0.1 into an empty directory "
        "(no blob manifest), against the server floor of scenario 4; the target is 1.3× the floor."
    )
    return [Scenario("s3-many", f"13. S3 pull, {count} × 4 KiB", commands, rounds=3, note=note)]


def scenario_s3_gib(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    server = _moto(stack)
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
    big = _pull_yaml(work, "big.yaml", "s3://gib/big", _s3_settings(server))
    small = _pull_yaml(work, "small.yaml", "s3://gib/small", _s3_settings(server))
    home = work / "home"
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    commands = ctx.pair(
        _fresh(
            lambda target: ctx.stepengine(big, "pull", target, home, env=env), work / "out-stepengine", home
        ),
        _fresh(lambda target: ctx.prefect(big, "pull", target, env=env), work / "out-prefect"),
    )
    if "stepengine" in ctx.engines:
        commands["stepengine, one 4 KiB object (baseline)"] = _fresh(
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


def scenario_outputs(ctx: Context) -> list[Scenario]:
    work = ctx.fresh_dir("outputs")
    count, size = (100, 1000) if ctx.tiny else (100_000, 1000)
    big = run._write(work / "big.yaml", OUTPUT_STEPS.format(count=count, size=size))
    tiny = run._write(work / "tiny.yaml", OUTPUT_STEPS.format(count=1, size=size))
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


def _moto(stack: contextlib.ExitStack) -> t.Any:
    try:
        from tests.fixtures.moto_server import start_moto_server
    except ImportError as exc:
        raise Skip(f"the moto fixture cannot be imported here ({exc})") from None
    return stack.enter_context(start_moto_server(check_credentials=False))


def _s3_settings(server: t.Any) -> str:
    return (
        f"      key: {server.key}\n      secret: {server.secret}\n"
        f"      client_kwargs:\n        endpoint_url: {server.endpoint_url}\n"
    )


SCENARIOS: dict[str, t.Callable[..., list[Scenario]]] = {
    "files": scenario_files,
    "s3-many": scenario_s3_many,
    "s3-gib": scenario_s3_gib,
    "outputs": scenario_outputs,
}
#: scenarios that start servers
NEEDS_STACK = {"s3-many", "s3-gib"}

if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through the harness: python -m benchmarks --scenarios files,s3-many,s3-gib,outputs")
