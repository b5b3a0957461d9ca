#!/bin/sh
# metrics-rss.sh BATON HELLO on|off [RELOADS]: the RSS of an idle baton master with 4 hello
# workers, with [metrics] on or off; with it on, again 10 s after 20 scrapes (curl
# --compressed); with RELOADS, again 10 s after that many reloads (`baton reload --wait`),
# with a scrape after every tenth.
# Prints VmRSS, VmHWM, RssAnon, RssFile and threads of the master, in KiB.
# Used for the "Metrics" part of BENCHMARKS.md:
#   go build -o /tmp/baton ./cmd/baton && go build -o /tmp/hello ./examples/hello
#   bench/metrics-rss.sh /tmp/baton /tmp/hello off; bench/metrics-rss.sh /tmp/baton /tmp/hello on
set -e
B=$1 H=$2 M=$3 R=${4:-0}
D=$(mktemp -d)
cd "$D"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P=$(port) Q=$(port)
cat > b.toml <<EOT
pidfile = "b.pid"
control_socket = "$D/b.sock"
[[listen]]
name = "http"
address = "127.0.0.1:$P"
[worker]
command = ["$H"]
count = 4
EOT
[ "$M" = on ] && printf '[metrics]\naddress = "127.0.0.1:%s"\n' "$Q" >> b.toml
"$B" run -c b.toml > log 2>&1 &
pid=$!
trap 'kill -QUIT $pid 2> /dev/null; wait $pid 2> /dev/null; rm -rf "$D"' EXIT
for i in $(seq 100); do grep -q 'workers ready' log && break; sleep 0.1; done
sleep 2
idle=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
if [ "$M" = on ]; then
	for i in $(seq 20); do curl -s --compressed "http://127.0.0.1:$Q/metrics" > /dev/null; done
	sleep 10
fi
if [ "$R" -gt 0 ]; then
	for i in $(seq "$R"); do
		"$B" reload --wait -c b.toml > /dev/null
		if [ "$M" = on ] && [ $((i % 10)) = 0 ]; then
			curl -s --compressed "http://127.0.0.1:$Q/metrics" > /dev/null
		fi
	done
	sleep 10
fi
st() { awk -v k="$1:" '$1 == k {print $2}' /proc/$pid/status; }
echo "metrics=$M reloads=$R idle_rss=$idle rss=$(st VmRSS) hwm=$(st VmHWM) anon=$(st RssAnon) file=$(st RssFile) threads=$(st Threads)"
