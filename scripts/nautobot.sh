#!/usr/bin/env bash
# Local Nautobot for Fabric Console's interop tests and benchmarks (run as root on Debian).
#
#   scripts/nautobot.sh start    install (once), migrate (once), create users/tokens, serve on 127.0.0.1
#   scripts/nautobot.sh stop     stop the Nautobot server and the harness's Redis
#   scripts/nautobot.sh status   say what is running
#   scripts/nautobot.sh env      print `export NAUTOBOT_URL=… NAUTOBOT_TOKEN=… NAUTOBOT_READONLY_TOKEN=…
#                                NAUTOBOT_EVENTS=…` (the Redis its event broker publishes to)
#
# Settings (environment):
#   NAUTOBOT_HARNESS_DIR     state directory (venv, config, tokens, logs)  default /var/lib/fabric-console-nautobot
#   NAUTOBOT_HARNESS_PORT    HTTP port of Nautobot on 127.0.0.1            default 48990
#   NAUTOBOT_HARNESS_REDIS_PORT  Redis port on 127.0.0.1                   default 48991
#   NAUTOBOT_HARNESS_PYTHON  Python ≥ 3.10 used to create the venv         default python3 on PATH
#   NAUTOBOT_HARNESS_TIMEOUT seconds to wait for the API to answer         default 180
#
# Safe to re-run: every step checks whether it is already done. The migrated database is kept
# between runs on the same machine (a marker file plus a check of the schema), which saves the
# ≈ 9 minute migration.
set -euo pipefail

NAUTOBOT_VERSION="3.2.7"
STATE_DIR="${NAUTOBOT_HARNESS_DIR:-/var/lib/fabric-console-nautobot}"
PORT="${NAUTOBOT_HARNESS_PORT:-48990}"
REDIS_PORT="${NAUTOBOT_HARNESS_REDIS_PORT:-48991}"
READY_TIMEOUT="${NAUTOBOT_HARNESS_TIMEOUT:-180}"
DB_NAME="fabric_console_nautobot"
DB_USER="fabric_console_nautobot"
VENV="$STATE_DIR/venv"
SERVER="$VENV/bin/nautobot-server"
PID_FILE="$STATE_DIR/nautobot.pid"
LOG_FILE="$STATE_DIR/nautobot.log"
REDIS_PID_FILE="$STATE_DIR/redis.pid"
MIGRATED_MARKER="$STATE_DIR/migrated-$NAUTOBOT_VERSION"
ADMIN_USER="fabric-console-admin"
READONLY_USER="fabric-console-readonly"

