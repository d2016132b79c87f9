"""The hub API's documented shapes (pydantic), for the OpenAPI document and the request bodies
FastAPI checks. The answers are written with orjson directly (hub/app.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from opd_fallback.hub import mirror


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class CentralIdIn(BaseModel):
    local_ref: str = Field(description="The offline number of the record (e.g. C03-261130-000042)")
    kind: str = Field(description="patient | visit | lab_order | payment")
    central_id: str = Field(description="The id central gave it (uhid, visit_id, order_id, receipt_id)")


class PushRequest(BaseModel):
    ops: list[dict[str, Any]] = Field(default_factory=list, max_length=mirror.MAX_PUSH_OPS,
                                      description="Op envelopes of the token's own counter, as sent to central")
    central_ids: list[CentralIdIn] = Field(default_factory=list, max_length=5000,
                                           description="Central ids this counter has learned")
    withdrawn: list[str] = Field(default_factory=list, max_length=5000,
                                 description="op_ids of this counter's ops a supervisor cancelled (never sent)")


class PushResult(BaseModel):
    op_id: str
    status: str = Field(description="stored | duplicate | rejected")
    error: ErrorDetail | None = None


class RefusedCentralId(BaseModel):
    local_ref: str
    error: ErrorDetail


class PushResponse(BaseModel):
    results: list[PushResult]
    central_ids_new: int
    central_ids_refused: list[RefusedCentralId] = Field(
        default_factory=list, description="Central ids not taken (another counter's record), with why")
    hub_seq: int = Field(description="The hub's sequence after this push was committed")


class KnownHub(BaseModel):
    db_id: str | None = Field(None, max_length=64, description="The hub db_id this counter last exchanged with")
    epoch: str | None = Field(None, max_length=64, description="The epoch it last exchanged with")
    acked_seq: int = Field(0, ge=0, le=mirror.MAX_SAFE_INT,
                           description="Its ops up to this seq were all acknowledged by that db_id and epoch")
    hub_seq: int = Field(0, ge=0, le=mirror.MAX_SAFE_INT, description="The highest hub sequence it has seen there")




class Holding(BaseModel):
    api_version: int
    device_id: str
    db_id: str = Field(description="Made once with the hub's database file; new file, new db_id")
    epoch: str = Field(description="Changes whenever the hub's data went back or was replaced")
    epoch_at: str
    epoch_reason: str
    max_seq: int = Field(description="Highest seq of this counter's ops on the hub (0: none)")
    ops: int = Field(description="How many of this counter's ops the hub holds")
    hub_seq: int
    vector: dict[str, int] = Field(description="Per counter, the highest seq the hub holds")
    ids_seq: int = Field(0, description="The highest hub sequence of a central id or withdrawal (nothing new: "
                         "no need to read /changes)")
    went_back: bool = Field(description="This counter's memory showed the hub had gone back: a new epoch began")
    held: list[list[int]] | None = Field(None, description="With want_held: runs [first, last] of seq held")
    pushed: PushResponse | None = Field(None, description="With ops: the push's answer (after COMMIT); null: "
                                        "not taken (another db_id or epoch, or the hub went back)")
    pulled: Pulled | None = Field(None, description="With pull: other counters' ops above the vector")


class PullRequest(BaseModel):
    vector: dict[str, Annotated[int, Field(ge=0, le=mirror.MAX_SAFE_INT)]] = Field(
        default_factory=dict, max_length=1000, description="Per counter, the highest seq the caller holds")
    limit: int = Field(1000, ge=1, le=mirror.MAX_PAGE)
    include_own: bool = False


class ExchangeRequest(BaseModel):
    known: KnownHub = Field(default_factory=KnownHub)
    want_held: bool = Field(False, description="Also list the runs of seq of this counter's ops the hub holds")
    ops: list[dict[str, Any]] = Field(
        default_factory=list, max_length=mirror.MAX_PUSH_OPS,
        description="This counter's ops after known.acked_seq, in seq order (at most 500 and 1 MiB): stored as "
                    "/ops:push stores them, only when known names the hub's db_id and epoch and the hub did not "
                    "go back (else pushed is null: push them by /ops:push)")
    pull: PullRequest | None = Field(None, description="Also pull by this vector: pulled, as /pull answers")


class Pulled(BaseModel):
    ops: list[PulledOp]
    vector: dict[str, int] = Field(description="The caller's vector after this page")
    done: bool
    epoch: str | None


class PulledOp(BaseModel):
    hub_seq: int
    received_at: str
    op: dict[str, Any] = Field(description="The envelope exactly as its counter pushed it")


class PulledCentralId(BaseModel):
    hub_seq: int
    local_ref: str
    kind: str
    central_id: str
    reported_by: str
    reported_at: str


class PulledWithdrawn(BaseModel):
    hub_seq: int
    op_id: str
    device_id: str


class Changes(BaseModel):
    ops: list[PulledOp]
    central_ids: list[PulledCentralId]
    withdrawn: list[PulledWithdrawn]
    next_cursor: int = Field(description="Pass as cursor next time (even when this page is empty)")
    done: bool


class DeviceInfo(BaseModel):
    device_id: str
    max_seq: int = Field(description="Highest seq of this counter's ops on the hub (0: none)")
    ops: int
    last_recorded_at: str | None
    last_push_at: str | None
    hub_seq: int


class Health(BaseModel):
    status: str
    server_time: str


class IndexRecord(BaseModel):
    local_ref: str
    kind: str
    device_id: str
    op_id: str
    recorded_at: str
    patient_ref: str | None
    visit_ref: str | None
    lab_order_ref: str | None
    name: str | None
    mobile: str | None
    uhid: str | None
    voided: bool
    central_id: str | None
    detail: dict[str, Any]


class IndexAnswer(BaseModel):
    records: list[IndexRecord]
