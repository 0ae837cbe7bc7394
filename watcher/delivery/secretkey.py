"""The deployment key that names secrets in the outbox (docs/correctness.md#secret-placeholders).

A delivery is stored in ``<prefix>-outbox`` with a placeholder instead of each secret
(:func:`watcher.delivery.outbox.seal_request`). The placeholder is ``HMAC-SHA256(key, secret)``,
truncated to 128 bits, under a key that Elasticsearch never sees: whoever reads the outbox cannot
test guesses of a secret against it (an unkeyed hash of a short secret is found by trying a word
list). Every process that resolves the placeholders — the daemon that wrote a delivery, the one
that sends it after a restart, a second daemon on the same index prefix — needs the same key.

Where the key comes from (:func:`load_secret_key`), first match wins:

1. ``--secret-key-file PATH`` / ``WATCHER_SECRET_KEY_FILE``: the file's text (surrounding
   whitespace removed); the file must exist.
2. ``WATCHER_SECRET_KEY``: the key itself.
3. ``<state dir>/secret-key``, created once (random 256 bits as 64 hex digits, mode 0600, folder
   0700) and read by every later start; the state dir is ``--state-dir`` / ``WATCHER_STATE_DIR``,
   else ``$XDG_STATE_HOME/watcher``, else ``~/.local/state/watcher``.
4. Only when the *default* state dir cannot be written (a read-only home): a random key of this
   process, with a warning. Deliveries holding secrets that are still pending when the process
   exits cannot be resolved by the next one and go dead with the reason
   :data:`watcher.delivery.outbox.OTHER_KEY` (logged at ERROR).

A key is at least :data:`MIN_KEY_LENGTH` characters; setting both (1) and (2) is an error, so two
sources never disagree silently. The key is never printed, logged or stored in Elasticsearch; what
is stored and logged is its *key id*, ``HMAC-SHA256(key, "key id")`` truncated to 64 bits, which
tells two keys apart and says nothing about secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets as _random
import threading
from collections.abc import Mapping
from pathlib import Path

from watcher.errors import WatcherError

__all__ = ["ENV_KEY", "ENV_KEY_FILE", "ENV_STATE_DIR", "KEY_FILE_NAME", "MIN_KEY_LENGTH", "SecretKey",
           "SecretKeyError", "default_state_dir", "load_secret_key", "process_key"]

log = logging.getLogger(__name__)

ENV_KEY = "WATCHER_SECRET_KEY"
ENV_KEY_FILE = "WATCHER_SECRET_KEY_FILE"
ENV_STATE_DIR = "WATCHER_STATE_DIR"
KEY_FILE_NAME = "secret-key"
# 32 characters: a 64-hex-digit key from `openssl rand -hex 32` is well above it; a password is not.
MIN_KEY_LENGTH = 32

# Domain separation: a placeholder digest and the key id are HMACs of different message spaces.
_PLACEHOLDER_DOMAIN = b"watcher outbox secret\x00"
_KEY_ID_DOMAIN = b"watcher outbox key id"


class SecretKeyError(WatcherError, ValueError):
    """The deployment key cannot be used as configured: a key file that cannot be read, a key
    shorter than :data:`MIN_KEY_LENGTH`, both a key file and ``WATCHER_SECRET_KEY`` set, or a state
    directory given explicitly where the key file cannot be created.

    Raised at start-up (:func:`load_secret_key`); ``watcher run`` reports it and exits non-zero.
    The message names the source (a path or a variable), never the key.
    """


class SecretKey:
    """A deployment key: names secrets by ``HMAC-SHA256(key, secret)``; never shows itself.

    Args:
        key: the key's text or bytes (at least :data:`MIN_KEY_LENGTH` characters/bytes).
        origin: where it came from, for logs (``file /etc/watcher/key``, ``environment variable …``).
        persistent: False for a random key of this process (nothing else can ever have it).

    Raises:
        SecretKeyError: the key is too short.
    """

    __slots__ = ("_key", "origin", "persistent", "key_id")

    def __init__(self, key: str | bytes, origin: str, *, persistent: bool = True):
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(raw) < MIN_KEY_LENGTH:
            raise SecretKeyError(f"the deployment key from {origin} is {len(raw)} characters long; expected at least "
                                 f"{MIN_KEY_LENGTH} (make one with `openssl rand -hex 32`)")
        self._key = raw
        self.origin = origin
        self.persistent = persistent
        self.key_id = hmac.new(raw, _KEY_ID_DOMAIN, hashlib.sha256).hexdigest()[:16]

    @classmethod
    def generate(cls, origin: str = "a random key of this process", *, persistent: bool = False) -> "SecretKey":
        """A new random key (256 bits from :mod:`secrets`)."""
        return cls(_random.token_hex(32), origin, persistent=persistent)

    def digest(self, value: str) -> str:
        """The name of secret ``value`` under this key: 32 hex digits of ``HMAC-SHA256(key, value)``."""
        return hmac.new(self._key, _PLACEHOLDER_DOMAIN + value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def __repr__(self) -> str:
        return f"SecretKey(key_id={self.key_id!r}, origin={self.origin!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(("SecretKey", self.key_id))


_PROCESS_KEY: SecretKey | None = None
_PROCESS_KEY_LOCK = threading.Lock()


def process_key() -> SecretKey:
    """The random key of this process, made on first use and shared by every caller in it.

    What an :class:`~watcher.delivery.outbox.Outbox` uses when it is given no key: the deliveries
    it writes can be sent only by outboxes of this same process.
    """
    global _PROCESS_KEY
    with _PROCESS_KEY_LOCK:
        if _PROCESS_KEY is None:
            _PROCESS_KEY = SecretKey.generate()
        return _PROCESS_KEY


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$WATCHER_STATE_DIR``, else ``$XDG_STATE_HOME/watcher``, else ``~/.local/state/watcher``."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_STATE_DIR):
        return Path(environ[ENV_STATE_DIR]).expanduser()
    if environ.get("XDG_STATE_HOME"):
        return Path(environ["XDG_STATE_HOME"]).expanduser() / "watcher"
    return Path("~/.local/state/watcher").expanduser()


def load_secret_key(key_file: str | os.PathLike | None = None, state_dir: str | os.PathLike | None = None, *,
                    environ: Mapping[str, str] | None = None) -> SecretKey:
    """The deployment key, from the first source that is set (see the module docstring).

    Args:
        key_file: ``--secret-key-file`` (default ``$WATCHER_SECRET_KEY_FILE``).
        state_dir: ``--state-dir`` (default ``$WATCHER_STATE_DIR``, then the XDG default); the key
            file ``secret-key`` in it is created when missing.
        environ: the environment (default ``os.environ``).

    Raises:
        SecretKeyError: a configured source cannot be used (module docstring).
    """
    environ = os.environ if environ is None else environ
    key_file = key_file or environ.get(ENV_KEY_FILE) or None
    from_env = environ.get(ENV_KEY) or None
    if key_file is not None and from_env is not None:
        raise SecretKeyError(f"both a key file ({key_file}) and {ENV_KEY} are set; set one of them")
    if key_file is not None:
        return _read_key(Path(key_file).expanduser(), f"file {key_file}")
    if from_env is not None:
        return SecretKey(from_env.strip(), f"environment variable {ENV_KEY}")
    explicit = state_dir is not None or bool(environ.get(ENV_STATE_DIR))
    folder = Path(state_dir).expanduser() if state_dir is not None else default_state_dir(environ)
    try:
        return _key_in(folder)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if explicit:
            raise SecretKeyError(f"cannot create or read the deployment key in {folder}: {reason}") from None
        key = process_key()
        log.warning("no deployment key configured and %s cannot hold one (%s): using a random key of this process "
                    "(key id %s). Deliveries holding secrets that are still pending when it exits cannot be sent by "
                    "the next process: they go dead. Set --secret-key-file, %s or --state-dir.",
                    folder, reason, key.key_id, ENV_KEY)
        return key


def _read_key(path: Path, origin: str) -> SecretKey:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise SecretKeyError(f"cannot read the deployment key file {path}: {reason}") from None
    return SecretKey(text.strip(), origin)


def _key_in(folder: Path) -> SecretKey:
    """Read ``folder/secret-key``, creating it first when missing (raises OSError when it cannot)."""
    path = folder / KEY_FILE_NAME
    if not path.exists():
        _create_key_file(folder, path)
    return _read_key(path, f"file {path}")


def _create_key_file(folder: Path, path: Path) -> None:
    """Write a new random key to ``path`` (mode 0600) without ever exposing a partial file: written
    to a temporary name, then hard-linked into place, which fails when another process was first
    (its key is then the one used)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = folder / f".{KEY_FILE_NAME}.{os.getpid()}.{_random.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(_random.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return  # another process created it first: use theirs
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        log.info("created the deployment key file %s (mode 0600); keep it, and give it to every daemon on the same "
                 "index prefix", path)
    finally:
        temporary.unlink(missing_ok=True)
