"""The reference: the least a signed-callback-to-Kafka endpoint can do with the same
libraries. Verify the HMAC, parse the JSON, ``send().get()`` with acks=all, answer ``{}``.
No spool, no metrics, no ordering guarantee beyond kafka-python's defaults."""

import hashlib
import hmac
import json
import os
import threading

from flask import Flask, jsonify, request
from kafka import KafkaProducer

SECRET = os.environ["AGORA_NCS_SECRET"].encode()
TOPIC = os.environ["AGORA_TOPIC_EVENTS"]
app = Flask("minimal")
_producer = None
_lock = threading.Lock()


def producer():  # type: ignore[no-untyped-def]
    global _producer
    with _lock:
        if _producer is None:
            _producer = KafkaProducer(
                bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], acks="all", linger_ms=2
            )
    return _producer


@app.post("/ncs")
def ncs():  # type: ignore[no-untyped-def]
    body = request.get_data()
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("Agora-Signature-V2", ""), expected):
        return jsonify(error="invalid_signature"), 401
    event = json.loads(body)
    producer().send(TOPIC, value=body, key=event["payload"]["cname"].encode()).get(timeout=5)
    return jsonify({}), 200


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok"), 200
