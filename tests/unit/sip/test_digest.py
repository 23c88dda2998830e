"""Digest authentication: RFC 7616/2617 vectors, server/client round trip, stale and replayed nonces."""

from __future__ import annotations

import pytest

from frontoffice.channels.voice.sip.digest import (
    AuthOutcome,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    answer_challenge,
    authorize_request,
    digest_ha1,
    digest_response,
    select_challenge,
)
from frontoffice.channels.voice.sip.exceptions import DigestError
from frontoffice.channels.voice.sip.parser import parse_datagram

from .helpers import counter_ids, make_request

RFC7616 = {
    "username": "Mufasa",
    "realm": "http-auth@example.org",
    "password": "Circle of Life",
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "qop": "auth",
    "nc": "00000001",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}
PASSWORDS = {"alice": "wonderland"}


def test_rfc7616_md5_example() -> None:
    assert digest_response(algorithm="MD5", **RFC7616) == "8ca523f5e9506fed4657c9700eebdbec"


def test_rfc7616_sha256_example() -> None:
    expected = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert digest_response(algorithm="SHA-256", **RFC7616) == expected


def test_rfc2617_md5_example() -> None:
    response = digest_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_client_prefers_sha256_when_both_offered() -> None:
    values = [
        'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"',
        'Digest realm="r", nonce="n1", algorithm=SHA-256, qop="auth"',
    ]
    assert select_challenge(values).algorithm == "SHA-256"
    assert select_challenge(values[:1]).algorithm == "MD5"


def test_client_skips_unsupported_challenges() -> None:
    with pytest.raises(DigestError):
        select_challenge(['Digest realm="r", nonce="n", algorithm=SHA-512-256', 'Basic realm="r"'])


def test_challenge_and_credentials_round_trip_through_text() -> None:
    challenge = DigestChallenge(
        realm='a "quoted" realm', nonce="abc", algorithm="SHA-256", opaque="o", stale=True
    )
    assert DigestChallenge.parse(str(challenge)) == challenge
    creds = answer_challenge(
        challenge, username="alice", password="pw", method="REGISTER", uri="sip:example.com", cnonce="c1"
    )
    assert DigestCredentials.parse(str(creds)) == creds
    assert creds.nc == "00000001" and creds.qop == "auth"


def make_server(**kwargs: object) -> DigestAuthenticator:
    return DigestAuthenticator("example.com", b"secret-key", ids=counter_ids("salt"), **kwargs)  # type: ignore[arg-type]


def challenged_retry(server: DigestAuthenticator, now: float, algorithm: str | None = None):  # type: ignore[no-untyped-def]
    request = make_request("REGISTER")
    challenge = server.challenge_response(request, now)
    assert challenge.status == 401
    values = challenge.headers.get_all("WWW-Authenticate")
    assert [DigestChallenge.parse(v).algorithm for v in values] == ["SHA-256", "MD5"]
    if algorithm is not None:
        challenge.headers.set("WWW-Authenticate", next(v for v in values if f"algorithm={algorithm}" in v))
    # Over the wire and back, as a client would see it.
    challenge = parse_datagram(challenge.serialize())  # type: ignore[assignment]
    retry = authorize_request(
        request, challenge, username="alice", password="wonderland", ids=counter_ids("c")
    )
    return request, retry


@pytest.mark.parametrize("algorithm", [None, "MD5"])
def test_server_client_round_trip(algorithm: str | None) -> None:
    server = make_server()
    request, retry = challenged_retry(server, 1000.0, algorithm)
    assert retry.cseq.seq == request.cseq.seq + 1
    assert retry.call_id == request.call_id
    assert retry.top_via.branch != request.top_via.branch
    creds = DigestCredentials.parse(retry.headers.get("Authorization") or "")
    assert creds.algorithm == (algorithm or "SHA-256")
    result = server.authenticate(retry, 1001.0, PASSWORDS.get)
    assert result.outcome is AuthOutcome.OK and result.username == "alice"


def test_wrong_password_fails() -> None:
    server = make_server()
    request = make_request("REGISTER")
    challenge = server.challenge_response(request, 0.0)
    retry = authorize_request(request, challenge, username="alice", password="guess")
    assert server.authenticate(retry, 1.0, PASSWORDS.get).outcome is AuthOutcome.FAILED


def test_expired_nonce_is_stale_and_rechallenge_says_so() -> None:
    server = make_server(nonce_lifetime=300.0)
    _, retry = challenged_retry(server, 1000.0)
    result = server.authenticate(retry, 1000.0 + 301.0, PASSWORDS.get)
    assert result.outcome is AuthOutcome.STALE
    again = server.challenge_response(retry, 1301.0, stale=True)
    assert all(DigestChallenge.parse(v).stale for v in again.headers.get_all("WWW-Authenticate"))


def test_replayed_nonce_count_is_rejected() -> None:
    server = make_server()
    _, retry = challenged_retry(server, 10.0)
    assert server.authenticate(retry, 11.0, PASSWORDS.get).ok
    replay = server.authenticate(retry, 12.0, PASSWORDS.get)
    assert replay.outcome is AuthOutcome.FAILED and "Replayed" in replay.reason


