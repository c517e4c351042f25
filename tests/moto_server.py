"""A real moto HTTP server on 127.0.0.1 for tests that call AWS APIs over the network.

Moto keeps its state per process, so every server started here shares one store: tests keep apart
by using their own accounts (moto gives each assumed-role account its own state)."""
from __future__ import annotations

import contextlib
import json
import logging
import urllib.request
from dataclasses import dataclass
from typing import Iterator

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class MotoServer:
    url: str

    def client(self, service: str, credentials: dict | None = None, region: str = REGION):
        return boto3.client(service, endpoint_url=self.url, region_name=region, **(credentials or KEYS))

    def account_credentials(self, account_id: str, role: str = "OrganizationAccountAccessRole") -> dict:
        """Credentials that act in ``account_id`` (moto maps assumed-role sessions to the role's account)."""
        c = self.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{role}", RoleSessionName="tests")
        cred = c["Credentials"]
        return {"aws_access_key_id": cred["AccessKeyId"], "aws_secret_access_key": cred["SecretAccessKey"],
                "aws_session_token": cred["SessionToken"]}

    @contextlib.contextmanager
    def enforcing_iam(self) -> Iterator[None]:
        """Within the block, moto checks every request against the caller's IAM policies."""
        previous = self._reset_auth("0")
        try:
            yield
        finally:
            self._reset_auth(previous)

    def _reset_auth(self, count: str) -> str:
        req = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=count.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(json.loads(resp.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield MotoServer(f"http://{host}:{port}")
    finally:
        server.stop()
