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

echo "screenshots in $OUT"
sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep 'console responsiveness' | tail -n 2 || true
