#!/bin/sh
# One-shot set-up of the compose stack's Kafka security, run by the `kafka-init` service
# (the apache/kafka image, no network) before the broker starts:
#
#   1. a random password per SCRAM user (KAFKA_PRINCIPALS, plus the broker's own `admin`
#      and `controller`, and the keystore's), kept in $SECRETS_DIR/secrets.properties;
#   2. a private CA and the broker's TLS certificate (SANs: KAFKA_TLS_SAN), with keytool;
#   3. the first time only, the broker's storage formatted with every SCRAM user
#      (SCRAM users of a KRaft cluster are bootstrapped at format time);
#   4. for each client volume mounted under $CLIENTS_DIR/<principal>: `password` and
#      `ca.pem`, owned by the uid of the agora-events image, nothing else.
#
# Safe to run on every `docker compose up`: what exists is kept, so passwords never change
# under a formatted broker. KAFKA_TLS_RENEW=1 issues a new CA and certificate.
# Nothing secret is printed. Every path and the owners can be changed through the
# environment, so the same script runs outside a container (tests/support/secure_kafka.py).
set -eu

SECRETS_DIR=${SECRETS_DIR:-/etc/kafka/secrets}
CLIENTS_DIR=${CLIENTS_DIR:-/clients}
DATA_DIR=${DATA_DIR:-/var/lib/kafka/data}
SERVER_PROPERTIES=${SERVER_PROPERTIES:-/etc/kafka/agora-events/server.properties}
KAFKA_STORAGE=${KAFKA_STORAGE:-/opt/kafka/bin/kafka-storage.sh}
BROKER_OWNER=${BROKER_OWNER:-appuser:appuser}
CLIENT_OWNER=${CLIENT_OWNER:-10001:10001}
KAFKA_TLS_SAN=${KAFKA_TLS_SAN:-DNS:kafka,DNS:localhost,IP:127.0.0.1}
KAFKA_TLS_VALIDITY_DAYS=${KAFKA_TLS_VALIDITY_DAYS:-825}
KAFKA_TLS_KEY_SIZE=${KAFKA_TLS_KEY_SIZE:-3072}
KAFKA_TLS_RENEW=${KAFKA_TLS_RENEW:-0}
: "${CLUSTER_ID:?CLUSTER_ID: the cluster id the storage is formatted with}"
: "${KAFKA_PRINCIPALS:?KAFKA_PRINCIPALS: the SCRAM users of the services, space-separated}"

MECHANISM=SCRAM-SHA-512
SECRETS="$SECRETS_DIR/secrets.properties"
umask 077

say() { printf 'kafka-init: %s\n' "$*"; }
fail() { printf 'kafka-init: %s\n' "$*" >&2; exit 1; }

# 48 hex characters (192 bits) from the kernel's CSPRNG.
new_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

secret() { sed -n "s/^$1=//p" "$SECRETS"; }

case " $KAFKA_PRINCIPALS " in
  *" admin "* | *" controller "*) fail "KAFKA_PRINCIPALS: admin and controller are the broker's own" ;;
esac
for principal in $KAFKA_PRINCIPALS; do
  case "$principal" in
    *[!a-z0-9-]* | "") fail "KAFKA_PRINCIPALS: '$principal' is not [a-z0-9-]+" ;;
  esac
done

# --- 1. passwords ---------------------------------------------------------------------------
[ -f "$SECRETS" ] || : > "$SECRETS"
missing=""
for key in store.password user.controller user.admin $(printf 'user.%s ' $KAFKA_PRINCIPALS); do
  [ -n "$(secret "$key")" ] || missing="$missing $key"
done
created=$(printf '%s' "$missing" | sed 's/ user\./ /g')
# SCRAM users are bootstrapped when the storage is formatted: refuse, before writing
# anything, to make a password no broker user will ever have.
if [ -f "$DATA_DIR/meta.properties" ] && [ -n "$created" ]; then
  fail "the broker's storage ($DATA_DIR) was formatted before these SCRAM users existed:$created.
