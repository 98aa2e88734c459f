#!/bin/sh
# A Debian root filesystem to boot systemd in (tests/system/run.sh),
# built once with debootstrap and cached outside the repository, keyed by
# its package list.  Prints the cached directory.
#   tests/system/rootfs.sh BIN_DIR
set -eu

BIN=${1:-bin}
CACHE=${EXPOSE_SYSTEST_CACHE:-/var/cache/expose-systest}
SUITE=bookworm
# What the test runs inside besides expose's own libraries.
BASE="systemd dbus curl man-db python3 etcd-server"

# The Debian packages that own the libraries the programs link, and the
# libev plugin libwebsockets dlopens for the broker's loop (ldd cannot see it).
runtime_packages() {
	echo libwebsockets-evlib-ev
	for b in "$BIN"/*; do
		ldd "$b" 2>/dev/null | awk '/=> \//{print $3}'
	done | sort -u | while read -r lib; do
		dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"
	done | cut -d: -f1 | sort -u
}

# The mirror apt uses here (deb822 or one-line sources).
mirror() {
	m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '{print $2}' | grep '/debian$' | head -1)
	[ -n "$m" ] || m=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
	echo "${m:-http://deb.debian.org/debian}"
}

pkgs=$(printf '%s\n' $BASE $(runtime_packages) | sort -u | tr '\n' ',' | sed 's/,$//')
key=$(printf '%s %s\n' "$SUITE" "$pkgs" | sha256sum | cut -c1-16)
root=$CACHE/rootfs-$key

if [ ! -f "$root/.complete" ]; then
	rm -rf "$root" "$root.tmp"
	mkdir -p "$CACHE"
	echo "tests/system: debootstrap $SUITE into $root (once; about 3 minutes)" >&2
	debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$root.tmp" "$(mirror)" \
		> "$CACHE/debootstrap-$key.log" 2>&1 || {
		tail -20 "$CACHE/debootstrap-$key.log" >&2
		exit 1
	}
	echo "$pkgs" > "$root.tmp/.packages"
	touch "$root.tmp/.complete"
	mv "$root.tmp" "$root"
fi
echo "$root"
