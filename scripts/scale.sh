#!/usr/bin/env bash
# Measures how `fabric-console sync` scales with the size of the fabric, against a standalone
# built-in IPAM server, and prints a markdown table: wall time and peak RSS of each step.
#
#   BIN=target/release/fabric-console SIZE=100000 scripts/scale.sh
#
# Steps (each its own process, timed with /usr/bin/time):
#   demo --size $SIZE; run-as add; service add;
#   first sync (creates everything in IPAM); second sync (reads back its own writes);
#   three no-op syncs; one subnet's VLAN changed on the server through the REST API, then sync;
#   one change in the console (there is no CLI edit command: the nearest is export -> edit one
#   pool's DNS suffix -> import, which replaces the whole fabric, then sync); sync --dry-run with
#   nothing to do. Then, optionally (SERVER_RATE=0 skips it), the server's own bulk-create rate:
#   one POST /batch of up to 10,000 subnet creations.
#
# The notes column gives the CLI's counts, the engine's own time ("sync finished ... ms=") and the
# slowest stage of the progress the CLI prints (timed from the moment each line appears).
# Everything lives in a temporary directory that is removed on exit, with the server stopped.
# KEEP=1 keeps the directory (its path is printed) for a look at the logs.
set -euo pipefail

BIN="${BIN:-target/release/fabric-console}"
SIZE="${SIZE:-100000}"
SERVER_RATE="${SERVER_RATE:-1}"
export FABRIC_CONSOLE_SECRET_BACKEND="${FABRIC_CONSOLE_SECRET_BACKEND:-file}"

die() {
    echo "scale.sh: $*" >&2
    exit 1
}

[[ "$SIZE" =~ ^[0-9]+$ ]] || die "SIZE must be a number, got '$SIZE'"
[ -x "$BIN" ] || die "no executable at BIN=$BIN (build it: cargo build --release --bin fabric-console)"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

for tool in curl jq python3; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool on PATH"
done
if [ ! -x /usr/bin/time ]; then
    echo "scale.sh: installing GNU time (Debian package 'time')" >&2
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-upgrade time >&2 ||
        die "could not install the 'time' package; install it and run again"
fi

TMP="$(mktemp -d -t fabric-scale.XXXXXX)"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "scale.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CONSOLE=("$BIN" --data-dir "$TMP/console")
STEP_N=0

# Prefixes each line of standard input with the seconds since the epoch (microseconds).
stamp() {
    local line
    while IFS= read -r line; do
        printf '%s %s\n' "$EPOCHREALTIME" "$line"
    done
}

# measure LABEL CMD...: runs CMD under /usr/bin/time (standard output to $OUT, standard error
# stamped line by line to $LOG) and adds a table row; stops the script with the output's tail if
# CMD fails. `note TEXT` then sets the row's notes.
LABELS=()
WALLS=()
RSSES=()
NOTES=()
measure() {
    local label="$1"
    shift
    STEP_N=$((STEP_N + 1))
    LOG="$TMP/step$STEP_N.err"
    OUT="$TMP/step$STEP_N.out"
    local tf="$TMP/step$STEP_N.time" rc
    set +e
    /usr/bin/time -f '%e %M' -o "$tf" "$@" 2>&1 >"$OUT" | sed -u 's/\x1b\[[0-9;]*m//g' | stamp >"$LOG"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "scale.sh: step '$label' failed (exit $rc): $*" >&2
        tail -n 20 "$OUT" >&2
        tail -n 20 "$LOG" | cut -d' ' -f2- >&2
        exit 1
    fi
    local wall rss
    read -r wall rss <"$tf"
    LABELS+=("$label")
    WALLS+=("$wall s")
    RSSES+=("$(fmt_kb "$rss")")
    NOTES+=("")
}
note() { NOTES[-1]="$1"; }

fmt_kb() { awk -v k="$1" 'BEGIN { if (k >= 1048576) printf "%.2f GB", k/1048576; else printf "%.0f MB", k/1024 }'; }