def test_increasing_nonce_count_is_accepted() -> None:
    server = make_server()
    challenge = server.challenges(0.0)[0]
    for nc in (1, 2, 5):
        creds = answer_challenge(
            challenge,
            username="alice",
            password="wonderland",
            method="INVITE",
            uri="sip:bob@example.com",
            cnonce="xyz",
            nc=nc,
        )
        result = server.verify(str(creds), method="INVITE", password_for=PASSWORDS.get, now=1.0)
        assert result.ok, result.reason


def test_forged_nonce_is_rejected() -> None:
    server = make_server()
    other = DigestAuthenticator("example.com", b"other-secret")
    challenge = other.challenges(0.0)[0]
    creds = answer_challenge(
        challenge, username="alice", password="wonderland", method="INVITE", uri="sip:x", cnonce="c"
    )
    result = server.verify(str(creds), method="INVITE", password_for=PASSWORDS.get, now=1.0)
    assert result.outcome is AuthOutcome.FAILED and result.reason == "Nonce not ours"


def test_legacy_md5_without_qop() -> None:
    server = make_server()
    nonce = server.new_nonce(5.0)
    legacy = DigestChallenge(realm="example.com", nonce=nonce, algorithm="MD5", qop=())
    creds = answer_challenge(
        legacy, username="alice", password="wonderland", method="REGISTER", uri="sip:example.com", cnonce="c"
    )
    assert creds.qop is None and "qop" not in str(creds)
    assert server.verify(str(creds), method="REGISTER", password_for=PASSWORDS.get, now=6.0).ok
    strict = make_server(allow_legacy=False)
    assert not strict.verify(str(creds), method="REGISTER", password_for=PASSWORDS.get, now=6.0).ok


def test_uri_mismatch_is_rejected() -> None:
    server = make_server()
    challenge = server.challenges(0.0)[0]
    creds = answer_challenge(
        challenge,
        username="alice",
        password="wonderland",
        method="INVITE",
        uri="sip:bob@example.com",
        cnonce="c",
    )
    result = server.verify(
        str(creds), method="INVITE", password_for=PASSWORDS.get, now=1.0, request_uri="sip:eve@example.com"
    )
    assert result.outcome is AuthOutcome.FAILED


def test_proxy_challenge_uses_407_headers() -> None:
    server = make_server()
    request = make_request("INVITE")
    challenge = server.challenge_response(request, 0.0, proxy=True)
    assert challenge.status == 407 and challenge.headers.get("Proxy-Authenticate")
    retry = authorize_request(request, challenge, username="alice", password="wonderland")
    assert retry.headers.get("Proxy-Authorization")
    assert server.authenticate(retry, 1.0, PASSWORDS.get, proxy=True).ok


@pytest.mark.parametrize(
    "value",
    ["", "Digest", "Basic abc", 'Digest username="a', "Digest username=a,,realm=b", 'Digest realm="r"'],
)
def test_malformed_credentials_fail_cleanly(value: str) -> None:
    result = make_server().verify(value, method="INVITE", password_for=PASSWORDS.get, now=0.0)
    assert result.outcome is AuthOutcome.FAILED


def _stored_ha1(username: str, algorithm: str) -> str | None:
    """A registrar's table: HA1 per algorithm, never the password (RFC 7616 §3.4.2)."""
    if username != "alice":
        return None
    return digest_ha1(algorithm, "alice", "example.com", "wonderland")


@pytest.mark.parametrize("algorithm", [None, "MD5"])
def test_server_verifies_against_stored_ha1(algorithm: str | None) -> None:
    server = make_server()
    _, retry = challenged_retry(server, 1000.0, algorithm)
    result = server.authenticate(retry, 1001.0, ha1_for=_stored_ha1)
    assert result.outcome is AuthOutcome.OK and result.username == "alice"


def test_stored_ha1_rejects_wrong_password_and_unknown_user() -> None:
    server = make_server()
    request = make_request("REGISTER")
    challenge = server.challenge_response(request, 0.0)
    wrong = authorize_request(request, challenge, username="alice", password="guess")
    assert server.authenticate(wrong, 1.0, ha1_for=_stored_ha1).outcome is AuthOutcome.FAILED
    stranger = authorize_request(request, challenge, username="mallory", password="wonderland")
    result = server.authenticate(stranger, 1.0, ha1_for=_stored_ha1)
    assert result.outcome is AuthOutcome.FAILED and result.reason == "Unknown user"


def test_digest_ha1_matches_rfc7616_inputs() -> None:
    ha1 = digest_ha1("MD5", RFC7616["username"], RFC7616["realm"], RFC7616["password"])
    expected = digest_response(algorithm="MD5", **RFC7616)
    assert digest_response(algorithm="MD5", **{**RFC7616, "password": None}, ha1=ha1) == expected
    with pytest.raises(DigestError):
        digest_ha1("SHA-512-256", "a", "b", "c")