log() { printf '[nautobot-harness %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { printf '[nautobot-harness] error: %s\n' "$*" >&2; exit 1; }

# Runs one named step and prints how long it took, so the times can be compared between machines.
timed() {
    local name="$1"
    shift
    local started
    started=$(date +%s)
    "$@"
    log "step '$name' took $(($(date +%s) - started)) s"
}

require_root() {
    [ "$(id -u)" = "0" ] || fail "run as root (apt-get, PostgreSQL and the state directory $STATE_DIR need it)"
}

# Secrets of the harness live in the state directory, readable by root only.
secret_file() {
    local file="$STATE_DIR/$1"
    if [ ! -s "$file" ]; then
        (umask 077 && head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
    fi
    cat "$file"
}

nautobot_env() {
    export NAUTOBOT_ROOT="$STATE_DIR"
    export NAUTOBOT_CONFIG="$STATE_DIR/nautobot_config.py"
    export NAUTOBOT_DB_NAME="$DB_NAME"
    export NAUTOBOT_DB_USER="$DB_USER"
    NAUTOBOT_DB_PASSWORD="$(secret_file db.password)"
    export NAUTOBOT_DB_PASSWORD
    export NAUTOBOT_DB_HOST="127.0.0.1"
    export NAUTOBOT_DB_PORT="5432"
    export NAUTOBOT_REDIS_HOST="127.0.0.1"
    export NAUTOBOT_REDIS_PORT="$REDIS_PORT"
    export NAUTOBOT_ALLOWED_HOSTS='*'
    # Nautobot must never phone home from a test machine.
    export NAUTOBOT_INSTALLATION_METRICS_ENABLED="false"
}

install_services() {
    if command -v redis-server >/dev/null && command -v pg_ctlcluster >/dev/null && command -v psql >/dev/null; then
        log "postgresql and redis-server already installed"
        return
    fi
    log "installing postgresql and redis-server"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade postgresql redis-server >/dev/null ||
        { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade postgresql redis-server >/dev/null; } ||
        fail "apt-get could not install postgresql redis-server"
}

start_postgres() {
    if ! runuser -u postgres -- psql -tAc 'SELECT 1' >/dev/null 2>&1; then
        log "starting PostgreSQL"
        service postgresql start >/dev/null 2>&1 || {
            local cluster
            cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
            [ -n "$cluster" ] || fail "no PostgreSQL cluster found (pg_lsclusters is empty)"
            # shellcheck disable=SC2086
            pg_ctlcluster $cluster start
        }
    fi
    local waited=0
    until runuser -u postgres -- psql -tAc 'SELECT 1' >/dev/null 2>&1; do
        waited=$((waited + 1))
        [ "$waited" -lt 60 ] || fail "PostgreSQL did not accept connections within 60 s"
        sleep 1
    done
}

start_redis() {
    if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
        log "redis already answering on 127.0.0.1:$REDIS_PORT"
        return
    fi
    log "starting redis on 127.0.0.1:$REDIS_PORT"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --pidfile "$REDIS_PID_FILE" \
        --dir "$STATE_DIR" --save "" --appendonly no --logfile "$STATE_DIR/redis.log"
    local waited=0
    until redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
        waited=$((waited + 1))
        [ "$waited" -lt 30 ] || fail "redis did not answer on 127.0.0.1:$REDIS_PORT within 30 s (see $STATE_DIR/redis.log)"
        sleep 1
    done
}

create_database() {
    local password
    password="$(secret_file db.password)"
    if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'" | grep -q 1; then
        log "creating database role $DB_USER"
        runuser -u postgres -- psql -q -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$password'"
    else
        runuser -u postgres -- psql -q -c "ALTER ROLE $DB_USER LOGIN PASSWORD '$password'"
    fi
    if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
        log "creating database $DB_NAME"
        runuser -u postgres -- psql -q -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
        rm -f "$MIGRATED_MARKER"
    fi
}

install_nautobot() {
    if [ -x "$SERVER" ] && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('nautobot') != '$NAUTOBOT_VERSION')" 2>/dev/null; then
        log "nautobot $NAUTOBOT_VERSION already installed in $VENV"
        return
    fi
    local python="${NAUTOBOT_HARNESS_PYTHON:-$(command -v python3 || true)}"
    [ -n "$python" ] || fail "python3 not found; set NAUTOBOT_HARNESS_PYTHON to a Python ≥ 3.10"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        fail "$python is older than 3.10; Nautobot $NAUTOBOT_VERSION needs Python ≥ 3.10"
    log "installing nautobot $NAUTOBOT_VERSION into $VENV (≈ 560 MB)"
    [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "nautobot==$NAUTOBOT_VERSION" ||
        fail "pip could not install nautobot==$NAUTOBOT_VERSION"
}

init_config() {
    if [ -s "$NAUTOBOT_CONFIG" ]; then
        log "configuration $NAUTOBOT_CONFIG exists"
        return
    fi
    log "writing $NAUTOBOT_CONFIG"
    local flags=()
    if "$SERVER" init --help 2>/dev/null | grep -q -- '--disable-installation-metrics'; then
        flags+=(--disable-installation-metrics)
    fi
    "$SERVER" init "${flags[@]}" "$NAUTOBOT_CONFIG" </dev/null >/dev/null
    [ -s "$NAUTOBOT_CONFIG" ] || fail "nautobot-server init did not write $NAUTOBOT_CONFIG"
}

# Nautobot publishes every create/update/delete of IPAM objects to Redis Pub/Sub (its event
# broker), which the console's live sync subscribes to. Idempotent: the block is written once.
configure_events() {
    if grep -q 'FABRIC_CONSOLE_EVENT_BROKERS' "$NAUTOBOT_CONFIG"; then
        log "event broker already configured"
        return
    fi
    log "enabling the Redis event broker in $NAUTOBOT_CONFIG"
    cat >>"$NAUTOBOT_CONFIG" <<'PY'

# FABRIC_CONSOLE_EVENT_BROKERS: changes to IPAM objects are published to Redis Pub/Sub
# (topics nautobot.<action>.ipam.<model>) for Fabric Console's live sync.
EVENT_BROKERS = {
    "FabricConsoleRedis": {
        "CLASS": "nautobot.core.events.RedisEventBroker",
        "OPTIONS": {
            "url": f"redis://{os.getenv('NAUTOBOT_REDIS_HOST', '127.0.0.1')}:{os.getenv('NAUTOBOT_REDIS_PORT', '6379')}/2",
        },
        "TOPICS": {"INCLUDE": ["nautobot.*.ipam.*"]},
    }
}
PY
}

schema_present() {
    PGPASSWORD="$NAUTOBOT_DB_PASSWORD" psql -h 127.0.0.1 -U "$DB_USER" -d "$DB_NAME" -tAc \
        "SELECT 1 FROM django_migrations WHERE app='ipam' LIMIT 1" 2>/dev/null | grep -q 1
}

migrate() {
    if [ -f "$MIGRATED_MARKER" ] && schema_present; then
        log "schema already migrated (marker $MIGRATED_MARKER)"
        return
    fi
    log "migrating the database schema (≈ 9 min on 2 cores; kept for later runs)"
    "$SERVER" migrate --no-input >"$STATE_DIR/migrate.log" 2>&1 ||
        fail "nautobot-server migrate failed; see $STATE_DIR/migrate.log"
    touch "$MIGRATED_MARKER"
}

create_users() {
    local admin_token readonly_token admin_password
    admin_token="$(secret_file admin.token)"
    readonly_token="$(secret_file readonly.token)"
    admin_password="$(secret_file admin.password)"
    log "ensuring users $ADMIN_USER (superuser) and $READONLY_USER (view only) and their tokens"
    HARNESS_ADMIN_USER="$ADMIN_USER" HARNESS_READONLY_USER="$READONLY_USER" \
        HARNESS_ADMIN_TOKEN="$admin_token" HARNESS_READONLY_TOKEN="$readonly_token" \
        HARNESS_ADMIN_PASSWORD="$admin_password" \
        "$SERVER" shell --command "$(cat <<'PY'
import os
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from nautobot.users.models import ObjectPermission, Token

User = get_user_model()

admin, _ = User.objects.get_or_create(username=os.environ["HARNESS_ADMIN_USER"])
admin.is_superuser = True
admin.is_staff = True
admin.is_active = True
admin.set_password(os.environ["HARNESS_ADMIN_PASSWORD"])
admin.save()

readonly, _ = User.objects.get_or_create(username=os.environ["HARNESS_READONLY_USER"])
readonly.is_superuser = False
readonly.is_staff = False
readonly.is_active = True
readonly.set_unusable_password()
readonly.save()

def ensure_token(user, key, write_enabled):
    token = Token.objects.filter(key=key).first()
    if token is None:
        token = Token(key=key, user=user)
    token.user = user
    token.write_enabled = write_enabled
    token.description = "fabric console test harness"
    token.save()

ensure_token(admin, os.environ["HARNESS_ADMIN_TOKEN"], True)
# Writes are refused by the missing object permissions, not by the token flag, as for a real
# operator account that was granted view only.
ensure_token(readonly, os.environ["HARNESS_READONLY_TOKEN"], True)

permission, _ = ObjectPermission.objects.get_or_create(
    name="fabric-console-readonly-view", defaults={"actions": ["view"]}
)
permission.actions = ["view"]
permission.enabled = True
permission.save()
permission.object_types.set(
    [
        ContentType.objects.get(app_label=app, model=model)
        for app, model in [
            ("ipam", "prefix"),
            ("ipam", "namespace"),
            ("ipam", "ipaddressrange"),
            ("extras", "customfield"),
            ("extras", "status"),
        ]
    ]
)
permission.users.set([readonly])
print("users and tokens ready")
PY
)" >"$STATE_DIR/users.log" 2>&1 || fail "could not create users and tokens; see $STATE_DIR/users.log"
}

server_pid() {
    [ -s "$PID_FILE" ] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

api_status_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -H "Authorization: Token $(secret_file admin.token)" \
        -H 'Accept: application/json; version=2.4' \
        "http://127.0.0.1:$PORT/api/status/" || true
}

serve() {
    if server_pid >/dev/null && [ "$(api_status_code)" = "200" ]; then
        log "nautobot already serving on http://127.0.0.1:$PORT (pid $(server_pid))"
        return
    fi
    if pid="$(server_pid)"; then
        log "stopping unresponsive nautobot pid $pid"
        kill "$pid" 2>/dev/null || true
        sleep 2
    fi
    log "starting nautobot on http://127.0.0.1:$PORT (log $LOG_FILE)"
    setsid "$SERVER" runserver "127.0.0.1:$PORT" --noreload </dev/null >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    local waited=0 code
    while true; do
        code="$(api_status_code)"
        [ "$code" = "200" ] && break
        server_pid >/dev/null || fail "nautobot exited during start-up; see $LOG_FILE"
        waited=$((waited + 1))
        [ "$waited" -lt "$READY_TIMEOUT" ] ||
            fail "nautobot did not answer /api/status/ within $READY_TIMEOUT s (last HTTP code $code); see $LOG_FILE"
        sleep 1
    done
    log "nautobot ready on http://127.0.0.1:$PORT"
}

cmd_start() {
    require_root
    mkdir -p "$STATE_DIR"
    chmod 700 "$STATE_DIR"
    local started
    started=$(date +%s)
    timed install-services install_services
    timed start-postgres start_postgres
    timed start-redis start_redis
    timed create-database create_database
    timed install-nautobot install_nautobot
    nautobot_env
    timed init-config init_config
    timed configure-events configure_events
    timed migrate migrate
    timed users-and-tokens create_users
    timed serve serve
    log "start finished in $(($(date +%s) - started)) s; run: eval \"\$(bash $0 env)\""
}

cmd_stop() {
    local pid
    if pid="$(server_pid)"; then
        log "stopping nautobot pid $pid"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    else
        log "nautobot is not running"
    fi
    rm -f "$PID_FILE"
    if [ -s "$REDIS_PID_FILE" ] && kill -0 "$(cat "$REDIS_PID_FILE")" 2>/dev/null; then
        local redis_pid
        redis_pid="$(cat "$REDIS_PID_FILE")"
        log "stopping redis pid $redis_pid"
        kill "$redis_pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$REDIS_PID_FILE"
    log "PostgreSQL is left running; the database is kept for the next start"
}

cmd_status() {
    local pid
    if pid="$(server_pid)"; then
        echo "nautobot: running (pid $pid) on http://127.0.0.1:$PORT, /api/status/ HTTP $(api_status_code)"
    else
        echo "nautobot: not running"
    fi
    if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
        echo "redis: answering on 127.0.0.1:$REDIS_PORT"
    else
        echo "redis: not answering on 127.0.0.1:$REDIS_PORT"
    fi
    if [ -f "$MIGRATED_MARKER" ]; then echo "schema: migrated ($MIGRATED_MARKER)"; else echo "schema: not migrated"; fi
    server_pid >/dev/null
}

cmd_env() {
    [ -s "$STATE_DIR/admin.token" ] && [ -s "$STATE_DIR/readonly.token" ] ||
        fail "no tokens in $STATE_DIR; run: bash $0 start"
    echo "export NAUTOBOT_URL=http://127.0.0.1:$PORT"
    echo "export NAUTOBOT_TOKEN=$(cat "$STATE_DIR/admin.token")"
    echo "export NAUTOBOT_READONLY_TOKEN=$(cat "$STATE_DIR/readonly.token")"
    echo "export NAUTOBOT_EVENTS=redis://127.0.0.1:$REDIS_PORT/2"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
