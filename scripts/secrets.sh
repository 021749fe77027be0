#!/usr/bin/env bash
# Generate a random password for every SCRAM user of config/kafka/users.conf into
# secrets/kafka/<user>.password (git-ignored, mode 600). Existing passwords are kept.
# Passwords are never printed.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

mkdir -p "$SECRETS_DIR/kafka" && chmod 700 "$SECRETS_DIR" "$SECRETS_DIR/kafka"
umask 077
created=0
for user in $(kafka_users); do
  f=$(password_file "$user")
  [[ -s $f ]] && continue
  random_secret > "$f"
  created=$((created + 1))
done
log "SCRAM passwords ready in $SECRETS_DIR/kafka ($created new)"
