"""Sending an issue: the campaign, the delivery engine, the SMTP client, the outbox, the ledger."""
