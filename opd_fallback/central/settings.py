"""Settings of the reference central server (env prefix ``OPD_CENTRAL_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CentralSettings(BaseSettings):
    """Where the data lives, how much load to accept, and faults to inject (all off by default)."""

    model_config = SettingsConfigDict(env_prefix="OPD_CENTRAL_", extra="ignore")

    db: Path = Path("central.db")  # the SQLite file, when no database_url is given
    # sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/DB (a password belongs in ~/.pgpass
    # or PGPASSWORD, or at least in this env variable, never on a command line)
    database_url: str | None = None
    workers: int = Field(default=1, ge=1, le=64)  # uvicorn worker processes
    writers: int = Field(default=4, ge=1, le=64)  # PostgreSQL: batches applied at once per worker
    readers: int = Field(default=8, ge=1, le=64)  # reader connections per worker
    in_flight_file: Path | None = None  # set by `serve` for its workers: the shared in-flight count
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

    def database(self) -> str:
        """The database URL: ``database_url``, else the SQLite file ``db``."""
        return self.database_url or f"sqlite:///{self.db}"

    @property
    def faults_on(self) -> bool:
        return bool(self.fail_rate or self.lost_response_rate or self.reset_rate or self.latency_ms)
