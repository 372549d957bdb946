"""The service's signing key on disk: a key file of mode 0600, never the database (issue 20).

The file holds one line ``kid: <key id>`` and the Ed25519 private key as PKCS#8 PEM, encrypted with a passphrase
(``FOREWARN_KEY_PASSPHRASE``) when one is given. The database keeps only each key's id and **public** PEM (in the
historical ``issuer_keys.private_pem`` column), so old ledger entries stay verifiable after a rotation. A store
that still holds a private key in that column (before this change) moves it into the key file once, at open, and
keeps only the public half (:func:`split_legacy`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PRIVATE_MODE = 0o600
"""Mode of every file that holds secrets: the key file, the SQLite database and its WAL/SHM files."""


def is_private_pem(pem: str) -> bool:
    """Whether ``pem`` holds a private key (a legacy ``issuer_keys`` row) rather than a public one."""
    return "PRIVATE KEY-----" in pem


def public_pem_of(private_pem: str) -> str:
    """The public PEM (SubjectPublicKeyInfo) of an unencrypted private PEM."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class KeyFile:
    """Where the service key lives (``path``, created 0600) and the passphrase that encrypts it, if any."""

    path: Path
    passphrase: bytes | None = None

    def read(self) -> tuple[str, str] | None:
        """(kid, unencrypted private PEM) of the key in the file, or None when there is no file. A file encrypted
        without a passphrase given, or a wrong passphrase, raises ValueError saying so."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        first, _, pem = text.partition("\n")
        if not first.startswith("kid: ") or "-----BEGIN" not in pem:
            raise ValueError(f"{self.path} is not a Forewarn key file (a 'kid: ...' line, then a PEM private key)")
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=self.passphrase)
        except TypeError as exc:
            why = ("no passphrase given for an encrypted key file (set FOREWARN_KEY_PASSPHRASE)"
                   if self.passphrase is None else "the key file is not encrypted but FOREWARN_KEY_PASSPHRASE is set")
            raise ValueError(f"{self.path}: {why}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self.path}: the service key must be Ed25519")
        plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
        return first.removeprefix("kid: ").strip(), plain

    def create(self, kid: str, private_pem: str) -> None:
        """Write a new key file (mode 0600, created exclusively: an existing file is never overwritten, which
        raises FileExistsError), encrypted when a passphrase is given."""
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self.passphrase) if self.passphrase
            else serialization.NoEncryption())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(f"kid: {kid}\n".encode() + pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(partial, self.path)
        finally:
            partial.unlink()


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (the umask cannot widen it later)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def split_legacy(rows: list[tuple[str, str]]) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """For legacy ``issuer_keys`` rows (kid, PEM), oldest first: the newest private key (to move to the key file)
    and every row that holds a private key, with its public PEM instead (to write back)."""
    legacy = [(kid, pem) for kid, pem in rows if is_private_pem(pem)]
    newest = legacy[-1] if legacy else None
    return newest, [(kid, public_pem_of(pem)) for kid, pem in legacy]


def with_current(rows: list[tuple[str, str]], key_file: KeyFile) -> list[tuple[str, str]]:
    """The recorded (kid, public PEM) rows, plus the key file's key if its row is missing (a first start whose
    transaction rolled back after the file was written)."""
    current = key_file.read()
    if current is not None and current[0] not in {kid for kid, _ in rows}:
        rows = [*rows, (current[0], public_pem_of(current[1]))]
    return rows
