#!/usr/bin/env bash
# Checks a Debian package of Fabric Console (scripts/package.sh makes it) without installing it:
# its control fields, that it holds every file it should, that its desktop entry validates, and
# that its binary runs and reports the version in Cargo.toml.
#
#   bash scripts/check-package.sh target/debian/fabric-console_0.1.0-1_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."

deb="${1:?usage: scripts/check-package.sh PACKAGE.deb}"
if [ ! -f "$deb" ]; then
    echo "error: no such package: $deb" >&2
    exit 1
fi
id=io.github.fabricconsole.FabricConsole
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
problems=0
problem() {
    echo "package problem: $*" >&2
    problems=$((problems + 1))
}

# Control fields.
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = fabric-console ] || problem "Package is '$(field Package)', not fabric-console"
[[ "$(field Version)" == "$version"-* ]] || problem "Version is '$(field Version)', not $version-<revision>"
depends="$(field Depends)"
for needed in 'libc6' 'libxkbcommon0' 'libwayland-client0 | libx11-6'; do
    [[ "$depends" == *"$needed"* ]] || problem "Depends lacks '$needed': $depends"
done
[ -n "$(field Description)" ] || problem "no Description"
dpkg-deb -I "$deb" >/dev/null || problem "dpkg-deb -I cannot read the control archive"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"

expected=(
    usr/bin/fabric-console
    "usr/share/applications/$id.desktop"
    "usr/share/metainfo/$id.metainfo.xml"
    "usr/share/icons/hicolor/scalable/apps/$id.svg"
    usr/share/man/man1/fabric-console.1.gz
    usr/share/man/man1/fabric-console-sync.1.gz
    usr/share/man/man1/fabric-console-service-add.1.gz
    usr/share/bash-completion/completions/fabric-console
    usr/share/zsh/vendor-completions/_fabric-console
    usr/share/fish/vendor_completions.d/fabric-console.fish
    usr/lib/systemd/user/fabric-console-sync.service
    usr/share/doc/fabric-console/copyright
    usr/share/doc/fabric-console/README.md
)
# Every icon size in assets/ (scripts/icons.sh renders them).
for png in assets/icons/hicolor/*/apps/"$id".png; do
    expected+=("usr/share/icons/${png#assets/icons/}")
done
for path in "${expected[@]}"; do
    [ -f "$root/$path" ] || { problem "missing: /$path"; continue; }
    [ -s "$root/$path" ] || problem "empty: /$path"
done
[ -x "$root/usr/bin/fabric-console" ] || problem "/usr/bin/fabric-console is not executable"

# A manual page per subcommand, each one gzipped roff.
for page in "$root"/usr/share/man/man1/*.1.gz; do
    name="$(basename "$page" .1.gz)"
    text="$(gzip -dc "$page")" || problem "$(basename "$page") is not gzipped"
    grep -q "^\.TH $name 1 " <<<"$text" || problem "$(basename "$page") is not the page of $name"
done
# The completions complete the subcommands.
grep -qs 'sync' "$root/usr/share/bash-completion/completions/fabric-console" || problem "bash completion lacks sync"
grep -qs '#compdef fabric-console' "$root/usr/share/zsh/vendor-completions/_fabric-console" || problem "zsh completion lacks #compdef"
grep -qs 'complete -c fabric-console' "$root/usr/share/fish/vendor_completions.d/fabric-console.fish" || problem "fish completion lacks complete -c"
# The user unit runs the installed binary.
grep -qs '^ExecStart=/usr/bin/fabric-console sync --follow$' "$root/usr/lib/systemd/user/fabric-console-sync.service" ||
    problem "the systemd user unit does not run /usr/bin/fabric-console sync --follow"

if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$root/usr/share/applications/$id.desktop" || problem "the desktop entry does not validate"
else
    problem "desktop-file-validate is missing (Debian package desktop-file-utils)"
fi

# The packaged (stripped) binary runs, without touching any data folder.
reported="$("$root/usr/bin/fabric-console" --version)" || problem "/usr/bin/fabric-console --version failed"
[ "$reported" = "fabric-console $version" ] || problem "--version says '$reported', not 'fabric-console $version'"

if ((problems)); then
    echo "error: $deb has $problems problem(s)" >&2
    exit 1
fi
echo "$deb: $(find "$root" -type f | wc -l) files, $(du -h "$deb" | cut -f1), Depends: $depends"
