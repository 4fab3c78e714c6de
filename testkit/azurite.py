"""A real Azure Blob server (Azurite, from npm) on 127.0.0.1, as a context manager (pytest fixture: tests/fixtures/azurite.py).

Azurite is installed by ``.ci/install.d/40-blob-storage.sh`` under ``/opt/stepengine-ci/azurite``
(override with ``STEPENGINE_AZURITE_BLOB=/path/to/azurite-blob``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import typing as t
from pathlib import Path

from testkit.processes import free_port, stop, wait_for_port

#: Azurite's documented development account (public, not a secret)
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_BINARY = "/opt/stepengine-ci/azurite/node_modules/.bin/azurite-blob"


class AzuriteServer(t.NamedTuple):
    blob_endpoint: str
    connection_string: str
    pid: int


def find_azurite() -> str | None:
    for candidate in (
        os.environ.get("STEPENGINE_AZURITE_BLOB"),
        shutil.which("azurite-blob"),
        DEFAULT_BINARY,
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@contextlib.contextmanager
def start_azurite() -> t.Iterator[AzuriteServer]:
    binary = find_azurite()
    if binary is None:
        raise RuntimeError("azurite-blob not found: run .ci/install.d/40-blob-storage.sh")
    port = free_port()
    # Azurite writes its debug/extent files in the working directory even in memory: give it a temp one
    workdir = tempfile.mkdtemp(prefix="azurite.")
    proc = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc, name="azurite-blob")
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={endpoint};"
        )
        yield AzuriteServer(endpoint, conn, proc.pid)
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
