#!/bin/sh
# Run inside a lab: for each KillMode x MODE, start the unit, wait, `systemctl stop`, report.
# Usage: stopup.sh  (run with `lab exec`, this folder bound at the same path)
[ -d /run/systemd/system ] || { echo "$0: run me inside a lab (systemd as PID 1), see units/README.md" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
systemctl --version | head -1
for km in mixed control-group; do
  for mode in commit exit stopnew; do
    u=stopup-$km-$mode.service
    cat >/etc/systemd/system/$u <<UNIT
[Service]
Type=notify
NotifyAccess=main
Environment=MODE=$mode
ExecStart=/usr/bin/python3 $here/stopup.py
KillMode=$km
KillSignal=SIGQUIT
TimeoutStopSec=20
UNIT
    systemctl daemon-reload
    systemctl start $u
    sleep 2
    echo "== KillMode=$km MODE=$mode: before stop: $(systemctl show -p MainPID --value $u) main"
    t0=$(date +%s%N)
    systemctl stop $u &
    sleep 1.5; echo "during stop: MainPID=$(systemctl show -p MainPID --value $u) $(systemctl show -p SubState --value $u)"
    wait
    t1=$(date +%s%N)
    echo "stop took $(( (t1 - t0) / 1000000 )) ms; left in cgroup: $(cat /sys/fs/cgroup/system.slice/$u/cgroup.procs 2>/dev/null | wc -l)"
    journalctl -q -u $u -o cat --no-pager | sed 's/^/  /'
    for pid in $(cat /sys/fs/cgroup/system.slice/$u/cgroup.procs 2>/dev/null); do kill -KILL "$pid"; done
  done
done
