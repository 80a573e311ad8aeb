"""A real IMAP server for tests: Debian's Dovecot, unprivileged, on free ports of 127.0.0.1.

    with Dovecot(tmp) as server:          # user "bounces", password "geheim", Maildir storage
        server.append(raw_message)        # APPEND into INBOX, as a delivery would
        ... connect to server.host:server.port (plain/STARTTLS) or server.tls_port (implicit TLS),
        trusting server.ca_path ...

Or the pytest fixture `dovecot`. Without Dovecot the test is skipped with the reason, unless
NIEUWSBRIEF_REQUIRE_TOOLS=1 (CI): then it fails.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from external_tools import require_tool
from smtp_server import _certificate_authority, _free_port

USER = "bounces"
PASSWORD = "geheim"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = yes
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
mail_location = maildir:{base}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


def dovecot_binary() -> str:
    """Return the dovecot executable, or skip (fail under NIEUWSBRIEF_REQUIRE_TOOLS=1)."""
    path = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )
    require_tool("dovecot", path is not None, "install Debian's dovecot-imapd")
    assert path is not None
    return path


class Dovecot:
    """One throwaway Dovecot instance; `stop()` ends exactly the process it started."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.binary = dovecot_binary()
        # Short path: Dovecot's sockets live in base_dir (Unix socket paths are limited).
        self.base = Path(tempfile.mkdtemp(prefix="nb-dovecot-"))
        self.port = _free_port()
        self.tls_port = _free_port()
        self.ca_path = self.base / "ca.pem"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        """Write the config, user and certificate, start Dovecot, wait until it answers."""
        ca = _certificate_authority()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.base / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.base / "cert.pem"))
        ca.cert_pem.write_to_path(str(self.ca_path))
        # As root, Dovecot drops to `nobody` for everything; otherwise it runs as this user.
        account = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        group = "nogroup" if os.geteuid() == 0 else account.pw_name
        (self.base / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        for sub in ("run", "state", "mail"):
            (self.base / sub).mkdir()
        config = self.base / "dovecot.conf"
        config.write_text(
            _CONFIG.format(
                base=self.base,
                user=account.pw_name,
                group=group,
                uid=account.pw_uid,
                gid=account.pw_gid,
                port=self.port,
                tls_port=self.tls_port,
            )
        )
        if os.geteuid() == 0:
            for path in [self.base, *self.base.rglob("*")]:
                if path.name not in ("run",):
                    os.chown(path, account.pw_uid, account.pw_gid)
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self._log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on port {self.port}: {self._log()}")

    def _log(self) -> str:
        stderr = b""
        if self._process is not None and self._process.poll() is not None:
            stderr = self._process.stderr.read() if self._process.stderr else b""
        log = self.base / "dovecot.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return (stderr.decode(errors="replace") + text)[-3000:]

    def stop(self) -> None:
        """Stop the Dovecot this instance started and remove its files."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stderr:
            self._process.stderr.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> imaplib.IMAP4:
        """Return a logged-in plain IMAP client (for feeding and inspecting the mailbox)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=30)
        client.login(USER, PASSWORD)
        return client

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Put messages into a folder as a delivery would (unseen, no keywords)."""
        client = self.client()
        try:
            for data in messages:
                status, reply = client.append(folder, "", None, data)
                assert status == "OK", reply
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> list[str]:
        """Return the FLAGS of every message in a folder, in UID order."""
        client = self.client()
        try:
            client.select(folder, readonly=True)
            status, data = client.uid("FETCH", "1:*", "(FLAGS)")
            assert status == "OK", data
            return [d.decode() for d in data if isinstance(d, bytes)]
        finally:
            client.logout()

    def client_context(self) -> ssl.SSLContext:
        """Return a TLS context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=str(self.ca_path))


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running Dovecot with an empty INBOX for user `bounces`."""
    with Dovecot() as server:
        yield server
