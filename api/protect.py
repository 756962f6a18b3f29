"""Protected notice data: URLs encrypted at rest and hashed for lookup.

- AES-256-GCM with a random nonce; the notice id is the associated data, so a
  ciphertext copied onto another row does not decrypt.
- Several keys may be configured, one active: each ciphertext records its key
  id, so keys can be rotated without re-encrypting everything at once.
- The lookup hash is HMAC-SHA256 of the normalized URL under a separate key:
  without the key, nobody can test whether a given URL is in the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .settings import Settings, SettingsError

NONCE = 12


class UrlProtector:
    def __init__(self, keys: dict[str, bytes], active_key_id: str, hmac_key: bytes) -> None:
        if active_key_id not in keys:
            raise SettingsError(f"the active URL key {active_key_id!r} is not among the configured keys")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise SettingsError(f"URL key {key_id!r} must be 32 bytes (base64 of 32 random bytes)")
        if len(hmac_key) < 32:
            raise SettingsError("the URL HMAC key must be at least 32 bytes")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id
        self._hmac_key = hmac_key

    def encrypt(self, notice_id: UUID, url: str) -> tuple[bytes, str]:
        nonce = os.urandom(NONCE)
        sealed = self._ciphers[self.active_key_id].encrypt(nonce, url.encode(), notice_id.bytes)
        return nonce + sealed, self.active_key_id

    def decrypt(self, notice_id: UUID, ciphertext: bytes, key_id: str) -> str:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise RuntimeError(f"URL key {key_id!r} is not configured; it is needed to read older notices")
        try:
            return cipher.decrypt(ciphertext[:NONCE], ciphertext[NONCE:], notice_id.bytes).decode()
        except InvalidTag:
            raise RuntimeError(f"the URL of notice {notice_id} does not decrypt: tampered or moved") from None

    def lookup_hash(self, normalized_url: str) -> bytes:
        return hmac.new(self._hmac_key, normalized_url.encode(), hashlib.sha256).digest()


def load_url_protector(settings: Settings) -> UrlProtector:
    """Keys from configuration; in development, generated once into the data folder."""
    keys_text, hmac_text = settings.url_keys, settings.url_hmac_key
    if not keys_text or not hmac_text:
        if settings.production:
            raise SettingsError("production needs TAKEDOWN_URL_KEYS and TAKEDOWN_URL_HMAC_KEY")
        keys_text, hmac_text = _development_keys(settings.data_dir / "url-keys")
    keys: dict[str, bytes] = {}
    for item in keys_text.split(","):
        key_id, _, encoded = item.strip().partition(":")
        if not key_id or not encoded:
            raise SettingsError("TAKEDOWN_URL_KEYS is a comma-separated list of <key id>:<base64 key>")
        keys[key_id] = _b64(encoded, f"URL key {key_id!r}")
    active = settings.url_key_id or next(iter(keys))
    return UrlProtector(keys, active, _b64(hmac_text, "TAKEDOWN_URL_HMAC_KEY"))


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise SettingsError(f"{what} is not valid base64") from None


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _development_keys(path: Path) -> tuple[str, str]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"dev1:{new_key()}\n{new_key()}\n")
    keys_line, hmac_line = path.read_text().splitlines()[:2]
    return keys_line, hmac_line
