"""An SMS center for tests, speaking SMPP through ``smpplib``'s codec (a different implementation
from ours): it accepts binds with the right credentials, answers enquire_link, takes submit_sm
(answering with its own message ids and, when asked, a delivery receipt as deliver_sm), sends a
customer's message as deliver_sm parts (``smpplib.gsm.make_parts``: UDH concatenation, GSM 03.38
or UCS-2) and can drop every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from dataclasses import dataclass, field
from typing import Any

from smpplib import consts, gsm, smpp


class _PeerSequence:
    """smpplib numbers the PDUs it builds through its client object; ours are numbered explicitly."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_PEER = _PeerSequence()


def _make(name: str, *, sequence: int, client: Any, **fields: Any) -> Any:
    """smpplib's PDU ``name``; its constructor does not take a sequence number, so it is set after."""
    pdu = smpp.make_pdu(name, client=client, **fields)
    pdu.sequence = sequence
    return pdu


@dataclass
class Submitted:
    """A submit_sm as the SMSC saw it (decoded with smpplib)."""

    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    message_id: str

    def user_data(self) -> tuple[tuple[int, int, int] | None, bytes]:
        """(reference, total, sequence) of a concatenated part, and the text's octets."""
        if self.esm_class & consts.SMPP_GSMFEAT_UDHI:
            udhl = self.short_message[0]
            header, data = self.short_message[1 : 1 + udhl], self.short_message[1 + udhl :]
            if header[0] == 0 and header[1] == 3:
                return (header[2], header[3], header[4]), data
            return None, data
        return None, self.short_message


def _text(data: bytes, coding: int) -> str:
    if coding == consts.SMPP_ENCODING_ISO10646:
        return data.decode("utf-16-be")
    table = gsm.GSM_CHARACTER_TABLE
    out, i = [], 0
    while i < len(data):
        if data[i] == 0x1B:
            out.append(table[0x80 + data[i + 1]])
            i += 2
        else:
            out.append(table[data[i]])
            i += 1
    return "".join(out)


