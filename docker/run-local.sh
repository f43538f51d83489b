#!/bin/sh
# Started by `make run`: the handlers (and the reconciler, with Agora credentials) in the
# background, the webhook in the foreground. Ctrl-C stops all of them; the broker keeps
# running (`make kafka-down`).
set -eu
if [ -z "${AGORA_NCS_SECRET:-}" ]; then
  AGORA_NCS_SECRET=local-dev-secret
  export AGORA_NCS_SECRET
  echo "AGORA_NCS_SECRET not set: using the development secret 'local-dev-secret'" >&2
fi
bind="${AGORA_WEBHOOK_BIND:-127.0.0.1:8080}"
metrics_port="${AGORA_HANDLERS_METRICS_PORT:-9102}"

handlers=""
reconciler=""
stop_background() {
  # shellcheck disable=SC2086 # the pids are meant to split
  kill -TERM $handlers $reconciler 2>/dev/null || true
  # shellcheck disable=SC2086
  wait $handlers $reconciler 2>/dev/null || true
}
trap stop_background EXIT
# Ctrl-C is how this is meant to stop: exit 0 so make does not report an error.
trap 'exit 0' INT TERM

# Local only: the handlers' /metrics and /healthz listen on the loopback interface.
agora-events handlers --metrics-host 127.0.0.1 &
handlers=$!
if [ -n "${AGORA_APP_ID:-}" ]; then
  # NCS alone is not reliable: the reconciler queries running sessions for silent deaths.
  echo "AGORA_APP_ID set: starting the reconciler (agora-events recording reconcile)" >&2
  agora-events recording reconcile &
  reconciler=$!
fi
echo "webhook on http://$bind/ncs, handlers' metrics on http://127.0.0.1:$metrics_port/metrics" >&2
echo "try: agora-events send http://$bind/ncs --lifecycle   (Ctrl-C stops everything but the broker)" >&2
agora-events webhook --bind "$bind"
