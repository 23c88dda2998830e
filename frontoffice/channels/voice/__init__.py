"""Voice channel: SIP signalling, media and the back-to-back user agent.

- ``sip/``: the sans-IO SIP core (messages, transactions, dialogs, digest, SDP);
- ``transport``: thin asyncio UDP and TCP transports around it;
- ``registrar``: agents' phones, digest policy, throttling and bans;
- ``service``: :class:`~frontoffice.channels.voice.service.VoiceService`, the B2BUA wired to the ACD;
- ``media``: the ``MediaBackend`` interface and the default Python RTP relay; ``g711``; ``prompts``.

Submodules are imported explicitly (``service`` depends on ``frontoffice.services``, which itself uses
``sip``), so this package imports nothing eagerly.
"""
