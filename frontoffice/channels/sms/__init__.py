"""The SMS channel: SMPP 3.4 to an SMS center (``smpp``: the sans-IO PDU codec and session;
``smpp_client``: its asyncio transport with reconnects and windowing), HTTP gateways of providers
(``http_gateway``), and SMS text itself (``encoding``: GSM 03.38, UCS-2, segments, UDH
concatenation and reassembly).
"""

from .encoding import (
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    EncodingError,
    Reassembler,
    SegmentCount,
    count_segments,
    decode,
    encode_gsm,
    is_gsm7,
    parse_udh,
    split_message,
)
from .smpp import ProtocolError, Receipt, SmppSession, parse_receipt
from .smpp_client import InboundSms, SmppClient, SmppLink, SmppSubmitError, SmsInbound

__all__ = [
    "GSM7_PART",
    "GSM7_SINGLE",
    "UCS2_PART",
    "UCS2_SINGLE",
    "EncodingError",
    "InboundSms",
    "ProtocolError",
    "Reassembler",
    "Receipt",
    "SegmentCount",
    "SmppClient",
    "SmppLink",
    "SmppSession",
    "SmppSubmitError",
    "SmsInbound",
    "count_segments",
    "decode",
    "encode_gsm",
    "is_gsm7",
    "parse_receipt",
    "parse_udh",
    "split_message",
]
