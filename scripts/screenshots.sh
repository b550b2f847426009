#!/usr/bin/env bash
# Runs the real console window under Xvfb on the demo fabric, walks the Add Network Service
# wizard with xdotool and saves PNGs to assets/screenshots/.
# Needs: xvfb, x11-apps (xwd), imagemagick (convert), xdotool.
set -euo pipefail

cd "$(dirname "$0")/.."
DISPLAY_NUMBER="${DISPLAY_NUMBER:-57}"
OUT="${OUT:-assets/screenshots}"
BIN="${BIN:-target/debug/fabric-console}"
WIDTH=1280
HEIGHT=800

[ -x "$BIN" ] || cargo build --bin fabric-console
mkdir -p "$OUT"
DATA="$(mktemp -d)"
LOG="$DATA/console.log"

Xvfb ":$DISPLAY_NUMBER" -screen 0 "${WIDTH}x${HEIGHT}x24" -nolisten tcp >/dev/null 2>&1 &
XVFB_PID=$!
APP_PID=""
cleanup() {
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null || true
  kill "$XVFB_PID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
export DISPLAY=":$DISPLAY_NUMBER"
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done

export ICED_BACKEND=tiny-skia
export RUST_LOG="${RUST_LOG:-info}"
"$BIN" --demo --data-dir "$DATA" >"$LOG" 2>&1 &
APP_PID=$!

WINDOW="$(xdotool search --sync --onlyvisible --name 'Fabric Console' | head -n1)"
# No window manager: place and size the window ourselves.
xdotool windowmove "$WINDOW" 0 0 windowsize "$WINDOW" "$WIDTH" "$HEIGHT"

shot() { sleep "${2:-0.6}"; xwd -root -silent | convert xwd:- "$OUT/$1.png"; echo "saved $OUT/$1.png"; }
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.4; }
key() { xdotool key "$@"; sleep 0.4; }
type_text() { xdotool type --delay 20 "$1"; sleep 0.3; }

xdotool windowfocus "$WINDOW" 2>/dev/null || true
sleep 8

# Fabric workspace: the demo's embedded IPAM server, synced, selected.
click 330 217
shot fabric-workspace

# Another process holds the embedded service's sync lease (as a scheduled `fabric-console sync`
# would): a Refresh waits and says who holds it.
click 138 293                      # Embedded IPAM in the tree
LOCK="$(find "$DATA" -path '*locks/*.lock' | head -n1)"
flock -o "$LOCK" sleep 30 &
HOLDER_PID=$!
sleep 0.5
printf '{"program":"fabric-console sync","pid":%s,"host":"%s","since":"%s"}' \
  "$HOLDER_PID" "$(cat /proc/sys/kernel/hostname)" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK"
key F5
shot fabric-workspace-waiting 2
kill "$HOLDER_PID" 2>/dev/null || true

xdotool mousemove 330 217 click 3
shot context-menu
key Escape

# Add Resources ▸ Network Service (Ctrl+N); Enter is Next on every page.
key ctrl+n
type_text "IPAM Server 2"
shot wizard-name
key Return
click 466 241                      # Manufacturer: Fabric Console (its only model follows)
shot wizard-manufacturer
key Return
click 1017 259                     # Browse...
click 525 386                      # Embedded IPAM Administrator
shot wizard-select-run-as
click 947 523                      # OK
shot wizard-credentials
key Return
CONNECTION="$(sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep -o 'embedded_ipam=[^ ]*' | head -n1 | cut -d= -f2)"
type_text "${CONNECTION:-127.0.0.1}"
shot wizard-connection
key Return
shot wizard-security 1.5           # the console looked at the server without credentials
key Return
click 435 279                      # Test
shot wizard-provider 3
key Return
click 438 275                      # expand Seattle
click 498 275                      # select Seattle
shot wizard-host-group
key Return
shot wizard-summary
key Return
shot fabric-workspace-added 4

# A service whose server is down, so the Jobs workspace shows a failed job and its advice.
key ctrl+n
type_text "Lab IPAM (offline)"
key Return
click 466 241
key Return
click 1017 259
click 525 386
click 947 523
key Return
type_text "127.0.0.1:9"
key Return
sleep 1.5                          # Security: not reachable, may be added trusting this computer's authorities
key Return
key Return
click 486 218                      # All host groups
key Return
key Return
sleep 4

# Jobs (workspace buttons at the bottom of the navigation pane); the newest job is the failed one.
click 120 719
click 350 183
shot jobs
click 120 749
shot settings-providers
click 72 187
click 400 258
shot settings-run-as
# Create Run As Account... opens the dialog over the console; Escape closes it.
click 369 201
shot settings-run-as-dialog
key Escape

# ---------------------------------------------------------------------------------------------
# Fabric administration and the side-by-side view, on a fresh demo console.
kill "$APP_PID" 2>/dev/null || true
wait "$APP_PID" 2>/dev/null || true
LOG="$DATA/console2.log"
"$BIN" --demo --data-dir "$DATA" >"$LOG" 2>&1 &
APP_PID=$!
WINDOW="$(xdotool search --sync --onlyvisible --name 'Fabric Console' | head -n1)"
xdotool windowmove "$WINDOW" 0 0 windowsize "$WINDOW" "$WIDTH" "$HEIGHT"
xdotool windowfocus "$WINDOW" 2>/dev/null || true

plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$LOG"; }
syncs() { plain_log | grep -c 'sync finished' || true; }
# Waits until `$1` syncs have finished (the demo syncs every 60 s).
wait_syncs() { for _ in $(seq 900); do [ "$(syncs)" -ge "$1" ] && return 0; sleep 0.1; done; echo "no sync finished" >&2; return 1; }
dismiss() { click 1232 127; }       # the notice bar's Dismiss, when one is shown
wait_syncs 1
sleep 1
click 41 688                       # the Fabric workspace (the console remembers the last one)

# Fabric ▸ Logical Networks: the administration lists.
click 105 228
click 320 184                      # Backup-005: its properties in the details pane
shot admin-logical-networks

# Create Network Site in Backup-005 with no host group and a subnet with host bits set; Tab
# moves from the name to the subnet box, Enter asks to save and shows every error at its field.
click 807 131                      # Create Network Site...
type_text "Backup-005_Dublin"
key Tab; type_text "10.0.99.1/24"
key Tab; key ctrl+a; type_text "99"
key Return
shot admin-site-field-errors
key Escape

# Delete asks and lists what depends on the logical network.
key Delete
shot admin-delete-confirm
key Escape

# Create IP Pool in the first site: a range end outside the subnet and a DNS server that is not
# an address are marked at their fields while typing, and nothing is saved.
click 461 131                      # Network Sites tab
click 320 184                      # Backup-005_Seattle (subnets 10.0.20.0/24, 10.0.21.0/24, fd42:0:0:3::/64)
click 847 131                      # Create IP Pool...
type_text "Seattle overflow pool"
key Tab; key Tab; type_text "10.0.20.251"
key Tab; type_text "10.0.30.9"
key Tab; key Tab; key Tab; type_text "10.0.0.53, dns1"
shot admin-pool-field-errors
key Return
key Escape

# A conflict, a difference and an object only in the console, right after a sync so the next
# periodic one does not apply them before the picture: the console changes a pool's DNS suffix,
# the IPAM administrator changes the same field, a subnet's VLAN, and deletes a range.
done_syncs="$(syncs)"
wait_syncs $((done_syncs + 1))
click 554 131                      # IP Pools tab
xdotool mousemove 320 184 click --repeat 2 --delay 80 1   # Backup-005_Seattle_IPPool_0
sleep 0.6
click 920 490; key ctrl+a; type_text "console.contoso.com"
key Return
dismiss
URL="$(plain_log | grep -o 'embedded_ipam=[^ ]*' | head -n1 | cut -d= -f2)"
TOKEN="$("$BIN" ipam-server token --data "$DATA/demo/embedded-ipam" --role asm-administrator)"
python3 - "$URL" "$TOKEN" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    req = urllib.request.Request(f"{url}/api/v1/{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        t = r.read()
        return json.loads(t) if t else None
def all_of(kind):
    out, offset = [], 0
    while True:
        page = call("GET", f"{kind}?limit=1000&offset={offset}")
        out += page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return out
ranges = {r["name"]: r for r in all_of("ranges")}
subnets = {s["network"]: s for s in all_of("subnets")}
call("PATCH", f"ranges/{ranges['Backup-005_Seattle_IPPool_0']['id']}", {"dns_suffix": "ipam.contoso.com"})
call("PATCH", f"subnets/{subnets['10.0.20.0/24']['id']}", {"vlan": 920})
call("DELETE", f"ranges/{ranges['Backup-005_Seattle_IPPool_2']['id']}")
PY

# Network Service ▸ Embedded IPAM ▸ Side-by-side. Rows start at y 290, 26 pixels apart.
click 138 293
click 710 60
sleep 1
click 500 342                      # the subnet whose VLAN differs
shot compare-side-by-side
click 500 472                      # the pool in conflict
shot compare-conflict
click 1082 138                     # Preview changes
shot compare-preview 1.5
key Escape
click 1185 175                     # the Conflict chip: only rows in conflict
shot compare-filtered
click 609 175                      # All
key ctrl+f; type_text "10.0.2"
shot compare-search
key ctrl+a; type_text "192.168"      # VM networks and the pools on their VM subnets
shot compare-vm-networks

# Export and import without a desktop file chooser: the dialog says so and takes a path.
click 490 60                       # Export...
shot export-no-file-chooser 1.5
type_text "$DATA/fabric.json"
key Return
sed 's/"version": 1/"version": 7/; s/"range_end": "10.0.20.250"/"range_end": "10.9.9.9"/' "$DATA/fabric.json" >"$DATA/broken.json"
dismiss
click 421 60                       # Import...
sleep 1.5
type_text "$DATA/broken.json"
key Return
shot import-problems 1.5
key Escape


echo "screenshots in $OUT"
sed 's/\x1b\[[0-9;]*m//g' "$DATA/console.log" "$LOG" | grep 'console responsiveness' | tail -n 2 || true
