"""Outgoing webhooks: address checks, signed sending, retries and the delivery worker."""
