#!/usr/bin/env bash
# Renders the application icon (assets/icons/<id>.svg) to the PNG sizes of the hicolor theme and to
# the raw 64×64 RGBA the window icon is built from. Needs ImageMagick's `convert`.
set -euo pipefail
cd "$(dirname "$0")/../assets/icons"
id=io.github.fabricconsole.FabricConsole
for s in 16 32 48 64 128 256; do
    mkdir -p "hicolor/${s}x${s}/apps"
    convert -background none -density 300 "$id.svg" -resize "${s}x${s}" "hicolor/${s}x${s}/apps/$id.png"
done
convert -background none -density 300 "$id.svg" -resize 64x64 -depth 8 rgba:window-64.rgba
