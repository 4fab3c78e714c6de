"""Test infrastructure shared by the test suite and the benchmarks: real servers on 127.0.0.1.

Not part of stepengine (the wheel ships ``stepengine`` only, the built-in steps inside it) and free of pytest,
so ``python -m benchmarks`` and plain scripts import it from the repository root. Each module starts
one real component and stops it by PID when its context manager exits:

- ``processes``: free loopback ports, waiting for a port, stopping a process group;
- ``git_server``: git smart-HTTP (token auth, HTTP or HTTPS) and repositories to serve;
- ``moto_server``: S3 (moto); ``azurite``: Azure Blob; ``gcs_emulator``: GCS;
- ``docker_engine``: a private dockerd (no bridge, no iptables) and a registry with htpasswd auth;
- ``prefect_server``: ``prefect server start`` from Prefect's own venv.

The pytest fixtures wrapping them live in ``tests/fixtures/`` (each a thin layer: a fixture calls the
context manager, and a missing tool skips the test with the reason).
"""
