"""Voice channel: SIP signalling, media and the back-to-back user agent.

- ``sip/``: the sans-IO SIP core (messages, transactions, dialogs, digest, SDP);
- ``transport``, ``tls``: thin asyncio UDP, TCP and TLS transports around it;
- ``endpoint``: transports, the transaction layer, its timers, ``request``/``respond`` - one per node;
- ``call_state``: the sans-IO call core (call, agent-leg and re-INVITE state machines, one table each);
- ``registrar``: agents' phones, digest policy, throttling and bans;
- ``service``: :class:`~frontoffice.channels.voice.service.VoiceService`, the B2BUA wired to the ACD
  (it implements ``services.voice_calls.CallControl`` for the web layer); ``call_setup``: its shared steps;
- ``outbound``: trunking, composed of ``screening``, ``trunk_registrations``, ``dialling`` and
  ``click_to_call``; ``trunks``: trunk settings, numbers and live state;
- ``media``: the ``MediaBackend`` interface and the default Python RTP relay; ``g711``; ``prompts``.

Submodules are imported explicitly (``service`` depends on ``frontoffice.services``, which itself uses
``sip``), so this package imports nothing eagerly.
"""
