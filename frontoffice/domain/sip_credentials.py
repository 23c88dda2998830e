"""How an agent's SIP phone password is kept: digest HA1 values, never the password (RFC 7616 §3.4.2).

Pure (hashlib only). The account use cases (``services/voice_calls.py``) hash a new password with
:func:`sip_digest_ha1`; the SIP core (``channels/voice/sip/digest.py``) checks phones against the
stored values with the same function, so both layers agree without one importing the other.
"""

from __future__ import annotations

import hashlib

__all__ = ["SIP_HA1_ALGORITHMS", "sip_digest_ha1"]

# RFC 8760 §2.1: the digest algorithms SIP names, MD5 and SHA-256; one stored HA1 per algorithm.
SIP_HA1_ALGORITHMS = ("MD5", "SHA-256")


def sip_digest_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)`` for ``algorithm`` (a ``-sess`` variant hashes the same way);
    :class:`ValueError` for an algorithm outside :data:`SIP_HA1_ALGORITHMS`."""
    algo = algorithm.upper().removesuffix("-SESS")
    data = f"{username}:{realm}:{password}".encode()
    if algo == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    if algo == "MD5":
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    raise ValueError(f"Unsupported digest algorithm {algorithm}")
