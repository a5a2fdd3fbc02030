"""Amazon S3 and S3-compatible services (MinIO, Ceph RGW, Wasabi, Garage, …): bucket policy, public URLs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import quote

from libcloud.storage.drivers.s3 import REGION_TO_HOST_MAP, S3StorageDriver

from ..config import ConfigError
from .common import IF_NONE_MATCH, CreateOnly, Provider, expect, origin, storage_timeout

PUBLIC_READ_SID = "InboxPublicReadObjects"


def _open_s3(config: Mapping):
    region, host = config.get("STORAGE_REGION", "us-east-1"), config.get("STORAGE_HOST")
    if host is None and region not in REGION_TO_HOST_MAP:
        raise ConfigError(
            f"STORAGE_REGION={region!r} is not an AWS region libcloud knows ({', '.join(sorted(REGION_TO_HOST_MAP))}); "
            "for another S3-compatible service set STORAGE_HOST (and STORAGE_PORT, STORAGE_SECURE) too"
        )
    driver = S3StorageDriver(
        config["STORAGE_KEY"],
        config["STORAGE_SECRET"],
        secure=config.get("STORAGE_SECURE", True),
        host=host,
        port=config.get("STORAGE_PORT"),
        region=region if region in REGION_TO_HOST_MAP else None,
        timeout=storage_timeout(config),
    )
    # The constructor accepts AWS's region names only; S3-compatible services name their own,
    # and requests are signed with whatever region_name holds.
    driver.region_name = region
    if region != "us-east-1":
        driver.ex_location_name = region  # sent as the LocationConstraint when creating the bucket
    return driver


def _s3_make_public(driver, container) -> None:
    """Add (once) a bucket-policy statement letting anyone GET objects; other statements are kept."""
    region = driver.region_name
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    statement = {
        "Sid": PUBLIC_READ_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:{partition}:s3:::{container.name}/*",
    }
    path = "/" + container.name
    # raw: the policy is JSON (the driver would parse it as XML), and 404 means "no policy yet".
    answer = driver.connection.request(path, params={"policy": ""}, raw=True)
    expect(answer, 200, 404)
    policy = json.loads(answer.body) if answer.status == 200 else {"Version": "2012-10-17"}
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    if statement in statements:
        return
    policy["Statement"] = [other for other in statements if other.get("Sid") != PUBLIC_READ_SID] + [statement]
    answer = driver.connection.request(
        path,
        params={"policy": ""},
        method="PUT",
        data=json.dumps(policy),
        headers={"Content-Type": "application/json"},
        raw=True,
    )
    expect(answer, 200, 204)


def _s3_url_base(driver, container, config: Mapping) -> str:
    if "STORAGE_HOST" not in config and "." not in container.name:
        return f"https://{container.name}.{driver.connection.host}"  # AWS: virtual-hosted style
    return f"{origin(driver.connection)}/{quote(container.name)}"  # path style: any endpoint, any port


S3_NEEDS = {"STORAGE_KEY": "the access key id", "STORAGE_SECRET": "the secret access key"}
S3_FIX = "turn off the bucket's Block Public Access settings for bucket policies"
S3_CREATE_ONLY = CreateOnly(IF_NONE_MATCH, re.compile(r"Status code: 412\b"))
S3 = Provider(S3_NEEDS, _open_s3, _s3_make_public, _s3_url_base, S3_CREATE_ONLY, S3_FIX)
MINIO = Provider(
    {**S3_NEEDS, "STORAGE_HOST": "the server's host name, e.g. minio.internal (with STORAGE_PORT, STORAGE_SECURE)"},
    _open_s3,
    _s3_make_public,
    _s3_url_base,
    S3_CREATE_ONLY,
    S3_FIX,
)
