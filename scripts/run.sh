#!/usr/bin/env bash
# `make run`: migrate, load the demo, start a Celery worker, the inference service and the web
# server; stop them all on Ctrl-C. Environment variables switch each part (see README).
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-labelapp.settings.local}
export LABELAPP_INFERENCE_URL=${LABELAPP_INFERENCE_URL:-http://127.0.0.1:8100}
mkdir -p var/log

$PY manage.py migrate --no-input -v0
$PY manage.py demo

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The filesystem broker has no broadcast: the worker runs without gossip, mingle and events.
.venv/bin/celery -A labelapp worker -B -Q default,generation,gpu -c 2 \
  --without-gossip --without-mingle --schedule var/celerybeat-schedule --loglevel INFO >var/log/worker.log 2>&1 &
pids+=($!)

if [ "${LABELAPP_START_INFERENCE:-1}" = "1" ] && $PY -c "import models_service.serve" 2>/dev/null; then
  $PY -m models_service.serve --host 127.0.0.1 --port 8100 >var/log/inference.log 2>&1 &
  pids+=($!)
  echo "Inference service: http://127.0.0.1:8100 (log: var/log/inference.log)"
fi

echo "Worker log: var/log/worker.log"
echo
echo "labelapp is at http://$HOST:$PORT/  (API docs: http://$HOST:$PORT/api/docs/)"
echo "Log in with a user printed above. Ctrl-C stops everything."
$PY manage.py runserver "$HOST:$PORT" --noreload
