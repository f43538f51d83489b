"""The Flask application factory; gunicorn runs ``webhook.app:create_app()``."""

from __future__ import annotations

from flask import Flask

from webhook.admin import AdminSplit
from webhook.drainer import SpoolDrainer, register_drainer
from webhook.publisher import KafkaPublisher, Publisher
from webhook.settings import ServeSettings, WebhookSettings
from webhook.shared.clock import Clock, SystemClock
from webhook.shared.logs import configure_json_logging
from webhook.shared.tracing import configure_tracing, instrument_flask
from webhook.spool import Spool
from webhook.views import Ingress, register


def create_app(
    settings: WebhookSettings | None = None,
    publisher: Publisher | None = None,
    clock: Clock | None = None,
    configure_logging: bool = True,
    start_drainer: bool = True,
    serve: ServeSettings | None = None,
) -> Flask:
    """Build the app. Reads the environment only through :class:`WebhookSettings`.

    Nothing connects to Kafka here: the publisher connects on first use, inside the worker.
    """
    settings = settings or WebhookSettings()  # from the environment
    serve = serve or ServeSettings()
    if configure_logging:
        configure_json_logging(settings.log_level)
    configure_tracing("agora-events-webhook")  # off unless OTEL_* variables ask for it
    app = Flask("agora_events_webhook")
    instrument_flask(app)
    # Werkzeug enforces this while reading the stream, so chunked bodies are bounded too.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    publisher = publisher or KafkaPublisher(
        settings.kafka, settings.publish_timeout_s, max_body_bytes=settings.max_body_bytes
    )
    spool = None
    if settings.spool_dir is not None:
        spool = Spool(settings.spool_dir, settings.spool_max_bytes)
        if start_drainer:
            # One per worker; they share the drain lock, so one publishes at a time.
            drainer = SpoolDrainer(
                spool,
                publisher,
                settings.publish_timeout_s,
                (settings.topics.events, settings.topics.quarantine),
                settings.topics.quarantine,
            )
            register_drainer(drainer)
            drainer.start()
    ingress = Ingress(
        settings=settings,
        publisher=publisher,
        clock=clock or SystemClock(),
        spool=spool,
        read_timeout_s=serve.read_timeout_s,
    )
    register(app, ingress)
    if (admin_port := serve.admin_port()) is not None:
        app.wsgi_app = AdminSplit(app.wsgi_app, admin_port)  # type: ignore[method-assign]
    if isinstance(publisher, KafkaPublisher):
        publisher.ready()  # start connecting now, off the request path
    app.extensions["agora_events.spool"] = spool  # lets the owner close it
    return app
