#!/bin/sh
# Instructions per connection of the plain edge (expose-edge) and the https
# edge (expose-edge-tls, full handshakes and resumed ones): a
# systemd-socket-activate launcher execs one edge per connection under
# valgrind's callgrind, which counts every instruction the edge ran (exact
# and the same on every run, where wall time and CPU time are not; perf's
# counters need a PMU that virtual machines often lack).
# Each visitor is curl: GET / for a name with no tunnel (the edge answers
# 404 from the registry), so the count is the edge's start-up, its TLS and
# one lookup.  Everything listens on 127.0.0.1.
#
# usage: tests/bench/edge_instructions.sh [BIN [CONNECTIONS]]
#        EDGE_PROFILES=DIR keeps each connection's callgrind profile there
#        (callgrind_annotate DIR/https/PID.out shows where it went).
#        EDGE_COUNT=cpu counts CPU time (user and kernel: exec, page
#        faults, the dynamic loader) and page faults instead, with perf
#        stat's software counters over the launcher and its edges, less
#        the launcher's own with no connection; noisy on a busy machine.
set -eu

BIN=${1:-bin}
N=${2:-50}
DOMAIN=tunnel.test
TMP=$(mktemp -d)
OUT=${EDGE_PROFILES:-$TMP/out}
COUNT=${EDGE_COUNT:-instructions}
LAUNCHER=
trap 'test -n "$LAUNCHER" && kill "$LAUNCHER" 2>/dev/null; rm -rf "$TMP"' EXIT

pki() {
	ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	(cd "$TMP" &&
	 openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA" &&
	 openssl req $ec -keyout site.key -out site.csr -subj "/CN=$DOMAIN" \
	     -addext "subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN" &&
	 openssl x509 -req -in site.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	     -copy_extensions copy -out site.pem) >/dev/null 2>&1
}

# The registry's schema, and the shared ticket keys as the broker makes them.
setup() {
	cat sql/0*.sql | sqlite3 "$TMP/registry.db"
	"$BIN/exposectl" --registry "$TMP/registry.db" rotate-ticket-keys >/dev/null
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# count KIND PROGRAM VISITS: the instructions (callgrind's Ir) of every
# edge the launcher spawned while VISITS visitors came, one at a time,
# divided by VISITS.
count() {
	kind=$1 prog=$2 visits=$3 port=$(free_port)
	log="$TMP/$kind.log" out="$OUT/$kind"
	mkdir -p "$out"
	set -- --registry "$TMP/registry.db" --domain "$DOMAIN"
	[ "$kind" = plain ] || set -- "$@" --cert "$TMP/site.pem" --key "$TMP/site.key"
	if [ "$COUNT" = cpu ]; then
		perf stat -x, -e task-clock,page-faults -o "$out/perf" -- \
		    systemd-socket-activate --inetd -a -l "127.0.0.1:$port" \
		    "$BIN/$prog" "$@" 2>"$log" &
	else
		systemd-socket-activate --inetd -a -l "127.0.0.1:$port" \
		    valgrind -q --tool=callgrind --callgrind-out-file="$out/%p.out" \
		    "$BIN/$prog" "$@" 2>"$log" &
	fi
	LAUNCHER=$!
	until grep -qs Listening "$log"; do
		kill -0 "$LAUNCHER" || exit 1
		sleep 0.05
	done
	url="https://x.$DOMAIN:$port/"
	[ "$kind" = plain ] && url="http://x.$DOMAIN:$port/"
	set -- -s -o /dev/null -H "Connection: close" --cacert "$TMP/ca.pem" \
	    --resolve "x.$DOMAIN:$port:127.0.0.1" "$url"
	i=0
	while [ "$i" -lt "$visits" ]; do
		i=$((i + 1))
		case $kind in
		resumed) curl "$@" -: "$@" ;;    # one curl, two connections: the second resumes
		*)       curl "$@" ;;
		esac
	done
	[ "$COUNT" = cpu ] && LAUNCHER=$(pgrep -P "$LAUNCHER")    # perf's child
	while pgrep -P "$LAUNCHER" >/dev/null; do sleep 0.05; done
	kill "$LAUNCHER"
	wait 2>/dev/null || true
	LAUNCHER=
	if [ "$COUNT" = cpu ]; then
		awk -F, '/task-clock/ { ms = $1 } /page-faults/ { pf = $1 }
		         END { printf "%.0f %.0f", ms * 1000, pf }' "$out/perf"
	else
		cat "$out"/*.out | awk -v n="$visits" '/^totals:/ { t += $2 }
		                                       END { printf "%.2f", t / n / 1e6 }'
	fi
}

# cpu KIND PROGRAM: µs of CPU and page faults per connection.
cpu() {
	set -- $(count "$1" "$2" 0) $(count "$1" "$2" "$N")
	echo "$(( ($3 - $1) / N )) µs CPU, $(( ($4 - $2) / N )) page faults"
}

pki
setup
if [ "$COUNT" = cpu ]; then
	echo "plain: $(cpu plain expose-edge) per connection ($N connections)"
	echo "https: $(cpu https expose-edge-tls) per full handshake ($N connections)"
	exit 0
fi
echo "plain: $(count plain expose-edge "$N") M instructions per connection ($N connections)"
echo "https: $(count https expose-edge-tls "$N") M instructions per full handshake ($N connections)"
echo "https: $(count resumed expose-edge-tls "$N") M instructions per full + resumed pair ($N pairs)"
[ "$OUT" = "$TMP/out" ] || echo "callgrind profiles: $OUT/{plain,https,resumed}/*.out"
