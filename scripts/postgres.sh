#!/usr/bin/env bash
# PostgreSQL for the tests of a team's shared fabric: the server from Debian's packages (the one
# the Nautobot harness uses, started if it is not), a role that may create databases (each test
# makes its own), and that role's password in an owner-only password file.
#   bash scripts/postgres.sh start   install if needed, start, create the role
#   bash scripts/postgres.sh env     print the exports the tests read
#   bash scripts/postgres.sh clean   drop the databases tests left behind
set -euo pipefail

STATE_DIR="${FABRIC_CONSOLE_PG_DIR:-/var/lib/fabric-console-postgres}"
ROLE="fabric_console_test"
PASSFILE="$STATE_DIR/pgpass"
PORT="${FABRIC_CONSOLE_PG_PORT:-5432}"

log() { echo "[postgres-harness $(date +%H:%M:%S)] $*" >&2; }
fail() {
    echo "[postgres-harness] error: $*" >&2
    exit 1
}
as_postgres() { runuser -u postgres -- "$@"; }

# `server start|restart`: the cluster, through the service or pg_ctlcluster; then waits for it.
server() {
    service postgresql "$1" >/dev/null 2>&1 || {
        cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
        [ -n "$cluster" ] || fail "no PostgreSQL cluster found (pg_lsclusters is empty)"
        # shellcheck disable=SC2086
        pg_ctlcluster $cluster "$1"
    }
    waited=0
    until as_postgres psql -tAc 'SELECT 1' >/dev/null 2>&1; do
        waited=$((waited + 1))
        [ "$waited" -lt 60 ] || fail "PostgreSQL did not accept connections within 60 s"
        sleep 1
    done
}

start() {
    [ "$(id -u)" = "0" ] || fail "run as root (apt-get and the postgres user need it)"
    if ! command -v pg_ctlcluster >/dev/null || ! command -v psql >/dev/null; then
        log "installing postgresql"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade postgresql >/dev/null || {
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade postgresql >/dev/null
        } || fail "apt-get could not install postgresql"
    fi
    if ! as_postgres psql -tAc 'SELECT 1' >/dev/null 2>&1; then
        log "starting PostgreSQL"
        server start
    fi
    # Each test process holds a few connections (fabric, sync state, listening, leases), and
    # the trust tests run many at once: more than the default 100. Raised before the Nautobot and
    # NetBox harnesses start (scripts/test.sh runs this first), as it takes a restart.
    if [ "$(as_postgres psql -tAc 'SHOW max_connections')" -lt 400 ]; then
        log "raising max_connections to 400 (restarts PostgreSQL)"
        as_postgres psql -q -c "ALTER SYSTEM SET max_connections = 400"
        server restart
    fi
    mkdir -p -m 711 "$STATE_DIR"
    if [ ! -s "$PASSFILE" ] || ! grep -q "^\*:" "$PASSFILE"; then
        umask 077
        printf '*:%s:*:%s:%s\n' "$PORT" "$ROLE" "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >"$PASSFILE"
    fi
    chmod 600 "$PASSFILE"
    password=$(cut -d: -f5 "$PASSFILE")
    if as_postgres psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='$ROLE'" | grep -q 1; then
        as_postgres psql -q -c "ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$password'"
    else
        as_postgres psql -q -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$password'"
    fi
    tls
    clean
    log "PostgreSQL ready for the tests: role $ROLE on 127.0.0.1:$PORT"
}

# The server's TLS certificate for the tests: a throwaway authority ($STATE_DIR/ca.pem) and a
# certificate for localhost and 127.0.0.1 signed by it (Debian's snakeoil certificate names no
# subjectAltName, which TLS clients check). Reloaded without a restart.
tls() {
    if [ ! -s "$STATE_DIR/server.pem" ]; then
        log "making a test certificate authority and a server certificate for localhost"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Fabric Console test CA" \
            -keyout "$STATE_DIR/ca.key" -out "$STATE_DIR/ca.pem" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
            -keyout "$STATE_DIR/server.key" -out "$STATE_DIR/server.csr" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$STATE_DIR/server.ext"
        openssl x509 -req -in "$STATE_DIR/server.csr" -CA "$STATE_DIR/ca.pem" -CAkey "$STATE_DIR/ca.key" \
            -CAcreateserial -days 3650 -extfile "$STATE_DIR/server.ext" -out "$STATE_DIR/server.pem" 2>/dev/null
    fi
    chown postgres "$STATE_DIR/server.key" "$STATE_DIR/server.pem"
    chmod 600 "$STATE_DIR/server.key"
    chmod 711 "$STATE_DIR"
    chmod 644 "$STATE_DIR/ca.pem" "$STATE_DIR/server.pem"
    as_postgres psql -q -c "ALTER SYSTEM SET ssl = on" \
        -c "ALTER SYSTEM SET ssl_cert_file = '$STATE_DIR/server.pem'" \
        -c "ALTER SYSTEM SET ssl_key_file = '$STATE_DIR/server.key'" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

clean() {
    as_postgres psql -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'fc\_test\_%'" |
        while read -r db; do
            [ -n "$db" ] && as_postgres psql -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
        done
    return 0
}

env_exports() {
    echo "export PGPASSFILE='$PASSFILE'"
    echo "export FABRIC_CONSOLE_TEST_POSTGRES='postgres://$ROLE@127.0.0.1:$PORT/postgres'"
    echo "export FABRIC_CONSOLE_REQUIRE_POSTGRES=1"
    echo "export FABRIC_CONSOLE_TEST_POSTGRES_CA='$STATE_DIR/ca.pem'"
}

case "${1:-}" in
start) start ;;
env) env_exports ;;
clean) clean ;;
*) fail "usage: $0 start|env|clean" ;;
esac
