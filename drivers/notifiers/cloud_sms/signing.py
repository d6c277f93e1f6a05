"""Request signatures of the two SMS clouds, pure functions of their inputs (so tests can pin them).

Aliyun RPC style (SignatureVersion 1.0, HMAC-SHA1) and Tencent Cloud API 3.0 (TC3-HMAC-SHA256), written
out with hashlib/hmac instead of the vendor SDKs: both are a few lines, and the SDKs pull in large
dependency trees that are slow to install on a 32-bit Raspberry Pi.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote


def aliyun_encode(value: str) -> str:
    """RFC 3986 percent-encoding as Aliyun wants it: only A-Z a-z 0-9 - _ . ~ stay, space is %20."""
    return quote(value, safe="~")


def aliyun_canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name, each name and value encoded, joined with `&`."""
    return "&".join(f"{aliyun_encode(k)}={aliyun_encode(v)}" for k, v in sorted(params.items()))


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """`METHOD&%2F&encode(canonical query)`."""
    return f"{method}&{aliyun_encode('/')}&{aliyun_encode(aliyun_canonical_query(params))}"


def aliyun_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """Base64 HMAC-SHA1 of the string to sign, keyed with `secret + '&'` (the `Signature` parameter)."""
    digest = hmac.new(f"{secret}&".encode(), aliyun_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aliyun_timestamp(ts: float) -> str:
    """ISO 8601 in UTC, seconds precision: `2017-07-12T02:42:19Z`."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


TC3 = "TC3-HMAC-SHA256"


def tc3_canonical_request(host: str, content_type: str, payload: bytes) -> str:
    """POST to `/` with an empty query, signing the `content-type` and `host` headers."""
    hashed = hashlib.sha256(payload).hexdigest()
    headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    return f"POST\n/\n\n{headers}\ncontent-type;host\n{hashed}"


def tc3_string_to_sign(timestamp: int, service: str, canonical_request: str) -> str:
    """Algorithm, timestamp, `date/service/tc3_request` (UTC date) and the canonical request's hash."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    hashed = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{TC3}\n{timestamp}\n{date}/{service}/tc3_request\n{hashed}"


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 with the key derived from `TC3<secret>` → date → service → `tc3_request`."""

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing_key = mac(mac(mac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(secret_id: str, secret_key: str, *, host: str, service: str, content_type: str,
                      payload: bytes, timestamp: int) -> str:
    """The `Authorization` header for one POST of `payload` at `timestamp`."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    to_sign = tc3_string_to_sign(timestamp, service, tc3_canonical_request(host, content_type, payload))
    signature = tc3_signature(secret_key, date, service, to_sign)
    return (f"{TC3} Credential={secret_id}/{date}/{service}/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={signature}")
