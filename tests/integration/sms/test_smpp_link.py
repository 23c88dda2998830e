"""Our SMPP transceiver against an SMS center built on smpplib's codec, over loopback (which the
links reach because the tests allow ``127.0.0.0/8``, as ``integrations_allowed_networks`` does)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from frontoffice.channels.sms import InboundSms, Receipt, SmppClient, SmppLink, SmppSubmitError
from frontoffice.services.egress import EgressPolicy
from tests.conftest import eventually

from .smsc_double import SmscDouble

# The setting's value for an SMSC on this machine (docs/integrations.md).
LOOPBACK = EgressPolicy.from_setting(["127.0.0.0/8"])

LONG_RU = (
    "Здравствуйте! Пишу по поводу заказа номер 4711: курьер не приехал вчера, "
    "а сегодня в приложении статус «доставлен». Пожалуйста, проверьте и перезвоните мне."
)


class Received:
    """What the SMS channel's service would store (the test's side of the client)."""

    def __init__(self) -> None:
        self.messages: list[InboundSms] = []
        self.receipts: list[Receipt] = []
        self.fail_next = False

    async def message(self, sms: InboundSms) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the database is down")
        self.messages.append(sms)

    async def receipt(self, receipt: Receipt) -> bool:
        self.receipts.append(receipt)
        return True


@pytest.fixture
async def smsc() -> AsyncIterator[SmscDouble]:
    double = SmscDouble()
    await double.start()
    yield double
    await double.stop()


def _link(smsc: SmscDouble, **kw: object) -> SmppLink:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "frontoffice",
        "password": "secret",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.2,
    }
    values.update(kw)
    return SmppLink(**values)  # type: ignore[arg-type]


async def test_binds_with_credentials_and_a_wrong_password_is_refused(smsc: SmscDouble) -> None:
    wrong = SmppClient(_link(smsc, password="nope"), Received(), egress=LOOPBACK)
    await wrong.start()
    await eventually(lambda: smsc.bind_refusals >= 1, "the SMSC refused the bind")
    assert not wrong.bound
    await wrong.stop()
    right = SmppClient(_link(smsc), Received(), egress=LOOPBACK)
    await right.start()
    await eventually(lambda: right.bound, "bound")
    assert smsc.binds == 1
    await right.stop()


async def test_a_long_cyrillic_message_arrives_whole_and_is_acknowledged_after_it_was_stored(
    smsc: SmscDouble,
) -> None:
    received = Received()
    client = SmppClient(_link(smsc), received, egress=LOOPBACK)
    await client.start()
    await eventually(lambda: client.bound, "bound")
    parts = smsc.deliver("79161234567", "74951112233", LONG_RU)
    assert parts == 3  # UCS-2, 67 characters a part
    message = await eventually(lambda: received.messages and received.messages[0], "the message stored")
    assert message == InboundSms("+79161234567", "+74951112233", LONG_RU, True)
    await eventually(lambda: len(smsc.deliver_answers) == parts, "every part answered")
    assert smsc.deliver_answers == [0, 0, 0]
    # Not stored: the SMSC is told to deliver it again (ESME_RX_T_APPN), not "ok".
    received.fail_next = True
    smsc.deliver("79161234567", "74951112233", "Алло?")
    await eventually(lambda: len(smsc.deliver_answers) == parts + 1, "answered")
    assert smsc.deliver_answers[-1] == 0x64
    await client.stop()


async def test_a_long_reply_leaves_in_parts_and_its_receipts_come_back(smsc: SmscDouble) -> None:
    received = Received()
    client = SmppClient(_link(smsc, window=2), received, egress=LOOPBACK)
    await client.start()
    reply = "Добрый день! " * 20 + "{ok} €"
    ids = await client.submit_text("+74951112233", "+79161234567", reply)
    assert len(ids) == 4 and len(set(ids)) == 4  # 280 UCS-2 characters: 67 a part
    assert smsc.texts() == [reply]
    assert {s.data_coding for s in smsc.submitted} == {8}
    assert all(s.registered_delivery == 1 and s.destination == "79161234567" for s in smsc.submitted)
    await eventually(lambda: len(received.receipts) == 4, "a receipt per part")
    assert {r.message_id for r in received.receipts} == set(ids)
    assert {r.outcome for r in received.receipts} == {"delivered"}
    # GSM 03.38 with extension characters: one part, data_coding 0.
    await client.submit_text("+74951112233", "+79161234567", "Price: 10€ [ok]")
    assert smsc.texts()[-1] == "Price: 10€ [ok]" and smsc.submitted[-1].data_coding == 0
    await client.stop()


async def test_after_the_smsc_drops_the_link_it_binds_again_and_sends(smsc: SmscDouble) -> None:
    client = SmppClient(_link(smsc), Received(), egress=LOOPBACK)
    await client.start()
    await eventually(lambda: client.bound, "bound")
    smsc.drop()
    await eventually(lambda: smsc.binds == 2 and client.bound, "bound again")
    assert await client.submit_text("+74951112233", "+79161234567", "Hello again")
    assert smsc.texts() == ["Hello again"]
    await client.stop()


async def test_a_refused_submit_says_whether_to_try_again(smsc: SmscDouble) -> None:
    client = SmppClient(_link(smsc), Received(), egress=LOOPBACK)
    await client.start()
    smsc.refuse = 0x58  # ESME_RTHROTTLED: later
    with pytest.raises(SmppSubmitError) as throttled:
        await client.submit_text("+74951112233", "+79161234567", "Hello")
    assert throttled.value.temporary and throttled.value.status == 0x58
    smsc.refuse = 0x0B  # ESME_RINVDSTADR: never
    with pytest.raises(SmppSubmitError) as invalid:
        await client.submit_text("+74951112233", "+79161234567", "Hello")
    assert not invalid.value.temporary and invalid.value.status == 0x0B
    await client.stop()


async def test_a_name_is_resolved_once_and_the_link_connects_to_the_checked_address(
    smsc: SmscDouble,
) -> None:
    # "smsc.test" is in no DNS: a connection that looked the name up again could not be made.
    lookups: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return {"smsc.test": ["127.0.0.1"]}[host]

    egress = EgressPolicy.from_setting(["127.0.0.0/8"], resolver=resolver)
    client = SmppClient(_link(smsc, host="smsc.test"), Received(), egress=egress)
    await client.start()
    await eventually(lambda: client.bound, "bound through the checked address")
    assert lookups == [("smsc.test", smsc.port)] and smsc.accepted == 1
    assert client.refused is None and client.last_error is None
    await client.stop()


async def test_an_smsc_name_that_resolves_to_an_internal_address_is_never_connected(
    smsc: SmscDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="frontoffice.sms.smpp")

    # Public when it was saved, loopback now (DNS rebinding): the policy allows no internal network.
    async def resolver(host: str, port: int) -> list[str]:
        return {"smsc.example.com": ["127.0.0.1"]}[host]

    client = SmppClient(
        _link(smsc, host="smsc.example.com"),
        Received(),
        name="+74951112233",
        egress=EgressPolicy(resolver=resolver),
    )
    await client.start()
    refusal = "refused: smsc.example.com (127.0.0.1) is a loopback address"
    # A submit does not wait for a bind that cannot come: temporary, so the outbox keeps the message.
    with pytest.raises(SmppSubmitError) as refused:
        await client.submit_text("+74951112233", "+79161234567", "Hello")
    assert refused.value.temporary and refused.value.status is None
    assert refused.value.reason.startswith(f"smpp-not-allowed: {refusal}")
    assert "integrations_allowed_networks" in refused.value.reason
    assert client.refused is not None and client.refused.startswith(refusal) and not client.bound
    assert f"SMPP +74951112233: {refusal}" in caplog.text
    # Tried again with the back-off, and refused again: the SMSC never saw a connection.
    await eventually(lambda: caplog.text.count(refusal) >= 3, "two more attempts refused")
    assert smsc.accepted == 0
    await client.stop()
