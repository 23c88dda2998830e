"""The parser on the corpus (tests/data/email/): real clients' mail, each with its expected parse.

Columns: file, subject, sender, a phrase of the text body, attachments (file names), and the flags
the intake acts on: a=auto-reply, l=mailing list, b=failed delivery report, d=delay report,
e=parse error, c=charset fallback, i=remote images blocked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from frontoffice.channels.email.parsing import ParsedEmail, parse_email

CORPUS = Path(__file__).parents[2] / "data" / "email"

# fmt: off
# ruff: noqa: E501
EXPECTED: list[tuple[str, str, str, str, tuple[str, ...], str]] = [
    ("s01-gmail-new.eml", "Не пришёл заказ №4471", "anna.smirnova@gmail.com", "оплачен неделю назад", (), ""),
    ("s02-outlook-new.eml", "Счёт на картриджи", "sergey.kuznetsov@romashka-trade.ru", "20 картриджей HP 85A",
     ("image001.png",), "i"),
    ("s03-thunderbird-new.eml", "Акт сверки за ноябрь", "o.vasiliev@stroymontazh.ru", "акт сверки за ноябрь",
     ("Акт сверки.pdf",), ""),
    ("s04-apple-new.eml", "Broken charger, order 5520", "maria.lopez@icloud.com", "stopped working",
     ("IMG_2041.png",), ""),
    ("s05-yandex-new.eml", "Не могу войти в личный кабинет", "petr.ivanov@yandex.ru", "«неверный пароль»", (), ""),
    ("s06-mailru-new.eml", "Возврат товара", "elena_k@mail.ru", "чайник, заказ 8812", (), ""),
    ("r01-gmail-reply.eml", "Re: [#1] Не пришёл заказ №4471", "anna.smirnova@gmail.com", "трек-номер получила",
     (), ""),
    ("r02-outlook-reply.eml", "RE: [#2] Счёт на картриджи", "sergey.kuznetsov@romashka-trade.ru",
     "оплатим завтра", (), ""),
    ("r03-thunderbird-reply.eml", "Re: [#3] Акт сверки за ноябрь", "o.vasiliev@stroymontazh.ru",
     "отправим почтой", (), ""),
    ("r04-apple-reply.eml", "Re: Broken charger, order 5520", "maria.lopez@icloud.com", "husband", (), ""),
    ("r05-yandex-reply-token.eml", "Re: [#5] Не могу войти в личный кабинет", "petr.ivanov@yandex.ru",
     "Пароль сбросил", (), ""),
    ("r06-mailru-reply-plus.eml", "Re: Возврат товара", "elena_k@mail.ru", "отправила курьером", (), ""),
    ("r07-stranger-with-token.eml", "Re: [#1] Не пришёл заказ №4471", "ivan.stranger@gmail.com", "I also", (), ""),
    ("r08-colleague-with-token.eml", "FW: [#2] Счёт на картриджи", "olga.petrova@romashka-trade.ru",
     "оплату провели", (), ""),
    ("r09-similar-subject-other-sender.eml", "Не пришёл заказ №4471", "d.orlov@example.com", "mine is 4417", (), ""),
    ("r10-iphone-reply.eml", "Re: Broken charger, order 5520", "maria.lopez@icloud.com", "replacement", (), ""),
    ("n01-newsletter.eml", "Декабрьские скидки", "news@shop-digest.example", "До -50%", (), "ali"),
    ("n02-newsletter.eml", "Декабрьские скидки", "news@shop-digest.example", "До -50%", (), "ali"),
    ("n03-mailing-list-token.eml", "[#1] incident resolved", "status@hosting-status.example", "resolved", (), "al"),
    ("o01-outlook-ooo.eml", "Автоматический ответ: [#2] Счёт на картриджи", "sergey.kuznetsov@romashka-trade.ru",
     "в отпуске", (), "a"),
    ("o02-yandex-autoreply.eml", "Автоответ: Re: [#5] Не могу войти", "petr.ivanov@yandex.ru", "после 10 декабря",
     (), "a"),
    ("o03-gmail-vacation-no-thread.eml", "Out of Office: Invoice 9912", "tom.baker@gmail.com", "away", (), "al"),
    ("o04-mailru-x-autoreply.eml", "Re: Возврат товара", "elena_k@mail.ru", "автоматический ответ", (), "a"),
    ("b01-postfix-dsn.eml", "Undelivered Mail Returned to Sender", "mailer-daemon@mx1.acme.example",
     "could not", (), "ab"),
    ("b02-exim-dsn.eml", "Mail delivery failed: returning message to sender", "mailer-daemon@relay.hosting.example",
     "could not", (), "ab"),
    ("b03-delayed-dsn.eml", "Delayed Mail (still being retried)", "mailer-daemon@mx1.acme.example", "could not",
     (), "ad"),
    ("b04-exchange-ndr.eml", "Undeliverable: [#6] Возврат товара",
     "microsoftexchange329e71ec88ae4615bbc36ab6ce41109e@acme.example", "could not", (), "ab"),
    ("f01-gmail-inline-forward.eml", "Fwd: Your invoice 3310", "pavel.sidorov@gmail.com", "Invoice 3310: 1 200.00",
     (), ""),
    ("f02-outlook-forward-attached.eml", "FW: Invoice 3311", "k.morozov@vector-logistic.ru", "amount is wrong",
     ("Invoice 3311.eml",), ""),
    ("f03-yandex-forward-chain.eml", "Fwd: Fwd: Гарантия на кофемашину", "irina.volkova@yandex.ru",
     "Гарантия 12 месяцев", (), ""),
    ("c01-koi8r-plain.eml", "Вопрос по доставке в Тверь", "n.egorov@rambler.ru", "доставка шкафа", (), ""),
    ("c02-cp1251-qp.eml", "Счёт-фактура не пришла", "t.belova@bk.ru", "по заказу 7713", (), ""),
    ("c03-wrong-charset.eml", "Fridge in stock?", "vadim@stroymontazh.ru", "холодильник Атлант", (), "c"),
    ("c04-undeclared-8bit.eml", "Срочно: брак товара", "gena@mail.ru", "3 коробки с браком", (), "c"),
    ("c05-utf8-labelled-latin1.eml", "Rückgabe", "j.mueller@gmx.de", "Größe passt nicht", (), "c"),
    ("a01-tnef-winmail.eml", "Contract draft", "a.frolov@vector-logistic.ru", "draft is attached",
     ("winmail.dat",), ""),
    ("a02-calendar-invite.eml", "Invitation: Call about order 4471 @ Thu Dec 10, 2026 12:00 (MSK)",
     "anna.smirnova@gmail.com", "You have been invited", ("invite.ics", "invite.ics"), ""),
    ("a03-inline-images.eml", "Logo proofs", "design@vector-logistic.ru", "Two proofs",
     ("image.png", "image.png", "proof1-copy.png"), "i"),
    ("a04-russian-filenames.eml", "Счета за декабрь", "buh@stroymontazh.ru", "Счета во вложении",
     ("Счёт №15.pdf", "Акт №16.pdf"), ""),
    ("m01-missing-boundary.eml", "Order status", "broken@vector-logistic.ru", "order 9001", (), "e"),
    ("m02-broken-base64.eml", "Photo of the damage", "oldphone@vector-logistic.ru", "Повреждение", (), ""),
    ("m03-no-message-id.eml", "Web form: callback request", "noreply-form@vector-logistic.ru", "Boris", (), ""),
    ("m04-garbage-headers.eml", "", "junk@vector-logistic.ru", "not a header", (), "c"),
    ("m05-html-only-script.eml", "Look at this", "promo@vector-logistic.ru", "Click here or there", (), "i"),
    ("k01-blocked-sender.eml", "You won!!!", "offers@spam-sender.example", "Claim your prize", (), ""),
]
# fmt: on


def _flags(p: ParsedEmail) -> str:
    marks = ""
    marks += "a" if p.auto_reply else ""
    if p.bounce is not None:
        marks += "b" if p.bounce.failed else "d"
    marks += "c" if p.charset_fallback else ""
    marks += "e" if p.parse_error else ""
    marks += "i" if p.remote_images_blocked else ""
    marks += "l" if p.mailing_list else ""
    return "".join(sorted(marks))


def test_the_corpus_has_at_least_forty_messages_and_each_is_expected() -> None:
    files = sorted(f.name for f in CORPUS.glob("*.eml"))
    assert len(files) >= 40
    assert files == sorted(row[0] for row in EXPECTED)


@pytest.mark.parametrize(("name", "subject", "sender", "phrase", "attachments", "flags"), EXPECTED)
def test_corpus_message_parses_as_expected(
    name: str, subject: str, sender: str, phrase: str, attachments: tuple[str, ...], flags: str
) -> None:
    parsed = parse_email((CORPUS / name).read_bytes())
    assert parsed.subject == subject
    assert parsed.sender == sender
    assert phrase in parsed.text
    assert tuple(a.filename for a in parsed.attachments) == attachments
    assert _flags(parsed) == "".join(sorted(flags))
    # PostgreSQL's text holds no NUL (m04 carries some): none comes out of the parser.
    for text in (parsed.subject, parsed.text, parsed.sender_name, parsed.html or ""):
        assert "\x00" not in text


def test_html_is_sanitised_and_remote_images_wait_for_the_agent() -> None:
    parsed = parse_email((CORPUS / "m05-html-only-script.eml").read_bytes())
    assert parsed.html is not None
    for banned in ("<script", "onload", "onerror", "javascript:", "<iframe", "<form", "evil.example/t.png"):
        assert banned not in parsed.html
    assert 'href="https://shop.example/ok"' in parsed.html
    newsletter = parse_email((CORPUS / "n01-newsletter.eml").read_bytes())
    assert newsletter.html is not None
    assert 'data-blocked-src="https://news.shop-digest.example/pixel.gif' in newsletter.html
    assert ' src="https://news' not in newsletter.html


def test_quotes_and_signatures_are_marked_not_removed() -> None:
    reply = parse_email((CORPUS / "r02-outlook-reply.eml").read_bytes())
    kinds = [(f.kind, reply.text[f.start : f.end].splitlines()[0]) for f in reply.folds]
    assert kinds == [("signature", "С уважением,"), ("quote", "-----Original Message-----")]
    assert "Сергей, счёт во вложении." in reply.text  # folded, still there
    gmail = parse_email((CORPUS / "r01-gmail-reply.eml").read_bytes())
    assert [f.kind for f in gmail.folds] == ["quote"]
    assert gmail.text[gmail.folds[0].start :].startswith("пн, 7 дек. 2026 г.")
    iphone = parse_email((CORPUS / "r10-iphone-reply.eml").read_bytes())
    assert [f.kind for f in iphone.folds] == ["signature", "quote"]


def test_a_signature_phone_and_the_delivery_report_details_are_read() -> None:
    assert parse_email((CORPUS / "s01-gmail-new.eml").read_bytes()).signature_phone == "+7 916 555-12-34"
    report = parse_email((CORPUS / "b01-postfix-dsn.eml").read_bytes()).bounce
    assert report is not None
    assert report.original_message_id == "reply-1@acme.example"
    assert report.recipients == ("anna.smirnova@gmail.com",)
    assert report.status == "5.1.1"
    assert "does not exist" in report.diagnostic


def test_an_unparseable_message_keeps_its_headers_and_text() -> None:
    parsed = parse_email((CORPUS / "m01-missing-boundary.eml").read_bytes())
    assert parsed.parse_error is not None
    assert parsed.message_id == "noboundary.1@vector-logistic.ru"


def test_encoded_words_are_decoded_only_where_the_intake_reads_them() -> None:
    raw = (
        b"From: =?utf-8?B?0J/QtdGC0YDQvtCyLCDQmNCy0LDQvQ==?= <Ivan@Example.COM>\r\n"
        b"To: support@acme.example, =?utf-8?Q?Sales=2C_team?= <sales@acme.example>\r\n"
        b"Subject: Re: =?utf-8?B?0KHRh9GR0YI=?= 15\r\n"
        b"Message-ID: <a@b>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="r"; start="<body@x>"\r\n\r\n'
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <img@x>\r\n"
        b'Content-Disposition: inline; filename="=?utf-8?B?0KHRh9GR0YIucG5n?="\r\n\r\nPNG\r\n'
        b"--r\r\nContent-Type: text/plain; charset=utf-8\r\nContent-ID: <body@x>\r\n\r\nthe body\r\n"
        b"--r--\r\n"
    )
    parsed = parse_email(raw)
    # The display name's encoded comma does not split the address list.
    assert (parsed.sender, parsed.sender_name) == ("ivan@example.com", "Петров, Иван")
    assert parsed.to == ("support@acme.example", "sales@acme.example")
    assert parsed.subject == "Re: Счёт 15"
    # multipart/related: the body is the part its ``start`` names, not the first one.
    assert parsed.text.strip() == "the body"
    assert [(a.filename, a.content_id, a.inline) for a in parsed.attachments] == [("Счёт.png", "img@x", True)]
