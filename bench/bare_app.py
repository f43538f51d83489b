"""The baseline: a bare Flask endpoint that answers ``{}`` and does nothing else."""

from flask import Flask, jsonify

app = Flask("bare")


@app.post("/ncs")
def ncs():  # type: ignore[no-untyped-def]
    return jsonify({}), 200


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok"), 200
