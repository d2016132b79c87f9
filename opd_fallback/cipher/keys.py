"""Key custody: where a database's key lives, how it is written down, how it becomes SQLCipher's key.

Decisions:

* **The secret** is 256 random bits (``secrets.token_bytes(32)``). Its written
  form, the **recovery code**, is the same 32 bytes in base32, in 13 groups of 4
  (``ABCD-EFGH-...``): what ``init`` prints once for the IT cell's safe, and
  exactly what the key file holds. So the key file and the recovery code are
  interchangeable, and a backup opens on a new PC with either.
* **Where it lives**: never in the data directory (whoever copies the data
  disk or a backup stick must not find the key beside it). ``OPD_DB_KEY_FILE``
  names the file; otherwise it is ``<platform config dir>/opd-fallback/keys/
  <name>-<hash of the database folder>.key``, one per data directory, 0600 in
  a 0700 folder. Never on a command line, never in a log: the secret only
  leaves this module as SQLCipher's raw key inside a ``PRAGMA key``.
* **SQLCipher's key** is derived once per process from the secret with
  HKDF-SHA256 (RFC 5869) and given to SQLCipher as a raw key (``x'<64 hex>'``),
  so no open pays SQLCipher's PBKDF2 (256,000 rounds of HMAC-SHA512, ~0.1 s,
  on every connection the pool makes and on every ``status``). PBKDF2 exists to
  stretch a guessable passphrase; a 256-bit random secret cannot be guessed,
  so the stretching would buy nothing (SQLCipher's ``kdf_iter`` does not apply
  to a raw key; its page size stays SQLCipher 4's 4096, SQLite's own, which
  measured best: benchmarks/encryption_cost.py).
* **Rotation** writes the new secret as ``<key file>.next`` (fsynced) before the
  database is rekeyed, and moves it over the key file after: a kill at any
  moment leaves a database that one of the two opens (:func:`candidates`).
  The key it replaced is appended to ``<key file>.retired``, so backups taken
  before the rotation still restore on this PC.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from opd_fallback.domain.exits import ExitCode, OpdError

ENV_KEY_FILE = "OPD_DB_KEY_FILE"
SECRET_BYTES = 32
_INFO = b"opd-fallback sqlcipher raw key v1"
_GROUP = 4


class KeyProblem(OpdError):
    """A database's key is missing, unreadable or does not open it. ``str()`` is the sentence."""

    exit_code = ExitCode.DATABASE_KEY

    def __init__(self, kind: str, sentence: str) -> None:
        super().__init__(sentence)
        self.kind = kind  # missing | unreadable | wrong
        self.sentence = sentence


@dataclass(frozen=True)
class Key:
    """A secret and the file it came from (``None``: typed in as a recovery code)."""

    secret: bytes
    source: Path | None = None

    @property
    def raw(self) -> bytes:
        """SQLCipher's 256-bit raw key (HKDF-SHA256 of the secret; see the module docstring)."""
        return _derive(self.secret)

    @property
    def pragma_value(self) -> str:
        """The value of ``PRAGMA key``/``rekey``: a raw key, so SQLCipher skips its own KDF."""
        return f"\"x'{self.raw.hex()}'\""

    @property
    def key_id(self) -> str:
        """A short fingerprint that may be shown and logged (it reveals nothing of the key)."""
        return hmac.new(self.secret, b"opd-fallback key id", hashlib.sha256).hexdigest()[:12]

    @property
    def recovery_code(self) -> str:
        return recovery_code(self.secret)

    def __repr__(self) -> str:  # never the secret, in a traceback or a log
        return f"Key(id={self.key_id}, source={self.source})"


_derived: dict[bytes, bytes] = {}


def _derive(secret: bytes) -> bytes:
    raw = _derived.get(secret)
    if raw is None:
        # HKDF (RFC 5869) with SHA-256: extract with a fixed salt, expand to 32 bytes
        prk = hmac.new(b"opd-fallback", secret, hashlib.sha256).digest()
        raw = _derived[secret] = hmac.new(prk, _INFO + b"\x01", hashlib.sha256).digest()
    return raw


def new_key() -> Key:
    return Key(secrets.token_bytes(SECRET_BYTES))


def recovery_code(secret: bytes) -> str:
    text = base64.b32encode(secret).decode().rstrip("=")
    return "-".join(text[i:i + _GROUP] for i in range(0, len(text), _GROUP))


def parse_code(text: str) -> bytes:
    """The secret written in ``text`` (a recovery code or a key file's content), or ValueError."""
    clean = "".join(ch for ch in text.upper() if ch.isalnum())
    clean = clean.replace("0", "O").replace("1", "I").replace("8", "B")  # what people misread
    try:
        secret = base64.b32decode(clean + "=" * (-len(clean) % 8))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not a recovery code (13 groups of 4 letters and digits 2-7)") from exc
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a recovery code has 52 letters and digits, this one {len(clean)}")
    return secret


