"""A throwaway certificate authority and a loopback certificate for the HTTPS stand-ins.

Clients are pointed at the CA file; nothing is installed system-wide.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class LoopbackTLS:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


def make_loopback_tls(directory: Path) -> LoopbackTLS:
    """Write `ca.pem`, `server.pem` and `server.key` (0600) for 127.0.0.1/localhost into `directory`.

    Reuses files already there so a `--data DIR` sandbox keeps the CA its clients trust.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    if not (ca_file.exists() and cert_file.exists() and key_file.exists()):
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        ca.cert_pem.write_to_path(str(ca_file))
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(cert_file), append=True)
        key_file.touch(mode=0o600)
        cert.private_key_pem.write_to_path(str(key_file))
        key_file.chmod(0o600)
    return LoopbackTLS(ca_file, cert_file, key_file)
