"""SDP (RFC 4566) parsing and serialization, and offer/answer (RFC 3264) for G.711 and RFC 4733 DTMF.

The negotiation covers what a contact-center media path needs: one audio stream with PCMU or PCMA,
``telephone-event`` for DTMF, and hold/resume through the direction attributes (including the
RFC 2543 ``c=0.0.0.0`` form, RFC 3264 §8.4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .exceptions import NoCommonCodecError, SdpError

__all__ = [
    "DEFAULT_CODECS",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "Connection",
    "MediaDescription",
    "NegotiatedMedia",
    "Origin",
    "Reoffer",
    "SessionDescription",
    "answer_offer",
    "answer_reoffer",
    "apply_answer",
    "build_offer",
    "media_endpoint",
    "parse_sdp",
    "with_direction",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 4566 §5.14: a media port is 16 bits; 0 rejects/disables the stream (RFC 3264 §6).
MAX_PORT = 65_535
# RFC 3551 §6: payload types 96-127 are dynamic.
DYNAMIC_PT_MIN = 96
MAX_SDP_LINES = 500  # an audio offer has ~20 lines; bound the work a hostile body can cause


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP payload format: ``a=rtpmap:<pt> <name>/<clock>[/<channels>]`` plus optional fmtp."""

    payload_type: int
    name: str
    clock_rate: int = 8000
    channels: int | None = None
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        """The rtpmap value after the payload type."""
        suffix = f"/{self.channels}" if self.channels else ""
        return f"{self.name}/{self.clock_rate}{suffix}"

    def same_format(self, other: Codec) -> bool:
        """Equal encoding and clock rate (RFC 3264 §6.1 matching ignores the PT number)."""
        return self.name.lower() == other.name.lower() and self.clock_rate == other.clock_rate


PCMU = Codec(0, "PCMU")  # RFC 3551 static payload type 0
PCMA = Codec(8, "PCMA")  # RFC 3551 static payload type 8
TELEPHONE_EVENT = Codec(101, "telephone-event", fmtp="0-16")  # RFC 4733 §2.4.1: DTMF events 0-16
DEFAULT_CODECS = (PCMU, PCMA, TELEPHONE_EVENT)
_STATIC = {0: PCMU, 8: PCMA}


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (RFC 4566 §5.2)."""

    username: str
    session_id: str
    session_version: int
    address: str
    net_type: str = "IN"
    addr_type: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} {self.net_type} {self.addr_type} "
            f"{self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <address>`` (RFC 4566 §5.7)."""

    address: str
    net_type: str = "IN"
    addr_type: str = "IP4"

    @property
    def is_hold(self) -> bool:
        """RFC 2543 hold: the unspecified address (RFC 3264 §8.4)."""
        return self.address.split("/")[0] in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.net_type} {self.addr_type} {self.address}"


Attribute = tuple[str, str | None]


def _get_attr(attributes: list[Attribute], name: str) -> str | None:
    for key, value in attributes:
        if key == name:
            return value if value is not None else ""
    return None


def _direction_of(attributes: list[Attribute]) -> str | None:
    for key, _ in attributes:
        if key in DIRECTIONS:
            return key
    return None


@dataclass(eq=False)
class MediaDescription:
    """One ``m=`` section (RFC 4566 §5.14)."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    info: list[tuple[str, str]] = field(default_factory=list)  # i= b= k= lines, in order
    attributes: list[Attribute] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name`` (``""`` for a flag), or ``None``."""
        return _get_attr(self.attributes, name)

    @property
    def direction(self) -> str | None:
        """The direction attribute of this stream, if any."""
        return _direction_of(self.attributes)

    def codecs(self) -> list[Codec]:
        """The formats as codecs, in preference order (static types known without rtpmap)."""
        rtpmaps: dict[str, str] = {}
        fmtps: dict[str, str] = {}
        for key, value in self.attributes:
            if key in ("rtpmap", "fmtp") and value:
                pt_text, _, rest = value.partition(" ")
                (rtpmaps if key == "rtpmap" else fmtps)[pt_text] = rest.strip()
        out: list[Codec] = []
        for fmt in self.formats:
            if not fmt.isascii() or not fmt.isdigit() or int(fmt) > 127:
                continue
            pt = int(fmt)
            mapping = rtpmaps.get(fmt)
            if mapping is None:
                if pt in _STATIC:
                    out.append(replace(_STATIC[pt], fmtp=fmtps.get(fmt)))
                continue
            parts = mapping.split("/")
            try:
                rate = int(parts[1]) if len(parts) > 1 else 8000
                channels = int(parts[2]) if len(parts) > 2 else None
            except ValueError:
                continue
            out.append(Codec(pt, parts[0], rate, channels, fmtps.get(fmt)))
        return out

    def lines(self) -> list[str]:
        """Serialized lines of this section."""
        port = f"{self.port}/{self.port_count}" if self.port_count else str(self.port)
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}".rstrip()]
        out += [f"{k}={v}" for k, v in self.info if k == "i"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"{k}={v}" for k, v in self.info if k != "i"]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        return out