# Notes for a sync step: its counts, the engine's time, the slowest stage of the progress.
sync_notes() {
    local counts ms slow
    counts=$(sed -n 's/.*— IPAM \([0-9]*\) created, \([0-9]*\) updated, \([0-9]*\) deleted; console \([0-9]*\) created, \([0-9]*\) updated, \([0-9]*\) deleted; \([0-9]*\) conflict.*, \([0-9]*\) failed.*/\1 \2 \3 \4 \5 \6 \7 \8/p' "$OUT" | head -n1 |
        awk '{
            n = split("IPAM created,IPAM updated,IPAM deleted,console created,console updated,console deleted,conflicts,failed", name, ",")
            out = ""; for (i = 1; i <= n; i++) if ($i > 0) out = out (out == "" ? "" : ", ") name[i] " " $i
            print (out == "" ? "no changes" : out)
        }')
    ms=$(sed -n 's/.*sync finished.* ms[^0-9]*\([0-9][0-9]*\).*/\1/p' "$LOG" | head -n1)
    slow=$(slowest_stage "$LOG")
    printf '%s' "${counts:-?}; engine ${ms:-?} ms; slowest stage: ${slow}"
}

# The stage whose progress lines ("  Stage" or "  Stage: n/m") lasted longest, with its seconds.
slowest_stage() {
    awk '
        { t = $1; line = substr($0, index($0, " ") + 1) }
        line ~ /^  [^ ]/ {
            sub(/^  /, "", line); sub(/: [0-9]+\/[0-9]+$/, "", line)
            if (cur != "") dur[cur] += t - start
            cur = line; start = t; next
        }
        cur != "" { dur[cur] += t - start; cur = ""; }
        END {
            best = ""; for (s in dur) if (best == "" || dur[s] > dur[best]) best = s
            if (best == "") print "?"; else printf "%s %.2f s", best, dur[best]
        }' "$1"
}

# --- 1. the standalone server -------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

PORT=""
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    rm -rf "$TMP/ipam"
    "$BIN" ipam-server --listen "127.0.0.1:$PORT" --data "$TMP/ipam" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    up=0
    for _ in $(seq 1 600); do # up to 30 s
        if curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/v1/status"; then
            up=1
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ "$up" = 1 ] && break
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        tail -n 20 "$TMP/server.log" >&2
        die "the IPAM server did not answer on 127.0.0.1:$PORT within 30 s"
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    grep -q "Address already in use" "$TMP/server.log" || {
        tail -n 20 "$TMP/server.log" >&2
        die "the IPAM server exited on start"
    }
done
[ -n "$SERVER_PID" ] || die "no free port found for the IPAM server after 5 tries"
[ -s "$TMP/ipam/admin-token" ] || die "the server did not write $TMP/ipam/admin-token"
TOKEN=$(tr -d '[:space:]' <"$TMP/ipam/admin-token")
API="http://127.0.0.1:$PORT/api/v1"
AUTH=(-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json")

# api METHOD PATH [BODY]: prints the answer; dies naming the status on anything but 2xx.
api() {
    local method="$1" path="$2" body="${3:-}" code
    local args=(-s -o "$TMP/api.out" -w '%{http_code}' "${AUTH[@]}" -X "$method")
    if [ -n "$body" ]; then args+=(--data-binary "$body"); fi
    code=$(curl "${args[@]}" "$API/$path") || die "$method $path: no answer from the server"
    case "$code" in
    2??) cat "$TMP/api.out" ;;
    *) die "$method $path answered $code: $(head -c 500 "$TMP/api.out")" ;;
    esac
}

# --- 2. the console side --------------------------------------------------------------------------
measure "demo --size $SIZE" "${CONSOLE[@]}" demo --size "$SIZE"
note "$(sed -n 's/.*seed [0-9]*): //p' "$OUT" | head -n1 | sed 's/\.$//')"

RUN_AS="Scale Bench Token" # the demo's "IPAM Service Account" exists already, without a secret
measure "run-as add" "${CONSOLE[@]}" run-as add --name "$RUN_AS" --user svc-scale \
    --secret-file "$TMP/ipam/admin-token"
measure "service add" "${CONSOLE[@]}" service add --name ipam1 --model "Fabric Console IPAM Server" \
    --connection "http://127.0.0.1:$PORT" --run-as "$RUN_AS" --all-host-groups

# --- 3. the syncs -------------------------------------------------------------------------------
sync_step() {
    local label="$1"
    shift
    measure "$label" "${CONSOLE[@]}" sync "$@"
    note "$(sync_notes)"
}

sync_step "first sync"
CREATED=$(sed -n 's/.*IPAM \([0-9]*\) created.*/\1/p' "$OUT" | head -n1)
[ -n "$CREATED" ] || die "could not read 'IPAM N created' from the first sync's output"
sync_step "second sync (reads back its own writes)"
for i in 1 2 3; do
    sync_step "no-op sync #$i"
