"""Edge versus origin: does the body CloudFront serves for a URL equal the object in the bucket?

The bucket is listed once per run (ETag and size of every key). A single-part upload's ETag is the
MD5 of its bytes, so the decoded body at the edge is compared with it directly; where the ETag
says nothing about the bytes (multipart uploads, SSE-KMS) or does not match, the object is read
and the SHA-256 of both decides. A stale edge cache, a failed upload or a missed invalidation
shows as a difference.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.exceptions

from edgeaudit.aws.clients import ACCESS_DENIED_CODES, Aws
from edgeaudit.errors import AccessDeniedError
from edgeaudit.rules.config import Target

_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


@dataclass(frozen=True)
class Comparison:
    """The verdict for one URL, and how it was reached."""

    url: str
    key: str | None
    same: bool
    how: str
    edge_status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "same": self.same, "how": self.how, "edge_status": self.edge_status}


class Origin:
    """The target's bucket as the distribution maps URLs onto it."""

    def __init__(self, aws: Aws, target: Target) -> None:
        self.aws = aws
        self.target = target
        config = aws.cloudfront.get_distribution_config(Id=target.distribution_id)["DistributionConfig"]
        self.root_object = config.get("DefaultRootObject") or ""
        self.objects = {item["Key"]: item for page in aws.s3.paginate("list_objects_v2", Bucket=target.bucket)
                        for item in page.get("Contents", [])}

    def key_for(self, url: str) -> str | None:
        """The object a URL is served from: the root object for "/", the path without its slash
        otherwise (a directory path tries its index.html too); None when the bucket has none."""
        path = urlsplit(url).path or "/"
        if path == "/":
            candidates = [self.root_object] if self.root_object else []
        else:
            key = unquote(path[1:])
            candidates = [key, key + "index.html"] if key.endswith("/") else [key]
        return next((key for key in candidates if key in self.objects), None)

    def compare(self, url: str, status: int, body: bytes) -> Comparison:
        key = self.key_for(url)
        if status != 200:
            return Comparison(url, key, False, f"the edge answered {status}", status)
        if key is None:
            return Comparison(url, None, False, "no object in the bucket serves this URL", status)
        etag = self.objects[key].get("ETag", "")
        single_part = _MD5_ETAG.match(etag)
        if single_part and hashlib.md5(body).hexdigest() == single_part.group(1):
            return Comparison(url, key, True, "MD5 of the edge body equals the object's ETag", status)
        origin_sha = hashlib.sha256(self._read(key)).hexdigest()
        same = hashlib.sha256(body).hexdigest() == origin_sha
        how = "SHA-256 of the edge body and of the object " + ("match" if same else "differ")
        return Comparison(url, key, same, how, status)

    def _read(self, key: str) -> bytes:
        """The object's bytes (a streamed read, so not through the run's answer cache)."""
        try:
            answer = self.aws.s3.raw.get_object(Bucket=self.target.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ACCESS_DENIED_CODES:
                raise AccessDeniedError("s3:GetObject", f"{self.target.bucket}/{key}",
                                        f"{code} from s3:GetObject") from None
            raise
        with answer["Body"] as body:
            return body.read()
