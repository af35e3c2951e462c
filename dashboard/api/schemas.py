"""The shapes the API takes and gives, for validation and for the OpenAPI document.

What it gives about a staging is the presenter's (provisioning.presenters), the very objects
``ds list --json`` and ``ds show --json`` print: these models name the fields every client may
rely on and let every other field the presenter carries through unchanged (``extra="allow"``
on plain pydantic models; ninja's Schema would drop them). What it takes refuses unknown
fields, so that a field this version does not know (e.g. ``ttl_hours`` before stagings
expire) is an error rather than silently ignored.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Takes(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateStagingIn(Takes):
    branch: str = Field(description="The git branch to run; it must have an image.")
    source: str | None = Field(
        default=None, description="Snapshot source (RDS instance) to restore the dedicated "
                                  "database from; default: the host's database.")
    db_mode: Literal["dedicated", "shared"] = Field(
        default="dedicated", description="dedicated: its own copy of the data; shared: the "
                                         "host's database.")
    name: str | None = Field(default=None, description="Staging name; default: derived from "
                                                       "the branch.")
    ttl_hours: float | None = Field(
        default=None, gt=0, description="Hours it lives after this create and each redeploy; "
                                        "default DS_TTL_HOURS, at most DS_MAX_TTL_HOURS.")


class ExtendIn(Takes):
    hours: float | None = Field(default=None, gt=0, description="The new expiry is now + this "
                                "many hours (default DS_TTL_HOURS), never past now + "
                                "DS_MAX_TTL_HOURS.")


class RedeployIn(Takes):
    tag: str | None = Field(default=None, description="Image tag to deploy; default: the "
                                                      "branch's.")


class Gives(BaseModel):
    model_config = ConfigDict(extra="allow")


class StagingOut(Gives):
    name: str
    status: str
    url: str
    branch: str
    source: str
    db_mode: str
    owner: str
    created_at: datetime
    ready_at: datetime | None
    destroyed_at: datetime | None
    error: str


class StepOut(Gives):
    key: str
    label: str
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    detail: str
    error_code: str
    error_message: str


class ProgressOut(BaseModel):
    percent: int = Field(description="Share of the latest operation's steps done.")
    done: int
    total: int
    finished: bool
    seconds_left: float | None = Field(description="Estimated seconds until the operation "
                                                   "ends; null once it has ended.")


class StagingDetailOut(StagingOut):
    operation: str | None = Field(description="Kind of the latest operation.")
    operation_status: str | None
    steps: list[StepOut]
    progress: ProgressOut | None


class SourceOut(BaseModel):
    name: str
    is_host: bool
    snapshot: str | None = Field(description="Newest available snapshot, restored by a "
                                             "dedicated create.")
    snapshot_taken_at: datetime | None


class BranchOut(BaseModel):
    branch: str = Field(description="What a create is given: a branch known from a staging, "
                                    "else the image tag itself.")
    tag: str = Field(description="The image tag in the host's repository.")


class ErrorOut(BaseModel):
    error: str = Field(description="A stable code: bad_request, unauthorized, "
                                   "insufficient_scope, forbidden, not_found, name_taken, ...")
    detail: str = Field(description="One sentence for a person.")
