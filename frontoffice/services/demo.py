"""Demo data for a first run: a project, companies, customers with history, and demo operators."""

from __future__ import annotations

import random
from datetime import timedelta

from frontoffice.domain.model import (
    Channel,
    Direction,
    IdentityKind,
    InteractionEventType,
    InteractionState,
    Role,
)
from frontoffice.store.tables import Customer, Note, Project

from .acd_schemas import AgentProfileIn, CodeIn, EntryPointIn, QueueIn, QueueSettings, RuleIn
from .auth import AuthService, generate_password
from .chat_settings import ChatSettings
from .contact_center import ContactCenter
from .context import Actor
from .interactions import log_event
from .schemas import CustomerIn, IdentityIn, UserIn

__all__ = ["load_demo"]

_PEOPLE = [
    ("Иван", "Петров", "ООО «Ромашка»"),
    ("Мария", "Смирнова", "ООО «Ромашка»"),
    ("Алексей", "Кузнецов", "АО «Северный ветер»"),
    ("Елена", "Попова", None),
    ("Дмитрий", "Соколов", "ИП Соколов"),
    ("Ольга", "Лебедева", "АО «Северный ветер»"),
    ("Сергей", "Козлов", None),
    ("Анна", "Новикова", "ООО «Техносервис»"),
    ("John", "Smith", "Acme Ltd"),
    ("Emily", "Brown", "Acme Ltd"),
    ("Michael", "Johnson", None),
    ("Sarah", "Davis", "Globex"),
    ("Павел", "Морозов", "ООО «Техносервис»"),
    ("Наталья", "Волкова", None),
    ("Андрей", "Соловьёв", "ООО «Ромашка»"),
]
_SUBJECTS = [
    "Вопрос по счёту",
    "Не приходит SMS с кодом",
    "Invoice question",
    "Доставка задерживается",
    "Change of address",
    "Запрос на возврат",
]