Either start from empty volumes (docker compose down -v deletes every topic), or create each
user with an admin client and store its password (docs/security.md, \"The compose stack's
broker\"): kafka-configs.sh --alter --entity-type users --entity-name NAME --add-config 'SCRAM-SHA-512=[password=...]'"
fi
for key in $missing; do
  printf '%s=%s\n' "$key" "$(new_password)" >> "$SECRETS"
done
[ -z "$created" ] || say "generated passwords for:$created"

# --- 2. TLS -----------------------------------------------------------------------------------
store_password=$(secret store.password)
if [ "$KAFKA_TLS_RENEW" = 1 ] || [ ! -f "$SECRETS_DIR/broker.p12" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pw="-storepass $store_password -keypass $store_password"
  days="-validity $KAFKA_TLS_VALIDITY_DAYS"
  rsa="-keyalg RSA -keysize $KAFKA_TLS_KEY_SIZE"
  # shellcheck disable=SC2086 # $pw, $days and $rsa are option lists
  {
    keytool -genkeypair -alias ca $rsa -dname "CN=agora-events Kafka CA" \
      -ext bc:c $days -storetype PKCS12 -keystore "$work/ca.p12" $pw
    keytool -exportcert -rfc -alias ca -keystore "$work/ca.p12" -storepass "$store_password" \
      -file "$work/ca.pem"
    keytool -genkeypair -alias broker $rsa -dname "CN=kafka" \
      -ext "SAN=$KAFKA_TLS_SAN" $days -storetype PKCS12 -keystore "$work/broker.p12" $pw
    keytool -certreq -alias broker -keystore "$work/broker.p12" -storepass "$store_password" \
      -file "$work/broker.csr"
    keytool -gencert -alias ca -keystore "$work/ca.p12" -storepass "$store_password" -rfc \
      -infile "$work/broker.csr" -outfile "$work/broker.crt" -ext "SAN=$KAFKA_TLS_SAN" $days
    keytool -importcert -noprompt -alias ca -file "$work/ca.pem" -keystore "$work/broker.p12" \
      -storepass "$store_password"
    keytool -importcert -alias broker -file "$work/broker.crt" -keystore "$work/broker.p12" \
      -storepass "$store_password"
    keytool -importcert -noprompt -alias ca -file "$work/ca.pem" -storetype PKCS12 \
      -keystore "$work/trust.p12" -storepass "$store_password"
  } > "$work/keytool.log" 2>&1 || { cat "$work/keytool.log" >&2; fail "keytool failed"; }
  # The CA's private key is not kept: a renewal issues a new CA.
  for name in ca.pem broker.p12 trust.p12; do
    rm -f "$SECRETS_DIR/$name"
    cp "$work/$name" "$SECRETS_DIR/$name"
  done
  say "issued a TLS certificate for $KAFKA_TLS_SAN, valid $KAFKA_TLS_VALIDITY_DAYS days"
fi

# --- 3. storage, with the SCRAM users ---------------------------------------------------------
if [ ! -f "$DATA_DIR/meta.properties" ]; then
  set --
  for user in controller admin $KAFKA_PRINCIPALS; do
    set -- "$@" --add-scram "$MECHANISM=[name=$user,password=$(secret "user.$user")]"
  done
  "$KAFKA_STORAGE" format -t "$CLUSTER_ID" -c "$SERVER_PROPERTIES" "$@" > /dev/null \
    || fail "formatting $DATA_DIR failed"
  set --
  say "formatted $DATA_DIR with the SCRAM users: controller admin $KAFKA_PRINCIPALS"
fi

# --- 4. what the broker and each client read --------------------------------------------------
# The broker's own client settings (its health check runs kafka-broker-api-versions.sh).
rm -f "$SECRETS_DIR/admin.properties"
cat > "$SECRETS_DIR/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=$MECHANISM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(secret user.admin)";
ssl.truststore.type=PKCS12
ssl.truststore.location=$SECRETS_DIR/trust.p12
ssl.truststore.password=$store_password
EOF
chown -R "$BROKER_OWNER" "$SECRETS_DIR" "$DATA_DIR"
chmod 0700 "$SECRETS_DIR"
chmod 0400 "$SECRETS" "$SECRETS_DIR/admin.properties" "$SECRETS_DIR/broker.p12" \
  "$SECRETS_DIR/trust.p12"
chmod 0444 "$SECRETS_DIR/ca.pem"

for user in admin $KAFKA_PRINCIPALS; do
  dir="$CLIENTS_DIR/$user"
  [ -d "$dir" ] || continue  # only the volumes this stack mounts
  rm -f "$dir/password" "$dir/ca.pem"
  secret "user.$user" > "$dir/password"
  cp "$SECRETS_DIR/ca.pem" "$dir/ca.pem"
  chown "$CLIENT_OWNER" "$dir/password" "$dir/ca.pem"
  chmod 0400 "$dir/password"
  chmod 0444 "$dir/ca.pem"
  chmod 0755 "$dir"
done
say "ready"
