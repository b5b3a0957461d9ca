#!/usr/bin/env bash
# check.sh: lint built packages the way a distribution would (`make package-check`).
#
#   packaging/check.sh DIR       every .deb and .rpm in DIR
#
# lintian (Debian 12's, --pedantic, with info tags: any tag, and any override that
# matches nothing, fails), rpmlint (with packaging/rpmlintrc.toml), and each man page
# rendered with `man --warnings` (any warning fails). Installs lintian, rpmlint,
# python3-magic and man-db with apt-get when they are missing.
#
# rpmlint unpacks a package with `rpm2cpio | cpio -id`; nfpm's payload names files with
# absolute paths (/usr/bin/baton), which GNU cpio then writes to the real / when run as
# root. A cpio first in PATH adds --no-absolute-filenames, so rpmlint unpacks into its
# own temporary directory, and sees the files (its binary checks run on them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(cd "${1:?usage: $0 DIR}" && pwd)

need=()
command -v lintian >/dev/null || need+=(lintian)
command -v rpmlint >/dev/null || need+=(rpmlint)
/usr/bin/python3 -c 'import magic' 2>/dev/null || need+=(python3-magic)
command -v man >/dev/null || need+=(man-db)
if [ ${#need[@]} -gt 0 ]; then
	echo "check.sh: installing ${need[*]} with apt-get"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

shopt -s nullglob
debs=("$dir"/*.deb)
rpms=("$dir"/*.rpm)
if [ ${#debs[@]} -eq 0 ] || [ ${#rpms[@]} -eq 0 ]; then
	echo "check.sh: no .deb or no .rpm in $dir" >&2
	exit 2
fi
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for deb in "${debs[@]}"; do
	echo "== lintian $(basename "$deb")"
	# -I: info tags too; --pedantic; --fail-on: any of them, and unused overrides.
	if out=$(lintian -I --pedantic --fail-on error,warning,info,pedantic "$deb" 2>&1 |
		grep -v '^running with root privileges'); [ -n "$out" ]; then
		echo "$out"
		fails=$((fails + 1))
	else
		echo "clean"
	fi
	mkdir -p "$tmp/deb"
	dpkg-deb -x "$deb" "$tmp/deb"
done

mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexec /usr/bin/cpio --no-absolute-filenames "$@"\n' >"$tmp/bin/cpio"
chmod +x "$tmp/bin/cpio"
for rpm in "${rpms[@]}"; do
	echo "== rpmlint $(basename "$rpm")"
	out=$(cd "$tmp" && PATH="$tmp/bin:$PATH" rpmlint -c "$here/rpmlintrc.toml" "$rpm" 2>&1) || true
	# The summary line counts what the filters let through.
	if grep -q ' 0 errors, 0 warnings' <<<"$out"; then
		echo "clean"
	else
		echo "$out"
		fails=$((fails + 1))
	fi
done

pages=("$tmp"/deb/usr/share/man/man*/*)
if [ ${#pages[@]} -eq 0 ]; then
	echo "FAIL: no man pages in the .deb"
	fails=$((fails + 1))
fi
for page in "${pages[@]}"; do
	echo "== man --warnings ${page#"$tmp/deb"}"
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null) || true
	if [ -n "$out" ]; then
		echo "$out"
		fails=$((fails + 1))
	else
		echo "clean"
	fi
done

echo "package-check: $fails failed"
[ "$fails" = 0 ]
