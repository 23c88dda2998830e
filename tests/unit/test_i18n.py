from pathlib import Path

from babel.messages.pofile import read_po

from frontoffice.i18n import gettext, negotiate

LOCALE = Path(__file__).parents[2] / "frontoffice" / "locale"


def test_every_extracted_message_has_a_russian_translation() -> None:
    with (LOCALE / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    with (LOCALE / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        ru = {m.id: m.string for m in read_po(f, locale="ru") if m.id}
    assert template, "the template is empty: run `make messages`"
    missing = sorted(m for m in template if not ru.get(m))
    assert missing == []


def test_gettext_translates_and_falls_back_to_the_source_text() -> None:
    assert gettext("Sign in", "ru") == "Войти"
    assert gettext("Sign in", "en") == "Sign in"
    assert gettext("a string nobody translated", "ru") == "a string nobody translated"


def test_accept_language_negotiation() -> None:
    assert negotiate("ru-RU,ru;q=0.9,en-US;q=0.8") == "ru"
    assert negotiate("de-DE,en;q=0.5,ru;q=0.7") == "ru"
    assert negotiate("de", default="en") == "en"
    assert negotiate(None, default="ru") == "ru"
    assert negotiate("ru;q=bogus,en") == "en"
