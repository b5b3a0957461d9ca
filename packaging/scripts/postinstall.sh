#!/bin/sh
# baton postinstall (deb postinst, rpm %post).
#
# After any install or upgrade: systemctl daemon-reload. After an upgrade: hot-upgrade every
# active service whose master runs the replaced /usr/bin/baton (baton@, baton-fdstore@
# instances, the admin's own units) to the new one, one at a time, without dropping a
# connection: `baton upgrade --wait` on the instance's control socket, or, when there is
# none (or no master answers on it), SIGUSR2 to its main process. What happened is printed
# per instance, from `baton upgrade`'s exit status: 0 upgraded; 1 failed, and the old
# binary keeps serving; 4 still in flight when the wait ended, or (commit = "manual") the
# new master is ready and waits for the operator's `baton commit`. Nothing fails the
# package.
#
# Turn the hot upgrade off with BATON_NO_HOT_UPGRADE=1 in the environment, or by creating
# /etc/baton/no-hot-upgrade. Each wait lasts as long as the instance's master says its
# upgrade can take at worst (from its upgrade.timeout, soak and stop_timeout; 10 minutes
# from a master too old to say); BATON_HOT_UPGRADE_TIMEOUT (90s, 5m) bounds it instead.
# Quiet and harmless when systemd is not running (container, chroot).
#
# Arguments: deb `configure <old-version>` (old-version empty on a first install),
# `abort-upgrade|abort-remove|abort-deconfigure …`; rpm: 1 (install) or 2+ (upgrade).
#
# set -e, as Debian policy wants: every command that may fail for a reason outside the
# package (systemctl, an instance's upgrade) is tested, so only a broken script fails.
# Queries go to systemctl directly; the hot upgrade's signal too (`systemctl kill
# --kill-whom=main`, which deb-systemd-invoke cannot pass on).
set -e

log() { echo "baton: $*"; }

case "${1:-}" in
configure) if [ -n "${2:-}" ]; then action=upgrade; else action=install; fi ;;
abort-*) action=install ;; # the old package is back in place: reload units, nothing else
1) action=install ;;
[2-9] | [1-9][0-9]*) action=upgrade ;;
*) exit 0 ;;
esac

[ -d /run/systemd/system ] || exit 0

systemctl daemon-reload || log "warning: systemctl daemon-reload failed"

[ "$action" = upgrade ] || exit 0

# control_socket prints the control socket of a unit: control.sock in its first
# RuntimeDirectory (baton's default), e.g. /run/baton/web/control.sock for baton@web
# (RuntimeDirectory=baton/%i).
control_socket() {
	dirs=$(systemctl show -p RuntimeDirectory --value "$1" 2>/dev/null </dev/null)
	first=${dirs%% *}
	[ -n "$first" ] || return 1
	echo "/run/$first/control.sock"
}

# stale_units prints "UNIT PID" for every active service whose main process runs a
# /usr/bin/baton that has just been replaced (the kernel shows "/usr/bin/baton (deleted)"):
# every baton@, baton-fdstore@ instance, and any unit of the admin's own with
# ExecStart=/usr/bin/baton. One that already runs the installed file is left alone, so
# running this twice upgrades nothing twice.
stale_units() {
	active=$(systemctl list-units --type=service --state=active --plain --no-legend --full 2>/dev/null |
		awk '{ print $1 }')
	[ -n "$active" ] || return 0
	# shellcheck disable=SC2086 # unit names have no spaces (systemd escapes them)
	info=$(systemctl show -p Id -p MainPID $active 2>/dev/null) || true
	printf '%s\n' "$info" |
		awk -F= '/^Id=/ { id = $2 } /^MainPID=/ { pid = $2 }
			/^$/ { if (pid > 0) print id, pid; id = ""; pid = 0 }
			END { if (pid > 0) print id, pid }' |
		while read -r unit pid; do
			exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
			if [ "$exe" = "/usr/bin/baton (deleted)" ]; then echo "$unit $pid"; fi
		done
}

timeout=${BATON_HOT_UPGRADE_TIMEOUT:-}
stale=$(stale_units)
[ -n "$stale" ] || exit 0

if [ "${BATON_NO_HOT_UPGRADE:-}" = 1 ] || [ -e /etc/baton/no-hot-upgrade ]; then
	log "hot upgrade turned off (BATON_NO_HOT_UPGRADE=1 or /etc/baton/no-hot-upgrade); these keep"
	log "the old binary until 'baton upgrade -c /etc/baton/INSTANCE.toml' or a restart:"
	echo "$stale" | while read -r unit pid; do log "  $unit (master pid $pid)"; done
	exit 0
fi

total=0
upgraded=0
started=0
inflight=0
failed=0

# say UNIT TEXT: each line of TEXT, prefixed with the unit.
say() {
	printf '%s\n' "$2" | while IFS= read -r line; do log "$1: $line"; done
}

# usr2 UNIT PID WHY: the upgrade without a control socket: SIGUSR2 to the main process only
# (a plain `systemctl kill` reaches every process of the unit, workers included).
usr2() {
	log "$1: $3; sending SIGUSR2 to master pid $2"
	if systemctl kill --kill-whom=main -s USR2 "$1" </dev/null; then
		started=$((started + 1))
		log "$1: upgrade started, not waited for; see 'systemctl status $1'"
	else
		failed=$((failed + 1))
		log "$1: could not signal it; it keeps serving with the old binary"
	fi
}

# A here-document, not a pipe: the loop must run in this shell to count.
while read -r unit pid; do
	total=$((total + 1))
	sock=$(control_socket "$unit") || sock=""
	if [ -z "$sock" ] || [ ! -S "$sock" ]; then
		usr2 "$unit" "$pid" "no control socket${sock:+ at $sock}"
		continue
	fi
	log "$unit: hot upgrade of master pid $pid through $sock"
	rc=0
	out=$(/usr/bin/baton upgrade --wait ${timeout:+--timeout "$timeout"} --socket "$sock" 2>&1 </dev/null) || rc=$?
	say "$unit" "$out"
	case $rc in
	0) upgraded=$((upgraded + 1)) ;;
	3) usr2 "$unit" "$pid" "no master answers on $sock" ;;
	4)
		inflight=$((inflight + 1))
		log "$unit: upgrade in flight, or waiting for the operator's commit (commit = \"manual\"): not failed;"
		log "$unit: see 'baton status --socket $sock'; 'baton commit --socket $sock' commits, 'baton rollback' rolls back"
		;;
	*)
		failed=$((failed + 1))
		log "$unit: hot upgrade FAILED (exit $rc), it keeps serving with the old binary"
		log "$unit: see 'baton status --socket $sock' and 'journalctl -u $unit'"
		;;
	esac
done <<EOF
$stale
EOF
log "hot upgrade of $total instance(s): $upgraded upgraded, $started started, $inflight in flight, $failed failed"
exit 0
