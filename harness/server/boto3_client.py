"""A boto3 client pointed at a fake SES's HTTP API (`FakeSES.boto3_client`)."""

from __future__ import annotations

from typing import Any


def boto3_client(
    service: str, api_url: str, region: str, credentials: tuple[str, str], **config: Any
) -> Any:
    """A boto3 client for `service` ("sesv2" or "ses") at `api_url`; `config` goes to
    `botocore.config.Config`, one attempt per call unless it says otherwise."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as missing:
        raise RuntimeError(
            "boto3_client needs boto3: pip install 'ses-fault-harness[aws]'"
        ) from missing
    key, secret = credentials
    config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
    return boto3.client(
        service,
        endpoint_url=api_url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(**config),
    )
