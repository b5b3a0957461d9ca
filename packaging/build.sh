#!/usr/bin/env bash
# Build baton's .deb and .rpm.
#
#   packaging/build.sh VERSION OUTDIR
#
# VERSION is what `baton version` prints (normally `git describe --tags --always --dirty`);
# the package version is derived from it (see pkg_version). OUTDIR receives
# baton_<ver>-1_<arch>.deb and baton-<ver>-1.<arch>.rpm; the staging tree is a temporary
# directory removed on exit.
#
# Environment: GOARCH (default: the host's), NFPM_VERSION (default: the pinned one below),
# SOURCE_DATE_EPOCH (default: the last commit's time, so the same tree gives the same
# packages), BATON_MAINTAINER and BATON_HOMEPAGE (default: packaging/meta), GO_MD2MAN
# (default: go-md2man in PATH, Debian's package go-md2man).
set -euo pipefail

# nfpm, run with `go run …@version`, never added to go.mod. v2.45.2 is the newest v2 release
# whose module graph resolves through the module proxy we have: v2.46.0 and later need
# go.digitalxero.dev modules (msix, rpm), which that proxy refuses.
NFPM_VERSION=${NFPM_VERSION:-v2.45.2}

if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
	echo "usage: $0 VERSION OUTDIR" >&2
	exit 2
fi
version=$1
outdir=$2

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$PATH:/usr/local/go/bin"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# pkg_version turns a `git describe` string into a version that dpkg and rpm both order
# correctly: v1.2.3 -> 1.2.3; v1.2.3-rc.1 -> 1.2.3~rc.1 (before 1.2.3); v1.2.3-4-gabc1234
# -> 1.2.3+4.gabc1234 (after 1.2.3); no tag yet (abc1234) -> 0.0.0+gabc1234; -dirty ->
# +dirty (or .dirty after a +).
pkg_version() {
	local v=${1#v} dirty="" out
	case $v in *-dirty) v=${v%-dirty} dirty=dirty ;; esac
	if [[ $v =~ ^[0-9a-f]{4,40}$ ]]; then
		out="0.0.0+g$v"
	elif [[ $v =~ ^([0-9]+(\.[0-9]+)*)(-([0-9A-Za-z.]+))?(-([0-9]+)-g([0-9a-f]+))?$ ]]; then
		out=${BASH_REMATCH[1]}
		[ -n "${BASH_REMATCH[4]}" ] && out+="~${BASH_REMATCH[4]}"
		[ -n "${BASH_REMATCH[6]}" ] && out+="+${BASH_REMATCH[6]}.g${BASH_REMATCH[7]}"
	else
		echo "build.sh: cannot make a package version of $1 (want vX.Y.Z[-pre][-N-gHASH][-dirty] or a hash)" >&2
		return 1
	fi
	if [ -n "$dirty" ]; then
		case $out in *+*) out+=".dirty" ;; *) out+="+dirty" ;; esac
	fi
	echo "$out"
}

