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


def read_toml(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


# Settings that no value of the right type can make invalid (plain strings); a
# counter set up by ``init`` has only these. A setting beyond them may be refused
# by the full settings, which a command must then report, so its presence
# sends the quick path to the full settings.
PLAIN_SETTINGS = frozenset({"data_dir", "device_id", "hospital", "central_url", "central_token"})


def counter_identity() -> tuple[Path, str] | None:
    """This counter's database path and device id, as ``config.load_settings()``
    would give them, when that is plain to see: OPD_DATA_DIR or the platform
    directory, OPD_DEVICE_ID or config.toml's ``device_id``. ``None`` whenever
    anything is unusual (no such counter, a device id the settings would refuse,
    any setting beyond :data:`PLAIN_SETTINGS` in the environment or config.toml,
    such as a batch size out of range or TLS checks turned off, which every
    command reports), so the caller falls back to the full settings and their
    messages."""
    env_names = [k for k in os.environ if k.upper().startswith("OPD_")]
    if any(not k.isupper() or k[4:].lower() not in PLAIN_SETTINGS for k in env_names):
        return None
    data_dir = default_data_dir()
    try:
        file_values = read_toml(data_dir / CONFIG_FILE)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    strings = {k: v for k, v in file_values.items() if isinstance(v, str)}
    if len(strings) != len(file_values) or any(k not in PLAIN_SETTINGS for k in strings):
        return None
    raw = os.environ.get("OPD_DEVICE_ID", strings.get("device_id", ""))
    device_id = raw.strip().upper()
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
