#!/usr/bin/env bash
# Installs what Relay's build and tests need on a fresh machine: Go modules
# always; for tests, npm packages and Debian packages (chromium) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-go}

export GONOSUMDB=github.com/rudderlabs/analytics-go
go mod download

apt_install() {
	# apt-get update once per run, only when something is missing.
	if [ -z "${_apt_updated:-}" ]; then apt-get update -qq >/dev/null; _apt_updated=1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ "$what" = test ]; then
	if [ -f test/e2e/package.json ] && command -v npm >/dev/null; then
		# Reinstall when package-lock.json changed since the last install
		# (npm writes node_modules/.package-lock.json on every install).
		if [ ! -d test/e2e/node_modules ] || [ test/e2e/package-lock.json -nt test/e2e/node_modules/.package-lock.json ]; then
			(cd test/e2e && npm ci --no-audit --no-fund --loglevel=error)
		fi
	fi
	if [ -f test/e2e/package.json ] && ! command -v chromium >/dev/null; then
		apt_install chromium
	fi
fi