@dataclass(eq=False)
class SessionDescription:
    """A whole SDP body."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timing: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])
    info: list[tuple[str, str]] = field(default_factory=list)  # i u e p b lines (session level)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    version: int = 0

    def attribute(self, name: str) -> str | None:
        """Value of the first session-level ``a=name``."""
        return _get_attr(self.attributes, name)

    def serialize(self) -> bytes:
        """Encode with CRLF line ends (RFC 4566 §5)."""
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        lines += [f"{k}={v}" for k, v in self.info if k != "b"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{k}={v}" for k, v in self.info if k == "b"]
        lines += [f"{k}={v}" for k, v in self.timing]
        lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for media in self.media:
            lines += media.lines()
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def audio(self) -> MediaDescription | None:
        """The first audio stream that is not disabled (port 0)."""
        for media in self.media:
            if media.media == "audio" and media.port != 0:
                return media
        return None


def _parse_connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError("Malformed c= line")
    return Connection(net_type=parts[0], addr_type=parts[1], address=parts[2])


def _parse_port(text: str) -> tuple[int, int | None]:
    port_text, slash, count_text = text.partition("/")
    if not port_text.isascii() or not port_text.isdigit() or int(port_text) > MAX_PORT:
        raise SdpError("Invalid media port")
    if slash and (not count_text.isascii() or not count_text.isdigit()):
        raise SdpError("Invalid port count")
    return int(port_text), int(count_text) if slash else None


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body; raise :class:`SdpError` if it is malformed."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    # RFC 4566 §5: lines end in CRLF, but parsers SHOULD also accept a bare LF.
    raw_lines = [line.rstrip("\r") for line in text.split("\n")]
    while raw_lines and not raw_lines[-1]:
        raw_lines.pop()
    if len(raw_lines) > MAX_SDP_LINES:
        raise SdpError("SDP too long")
    if not raw_lines or raw_lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    origin: Origin | None = None
    session = SessionDescription(origin=Origin("-", "0", 0, "0.0.0.0"), timing=[])
    current: MediaDescription | None = None
    for line in raw_lines[1:]:
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpError("Malformed SDP line")
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError("Malformed m= line")
            port, count = _parse_port(parts[1])
            current = MediaDescription(parts[0], port, parts[2], parts[3:], port_count=count)
            session.media.append(current)
        elif kind == "a":
            name, colon, attr_value = value.partition(":")
            attribute: Attribute = (name, attr_value if colon else None)
            (current.attributes if current is not None else session.attributes).append(attribute)
        elif kind == "c":
            connection = _parse_connection(value)
            if current is not None:
                current.connection = connection
            else:
                session.connection = connection
        elif current is not None:
            if kind in ("i", "b", "k"):
                current.info.append((kind, value))
        elif kind == "o":
            parts = value.split()
            if len(parts) != 6 or not parts[2].isascii() or not parts[2].isdigit():
                raise SdpError("Malformed o= line")
            origin = Origin(parts[0], parts[1], int(parts[2]), parts[5], parts[3], parts[4])
        elif kind == "s":
            session.session_name = value
        elif kind in ("t", "r", "z"):
            session.timing.append((kind, value))
        elif kind in ("i", "u", "e", "p", "b", "k"):
            session.info.append((kind, value))
        # RFC 4566 §5: unknown line types are ignored.
    if origin is None:
        raise SdpError("SDP lacks o= line")
    session.origin = origin
    if not session.timing:
        session.timing = [("t", "0 0")]
    for media in session.media:
        if media.port != 0 and media.connection is None and session.connection is None:
            raise SdpError("Media without connection address")
    return session


def media_endpoint(sdp: SessionDescription) -> tuple[str, int] | None:
    """``(address, port)`` where the peer wants to receive audio; ``None`` if it is disabled or held
    with the RFC 2543 ``0.0.0.0`` address."""
    audio = sdp.audio()
    if audio is None:
        return None
    connection = audio.connection or sdp.connection
    if connection is None or connection.is_hold:
        return None
    return connection.address.split("/")[0], audio.port


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """What the media layer needs after offer/answer, from our point of view."""

    remote_address: str
    remote_port: int
    codec: Codec
    telephone_event: Codec | None
    direction: str  # our direction: sendrecv, sendonly (we hold them), recvonly (they hold us), inactive
    ptime: int | None = None

    @property
    def sending(self) -> bool:
        """We should send RTP."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receiving(self) -> bool:
        """We should expect RTP."""
        return self.direction in ("sendrecv", "recvonly")


