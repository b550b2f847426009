#!/usr/bin/env bash
# Local NetBox for Fabric Console's interop tests and benchmarks (run as root on Debian).
#
#   scripts/netbox.sh start    install (once), migrate (once, cached), create users/tokens, serve on 127.0.0.1
#   scripts/netbox.sh stop     stop NetBox (gunicorn) and the harness's Redis
#   scripts/netbox.sh status   say what is running
#   scripts/netbox.sh env      print `export NETBOX_URL=… NETBOX_TOKEN=… NETBOX_TOKEN_V1=… NETBOX_READONLY_TOKEN=…`
#
# Settings (environment):
#   NETBOX_HARNESS_DIR        state directory (python, venv, instance root, tokens, logs)
#                             default /var/lib/fabric-console-netbox
#   NETBOX_HARNESS_PORT       HTTP port of NetBox on 127.0.0.1           default 48994
#   NETBOX_HARNESS_REDIS_PORT Redis port on 127.0.0.1                    default 48995
#   NETBOX_HARNESS_PYTHON     Python ≥ 3.12 used to create the venv      default: one found on PATH or
#                             in pyenv, else CPython built once from Debian's source package
#   NETBOX_HARNESS_TIMEOUT    seconds to wait for the API to answer      default 120
#
# Safe to re-run: every step checks whether it is already done. The migrated database is dumped
# once (pg_dump, keyed by the NetBox version) and restored into a fresh database later, which
# saves the ≈ 7 minute migration. PostgreSQL is the one Nautobot's harness uses; NetBox gets a
# database and a Redis of its own. Debian packages are installed with --no-upgrade only: an
# upgrade of PostgreSQL under the running server breaks it.
set -euo pipefail

NETBOX_VERSION="4.7.3"
STATE_DIR="${NETBOX_HARNESS_DIR:-/var/lib/fabric-console-netbox}"
PORT="${NETBOX_HARNESS_PORT:-48994}"
REDIS_PORT="${NETBOX_HARNESS_REDIS_PORT:-48995}"
READY_TIMEOUT="${NETBOX_HARNESS_TIMEOUT:-120}"
DB_NAME="fabric_console_netbox"
DB_USER="fabric_console_netbox"
VENV="$STATE_DIR/venv"
NETBOX="$VENV/bin/netbox"
ROOT="$STATE_DIR/root"
CONFIG="$ROOT/conf/configuration.py"
PID_FILE="$STATE_DIR/gunicorn.pid"
LOG_FILE="$STATE_DIR/gunicorn.log"
REDIS_PID_FILE="$STATE_DIR/redis.pid"
DUMP="$STATE_DIR/migrated-$NETBOX_VERSION.dump"
MIGRATED_MARKER="$STATE_DIR/migrated-$NETBOX_VERSION"
BUILT_PYTHON="$STATE_DIR/python"
ADMIN_USER="fabric-console-admin"
READONLY_USER="fabric-console-readonly"

