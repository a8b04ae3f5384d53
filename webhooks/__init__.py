"""Webhooks: complaints arriving from other systems (`intake`), and the signing both ways
(`signing`). Deliveries to other systems go through the outbox (workers/channels.py)."""
