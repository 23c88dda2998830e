"""SIP over TLS: a self-signed certificate made for the test, a Python TLS client sending real
OPTIONS and REGISTER requests (this sipp is built without TLS, so ``sipp -t l1`` is not available)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.sip import Response, StreamParser
from frontoffice.channels.voice.tls import server_context
from frontoffice.config import ConfigError, load_settings

from ..conftest import require_tool
from .sipp.runner import HOST, free_port, voice_service


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def voice(container: Container, certificate: tuple[Path, Path]) -> AsyncIterator[VoiceService]:
    service = voice_service(
        container,
        tls_context=server_context(*certificate),
        tls_port=free_port(),
    )
    await service.start()
    yield service
    await service.stop()


def _request(method: str, port: int, local_port: int, cseq: int = 1) -> bytes:
    return (
        f"{method} sip:{HOST}:{port};transport=tls SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {HOST}:{local_port};branch=z9hG4bK-tls-{method}-{cseq};rport\r\n"
        f"From: <sip:alice@{HOST}>;tag=tls1\r\nTo: <sip:alice@{HOST}>\r\n"
        f"Call-ID: tls-{method}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:alice@{HOST}:{local_port};transport=tls>\r\nExpires: 300\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def test_options_and_register_over_tls(voice: VoiceService, certificate: tuple[Path, Path]) -> None:
    client = ssl.create_default_context(cafile=str(certificate[0]))
    reader, writer = await asyncio.open_connection(HOST, voice.tls_port, ssl=client, server_hostname=HOST)
    local_port = writer.get_extra_info("sockname")[1]
    parser = StreamParser()

    async def response() -> Response:
        while True:
            for message in parser.feed(await asyncio.wait_for(reader.read(65536), 5)):
                if isinstance(message, Response) and message.status >= 200:
                    return message

    try:
        writer.write(_request("OPTIONS", voice.tls_port, local_port))
        options = await response()
        assert options.status == 200 and "INVITE" in (options.headers.get("Allow") or "")
        writer.write(_request("REGISTER", voice.tls_port, local_port))
        challenge = await response()
        assert challenge.status == 401 and challenge.headers.get("WWW-Authenticate")
        assert challenge.top_via.transport == "TLS"
    finally:
        writer.close()


async def test_plain_tcp_on_the_tls_port_gets_no_sip_answer(voice: VoiceService) -> None:
    reader, writer = await asyncio.open_connection(HOST, voice.tls_port)
    writer.write(_request("OPTIONS", voice.tls_port, 9))
    try:
        data = await asyncio.wait_for(reader.read(65536), 5)
    except (ConnectionError, TimeoutError):
        data = b""
    finally:
        writer.close()
    assert not data.startswith(b"SIP/2.0")


def test_certificate_without_key_is_a_configuration_error_naming_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sip_tls_cert and sip_tls_key"):
        load_settings(data_dir=tmp_path, sip_tls_cert=tmp_path / "cert.pem")
