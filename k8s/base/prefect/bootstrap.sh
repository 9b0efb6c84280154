#!/bin/sh
# Init container of the Prefect worker: make the work pool match the base job template
# in this repository and make sure the "gpu" work queue exists with its concurrency limit.
# Idempotent; runs on every worker start.
set -eu

tries=0
until python -c "import os, urllib.request; urllib.request.urlopen(os.environ['PREFECT_API_URL'] + '/health', timeout=5)" \
    >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Prefect API $PREFECT_API_URL not reachable after $tries tries" >&2
    exit 1
  fi
  echo "waiting for Prefect API at $PREFECT_API_URL ($tries/60)"
  sleep 5
done

prefect work-pool create "$PREFECT_WORK_POOL" --type kubernetes \
  --base-job-template /etc/restora/prefect/base-job-template.json --overwrite

if prefect work-queue inspect gpu --pool "$PREFECT_WORK_POOL" >/dev/null 2>&1; then
  prefect work-queue set-concurrency-limit gpu "$GPU_QUEUE_LIMIT" --pool "$PREFECT_WORK_POOL"
else
  prefect work-queue create gpu --pool "$PREFECT_WORK_POOL" --limit "$GPU_QUEUE_LIMIT"
fi
