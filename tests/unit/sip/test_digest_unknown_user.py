"""A wrong password and an unknown user cost the same work (no username probing by timing).

Checked structurally, not by a clock: the digest check of an unknown user runs the same response
computation as a wrong password, on inputs of the same size (a dummy HA1 of the algorithm's length).
"""

from __future__ import annotations

from typing import Any

import pytest

from frontoffice.channels.voice.registrar import Registrar, RegistrationLimits
from frontoffice.channels.voice.sip import AuthOutcome, DigestAuthenticator, authorize_request, digest_ha1
from frontoffice.channels.voice.sip.digest import digest_response

from .helpers import counter_ids, make_request

REALM = "frontoffice"


class RecordingResponse:
    """The production response function, remembering the shape of what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return digest_response(**kwargs)


def shape(kwargs: dict[str, Any]) -> dict[str, Any]:
    # The username is not hashed when an HA1 is given; every other input's size is what costs.
    return {k: (None if v is None else len(v)) for k, v in kwargs.items() if k != "username"}


def attempt(algorithm: str, username: str, account_ha1: dict[str, str] | None) -> tuple[AuthOutcome, dict]:
    recorder = RecordingResponse()
    authenticator = DigestAuthenticator(REALM, b"k", algorithms=(algorithm,), compute_response=recorder)
    registrar = Registrar(authenticator, limits=RegistrationLimits())
    request = make_request("REGISTER")
    challenge = registrar.challenge(request, 1.0)
    retry = authorize_request(
        request, challenge, username=username, password="a-wrong-guess", ids=counter_ids()
    )
    result = registrar.authenticate(retry, 1.0, account_ha1, username)
    [call] = recorder.calls  # exactly one response computation either way
    return result.outcome, shape(call)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_unknown_user_and_wrong_password_run_the_same_check_on_equal_size_input(algorithm: str) -> None:
    account = {a: digest_ha1(a, "alice", REALM, "the-real-password") for a in ("MD5", "SHA-256")}
    wrong_password = attempt(algorithm, "alice", account)
    unknown_user = attempt(algorithm, "nobody", None)
    assert wrong_password[0] is unknown_user[0] is AuthOutcome.FAILED
    assert wrong_password[1] == unknown_user[1]
    assert unknown_user[1]["ha1"] == len(account[algorithm])  # a dummy HA1 of the real size


def test_an_unknown_user_never_authenticates_even_with_the_dummy_secret_unknown() -> None:
    authenticator = DigestAuthenticator(REALM, b"k", algorithms=("MD5",))
    request = make_request("REGISTER")
    challenge = authenticator.challenge_response(request, 1.0)
    retry = authorize_request(request, challenge, username="nobody", password="", ids=counter_ids())
    result = authenticator.authenticate(retry, 1.0, ha1_for=lambda user, algorithm: None)
    assert result.outcome is AuthOutcome.FAILED and result.reason == "Unknown user"
