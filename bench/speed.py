"""
The crypto limits of this machine, from C{openssl speed} on one core, so that every
figure can be read as a fraction of what the CPU could do with no software around
the crypto.

Bulk echo: the server decrypts and encrypts every byte once, so one core bounds the
round-trip rate at half the AEAD rate.  A full TLS 1.3 handshake with an ECDSA
P-256 certificate and X25519 costs the server one signature and two X25519
operations (its key share, then the shared secret), which bounds handshakes/s.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CryptoBounds:
    """
    Single-core rates from C{openssl speed}.

    @ivar aes128gcm: AES-128-GCM bytes/s at 16 KiB blocks.
    @ivar aes256gcm: AES-256-GCM bytes/s at 16 KiB blocks (TLS 1.3's
        TLS_AES_256_GCM_SHA384, which OpenSSL and Python clients negotiate first).
    @ivar ecdsa_p256_sign: ECDSA P-256 signatures/s.
    @ivar x25519: X25519 operations/s.
    """

    aes128gcm: float
    aes256gcm: float
    ecdsa_p256_sign: float
    x25519: float

    def bulk_bound(self, cipher: str = "aes256gcm") -> float:
        """The round-trip echo rate one core could reach, in bytes/s."""
        rate: float = getattr(self, cipher)
        return rate / 2

    def handshake_bound(self) -> float:
        """Full handshakes/s one core could do (1 signature + 2 X25519)."""
        return 1 / (1 / self.ecdsa_p256_sign + 2 / self.x25519)

    def as_dict(self) -> dict[str, float]:
        """The rates and the two bounds, for the JSON file."""
        return {
            **asdict(self),
            "bulk_bound_bytes_per_s": self.bulk_bound(),
            "handshake_bound_per_s": self.handshake_bound(),
        }


def _speed(arguments: list[str], seconds: int) -> str:
    openssl = shutil.which("openssl") or "openssl"
    return subprocess.run(
        [openssl, "speed", "-elapsed", "-seconds", str(seconds), *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=60 + 10 * seconds,
    ).stdout


def _aead(cipher: str, seconds: int) -> float:
    output = _speed(["-bytes", "16384", "-evp", cipher], seconds)
    match = re.search(rf"^{cipher.upper()}\s+([\d.]+)k\s*$", output, re.MULTILINE)
    if match is None:
        raise ValueError(f"cannot read openssl speed output for {cipher}: {output!r}")
    return float(match.group(1)) * 1000


def measure(seconds: int = 3) -> CryptoBounds:
    """Run C{openssl speed} for each primitive for C{seconds} seconds."""
    ecdsa = _speed(["ecdsap256"], seconds)
    sign = re.search(r"\(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", ecdsa)
    ecdh = _speed(["ecdhx25519"], seconds)
    x25519 = re.search(r"\(X25519\)\s+\S+\s+([\d.]+)", ecdh)
    if sign is None or x25519 is None:
        raise ValueError(f"cannot read openssl speed output: {ecdsa!r} {ecdh!r}")
    return CryptoBounds(
        aes128gcm=_aead("aes-128-gcm", seconds),
        aes256gcm=_aead("aes-256-gcm", seconds),
        ecdsa_p256_sign=float(sign.group(1)),
        x25519=float(x25519.group(1)),
    )
