"""A real S3 HTTP endpoint for the tests: moto's server on 127.0.0.1, port chosen by the OS.

One server per test session (``s3_endpoint`` fixture); ``reset()`` empties it between tests through moto's
``/moto-api/reset`` endpoint. Clients (s3fs, boto3, child processes) talk to it over HTTP like to AWS.
"""

from __future__ import annotations

import urllib.request
import uuid

# moto accepts any credentials; these names keep botocore from looking for real ones.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "scout-persist-test",
    "AWS_SECRET_ACCESS_KEY": "scout-persist-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """A moto S3 server in a thread of this process, bound to loopback only."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket with a fresh name (or ``name``) and return its name."""
        import boto3

        name = name or f"scout-{uuid.uuid4().hex[:20]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """Environment that points fsspec/s3fs (and child processes) at this server."""
        return {
            **CREDENTIALS,
            "FSSPEC_S3_ENDPOINT_URL": self.url,
            "FSSPEC_S3_KEY": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "FSSPEC_S3_SECRET": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }
