#!/bin/sh
# The Debian packages expose's build, tests, demo and benchmarks need.
#   tests/deps.sh --missing   lists those not installed
#   tests/deps.sh --install   installs them (as root), or prints the apt-get line
set -eu

PACKAGES="gcc make pkg-config libc6-dev
libwebsockets-dev libsodium-dev libsqlite3-dev node-llhttp libcmocka-dev
systemd curl sqlite3 nodejs python3 python3-pytest python3-websockets python3-nacl
mandoc nginx-light wrk openssl clang libclang-rt-14-dev"

missing() {
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			echo "$p"
	done
}

case "${1:---missing}" in
--missing)
	missing
	;;
--install)
	need=$(missing | tr '\n' ' ')
	[ -z "$need" ] && exit 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "expose needs these Debian packages: $need" >&2
		echo "install them with: sudo apt-get install -y --no-install-recommends $need" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends $need >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null; }
	;;
*)
	echo "usage: tests/deps.sh --missing|--install" >&2
	exit 64
	;;
esac