log() { printf '[netbox-harness %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { printf '[netbox-harness] error: %s\n' "$*" >&2; exit 1; }

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

# A random hex secret of `bytes` bytes kept in the state directory, readable by root only.
secret_file() {
    local file="$STATE_DIR/$1" bytes="${2:-20}"
    if [ ! -s "$file" ]; then
        (umask 077 && head -c "$bytes" /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
    fi
    cat "$file"
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade "$@" >/dev/null ||
        { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade "$@" >/dev/null; } ||
        fail "apt-get could not install $*"
}

install_services() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v pg_ctlcluster >/dev/null && command -v psql >/dev/null || missing+=(postgresql)
    command -v pg_dump >/dev/null || missing+=(postgresql-client)
    # psycopg's C extension builds against libpq.
    dpkg -s libpq-dev >/dev/null 2>&1 || missing+=(libpq-dev)
    if [ "${#missing[@]}" -eq 0 ]; then
        log "postgresql, redis-server and libpq-dev already installed"
        return
    fi
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
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

psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q "$@"; }

create_database() {
    local password
    password="$(secret_file db.password)"
    if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'" | grep -q 1; then
        log "creating database role $DB_USER"
        psql_admin -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$password'"
    else
        psql_admin -c "ALTER ROLE $DB_USER LOGIN PASSWORD '$password'"
    fi
    if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
        log "creating database $DB_NAME"
        psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
        rm -f "$MIGRATED_MARKER"
    fi
}

# A Python ≥ 3.12: the one asked for, one on PATH or in pyenv, one built here before, or one
# built now from Debian's own source package (trixie's python3.13; ≈ 3.5 min on 2 cores).
find_python() {
    local candidates=()
    [ -n "${NETBOX_HARNESS_PYTHON:-}" ] && candidates+=("$NETBOX_HARNESS_PYTHON")
    candidates+=("$BUILT_PYTHON/bin/python3.13")
    local c
    for c in python3.13 python3.12; do
        command -v "$c" >/dev/null && candidates+=("$(command -v "$c")")
    done
    if command -v pyenv >/dev/null; then
        local root
        root="$(pyenv root)"
        for c in "$root"/versions/3.1[2-9]*/bin/python3; do
            [ -x "$c" ] && candidates+=("$c")
        done
    fi
    for c in "${candidates[@]}"; do
        if [ -x "$c" ] && "$c" -c 'import sys, ssl, sqlite3, ctypes; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            echo "$c"
            return
        fi
    done
    return 1
}

build_python() {
    log "no Python ≥ 3.12 found; building CPython from Debian trixie's python3.13 source package into $BUILT_PYTHON"
    apt_install build-essential libssl-dev zlib1g-dev libffi-dev libsqlite3-dev libbz2-dev \
        liblzma-dev libreadline-dev uuid-dev dpkg-dev
    local src="$STATE_DIR/python-src" list=/etc/apt/sources.list.d/fabric-console-trixie-src.list
    rm -rf "$src"
    mkdir -p "$src"
    echo "deb-src http://deb.debian.org/debian trixie main" >"$list"
    apt-get update >/dev/null 2>&1 || true
    (cd "$src" && apt-get source --download-only python3.13 >/dev/null) || {
        rm -f "$list"
        apt-get update >/dev/null 2>&1 || true
        fail "could not download the python3.13 source package; set NETBOX_HARNESS_PYTHON to a Python ≥ 3.12"
    }
    rm -f "$list"
    apt-get update >/dev/null 2>&1 || true
    local tarball
    tarball="$(ls "$src"/python3.13_*.orig.tar.* | head -1)"
    tar -xf "$tarball" -C "$src"
    local dir
    dir="$(find "$src" -maxdepth 1 -type d -name 'Python-3.13*' | head -1)"
    [ -n "$dir" ] || fail "the python3.13 source package held no Python-3.13 tree"
    (cd "$dir" && ./configure --prefix="$BUILT_PYTHON" --with-ensurepip=install >"$STATE_DIR/python-build.log" 2>&1 &&
        make -j"$(nproc)" >>"$STATE_DIR/python-build.log" 2>&1 &&
        make altinstall >>"$STATE_DIR/python-build.log" 2>&1) ||
        fail "building Python failed; see $STATE_DIR/python-build.log"
    rm -rf "$src"
}

install_netbox() {
    if [ -x "$NETBOX" ] && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('netbox') != '$NETBOX_VERSION')" 2>/dev/null; then
        log "netbox $NETBOX_VERSION already installed in $VENV"
        return
    fi
    local python
    python="$(find_python)" || {
        build_python
        python="$(find_python)" || fail "no Python ≥ 3.12 after building one"
    }
    log "installing netbox $NETBOX_VERSION into $VENV with $python (≈ 550 MB)"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "netbox==$NETBOX_VERSION" ||
        fail "pip could not install netbox==$NETBOX_VERSION"
}

