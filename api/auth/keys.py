"""The platform's own signing key, and the JWKS that publishes its public half.

Production loads the key from configuration; development generates one on first
use and keeps it in the data folder, so tokens printed by `takedown dev` stay
valid across restarts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from ..settings import Settings, SettingsError

AsymmetricKey = ECKey | RSAKey | OKPKey


def _algorithm_for(key: AsymmetricKey) -> str:
    if isinstance(key, ECKey):
        curve = key.curve_name
        return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[curve]
    if isinstance(key, RSAKey):
        return "RS256"
    return "EdDSA"


class SigningKey:
    """A private key with its kid and algorithm; signs the platform's tokens."""

    def __init__(self, key: AsymmetricKey) -> None:
        if not key.is_private:
            raise SettingsError("the signing key must be a private key")
        self.key = key
        self.kid = key.thumbprint()
        self.algorithm = _algorithm_for(key)

    def public_jwk(self) -> dict[str, Any]:
        data = dict(self.key.as_dict(private=False))
        data.update(kid=self.kid, alg=self.algorithm, use="sig")
        return data

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def key_set(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": self.algorithm, "kid": self.kid, "typ": "JWT"}, claims, self.key)


def issue_token(
    signing_key: SigningKey,
    settings: Settings,
    *,
    subject: str,
    organization_id: str,
    roles: list[str],
    ttl_seconds: int | None = None,
    client_id: str | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": now,
        "nbf": now - 5,
        "exp": now + (settings.token_ttl_seconds if ttl_seconds is None else ttl_seconds),
        "jti": str(uuid4()),
        "org": organization_id,
        "roles": sorted(roles),
    }
    if client_id:
        claims["client_id"] = client_id
    return signing_key.sign(claims)


def load_signing_key(settings: Settings) -> SigningKey:
    if settings.signing_key_pem:
        return SigningKey(_import(settings.signing_key_pem.encode(), "TAKEDOWN_SIGNING_KEY"))
    if settings.signing_key_file:
        return SigningKey(_import(settings.signing_key_file.read_bytes(), str(settings.signing_key_file)))
    if settings.production:
        raise SettingsError("production needs TAKEDOWN_SIGNING_KEY or TAKEDOWN_SIGNING_KEY_FILE")
    return SigningKey(_development_key(settings.data_dir / "signing-key.pem"))


def _import(pem: bytes, where: str) -> AsymmetricKey:
    """Read a PEM private key; its type is told by cryptography, not guessed."""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"{where} is not a readable PEM private key: {type(exc).__name__}") from None
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(pem)
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise SettingsError(f"{where} is an RSA key shorter than 2048 bits")
        return RSAKey.import_key(pem)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return OKPKey.import_key(pem)
    raise SettingsError(f"{where} must be an EC (P-256/384/521), RSA or Ed25519 private key")


def _development_key(path: Path) -> AsymmetricKey:
    if path.exists():
        return _import(path.read_bytes(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ECKey.generate_key("P-256", private=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.as_pem(private=True))
    os.replace(tmp, path)
    return key
