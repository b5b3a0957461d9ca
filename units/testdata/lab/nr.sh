#!/bin/sh
# Run inside a 254+ lab: does a notify-reload service have a way to fail a reload, and
# what does ExecReload= do next to Type=notify-reload?
[ -d /run/systemd/system ] || { echo "$0: run me inside a lab (systemd as PID 1), see units/README.md" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
systemctl --version | head -1
for c in ok errno execreload; do
  u=nr-$c.service
  {
    echo "[Service]"; echo "Type=notify-reload"; echo "ExecStart=/usr/bin/python3 $here/nr.py"
    [ $c = errno ] && echo "Environment=FAIL=errno"
    [ $c = execreload ] && echo "ExecReload=/bin/sh -c 'echo ExecReload ran'"
  } >/etc/systemd/system/$u
  systemctl daemon-reload; systemctl start $u; sleep 1
  t0=$(date +%s%N); systemctl reload $u; rc=$?; t1=$(date +%s%N)
  echo "== $c: systemctl reload rc=$rc took $(( (t1 - t0) / 1000000 )) ms; $(systemctl show -p ActiveState -p SubState -p StatusText $u | tr '\n' ' ')"
  sleep 1.5
  journalctl -q -u $u -o cat --no-pager | sed 's/^/  /'
  systemctl stop $u
done
