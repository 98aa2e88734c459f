#!/bin/sh
# make demo: the whole system on loopback, no root and no systemd needed.
#   the broker (exposed), the edge under systemd-socket-activate on
#   127.0.0.1:$DEMO_PORT, a sample app on 127.0.0.1:$DEMO_APP_PORT, and the
#   client (expose) forwarding to it.  Ctrl-C stops everything.
set -eu
cd "$(dirname "$0")/.."
DEMO_PORT=${DEMO_PORT:-8080}
DEMO_APP_PORT=${DEMO_APP_PORT:-3000}
DEMO_WS_PORT=${DEMO_WS_PORT:-4443}
dir=$(mktemp -d /tmp/expose-demo.XXXXXX)
pids=""

stop() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
	echo
	echo "demo stopped"
}
trap stop INT TERM EXIT

node tests/fixtures/demo-app.js "$DEMO_APP_PORT" >"$dir/app.log" 2>&1 &
pids="$pids $!"

bin/exposed --domain localhost --public-port "$DEMO_PORT" \
	--listen "127.0.0.1:$DEMO_WS_PORT" --socket "$dir/broker.sock" \
	--registry "$dir/registry.db" 2>"$dir/broker.log" &
pids="$pids $!"
# Ready once the broker records itself.
i=0
until [ -S "$dir/broker.sock" ] && grep -q 'ready' "$dir/broker.log"; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then cat "$dir/broker.log"; exit 1; fi
	sleep 0.1
done

systemd-socket-activate --inetd -a -l "127.0.0.1:$DEMO_PORT" \
	bin/expose-edge --registry "$dir/registry.db" --domain localhost \
	2>"$dir/edge.log" &
pids="$pids $!"

XDG_CONFIG_HOME="$dir/config" bin/expose --server "ws://127.0.0.1:$DEMO_WS_PORT" \
	"$DEMO_APP_PORT" >"$dir/url" 2>"$dir/client.log" &
pids="$pids $!"
i=0
until [ -s "$dir/url" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then cat "$dir/client.log"; exit 1; fi
	sleep 0.1
done
url=$(head -1 "$dir/url")

cat <<MSG

  expose demo is running on this machine.

  Public URL:  $url
  (served by an app on localhost:$DEMO_APP_PORT, through the edge on port
  $DEMO_PORT, the broker and the client)

  Try:  curl $url
        open it in a browser (*.localhost resolves to this machine)
        bin/exposectl --registry $dir/registry.db list

  Logs in $dir.  Ctrl-C stops everything.

MSG
tail -f "$dir/edge.log" "$dir/client.log" | grep --line-buffered -E 'access|expose:' &
pids="$pids $!"
wait
