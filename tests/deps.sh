#!/bin/sh
# The Debian packages expose's build, tests, demo and benchmarks need, and
# the npm modules of the browser and dev-server tests (pinned by their
# package-lock.json files).
#   tests/deps.sh --missing   lists those not installed
#   tests/deps.sh --install   installs them (as root), or prints the apt-get line
set -eu

PACKAGES="gcc make pkg-config libc6-dev
libwebsockets-dev libwebsockets-evlib-ev libev-dev libsodium-dev libsqlite3-dev node-llhttp libcmocka-dev
libssl-dev libgnutls28-dev libunistring-dev libjansson-dev libqrencode-dev
systemd curl sqlite3 nodejs python3 python3-pytest python3-pytest-timeout python3-websockets python3-nacl
mandoc nginx-light wrk openssl clang libclang-rt-14-dev chromium
debootstrap systemd-container etcd-server iproute2"

# Directories whose node_modules come from `npm ci`.
NPM_DIRS="tests/browser tests/vite tests/webpack"


missing() {
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			echo "$p"
	done
}

# npm ci where the lock file is newer than what is installed.
npm_modules() {
	root=$(dirname "$0")/..
	for d in $NPM_DIRS; do
		stamp="$root/$d/node_modules/.package-lock.json"
		[ -f "$stamp" ] && [ "$stamp" -nt "$root/$d/package-lock.json" ] && continue
		command -v npm >/dev/null || {
			echo "tests/deps.sh: npm is missing: install Node.js 20 or newer with npm" >&2
			exit 1
		}
		npm ci --prefix "$root/$d" --no-audit --no-fund --loglevel=error >/dev/null
	done
}

case "${1:---missing}" in
--missing)
	missing
	;;
--install)
	need=$(missing | tr '\n' ' ')
	[ -z "$need" ] && { npm_modules; exit 0; }
	if [ "$(id -u)" -ne 0 ]; then
		echo "expose needs these Debian packages: $need" >&2
		echo "install them with: sudo apt-get install -y --no-install-recommends $need" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends $need >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null; }
	npm_modules
	;;
*)
	echo "usage: tests/deps.sh --missing|--install" >&2
	exit 64
	;;
esac
