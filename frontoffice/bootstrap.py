"""The composition root: builds the store, services and web app from settings; starts and stops them."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import ssl
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from frontoffice.bus import BusMessage, InProcessBus
from frontoffice.bus.nats import NatsBus, NatsLink
from frontoffice.channels.chat import ChatPort, ChatSender, VisitorTokens
from frontoffice.channels.email.imap import ImapConnector
from frontoffice.channels.email.sender import DkimKey, EmailSender, SmtpRelay
from frontoffice.channels.email.smtp import SmtpServer
from frontoffice.channels.sms.channel import SmsChannel, SmsSender
from frontoffice.channels.telegram.bot import TelegramChannel, TelegramSender
from frontoffice.channels.voice.media import PythonMediaBackend, RtpPorts
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.prompts import decode_wav, render_prompt, render_prompts
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.tls import server_context
from frontoffice.channels.voice.trunks import Trunk
from frontoffice.config import Settings
from frontoffice.services.acd import AcdService
from frontoffice.services.activities import ActivityService
from frontoffice.services.agent_desk import AgentDesk, CompleteContactHandler
from frontoffice.services.auth import AuthService, LoginThrottle
from frontoffice.services.calendars import CalendarService
from frontoffice.services.callbacks import CallbackScheduler
from frontoffice.services.campaign_attempts import CampaignAttempts
from frontoffice.services.campaign_dialler import CampaignDialler
from frontoffice.services.campaign_messages import CampaignMessages
from frontoffice.services.campaigns import Campaigns
from frontoffice.services.canned import CannedService
from frontoffice.services.change_feeds import ChangeFeeds
from frontoffice.services.channel_contract import ChannelPorts, WebFormChannel
from frontoffice.services.chat import WebChat
from frontoffice.services.cluster import ClusterNode, cluster_subjects, node_name
from frontoffice.services.companies import CompanyService
from frontoffice.services.contact_center import ContactCenter
from frontoffice.services.context import Clock, system_clock
from frontoffice.services.conversations import Conversations
from frontoffice.services.crm import CrmService
from frontoffice.services.crm_csv import CustomerCsv, CustomerExportJob, CustomerImportJob
from frontoffice.services.csat import CsatService
from frontoffice.services.deals import DealService
from frontoffice.services.dnc import DoNotCall
from frontoffice.services.egress import EgressPolicy
from frontoffice.services.email_intake import EmailIntake
from frontoffice.services.engine_settings import EngineSettingsService
from frontoffice.services.fallback import FallbackActions
from frontoffice.services.helpdesk_settings import HelpdeskSettingsService
from frontoffice.services.intake import Intake
from frontoffice.services.interactions import InteractionService
from frontoffice.services.jobs import JobRunner
from frontoffice.services.knowledge_base import KnowledgeBase
from frontoffice.services.messaging import Messaging
from frontoffice.services.outbox import install_wake
from frontoffice.services.outbox_delivery import DeliveryChange, OutboxWorker
from frontoffice.services.privacy import PersonalDataExportJob, Privacy, RetentionJob
from frontoffice.services.replies import Replies
from frontoffice.services.routing_admin import RoutingAdmin
from frontoffice.services.sales_report import SalesReportService
from frontoffice.services.screen_pop import LookupConfig, ScreenPop
from frontoffice.services.sla import SlaService
from frontoffice.services.stats import StatsService
from frontoffice.services.threads import ThreadService
from frontoffice.services.ticket_conversation import TicketConversation
from frontoffice.services.ticket_outbound import TicketOutbound
from frontoffice.services.ticket_work import TicketWork
from frontoffice.services.tickets import TicketService
from frontoffice.services.voice_calls import CallControl, SilentNodeSweep, VoiceCalls
from frontoffice.services.wallboard import WallboardView
from frontoffice.services.web_forms import CaptchaVerifier, FormRateLimit, WebForms
from frontoffice.services.webhooks import WebhookRecorder, Webhooks, WebhookSender
from frontoffice.store.blobs import BlobStore
from frontoffice.store.database import (
    commit_outlet,
    create_engine,
    create_job_engine,
    session_factory,
    sqlite_file,
    sync_session_class,
)
from frontoffice.store.leader_lease import DIALLING, LeaderLease

__all__ = ["Container", "build_container"]


@dataclass
class Container:
    """Everything one node runs, wired once. Tests build one with their own settings and clock."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    crm: CrmService
    auth: AuthService
    interactions: InteractionService
    bus: InProcessBus
    acd: AcdService
    contact_center: ContactCenter
    intake: Intake
    desk: AgentDesk
    routing_admin: RoutingAdmin
    wallboard: WallboardView
    channels: ChannelPorts
    stats: StatsService
    calendars: CalendarService
    tickets: TicketService
    conversation: TicketConversation
    deals: DealService
    engine_settings: EngineSettingsService
    callbacks: CallbackScheduler
    fallback: FallbackActions
    sla: SlaService
    sales_report: SalesReportService
    companies: CompanyService
    activities: ActivityService
    canned: CannedService
    knowledge_base: KnowledgeBase
    blobs: BlobStore
    email: EmailIntake
    threads: ThreadService
    outbox: OutboxWorker
    replies: Replies
    ticket_work: TicketWork
    csat: CsatService
    helpdesk_settings: HelpdeskSettingsService
    conversations: Conversations
    chat: WebChat
    chat_tokens: VisitorTokens
    messaging: Messaging
    # SMPP links and Telegram bots of the SMS and messenger entry points, started with the node.
    sms: SmsChannel
    telegram: TelegramChannel
    # Outgoing webhooks (queued with each change, delivered by the outbox) and the screen-pop lookup.
    webhooks: Webhooks
    webhook_sender: WebhookSender
    screen_pop: ScreenPop
    web_forms: WebForms
    change_feeds: ChangeFeeds
    # Background jobs (imports, exports, personal data, the retention sweep): services/jobs.py.
    jobs: JobRunner
    customer_csv: CustomerCsv
    privacy: Privacy
    # Outbound campaigns: their use cases, do-not-call lists, dial attempts, messages and the dialler.
    campaigns: Campaigns
    dnc: DoNotCall
    campaign_attempts: CampaignAttempts
    campaign_messages: CampaignMessages
    dialler: CampaignDialler
    # SQLite: the jobs' engine, whose statements run on worker threads (store/database.py).
    job_engine: AsyncEngine | None = None
    voice_calls: VoiceCalls | None = None
    # In a cluster, the leader's sweep closing the calls of voice nodes that went silent.
    silent_voice_nodes: SilentNodeSweep | None = None
    voice: VoiceService | None = None
    # The web layer's way to the running voice channel (the VoiceService, by its CallControl face).
    call_control: CallControl | None = None
    # The email channel's listeners (settings smtp_enabled, imap_mailboxes), started with the node.
    smtp: SmtpServer | None = None
    imap: ImapConnector | None = None
    # This node's part in a cluster (settings nats_url): None on a single node.
    cluster: ClusterNode | None = None
    started: bool = False

    async def start(self) -> None:
        """Rebuild the routing engine from the store and start its timers (in a cluster: join it;
        the node that wins the lease does that, see services/cluster.py)."""
        if not self.started:
            await self.stats.start()
            await self.engine_settings.load()  # the engine is built with the stored settings
            if self.cluster is None:
                await self.start_routing()
            if self.voice is not None:
                await self.voice.start()
            self.attach_dialler()
            if self.cluster is None:
                await self.dialler.start()  # after the ACD: attempts a stop left in flight are resolved
            if self.smtp is not None:
                await self.smtp.start()
            if self.imap is not None:
                await self.imap.start()
            if self.settings.messaging_channels:
                await self.sms.start()
                await self.telegram.start()
            if self.settings.job_runner:
                await self.jobs.start()
            if self.cluster is not None:
                # Every node delivers the outbox: rows are claimed with FOR UPDATE SKIP LOCKED, so
                # each is sent by one node, and a node's commit wakes its own worker.
                if self.settings.outbox_worker:
                    await self.outbox.start()
                await self.cluster.start(self)
                # Once commands reach the leader (this node's attempts a stop left in flight leave the
                # ACD); it dials only while it holds the dialler lease.
                await self.dialler.start()
            self.started = True
            if self.voice is not None:
                self.voice.node_ready()  # calls a dead voice node left up can be closed now

    async def start_routing(self) -> None:
        """What one node of a database runs (in a cluster: the leader): the engine rebuilt from the
        store, its timers, and the scheduled work (callbacks, SLA timers, calendars; the outbox on a
        single node), so that it runs once per cluster."""
        await self.acd.start()
        await self.ticket_work.start()  # tickets whose routing a stop interrupted, then the sweep
        await self.callbacks.start()
        await self.fallback.recover()  # actions decided but not done when the server stopped
        await self.calendars.start()
        await self.sla.start()
        if self.silent_voice_nodes is not None:
            await self.silent_voice_nodes.start()
        if self.settings.outbox_worker and self.cluster is None:
            await self.outbox.start()

    async def stop_routing(self) -> None:
        if self.cluster is None:
            await self.outbox.stop()
        if self.silent_voice_nodes is not None:
            await self.silent_voice_nodes.stop()
        await self.sla.stop()
        await self.calendars.stop()
        await self.callbacks.stop()
        await self.ticket_work.stop()
        await self.acd.stop()

    def attach_dialler(self) -> None:
        """Give the campaign dialler the voice channel's campaign calls as its port (and them the
        dialler as their events' sink); without a voice channel the dialler places nothing. Tests that
        start a voice service of their own call this after setting ``voice``."""
        if self.voice is None:
            self.dialler.port = None
            return
        self.dialler.port = self.voice.campaign_calls
        self.voice.campaign_calls.events = self.dialler

    async def close(self) -> None:
        if self.started:
            if self.cluster is not None:
                # The dialler lease first (another voice node dials at once; this one claims nothing
                # after saying it stopped), then routing's: a standby takes over at once.
                await self.dialler.stop()
                await self.cluster.stop()
            await self.jobs.stop()
            await self.telegram.stop()
            await self.sms.stop()
            if self.imap is not None:
                await self.imap.stop()
            if self.smtp is not None:
                await self.smtp.stop()
            await self.dialler.stop()
            if self.voice is not None:
                await self.voice.stop()
            if self.cluster is None:
                await self.stop_routing()
            else:
                await self.outbox.stop()
            await self.webhook_sender.close()
            await self.screen_pop.stop()
            self.started = False
        if self.job_engine is not None:
            await self.job_engine.dispose()
        await self.engine.dispose()


