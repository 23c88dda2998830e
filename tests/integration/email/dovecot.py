"""A private Dovecot IMAP server for the tests: its own configuration in a temporary directory,
a passwd-file user, Maildir storage, on a free loopback port; started and stopped by the fixture
(``dovecot`` from Debian's dovecot-imapd; under CI=true a missing one fails the test).

- ``dovecot``: plain IMAP, no TLS at all (so no STARTTLS in its capabilities).
- ``dovecot_tls``: IMAP over TLS (port 993 style, RFC 8314 implicit TLS).
- ``dovecot_starttls``: plain IMAP that offers STARTTLS (port 143 style, RFC 9051 §6.2.1) and
  refuses any login before it (``ssl = required``: LOGINDISABLED until TLS is up). It listens on
  127.0.0.2: Dovecot counts a connection whose two ends have one address as secure, so on 127.0.0.1
  it would take a plain-text login; from 127.0.0.1 to 127.0.0.2 it treats us as a remote client.
- ``dovecot_oauth2``: plain IMAP that also takes XOAUTH2 and OAUTHBEARER, checking each token with an
  ``oauth2`` passdb against an RFC 7662 introspection endpoint of an OAuth2 provider the fixture
  serves on loopback (:class:`OAuth2Provider`), which also has a token endpoint (RFC 6749: client
  credentials and refresh) issuing tokens that expire.

A server can be stopped and started again (:meth:`Dovecot.stop`, :meth:`Dovecot.start`: same port,
same mail, same UIDVALIDITY), and a user's sessions ended with the server up (:meth:`Dovecot.kick`).

The TLS servers use a self-signed certificate made by ``openssl`` for ``127.0.0.1`` (``cafile``
names it). Run as an ordinary user, Dovecot's login and internal processes run as that user. Run as
root (CI containers), Dovecot refuses root for them: the package's ``dovenull`` and ``dovecot`` users
are used, and the mail belongs to ``dovecot``.
"""

from __future__ import annotations

import grp
import imaplib
import json
import os
import pwd
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

import pytest

from ...conftest import free_port, require_tool

# How long the fixture waits for Dovecot to listen, or to exit on stop: a bound on a hung start.
START_TIMEOUT_S = 20.0
# Between two connection attempts while Dovecot starts (there is nothing to wait on before it listens).
PROBE_INTERVAL_S = 0.05
USER = "support@acme.example"
PASSWORD = "imap-test-password"
Security = Literal["none", "tls", "starttls"]


@dataclass
class OAuth2Client:
    """An application registered at the provider: its secret, the mailbox user its tokens open, and
    the scope a client-credentials request must name (Microsoft's ``.../.default``)."""

    secret: str
    user: str
    scope: str | None = None


