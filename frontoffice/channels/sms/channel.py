"""The SMS channel's wiring: SMPP links per entry point, their inbound adapter, the outbox sender.

An SMS entry point's ``config.sms``::

    {"gateway": "smpp",
     "smpp": {"host": "smsc.example.net", "port": 2775, "system_id": "...", "password": "...",
              "system_type": "", "window": 10, "source_ton": 1, "source_npi": 1}}

The entry point's address is our number (E.164) or alphanumeric sender name: the source of its SMS.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx

from frontoffice.services.egress import EgressPolicy, GuardedTransport
from frontoffice.services.messaging import Messaging
from frontoffice.services.outbox_delivery import Delivery, PermanentFailure, TemporaryFailure

from .encoding import EncodingError
from .http_gateway import send_sms
from .smpp import Receipt
from .smpp_client import InboundSms, SmppClient, SmppLink, SmppSubmitError

__all__ = ["SmppEntryPoint", "SmsChannel", "SmsSender", "smpp_link"]

log = logging.getLogger("frontoffice.sms")


def smpp_link(config: dict[str, Any]) -> SmppLink:
    """An entry point's ``config.sms.smpp`` as a link."""
    c = dict((config.get("sms") or {}).get("smpp") or {})
    known = set(SmppLink.__dataclass_fields__)
    return SmppLink(**{k: v for k, v in c.items() if k in known})


class SmppEntryPoint:
    """The inbound side of one entry point's SMPP link (:class:`SmsInbound`)."""

    def __init__(self, messaging: Messaging, entry_point_id: int, address: str) -> None:
        self.messaging, self.entry_point_id, self.address = messaging, entry_point_id, address

    async def message(self, sms: InboundSms) -> None:
        # SMPP 3.4's deliver_sm carries no message id: a redelivery (our answer lost) is stored again.
        await self.messaging.sms_received(
            self.address, sms.sender, sms.text, f"smpp:{uuid.uuid4().hex}", complete=sms.complete
        )

    async def receipt(self, receipt: Receipt) -> bool:
        return await self.messaging.sms_receipt(
            self.entry_point_id, receipt.message_id, receipt.outcome, receipt.stat, receipt.error
        )


class SmsChannel:
    """The SMPP links of the SMS entry points (started with the node). :meth:`reload` (called after
    an entry point is created or changed through the admin API) starts new links, restarts changed
    ones and stops removed ones, without a restart of the node. A link connects only to the
    addresses ``egress`` allows (its :attr:`SmppClient.refused` says when it was refused)."""

    def __init__(self, messaging: Messaging, *, egress: EgressPolicy | None = None) -> None:
        self.messaging = messaging
        self.egress = egress or EgressPolicy()
        self.links: dict[int, SmppClient] = {}
        self._configs: dict[int, tuple[str, dict[str, Any]]] = {}
        self._running = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._running = True
        await self.reload()

    async def reload(self) -> None:
        """Bring the links in line with the stored entry points (no-op while stopped)."""
        from frontoffice.domain.model import Channel

        async with self._lock:
            if not self._running:
                return
            wanted: dict[int, tuple[str, dict[str, Any]]] = {}
            for ep_id, address, config in await self.messaging.entry_points(Channel.SMS):
                sms = config.get("sms") or {}
                if sms.get("gateway") == "smpp" and sms.get("smpp"):
                    wanted[ep_id] = (address, dict(sms["smpp"]))
            for ep_id in list(self.links):
                if wanted.get(ep_id) != self._configs.get(ep_id):
                    await self.links.pop(ep_id).stop()
                    self._configs.pop(ep_id, None)
            for ep_id, (address, smpp) in wanted.items():
                if ep_id not in self.links:
                    client = SmppClient(
                        smpp_link({"sms": {"smpp": smpp}}),
                        SmppEntryPoint(self.messaging, ep_id, address),
                        name=address,
                        egress=self.egress,
                    )
                    self.links[ep_id], self._configs[ep_id] = client, (address, smpp)
                    await client.start()

    async def stop(self) -> None:
        async with self._lock:
            self._running = False
            for client in self.links.values():
                await client.stop()
            self.links.clear()
            self._configs.clear()


class SmsSender:
    """The outbox sender of channel ``sms``: the entry point's SMPP link or HTTP gateway
    (``config.sms.gateway``); the SMSC's part ids (the provider's message id) are recorded so its
    receipts (delivery reports) mark the message delivered or failed. An HTTP gateway is reached only
    at the addresses ``egress`` allows (``transport``: a test's own instead)."""

    channel = "sms"

    def __init__(
        self,
        messaging: Messaging,
        channel: SmsChannel,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.messaging, self.sms, self.transport = messaging, channel, transport
        self.egress = egress or EgressPolicy()

    async def send(self, delivery: Delivery) -> str | None:
        message = delivery.message
        if message is None or message.thread_id is None:
            raise PermanentFailure("the outbox row names no conversation message")
        if not await self.messaging.may_send_sms(message.thread_id):
            raise PermanentFailure("sms-opted-out: the customer opted out of SMS from this number")
        address = await self.messaging.outbound_address(message.thread_id, "sms")
        http = (message.entry_point_config.get("sms") or {}).get("http")
        if (message.entry_point_config.get("sms") or {}).get("gateway") == "http" and http:
            # A transport of the guard per send: the send's client closes it.
            transport = self.transport if self.transport is not None else GuardedTransport(self.egress)
            reply = await send_sms(
                http, address.entry_point_address, address.to, message.body, transport=transport
            )
            if reply.message_id:
                await self.messaging.record_parts(message.id, address.entry_point_id, [reply.message_id])
            return None
        link = self.sms.links.get(address.entry_point_id)
        if link is None:
            raise PermanentFailure("the entry point has no SMS gateway (config.sms.gateway)")
        try:
            ids = await link.submit_text(address.entry_point_address, address.to, message.body)
        except EncodingError as exc:
            raise PermanentFailure(str(exc)) from None
        except SmppSubmitError as exc:
            if exc.temporary:
                raise TemporaryFailure(exc.reason) from None
            raise PermanentFailure(exc.reason) from None
        await self.messaging.record_parts(message.id, address.entry_point_id, ids)
        return None
