"""HTTPS sites on loopback standing in for the app behind its ALB and for the CDN, with a test CA
that verify trusts through SSL_CERT_FILE (as it would a corporate CA bundle)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# What the kit's CloudFront response headers policy and a hardened app send.
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
ASSET = "admin/css/base.5af66c1b1797.css"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Route:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


def app_routes(**changes: Route) -> dict[str, Route]:
    """The app behind its ALB and WAF: healthy, hardened, the admin path refused."""
    routes = {"/readyz": Route(200, SECURITY_HEADERS, b"ok"),
              "/admin/": Route(403, {"Content-Type": "text/html"}, b"<h1>403 Forbidden</h1>")}
    return {**routes, **{path_of(k): v for k, v in changes.items()}}


def cdn_routes(**changes: Route) -> dict[str, Route]:
    """CloudFront in front of collectstatic's output: the manifest and a hashed file."""
    manifest = json.dumps({"paths": {"admin/css/base.css": ASSET}, "version": "1.1"}).encode()
    routes = {"/staticfiles.json": Route(200, {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE}, manifest),
              f"/{ASSET}": Route(200, {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE,
                                       "Content-Type": "text/css"}, b"body{}")}
    return {**routes, **{path_of(k): v for k, v in changes.items()}}


def path_of(key: str) -> str:
    """Keyword names for routes: readyz -> /readyz, admin -> /admin/, asset -> the hashed file."""
    return {"readyz": "/readyz", "admin": "/admin/", "asset": f"/{ASSET}", "manifest": "/staticfiles.json"}[key]


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(folder: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webstack verify test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return tls


class Site:
    """A threaded HTTPS server on 127.0.0.1 answering fixed routes (404 elsewhere)."""

    def __init__(self, routes: Mapping[str, Route], tls: Tls) -> None:
        table = dict(routes)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                route = table.get(self.path, Route(404, {}, b"not found"))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
