"""Voice channel: SIP signalling, media and the back-to-back user agent."""
