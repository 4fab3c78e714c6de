"""A real S3 server (moto) on 127.0.0.1, as a context manager (pytest fixture: tests/fixtures/moto_server.py).

In a benchmark or script::

    from testkit.moto_server import start_moto_server

    with start_moto_server() as s3:
        fs = s3fs.S3FileSystem(**s3.s3fs_options())
        ...

With ``check_credentials`` (the default) moto verifies every request's access key: the server starts
with ``INITIAL_NO_AUTH_ACTION_COUNT=3`` and those three unauthenticated calls create an IAM user with
an ``s3:*`` + ``iam:*`` policy (so tests can create narrower users) and its access key, which is what ``S3Server.key`` / ``.secret`` hold.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import typing as t

from testkit.processes import free_port, stop, wait_for_port


class S3Server(t.NamedTuple):
    endpoint_url: str
    key: str
    secret: str
    pid: int

    def s3fs_options(self) -> dict[str, t.Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` (also valid as stepengine storage options)."""
        return {"key": self.key, "secret": self.secret, "endpoint_url": self.endpoint_url}

    def boto3_client(self) -> t.Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )


@contextlib.contextmanager
def start_moto_server(*, check_credentials: bool = True, port: int | None = None) -> t.Iterator[S3Server]:
    """Start ``moto.server`` on 127.0.0.1 (a free port unless given); stop it by PID on exit."""
    port = port or free_port()
    env = dict(os.environ)
    # moto reads these for its own (fake) account; never real credentials
    env.update(
        AWS_ACCESS_KEY_ID="bootstrap", AWS_SECRET_ACCESS_KEY="bootstrap", AWS_DEFAULT_REGION="us-east-1"
    )
    if check_credentials:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc, name="moto server")
        endpoint = f"http://127.0.0.1:{port}"
        key, secret = _create_access_key(endpoint) if check_credentials else ("testing", "testing")
        yield S3Server(endpoint, key, secret, proc.pid)
    finally:
        stop(proc)


def _create_access_key(endpoint: str) -> tuple[str, str]:
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="stepengine")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName="stepengine", PolicyName="s3-and-iam", PolicyDocument=json.dumps(policy))
    created = iam.create_access_key(UserName="stepengine")["AccessKey"]
    return created["AccessKeyId"], created["SecretAccessKey"]
