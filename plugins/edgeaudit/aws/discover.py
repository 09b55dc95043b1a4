"""What `edgeaudit init` can find out about a site from its URL, with read calls only: the
CloudFront distribution that serves the host (its aliases), the S3 bucket behind it (the origin
its default behaviour serves; with an origin group, the primary, and the failover as the
replica), and that bucket's region."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# An S3 origin's domain: <bucket>.s3[.-]<region>.amazonaws.com, or the global <bucket>.s3.amazonaws.com
S3_ORIGIN = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.s3(?:[.-](?P<region>[a-z0-9-]+))?"
                       r"\.amazonaws\.com(?:\.cn)?$")


class NotFound(LookupError):
    """The site's distribution or bucket could not be found; the message says what to pass."""


@dataclass(frozen=True)
class Found:
    distribution_id: str
    bucket: str
    region: str
    replica_bucket: str | None = None


def distribution_for_host(cloudfront: Any, host: str) -> str:
    """The id of the one distribution whose aliases (or default domain) include `host`."""
    matches = [summary["Id"] for page in cloudfront.get_paginator("list_distributions").paginate()
               for summary in (page.get("DistributionList") or {}).get("Items", [])
               if host == summary.get("DomainName") or host in (summary.get("Aliases") or {}).get("Items", [])]
    if len(matches) != 1:
        found = "no distribution" if not matches else f"{len(matches)} distributions ({', '.join(matches)})"
        raise NotFound(f"{found} of this account serves {host}: pass --distribution-id")
    return matches[0]


def buckets_of(cloudfront: Any, distribution_id: str) -> tuple[str, str | None]:
    """(origin bucket, replica bucket or None): the S3 origin the default behaviour serves; when
    it serves an origin group, its primary member, and the failover member as the replica."""
    config = cloudfront.get_distribution_config(Id=distribution_id)["DistributionConfig"]
    domains = {origin["Id"]: origin["DomainName"] for origin in config["Origins"].get("Items", [])}
    groups = {group["Id"]: [m["OriginId"] for m in group["Members"]["Items"]]
              for group in (config.get("OriginGroups") or {}).get("Items", [])}
    served = config["DefaultCacheBehavior"]["TargetOriginId"]
    members = groups.get(served, [served])
    buckets = [m["bucket"] for member in members if (m := S3_ORIGIN.match(domains.get(member, "")))]
    if not buckets:
        raise NotFound(f"distribution {distribution_id} serves {served}, which is not an S3 bucket: pass --bucket")
    return buckets[0], (buckets[1] if len(buckets) > 1 else None)


def region_of(s3: Any, bucket: str) -> str:
    """The bucket's region (GetBucketLocation answers None for us-east-1)."""
    return s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"


def discover(session: Any, host: str, distribution_id: str | None = None, bucket: str | None = None,
             region: str | None = None) -> Found:
    """Fill in what was not given: the distribution from the host, the bucket from the
    distribution, the region from the bucket."""
    cloudfront = session.client("cloudfront", region_name="us-east-1")
    distribution_id = distribution_id or distribution_for_host(cloudfront, host)
    found, replica = buckets_of(cloudfront, distribution_id)
    bucket = bucket or found
    region = region or region_of(session.client("s3", region_name="us-east-1"), bucket)
    return Found(distribution_id, bucket, region, replica if bucket == found else None)
