#!/usr/bin/env bash
# Builds the Debian package of Fabric Console: the binary (cargo build), then with that binary the
# manual pages (one per command and subcommand, gzipped) and the bash, zsh and fish completions in
# target/package/, then `cargo deb --no-build` (which strips the binary). Prints the .deb's path.
#
#   bash scripts/package.sh                  # release build (target/release)
#   bash scripts/package.sh --profile dev    # the development build the tests use (target/debug)
#
# Installs cargo-deb (cargo install --locked cargo-deb) when `cargo deb` is missing. cargo-deb warns
# that it is meant for release builds when given --profile dev; CI packages the dev build to check
# the package's contents without a release build.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while (($#)); do
    case "$1" in
        --profile)
            profile="${2:?--profile needs a value: release or dev}"
            shift 2
            ;;
        --profile=*)
            profile="${1#--profile=}"
            shift
            ;;
        -h | --help)
            sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "error: unknown argument '$1' (usage: scripts/package.sh [--profile release|dev])" >&2
            exit 2
            ;;
    esac
done
case "$profile" in
    release) profile_dir=release ;;
    dev) profile_dir=debug ;;
    *)
        echo "error: --profile must be release or dev, not '$profile'" >&2
        exit 2
        ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
    echo "Installing cargo-deb (cargo install --locked cargo-deb)…" >&2
    cargo install --locked cargo-deb
fi

cargo build --profile "$profile" --bin fabric-console

# Cargo's target directory (CARGO_TARGET_DIR or a build.target-dir setting may move it).
target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="$target_dir/$profile_dir/fabric-console"

# Generated files go where Cargo.toml's [package.metadata.deb] assets name them: target/package/
# beside Cargo.toml (cargo-deb reads assets relative to the package, wherever the build went).
out=target/package
rm -rf "$out/man" "$out/completions"
mkdir -p "$out/man" "$out/completions"
"$bin" man --dir "$out/man"
gzip -9n "$out/man"/*.1
"$bin" completions bash >"$out/completions/fabric-console.bash"
"$bin" completions zsh >"$out/completions/_fabric-console"
"$bin" completions fish >"$out/completions/fabric-console.fish"

# cargo-deb prints the path of the package it wrote as its last line.
deb="$(cargo deb --no-build --profile "$profile" --strip | tail -n 1)"
if [ ! -f "$deb" ]; then
    echo "error: cargo deb did not report the package it wrote (got '$deb')" >&2
    exit 1
fi
echo "$deb"
