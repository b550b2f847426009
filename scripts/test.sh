#!/usr/bin/env bash
# Runs every test of Fabric Console: unit tests, integration tests in tests/ (including the
# Nautobot tests against a real Nautobot that scripts/nautobot.sh installs and starts), and each
# benchmark once in test mode. Needs root (or sudo) on Debian for the Nautobot harness the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

export ICED_TEST_BACKEND="${ICED_TEST_BACKEND:-tiny-skia}"
export FABRIC_CONSOLE_SECRET_BACKEND="${FABRIC_CONSOLE_SECRET_BACKEND:-file}"

bash scripts/nautobot.sh start
eval "$(bash scripts/nautobot.sh env)"
trap 'bash scripts/nautobot.sh stop >/dev/null 2>&1 || true' EXIT

cargo test --all-targets "$@"
