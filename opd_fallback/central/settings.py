"""Settings of the reference central server (env prefix ``OPD_CENTRAL_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CentralSettings(BaseSettings):
    """Where the data lives, how much load to accept, and faults to inject (all off by default)."""

    model_config = SettingsConfigDict(env_prefix="OPD_CENTRAL_", extra="ignore")

    db: Path = Path("central.db")
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    master_data: Path | None = None
    max_in_flight: int = Field(default=64, ge=1)
    ssl_certfile: Path | None = None  # serve HTTPS directly (else put a TLS proxy in front)
    ssl_keyfile: Path | None = None
    http_impl: str = "auto"  # uvicorn's HTTP parser: auto (httptools when installed) or h11
    retry_after_s: int = Field(default=2, ge=1)
    # /openapi.json and /docs without a token: only on a developer's machine
    dev_docs: bool = False
    # fault injection, for tests and drills
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    lost_response_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    reset_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0)
    seed: int | None = None

    @property
    def faults_on(self) -> bool:
        return bool(self.fail_rate or self.lost_response_rate or self.reset_rate or self.latency_ms)
