"""Issue 19, webhook address pinning over https: the request connects to the address the host resolved to, while
TLS SNI, the certificate check and the Host header keep the name. A real TLS receiver on loopback with a
certificate from a test authority; the sender trusts only that authority."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from forewarn.core.records import Delivery
from forewarn.notify.webhook import post
from forewarn.service.tokens import IssuerKey
from forewarn.service.webhook_urls import WebhookPolicy

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject: str, issuer: str, public: ec.EllipticCurvePublicKey, signer: ec.EllipticCurvePrivateKey,
                 ca: bool, dns: str | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(public).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


class TLSReceiver:
    """An https receiver on 127.0.0.1 whose certificate names ``dns``; records each request's SNI and Host."""

    def __init__(self, tmp: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, dns: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(dns, "test authority", key.public_key(), ca_key, ca=False, dns=dns)
        (tmp / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                       + ca.public_bytes(serialization.Encoding.PEM))
        (tmp / "leaf.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        self.seen: list[tuple[str | None, str | None]] = []
        sni: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")
        context.sni_callback = lambda _sock, name, _ctx: sni.append(name)
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append((sni[-1] if sni else None, self.headers.get("Host")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def authority(tmp_path: Path) -> Iterator[tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("test authority", "test authority", key.public_key(), key, ca=True)
    path = tmp_path / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    yield key, cert, path


def _delivery() -> Delivery:
    return Delivery(id="d-tls", seq=1, notice_id=1, party_id="fra", reason="agreement", payload={"type": "notice"},
                    created_at=NOW)


def _send(url: str, ca_file: Path) -> tuple[bool, str | None]:
    async def go() -> tuple[bool, str | None]:
        context = ssl.create_default_context(cafile=str(ca_file))
        async with httpx.AsyncClient(verify=context, timeout=5.0) as client:
            attempt = await post(client, url, _delivery(), IssuerKey.generate(), WebhookPolicy(False, True))
        return attempt.ok, attempt.error

    return asyncio.run(go())


def test_https_goes_to_the_pinned_address_with_the_name_in_sni_and_host(
        tmp_path: Path, authority: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]) -> None:
    ca_key, ca, ca_file = authority
    receiver = TLSReceiver(tmp_path, ca_key, ca, "localhost")
    try:
        ok, error = _send(f"https://localhost:{receiver.port}/hook", ca_file)
    finally:
        receiver.close()
    assert ok, error
    assert receiver.seen == [("localhost", f"localhost:{receiver.port}")]


def test_the_certificate_is_checked_against_the_name_not_the_address(
        tmp_path: Path, authority: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]) -> None:
    ca_key, ca, ca_file = authority
    receiver = TLSReceiver(tmp_path, ca_key, ca, "receiver.example")  # a valid certificate, for another name
    try:
        ok, error = _send(f"https://localhost:{receiver.port}/hook", ca_file)
    finally:
        receiver.close()
    assert not ok and error is not None and "certificate" in error.lower()
    assert receiver.seen == []
