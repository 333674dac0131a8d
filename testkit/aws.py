"""The AWS side of a test or benchmark under moto: fake credentials, the stack's table and bucket, the callers."""

from __future__ import annotations

from typing import Any

TABLE = "liveness-sessions"
BUCKET = "liveness-archive"
OWNER = "user-a-sub"
OTHER = "user-b-sub"

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def create_aws_resources(dynamodb: Any, s3: Any) -> None:
    """The table and bucket the CDK stack creates: pk ``sessionId``, TTL on ``ttl``."""
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "sessionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    s3.create_bucket(Bucket=BUCKET)
