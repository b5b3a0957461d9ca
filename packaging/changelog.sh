#!/usr/bin/env bash
# changelog.sh: the packages' changelogs, generated from CHANGELOG.md (Keep a Changelog).
#
#   packaging/changelog.sh deb PKGVERSION EPOCH MAINTAINER <CHANGELOG.md   debian/changelog
#   packaging/changelog.sh rpm PKGVERSION EPOCH MAINTAINER <CHANGELOG.md   nfpm's changelog
#                                                                            (chglog YAML)
#
# PKGVERSION is the full package version (1.2.3-1): it names the first section that has
# entries, normally [Unreleased], dated EPOCH (SOURCE_DATE_EPOCH). A released section,
# `## [1.2.3] - 2026-01-31`, becomes version 1.2.3-1 of that day. Each top-level bullet is
# one change, prefixed with its `### Added`/`Fixed`/… heading; its wrapped lines are
# joined. deb: folded at 78 columns, as dch writes them. rpm: the chglog YAML that
# nfpm turns into %changelog, written as JSON (a subset of YAML, so quoting is exact).
set -euo pipefail

if [ $# -ne 4 ] || { [ "$1" != deb ] && [ "$1" != rpm ]; }; then
	echo "usage: $0 deb|rpm PKGVERSION EPOCH MAINTAINER <CHANGELOG.md" >&2
	exit 2
fi
format=$1 pkgversion=$2 epoch=$3 maintainer=$4
case $epoch in '' | *[!0-9]*)
	echo "changelog.sh: EPOCH must be seconds since 1970, not '$epoch'" >&2
	exit 2
	;;
esac

# changes: one line per change, "VERSION DATE HEADING TEXT" separated by \037 (not a
# tab: tab is IFS whitespace, and an empty DATE would vanish); DATE is YYYY-MM-DD or
# empty (the unreleased section).
changes() {
	awk -v pkgversion="$pkgversion" '
	function flush() {
		if (text != "") { print version "\037" date "\037" heading "\037" text; n++ }
		text = ""
	}
	/^## / {
		flush()
		first = (version == "")
		if ($0 ~ /^## \[Unreleased\]/) { version = pkgversion; date = "" }
		else if (match($0, /^## \[[^]]+\]/)) {
			version = substr($0, 5, RLENGTH - 5) "-1"
			date = ""
			if (match($0, /[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]/)) date = substr($0, RSTART, RLENGTH)
		} else { version = ""; }
		# The first section with entries carries the package version.
		if (n == 0) version = pkgversion
		heading = ""
		next
	}
	/^### / { flush(); heading = substr($0, 5); next }
	version == "" { next }
	/^- / { flush(); text = substr($0, 3); next }
	/^[[:space:]]*$/ { flush(); next }
	/^[[:space:]]/ && text != "" {
		line = $0; sub(/^[[:space:]]+/, "", line); text = text " " line; next
	}
	{ flush() }
	END { flush() }'
}

# The date of a version: EPOCH for the unreleased section, noon UTC of its day otherwise.
when() {
	if [ -n "$1" ]; then date -u -d "$1 12:00" +%s; else echo "$epoch"; fi
}

list=$(changes)
if [ -z "$list" ]; then
	echo "changelog.sh: no entries in CHANGELOG.md (want '## [Unreleased]' or '## [X.Y.Z] - DATE', '### Added', '- change')" >&2
	exit 1
fi

if [ "$format" = deb ]; then
	prev="" prevhead=""
	while IFS=$'\037' read -r version day heading text; do
		if [ "$version" != "$prev" ]; then
			if [ -n "$prev" ]; then
				printf '\n -- %s  %s\n\n' "$maintainer" "$(date -u -R -d "@$(when "$prevday")")"
			fi
			printf 'baton (%s) unstable; urgency=medium\n' "$version"
			prev=$version prevday=$day prevhead=""
		fi
		if [ "$heading" != "$prevhead" ]; then
			printf '\n  [ %s ]\n' "$heading"
			prevhead=$heading
		fi
		printf '%s\n' "$text" | fold -s -w 74 | sed -e 's/[[:space:]]*$//' -e '1s/^/  * /' -e '2,$s/^/    /'
	done <<<"$list"
	printf '\n -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$(when "$prevday")")"
	exit 0
fi

# rpm: JSON strings need \ and " escaped; the texts have no control characters.
json() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/ /g')"; }
prev=""
printf '['
while IFS=$'\037' read -r version day heading text; do
	if [ "$version" != "$prev" ]; then
		[ -z "$prev" ] || printf ']},'
		printf '\n{"semver": %s, "date": %s, "packager": %s, "changes": [' "$(json "$version")" \
			"$(json "$(date -u -d "@$(when "$day")" +%Y-%m-%dT%H:%M:%SZ)")" "$(json "$maintainer")"
		prev=$version sep=""
	fi
	printf '%s\n  {"note": %s}' "$sep" "$(json "$heading: $text")"
	sep=,
done <<<"$list"
printf ']}]\n'
