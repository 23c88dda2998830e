"""The email channel: mail in (SMTP server, IMAP mailboxes, parsing, threading) and mail out
(``sender``: the outbox's email sender, aiosmtplib to the configured relay)."""
