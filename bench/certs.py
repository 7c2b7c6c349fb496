"""
The certificates every server in the benchmark uses: one trustme CA, one ECDSA
P-256 server certificate for C{localhost} and C{127.0.0.1}, written as PEM files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CertFiles:
    """
    PEM files for the servers and the clients.

    @ivar ca: The CA certificate that clients trust.
    @ivar chain: The server certificate followed by its chain.
    @ivar key: The server's private key.
    """

    ca: Path
    chain: Path
    key: Path


def write_certificates(directory: Path) -> CertFiles:
    """
    Make a CA and an ECDSA P-256 server certificate and write them to C{directory}.

    @param directory: An existing, private directory.
    @return: The paths of the files written.
    """
    authority = trustme.CA(key_type=trustme.KeyType.ECDSA)
    leaf = authority.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.ECDSA)
    files = CertFiles(
        ca=directory / "ca.pem",
        chain=directory / "server.pem",
        key=directory / "server.key",
    )
    authority.cert_pem.write_to_path(str(files.ca))
    files.chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    files.key.write_bytes(leaf.private_key_pem.bytes())
    files.key.chmod(0o600)
    return files
