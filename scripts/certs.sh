#!/usr/bin/env bash
# Generate the private CA and per-broker certificates into certs/ (git-ignored), and keep
# them valid.
#   scripts/certs.sh          create what is missing; reissue broker certificates that expire
#                             within CERT_RENEW_DAYS (30) from the same CA (a running broker
#                             serves the new one after a restart: scripts/certs-rotate.sh)
#   scripts/certs.sh --status each certificate's expiry and days left, a warning within
#                             CERT_RENEW_DAYS; also written as Prometheus metrics to
#                             .local/kafka/certs.prom (kafka_certificate_days_left)
#   scripts/certs.sh --renew N  reissue broker N's certificate now
#   scripts/certs.sh --force  regenerate everything (restart the cluster afterwards)
# Outputs: ca.crt (PEM, for librdkafka and the brokers' truststore), ca.key (encrypted with
# ca.password), kafka-N.p12 (broker keystores, password in keystore.password), and an
# unrelated impostor CA (impostor-ca.crt) for the security suite's "wrong trust" attacks.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

DAYS="${CERT_DAYS:-365}"
CA_DAYS="${CERT_CA_DAYS:-3650}"
RENEW_DAYS="${CERT_RENEW_DAYS:-30}"
# Host names the brokers are reached by: native (localhost, 127.0.0.1) and compose (kafka-N).
EXTRA_SANS="${CERT_EXTRA_SANS:-}"

# days_left CERT: whole days until CERT expires (negative once expired).
days_left() {
  local end; end=$(openssl x509 -enddate -noout -in "$1" | cut -d= -f2)
  echo $(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 ))
}

status() {
  local f name days worst=0 prom
  prom="$KAFKA_STATE/certs.prom"
  mkdir -p "$KAFKA_STATE"
  {
    echo "# HELP kafka_certificate_days_left Days until the certificate expires."
    echo "# TYPE kafka_certificate_days_left gauge"
  } > "$prom.tmp"
  for f in "$CERTS_DIR"/ca.crt "$CERTS_DIR"/kafka-*.crt; do
    [[ -f $f ]] || continue
    name=$(basename "$f" .crt); days=$(days_left "$f")
    echo "kafka_certificate_days_left{certificate=\"$name\"} $days" >> "$prom.tmp"
    printf '%-10s expires %s (%s days left)\n' "$name" \
      "$(date -u -d "$(openssl x509 -enddate -noout -in "$f" | cut -d= -f2)" +%F)" "$days"
    if (( days <= RENEW_DAYS )); then
      if [[ $name == ca ]]; then
        log "warning: the CA expires in $days days: make certs-regen (a new trust root for every client)"
      else
        log "warning: $name expires in $days days: make certs-rotate"
      fi
      worst=1
    fi
  done
  mv "$prom.tmp" "$prom"
  return $worst
}

if [[ ${1:-} == --status ]]; then status || :; exit 0; fi
if [[ ${1:-} == --force ]]; then rm -rf "$CERTS_DIR"; fi
renew=${2:-}
[[ ${1:-} == --renew && -n $renew ]] || renew=""
mkdir -p "$CERTS_DIR" && chmod 700 "$CERTS_DIR"
cd "$CERTS_DIR"
umask 077

new_ca() { # new_ca PREFIX CN
  local prefix=$1 cn=$2
  random_secret > "$prefix.password"
  openssl req -x509 -newkey rsa:3072 -sha256 -days "$CA_DAYS" -subj "/O=ecommerce-analytics/CN=$cn" \
    -keyout "$prefix.key" -passout "file:$prefix.password" -out "$prefix.crt" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 644 "$prefix.crt"
}

if [[ ! -f ca.crt ]]; then
  log "creating CA"
  new_ca ca "ecommerce-analytics local CA"
  rm -f kafka-*.p12
fi
[[ -f impostor-ca.crt ]] || new_ca impostor-ca "impostor CA"
[[ -f keystore.password ]] || random_secret > keystore.password

for n in $(all_nodes); do
  if [[ -f kafka-$n.p12 && -f kafka-$n.crt && $renew != "$n" ]]; then
    left=$(days_left "kafka-$n.crt")
    (( left > RENEW_DAYS )) && continue
    log "warning: kafka-$n's certificate expires in $left days: reissuing it (a running node serves it after make certs-rotate)"
  fi
  log "creating certificate for kafka-$n"
  sans="DNS:localhost,IP:127.0.0.1,DNS:kafka-$n,DNS:kafka-$n.kafka${EXTRA_SANS:+,$EXTRA_SANS}"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kafka-$n" -keyout "kafka-$n.key" -out "kafka-$n.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
    "$sans" > "kafka-$n.ext"
  openssl x509 -req -in "kafka-$n.csr" -CA ca.crt -CAkey ca.key -passin file:ca.password -CAcreateserial \
    -days "$DAYS" -sha256 -extfile "kafka-$n.ext" -out "kafka-$n.crt" 2>/dev/null
  openssl pkcs12 -export -in "kafka-$n.crt" -inkey "kafka-$n.key" -certfile ca.crt -name "kafka-$n" \
    -out "kafka-$n.p12" -passout file:keystore.password
  rm -f "kafka-$n.csr" "kafka-$n.ext" "kafka-$n.key"
  openssl verify -CAfile ca.crt "kafka-$n.crt" >/dev/null || die "kafka-$n.crt does not verify"
done
ca_left=$(days_left ca.crt)
(( ca_left > RENEW_DAYS )) || log "warning: the CA expires in $ca_left days: make certs-regen (a new trust root for every client)"
log "certificates ready in $CERTS_DIR"