# Maintainer and homepage: one place, packaging/meta. Every unit's https Documentation=
# and the copyright file's Source: must point there.
# shellcheck source=packaging/meta
. packaging/meta
export BATON_MAINTAINER BATON_HOMEPAGE
for f in units/*.service units/*.socket units/*/*.service units/*/*.socket packaging/debian/copyright; do
	[ -f "$f" ] || continue
	bad=$(grep -E '^(Documentation=https?:|Source: )' "$f" | grep -vF "$BATON_HOMEPAGE" || true)
	if [ -n "$bad" ]; then
		echo "build.sh: $f: '$bad' is not under BATON_HOMEPAGE $BATON_HOMEPAGE (packaging/meta)" >&2
		exit 1
	fi
done
if ! command -v "${GO_MD2MAN:-go-md2man}" >/dev/null; then
	echo "build.sh: ${GO_MD2MAN:-go-md2man} not found: the man pages need it (apt-get install go-md2man)" >&2
	exit 1
fi

BATON_PKG_VERSION=$(pkg_version "$version")
BATON_ARCH=${GOARCH:-$(go env GOARCH)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
BATON_STAGE=$(mktemp -d "${TMPDIR:-/tmp}/baton-package.XXXXXX")
trap 'rm -rf "$BATON_STAGE"' EXIT
export BATON_PKG_VERSION BATON_ARCH BATON_STAGE SOURCE_DATE_EPOCH

# The binaries: static (CGO_ENABLED=0), so one package runs on any glibc or musl system.
# The price: user and group names in the config are looked up in /etc/passwd and
# /etc/group only (no NSS: LDAP, sssd); numeric ids always work.
echo "build.sh: baton $version (package $BATON_PKG_VERSION, $BATON_ARCH)"
export CGO_ENABLED=0 GOOS=linux GOARCH=$BATON_ARCH
go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$BATON_STAGE/bin/baton" ./cmd/baton
go build -trimpath -ldflags "-s -w" -o "$BATON_STAGE/bin/hello" ./examples/hello
unset CGO_ENABLED GOOS GOARCH

# Every module linked into a binary needs its paragraph in the copyright file (its
# license is in the module cache: `go env GOMODCACHE`/MODULE@VERSION/LICENSE*).
for b in baton hello; do
	for mod in $(go version -m "$BATON_STAGE/bin/$b" | awk '$1 == "dep" { print $2 }'); do
		if ! grep -qxF "Files: $mod/*" packaging/debian/copyright; then
			echo "build.sh: $b links $mod, which has no 'Files: $mod/*' paragraph in packaging/debian/copyright" >&2
			exit 1
		fi
	done
done

# Unit files: units/*.service and *.socket go to /usr/lib/systemd/system; every subfolder
# of units/ holding unit files (a variant such as v254/, for systemd >= 254) goes, whole,
# to /usr/share/doc/baton/units/<subfolder>/: one package serves every systemd, so only the
# units that run on the oldest supported one are installed live.
unitsdir=units
mkdir -p "$BATON_STAGE/systemd" "$BATON_STAGE/doc/units"
shopt -s nullglob
units=("$unitsdir"/*.service "$unitsdir"/*.socket)
if [ ${#units[@]} -eq 0 ]; then
	echo "build.sh: no unit files in $unitsdir/ (*.service, *.socket)" >&2
	exit 1
fi
cp "${units[@]}" "$BATON_STAGE/systemd/"
for d in "$unitsdir"/*/; do
	d=${d%/}
	name=${d##*/}
	[ "$name" != testdata ] || continue
	variant=("$d"/*.service "$d"/*.socket "$d"/*.conf)
	[ ${#variant[@]} -gt 0 ] || continue
	mkdir -p "$BATON_STAGE/doc/units/$name"
	cp -R "$d"/. "$BATON_STAGE/doc/units/$name/"
done
shopt -u nullglob

# Docs. The upstream changelog goes as changelog.gz (Debian's name for it); gzip -9n:
# no name, no timestamp, so the same tree gives the same bytes.
cp README.md "$BATON_STAGE/doc/"
gzip -9n <CHANGELOG.md >"$BATON_STAGE/doc/changelog.gz"
if [ -f "$unitsdir/README.md" ]; then cp "$unitsdir/README.md" "$BATON_STAGE/doc/units/"; fi

# Man pages: docs/NAME.SECTION.md, with the README's tables and config/default.toml's keys
# pulled in (packaging/manpages.sh), rendered by go-md2man, as man/manSECTION/NAME.SECTION.gz.
packaging/manpages.sh "$BATON_STAGE/manpages"
for page in "$BATON_STAGE"/manpages/*; do
	sect=${page##*.}
	mkdir -p "$BATON_STAGE/man/man$sect"
	gzip -9n <"$page" >"$BATON_STAGE/man/man$sect/${page##*/}.gz"
done

# deb only: the copyright file, and the Debian changelog generated from CHANGELOG.md.
mkdir -p "$BATON_STAGE/deb"
cp packaging/debian/copyright "$BATON_STAGE/deb/copyright"
packaging/changelog.sh deb "$BATON_PKG_VERSION-1" "$SOURCE_DATE_EPOCH" "$BATON_MAINTAINER" <CHANGELOG.md |
	gzip -9n >"$BATON_STAGE/deb/changelog.Debian.gz"
# rpm only: %changelog, from the same source (nfpm reads chglog's YAML).
packaging/changelog.sh rpm "$BATON_PKG_VERSION-1" "$SOURCE_DATE_EPOCH" "$BATON_MAINTAINER" <CHANGELOG.md \
	>"$BATON_STAGE/changelog.yml"

# Modes in the package are the staged ones (nfpm's tree type takes them from the files).
chmod -R u=rwX,go=rX "$BATON_STAGE/systemd" "$BATON_STAGE/doc" "$BATON_STAGE/man" "$BATON_STAGE/deb"

# The example configuration: config/default.toml with the reference worker named by its
# packaged path (under systemd, PATH does not include /usr/lib/baton).
sed 's|^command = \["hello"\]|command = ["/usr/lib/baton/hello"]|' config/default.toml >"$BATON_STAGE/example.toml"
if ! grep -q '^command = \["/usr/lib/baton/hello"\]' "$BATON_STAGE/example.toml"; then
	echo "build.sh: config/default.toml has no line 'command = [\"hello\"]' to point at /usr/lib/baton/hello" >&2
	exit 1
fi

# The nfpm config: packaging/nfpm.yaml, plus one entry per documentation file, twice: a
# plain file in the .deb, `%doc` in the .rpm (nfpm's doc type is rpm-only and has no tree
# form). Directories are listed so that the rpm owns them, as before.
config=$BATON_STAGE/nfpm.yaml
cp packaging/nfpm.yaml "$config"
(cd "$BATON_STAGE" && find doc -type d | sort) | while read -r d; do
	printf '  - dst: %s\n    type: dir\n    file_info: { mode: 0755 }\n' "/usr/share/doc/baton${d#doc}" >>"$config"
done
(cd "$BATON_STAGE" && find doc man -type f | sort) | while read -r f; do
	case $f in doc/*) dst=/usr/share/doc/baton/${f#doc/} ;; *) dst=/usr/share/$f ;; esac
	printf '  - src: %s\n    dst: %s\n    packager: deb\n    file_info: { mode: 0644 }\n' "$BATON_STAGE/$f" "$dst" >>"$config"
	printf '  - src: %s\n    dst: %s\n    type: doc\n    packager: rpm\n    file_info: { mode: 0644 }\n' "$BATON_STAGE/$f" "$dst" >>"$config"
done
cp "$config" "$BATON_STAGE/nfpm-rpm.yaml"
printf 'changelog: %s\n' "$BATON_STAGE/changelog.yml" >>"$BATON_STAGE/nfpm-rpm.yaml"

go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" package \
	--config "$config" --packager deb --target "$outdir/"
go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" package \
	--config "$BATON_STAGE/nfpm-rpm.yaml" --packager rpm --target "$outdir/"