def key_from_code(text: str) -> Key:
    return Key(parse_code(text))


def keys_dir() -> Path:
    """The folder of this PC's database keys (platform config directory, 0700)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("opd-fallback", appauthor=False)) / "keys"


@dataclass(frozen=True)
class KeyRef:
    """What the data directory knows of its key (``<db>.keyref``, no secret in it):
    which key file in :func:`keys_dir` holds it, and the key's fingerprint, so a
    file the right key does not open is called damaged, not "wrong key"."""

    tag: str
    key_id: str


def ref_path(db_path: Path | str) -> Path:
    p = Path(db_path)
    return p.with_name(p.name + ".keyref")


def read_ref(db_path: Path | str) -> KeyRef | None:
    try:
        tag, key_id = ref_path(db_path).read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not (tag.isalnum() and key_id.isalnum()):
        return None
    return KeyRef(tag, key_id)


def write_ref(db_path: Path | str, ref: KeyRef) -> None:
    p = ref_path(db_path)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(f"{ref.tag} {ref.key_id}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)


def default_key_file(db_path: Path | str, *, name: str = "counter", create: bool = False) -> Path | None:
    """The key file of the database at ``db_path``: ``OPD_DB_KEY_FILE``, else the
    file in :func:`keys_dir` its ``.keyref`` names (a new tag when ``create`` and
    there is none yet); None when there is no way to know."""
    env = os.environ.get(ENV_KEY_FILE)
    if env:
        return Path(env).expanduser()
    ref = read_ref(db_path)
    if ref is not None:
        return keys_dir() / f"{name}-{ref.tag}.key"
    if create:
        return keys_dir() / f"{name}-{secrets.token_hex(8)}.key"
    return None


def tag_of(key_file: Path) -> str:
    stem = key_file.name.removesuffix(".key")
    tag = stem.rsplit("-", 1)[-1]
    return tag if tag.isalnum() else hashlib.sha256(str(key_file).encode()).hexdigest()[:16]


def all_key_files() -> list[Path]:
    """Every key file this PC keeps (the environment's first)."""
    found: list[Path] = []
    env = os.environ.get(ENV_KEY_FILE)
    if env:
        found.append(Path(env).expanduser())
    with contextlib.suppress(OSError):
        found += sorted(keys_dir().glob("*.key"))
    return found


def _private_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o700)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse a folder fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_key_file(path: Path, key: Key) -> None:
    """Write ``key`` to ``path`` atomically, 0600, fsynced (a private temporary file, then rename)."""
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.recovery_code + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def read_key_file(path: Path) -> Key:
    """The key in ``path``; KeyProblem when it is missing or not a key."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise KeyProblem("missing", f"the key file {path} is missing") from None
    except OSError as exc:
        raise KeyProblem("unreadable", f"the key file {path} cannot be read ({exc.strerror})") from None
    try:
        return Key(parse_code(text.splitlines()[0] if text.strip() else ""), path)
    except (ValueError, IndexError):
        raise KeyProblem("unreadable", f"the key file {path} does not hold a key") from None


def load_or_create(path: Path) -> tuple[Key, bool]:
    """The key in ``path``, made (0600) when there is none; True when it was made now."""
    if path.exists():
        return read_key_file(path), False
    key = new_key()
    key = Key(key.secret, path)
    write_key_file(path, key)
    return key, True


def next_path(path: Path) -> Path:
    return path.with_name(path.name + ".next")


def retired_path(path: Path) -> Path:
    return path.with_name(path.name + ".retired")


def shown_path(path: Path) -> Path:
    """Marks that the key's recovery code has been shown (``init``, ``recovery-code``, ``rotate-key``)."""
    return path.with_name(path.name + ".shown")


def candidates(path: Path) -> list[Key]:
    """Keys that may open the database of key file ``path``, the likeliest first:
    the key file, then a rotation's new key that was not yet moved into place."""
    found: list[Key] = []
    for p in (path, next_path(path)):
        with contextlib.suppress(KeyProblem):
            found.append(read_key_file(p))
    return found


def retired(path: Path) -> list[Key]:
    """Keys this key file held before ``rotate-key`` (old backups were encrypted with them)."""
    try:
        lines = retired_path(path).read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    out: list[Key] = []
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            out.append(Key(parse_code(line), retired_path(path)))
    return out


def retire(path: Path, key: Key) -> None:
    """Append ``key`` to the retired keys beside ``path`` (0600, fsynced)."""
    rp = retired_path(path)
    fd = os.open(rp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as fh:
        fh.write(key.recovery_code + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def mark_shown(path: Path) -> None:
    """Note that the recovery code of key file ``path`` has been shown (it is never shown twice)."""
    fd = os.open(shown_path(path), os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)


def code_shown(path: Path) -> bool:
    return shown_path(path).exists()
