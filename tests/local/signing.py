"""SigV4-signed ``urllib`` requests, as an AWS SDK would send them, for probing the local endpoints."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["signed_request"]


def signed_request(
    url: str,
    *,
    method: str = "POST",
    data: bytes = b"",
    service: str = "execute-api",
    region: str = "us-east-1",
    access_key: str = "local",
    secret_key: str = "local",
    headers: Mapping[str, str] | None = None,
) -> urllib.request.Request:
    """``url`` signed with botocore's SigV4 signer (``url`` must already be percent-encoded)."""
    aws = AWSRequest(method=method, url=url, data=data, headers=dict(headers or {}))
    SigV4Auth(Credentials(access_key, secret_key), service, region).add_auth(aws)
    return urllib.request.Request(url, data=data or None, method=method, headers=dict(aws.headers.items()))