configure() {
    mkdir -p "$ROOT"
    export NETBOX_ROOT="$ROOT"
    if [ ! -s "$CONFIG" ]; then
        "$NETBOX" setup --target "$ROOT" >/dev/null || fail "netbox setup failed"
    fi
    mkdir -p "$ROOT"/{media,reports,scripts,static}
    if grep -q 'FABRIC_CONSOLE_HARNESS' "$CONFIG"; then
        log "configuration $CONFIG already written"
        return
    fi
    log "writing the harness settings into $CONFIG"
    local secret pepper password
    secret="$(secret_file secret.key 40)"
    pepper="$(secret_file token.pepper 40)"
    password="$(secret_file db.password)"
    cat >>"$CONFIG" <<PY

# FABRIC_CONSOLE_HARNESS: a local NetBox for Fabric Console's tests.
ALLOWED_HOSTS = ["*"]
DATABASES = {
    "default": {
        "NAME": "$DB_NAME",
        "USER": "$DB_USER",
        "PASSWORD": "$password",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "CONN_MAX_AGE": 300,
    }
}
REDIS = {
    "tasks": {"HOST": "127.0.0.1", "PORT": $REDIS_PORT, "DATABASE": 0, "SSL": False},
    "caching": {"HOST": "127.0.0.1", "PORT": $REDIS_PORT, "DATABASE": 1, "SSL": False},
}
SECRET_KEY = "$secret"
API_TOKEN_PEPPERS = {1: "$pepper"}
CENSUS_REPORTING_ENABLED = False
PY
}

schema_present() {
    PGPASSWORD="$(secret_file db.password)" psql -h 127.0.0.1 -U "$DB_USER" -d "$DB_NAME" -tAc \
        "SELECT 1 FROM django_migrations WHERE app='ipam' LIMIT 1" 2>/dev/null | grep -q 1
}

migrate() {
    if [ -f "$MIGRATED_MARKER" ] && schema_present; then
        log "schema already migrated (marker $MIGRATED_MARKER)"
        return
    fi
    if [ -s "$DUMP" ] && ! schema_present; then
        log "restoring the migrated database from $DUMP"
        if PGPASSWORD="$(secret_file db.password)" pg_restore -h 127.0.0.1 -U "$DB_USER" -d "$DB_NAME" \
            --no-owner "$DUMP" >"$STATE_DIR/restore.log" 2>&1; then
            touch "$MIGRATED_MARKER"
            return
        fi
        log "restore failed (see $STATE_DIR/restore.log); migrating instead"
        psql_admin -c "DROP DATABASE IF EXISTS $DB_NAME" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
    fi
    log "migrating the database schema (≈ 7 min on 2 cores; dumped for later runs)"
    "$NETBOX" upgrade --no-input >"$STATE_DIR/migrate.log" 2>&1 ||
        fail "netbox upgrade failed; see $STATE_DIR/migrate.log"
    PGPASSWORD="$(secret_file db.password)" pg_dump -h 127.0.0.1 -U "$DB_USER" -Fc "$DB_NAME" >"$DUMP.tmp" &&
        mv "$DUMP.tmp" "$DUMP"
    touch "$MIGRATED_MARKER"
}

# Tokens with fixed values, so tests can be pointed at them: a v2 token (`nbt_<key>.<secret>`)
# and a v1 token for the administrator, a v2 token for a view-only user.
create_users() {
    local admin_password
    admin_password="$(secret_file admin.password)"
    secret_file admin.key 6 >/dev/null
    secret_file readonly.key 6 >/dev/null
    log "ensuring users $ADMIN_USER (superuser) and $READONLY_USER (view only) and their tokens"
    HARNESS_ADMIN_USER="$ADMIN_USER" HARNESS_READONLY_USER="$READONLY_USER" \
        HARNESS_ADMIN_PASSWORD="$admin_password" \
        HARNESS_ADMIN_KEY="$(secret_file admin.key 6)" HARNESS_ADMIN_SECRET="$(secret_file admin.secret 20)" \
        HARNESS_ADMIN_V1="$(secret_file admin.v1 20)" \
        HARNESS_READONLY_KEY="$(secret_file readonly.key 6)" HARNESS_READONLY_SECRET="$(secret_file readonly.secret 20)" \
        "$NETBOX" shell --command "$(cat <<'PY'
import os
from django.contrib.auth import get_user_model
from core.models import ObjectType
from users.models import ObjectPermission, Token

User = get_user_model()
e = os.environ

admin, _ = User.objects.get_or_create(username=e["HARNESS_ADMIN_USER"])
admin.is_superuser = True
admin.is_staff = True
admin.is_active = True
admin.set_password(e["HARNESS_ADMIN_PASSWORD"])
admin.save()

readonly, _ = User.objects.get_or_create(username=e["HARNESS_READONLY_USER"])
readonly.is_superuser = False
readonly.is_active = True
readonly.set_unusable_password()
readonly.save()

def ensure_v2(user, key, secret):
    Token.objects.filter(key=key).delete()
    Token(user=user, key=key, token=secret, write_enabled=True,
          description="fabric console test harness").save()

def ensure_v1(user, secret):
    for t in Token.objects.filter(user=user, version=1):
        t.delete()
    Token(user=user, version=1, token=secret, write_enabled=True,
          description="fabric console test harness (v1)").save()

ensure_v2(admin, e["HARNESS_ADMIN_KEY"], e["HARNESS_ADMIN_SECRET"])
ensure_v1(admin, e["HARNESS_ADMIN_V1"])
# Writes are refused by the missing object permissions, as for a real operator account that was
# granted view only.
ensure_v2(readonly, e["HARNESS_READONLY_KEY"], e["HARNESS_READONLY_SECRET"])

permission, _ = ObjectPermission.objects.get_or_create(
    name="fabric-console-readonly-view", defaults={"actions": ["view"]}
)
permission.actions = ["view"]
permission.enabled = True
permission.save()
permission.object_types.set(
    [
        ObjectType.objects.get(app_label=app, model=model)
        for app, model in [
            ("ipam", "vrf"),
            ("ipam", "prefix"),
            ("ipam", "iprange"),
            ("ipam", "ipaddress"),
            ("extras", "customfield"),
            ("core", "objectchange"),
        ]
    ]
)
permission.users.set([readonly])
print("users and tokens ready")
PY
)" >"$STATE_DIR/users.log" 2>&1 || fail "could not create users and tokens; see $STATE_DIR/users.log"
}

