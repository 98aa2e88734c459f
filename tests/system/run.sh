#!/bin/sh
# The system test (tests/system/systest.py): systemd as PID 1 in
# systemd-nspawn, expose installed and run as the README says.  Needs root;
# the root filesystem is built once (tests/system/rootfs.sh) and cached.
# Ends with "system: N passed, M failed"; without root or a container it
# says why and counts as one failure.
set -u
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
# The whole test, debootstrap aside, fits in this.
SYSTEST_TIMEOUT_S=${SYSTEST_TIMEOUT_S:-900}

cannot() {
	echo "system: cannot run: $*"
	echo "system: 0 passed, 1 failed"
	exit 1
}

[ "$(id -u)" -eq 0 ] || cannot "needs root (systemd-nspawn)"
for c in systemd-nspawn debootstrap nsenter openssl; do
	command -v "$c" >/dev/null || cannot "$c is missing (make deps)"
done
make -s all || cannot "the build failed"
rootfs=$(tests/system/rootfs.sh bin) || cannot "no root filesystem (debootstrap failed)"
exec timeout -k 10 "$SYSTEST_TIMEOUT_S" "$PYTHON" tests/system/systest.py "$rootfs" .
