"""Webhooks in both directions: Standard Webhooks signatures, envelopes, ingestion."""