admin_token() { echo "nbt_$(cat "$STATE_DIR/admin.key").$(cat "$STATE_DIR/admin.secret")"; }

server_pid() {
    [ -s "$PID_FILE" ] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

api_status_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -H "Authorization: Bearer $(admin_token)" -H 'Accept: application/json' \
        "http://127.0.0.1:$PORT/api/status/" || true
}

serve() {
    if server_pid >/dev/null && [ "$(api_status_code)" = "200" ]; then
        log "netbox already serving on http://127.0.0.1:$PORT (pid $(server_pid))"
        return
    fi
    if pid="$(server_pid)"; then
        log "stopping unresponsive netbox pid $pid"
        kill "$pid" 2>/dev/null || true
        sleep 2
    fi
    log "starting netbox (gunicorn) on http://127.0.0.1:$PORT (log $LOG_FILE)"
    (cd "$ROOT" && NETBOX_ROOT="$ROOT" "$VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers 2 --threads 2 \
        --timeout 300 --daemon --pid "$PID_FILE" --error-logfile "$LOG_FILE" netbox.wsgi)
    local waited=0 code
    while true; do
        code="$(api_status_code)"
        [ "$code" = "200" ] && break
        waited=$((waited + 1))
        [ "$waited" -lt "$READY_TIMEOUT" ] ||
            fail "netbox did not answer /api/status/ within $READY_TIMEOUT s (last HTTP code $code); see $LOG_FILE"
        sleep 1
    done
    log "netbox ready on http://127.0.0.1:$PORT"
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
    timed install-netbox install_netbox
    timed configure configure
    export NETBOX_ROOT="$ROOT"
    timed migrate migrate
    timed users-and-tokens create_users
    timed serve serve
    log "start finished in $(($(date +%s) - started)) s; run: eval \"\$(bash $0 env)\""
}

cmd_stop() {
    local pid
    if pid="$(server_pid)"; then
        log "stopping netbox pid $pid"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    else
        log "netbox is not running"
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
        echo "netbox: running (pid $pid) on http://127.0.0.1:$PORT, /api/status/ HTTP $(api_status_code)"
    else
        echo "netbox: not running"
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
    [ -s "$STATE_DIR/admin.secret" ] && [ -s "$STATE_DIR/readonly.secret" ] ||
        fail "no tokens in $STATE_DIR; run: bash $0 start"
    echo "export NETBOX_URL=http://127.0.0.1:$PORT"
    echo "export NETBOX_TOKEN=$(admin_token)"
    echo "export NETBOX_TOKEN_V1=$(cat "$STATE_DIR/admin.v1")"
    echo "export NETBOX_READONLY_TOKEN=nbt_$(cat "$STATE_DIR/readonly.key").$(cat "$STATE_DIR/readonly.secret")"
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
