#!/bin/sh
# baton preremove (deb prerm, rpm %preun).
#
# On removal (not on upgrade): stop every unit of the package's unit files (the instances of
# baton@.service, baton@.socket, baton-fdstore@.service…), since their binary is about to
# go; sockets first, so that nothing activates a service being stopped. On deb the
# instances stay enabled, as Debian's deb-systemd-helper leaves them (the admin's choice
# survives a remove and a reinstall; postremove cleans the links up on purge); on rpm,
# which has no purge, they are also disabled, as Fedora's %systemd_preun does. Units of
# the admin's own that run /usr/bin/baton are not touched. Quiet when systemd is not
# running (container, chroot).
#
# Arguments: deb `remove` (upgrade, deconfigure, failed-upgrade: nothing to do); rpm: 0
# (erase; 1+ is an upgrade: nothing to do).

set -e

log() { echo "baton: $*"; }

# stop_units UNIT…: on deb through deb-systemd-invoke when there is one, which asks
# policy-rc.d first, as debhelper's snippets do; without it, and on rpm, systemctl
# (Fedora's %systemd_preun).
stop_units() {
	if [ "$format" = deb ] && command -v deb-systemd-invoke >/dev/null 2>&1; then
		deb-systemd-invoke stop "$@"
	else
		systemctl stop "$@"
	fi
}

case "${1:-}" in
remove) format=deb ;;
0) format=rpm ;;
*) exit 0 ;;
esac

[ -d /run/systemd/system ] || exit 0

# The package's unit files are still in place: baton.service, baton@.socket, baton-x@.service.
files=""
patterns_socket=""
patterns_service=""
for f in /usr/lib/systemd/system/baton.* /usr/lib/systemd/system/baton@.* \
	/usr/lib/systemd/system/baton-*; do
	[ -f "$f" ] || continue
	name=${f##*/}
	files="$files $name"
	pattern=$(echo "$name" | sed 's/@\./@*./') # baton@.service -> baton@*.service
	case $name in
	*.socket) patterns_socket="$patterns_socket $pattern" ;;
	*.service) patterns_service="$patterns_service $pattern" ;;
	esac
done

for patterns in "$patterns_socket" "$patterns_service"; do
	[ -n "$patterns" ] || continue
	# shellcheck disable=SC2086 # unit names and patterns have no spaces
	units=$(systemctl list-units --all --plain --no-legend --full $patterns 2>/dev/null |
		awk '$3 != "inactive" { print $1 }')
	[ -n "$units" ] || continue
	# shellcheck disable=SC2086
	log "stopping" $units
	# shellcheck disable=SC2086
	stop_units $units || log "warning: stopping failed"
done

if [ "$format" = rpm ] && [ -n "$files" ]; then
	# Disabling a template disables every instance of it.
	# shellcheck disable=SC2086
	systemctl --no-reload disable $files >/dev/null 2>&1 || log "warning: systemctl disable failed"
fi
exit 0
