"""Start the servers the `remote-store` stack talks to, on 127.0.0.1 and free ports, and stop them (whole process
group) afterwards: an S3-compatible object store (moto's server mode) and an MLflow tracking server whose
artifacts go to that store. Used by tests and benchmarks; also handy by hand:

    python -m stacks.servers      # prints the environment for `python -m stacks.register remote-store`, Ctrl-C stops
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from har_core.training.process_tree import stop_process_tree

logger = logging.getLogger(__name__)

BIN = Path(sys.executable).parent
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _process(command: list[str], health_url: str, env: dict[str, str], log: Path, timeout_s: float) -> Iterator[None]:
    """Run `command` in its own process group until the block ends; wait until `health_url` answers."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(health_url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not answer {health_url} in {timeout_s:.0f} s") from None
                time.sleep(0.3)
        yield
    finally:
        stop_process_tree(process, grace_s=10.0, group=True)  # servers fork workers into their group


@contextlib.contextmanager
def moto_s3_server(workdir: Path, bucket: str) -> Iterator[str]:
    """An S3-compatible endpoint (moto server mode) with `bucket` created; yields its URL."""
    import boto3

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with _process(command, f"{url}/moto-api/", {**os.environ}, Path(workdir) / "moto.log", 60):
        boto3.client("s3", endpoint_url=url, **_boto_credentials()).create_bucket(Bucket=bucket)
        yield url


@contextlib.contextmanager
def mlflow_tracking_server(workdir: Path, artifacts_destination: str, s3_endpoint: str | None = None) -> Iterator[str]:
    """A real `mlflow server` (sqlite backend, artifacts proxied to `artifacts_destination`); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **S3_CREDENTIALS}
    if s3_endpoint:
        env["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint
    command = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts_destination,
    ]
    with _process(command, f"{url}/health", env, Path(workdir) / "mlflow-server.log", 180):
        yield url


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@contextlib.contextmanager
def remote_store_servers(workdir: Path, bucket: str = "har-clip") -> Iterator[dict[str, str]]:
    """Both servers; yields the environment `stacks/remote-store.yaml` reads when registering."""
    with (
        moto_s3_server(workdir, bucket) as s3_url,
        mlflow_tracking_server(workdir, f"s3://{bucket}/mlflow", s3_url) as mlflow_url,
    ):
        yield {"HAR_S3_ENDPOINT_URL": s3_url, "HAR_S3_BUCKET": bucket, "HAR_MLFLOW_TRACKING_URI": mlflow_url}


def main() -> None:
    import tempfile

    logging.basicConfig(level=logging.INFO)
    with tempfile.TemporaryDirectory() as workdir, remote_store_servers(Path(workdir)) as environment:
        print(
            " ".join(f"{key}={value}" for key, value in environment.items()), "python -m stacks.register remote-store"
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