def _ptime(text: str | None) -> int | None:
    """The ``a=ptime`` value in milliseconds, ignoring junk (RFC 4566 §6)."""
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 6 else None


def _flags(direction: str) -> tuple[bool, bool]:
    """(sends, receives) for a direction attribute."""
    return direction in ("sendrecv", "sendonly"), direction in ("sendrecv", "recvonly")


def _direction(sends: bool, receives: bool) -> str:
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (sends, receives), "inactive"
    )


def _audio_section(
    address: str, port: int, codecs: Iterable[Codec], direction: str, ptime: int | None
) -> MediaDescription:
    codec_list = list(codecs)
    attributes: list[Attribute] = []
    for codec in codec_list:
        attributes.append(("rtpmap", f"{codec.payload_type} {codec.rtpmap}"))
        if codec.fmtp:
            attributes.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    if ptime:
        attributes.append(("ptime", str(ptime)))
    attributes.append((direction, None))
    return MediaDescription(
        media="audio",
        port=port,
        proto="RTP/AVP",
        formats=[str(c.payload_type) for c in codec_list],
        attributes=attributes,
    )


def _addr_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def build_offer(
    *,
    address: str,
    port: int,
    session_id: str,
    session_version: int = 0,
    codecs: Iterable[Codec] = DEFAULT_CODECS,
    direction: str = "sendrecv",
    ptime: int | None = 20,
    username: str = "frontoffice",
) -> SessionDescription:
    """An SDP offer with one audio stream (RFC 3264 §5)."""
    if direction not in DIRECTIONS:
        raise SdpError(f"Unknown direction {direction}")
    addr_type = _addr_type(address)
    return SessionDescription(
        origin=Origin(username, session_id, session_version, address, addr_type=addr_type),
        connection=Connection(address, addr_type=addr_type),
        media=[_audio_section(address, port, codecs, direction, ptime)],
    )


def _is_dtmf(codec: Codec) -> bool:
    return codec.name.lower() == "telephone-event"


