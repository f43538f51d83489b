#!/bin/sh
# Started by `make run`: the handlers in the background, the webhook in the foreground.
set -eu
if [ -z "${AGORA_NCS_SECRET:-}" ]; then
  AGORA_NCS_SECRET=local-dev-secret
  export AGORA_NCS_SECRET
  echo "AGORA_NCS_SECRET not set: using the development secret 'local-dev-secret'" >&2
fi
agora-events handlers &
handlers=$!
reconciler=""
if [ -n "${AGORA_APP_ID:-}" ]; then
  # NCS alone is not reliable: the reconciler queries running sessions for silent deaths.
  agora-events recording reconcile &
  reconciler=$!
fi
trap 'kill -TERM $handlers $reconciler 2>/dev/null; wait $handlers $reconciler 2>/dev/null' EXIT INT TERM
echo "webhook on http://127.0.0.1:8080/ncs  (try: agora-events send http://127.0.0.1:8080/ncs --lifecycle)" >&2
agora-events webhook --bind 127.0.0.1:8080