@dataclass
class OAuth2Provider:
    """An OAuth2 provider on loopback, as Microsoft's and Google's look to an IMAP client and server.

    - The **token endpoint** (``token_url``, RFC 6749 §3.2): the client-credentials grant (§4.4) for a
      client in ``clients`` (its secret in the form, §2.3.1; the scope it must ask for), and a refresh
      (§6) with a refresh token in ``refresh_tokens``. Each issues a new access token that lives
      ``lifetime_s`` seconds (``expires_in``); with ``rotate_refresh_tokens`` a refresh also replaces
      the refresh token (§6). Errors as §5.2 says (``invalid_client`` with 401, ``invalid_grant``,
      ``invalid_scope``, ``unsupported_grant_type`` with 400).
    - The **introspection endpoint** (``url``, RFC 7662) Dovecot's oauth2 passdb asks about each
      token: one in ``tokens`` and not expired is active for its user; any other ``{"active": false}``.
    """

    tokens: dict[str, str] = field(default_factory=dict)  # access token -> user
    expiry: dict[str, float] = field(default_factory=dict)  # access token -> time.monotonic() deadline
    clients: dict[str, OAuth2Client] = field(default_factory=dict)  # client id -> client
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> client id
    lifetime_s: int = 3600
    rotate_refresh_tokens: bool = False  # a refresh answers with a new refresh token, the old one dies
    asked: list[str] = field(default_factory=list)  # the tokens Dovecot asked about, in order
    refused: list[str] = field(default_factory=list)  # those it was told were not active
    issued: list[str] = field(default_factory=list)  # the access tokens the token endpoint issued
    token_requests: list[dict[str, str]] = field(default_factory=list)  # their forms, in order
    url: str = ""
    token_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, token: str) -> dict[str, object]:
        with self._lock:
            self.asked.append(token)
            user = self.tokens.get(token) if self.active(token) else None
            if user is None:
                self.refused.append(token)
        return {"active": True, "username": user} if user else {"active": False}

    def active(self, token: str) -> bool:
        """The provider still takes ``token``: it knows it and its lifetime has not run out."""
        return token in self.tokens and time.monotonic() < self.expiry.get(token, float("inf"))

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        """The token endpoint's answer (HTTP status, JSON body) to a request's form."""
        with self._lock:
            self.token_requests.append(form)
            client = self.clients.get(form.get("client_id", ""))
            if client is None or form.get("client_secret") != client.secret:
                return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
            grant = form.get("grant_type")
            answer: dict[str, object] = {}
            if grant == "refresh_token":
                if self.refresh_tokens.get(form.get("refresh_token", "")) != form["client_id"]:
                    return 400, {"error": "invalid_grant", "error_description": "Bad refresh token."}
                if self.rotate_refresh_tokens:  # RFC 6749 §6: a new refresh token replaces the old
                    del self.refresh_tokens[form["refresh_token"]]
                    answer["refresh_token"] = f"rt-{secrets.token_urlsafe(12)}"
                    self.refresh_tokens[str(answer["refresh_token"])] = form["client_id"]
            elif grant == "client_credentials":
                if client.scope is not None and form.get("scope") != client.scope:
                    return 400, {"error": "invalid_scope", "error_description": f"Ask for {client.scope}."}
            else:
                return 400, {"error": "unsupported_grant_type"}
            access = f"at-{secrets.token_urlsafe(12)}"
            self.tokens[access] = client.user
            self.expiry[access] = time.monotonic() + self.lifetime_s
            self.issued.append(access)
            answer |= {"access_token": access, "token_type": "Bearer", "expires_in": self.lifetime_s}
            return 200, answer