def answer_offer(
    offer: SessionDescription,
    *,
    address: str,
    port: int,
    session_id: str,
    session_version: int = 0,
    codecs: Iterable[Codec] = DEFAULT_CODECS,
    direction: str = "sendrecv",
    ptime: int | None = 20,
    username: str = "frontoffice",
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer`` (RFC 3264 §6): the first offered audio codec we support, in the offerer's order.

    ``direction`` is what we want (``sendonly`` to hold the caller); it is combined with the offer's.
    Raises :class:`NoCommonCodecError` (488) when nothing matches.
    """
    supported = list(codecs)
    addr_type = _addr_type(address)
    answer = SessionDescription(
        origin=Origin(username, session_id, session_version, address, addr_type=addr_type),
        connection=Connection(address, addr_type=addr_type),
    )
    negotiated: NegotiatedMedia | None = None
    for media in offer.media:
        if negotiated is not None or media.media != "audio" or media.port == 0 or media.proto != "RTP/AVP":
            # RFC 3264 §6: every offered stream gets an m= line; port 0 rejects it.
            answer.media.append(MediaDescription(media.media, 0, media.proto, list(media.formats)))
            continue
        offered = media.codecs()
        chosen = next(
            (
                o
                for o in offered
                if not _is_dtmf(o) and any(o.same_format(s) for s in supported if not _is_dtmf(s))
            ),
            None,
        )
        if chosen is None:
            answer.media.append(MediaDescription(media.media, 0, media.proto, list(media.formats)))
            continue
        dtmf = next((o for o in offered if _is_dtmf(o) and any(_is_dtmf(s) for s in supported)), None)
        connection = media.connection or offer.connection
        if connection is None:
            raise SdpError("Offered stream has no connection address")
        offer_sends, offer_receives = _flags(media.direction or _direction_of(offer.attributes) or "sendrecv")
        if connection.is_hold:
            offer_receives = False  # RFC 3264 §8.4: c=0.0.0.0 means "do not send to me"
        want_send, want_receive = _flags(direction)
        ours = _direction(want_send and offer_receives, want_receive and offer_sends)
        # RFC 3264 §6.1: answer with the offerer's payload type numbers.
        answer.media.append(_audio_section(address, port, [chosen, *([dtmf] if dtmf else [])], ours, ptime))
        ptime_text = media.attribute("ptime")
        negotiated = NegotiatedMedia(
            remote_address=connection.address.split("/")[0],
            remote_port=media.port,
            codec=chosen,
            telephone_event=dtmf,
            direction=ours,
            ptime=_ptime(ptime_text),
        )
    if negotiated is None:
        raise NoCommonCodecError()
    return answer, negotiated


@dataclass(frozen=True, slots=True)
class Reoffer:
    """Our answer to a new offer inside an established session (a re-INVITE), and what it means for
    media: see :func:`answer_reoffer`."""

    answer: SessionDescription
    media: NegotiatedMedia
    moved: bool  # the peer's address or port is new: its leg must send there and latch afresh
    direction_changed: bool  # our direction towards the peer is new (a hold or a resume)

    @property
    def changes_media(self) -> bool:
        """The media layer has something to do."""
        return self.moved or self.direction_changed


def answer_reoffer(
    local: SessionDescription,
    offer: SessionDescription,
    current: NegotiatedMedia | None = None,
    *,
    want: str = "sendrecv",
) -> Reoffer:
    """Answer the peer's new offer in an established session (RFC 3264 §8) from ``local``, our SDP as
    it stands, and say what changed against ``current``, the media negotiated so far.

    - The codec stays the one we chose (RFC 3264 §8.3.2 lets a new offer change it, but our relay does
      not transcode and the other leg goes on with it): an offer without it raises
      :class:`NoCommonCodecError` (488, and RFC 3261 §14.2 leaves the session as it was). So does an
      offer whose audio stream is gone or disabled.
    - Our direction follows RFC 3264 §6.1 from what we ``want`` (``sendonly`` while we hold the
      peer): an offered ``sendonly`` is answered ``recvonly``, ``recvonly`` ``sendonly``, ``inactive``
      ``inactive``, at session or media level; a ``c=`` of ``0.0.0.0`` (RFC 2543 hold, RFC 3264 §8.4)
      means "do not send to me" and keeps the peer's address as it was.
    - Our ``o=`` line is the previous one, its version incremented by one only when our SDP changes
      (RFC 3264 §8: an unchanged answer repeats the previous SDP, version included).
    - Streams other than our audio (an added video) are refused with port 0, in the offer's order.
    """
    if want not in DIRECTIONS:
        raise SdpError(f"Unknown direction {want}")
    ours = local.audio()
    connection = local.connection or (ours.connection if ours is not None else None)
    if ours is None or connection is None:
        raise SdpError("Our SDP has no audio stream")
    index = local.media.index(ours)
    offered_streams = [m for m in offer.media if m.media == "audio" and m.port != 0 and m.proto == "RTP/AVP"]
    if not offered_streams:
        raise NoCommonCodecError("The new offer has no audio stream")
    # RFC 3264 §8: m= lines keep their order; be lenient with an offer that moved the audio.
    theirs = (
        offer.media[index] if index < len(offer.media) and offer.media[index] in offered_streams else None
    )
    theirs = theirs or offered_streams[0]
    local_codecs = ours.codecs()
    # Our SDP was an answer (one codec) or an offer (several, the peer chose one): ``current`` knows.
    chosen = (
        current.codec if current is not None else next((c for c in local_codecs if not _is_dtmf(c)), None)
    )
    offered = theirs.codecs()
    codec = next((o for o in offered if chosen is not None and o.same_format(chosen)), None)
    if codec is None:
        raise NoCommonCodecError("The new offer drops the codec in use")
    dtmf = next((o for o in offered if _is_dtmf(o)), None) if any(map(_is_dtmf, local_codecs)) else None
    peer = theirs.connection or offer.connection
    if peer is None:
        raise SdpError("Offered stream has no connection address")
    offer_sends, offer_receives = _flags(theirs.direction or _direction_of(offer.attributes) or "sendrecv")
    if peer.is_hold:
        offer_receives = False  # RFC 3264 §8.4
    want_send, want_receive = _flags(want)
    direction = _direction(want_send and offer_receives, want_receive and offer_sends)
    address, port = peer.address.split("/")[0], theirs.port
    if peer.is_hold and current is not None:
        address, port = current.remote_address, current.remote_port  # held, not moved
    media = NegotiatedMedia(
        remote_address=address,
        remote_port=port,
        codec=codec,
        telephone_event=dtmf,
        direction=direction,
        ptime=_ptime(theirs.attribute("ptime")),
    )
    sections = [
        _audio_section(connection.address, ours.port, [codec, *([dtmf] if dtmf else [])], direction,
                       _ptime(ours.attribute("ptime")))
        if m is theirs
        else MediaDescription(m.media, 0, m.proto, list(m.formats))
        for m in offer.media
    ]  # fmt: skip
    answer = SessionDescription(
        origin=local.origin,
        session_name=local.session_name,
        connection=local.connection,
        timing=list(local.timing),
        info=list(local.info),
        attributes=[(k, v) for k, v in local.attributes if k not in DIRECTIONS],
        media=sections,
        version=local.version,
    )
    if answer.serialize() != local.serialize():
        answer.origin = replace(local.origin, session_version=local.origin.session_version + 1)
    moved = current is None or (address, port) != (current.remote_address, current.remote_port)
    return Reoffer(
        answer=answer,
        media=media,
        moved=moved,
        direction_changed=current is None or current.direction != direction,
    )


def apply_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """The offerer's view of a completed exchange (RFC 3264 §7)."""
    ours = offer.audio()
    theirs = answer.audio()
    if ours is None:
        raise SdpError("Offer has no audio stream")
    if theirs is None:
        raise NoCommonCodecError("Audio stream rejected by answerer")
    offered = ours.codecs()
    answered = theirs.codecs()
    codec = next(
        (a for a in answered if not _is_dtmf(a) and any(a.same_format(o) for o in offered)),
        None,
    )
    if codec is None:
        raise NoCommonCodecError("Answer holds no offered codec")
    dtmf = next((a for a in answered if _is_dtmf(a)), None)
    connection = theirs.connection or answer.connection
    if connection is None:
        raise SdpError("Answer lacks connection address")
    answer_sends, answer_receives = _flags(theirs.direction or _direction_of(answer.attributes) or "sendrecv")
    if connection.is_hold:
        answer_receives = False
    offer_sends, offer_receives = _flags(ours.direction or _direction_of(offer.attributes) or "sendrecv")
    ptime_text = theirs.attribute("ptime")
    return NegotiatedMedia(
        remote_address=connection.address.split("/")[0],
        remote_port=theirs.port,
        codec=codec,
        telephone_event=dtmf,
        direction=_direction(offer_sends and answer_receives, offer_receives and answer_sends),
        ptime=_ptime(ptime_text),
    )


def with_direction(sdp: SessionDescription, direction: str) -> SessionDescription:
    """A copy of our SDP with every active stream set to ``direction`` and the version bumped.

    Hold is a re-offer with ``sendonly`` (or ``inactive``), resume with ``sendrecv`` (RFC 3264 §8.4);
    the origin version must increase whenever the session changes (RFC 3264 §8).
    """
    if direction not in DIRECTIONS:
        raise SdpError(f"Unknown direction {direction}")
    media: list[MediaDescription] = []
    for m in sdp.media:
        attributes = [(k, v) for k, v in m.attributes if k not in DIRECTIONS]
        if m.port != 0:
            attributes.append((direction, None))
        media.append(replace(m, attributes=attributes, formats=list(m.formats), info=list(m.info)))
    origin = replace(sdp.origin, session_version=sdp.origin.session_version + 1)
    return SessionDescription(
        origin=origin,
        session_name=sdp.session_name,
        connection=sdp.connection,
        timing=list(sdp.timing),
        info=list(sdp.info),
        attributes=[(k, v) for k, v in sdp.attributes if k not in DIRECTIONS],
        media=media,
        version=sdp.version,
    )
