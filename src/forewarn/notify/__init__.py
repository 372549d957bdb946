"""Delivery channels: signed webhooks and the background sender/escalation loop."""
