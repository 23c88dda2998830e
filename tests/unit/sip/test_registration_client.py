"""The client side of REGISTER (a carrier trunk): digest answers, refresh, back-off — in simulated time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontoffice.channels.voice.sip import (
    DigestAuthenticator,
    DigestCredentials,
    NameAddress,
    RegistrationClient,
    RegistrationState,
    Request,
    Via,
    build_response,
    parse_uri,
    refresh_delay,
    retry_delay,
)

from .helpers import counter_ids

PASSWORD = "carrier-secret-1"


def _client(**kwargs: object) -> RegistrationClient:
    return RegistrationClient(
        aor=parse_uri("sip:74951234567@carrier.example"),
        registrar=parse_uri("sip:carrier.example"),
        contact=NameAddress(parse_uri("sip:74951234567@192.0.2.10:5060")),
        via=Via(transport="UDP", host="192.0.2.10", port=5060),
        username="74951234567",
        password=PASSWORD,
        ids=counter_ids(),
        **kwargs,  # type: ignore[arg-type]
    )


def _carrier(*algorithms: str) -> DigestAuthenticator:
    return DigestAuthenticator("carrier.example", b"k", algorithms=algorithms, ids=counter_ids("n"))


def _ok(request: Request, expires: int | None = None) -> object:
    extra = [("Contact", f"<sip:74951234567@192.0.2.10:5060>;expires={expires}")] if expires else []
    return build_response(request, 200, extra_headers=extra)


@pytest.mark.parametrize("algorithms", [("MD5",), ("SHA-256",), ("SHA-256", "MD5")])
def test_registers_answering_the_digest_challenge_with_the_strongest_algorithm(
    algorithms: tuple[str, ...],
) -> None:
    carrier = _carrier(*algorithms)
    client = _client(expires=600)
    first = client.poll(0.0)
    assert first is not None and first.headers.get("Expires") == "600"
    assert client.poll(0.0) is None  # one REGISTER at a time
    retry = client.on_response(carrier.challenge_response(first, 0.0), 0.1)
    assert retry is not None
    assert retry.call_id == first.call_id and retry.cseq.seq == first.cseq.seq + 1
    assert retry.top_via.branch != first.top_via.branch
    credentials = DigestCredentials.parse(retry.headers.get("Authorization") or "")
    assert credentials.algorithm == algorithms[0] and credentials.qop == "auth"
    assert carrier.authenticate(retry, 0.2, lambda user: PASSWORD).ok
    assert client.on_response(build_response(retry, 200), 0.2) is None
    assert client.state is RegistrationState.REGISTERED and client.is_registered(100.0)
    assert client.last_error is None


def test_proxy_challenge_407_is_answered_with_proxy_authorization() -> None:
    carrier = _carrier("MD5")
    client = _client()
    first = client.poll(0.0)
    assert first is not None
    retry = client.on_response(carrier.challenge_response(first, 0.0, proxy=True), 0.0)
    assert retry is not None and retry.headers.get("Proxy-Authorization")
    assert carrier.authenticate(retry, 0.0, lambda user: PASSWORD, proxy=True).ok


def test_refreshes_before_the_granted_expiry_keeping_call_id_and_raising_cseq() -> None:
    client = _client(expires=600)
    first = client.poll(0.0)
    assert first is not None
    client.on_response(_ok(first, expires=300), 1.0)  # type: ignore[arg-type]
    assert client.registered_until == 301.0
    due = client.next_timer()
    assert due is not None and 1.0 < due < 301.0
    assert client.poll(due - 0.001) is None
    refresh = client.poll(due)
    assert refresh is not None and refresh.call_id == first.call_id and refresh.cseq.seq > first.cseq.seq


def test_wrong_password_fails_once_and_retries_with_back_off() -> None:
    carrier = _carrier("MD5")
    client = _client()
    first = client.poll(0.0)
    assert first is not None
    retry = client.on_response(carrier.challenge_response(first, 0.0), 0.0)
    assert retry is not None
    # The carrier challenges again (not stale): our credentials are wrong; no third REGISTER now.
    assert client.on_response(carrier.challenge_response(retry, 0.0), 0.0) is None
    assert client.state is RegistrationState.FAILED and "credentials" in (client.last_error or "")
    assert client.next_timer() == retry_delay(1)
    second = client.poll(retry_delay(1))
    assert second is not None
    client.on_timeout(retry_delay(1) + 32)
    assert client.next_timer() == retry_delay(1) + 32 + retry_delay(2)
    assert client.last_error == "no response (timeout)"


def test_stale_nonce_is_answered_again() -> None:
    carrier = _carrier("MD5")
    client = _client()
    first = client.poll(0.0)
    assert first is not None
    retry = client.on_response(carrier.challenge_response(first, 0.0), 0.0)
    assert retry is not None
    again = client.on_response(carrier.challenge_response(retry, 0.0, stale=True), 0.0)
    assert again is not None


def test_challenge_of_another_realm_is_not_answered() -> None:
    client = _client(realm="other.example")
    first = client.poll(0.0)
    assert first is not None
    assert client.on_response(_carrier("MD5").challenge_response(first, 0.0), 0.0) is None
    assert client.state is RegistrationState.FAILED


def test_interval_too_brief_retries_with_min_expires() -> None:
    client = _client(expires=60)
    first = client.poll(0.0)
    assert first is not None
    retry = client.on_response(build_response(first, 423, extra_headers=[("Min-Expires", "120")]), 0.0)
    assert retry is not None and retry.headers.get("Expires") == "120"


def test_unregister_sends_expires_zero_and_stops() -> None:
    client = _client()
    assert client.unregister() is None  # never registered: nothing to remove
    client = _client()
    first = client.poll(0.0)
    assert first is not None
    client.on_response(_ok(first), 0.0)  # type: ignore[arg-type]
    bye = client.unregister()
    assert bye is not None and bye.headers.get("Expires") == "0"
    client.on_response(build_response(bye, 200), 1.0)
    assert client.state is RegistrationState.UNREGISTERED and client.next_timer() is None


@given(st.integers(min_value=1, max_value=86_400))
def test_refresh_always_lands_before_expiry(granted: int) -> None:
    assert 0 < refresh_delay(granted) < granted


@given(st.integers(min_value=1, max_value=1000))
def test_back_off_grows_and_is_capped(failures: int) -> None:
    assert retry_delay(failures) <= retry_delay(failures + 1) <= 600


_PARAM = st.sampled_from(
    ['realm="carrier.example"', 'nonce="abc"', "algorithm=SHA-256", "algorithm=MD5", "algorithm=SHA-512",
     'qop="auth"', 'qop="auth-int"', "stale=true", 'opaque="o"', "realm=", '"', ",", "=", "nonce"]
)  # fmt: skip


@given(
    st.lists(
        st.one_of(
            st.builds(lambda ps: "Digest " + ", ".join(ps), st.lists(_PARAM, max_size=6)),
            st.text(max_size=60).filter(lambda t: "\r" not in t and "\n" not in t),
        ),
        max_size=3,
    ),
    st.sampled_from([401, 407]),
)
def test_any_challenge_a_carrier_sends_is_answered_or_counted_as_a_failure(
    values: list[str], status: int
) -> None:
    """Whatever the challenge headers hold, the client answers with credentials or records a failure;
    it never raises and never loops."""
    client = _client()
    first = client.poll(0.0)
    assert first is not None
    header = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    response = build_response(first, status, extra_headers=[(header, v) for v in values])
    retry = client.on_response(response, 0.0)
    if retry is None:
        assert client.state is RegistrationState.FAILED and client.next_timer() == retry_delay(1)
    else:
        assert retry.headers.get("Proxy-Authorization" if status == 407 else "Authorization")