@dataclass
class SmscDouble:
    system_id: str = "frontoffice"
    password: str = "secret"
    receipts: str | None = "DELIVRD"  # stat of the receipts it sends; None: none
    host: str = "127.0.0.1"
    port: int = 0
    submitted: list[Submitted] = field(default_factory=list)
    deliver_answers: list[int] = field(default_factory=list)  # command_status of our deliver_sm_resp
    binds: int = 0
    accepted: int = 0  # TCP connections it accepted, ever (bound or not)
    refuse: int = 0  # command_status it answers submit_sm with (0: accepts)
    bind_refusals: int = 0
    _receipts: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _seq: Any = field(default_factory=lambda: itertools.count(1))
    _ids: Any = field(default_factory=lambda: itertools.count(0xA000))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()  # no new connections; then the open ones are cut
        self.drop()
        if self._server is not None:
            # Python 3.12+ waits here for the connections' handlers, which end once cut.
            await asyncio.wait_for(self._server.wait_closed(), 5)

    def drop(self) -> None:
        """Close every connection abruptly (a restarting SMSC)."""
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    @property
    def connected(self) -> int:
        return len(self._writers)

    def texts(self) -> list[str]:
        """The messages submitted to it, long ones put back together from their parts."""
        out: list[str] = []
        parts: dict[tuple[str, int], dict[int, str]] = {}
        for s in self.submitted:
            concat, data = s.user_data()
            text = _text(data, s.data_coding)
            if concat is None:
                out.append(text)
                continue
            ref, total, seq = concat
            got = parts.setdefault((s.destination, ref), {})
            got[seq] = text
            if len(got) == total:
                out.append("".join(got[i] for i in sorted(got)))
        return out

    def _send(self, pdu: Any) -> None:
        for w in self._writers:
            w.write(pdu.generate())

    def deliver(self, source: str, destination: str, text: str) -> int:
        """Send a customer's message to the bound ESME; return how many deliver_sm parts it took."""
        parts, encoding, esm_class = gsm.make_parts(text)
        for part in parts:
            pdu = _make(
                "deliver_sm",
                client=_PEER,
                sequence=next(self._seq),
                source_addr_ton=consts.SMPP_TON_INTL,
                source_addr_npi=consts.SMPP_NPI_ISDN,
                source_addr=source,
                dest_addr_ton=consts.SMPP_TON_INTL,
                dest_addr_npi=consts.SMPP_NPI_ISDN,
                destination_addr=destination,
                esm_class=esm_class,
                data_coding=encoding,
                short_message=part,
            )
            self._send(pdu)
        return len(parts)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        try:
            while True:
                header = await reader.readexactly(16)
                (length,) = struct.unpack(">L", header[:4])
                data = header + await reader.readexactly(length - 16)
                pdu = smpp.parse_pdu(data, client=_PEER)
                await self._handle(pdu, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    async def _handle(self, pdu: Any, writer: asyncio.StreamWriter) -> None:
        name = pdu.command
        if name == "bind_transceiver":
            ok = pdu.system_id.decode() == self.system_id and pdu.password.decode() == self.password
            self.binds += ok
            self.bind_refusals += not ok
            status = consts.SMPP_ESME_ROK if ok else consts.SMPP_ESME_RINVPASWD
            resp = _make(
                "bind_transceiver_resp", client=_PEER, sequence=pdu.sequence, status=status, system_id="SMSC"
            )
            writer.write(resp.generate())
        elif name == "enquire_link":
            writer.write(_make("enquire_link_resp", client=_PEER, sequence=pdu.sequence).generate())
        elif name == "unbind":
            writer.write(_make("unbind_resp", client=_PEER, sequence=pdu.sequence).generate())
        elif name == "submit_sm" and self.refuse:
            writer.write(
                _make("submit_sm_resp", client=_PEER, sequence=pdu.sequence, status=self.refuse).generate()
            )
        elif name == "submit_sm":
            message_id = f"{next(self._ids):X}"
            self.submitted.append(
                Submitted(
                    pdu.source_addr.decode(),
                    pdu.destination_addr.decode(),
                    pdu.data_coding,
                    pdu.esm_class,
                    pdu.registered_delivery,
                    bytes(pdu.short_message),
                    message_id,
                )
            )
            resp = _make("submit_sm_resp", client=_PEER, sequence=pdu.sequence, message_id=message_id)
            writer.write(resp.generate())
            if pdu.registered_delivery and self.receipts:
                text = (
                    f"id:{message_id} sub:001 dlvrd:001 submit date:2601011200 done date:2601011200 "
                    f"stat:{self.receipts} err:000 text:"
                )
                self._send_receipt(
                    writer, pdu.destination_addr.decode(), pdu.source_addr.decode(), text, message_id
                )
        elif name in ("deliver_sm_resp", "generic_nack"):
            self.deliver_answers.append(pdu.status)
            retry = self._receipts.pop(pdu.sequence, None)
            if retry is not None and pdu.status == 0x64:
                # ESME_RX_T_APPN: like an SMSC, deliver the receipt again a little later.
                asyncio.get_running_loop().call_later(0.05, self._send_receipt, writer, *retry)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    def _send_receipt(
        self, writer: asyncio.StreamWriter, source: str, destination: str, text: str, message_id: str
    ) -> None:
        if writer.is_closing():
            return
        sequence = next(self._seq)
        self._receipts[sequence] = (source, destination, text, message_id)
        receipt = _make(
            "deliver_sm",
            client=_PEER,
            sequence=sequence,
            source_addr=source,
            destination_addr=destination,
            esm_class=0x04,  # SMPP 3.4 §5.2.12: SMSC delivery receipt
            short_message=text.encode(),
            receipted_message_id=message_id,
        )
        writer.write(receipt.generate())
