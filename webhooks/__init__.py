"""Webhooks: complaints arriving from other systems, and deliveries to them.

Empty for now: the intake webhook and outbound deliveries come with the notifications work
(signed requests, per-source secrets, idempotency keys). The folder exists so the layout of
DESIGN.md holds from the start: `workers/` and `webhooks/` are where the product touches the
world.
"""
