"""Fax in: mail from a configured fax-to-email gateway (by sender, or to a fax entry point's
address) becomes a fax interaction; its TIFF or PDF is stored and shown as page images."""

from __future__ import annotations

import io
import shutil
from email.message import EmailMessage

import httpx
from PIL import Image
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Channel
from frontoffice.services.email_settings import EmailSettings
from frontoffice.store.tables import Interaction

from ...conftest import IN_CI, require_tool
from .helpers import SUPPORT, email_entry_point

API = "/api/v1"
GATEWAY = "fax@fax-gateway.example"


def _tiff(pages: int) -> bytes:
    frames = [Image.new("1", (1728, 200), color=1) for _ in range(pages)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:], compression="group4")
    return buffer.getvalue()


def _fax_mail(to: str, attachment: bytes, subtype: str, filename: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Fax Gateway <{GATEWAY}>"
    msg["To"] = to
    msg["Subject"] = "Fax from +74951234567 (2 pages)"
    msg["Message-ID"] = f"<fax-{filename}@fax-gateway.example>"
    msg.set_content("You have received a fax from +74951234567.")
    maintype, sub = subtype.split("/")
    msg.add_attachment(attachment, maintype=maintype, subtype=sub, filename=filename)
    return msg.as_bytes()


async def test_a_gateways_mail_becomes_a_fax_with_page_images(
    container: Container, client: httpx.AsyncClient, agent_headers: dict[str, str]
) -> None:
    await email_entry_point(container)
    await email_entry_point(
        container, "fax@acme.example", channel=Channel.FAX, email=EmailSettings(gateway_senders=[GATEWAY])
    )
    # By sender: the gateway wrote to the support address.
    by_sender = await container.email.receive(
        _fax_mail(SUPPORT, _tiff(2), "image/tiff", "fax.tif"), recipients=[SUPPORT]
    )
    # By recipient: a one-page PDF fax to the fax entry point's address.
    buffer = io.BytesIO()
    Image.new("1", (1728, 200), color=1).save(buffer, format="PDF", resolution=204.0)
    pdf = buffer.getvalue()
    by_address = await container.email.receive(
        _fax_mail("fax@acme.example", pdf, "application/pdf", "fax.pdf"), recipients=["fax@acme.example"]
    )
    async with container.sessions() as s:
        channels = list(
            await s.scalars(
                select(Interaction.channel).where(
                    Interaction.id.in_([by_sender.interaction_id, by_address.interaction_id])
                )
            )
        )
    assert channels == ["fax", "fax"]
    assert by_sender.flags["fax"] is True and by_sender.outcome == "new-contact"
    messages = (
        await client.get(f"{API}/threads/{by_sender.thread_id}/messages", headers=agent_headers)
    ).json()
    (tiff,) = messages["items"][0]["attachments"]
    page = await client.get(f"{tiff['url']}/pages/2", headers=agent_headers)
    assert page.status_code == 200 and page.headers["x-page-count"] == "2"
    assert Image.open(io.BytesIO(page.content)).size == (1728, 200)
    assert (await client.get(f"{tiff['url']}/pages/3", headers=agent_headers)).status_code == 404
    messages = (
        await client.get(f"{API}/threads/{by_address.thread_id}/messages", headers=agent_headers)
    ).json()
    (pdf_file,) = messages["items"][0]["attachments"]
    shown = await client.get(f"{pdf_file['url']}/pages/1", headers=agent_headers)
    if shutil.which("pdftoppm") is None and not IN_CI:
        # Without poppler-utils the desk says why instead of a picture (CI installs it: .ci/run).
        assert shown.status_code == 400 and shown.json()["error_id"] == "fax-page-unavailable"
    else:
        require_tool("pdftoppm")
        assert shown.status_code == 200, shown.text
        assert shown.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(shown.content)).width > 0
        assert (await client.get(f"{pdf_file['url']}/pages/2", headers=agent_headers)).status_code == 404
