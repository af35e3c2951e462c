"""STS: who the dashboard calls AWS as, and in which region.

IAM: sts:GetCallerIdentity (allowed to every principal; no policy can deny it).
"""

from dataclasses import dataclass

from .base import client, translated_errors


@dataclass(frozen=True)
class CallerIdentity:
    account: str
    arn: str
    user_id: str


def caller_identity() -> CallerIdentity:
    with translated_errors("sts:GetCallerIdentity"):
        raw = client("sts").get_caller_identity()
    return CallerIdentity(account=raw["Account"], arn=raw["Arn"], user_id=raw.get("UserId", ""))

