#!/bin/bash
# Run inside a lab: kill -9 of the OLD master while a ready new master waits for its commit
# (issue 8), under unit variants. For each variant: start baton-fdstore@ko (with the
# variant's [Service] lines in a drop-in), load it with probe, USR2, wait until the new
# master N is ready (commit = "manual", so it waits for good), SIGKILL the old master O,
# and report what systemd did: sampled `systemctl show`, the failed requests, the journal.
# Then, if the unit is still up: reload, USR2 + commit, stop.
#
# Usage (BIN holds baton, hello and probe; this folder and BIN bound at the same paths):
#   lab exec env BIN=/path/bin /path/units/testdata/lab/killold.sh VARIANT...
# VARIANT: base (PIDFile= emptied: the units before issue 8) | exitcgroup | exitcgroup-sigkill |
#          exitcgroup-sigkill-all | pidfile (the units as shipped) |
#          stopfallback, stopfallback-base (no kill: `systemctl stop` with ExecStop=/bin/true,
#          i.e. the SIGQUIT fallback, with and without PIDFile=) |
#          nopidflag (PIDFile= but a master started without --pidfile: a reload)
# DEBUG=1: systemd at debug level around the kill, and its lines about the PID file.
# UNITSET=v254 takes units/v254/baton-fdstore@.service (Type=notify-reload) instead.
[ -d /run/systemd/system ] || { echo "$0: run me inside a lab (systemd as PID 1), see units/README.md" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
units=$(cd "$here/../.." && pwd)
: "${BIN:?BIN=dir with baton, hello, probe}"
port=18500
u=baton-fdstore@ko.service
pidfile=/run/baton/ko/baton.pid
cg='/sys/fs/cgroup/system.slice/system-baton\x2dfdstore.slice/baton-fdstore@ko.service'

ms() { echo $(( $(date +%s%N) / 1000000 )); }
show() { systemctl show "$u" -p MainPID -p ActiveState -p SubState -p Result -p NRestarts -p NFileDescriptorStore -p StatusText | tr '\n' ' '; echo; }

sed "s|/usr/bin/baton|$BIN/baton|g" "$units/${UNITSET:-.}/baton-fdstore@.service" >/etc/systemd/system/baton-fdstore@.service
mkdir -p /etc/baton
cat >/etc/baton/ko.toml <<EOF
[[listen]]
name = "http"
address = "127.0.0.1:$port"

[worker]
command = ["$BIN/hello", "-names", "http", "-drain", "300ms"]
count = 2
start_timeout = "10s"
stop_timeout = "10s"
restart_delay = "100ms"

[upgrade]
commit = "manual"
timeout = "20s"
EOF
systemctl mask -q systemd-networkd-wait-online.service systemd-networkd-wait-online@.service 2>/dev/null
systemctl --version | head -1

for variant in "$@"; do
  mkdir -p /etc/systemd/system/$u.d
  case $variant in
    base) lines="PIDFile=" ;;
    exitcgroup) lines=$'PIDFile=\nExitType=cgroup' ;;
    exitcgroup-sigkill) lines=$'PIDFile=\nExitType=cgroup\nSuccessExitStatus=SIGKILL' ;;
    exitcgroup-sigkill-all) lines=$'PIDFile=\nExitType=cgroup\nSuccessExitStatus=SIGKILL\nNotifyAccess=all' ;;
    pidfile) lines="PIDFile=$pidfile" ;;
    # no kill: `systemctl stop` when ExecStop= cannot reach the master (SIGQUIT fallback)
    stopfallback) lines=$'PIDFile='$pidfile$'\nExecStop=\nExecStop=/bin/true\nTimeoutStopSec=15' ;;
    stopfallback-base) lines=$'PIDFile=\nExecStop=\nExecStop=/bin/true\nTimeoutStopSec=15' ;;
    # no upgrade: a master started without --pidfile (before the units had it), reloaded
    nopidflag) lines="PIDFile=$pidfile" ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
  # the pid file is baton's own (--pidfile), named to systemd only by the pidfile variants
  flag="--pidfile $pidfile"; [ $variant = nopidflag ] && flag=""
  printf '[Service]\nExecStart=\nExecStart=%s/baton run -c /etc/baton/%%i.toml %s\nRestartSec=1s\n%s\n' "$BIN" "$flag" "$lines" >/etc/systemd/system/$u.d/variant.conf
  systemctl daemon-reload
  echo
  echo "=================== $variant: $(echo "$lines" | tr '\n' ' ')"
  cur=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
  systemctl start $u || { echo "start failed"; journalctl -u $u -q --no-pager | tail -20; continue; }
  O=$(systemctl show -p MainPID --value $u)
  if [ $variant = nopidflag ]; then
    t=$(ms); systemctl reload $u; echo "reload rc=$? $(( $(ms) - t ))ms: $(show)"
    journalctl -q --no-pager -o short-monotonic --after-cursor="$cur" -u $u | grep 'systemd\[1\]' | sed 's/^/  /' | cut -c1-250
    systemctl stop $u; systemctl reset-failed $u 2>/dev/null; rm -f /etc/systemd/system/$u.d/variant.conf
    continue
  fi
  stopf=/tmp/ko-stop-$variant; rm -f $stopf
  $BIN/probe -c 4 -timeout 10s -until $stopf http://127.0.0.1:$port/ >/tmp/ko-probe-$variant.out 2>&1 &
  probe=$!
  sleep 1
  systemctl kill --kill-whom=main -s USR2 $u
  for i in $(seq 1 200); do
    journalctl -u $u -q --no-pager -o cat --after-cursor="$cur" | grep -q 'waiting for the old master to commit' && break
    sleep 0.05
  done
  N=$(for p in $(cat "$cg/cgroup.procs"); do [ "$p" != "$O" ] && [ "$(ps -o ppid= -p $p | tr -d ' ')" = 1 ] && echo $p; done | head -1)
  echo "O=$O N=$N (N ppid $(ps -o ppid= -p "$N" 2>/dev/null | tr -d ' ')); pid file: $(cat $pidfile 2>/dev/null)"
  echo "before kill: $(show)"
  if [[ $variant == stopfallback* ]]; then
    cur2=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
    t=$(ms); systemctl stop $u; echo "stop rc=$? $(( $(ms) - t ))ms: $(show)"
    touch $stopf; wait $probe; echo "probe: $(tail -1 /tmp/ko-probe-$variant.out | cut -c1-200)"
    journalctl -q --no-pager -o short-monotonic --after-cursor="$cur2" -u $u | grep -v 'msg=serving\|worker ready\|worker started' | sed 's/^/  /' | cut -c1-250
    systemctl kill -s KILL $u 2>/dev/null; systemctl stop $u 2>/dev/null; systemctl reset-failed $u 2>/dev/null
    rm -f /etc/systemd/system/$u.d/variant.conf
    continue
  fi
  t=$(ms); systemctl reload $u 2>/dev/null; echo "reload during the upgrade: rc=$? $(( $(ms) - t ))ms: $(show)"
  t0=$(ms)
  ( last=""; end=$(( $(ms) + 6000 )); while [ "$(ms)" -lt $end ]; do s=$(show); [ "$s" != "$last" ] && echo "  +$(( $(ms) - t0 ))ms $s"; last=$s; sleep 0.05; done ) >/tmp/ko-samples-$variant 2>&1 &
  sampler=$!
  [ -n "${DEBUG:-}" ] && systemd-analyze log-level debug
  kill -KILL "$O"; echo "kill -9 $O at +$(( $(ms) - t0 ))ms"
  wait $sampler
  if [ -n "${DEBUG:-}" ]; then
    systemd-analyze log-level info
    echo "systemd at debug level, around the kill (PID file, main PID, notifications):"
    journalctl -q --no-pager -o short-monotonic --after-cursor="$cur" _PID=1 | grep -i "$u" | grep -i 'pid file\|main pid\|notification\|sigchld\|Child '"$O"'\|main process\|changed running' | sed 's/^/  /' | cut -c1-250
  fi
  echo "samples after kill -9 of O (t=0):"; cat /tmp/ko-samples-$variant
  touch $stopf; wait $probe
  echo "probe: $(tail -1 /tmp/ko-probe-$variant.out)"
  echo "after: $(show)"
  echo "cgroup: $(cat "$cg/cgroup.procs" 2>/dev/null | tr '\n' ' ')"
  echo "N alive: $(kill -0 "$N" 2>/dev/null && echo yes || echo no); pid file: $(cat $pidfile 2>/dev/null)"
  echo "journal (after USR2):"
  journalctl -q --no-pager -o short-monotonic --after-cursor="$cur" -u $u | grep -v '"worker ready"\|worker notify\|msg="worker started' | sed 's/^/  /' | cut -c1-300
  if [ "$(systemctl show -p ActiveState --value $u)" = active ]; then
    M=$(systemctl show -p MainPID --value $u)
    cur2=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
    t=$(ms); systemctl reload $u; echo "reload rc=$? $(( $(ms) - t ))ms: $(show)"
    systemctl kill --kill-whom=main -s USR2 $u; sleep 2; systemctl kill --kill-whom=main -s QUIT $u
    for i in $(seq 1 100); do [ "$(systemctl show -p MainPID --value $u)" != "$M" ] && break; sleep 0.1; done
    sleep 0.5
    echo "after USR2+QUIT (commit): $(show)"
    t=$(ms); systemctl stop $u; echo "stop rc=$? $(( $(ms) - t ))ms: $(show)"
    journalctl -q --no-pager -o short-monotonic --after-cursor="$cur2" -u $u | grep 'systemd\[1\]' | sed 's/^/  /' | cut -c1-250
  fi
  systemctl kill -s KILL $u 2>/dev/null; systemctl stop $u 2>/dev/null; systemctl reset-failed $u 2>/dev/null
  rm -f /etc/systemd/system/$u.d/variant.conf
done