@dataclass
class Dovecot:
    port: int
    user: str
    password: str
    cafile: str | None = None  # TLS with this self-signed certificate (dovecot_tls, dovecot_starttls)
    security: Security = "none"
    host: str = "127.0.0.1"
    log: Path | None = None  # Dovecot's log file
    oauth2: OAuth2Provider | None = None  # dovecot_oauth2
    binary: str = ""  # the dovecot executable and configuration file (start, stop, kick)
    config: Path | None = None

    def client(self) -> imaplib.IMAP4:
        context = ssl.create_default_context(cafile=self.cafile) if self.cafile else None
        if self.security == "tls":
            c: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context)
        else:
            c = imaplib.IMAP4(self.host, self.port)
            if self.security == "starttls":
                c.starttls(context)
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

    def logins(self) -> list[str]:
        """Dovecot's log lines of the imap-login process (logins, and disconnections before one)."""
        assert self.log is not None
        return [line for line in self.log.read_text().splitlines() if "imap-login:" in line]

    def start(self) -> None:
        """Start the server (again, after :meth:`stop`: same port, same mail) and wait until it
        takes a login."""
        assert self.config is not None
        # No pipes: the daemon keeps its inherited descriptors, and run() would wait for them to close.
        subprocess.run(
            [self.binary, "-c", str(self.config)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self.client().logout()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(self.log.read_text() if self.log else "no log") from None
                time.sleep(PROBE_INTERVAL_S)

    def stop(self) -> None:
        """Stop the server as its operator would (``dovecot stop``: every session ends, the
        clients' connections close) and wait until it has exited."""
        assert self.config is not None
        subprocess.run(
            [self.binary, "-c", str(self.config), "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pid_file = self.config.parent / "run" / "master.pid"
        deadline = time.monotonic() + START_TIMEOUT_S
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(PROBE_INTERVAL_S)

    def kick(self) -> None:
        """End the user's sessions, the server staying up (``doveadm kick``: what a provider does
        to a session whose access token has expired, Microsoft 365's "Session invalidated")."""
        assert self.config is not None
        doveadm = require_tool("doveadm")
        subprocess.run([doveadm, "-c", str(self.config), "kick", self.user], check=True, capture_output=True)


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
    yield from _dovecot(security="none")


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    yield from _dovecot(security="tls")


@pytest.fixture
def dovecot_starttls() -> Iterator[Dovecot]:
    yield from _dovecot(security="starttls")


@pytest.fixture
def dovecot_oauth2() -> Iterator[Dovecot]:
    provider = OAuth2Provider()
    with provider_server(provider):
        yield from _dovecot(security="none", oauth2=provider)


class _ProviderHandler(BaseHTTPRequestHandler):
    server: _ProviderServer

    def do_POST(self) -> None:  # both endpoints take a form (RFC 7662 §2.1, RFC 6749 §4.4.2 and §6)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        provider = self.server.provider
        if self.path == "/token":
            status, answer = provider.token(form)
        else:  # introspection_mode = post: the token as a form field
            status, answer = 200, provider.answer(form.get("token", ""))
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # no access log on the test's output


class _ProviderServer(ThreadingHTTPServer):
    def __init__(self, provider: OAuth2Provider) -> None:
        super().__init__(("127.0.0.1", 0), _ProviderHandler)
        self.provider = provider


@contextmanager
def provider_server(provider: OAuth2Provider) -> Iterator[None]:
    """Serve ``provider`` on a free loopback port (its ``url`` and ``token_url``) while the block runs."""
    server = _ProviderServer(provider)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    provider.url, provider.token_url = f"{base}/introspect", f"{base}/token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _certificate(root: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and 127.0.0.2 (subjectAltName IP: what a client verifies)."""
    openssl = require_tool("openssl")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,IP:127.0.0.2", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    cert.chmod(0o644)
    key.chmod(0o644)  # read by Dovecot's own (non-root) processes; a throw-away test key
    return cert, key


def _dovecot(*, security: Security, oauth2: OAuth2Provider | None = None) -> Iterator[Dovecot]:
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
    host = "127.0.0.2" if security == "starttls" else "127.0.0.1"
    cafile: str | None = None
    plain, secure = f"address = {host}\n    port = {port}", "port = 0"
    if security == "none":
        ssl_settings = "ssl = no\n"
    else:
        cert, key = _certificate(root)
        cafile = str(cert)
        # required: no login before TLS (on the plain port, LOGINDISABLED until STARTTLS).
        ssl_settings = f"ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\n"
        if security == "tls":
            plain, secure = "port = 0", f"address = {host}\n    port = {port}\n    ssl = yes"
    listeners = f"inet_listener imap {{\n    {plain}\n  }}\n  inet_listener imaps {{\n    {secure}\n  }}"
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    (root / "users").chmod(0o644)
    mechanisms, oauth2_passdb = "plain login", ""
    if oauth2 is not None:
        mechanisms += " xoauth2 oauthbearer"
        (root / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = {oauth2.url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        (root / "oauth2.conf").chmod(0o644)
        oauth2_passdb = (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {root}/oauth2.conf\n}}\n"
        )
    config = root / "dovecot.conf"
    config.write_text(
        f"""base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = frontoffice-test-{port}
protocols = imap
listen = {host}
{ssl_settings}disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
mail_location = maildir:{root}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {min(uid, 500)}
{oauth2_passdb}passdb {{
  driver = passwd-file
  mechanisms = plain login
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
    server = Dovecot(
        port,
        USER,
        PASSWORD,
        cafile,
        security,
        host,
        root / "dovecot.log",
        oauth2,
        binary=binary,
        config=config,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
