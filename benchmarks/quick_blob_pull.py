"""Quick measurement (not the Prefect side-by-side harness): pull N small objects from moto on loopback.

    PYTHONPATH=. python benchmarks/quick_blob_pull.py [--objects 1000] [--size 4096] [--runs 5] [--auth]
                                                      [--concurrency 32]

Reports the median of ``--runs`` for: stepengine first pull (empty manifest) and re-pull of unchanged
objects, each through the botocore path S3 pulls normally take and through the s3fs path (the one
options botocore cannot take go through), and two in-process baselines doing what Prefect's steps do
underneath: ``s3fs.get(recursive=True)`` (``pull_from_remote_storage``) and a sequential boto3
download loop (``prefect_aws`` ``pull_from_s3``). Imports are warmed before timing. Next to the wall
time: this process's CPU time and the moto server's (from ``/proc/<pid>/stat``), since moto, a
Python server on the same cores, is what bounds a pull of many small objects.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stepengine.builtin_steps import _blob_io, blob
from testkit.moto_server import start_moto_server

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (utime and stime, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn, server_pid: int) -> tuple[float, float, float]:
    """(wall, this process's CPU, the server's CPU) in seconds for one call of ``fn``."""
    server, mine, start = process_cpu(server_pid), own_cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - start, own_cpu() - mine, process_cpu(server_pid) - server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=_blob_io.DEFAULT_CONCURRENCY)
    parser.add_argument("--auth", action="store_true", help="moto checks credentials (slower server)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="blobbench."))
    os.environ["STEPENGINE_HOME"] = str(work / "home")
    import boto3  # noqa: F401  (warm imports: we time transfers, not imports)
    import botocore.session  # noqa: F401
    import s3fs

    with start_moto_server(check_credentials=args.auth) as server:
        client = server.boto3_client()
        client.create_bucket(Bucket="bench")
        for i in range(args.objects):
            client.put_object(Bucket="bench", Key=f"proj/d{i % 20}/f{i}.bin", Body=os.urandom(args.size))
        url, options = "s3://bench/proj", server.s3fs_options()
        os.chdir(work)
        results: dict[str, list[tuple[float, float, float]]] = {}

        def stepengine(botocore_path: bool) -> None:
            _blob_io._S3_WITH_BOTOCORE = botocore_path
            label = "botocore" if botocore_path else "s3fs"
            shutil.rmtree(work / "home", ignore_errors=True)
            shutil.rmtree(work / "out", ignore_errors=True)

            def pull() -> None:
                blob.pull_from_blob_storage(url, directory="out", concurrency=args.concurrency, **options)

            results.setdefault(f"stepengine first pull ({label} path)", []).append(timed(pull, server.pid))
            results.setdefault(f"stepengine re-pull ({label} path)", []).append(timed(pull, server.pid))

        def plain_s3fs() -> None:
            fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
            fs.get("bench/proj/", str(work / "plain"), recursive=True)

        def sequential_boto3() -> None:
            c = server.boto3_client()
            for page in c.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="proj/"):
                for obj in page.get("Contents", []):
                    target = work / "seq" / obj["Key"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    c.download_file("bench", obj["Key"], str(target))

        for _ in range(args.runs):
            stepengine(True)
            stepengine(False)
            shutil.rmtree(work / "plain", ignore_errors=True)
            results.setdefault("s3fs get(recursive) [Prefect remote-storage way]", []).append(
                timed(plain_s3fs, server.pid)
            )
            shutil.rmtree(work / "seq", ignore_errors=True)
            results.setdefault("boto3 sequential [prefect_aws pull_from_s3 way]", []).append(
                timed(sequential_boto3, server.pid)
            )
    _blob_io._S3_WITH_BOTOCORE = True
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.objects} objects x {args.size} B, moto on 127.0.0.1 (credential checks: {args.auth}), "
        f"concurrency {args.concurrency}, median of {args.runs} runs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'':52s} {'wall':>8s} {'own CPU':>8s} {'moto CPU':>9s}")
    for name, values in results.items():
        wall, cpu, server_cpu = (statistics.median(v[i] for v in values) for i in range(3))
        print(
            f"  {name:52s} {wall:7.3f}s {cpu:7.3f}s {server_cpu:8.3f}s   (wall min {min(v[0] for v in values):.3f}, "
            f"max {max(v[0] for v in values):.3f})"
        )


if __name__ == "__main__":
    main()
