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
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.toml"
TOKEN_FILE = "device.token"  # noqa: S105 - a file name, not a secret
HUB_TOKEN_FILE = "hub.token"  # noqa: S105 - a file name, not a secret
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


def _plain_values(allowed: frozenset[str]) -> tuple[Path, dict[str, str], dict[str, str]] | None:
    """The data directory, config.toml's values and the ``OPD_*`` environment's
    (names lower-cased, prefix dropped) when every one is a string named in
    ``allowed``; None when anything is unusual (see :func:`counter_identity`)."""
    env_names = [k for k in os.environ if k.upper().startswith("OPD_")]
    if any(not k.isupper() or k[4:].lower() not in allowed for k in env_names):
        return None
    data_dir = default_data_dir()
    try:
        file_values = read_toml(data_dir / CONFIG_FILE)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    strings = {k: v for k, v in file_values.items() if isinstance(v, str)}
    if len(strings) != len(file_values) or any(k not in allowed for k in strings):
        return None
    return data_dir, strings, {k[4:].lower(): os.environ[k] for k in env_names}


def counter_identity() -> tuple[Path, str] | None:
    """This counter's database path and device id, as ``config.load_settings()``
    would give them, when that is plain to see: OPD_DATA_DIR or the platform
    directory, OPD_DEVICE_ID or config.toml's ``device_id``. ``None`` whenever
    anything is unusual (no such counter, a device id the settings would refuse,
    any setting beyond :data:`PLAIN_SETTINGS` in the environment or config.toml,
    such as a batch size out of range or TLS checks turned off, which every
    command reports), so the caller falls back to the full settings and their
    messages."""
    found = _plain_values(PLAIN_SETTINGS)
    if found is None:
        return None
    data_dir, strings, env = found
    device_id = env.get("device_id", strings.get("device_id", "")).strip().upper()
    db_path = data_dir / DB_FILE
    if not DEVICE_ID.match(device_id) or not db_path.exists():
        return None
    return db_path, device_id


# What the counter's first screen needs, for ``opd-fallback counter`` to paint its
# login screen before pydantic-settings loads (issue 21; benchmarks/counter_start.py).
# Every setting named here is one that no string can make invalid, or a choice
# checked here against the same names as ``config.Settings`` (a test compares
# them); a setting beyond these sends the counter to the full settings first.
START_STRINGS = PLAIN_SETTINGS | {"hospital_district", "hospital_state", "ca_bundle", "hub_url", "hub_token",
                                  "hub_fingerprint"}
START_CHOICES: dict[str, tuple[str, ...]] = {"language": ("en", "hi"),
                                             "desk": ("registration", "billing", "collection", "all")}


@dataclass(frozen=True)
class CounterStart:
    """The counter's settings its login screen needs, as ``config.load_settings()``
    gives them (the rest, printer and timeouts included, is loaded behind the
    login screen). ``idle_lock_seconds`` and ``background_sync`` are the
    settings' defaults: setting either sends the counter the long way."""

    data_dir: Path
    device_id: str
    hospital: str
    language: str = "en"
    desk: str = "all"
    central: bool = False  # a central URL and a token: the probe and the background sync
    hub: bool = False  # a hub URL and a token: sharing over the LAN
    idle_lock_seconds: int = 300
    background_sync: bool = True

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE


def _secret(env: dict[str, str], strings: dict[str, str], name: str, path: Path) -> str | None:
    """A token as ``load_settings`` finds it: the environment, config.toml, else its own file."""
    value = env.get(name, strings.get(name))
    if value is None and path.exists():
        value = path.read_text().strip() or None
    return value


def counter_start() -> CounterStart | None:
    """The counter's :class:`CounterStart` read without pydantic, or None
    whenever anything is unusual (any other setting, a choice or device id the
    settings would refuse, no counter here): the caller then loads the full
    settings, which say what is wrong."""
    found = _plain_values(START_STRINGS | set(START_CHOICES))
    if found is None:
        return None
    data_dir, strings, env = found
    values = {**strings, **env}
    device_id = values.get("device_id", "").strip().upper()
    if not DEVICE_ID.match(device_id) or not (data_dir / DB_FILE).exists():
        return None
    if any(k in values and values[k] not in choices for k, choices in START_CHOICES.items()):
        return None
    central = values.get("central_url") and _secret(env, strings, "central_token", data_dir / TOKEN_FILE)
    hub = values.get("hub_url") and _secret(env, strings, "hub_token", data_dir / HUB_TOKEN_FILE)
    return CounterStart(data_dir=data_dir, device_id=device_id, hospital=values.get("hospital", ""),
                        language=values.get("language", "en"), desk=values.get("desk", "all"),
                        central=bool(central), hub=bool(hub))


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
