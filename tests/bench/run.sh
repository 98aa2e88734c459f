#!/bin/sh
# make bench: expose against the origin direct, nginx as one hop, and a
# trivial handler under the same launcher, in one run (issue 7).  Prints one
# table and writes it to build/bench/<timestamp>.txt and .json; compare two
# runs with tests/bench/compare.py A.json B.json.
#
# BENCH_QUICK=1 is the CI smoke: 3 s loads instead of 10 s, 250 slow streams
# instead of 1,000, 1,000 idle tunnels only (not 1,000 then 5,000), one bulk
# run instead of the median of 3.  Finer knobs: BENCH_DURATION, BENCH_SSE,
# BENCH_IDLE (e.g. 1000,5000), BENCH_SETUP_RUNS, BENCH_BULK_RUNS, BENCH_OUT,
# BENCH_TLS_CONNS (sequential connections per kind for the TLS handshake
# cost: 300, 100 with BENCH_QUICK=1),
# BENCH_ONLY (some of keepalive,newconn,tls,bulk,sse,setup,idle,cluster),
# BENCH_CLUSTER_RUNS (registration and failover runs with etcd, each),
# BENCH_KEEP=1 (keep the scratch directory with every log),
# EXPOSE_RELEASE_BIN=DIR (measure the programs in DIR instead of bin/),
# BENCH_UNIT=0 (skip the shipped units' new-connection cost, tests/system),
# BENCH_CLUSTER=0 (skip the cross-host relay, tests/bench/cross_host.py),
# BENCH_CROSS_REQUESTS (its requests per kind).
#
# Everything listens on 127.0.0.1 (the cross-host run: on addresses inside
# network namespaces it makes and removes), every load is bounded in time, and all
# that the run starts is stopped when it ends or is interrupted.  The
# measured programs are the release build in bin/ (make builds it first).
set -eu
cd "$(dirname "$0")/../.."

for p in expose exposed expose-edge expose-edge-tls exposectl; do
	[ -x "bin/$p" ] || { make all >&2; break; }
done
for tool in nginx wrk curl node systemd-socket-activate cc openssl; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps)" >&2; exit 1; }
done

out=${BENCH_OUT:-build/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The trivial handler: the floor for a process per connection.
cc -O2 -Wall -Wextra -o "$out/resp" tests/bench/resp.c
# The same behind a TLS handshake: the floor for a process per https
# connection, linked as the Makefile links expose-edge-tls (GnuTLS and its
# crypto static, p11-kit not): about a fifth more connections a second
# here than with GnuTLS loaded at run time.
cc -O2 -Wall -Wextra -DRESP_TLS -o "$out/resp_tls" tests/bench/resp.c -Wl,-Bstatic -lgnutls -lhogweed \
	-lnettle -lgmp -ltasn1 -lidn2 -lunistring -Wl,-Bdynamic -lp11-kit
# The bare relay: expose's hops with nothing in them.
cc -O2 -Wall -Wextra -o "$out/relay" tests/bench/relay.c
# The upload sink: an app that drops what it is sent.
cc -O2 -Wall -Wextra -o "$out/sink" tests/bench/sink.c
# Keep-alive latency on established connections (wrk's includes the spawns).
cc -O2 -Wall -Wextra -o "$out/kalat" tests/bench/kalat.c
export BENCH_OUT="$out" BENCH_RESP="$out/resp" BENCH_RESP_TLS="$out/resp_tls" \
	BENCH_RELAY="$out/relay" BENCH_SINK="$out/sink" BENCH_KALAT="$out/kalat"

# The driver stops everything it started when it ends, fails or gets
# SIGINT, SIGTERM or SIGHUP (its handlers and a finally are the trap).
/usr/bin/python3 tests/bench/bench.py || exit 1

# New connections through the real expose.socket/expose@.service (systemd
# in a container, tests/system) beside the same edge under
# systemd-socket-activate: as root only (BENCH_UNIT=0 skips it).
if [ "$(id -u)" -eq 0 ] && [ "${BENCH_UNIT:-1}" = 1 ]; then
	echo "new connections through the shipped units (tests/system, 200 sequential):"
	SYSTEST_ONLY=cost tests/system/run.sh 2>&1 | grep '^cost:' | tee "$out/unit-newconn.txt"
else
	echo "new connections through the shipped units: not measured (needs root and BENCH_UNIT=1; tests/system)"
fi

# More than one host: a visitor's added latency for a tunnel on another
# host (the peer link) beside a local one, on three hosts made as network
# namespaces: as root with etcd only (BENCH_CLUSTER=0 skips it).
if [ "$(id -u)" -eq 0 ] && command -v etcd >/dev/null && [ "${BENCH_CLUSTER:-1}" = 1 ]; then
	/usr/bin/python3 tests/bench/cross_host.py || exit 1
else
	echo "cross-host relay: not measured (needs root and etcd)"
fi
