"""The IMAP STARTTLS scenarios again on uvloop, the loop ``frontoffice serve`` runs on (``aio.py``;
this directory's conftest.py picks the loop): the upgrade of the connection (``loop.start_tls``) and
the refusal of bytes injected before the handshake depend on how the loop hands a transport over;
and a connection cut under the connector, whose notice depends on the loop's ``connection_lost``."""

from __future__ import annotations

from ..email.dovecot import dovecot, dovecot_starttls  # noqa: F401 - the fixtures
from ..email.test_imap_connector import (  # noqa: F401 - collected again here, on uvloop
    test_a_connection_cut_between_polls_or_mid_fetch_is_noticed_and_nothing_lost_or_doubled,
    test_a_mailbox_behind_starttls_is_read_over_the_upgraded_connection,
    test_a_response_injected_before_the_tls_handshake_is_refused,
)
