#!/bin/sh
# Idempotent MinIO bootstrap, run by the minio-setup Job (image minio/mc).
# Never prints credentials.
set -eu

tries=0
until mc alias set restora "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1 \
    && mc ready restora >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "MinIO at $MINIO_URL not ready after $tries tries" >&2
    exit 1
  fi
  echo "waiting for MinIO at $MINIO_URL ($tries/60)"
  sleep 5
done

for bucket in $BUCKETS; do
  mc mb --ignore-existing "restora/$bucket"
done

# "create" overwrites an existing policy of the same name, so edits are applied on re-run.
mc admin policy create restora restora-pipeline /scripts/restora-pipeline.json
mc admin policy create restora triton-models-read /scripts/triton-models-read.json

ensure_user() {
  user="$1"; secret="$2"; policy="$3"
  # "user add" on an existing user updates its secret key (rotation = edit Secret, re-run Job)
  mc admin user add restora "$user" "$secret" >/dev/null
  if ! out=$(mc admin policy attach restora "$policy" --user "$user" 2>&1); then
    case "$out" in
      *"already in effect"*) ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
  echo "service user for policy $policy ready"
}
ensure_user "$RESTORA_S3_ACCESS_KEY" "$RESTORA_S3_SECRET_KEY" restora-pipeline
ensure_user "$TRITON_S3_ACCESS_KEY" "$TRITON_S3_SECRET_KEY" triton-models-read

# put == s3:ObjectCreated:* (PUT, POST, COPY, CompleteMultipartUpload)
mc event add "restora/$NOTIFY_BUCKET" "$WEBHOOK_ARN" --event put --ignore-existing
mc event ls "restora/$NOTIFY_BUCKET"
echo "MinIO bootstrap done"
