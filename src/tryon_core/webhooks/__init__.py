"""Webhooks: the final status of an async job, POSTed to the URL its submitter gave, signed."""

from tryon_core.webhooks.deliveries import (
    EVENTS,
    Delivery,
    deliver_due,
    enqueue,
    event_for_status,
    list_deliveries,
    run_webhooks,
    validate_webhook_url,
)
from tryon_core.webhooks.secrets import WebhookSecret, get_secret, rotate_secret
from tryon_core.webhooks.signing import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    sign,
    signature_header,
    verify,
)

__all__ = [
    "EVENTS",
    "EVENT_HEADER",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "Delivery",
    "WebhookSecret",
    "deliver_due",
    "enqueue",
    "event_for_status",
    "get_secret",
    "list_deliveries",
    "rotate_secret",
    "run_webhooks",
    "sign",
    "signature_header",
    "validate_webhook_url",
    "verify",
]