done

# One subnet's VLAN changed on the server: the first subnet with a VLAN (not 0, not network
# virtualization), moved to the next VLAN number.
SUBNET=$(api GET "subnets?limit=1000" | jq -c '[.items[] | select(.vlan != null and .vlan > 0)][0] // empty')
[ -n "$SUBNET" ] || die "no subnet with a VLAN among the server's first 1000 subnets"
SUBNET_ID=$(jq -r .id <<<"$SUBNET")
OLD_VLAN=$(jq -r .vlan <<<"$SUBNET")
NEW_VLAN=$((OLD_VLAN % 4094 + 1))
api PATCH "subnets/$SUBNET_ID" "{\"vlan\": $NEW_VLAN}" >/dev/null
sync_step "sync after one subnet's VLAN changed on the server ($OLD_VLAN → $NEW_VLAN)"

# One change in the console: there is no CLI command that edits one object. The cheapest way
# through the CLI is export, edit one pool's DNS suffix, import (a whole-fabric replace that keeps
# the ids, so the next sync sees exactly one change).
LABELS+=("one change in the console")
WALLS+=("n/a")
RSSES+=("n/a")
NOTES+=("no CLI command edits one object; nearest: the next three rows")
measure "… export" "${CONSOLE[@]}" export "$TMP/fabric.json"
jq '(.fabric.ip_pools | keys[0]) as $k | .fabric.ip_pools[$k].dns_suffix = "scale-test.contoso.com"' \
    "$TMP/fabric.json" >"$TMP/fabric-edited.json" || die "could not edit the export with jq"
measure "… import (edited: one pool's DNS suffix)" "${CONSOLE[@]}" import "$TMP/fabric-edited.json"
sync_step "… sync after the import"

measure "sync --dry-run (nothing to do)" "${CONSOLE[@]}" sync --dry-run
note "$(grep -v '^Plan for' "$OUT" | sed 's/^ *//' | paste -sd';' -)"

# --- optional: the server's own bulk-create rate -----------------------------------------------
RATE_LINE=""
if [ "$SERVER_RATE" = 1 ]; then
    N=$((SIZE < 10000 ? SIZE : 10000))
    ((N > 0)) || N=1
    api POST address-spaces '{"id": "scale-bench-space", "name": "Scale-Bench", "kind": "provider",
        "vmm_logical_network": "Scale-Bench"}' >/dev/null
    python3 - "$N" >"$TMP/batch.json" <<'EOF'
import json, sys
n = int(sys.argv[1])
ops = [{"op": "create_subnet", "object": {
    "id": f"scale-bench-{i}", "address_space": "scale-bench-space",
    "network": f"10.{i // 256}.{i % 256}.0/24",
    "name": f"scale-bench-{i}", "network_type": "Provider",
    "vmm_logical_network": "Scale-Bench", "network_site": "Scale-Bench_0", "vlan": 1}}
    for i in range(n)]
json.dump({"ops": ops}, sys.stdout)
EOF
    t0=$EPOCHREALTIME
    api POST batch "@$TMP/batch.json" >"$TMP/batch.out"
    t1=$EPOCHREALTIME
    jq -e '.applied != false' "$TMP/batch.out" >/dev/null ||
        die "the bulk-create batch was refused: $(head -c 500 "$TMP/batch.out")"
    RATE_LINE=$(awk -v n="$N" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "Server bulk create: one POST /batch of %d subnets in %.2f s = %.0f objects/s", n, b - a, n / (b - a) }')
fi
SERVER_HWM=$(awk '/^VmHWM/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || true)

# --- the table ----------------------------------------------------------------------------------
echo
echo "Fabric Console scale, SIZE=$SIZE ($CREATED IPAM objects created by the first sync), $(basename "$BIN") $("$BIN" --version 2>/dev/null | awk '{ print $NF }'), $(nproc) CPUs"
echo
echo "| step | wall | peak RSS | notes |"
echo "|---|---:|---:|---|"
for i in "${!LABELS[@]}"; do
    echo "| ${LABELS[$i]} | ${WALLS[$i]} | ${RSSES[$i]} | ${NOTES[$i]} |"
done
echo
[ -z "$RATE_LINE" ] || echo "$RATE_LINE"
[ -z "$SERVER_HWM" ] || echo "IPAM server peak RSS: $(fmt_kb "$SERVER_HWM")"
