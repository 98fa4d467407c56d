"""Verifying AWS Signature Version 4 on the local runtime's AWS-shaped endpoints.

``@connections`` (service ``execute-api``) and the Lambda ``Invoke`` API (service ``lambda``) accept a
request only when it is signed, for that service and the local region, with credentials the local
runtime knows: the dummy keys every Lambda worker is given (:data:`LOCAL_CREDENTIALS`, the same as
``wiring.DUMMY_CREDENTIALS``). The signature is recomputed with botocore's own signer
(:class:`botocore.auth.SigV4Auth`: canonical request, string to sign, signing key) over the request
as received, the signed headers being exactly those the ``Authorization`` header lists, and compared
in constant time. As on AWS, a signature dated more than 5 minutes away from now is refused.

The keys are not secret (anyone may read them here); what the check buys locally is that a request
must be *deliberately* signed for this service and region by an AWS SDK or the AWS CLI. A web page
cannot do that: a browser sends an ``Authorization`` header cross-origin only after a CORS preflight,
which the local runtime never grants.

Errors are API Gateway's: HTTP 403 with ``{"message": ...}`` and an ``x-amzn-ErrorType`` code
(``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
``UnrecognizedClientException``, ``InvalidSignatureException``), which botocore turns into a
``ClientError`` with that code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from serverless_app.local.errors import SignatureError
from serverless_app.local.wiring import DUMMY_CREDENTIALS

__all__ = [
    "LOCAL_CREDENTIALS",
    "MAX_CLOCK_SKEW_S",
    "verify_sigv4",
]

LOCAL_CREDENTIALS: Mapping[str, tuple[str, str | None]] = {
    DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]: (
        DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
}
"""Access key id → (secret key, session token): what the Lambda workers sign with. A request may
also leave the session token out (``wschat``'s own management client does)."""
MAX_CLOCK_SKEW_S = 300
_ALGORITHM = "AWS4-HMAC-SHA256"
_FIELDS = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]+)")
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)


class _Recomputer(SigV4Auth):
    """botocore's signer, told which headers the client signed and when (instead of choosing them)."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: list[str]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                headers[name] = value
        return headers


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    service: str,
    region: str,
    credentials: Mapping[str, tuple[str, str | None]] = LOCAL_CREDENTIALS,
    now: dt.datetime | None = None,
) -> str:
    """Check a request's SigV4 ``Authorization``; return the access key id, or raise :class:`SignatureError`.

    ``raw_path`` is the path and query string exactly as received (still percent-encoded), since
    the client signed those bytes. A repeated header counts with every value when ``headers`` is a
    multidict (aiohttp's ``request.headers``).
    """
    authorization = _get(headers, "Authorization")
    if authorization is None:
        raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
    if not authorization.startswith(_ALGORITHM + " "):
        raise SignatureError(
            "IncompleteSignatureException",
            f"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            f"Authorization={authorization.split(' ', 1)[0]}",
        )
    fields = dict(_FIELDS.findall(authorization))
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if missing:
        raise SignatureError(
            "IncompleteSignatureException",
            f"Authorization header requires '{missing[0]}' parameter. Authorization={authorization}",
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureError("IncompleteSignatureException", "Credential is malformed")
    access_key, date, scope_region, scope_service, _ = scope
    if access_key not in credentials:
        raise SignatureError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    secret, token = credentials[access_key]
    if scope_service != service:
        raise SignatureError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'. ",
        )
    if scope_region != region:
        raise SignatureError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'. ",
        )
    stamp = _get(headers, "X-Amz-Date")
    if stamp is None:
        raise SignatureError(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    try:
        signed_at = dt.datetime.strptime(stamp, _TIMESTAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        raise SignatureError(
            "IncompleteSignatureException", f"Date must be in ISO-8601 'basic format'. Got '{stamp}'."
        ) from None
    if date != stamp[:8]:
        raise SignatureError("InvalidSignatureException", "Credential should be scoped to a valid date.")
    current = now or dt.datetime.now(dt.UTC)
    if abs((current - signed_at).total_seconds()) > MAX_CLOCK_SKEW_S:
        earliest = (current - dt.timedelta(seconds=MAX_CLOCK_SKEW_S)).strftime(_TIMESTAMP)
        raise SignatureError(
            "InvalidSignatureException",
            f"Signature expired: {stamp} is now earlier than {earliest} "
            f"({current.strftime(_TIMESTAMP)} - 5 min.)",
        )
    sent_token = _get(headers, "X-Amz-Security-Token")
    if sent_token is not None and sent_token != token:
        raise SignatureError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        raise SignatureError("InvalidSignatureException", "'Host' must be a signed header.")
    declared = _get(headers, "X-Amz-Content-SHA256")
    if declared is not None and declared != hashlib.sha256(body).hexdigest():
        raise SignatureError(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )

    request = AWSRequest(method=method, url=f"http://{_get(headers, 'Host') or ''}{raw_path}", data=body)
    for name in signed:
        values = _get_all(headers, name)
        if not values:
            raise SignatureError("InvalidSignatureException", _MISMATCH)
        for value in values:
            request.headers[name] = value
    request.context["timestamp"] = stamp
    signer = _Recomputer(Credentials(access_key, secret, token), service, region, signed)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureError("InvalidSignatureException", _MISMATCH)
    return access_key


def _get_all(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = _get(headers, name)
    return [] if value is None else [value]


def _get(headers: Mapping[str, str], name: str) -> str | None:
    """A header, case-insensitively (aiohttp's headers are; a plain dict may not be)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None
