#!/bin/bash
# lab-fresh-host.sh: runs INSIDE a systemd lab; makes it a fresh Debian host on which
# packages install for real (packaging/testdata/lab-install.sh and the fleet test,
# labtest/fleet, both start with it).
#
# The lab's /usr is read-only (the host's, or a debootstrapped root's), and its /etc and
# /var are empty tmpfs: this mounts a tmpfs overlay on /usr and starts an empty dpkg
# database (and the directories apt and dpkg expect), so that `dpkg -i`, `apt-get install
# ./x.deb` and `rpm -i` work as on a fresh machine. dpkg then owns /usr/bin and friends in
# its database and warns that they are not empty on purge: an artefact of the empty
# database. Idempotent: a second run finds the overlay mounted and changes nothing.
# Exit status: 0, or 1 with the reason on stderr.
set -u

if [ "$(stat -fc %T /usr)" != overlayfs ]; then
	mkdir -p /run/usr-rw/upper /run/usr-rw/work
	mount -t overlay overlay -o lowerdir=/usr,upperdir=/run/usr-rw/upper,workdir=/run/usr-rw/work /usr ||
		{ echo "lab-fresh-host.sh: cannot mount a writable /usr" >&2; exit 1; }
fi
# The host's /usr may carry a Docker-style /usr/sbin/policy-rc.d (exit 101: "start and
# stop nothing", for image builds); a booted server has none. The prerm honours it through
# deb-systemd-invoke, which lab-install.sh proves apart ("deb: policy-rc.d").
rm -f /usr/sbin/policy-rc.d
mkdir -p /var/lib/dpkg/info /var/lib/dpkg/updates /var/lib/dpkg/triggers /var/log \
	/etc/dpkg/dpkg.cfg.d /etc/apt/apt.conf.d /etc/apt/preferences.d /etc/apt/sources.list.d \
	/etc/apt/trusted.gpg.d /var/lib/apt/lists/partial /var/cache/apt/archives/partial /var/log/apt
touch /var/lib/dpkg/status /var/lib/dpkg/available
# baton-fdstore@ wants network-online.target; in the lab (loopback only) the host's
# systemd-networkd-wait-online would hold every start for its 120 s timeout.
systemctl mask --now systemd-networkd-wait-online.service >/dev/null 2>&1
exit 0
