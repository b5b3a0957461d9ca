#!/bin/bash
# lab-install.sh: runs INSIDE a systemd lab (packaging/test.sh starts one per systemd: 252,
# 254, 257): installs baton's packages for real, hot-upgrades running instances through the
# maintainer scripts, and removes them.
#
#   lab-install.sh PKGDIR      PKGDIR/v1 and PKGDIR/v2 each hold a .deb and an .rpm
#
# The lab's /usr is read-only and its /var an empty tmpfs: lab-fresh-host.sh (beside this
# script) mounts a tmpfs overlay on /usr and starts an empty dpkg database, and the rpm part
# below an empty rpm database, so that `dpkg -i` and `rpm -i` work as on a fresh machine.
# Prints "ok   lab: …" and "FAIL lab: …" lines; exits 1 on any failure.
set -u
pkgdir=$1
deb1=$(echo "$pkgdir"/v1/*.deb) deb2=$(echo "$pkgdir"/v2/*.deb)
rpm1=$(echo "$pkgdir"/v1/*.rpm) rpm2=$(echo "$pkgdir"/v2/*.rpm)
fails=0

ok() { echo "ok   lab: $*"; }
bad() {
	echo "FAIL lab: $*"
	fails=$((fails + 1))
}
# check DESC CMD…: ok if CMD succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else bad "$desc"; fi
}
# eventually SECONDS CMD…: CMD succeeds before the deadline (polled every 100 ms).
eventually() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
mainpid() { systemctl show -p MainPID --value "$1"; }
exe_of() { readlink "/proc/$(mainpid "$1")/exe"; }
runs_installed() { [ "$(exe_of "$1")" = /usr/bin/baton ]; }
pid_changed() { local p; p=$(mainpid "$1") && [ "$p" != 0 ] && [ "$p" != "$2" ]; }
contains() { grep -qF -- "$2" <<<"$1"; }
# fetch [--unix-socket PATH] URL: GET, the body on stdout, exit 0 on a 2xx answer within
# 5 s. curl where the root has it (252: the host's /usr); python3 where it has not (the
# debootstrapped 254 and 257 roots).
if command -v curl >/dev/null; then
	fetch() { curl -fsS -m 5 "$@"; }
else
	cat >/run/fetch.py <<'EOF'
import http.client, socket, sys
args = sys.argv[1:]
sock = None
if args[0] == "--unix-socket":
    sock, args = args[1], args[2:]
url = args[0].split("/", 3)
host, path = url[2], "/" + (url[3] if len(url) > 3 else "")
if sock:
    class UnixConn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(5)
            self.sock.connect(sock)
    conn = UnixConn("localhost", timeout=5)
else:
    conn = http.client.HTTPConnection(host, timeout=5)
try:
    conn.request("GET", path)
    r = conn.getresponse()
    sys.stdout.buffer.write(r.read())
    sys.exit(0 if 200 <= r.status < 300 else 1)
except Exception as e:
    print(e, file=sys.stderr)
    sys.exit(1)
EOF
	fetch() { python3 /run/fetch.py "$@"; }
fi
serves() { fetch "$@" >/dev/null 2>&1; }
http() { fetch http://127.0.0.1:8080/; }

# The load: new connections to 127.0.0.1:8080 one after another until /run/load.stop
# exists; counts answers and failures in /run/load.result.
start_load() {
	rm -f /run/load.stop /run/load.result
	(
		n=0 f=0
		while [ ! -e /run/load.stop ]; do
			if fetch http://127.0.0.1:8080/ >/dev/null 2>&1; then
				n=$((n + 1))
			else
				f=$((f + 1))
			fi
		done
		echo "$n $f" >/run/load.result
	) &
	load_pid=$!
}
stop_load() {
	touch /run/load.stop
	wait "$load_pid"
	read -r load_ok load_failed </run/load.result
}

dump_journal() {
	echo "--- journal of the baton units"
	journalctl -q --no-pager -o short-monotonic -u 'baton*' | tail -60
}

t0=$(date +%s)
# section NAME: a header with the seconds since the start.
section() { echo "== $* (+$(($(date +%s) - t0))s)"; }

# ---------------------------------------------------------------- set-up
# A writable /usr, empty dpkg database: a fresh Debian host (lab-fresh-host.sh says how).
bash "$(dirname "$0")/lab-fresh-host.sh" || { bad "cannot make the lab a fresh host"; exit 1; }
systemctl --version | head -1

# ---------------------------------------------------------------- deb: install
section "deb: install"
out=$(dpkg -i "$deb1" 2>&1)
check "dpkg -i v1 succeeds" test $? = 0
check "first install prints nothing of its own" eval '! grep -q "^baton:" <<<"$out"'
check "/usr/bin/baton is v1" eval '[ "$(/usr/bin/baton version)" = "baton v0.0.0-test.1" ]'
check "example.toml is a conffile" grep -qx ' */etc/baton/example.toml [0-9a-f]*' <(dpkg-query -W -f='${Conffiles}\n' baton)
check "systemd knows baton-fdstore@.service" eval 'systemctl cat baton-fdstore@example.service >/dev/null'

# The try-it instance: /etc/baton/example.toml, two hello workers on 127.0.0.1:8080.
systemctl enable --now baton-fdstore@example.service
check "baton-fdstore@example is active" systemctl is-active -q baton-fdstore@example
check "it serves on 127.0.0.1:8080" eventually 20 serves http://127.0.0.1:8080/
# A socket-activated instance: baton@sock.socket holds /run/baton/sock.sock.
printf '[worker]\ncommand = ["/usr/lib/baton/hello"]\ncount = 2\n' >/etc/baton/sock.toml
systemctl start baton@sock.socket baton@sock.service
check "baton@sock is active" systemctl is-active -q baton@sock.service
check "it serves on /run/baton/sock.sock" eventually 20 serves --unix-socket /run/baton/sock.sock http://x/
# variant PORT SOCKET: example.toml serving on 127.0.0.1:PORT, its control socket at SOCKET.
variant() {
	sed -e "s|^address = \"127.0.0.1:8080\"|address = \"127.0.0.1:$1\"|" \
		-e "1i control_socket = \"$2\"" /etc/baton/example.toml
}
# An instance whose config puts its control socket elsewhere: the master listens in its
# RuntimeDirectory too, so the postinst still finds it there. Outside /run/baton/alt the
# units let baton write only where a drop-in says (ProtectSystem=strict).
mkdir -p /run/baton-alt-test /etc/systemd/system/baton-fdstore@alt.service.d
printf '[Service]\nReadWritePaths=/run/baton-alt-test\n' >/etc/systemd/system/baton-fdstore@alt.service.d/rw.conf
systemctl daemon-reload
variant 8081 /run/baton-alt-test/control.sock >/etc/baton/alt.toml
systemctl start baton-fdstore@alt.service
check "baton-fdstore@alt is active" systemctl is-active -q baton-fdstore@alt
check "it serves on 127.0.0.1:8081" eventually 20 serves http://127.0.0.1:8081/
# A unit of the admin's own, without a RuntimeDirectory: the postinst cannot know where its
# control socket is, and upgrades it with SIGUSR2.
variant 8082 /run/own-baton-test.sock >/etc/baton/own.toml
printf '[Service]\nType=notify\nNotifyAccess=main\nExecStart=/usr/bin/baton run -c /etc/baton/own.toml\n' \
	>/etc/systemd/system/own-baton-test.service
systemctl daemon-reload
systemctl start own-baton-test.service
check "own-baton-test is active" systemctl is-active -q own-baton-test
check "it serves on 127.0.0.1:8082" eventually 20 serves http://127.0.0.1:8082/
# An instance with commit = "manual": the postinst's wait ends when its new master is
# ready; the upgrade then waits for the operator's `baton commit` and is not a failure.
sed -e 's|^address = "127.0.0.1:8080"|address = "127.0.0.1:8083"|' -e 's|^commit = "auto"|commit = "manual"|' \
	/etc/baton/example.toml >/etc/baton/man.toml
check "man.toml has commit = manual" grep -qx 'commit = "manual"' /etc/baton/man.toml
systemctl start baton-fdstore@man.service
check "baton-fdstore@man is active" systemctl is-active -q baton-fdstore@man
check "it serves on 127.0.0.1:8083" eventually 20 serves http://127.0.0.1:8083/
# A unit whose control socket in its RuntimeDirectory is stale (a socket file nobody
# listens on): `baton upgrade` exits 3, no master, and the postinst falls back to SIGUSR2.
variant 8084 /run/stale-baton-own.sock >/etc/baton/stale.toml
cat >/etc/baton/stale-sock.sh <<'EOF'
rm -f /run/stale-baton-test/control.sock
exec python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("/run/stale-baton-test/control.sock")'
EOF
cat >/etc/systemd/system/stale-baton-test.service <<'EOF'
[Service]
Type=notify
NotifyAccess=main
RuntimeDirectory=stale-baton-test
ExecStart=/usr/bin/baton run -c /etc/baton/stale.toml
ExecStartPost=/bin/sh /etc/baton/stale-sock.sh
EOF
systemctl daemon-reload
systemctl start stale-baton-test.service
check "stale-baton-test is active" systemctl is-active -q stale-baton-test
check "its runtime control socket answers nothing" eval '! baton status --socket /run/stale-baton-test/control.sock >/dev/null 2>&1 && [ -S /run/stale-baton-test/control.sock ]'

# ---------------------------------------------------------------- deb: upgrade
section "deb: upgrade"
ex=$(mainpid baton-fdstore@example) so=$(mainpid baton@sock) alt=$(mainpid baton-fdstore@alt)
own=$(mainpid own-baton-test) man=$(mainpid baton-fdstore@man) st=$(mainpid stale-baton-test)
start_load
out=$(dpkg -i "$deb2" 2>&1)
rc=$?
stop_load
echo "$out" | grep '^baton:'
check "dpkg -i v2 succeeds" test $rc = 0
check "/usr/bin/baton is v2" eval '[ "$(/usr/bin/baton version)" = "baton v0.0.0-test.2" ]'
check "example: upgrade committed, reported" contains "$out" "baton-fdstore@example.service: baton upgrade: upgrade committed"
check "sock: upgrade committed, reported" contains "$out" "baton@sock.service: baton upgrade: upgrade committed"
check "alt: upgrade committed through its runtime control socket" contains "$out" "baton-fdstore@alt.service: baton upgrade: upgrade committed"
check "own unit: no control socket known, USR2 sent" contains "$out" "own-baton-test.service: no control socket; sending SIGUSR2"
check "stale socket: no master answers, USR2 sent" contains "$out" "stale-baton-test.service: no master answers on /run/stale-baton-test/control.sock; sending SIGUSR2"
check "stale socket: a new master, running the new binary" eventually 30 eval 'pid_changed stale-baton-test $st && runs_installed stale-baton-test'
check "man: the new master waits for the operator" contains "$out" "baton-fdstore@man.service: baton upgrade: new master"
check "  said so, not failed" contains "$out" "baton-fdstore@man.service: upgrade in flight, or waiting for the operator's commit"
check "  no FAILED line at all" eval '! grep -q FAILED <<<"$out"'
check "  the summary" contains "$out" "6 instance(s): 3 upgraded, 2 started, 1 in flight, 0 failed"
check "man: the old master is still in charge" test "$(mainpid baton-fdstore@man)" = "$man"
check "man: baton status shows the upgrade" eval 'baton status --socket /run/baton/man/control.sock | grep -qi "upgrade"'
out=$(baton commit --wait --socket /run/baton/man/control.sock 2>&1)
rc=$?
echo "$out"
check "man: baton commit --wait exits 0, committed" eval '[ $rc = 0 ] && contains "$out" "upgrade committed"'
check "man: a new master, running the new binary" eventually 30 eval 'pid_changed baton-fdstore@man $man && runs_installed baton-fdstore@man'
out=$(baton commit --socket /run/baton/man/control.sock 2>&1)
rc=$?
check "man: commit again: exit 1, nothing in flight" eval '[ $rc = 1 ] && contains "$out" "no upgrade in flight"'
check "example: a new master, running the new binary" eval 'pid_changed baton-fdstore@example $ex && runs_installed baton-fdstore@example'
check "sock: a new master, running the new binary" eval 'pid_changed baton@sock $so && runs_installed baton@sock'
check "alt: a new master, running the new binary" eval 'pid_changed baton-fdstore@alt $alt && runs_installed baton-fdstore@alt'
check "own unit: a new master, running the new binary" eventually 30 eval 'pid_changed own-baton-test $own && runs_installed own-baton-test'
check "example serves generation 2" eval 'http | grep -q "generation=2"'
check "deb: nothing restarted it either (generation 2)" eval 'baton status --socket /run/baton/example/control.sock | grep -q "generation 2"'
check "the load got answers ($load_ok)" test "$load_ok" -gt 0
check "no request failed during the upgrade ($load_failed failed)" test "$load_failed" = 0
check "the instances are still active" systemctl is-active -q baton-fdstore@example baton@sock baton-fdstore@alt own-baton-test baton-fdstore@man stale-baton-test

# Idempotent: running the postinst again upgrades nothing (the masters run the installed file).
ex=$(mainpid baton-fdstore@example)
out=$(/var/lib/dpkg/info/baton.postinst configure 0.0.0~test.1-1 2>&1)
check "postinst again: exit 0, nothing to do" eval '[ $? = 0 ] && [ -z "$out" ]'
check "postinst again: same master" test "$(mainpid baton-fdstore@example)" = "$ex"
# The admin's units are not the package's to stop on removal: the test stops them, and the
# manual-commit instance, whose upgrades are the operator's.
systemctl stop own-baton-test.service stale-baton-test.service baton-fdstore@man.service

# ---------------------------------------------------------------- deb: a failing upgrade
section "deb: a failing upgrade"
# sock's config no longer parses: its new master fails, the old one keeps serving, and
# the package still installs.
ex=$(mainpid baton-fdstore@example) so=$(mainpid baton@sock)
echo 'no_such_key = 1' >>/etc/baton/sock.toml
out=$(dpkg -i "$deb1" 2>&1)
rc=$?
echo "$out" | grep '^baton:'
check "dpkg -i (downgrade to v1) succeeds although one instance fails" test $rc = 0
check "the failure is printed" contains "$out" "baton@sock.service: hot upgrade FAILED (exit 1), it keeps serving with the old binary"
check "sock: same master, still serving" eval '[ "$(mainpid baton@sock)" = "$so" ] && serves --unix-socket /run/baton/sock.sock http://x/'
check "example: upgraded all the same" eval 'pid_changed baton-fdstore@example $ex && runs_installed baton-fdstore@example'
check "the summary counts it" contains "$out" "1 failed"
sed -i '/^no_such_key/d' /etc/baton/sock.toml

# ---------------------------------------------------------------- deb: turned off
section "deb: turned off"
ex=$(mainpid baton-fdstore@example) so=$(mainpid baton@sock)
touch /etc/baton/no-hot-upgrade
out=$(dpkg -i "$deb2" 2>&1)
check "with /etc/baton/no-hot-upgrade: installs" test $? = 0
check "  and says it is turned off" contains "$out" "hot upgrade turned off"
check "  and leaves the masters alone" eval '[ "$(mainpid baton-fdstore@example)" = "$ex" ] && [ "$(mainpid baton@sock)" = "$so" ]'
rm /etc/baton/no-hot-upgrade
out=$(BATON_NO_HOT_UPGRADE=1 dpkg -i "$deb2" 2>&1)
check "with BATON_NO_HOT_UPGRADE=1: says it is turned off" contains "$out" "hot upgrade turned off"
check "  and leaves the masters alone" eval '[ "$(mainpid baton-fdstore@example)" = "$ex" ] && [ "$(mainpid baton@sock)" = "$so" ]'
out=$(/var/lib/dpkg/info/baton.postinst configure 0.0.0~test.2-1 2>&1)
check "postinst run by hand later upgrades them" eval 'runs_installed baton-fdstore@example && runs_installed baton@sock'

# ---------------------------------------------------------------- deb: policy-rc.d
section "deb: policy-rc.d"
# A policy-rc.d that forbids every action: the prerm stops nothing (deb-systemd-invoke asks
# it first, as debhelper's snippets do).
if command -v deb-systemd-invoke >/dev/null; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	ex=$(mainpid baton-fdstore@example)
	out=$(/var/lib/dpkg/info/baton.prerm remove 2>&1)
	rc=$?
	rm -f /usr/sbin/policy-rc.d
	check "prerm with policy-rc.d 101: exit 0" test $rc = 0
	check "  deb-systemd-invoke asked it" contains "$out" "policy-rc.d returned 101"
	check "  and the instances keep running" eval 'systemctl is-active -q baton-fdstore@example baton@sock && [ "$(mainpid baton-fdstore@example)" = "$ex" ]'
else
	echo "skip: deb-systemd-invoke is not installed (init-system-helpers)"
fi

# ---------------------------------------------------------------- deb: remove, purge
section "deb: remove, purge"
out=$(dpkg -r baton 2>&1)
rc=$?
echo "$out" | grep '^baton:'
check "dpkg -r succeeds" test $rc = 0
check "every baton unit is stopped" eval '[ -z "$(systemctl list-units --plain --no-legend --state=active "baton*")" ]'
check "the config stays" test -f /etc/baton/example.toml
check "the enablement stays (Debian: until purge)" test -L /etc/systemd/system/multi-user.target.wants/baton-fdstore@example.service
out=$(dpkg -P baton 2>&1)
check "dpkg -P succeeds" test $? = 0
check "/etc/baton is gone" test ! -e /etc/baton/example.toml
check "the dangling enablement link is gone" test ! -L /etc/systemd/system/multi-user.target.wants/baton-fdstore@example.service
check "systemd forgot the units" eval '! systemctl cat baton@.service >/dev/null 2>&1'

# ---------------------------------------------------------------- rpm
section "rpm"
# Debian's rpm needs --force-debian; --nodeps: the empty rpm database has no /bin/sh.
if command -v rpm >/dev/null; then
	rpm --initdb
	rpmi() { rpm --force-debian --nodeps "$@"; }
	out=$(rpmi -i "$rpm1" 2>&1)
	check "rpm -i v1 succeeds" test $? = 0
	check "%config(noreplace) example.toml" eval 'rpm -qc baton | grep -qx /etc/baton/example.toml'
	systemctl enable --now baton-fdstore@example.service
	check "rpm: baton-fdstore@example serves" eventually 20 serves http://127.0.0.1:8080/
	ex=$(mainpid baton-fdstore@example)
	out=$(BATON_NO_HOT_UPGRADE=1 rpmi -U --replacepkgs "$rpm1" 2>&1)
	check "rpm: BATON_NO_HOT_UPGRADE=1 reaches %post" contains "$out" "hot upgrade turned off"
	check "  and the master is left alone" test "$(mainpid baton-fdstore@example)" = "$ex"
	start_load
	out=$(rpmi -U "$rpm2" 2>&1)
	rc=$?
	stop_load
	echo "$out" | grep '^baton:'
	check "rpm -U v2 succeeds" test $rc = 0
	check "rpm: upgrade committed, reported" contains "$out" "baton-fdstore@example.service: baton upgrade: upgrade committed"
	check "rpm: a new master, running the new binary" eval 'pid_changed baton-fdstore@example $ex && runs_installed baton-fdstore@example'
	check "rpm: the old package's scripts restarted nothing (generation 2)" eval 'baton status --socket /run/baton/example/control.sock | grep -q "generation 2"'
	check "rpm: no request failed during the upgrade ($load_ok ok, $load_failed failed)" test "$load_failed" = 0 -a "$load_ok" -gt 0
	out=$(rpm -e --nodeps baton 2>&1)
	rc=$?
	echo "$out" | grep '^baton:'
	check "rpm -e succeeds" test $rc = 0
	check "rpm: the instance is stopped" eval '! systemctl is-active -q baton-fdstore@example'
	check "rpm: and disabled (Fedora)" test ! -L /etc/systemd/system/multi-user.target.wants/baton-fdstore@example.service
else
	echo "skip lab: rpm is not installed"
fi

[ "$fails" = 0 ] || dump_journal
echo "lab: done"
exit $((fails > 0))