async def load_demo(center: ContactCenter, auth: AuthService, *, seed: int = 7) -> dict[str, str]:
    """Create demo content; returns the generated passwords of the demo operators (shown once)."""
    crm, interactions = center.crm, center.interactions
    rng = random.Random(seed)
    system = Actor.system()
    passwords: dict[str, str] = {}
    user_ids: dict[str, int] = {}
    for username, display, role in (
        ("supervisor", "Светлана Орлова", Role.SUPERVISOR),
        ("agent1", "Katya Ivanova", Role.AGENT),
        ("agent2", "Oleg Sidorov", Role.AGENT),
        ("agent3", "Nina Fedorova", Role.AGENT),
    ):
        password = generate_password()
        lang = "ru" if role is Role.SUPERVISOR else "en"
        user = await auth.create_user(
            system,
            UserIn(username=username, display_name=display, role=role, language=lang, password=password),
        )
        passwords[username] = password
        user_ids[username] = user.id
    support = await center.admin.create_queue(
        system,
        QueueIn(name="Support", settings=QueueSettings(wrap_up_s=30, offer_timeout_s=20, sl_threshold_s=20)),
    )
    sales = await center.admin.create_queue(
        system, QueueIn(name="Sales", settings=QueueSettings(wrap_up_s=15, required_skills={"sales": 3}))
    )
    billing = await center.admin.create_queue(
        system,
        QueueIn(
            name="Billing", settings=QueueSettings(wrap_up_s=30, overflow_queue_id=support.id, max_wait_s=300)
        ),
    )
    await center.admin.create_entry_point(
        system,
        EntryPointIn(
            name="Website contact form",
            channel=Channel.WEBFORM,
            address="website",
            default_queue_id=support.id,
            rules=[
                RuleIn(rule='subject contains "invoice" or subject contains "счёт"', queue_id=billing.id),
                RuleIn(rule='subject contains "price" or subject contains "цена"', queue_id=sales.id),
            ],
        ),
    )
    # The web chat of /demo/chat (docs/chat.md): widget key "demo".
    await center.admin.create_entry_point(
        system,
        EntryPointIn(
            name="Chat on the site",
            channel=Channel.CHAT,
            address="demo",
            default_queue_id=support.id,
            chat=ChatSettings(
                greeting={"en": "Hello! How can we help?", "ru": "Здравствуйте! Чем можем помочь?"},
                topics=["Delivery", "Payment", "Returns"],
            ),
        ),
    )
    for name, skills, queues in (
        ("agent1", {"sales": 5}, {support.id: 1, sales.id: 1}),
        ("agent2", {}, {support.id: 1, billing.id: 1}),
        ("agent3", {"sales": 8}, {sales.id: 1, support.id: 2}),
    ):
        await center.admin.set_agent_profile(
            system,
            user_ids[name],
            # Three chats at once; one contact of every other channel.
            AgentProfileIn(
                skills=skills, queues=queues, capacity={c: 3 if c is Channel.CHAT else 1 for c in Channel}
            ),
        )
    for code, name in (
        ("resolved", "Resolved / Решено"),
        ("callback", "Call back / Перезвонить"),
        ("info", "Information given / Консультация"),
        ("sale", "Sale / Продажа"),
    ):
        await center.admin.set_code(system, "dispositions", CodeIn(code=code, name=name))
    for code, name in (
        ("lunch", "Lunch / Обед"),
        ("training", "Training / Обучение"),
        ("break", "Break / Перерыв"),
        ("missed", "Missed offers / Пропущенные"),
    ):
        await center.admin.set_code(system, "not_ready_reasons", CodeIn(code=code, name=name))
    async with crm.sessions.begin() as s:
        s.add(Project(code="acme", name="Acme Ltd support", created_at=crm.clock()))
    for n, (first, last, company) in enumerate(_PEOPLE, start=1):
        identities = [
            IdentityIn(kind=IdentityKind.PHONE, value=f"+7 916 {100 + n:03d}-{10 + n:02d}-{20 + n:02d}")
        ]
        identities.append(
            IdentityIn(kind=IdentityKind.EMAIL, value=f"customer{n}@example.{'ru' if n % 2 else 'com'}")
        )
        tags = ["vip"] if n % 5 == 0 else (["b2b"] if company else [])
        card = await crm.create_customer(
            system,
            CustomerIn(
                first_name=first,
                last_name=last,
                company_name=company,
                vip="vip" in tags,
                tags=tags,
                language="ru" if first[0] >= "А" else "en",
                custom={"contract": f"D-{2024000 + n}"} if company else {},
                identities=identities,
            ),
        )
        async with crm.sessions.begin() as s:
            for k in range(rng.randint(1, 3)):
                at = crm.clock() - timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 600))
                channel = rng.choice([Channel.WEBFORM, Channel.EMAIL, Channel.VOICE])
                interaction = await interactions.record(
                    s,
                    interactions.orm_row(s),
                    channel=channel,
                    direction=Direction.INBOUND,
                    customer_id=card.id,
                    subject=rng.choice(_SUBJECTS),
                    state=InteractionState.DONE,
                    attributes={"summary": "Demo history item"},
                )
                interaction.created_at = at
                interaction.connected_at = at + timedelta(seconds=rng.randint(5, 60))
                interaction.ended_at = interaction.connected_at + timedelta(seconds=rng.randint(60, 600))
                interaction.closed_at = interaction.ended_at + timedelta(seconds=30)
                interaction.disposition = rng.choice(["resolved", "callback", "info"])
                log_event(s, interaction, InteractionEventType.DONE, interaction.closed_at, demo=True)
                if k == 0 and n % 3 == 0:
                    s.add(
                        Note(
                            customer_id=card.id,
                            body="Prefers e-mail contact. / Предпочитает e-mail.",
                            created_at=at,
                        )
                    )
            if n == 1:
                # A near-duplicate pair so the duplicate review has something to show.
                s.add(
                    Customer(
                        first_name="Иван",
                        last_name="Петров",
                        search_key="иван петров",
                        custom={},
                        created_at=crm.clock(),
                        updated_at=crm.clock(),
                    )
                )
    return passwords
