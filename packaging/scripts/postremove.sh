#!/bin/sh
# baton postremove (deb postrm, rpm %postun).
#
# After removal (not upgrade): systemctl daemon-reload, so systemd forgets the unit files.
# On deb purge, also remove the enablement links (in /etc/systemd/system/*.wants/ …) of
# baton units that now point nowhere: what `systemctl enable baton@web` made and the
# remove left behind. On an upgrade the new package's postinstall has reloaded already;
# on rpm an upgrade must not restart anything here (the new package hot-upgraded the
# instances). Quiet when systemd is not running (container, chroot).
#
# Arguments: deb `remove|purge|abort-install` (upgrade, failed-upgrade, abort-upgrade,
# disappear: nothing to do); rpm: 0 (erase; 1+ is an upgrade: nothing to do).
#
# On purge, debhelper's snippet would call `deb-systemd-helper purge`: it forgets only
# what deb-systemd-helper enabled, and this package enables nothing (the admin enables
# instances of templates), so the links are removed here.
set -e

case "${1:-}" in
remove | abort-install | 0) ;;
purge)
	# Only links whose target is gone: a unit file of the admin's own is never touched.
	for link in /etc/systemd/system/*.wants/baton[@.-]* /etc/systemd/system/*.requires/baton[@.-]*; do
		if [ -L "$link" ] && [ ! -e "$link" ]; then
			rm -f "$link"
		fi
	done
	;;
*) exit 0 ;;
esac

[ -d /run/systemd/system ] || exit 0

systemctl daemon-reload || echo "baton: warning: systemctl daemon-reload failed"
exit 0
