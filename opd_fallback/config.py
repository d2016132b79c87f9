"""Counter configuration: a TOML file in the data directory, overridable by
``OPD_*`` environment variables; the device token lives in its own 0600 file.

Precedence: explicit arguments > environment (``OPD_CENTRAL_URL``,
``OPD_CENTRAL_TOKEN``, ...) > ``config.toml`` > defaults.

Everything the counter keeps holds patient data or a secret, so its files are
made owner-only here, whatever the umask: ``private_dir`` (0700 for folders we
create) and ``open_private`` / ``write_private`` (0600 files, never through a
symlink). The store, backups, spool, prints and the error log use them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Annotated, Any, Literal, cast, overload

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# file names, the data directory and config.toml are read in datadir.py, which quick commands use alone
from opd_fallback.datadir import CONFIG_FILE, DB_FILE, HUB_TOKEN_FILE, TOKEN_FILE, default_data_dir
from opd_fallback.datadir import DEVICE_ID as _DEVICE
from opd_fallback.datadir import read_toml as _read_toml
from opd_fallback.domain.errors import DomainError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path | str, *, tighten: bool = False) -> Path:
    """``mkdir -p`` where every folder it creates is 0700; ``tighten`` also makes
    an existing ``path`` 0700 (the counter's own data directory)."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    for made in missing:  # mkdir's mode is masked by the umask, and parents get the default
        os.chmod(made, PRIVATE_DIR_MODE)
    if tighten and (path.stat().st_mode & 0o777) != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def tighten_file(path: Path | str) -> None:
    """Make an existing file 0600 (best effort: a read-only disk or another owner says no)."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if st.st_mode & 0o077:
            os.chmod(path, PRIVATE_FILE_MODE, follow_symlinks=False)
    except (FileNotFoundError, NotImplementedError, PermissionError):
        pass
    except OSError:
        pass


@overload
def open_private(path: Path | str, mode: Literal["w", "a"] = "w", *, encoding: str | None = "utf-8") -> IO[str]: ...
@overload
def open_private(path: Path | str, mode: Literal["wb", "ab"], *, encoding: str | None = "utf-8") -> IO[bytes]: ...
def open_private(path: Path | str, mode: str = "w", *, encoding: str | None = "utf-8") -> IO[str] | IO[bytes]:
    """Open ``path`` for writing (``mode`` "w", "wb" or "a") as a 0600 file
    (created so, or tightened), refusing to follow a symlink planted at that name."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path | str, data: str | bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to a 0600 ``path``."""
    if isinstance(data, bytes):
        with open_private(path, "wb") as bfh:
            bfh.write(data)
            if fsync:
                bfh.flush()
                os.fsync(bfh.fileno())
        return
    with open_private(path, "w") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


# The printers there are: the one list (printing/base.py builds each).
PrinterKind = Literal["file", "pdf", "escpos-usb", "escpos-serial", "escpos-network", "none"]


class PrinterSettings(BaseModel):
    """The printer group of :class:`Settings` (``settings.printer``): where the
    counter prints. ``file`` writes text files (the default, and what the tests
    read); ``pdf`` makes a PDF and hands it to ``pdf_command`` (``lp`` by
    default) for the system printer; ``escpos-*`` drive a thermal printer directly.

    Set in config.toml as ``printer`` (the kind), ``printer_target`` (a directory
    for file/pdf, ``host:port`` for a network printer, a device path for serial,
    ``vid:pid`` in hex for USB) and ``paper_width_chars``, or by the same names
    in the environment (``OPD_PRINTER``, ``OPD_PRINTER_TARGET``,
    ``OPD_PAPER_WIDTH_CHARS``); every other field by ``OPD_PRINTER_<FIELD>``
    (``OPD_PRINTER_FONT_PATH``, ``OPD_PRINTER_LABEL_PRINTER``, ...)."""

    model_config = ConfigDict(extra="ignore")

    target: PrinterKind = "file"
    width_chars: int = Field(default=42, ge=24, le=80)  # 80 mm paper: 42-48, 58 mm: 32
    paper_mm: int = Field(default=80, ge=40, le=216)
    directory: Path | None = None  # file and pdf output; default <data_dir>/prints
    pdf_command: str | None = "lp"  # "" or None: only write the PDF
    font_path: Path | None = None  # a TTF with Devanagari for the PDF (e.g. NotoSansDevanagari)
    # a separate label printer for the sample labels (ZPL or TSPL): "host:port"
    # or a device file such as /dev/usb/lp0; empty: labels go to the printer above
    label_printer: Literal["", "zpl", "tspl"] = ""
    label_target: str | None = None
    usb_vendor: int = 0x04B8
    usb_product: int = 0x0202
    serial_port: str = "/dev/ttyUSB0"
    serial_baud: int = 9600
    host: str = "192.168.1.100"
    port: int = 9100
    timeout_s: float = Field(default=5.0, gt=0, le=60)


_PRINTER_ENV = "OPD_PRINTER_"
# set from the counter's own keys (printer, printer_target, paper_width_chars), never OPD_PRINTER_<FIELD>
_PRINTER_OWN = frozenset({"target", "width_chars"})


def printer_group(data: Mapping[str, object], environ: Mapping[str, str]) -> dict[str, object]:
    """The printer group's values from the counter's keys (``printer``,
    ``printer_target``, ``paper_width_chars``: given values, else the
    environment) over the ``OPD_PRINTER_<FIELD>`` variables."""
    env = {k.upper(): v for k, v in environ.items() if k.upper().startswith("OPD_")}
    values: dict[str, object] = {name: env[_PRINTER_ENV + name.upper()] for name in PrinterSettings.model_fields
                                 if name not in _PRINTER_OWN and _PRINTER_ENV + name.upper() in env}
    raw = data.get("printer", env.get("OPD_PRINTER"))
    if isinstance(raw, Mapping):
        return {**values, **raw}
    kind = "file" if raw is None else raw
    where = data["printer_target"] if "printer_target" in data else env.get("OPD_PRINTER_TARGET")
    width = data["paper_width_chars"] if "paper_width_chars" in data else env.get("OPD_PAPER_WIDTH_CHARS", 42)
    values.update(target=kind, width_chars=width)
    if kind in ("file", "pdf"):
        values["directory"] = Path(cast("str", where)) if where else None  # None: <data_dir>/prints
    elif kind == "escpos-network" and where:
        host, _, port = str(where).partition(":")
        values["host"] = host
        if port:
            values["port"] = int(port)
    elif kind == "escpos-serial" and where:
        values["serial_port"] = where
    elif kind == "escpos-usb" and where:
        vid, _, pid = str(where).partition(":")
        values["usb_vendor"], values["usb_product"] = int(vid, 16), int(pid, 16)
    return values


class Settings(BaseSettings):
    """Everything a counter needs to know about itself."""

    model_config = SettingsConfigDict(env_prefix="OPD_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    device_id: str = ""
    hospital: str = ""
    # the hospital's district and state: the registration form's defaults (most patients are local)
    hospital_district: str | None = None
    hospital_state: str | None = None
    central_url: str | None = None
    central_token: str | None = None
    ca_bundle: Path | None = None
    # the LAN hub (optional): counters of one hospital share records through it while central is down
    hub_url: str | None = None
    hub_token: str | None = None
    # sha256:<hex> of the hub's certificate, from the pairing line: checked on every connection (sync/pinning.py)
    hub_fingerprint: str | None = None
    hub_interval_s: float = Field(default=0.5, ge=0.2)  # background sharing: seconds between exchanges (benchmarks/lan.py)
    hub_deadline_s: float = Field(default=15.0, ge=1.0)  # total deadline of one call to the hub
    verify_tls: bool = True
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    batch_size: int = Field(default=500, ge=1, le=500)
    batches_in_flight: int = Field(default=3, ge=1, le=16)
    # an op central keeps deferring (a dependency never arrives) is flagged for a person after this
    max_deferred_wait_s: int = Field(default=6 * 3600, ge=60)
    background_sync: bool = True
    idle_lock_seconds: int = Field(default=300, ge=15)
    language: Literal["en", "hi"] = "en"
    # which desk this counter is (init --desk, OPD_DESK): its home screen and the keys shown first
    desk: Literal["registration", "billing", "collection", "all"] = "all"
    # printing: one group (config.toml and the environment keep their flat names, see PrinterSettings)
    printer: Annotated[PrinterSettings, NoDecode] = Field(default_factory=PrinterSettings)
    backups_keep: int = Field(default=14, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _printer_group(cls, data: object) -> object:
        if not isinstance(data, dict) or isinstance(data.get("printer"), PrinterSettings):
            return data
        return {**data, "printer": printer_group(data, os.environ)}

    @field_validator("device_id")
    @classmethod
    def _device(cls, v: str) -> str:
        v = (v or "").strip().upper()
        if v and not _DEVICE.match(v):
            raise ValueError("device id must be 1-16 letters or digits, e.g. C07")
        return v

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def token_path(self) -> Path:
        return self.data_dir / TOKEN_FILE

    @property
    def hub_token_path(self) -> Path:
        return self.data_dir / HUB_TOKEN_FILE

    @property
    def print_dir(self) -> Path:
        p = self.printer
        return p.directory if p.target == "file" and p.directory else self.data_dir / "prints"

    @property
    def backups_dir(self) -> Path:
        return self.data_dir / "backups"


def load_settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    """Settings for the counter in ``data_dir`` (default: env or platform dir)."""
    base = Settings() if data_dir is None else Settings(data_dir=data_dir)
    file_values = _read_toml(base.config_path)
    env_set = {k[4:].lower() for k in os.environ if k.startswith("OPD_")}
    # untyped: BaseSettings(**values) takes its own keyword options too, typed apart
    merged: dict[str, Any] = {k: v for k, v in file_values.items() if k not in env_set}
    merged["data_dir"] = base.data_dir
    settings = Settings(**merged)
    if settings.central_token is None and settings.token_path.exists():
        token = settings.token_path.read_text().strip() or None
        settings = settings.model_copy(update={"central_token": token})
    if settings.hub_token is None and settings.hub_token_path.exists():
        hub_token = settings.hub_token_path.read_text().strip() or None
        settings = settings.model_copy(update={"hub_token": hub_token})
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=clean) if clean else settings


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def write_config(settings: Settings, values: Mapping[str, object]) -> None:
    """Merge ``values`` into config.toml (never the token: that has its own file)."""
    current = _read_toml(settings.config_path)
    current.update({k: v for k, v in values.items() if v is not None and k not in ("central_token", "hub_token")})
    private_dir(settings.data_dir)
    body = "".join(f"{k} = {_toml_value(v)}\n" for k, v in sorted(current.items()))
    tmp = settings.config_path.with_suffix(".tmp")
    write_private(tmp, body)
    os.replace(tmp, settings.config_path)


def write_token(settings: Settings, token: str, *, path: Path | None = None) -> None:
    """The device token (or, with ``path``, another secret such as the hub token),
    readable by the owner only (mode 0600 from creation)."""
    target = path or settings.token_path
    private_dir(settings.data_dir)
    tmp = target.with_suffix(".tmp")
    write_private(tmp, token.strip() + "\n")
    os.replace(tmp, target)


def write_hub_token(settings: Settings, token: str) -> None:
    """The counter's hub token, in its own 0600 file (never in config.toml)."""
    write_token(settings, token, path=settings.hub_token_path)


INSECURE_TLS = (
    "TLS certificate checks are OFF (OPD_VERIFY_TLS=false or verify_tls in config.toml): anyone on the "
    "network between this counter and central can read its token and patient data and forge central's "
    "answers. For a hospital's own CA give --ca-bundle FILE (or OPD_CA_BUNDLE) and remove OPD_VERIFY_TLS."
)


def tls_warning(settings: Settings) -> str | None:
    """The warning to show on every run while TLS verification is off, else None."""
    return None if settings.verify_tls else INSECURE_TLS


def check_ca_bundle(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA bundle (one sentence), or None if it can."""
    import ssl

    if not path.is_file():
        return f"the CA bundle {path} does not exist"
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError):
        return f"the CA bundle {path} holds no PEM certificate that can be read"
    return None


def require_device(settings: Settings) -> str:
    if not settings.device_id:
        raise DomainError.field(
            "device_id", "this counter is not set up: run 'opd-fallback init --device C07 --hospital KGMU'"
        )
    return settings.device_id
