"""What an agent is shown of an email: sanitised HTML with remote images blocked, and the ranges of
quoted text and signatures to fold (marked, never deleted: the agent can unfold them).

Pure functions, no I/O. HTML goes through ``nh3`` (the Rust ``ammonia`` sanitiser: an allow-list of
tags and attributes, maintained, and fast enough to run on every inbound message).
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass

import nh3

__all__ = [
    "BLOCKED_IMAGE_ATTRIBUTE",
    "FoldRange",
    "allow_remote_images",
    "fold_ranges",
    "html_to_text",
    "sanitize_html",
    "signature_phone",
]

# A remote image's address is moved here (and ``src`` set to a placeholder) so that opening the
# message does not tell the sender it was read (tracking pixels) until the agent allows images.
BLOCKED_IMAGE_ATTRIBUTE = "data-blocked-src"
# A transparent 1x1 GIF: the placeholder keeps the layout's box without a request to anyone.
_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="
_TAGS = set(nh3.ALLOWED_TAGS) | {"font"}
_ATTRIBUTES: dict[str, set[str]] = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("*", set()).update(
    {"style", "align", "valign", "width", "height", "dir", "lang", "title"}
)
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", BLOCKED_IMAGE_ATTRIBUTE})
_ATTRIBUTES.setdefault("font", set()).update({"color", "face", "size"})
_ATTRIBUTES.setdefault("td", set()).update({"bgcolor", "colspan", "rowspan"})
_ATTRIBUTES.setdefault("table", set()).update({"bgcolor", "border", "cellpadding", "cellspacing"})
# cid: inline images of the same message; data: images that travel inside the message.
_URL_SCHEMES = set(nh3.ALLOWED_URL_SCHEMES) | {"cid", "data"}
# CSS that loads something (a remote background is as good a read receipt as an <img>) or runs
# script in old engines is dropped with its attribute.
_UNSAFE_CSS = re.compile(r"url\s*\(|expression\s*\(|@import|behavior\s*:|-moz-binding", re.IGNORECASE)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style" and _UNSAFE_CSS.search(value):
        return None
    if attribute == BLOCKED_IMAGE_ATTRIBUTE:
        return value
    if tag == "img" and attribute == "src":
        lowered = value.strip().lower()
        if lowered.startswith(("cid:", "data:image/")):
            return value
        return None  # remote (or anything else): moved to BLOCKED_IMAGE_ATTRIBUTE before cleaning
    return value


_IMG_SRC = re.compile(r"(<img\b[^>]*?\s)src(\s*=)", re.IGNORECASE)


def sanitize_html(source: str) -> tuple[str, bool]:
    """Sanitise an email's HTML for display; returns the HTML and whether remote images were blocked.

    Scripts, styles, forms, event handlers and ``javascript:`` links go; every remote ``<img>`` keeps
    its address in ``data-blocked-src`` and shows a blank placeholder until :func:`allow_remote_images`.
    """
    # Move every src aside first: nh3 then keeps the address in the data attribute (allowed as is),
    # and only cid:/data: images get their src back below.
    moved = _IMG_SRC.sub(lambda m: f"{m.group(1)}{BLOCKED_IMAGE_ATTRIBUTE}{m.group(2)}", source)
    cleaned = nh3.clean(
        moved,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        attribute_filter=_attribute_filter,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    blocked = False

    def restore(match: re.Match[str]) -> str:
        nonlocal blocked
        quote, address = match.group(1), html_lib.unescape(match.group(2))
        if address.strip().lower().startswith(("cid:", "data:image/")):
            return f"src={quote}{match.group(2)}{quote}"
        blocked = True
        return f'src="{_PLACEHOLDER}" {BLOCKED_IMAGE_ATTRIBUTE}={quote}{match.group(2)}{quote}'

    result = re.sub(rf"{BLOCKED_IMAGE_ATTRIBUTE}=([\"'])(.*?)\1", restore, cleaned)
    return result, blocked


def allow_remote_images(sanitised: str) -> str:
    """The sanitised HTML with its blocked images' addresses put back (the agent allowed them)."""
    return re.sub(
        rf'src="{re.escape(_PLACEHOLDER)}" {BLOCKED_IMAGE_ATTRIBUTE}="([^"]*)"',
        lambda m: f'src="{m.group(1)}"',
        sanitised,
    )


