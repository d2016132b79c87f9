"""Where a counter's files live and which device it is, read without pydantic.

``opd_fallback.config`` builds the full ``Settings`` with pydantic-settings,
which costs about as much CPU as the whole of ``opd-fallback status`` should
take (benchmarks/cli_start.py). The file names, the default data directory
and the reading of config.toml live here, used by config.py, so a quick
command can learn its database and device id the same way without loading
pydantic-settings (:func:`counter_identity`).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.toml"
TOKEN_FILE = "device.token"  # noqa: S105 - a file name, not a secret
DB_FILE = "counter.db"
DEVICE_ID = re.compile(r"^[A-Z0-9]{1,16}$")


def default_data_dir() -> Path:
    env = os.environ.get("OPD_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("opd-fallback", appauthor=False))


def read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def counter_identity() -> tuple[Path, str] | None:
    """This counter's database path and device id, as ``config.load_settings()``
    would give them, when that is plain to see: OPD_DATA_DIR or the platform
    directory, OPD_DEVICE_ID or config.toml's ``device_id``. ``None`` whenever
    anything is unusual (no such counter, a device id the settings would refuse,
    environment names in another case, TLS checks turned off, which every
    command warns about), so the caller falls back to the full settings and
    their messages."""
    opd_env = {k for k in os.environ if k.upper().startswith("OPD_")}
    if any(k.upper() in ("OPD_DATA_DIR", "OPD_DEVICE_ID") and not k.isupper() for k in opd_env):
        return None
    if any(k.upper() == "OPD_VERIFY_TLS" for k in opd_env):
        return None
    data_dir = default_data_dir()
    try:
        file_values = read_toml(data_dir / CONFIG_FILE)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    if file_values.get("verify_tls", True) is not True:
        return None
    raw = os.environ["OPD_DEVICE_ID"] if "OPD_DEVICE_ID" in opd_env else file_values.get("device_id", "")
    device_id = raw.strip().upper() if isinstance(raw, str) else ""
    db_path = data_dir / DB_FILE
    if not DEVICE_ID.match(device_id) or not db_path.exists():
        return None
    return db_path, device_id


def tls_checks_may_be_off() -> bool:
    """Whether the environment or config.toml mentions ``verify_tls`` at all;
    when neither does, TLS checks are on (the default) and no command needs
    the full settings to know it."""
    if any(k.upper() == "OPD_VERIFY_TLS" for k in os.environ):
        return True
    try:
        return "verify_tls" in read_toml(default_data_dir() / CONFIG_FILE)
    except (OSError, tomllib.TOMLDecodeError):
        return True  # the full settings say what is wrong
