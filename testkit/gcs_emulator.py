"""A real GCS JSON-API server (gcp-storage-emulator) on 127.0.0.1, as a context manager (pytest fixture: tests/fixtures/gcs_emulator.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import typing as t

from testkit.processes import free_port, stop, wait_for_port


class GCSServer(t.NamedTuple):
    endpoint_url: str
    bucket: str
    pid: int


def find_gcs_emulator() -> str | None:
    """The ``gcp-storage-emulator`` program: on ``PATH`` or next to this interpreter."""
    beside = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    return shutil.which("gcp-storage-emulator") or (beside if os.path.exists(beside) else None)


@contextlib.contextmanager
def start_gcs_emulator(bucket: str = "stepengine-test") -> t.Iterator[GCSServer]:
    exe = find_gcs_emulator()
    if exe is None:
        raise RuntimeError("gcp-storage-emulator is not installed (the `dev` extra)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--default-bucket", bucket],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc, name="gcp-storage-emulator")
        yield GCSServer(f"http://127.0.0.1:{port}", bucket, proc.pid)
    finally:
        stop(proc)