_BLOCK_END = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h[1-6]|/blockquote)\b[^>]*>", re.IGNORECASE)


def html_to_text(source: str) -> str:
    """Plain text of an HTML body (for a message that has no text part): tags dropped, blocks on
    lines of their own, entities decoded."""
    marked = _BLOCK_END.sub("\n", source)
    stripped = nh3.clean(marked, tags=set(), clean_content_tags={"script", "style", "head", "title"})
    text = html_lib.unescape(stripped)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@dataclass(frozen=True, slots=True)
class FoldRange:
    """Characters ``[start, end)`` of the text body folded for display: ``quote`` (the message
    being answered, quoted) or ``signature``."""

    start: int
    end: int
    kind: str


# Attribution lines mail clients put above the quoted message: Gmail / Thunderbird / Apple Mail
# ("On <date>, <name> wrote:"), Yandex and Mail.ru in Russian ("<date>, <name> пишет:" /
# "написал(а):"), Gmail in Russian and Yandex ("<date>, <name> <address>:"), and Outlook's
# header block ("-----Original Message-----", "From: ... Sent: ...").
_ATTRIBUTION = re.compile(
    r"^(?:"
    r"On .{3,200}wrote:\s*$"
    r"|.{0,200}(?:пишет|написал(?:\(а\)|а)?)\s*:\s*$"
    r"|.{0,200}\d.{0,200}<[^<>\s]+@[^<>\s]+>:\s*$"
    r"|-{2,}\s*(?:Original Message|Исходное сообщение|Пересылаемое сообщение|Forwarded message)\s*-{2,}"
    r"|_{10,}\s*$"
    r"|(?:From|От|Von)\s*:\s.+\n(?:.*\n){0,3}?(?:Sent|Date|Отправлено|Дата)\s*:\s.+"
    r")",
    re.MULTILINE,
)
# RFC 3676 §4.3: "-- " alone on a line starts a signature; clients also drop the trailing space,
# and phones add a "sent from" line.
_SIGNATURE = re.compile(
    r"^(?:-- ?$|--$|Sent from my .{1,40}$|Отправлено (?:с|из) .{1,60}$|С уважением,?\s*$|Best regards,?\s*$"
    r"|Kind regards,?\s*$|Regards,?\s*$)",
    re.MULTILINE | re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"^>.*$", re.MULTILINE)


def fold_ranges(text: str) -> tuple[FoldRange, ...]:
    """Where the quoted reply and the signature are in ``text`` (nothing is removed)."""
    folds: list[FoldRange] = []
    quote_start: int | None = None
    attribution = _ATTRIBUTION.search(text)
    if attribution is not None and attribution.start() > 0:
        quote_start = attribution.start()
    else:
        # Bottom-posted or interleaved replies: each run of ">" lines is folded on its own.
        run_start = run_end = -1
        for m in _QUOTED_LINE.finditer(text):
            if run_start >= 0 and m.start() <= run_end + 1:
                run_end = m.end()
                continue
            if run_start >= 0:
                folds.append(FoldRange(run_start, run_end, "quote"))
            run_start, run_end = m.start(), m.end()
        if run_start >= 0:
            folds.append(FoldRange(run_start, run_end, "quote"))
    searched_until = quote_start if quote_start is not None else len(text)
    signature = None
    for m in _SIGNATURE.finditer(text, 0, searched_until):
        if m.start() > 0 and not any(f.start <= m.start() < f.end for f in folds):
            signature = m
            break
    if signature is not None:
        end = searched_until
        folds.append(FoldRange(signature.start(), end, "signature"))
    if quote_start is not None:
        folds.append(FoldRange(quote_start, len(text), "quote"))
    return tuple(sorted(folds, key=lambda f: f.start))


# A phone number in a signature: a + or a digit, then digits with the usual separators.
_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d\s().\-]{8,18}\d)(?!\w)")


def signature_phone(text: str, folds: tuple[FoldRange, ...]) -> str | None:
    """The first phone number in the signature (as written; the caller normalises it)."""
    for fold in folds:
        if fold.kind == "signature":
            found = _PHONE.search(text, fold.start, fold.end)
            if found is not None:
                return found.group(1)
    return None
