"""The Flask application factory; gunicorn runs ``webhook.app:create_app()``."""

from __future__ import annotations

from flask import Flask

from webhook.clock import Clock, SystemClock
from webhook.logs import configure_json_logging
from webhook.publisher import KafkaPublisher, Publisher
from webhook.settings import WebhookSettings
from webhook.views import Ingress, register


def create_app(
    settings: WebhookSettings | None = None,
    publisher: Publisher | None = None,
    clock: Clock | None = None,
    configure_logging: bool = True,
) -> Flask:
    """Build the app. Reads the environment only through :class:`WebhookSettings`.

    Nothing connects to Kafka here: the publisher connects on first use, inside the worker.
    """
    settings = settings or WebhookSettings()  # from the environment
    if configure_logging:
        configure_json_logging(settings.log_level)
    app = Flask("agora_events_webhook")
    # Werkzeug enforces this while reading the stream, so chunked bodies are bounded too.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    ingress = Ingress(
        settings=settings,
        publisher=publisher or KafkaPublisher(settings.kafka, settings.publish_timeout_s),
        clock=clock or SystemClock(),
    )
    register(app, ingress)
    return app