class FiguresPublisher:
    """Pushes today's figures of changed queues at most once per ``interval_s`` (a burst of
    contacts becomes one wallboard update, not one per event): one message per project, so that a
    viewer limited to some projects gets only their queues' figures (``project_of`` names a queue's
    project; queues without one go in a message of no project). They go to the supervisors' sockets
    (the wallboard, which only supervisors and administrators may open); an agent's desk has no use
    for them, and sending them to every agent cost two socket writes per contact at 50 agents."""

    def __init__(
        self,
        stats: StatsService,
        bus: InProcessBus,
        interval_s: float = 0.5,
        project_of: Callable[[int], int | None] = lambda _: None,
        acd: AcdService | None = None,
    ) -> None:
        self.acd = acd  # in a cluster only the routing node publishes (the others' figures follow it)
        self.stats = stats
        self.bus = bus
        self.interval_s = interval_s
        self.project_of = project_of
        self._dirty: set[int] = set()
        self._scheduled = False

    def changed(self, queue_ids: set[int]) -> None:
        self._dirty |= queue_ids
        if self._scheduled or not self._dirty:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._dirty.clear()
            return
        self._scheduled = True
        loop.call_later(self.interval_s, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        remote = None if self.acd is None else self.acd.remote
        if remote is not None and not remote.leading:
            self._dirty.clear()
            return
        live = self.stats.live()
        by_project: dict[int | None, list[dict[str, Any]]] = {}
        for q in sorted(self._dirty):
            if q in live:
                by_project.setdefault(self.project_of(q), []).append(asdict(live[q]))
        self._dirty.clear()
        for project_id, figures in by_project.items():
            self.bus.publish(
                BusMessage(
                    type="queue_figures",
                    data={"queues": figures},
                    audience=("supervisors",),
                    project_id=project_id,
                )
            )


class DeliveryPublisher:
    """Puts outbound messages' delivery state changes on the bus (after their commit): the author's
    desktop and the supervisors see queued / sent / failed live."""

    def __init__(self, bus: InProcessBus) -> None:
        self.bus = bus

    def delivery_changed(self, changes: Sequence[DeliveryChange]) -> None:
        for change in changes:
            audience = (
                ("supervisors",) if change.author_id is None else ("supervisors", f"agent:{change.author_id}")
            )
            self.bus.publish(
                BusMessage(
                    type="message_delivery",
                    data={
                        "message_id": change.message_id,
                        "interaction_id": change.interaction_id,
                        "contact_id": change.interaction_id,  # the desk hands it to the contact's panel
                        "state": change.state,
                        "error": change.error,
                    },
                    audience=audience,
                    project_id=change.project_id,
                )
            )


def _email_sender(settings: Settings) -> EmailSender:
    tls = None
    if settings.smtp_relay_ca_file is not None:
        tls = ssl.create_default_context(cafile=str(settings.smtp_relay_ca_file))
    relay = SmtpRelay(
        host=settings.smtp_relay_host,
        port=settings.smtp_relay_port,
        security=settings.smtp_relay_security,
        username=settings.smtp_relay_username,
        password=settings.smtp_relay_password.get_secret_value(),
        timeout_s=settings.smtp_relay_timeout_s,
        tls_context=tls,
    )
    key = None
    if settings.dkim_private_key_file is not None:
        key = DkimKey.from_file(
            settings.dkim_private_key_file, settings.dkim_selector, settings.dkim_domain or None
        )
    return EmailSender(relay, dkim_key=key)


def build_container(settings: Settings, *, clock: Clock = system_clock) -> Container:
    settings.ensure_secret_key()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    throttle = LoginThrottle(settings.login_max_failures, settings.login_window_s)
    crm = CrmService(sessions, region=settings.default_region, clock=clock)
    interactions = InteractionService(sessions, clock=clock)
    link: NatsLink | None = None
    bus: InProcessBus
    node = settings.node_name or node_name(settings.http_port)
    subjects = cluster_subjects(settings.cluster_name or make_url(settings.database_url).database or "")
    if settings.nats_url:
        link = NatsLink(settings.nats_url, name=f"frontoffice {node}")
        bus = NatsBus(link, subjects["events"], node)
    else:
        bus = InProcessBus()
    acd = AcdService(sessions, bus, clock=clock, time_zone=settings.time_zone)
    stats = StatsService(
        sessions,
        clock=clock,
        time_zone=settings.time_zone,
        sl_threshold_s=settings.sl_threshold_s,
        short_abandon_s=settings.short_abandon_s,
    )

    # Committed events leave from one place, the sessions' outlet: its subscribers, in order.
    commits = commit_outlet(sessions)
    commits.subscribe(stats.committed)  # live statistics (then the wallboard's figures, below)
    commits.subscribe(acd.publish)  # ACD outputs on the bus: the WebSocket stream
    # Channels' ports (the channel contract): offers, withdrawn offers, finished contacts of theirs.
    channels = ChannelPorts()
    commits.subscribe(channels)
    # (The voice channel subscribes to ACD outputs when it is built: acd.add_listener.)
    stats.on_change(FiguresPublisher(stats, bus, project_of=acd.project_of_queue, acd=acd).changed)
    cluster = None
    if link is not None and isinstance(bus, NatsBus):
        cluster = ClusterNode(
            database_url=settings.database_url,
            link=link,
            bus=bus,
            acd=acd,
            sessions=sessions,
            secret=settings.ensure_secret_key().encode(),
            subjects=subjects,
            node=node,
            http_url=settings.public_url,
            commit_followers=(stats.committed,),  # a standby's live figures follow the leader's
        )
        commits.subscribe(cluster.committed)
    # Outgoing integrations (webhooks, screen-pop lookups, SMS HTTP gateways and SMPP links, Telegram
    # Bot API servers, the captcha check) reach public addresses and the allowed networks only (SSRF).
    egress = EgressPolicy.from_setting(settings.integrations_allowed_networks)
    contact_center = ContactCenter(acd, crm, interactions, clock=clock, egress=egress)
    fallback = FallbackActions(sessions, interactions, clock=clock)
    acd.add_listener(fallback.on_outputs)  # what a queue does with contacts it turns away
    # Tickets as routed work: their work items in the ACD follow them (services/ticket_work.py).
    ticket_work = TicketWork(acd, interactions)
    voice_calls = VoiceCalls(contact_center, realm=settings.sip_realm, node=node)
    voice = _voice_service(settings, voice_calls) if settings.voice_enabled else None
    blobs = BlobStore(settings.data_dir / "blobs")
    # The outbox: deliveries committed with their action, sent by each channel's sender.
    outbox = OutboxWorker(
        sessions,
        blobs,
        clock=clock,
        listener=DeliveryPublisher(bus),
        # In a cluster the claims name the node (several may run on one host).
        node_id=node if link is not None else None,
    )
    outbox.register(_email_sender(settings))
    install_wake(sync_session_class(sessions), outbox.wake)  # a commit that queued wakes it
    replies = Replies(
        sessions,
        blobs,
        acd,
        CompleteContactHandler(acd, clock),
        secret=settings.ensure_secret_key(),
        mail_domain=settings.mail_domain,
        attachment_max_bytes=settings.attachment_max_bytes,
        clock=clock,
    )
    channels.register(WebFormChannel(replies))  # a web form contact is answered by email
    # The help desk's replies and surveys leave on the customer's channel through the outbox.
    ticket_outbound = TicketOutbound(replies, interactions, clock=clock)
    csat = CsatService(
        sessions,
        secret=settings.ensure_secret_key(),
        public_url=settings.public_url,
        queue_email=ticket_outbound.queue_survey,
        queue_text=ticket_outbound.queue_survey_text,
        clock=clock,
    )
    # Text channels' inbound messages (chat, SMS, messengers; email shares its last step).
    conversations = Conversations(contact_center.intake, blobs, clock=clock)
    # The web chat: its outbox sender pushes agents' messages to visitors, its port ends chats.
    outbox.register(ChatSender(bus))
    channels.register(ChatPort(sessions, bus))
    # SMS (SMPP links per entry point) and Telegram bots: their senders deliver agents' answers.
    messaging = Messaging(conversations, clock=clock, region=settings.default_region)
    sms = SmsChannel(messaging, egress=egress)
    telegram = TelegramChannel(messaging, egress=egress)
    outbox.register(SmsSender(messaging, sms, egress=egress))
    # Entry points created or changed through the admin API start, restart or stop their links and
    # bots without a restart (both are no-ops while messaging_channels is off).
    contact_center.admin.entry_point_listeners += [sms.reload, telegram.reload]
    outbox.register(TelegramSender(messaging, egress=egress))
    # Webhooks: queued in the transaction of the change they report (a before_commit hook), so a
    # crash right after a commit loses none; delivered, signed and logged by their outbox sender.
    webhook_recorder = WebhookRecorder(clock=clock)
    webhook_recorder.install(sync_session_class(sessions))
    webhook_sender = WebhookSender(
        sessions,
        bus,
        clock=clock,
        timeout_s=settings.webhook_timeout_s,
        recorder=webhook_recorder,
        egress=egress,
        public_url=settings.public_url,
    )
    outbox.register(webhook_sender, on_given_up=webhook_sender)
    # Screen-pop: an offered contact's customer is looked up alongside the offer, never before it.
    screen_pop = ScreenPop(
        sessions,
        bus,
        default=LookupConfig(
            settings.screen_pop_url,
            settings.screen_pop_auth_header.get_secret_value(),
            settings.screen_pop_identity,
        )
        if settings.screen_pop_url
        else None,
        timeout_s=settings.screen_pop_timeout_s,
        cache_ttl_s=settings.screen_pop_cache_ttl_s,
        cache_size=settings.screen_pop_cache_size,
        clock=clock,
        egress=egress,
    )
    commits.subscribe(screen_pop.committed)
    tickets = TicketService(sessions, clock=clock, work=ticket_work, csat=csat)
    campaigns = Campaigns(
        sessions, region=settings.default_region, clock=clock, default_zone=settings.time_zone
    )
    campaign_attempts = CampaignAttempts(
        acd, interactions, clock=clock, default_zone=settings.time_zone, node=node
    )
    # In a cluster one voice node at a time paces and places campaign calls: the holder of the
    # dialler lease (services/campaign_dialler.py).
    dialler = CampaignDialler(
        campaign_attempts,
        acd,
        clock=clock,
        lease=None if cluster is None else LeaderLease(settings.database_url, node, kind=DIALLING),
    )
    campaign_messages = CampaignMessages(
        campaigns,
        blobs,
        synthesize=render_prompt if shutil.which("espeak-ng") else None,
        decode=decode_wav,
    )
    dialler.audio_source = campaign_messages.audio
    campaigns.listeners.append(dialler.wake)
    knowledge_base = KnowledgeBase(sessions, clock=clock)
    email = EmailIntake(
        contact_center.intake,
        blobs,
        clock=clock,
        blocked_senders=settings.email_blocked_senders,
        auto_ack_limit=settings.email_auto_ack_limit,
    )
    # Public web forms: submissions without a user token, through intake like any contact.
    web_forms = WebForms(
        sessions,
        contact_center.intake,
        rate_limit=FormRateLimit(settings.web_form_rate_limit, settings.web_form_rate_window_s),
        captcha=CaptchaVerifier(settings.captcha_verify_url, settings.captcha_secret, egress=egress),
        public_url=settings.public_url,
        clock=clock,
    )
    change_feeds = ChangeFeeds(sessions, clock=clock)
    # Background jobs: a SQLite node runs its jobs' statements on worker threads (the job engine).
    job_engine = create_job_engine(settings.database_url)
    jobs = JobRunner(
        sessions,
        settings.data_dir / "jobs",
        job_engine=job_engine,
        clock=clock,
        single_node=sqlite_file(settings.database_url) is not None,
    )
    customer_csv = CustomerCsv(crm, jobs, settings.data_dir / "jobs" / "uploads")
    jobs.register(CustomerImportJob(crm, customer_csv.uploads, max_rows=settings.csv_max_rows))
    jobs.register(CustomerExportJob(crm))
    privacy = Privacy(sessions, blobs, jobs, data_dir=settings.data_dir, clock=clock)
    jobs.register(PersonalDataExportJob(privacy))
    jobs.register(RetentionJob(privacy, jobs, tombstone_days=settings.change_feed_retention_days))
    # The retention sweep: once a day, by the server itself (one job per day, whatever the nodes).
    jobs.schedule(RetentionJob.kind, timedelta(days=1))
    return Container(
        settings=settings,
        engine=engine,
        web_forms=web_forms,
        change_feeds=change_feeds,
        sessions=sessions,
        crm=crm,
        auth=AuthService(
            sessions, throttle=throttle, session_max_age_s=settings.session_max_age_s, clock=clock
        ),
        interactions=interactions,
        bus=bus,
        acd=acd,
        contact_center=contact_center,
        intake=contact_center.intake,
        desk=contact_center.desk,
        routing_admin=contact_center.admin,
        wallboard=contact_center.wallboard,
        channels=channels,
        stats=stats,
        calendars=CalendarService(sessions, acd, clock=clock),
        tickets=tickets,
        conversation=TicketConversation(
            sessions, bus, outbound=ticket_outbound, work=ticket_work, clock=clock
        ),
        deals=DealService(sessions, clock=clock),
        engine_settings=EngineSettingsService(acd, clock=clock),
        callbacks=CallbackScheduler(acd, interactions, clock=clock),
        fallback=fallback,
        sla=SlaService(sessions, bus, clock=clock, work=ticket_work),
        sales_report=SalesReportService(sessions),
        companies=CompanyService(sessions, clock=clock),
        activities=ActivityService(sessions, clock=clock),
        canned=CannedService(sessions, clock=clock),
        knowledge_base=knowledge_base,
        blobs=blobs,
        email=email,
        threads=ThreadService(sessions, blobs, clock=clock),
        outbox=outbox,
        replies=replies,
        ticket_work=ticket_work,
        csat=csat,
        helpdesk_settings=HelpdeskSettingsService(sessions, clock=clock),
        conversations=conversations,
        chat=WebChat(conversations, contact_center.desk, crm, tickets, knowledge_base, clock=clock),
        chat_tokens=VisitorTokens(settings.ensure_secret_key()),
        messaging=messaging,
        sms=sms,
        telegram=telegram,
        webhooks=Webhooks(sessions, webhook_recorder, clock=clock, egress=egress),
        webhook_sender=webhook_sender,
        screen_pop=screen_pop,
        jobs=jobs,
        customer_csv=customer_csv,
        privacy=privacy,
        job_engine=job_engine,
        campaigns=campaigns,
        dnc=DoNotCall(sessions, region=settings.default_region, clock=clock),
        campaign_attempts=campaign_attempts,
        campaign_messages=campaign_messages,
        dialler=dialler,
        voice_calls=voice_calls,
        silent_voice_nodes=(
            None
            if cluster is None
            else SilentNodeSweep((voice_calls, campaign_attempts), settings.voice_node_silent_after_s)
        ),
        voice=voice,
        call_control=voice,
        smtp=_smtp_server(settings, email),
        imap=ImapConnector(email, settings.imap_mailboxes) if settings.imap_mailboxes else None,
        cluster=cluster,
    )


def _smtp_server(settings: Settings, email: EmailIntake) -> SmtpServer | None:
    if not settings.smtp_enabled:
        return None
    tls = None
    if settings.smtp_tls_cert is not None and settings.smtp_tls_key is not None:
        # The same loader as SIP over TLS: TLS 1.2 at least, the node's certificate and key.
        tls = server_context(settings.smtp_tls_cert, settings.smtp_tls_key)
    password = settings.smtp_auth_password.get_secret_value()
    return SmtpServer(
        email,
        host=settings.smtp_host,
        port=settings.smtp_port,
        max_message_bytes=settings.email_max_message_bytes,
        tls_context=tls,
        credentials=(settings.smtp_auth_username, password) if settings.smtp_auth_username else None,
    )


def _voice_service(settings: Settings, calls: VoiceCalls) -> VoiceService:
    media_host = settings.media_host or settings.sip_host
    rtp_ports = RtpPorts(settings.rtp_port_min, settings.rtp_port_max)
    return VoiceService(
        calls,
        ProcessMediaBackend(media_host, event_loop=settings.event_loop, rtp_ports=rtp_ports)
        if settings.media_process
        else PythonMediaBackend(media_host, rtp_ports=rtp_ports),
        host=settings.sip_host,
        port=settings.sip_port,
        # Nonces are signed with a key derived from the node secret, so every node accepts them.
        secret=hashlib.sha256(b"sip-digest-nonce:" + settings.ensure_secret_key().encode()).digest(),
        realm=settings.sip_realm,
        recordings_dir=settings.data_dir / "recordings" if settings.voice_recordings else None,
        tcp=settings.sip_tcp,
        banned_networks=tuple(settings.sip_banned_networks),
        digest_algorithms=tuple(settings.sip_digest_algorithms),
        # Spoken in the center's default language with espeak-ng when installed; a chime otherwise.
        prompts=render_prompts(settings.default_language),
        announce_interval_s=settings.voice_announce_interval_s or None,
        qualify_interval_s=settings.sip_qualify_interval_s or None,
        language=settings.default_language,
        stereo_recordings=settings.voice_recordings_stereo,
        trunks=_trunks(settings),
        region=settings.default_region,
        tls_context=_tls_context(settings),
        tls_port=settings.sip_tls_port,
        standby=settings.sip_standby,
    )


def _trunks(settings: Settings) -> tuple[Trunk, ...]:
    trunks = []
    for trunk in settings.sip_trunks:
        values = trunk.model_dump()
        values["password"] = trunk.password.get_secret_value() if trunk.password else None
        trunks.append(Trunk.from_settings(values))
    return tuple(trunks)


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.sip_tls_cert is None or settings.sip_tls_key is None:
        return None
    return server_context(settings.sip_tls_cert, settings.sip_tls_key)
