"""Serve a real Octavia API and its controller worker in one process on 127.0.0.1.

Runs inside the service venv (tests/real/.cache/venv). Usage: octavia_server.py CONFIG_FILE CERT_DIR HOST PORT

Why one process: with `transport_url = fake:/` oslo.messaging delivers casts only to listeners in the
same process, so the API's "create LB" cast reaches the worker only if the worker's RPC server lives
here too. That spares a message broker. The worker then runs the real amphora-provider flows with
noop compute/network/amphora drivers, which gives the real state machine (PENDING_CREATE -> ACTIVE,
PENDING_DELETE -> gone) without any VM.
"""

from __future__ import annotations

import datetime
import os
import sys
import threading


def ensure_throwaway_ca(cert_dir: str) -> None:
    """Write a self-signed CA (ca.pem, ca.key) and a client cert (client.pem) once; only for noop amphorae."""
    if os.path.exists(os.path.join(cert_dir, "client.pem")):
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    os.makedirs(cert_dir, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(subject_cn: str, issuer_key: rsa.RSAPrivateKey | None, issuer_cn: str | None, ca: bool):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or subject_cn)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256())
        )
        return key, cert

    def pem_key(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )

    ca_key, ca_cert = issue("kuryr-migrate test CA", None, None, ca=True)
    client_key, client_cert = issue("octavia-controller", ca_key, "kuryr-migrate test CA", ca=False)
    with open(os.path.join(cert_dir, "ca.key"), "wb") as f:
        f.write(pem_key(ca_key))
    with open(os.path.join(cert_dir, "ca.pem"), "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(cert_dir, "client.pem"), "wb") as f:
        f.write(client_cert.public_bytes(serialization.Encoding.PEM) + pem_key(client_key))


def main() -> None:
    config_file, cert_dir, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ensure_throwaway_ca(cert_dir)

    import waitress
    from octavia.api import app as api_app
    from octavia.controller.queue.v2 import consumer as consumer_v2
    from oslo_config import cfg

    # setup_app parses the config (prepare_service), initialises RPC and loads the provider drivers.
    app = api_app.setup_app(argv=[sys.argv[0], "--config-file", config_file])
    # The worker's RPC listener: the same object `octavia-worker` runs under cotyledon, minus the fork.
    consumer = consumer_v2.ConsumerService(0, cfg.CONF)
    threading.Thread(target=consumer.run, name="octavia-worker", daemon=True).start()
    # MariaDB handles concurrent sessions, so the API may use several threads.
    waitress.serve(app, host=host, port=port, threads=4, ident="octavia")


if __name__ == "__main__":
    main()
