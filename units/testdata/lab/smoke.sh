#!/bin/bash
# smoke.sh SET: drive baton's own unit files with the real baton inside a lab.
#   SET = base (units/*) or v254 (units/v254/*)
# Env: UNITS (the units folder), BATON_BIN, HELLO_BIN. Prints "ok"/"FAIL" lines and the
# measurements; exit 1 if anything failed. Run it with `lab exec` (see units/README.md).
[ -d /run/systemd/system ] || { echo "$0: run me inside a lab (systemd as PID 1), see units/README.md" >&2; exit 2; }
set -u
set_=${1:-base}
here=$(cd "$(dirname "$0")" && pwd)
units=${UNITS:?} bin=${BATON_BIN:?} hello=${HELLO_BIN:?}
src=$units; [ "$set_" = v254 ] && src=$units/v254
get() { python3 "$here/get.py" "$@"; }
fails=0
T0=$(date +%s)
ok() { echo "ok   $* [+$(( $(date +%s) - T0 ))s]"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
# waitfor SECONDS CMD...: poll CMD every 0.1 s until it succeeds or the deadline passes.
waitfor() {
    local end=$(($(date +%s) + $1)); shift
    until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt $end ] || return 1; sleep 0.1; done
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
show() { systemctl show -p "$1" --value "$2"; }

echo "== $(systemctl --version | head -1), unit set $set_"
for f in "$src"/*.service "$src"/*.socket; do
    sed "s|/usr/bin/baton|$bin|g" "$f" >"/etc/systemd/system/$(basename "$f")"
done
systemctl daemon-reload
# The lab boots basic.target, so network-online.target (wanted by baton-fdstore@) is not
# reached yet, and systemd-networkd-wait-online would hold the first start for its 2 min
# timeout (no interface is managed here). On a booted host the target is long reached.
systemctl mask --runtime --quiet systemd-networkd-wait-online.service 2>/dev/null
id nobody >/dev/null 2>&1 && user=nobody || user=""
mkdir -p /etc/baton
conf() { # conf NAME LISTEN SOAK: /etc/baton/NAME.toml
    {
        if [ -n "$2" ]; then printf '[[listen]]\nname = "http"\naddress = "%s"\n\n' "$2"; fi
        printf '[worker]\ncommand = ["%s", "-drain", "200ms"]\ncount = 2\nstop_timeout = "10s"\n' "$hello"
        if [ -n "$user" ]; then printf 'user = "%s"\n' "$user"; fi
        printf '\n[upgrade]\nsoak = "%s"\n' "$3"
    } >"/etc/baton/$1.toml"
}

# --- socket-activated instance "web": the config asks for 127.0.0.1:8080, the socket
# unit (default: /run/baton/web.sock) wins by name.
conf web 127.0.0.1:8080 1s
systemctl start baton@web.socket
check "socket unit listening on /run/baton/web.sock" test -S /run/baton/web.sock
t0=$(date +%s%N)
out=$(get /run/baton/web.sock)
echo "     first request (activates the service): $out in $(ms $t0) ms"
check "answer through the socket unit, generation 1" grep -q "^200 .*generation=1" <<<"$out"
if [ "$(show ActiveState baton@web.service)" != active ]; then
    fail "baton@web.service is $(show ActiveState baton@web.service); its journal:"
    journalctl -q -o cat --no-pager -u baton@web.service | tail -20 | sed 's/^/     /'
    exit 1
fi
ok "baton@web.service active"
check "127.0.0.1:8080 of the config not opened (socket unit wins)" sh -c '! ss -Hltn "sport = :8080" | grep -q .'
[ -n "$user" ] && check "workers run as $user" sh -c "ps -o user= --ppid $(show MainPID baton@web.service) | grep -qx $user"
pid1=$(show MainPID baton@web.service)

# reload: good, then bad config
t0=$(date +%s%N); systemctl reload baton@web.service; rc=$?
echo "     reload (good config): rc=$rc in $(ms $t0) ms"
check "reload of a good config succeeds" test $rc = 0
cp /etc/baton/web.toml /tmp/web.good
echo 'count = "two"' >>/etc/baton/web.toml
t0=$(date +%s%N); out=$(systemctl reload baton@web.service 2>&1); rc=$?
echo "     reload (bad config): rc=$rc in $(ms $t0) ms: $(echo "$out" | head -1)"
check "reload of a bad config fails" test $rc != 0
check "still active after a bad reload" test "$(show ActiveState baton@web.service)" = active
check "still serving after a bad reload" grep -q "^200" <<<"$(get /run/baton/web.sock)"
echo "     StatusText: $(show StatusText baton@web.service)"
cp /tmp/web.good /etc/baton/web.toml

# upgrade 1: systemctl kill --kill-whom=main -s USR2
t0=$(date +%s%N); since=$(date +%s)
systemctl kill --kill-whom=main -s USR2 baton@web.service
mainpid_changed() { p=$(show MainPID baton@web.service); [ "$p" != 0 ] && [ "$p" != "$1" ]; }
check "USR2: MainPID handed over" waitfor 30 mainpid_changed "$pid1"
pid2=$(show MainPID baton@web.service)
echo "     USR2 upgrade: MainPID $pid1 -> $pid2 after $(ms $t0) ms"
check "new master's parent is PID 1" test "$(ps -o ppid= -p "$pid2" | tr -d ' ')" = 1
check "answer from generation 2" waitfor 10 sh -c "python3 $here/get.py /run/baton/web.sock | grep -q generation=2"
check "no 'not our child' warning" sh -c "! journalctl -q -o cat -u baton@web.service --since @$since | grep -q 'not our child'"

# upgrade 2: baton upgrade --wait on the control socket
sock=/run/baton/web/control.sock
check "control socket at $sock" test -S $sock
t0=$(date +%s%N); out=$("$bin" upgrade --wait --socket $sock 2>&1); rc=$?
echo "     baton upgrade --wait: rc=$rc in $(ms $t0) ms: $out"
check "baton upgrade --wait succeeds" test $rc = 0
check "answer from generation 3" waitfor 10 sh -c "python3 $here/get.py /run/baton/web.sock | grep -q generation=3"

# systemctl stop while an upgrade is in flight (soak 60 s): ExecStop= `baton stop` drains both
conf web 127.0.0.1:8080 60s
systemctl reload baton@web.service
"$bin" upgrade --socket $sock >/dev/null
in_flight() { "$bin" status --socket $sock | grep -Eq "upgrade .*(ready|soaking)"; }  # soaking: the new master is ready
if waitfor 30 in_flight; then
    "$bin" status --socket $sock | sed -n '1p;/upgrade/p' | sed 's/^/     /'
    since=$(date +%s); t0=$(date +%s%N)
    systemctl stop baton@web.socket
    echo "     stop during upgrade: $(ms $t0) ms, Result=$(show Result baton@web.service)"
    check "stop during upgrade: no SIGKILL" sh -c "! journalctl -q -o cat -u baton@web.service --since @$since | grep -q SIGKILL"
    check "stop during upgrade: Result=success" test "$(show Result baton@web.service)" = success
else
    fail "upgrade did not reach 'ready' in 30 s: $("$bin" status --socket $sock 2>&1 | tr '\n' ' ')"
    systemctl stop baton@web.socket
fi
check "service inactive after stopping the socket" test "$(show ActiveState baton@web.service)" = inactive
check "socket file removed (RemoveOnStop=yes)" test ! -e /run/baton/web.sock
journalctl -q -o cat -u baton@web.service -u baton@web.socket --no-pager | grep -E "systemd|Stopp|Kill|SIGKILL|Failed|timed out" | grep -v "^$" | tail -8 | sed 's/^/     journal: /'

# --- FD store instance "api": baton opens 127.0.0.1:8081 itself
conf api 127.0.0.1:8081 1s
systemctl start baton-fdstore@api.service
check "fdstore: answer on 127.0.0.1:8081" grep -q "^200" <<<"$(get 127.0.0.1:8081)"
check "fdstore: one fd in the store" test "$(show NFileDescriptorStore baton-fdstore@api.service)" = 1
pid=$(show MainPID baton-fdstore@api.service)
systemctl kill -s KILL baton-fdstore@api.service
t0=$(date +%s%N)
out=$(get 127.0.0.1:8081)   # made during the RestartSec gap: queued in the stored socket
echo "     request during the crash restart: $out after $(ms $t0) ms"
check "fdstore: crash -> request queued, answered by the restarted service" grep -q "^200" <<<"$out"
check "fdstore: restarted with a new MainPID" test "$(show MainPID baton-fdstore@api.service)" != "$pid"
systemctl restart baton-fdstore@api.service
check "fdstore: serving after systemctl restart" grep -q "^200" <<<"$(get 127.0.0.1:8081)"
systemctl stop baton-fdstore@api.service
check "fdstore: port released after stop" sh -c '! ss -Hltn "sport = :8081" | grep -q .'
check "fdstore: Result=success after stop" test "$(show Result baton-fdstore@api.service)" = success

echo "== $set_ on $(systemctl --version | head -1 | cut -d' ' -f2): $fails failure(s)"
[ $fails -eq 0 ]
