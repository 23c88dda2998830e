"""A private Dovecot IMAP server for the tests: its own configuration in a temporary directory,
a passwd-file user, Maildir storage, plain IMAP on a free loopback port; started and stopped by
the fixture (``dovecot`` from Debian's dovecot-imapd; under CI=true a missing one fails the test).
The ``dovecot_tls`` fixture serves IMAP over TLS (port 993 style, RFC 8314 implicit TLS) instead,
with a self-signed certificate made by ``openssl`` for ``127.0.0.1`` (``cafile`` names it).

Run as an ordinary user, Dovecot's login and internal processes run as that user. Run as root (CI
containers), Dovecot refuses root for them: the package's ``dovenull`` and ``dovecot`` users are
used, and the mail belongs to ``dovecot``.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ...conftest import free_port, require_tool

# How long the fixture waits for Dovecot to listen, or to exit on stop: a bound on a hung start.
START_TIMEOUT_S = 20.0
# Between two connection attempts while Dovecot starts (there is nothing to wait on before it listens).
PROBE_INTERVAL_S = 0.05
USER = "support@acme.example"
PASSWORD = "imap-test-password"


@dataclass
class Dovecot:
    port: int
    user: str
    password: str
    cafile: str | None = None  # IMAP over TLS with this self-signed certificate (dovecot_tls)

    def client(self) -> imaplib.IMAP4:
        if self.cafile is not None:
            context = ssl.create_default_context(cafile=self.cafile)
            c: imaplib.IMAP4 = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context)
        else:
            c = imaplib.IMAP4("127.0.0.1", self.port)
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        c = self.client()
        try:
            typ, data = c.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            c.logout()

    def unseen(self, folder: str = "INBOX") -> list[int]:
        c = self.client()
        try:
            c.select(folder)
            typ, data = c.uid("SEARCH", "UNSEEN")
            assert typ == "OK"
            return [int(u) for u in data[0].split()]
        finally:
            c.logout()


def _users() -> tuple[str, str, str, int, int]:
    """(login user, internal user, internal group, mail uid, mail gid)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(os.getegid()).gr_name
        return me.pw_name, me.pw_name, group, me.pw_uid, me.pw_gid
    mail_user = pwd.getpwnam("dovecot")
    return "dovenull", "dovecot", grp.getgrgid(mail_user.pw_gid).gr_name, mail_user.pw_uid, mail_user.pw_gid


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    yield from _dovecot(tls=False)


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    yield from _dovecot(tls=True)


def _certificate(root: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (subjectAltName IP: what a client verifies)."""
    openssl = require_tool("openssl")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    cert.chmod(0o644)
    key.chmod(0o644)  # read by Dovecot's own (non-root) processes; a throw-away test key
    return cert, key


def _dovecot(*, tls: bool) -> Iterator[Dovecot]:
    binary = require_tool("dovecot")
    # Not under pytest's tmp_path: its parents are private to us, and Dovecot's own users must
    # reach the password file and the mail.
    root = Path(tempfile.mkdtemp(prefix="frontoffice-dovecot-"))
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(parents=True)
    root.chmod(0o755)
    login_user, internal_user, internal_group, uid, gid = _users()
    for sub in ("mail", "home"):
        shutil.chown(root / sub, uid, gid)
    port = free_port()
    cafile: str | None = None
    if tls:
        cert, key = _certificate(root)
        cafile = str(cert)
        ssl_settings = f"ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\n"
        plain, secure = "port = 0", f"address = 127.0.0.1\n    port = {port}\n    ssl = yes"
    else:
        ssl_settings = "ssl = no\n"
        plain, secure = f"address = 127.0.0.1\n    port = {port}", "port = 0"
    listeners = f"inet_listener imap {{\n    {plain}\n  }}\n  inet_listener imaps {{\n    {secure}\n  }}"
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    (root / "users").chmod(0o644)
    config = root / "dovecot.conf"
    config.write_text(
        f"""base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = frontoffice-test-{port}
protocols = imap
listen = 127.0.0.1
{ssl_settings}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {min(uid, 500)}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  {listeners}
}}
service anvil {{
  chroot =
}}
"""
    )
    # No pipes: the daemon keeps its inherited descriptors, and run() would wait for them to close.
    subprocess.run(
        [binary, "-c", str(config)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Dovecot(port, USER, PASSWORD, cafile)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            server.client().logout()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError((root / "dovecot.log").read_text()) from None
            time.sleep(PROBE_INTERVAL_S)
    try:
        yield server
    finally:
        subprocess.run(
            [binary, "-c", str(config), "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        pid_file = root / "run" / "master.pid"
        deadline = time.monotonic() + START_TIMEOUT_S
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(PROBE_INTERVAL_S)
        shutil.rmtree(root, ignore_errors=True)
