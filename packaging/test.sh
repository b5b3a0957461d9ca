#!/usr/bin/env bash
# packaging/test.sh: build baton's .deb and .rpm (twice: v0.0.0-test.1 and v0.0.0-test.2),
# check what is in them and their maintainer scripts, and, as root with the systemd lab,
# install, hot-upgrade and remove them under a real systemd (testdata/lab-install.sh).
#
# Environment: LAB (the lab script; default /work/shared/systemd-lab/lab, else
# ../shared/systemd-lab/lab beside the checkout), BATON_PACKAGE_LAB=0 to skip the lab part,
# BATON_PACKAGE_LAB_ROOTS (default "host bookworm-backports trixie": systemd 252, 254, 257).
# Installs rpm (for rpm -qp) with apt-get when it is missing. Prints "ok"/"FAIL" lines and
# ends with "N passed, N failed"; exit status 1 on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
export PATH="$PATH:/usr/local/go/bin"

pass=0
failed=0
ok() {
	echo "ok   $*"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
# check DESC CMD…: ok if CMD succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else bad "$desc"; fi
}
# same DESC WANT GOT: ok if the two strings are equal, else show both.
same() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		bad "$1"
		diff <(echo "$2") <(echo "$3") | sed 's/^/     /' || true
	fi
}

t0=$(date +%s)
# section NAME: a header with the seconds since the start.
section() { echo "== $* (+$(($(date +%s) - t0))s)"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-package-test.XXXXXX")
lab_name=""
cleanup() {
	if [ -n "$lab_name" ]; then LAB_NAME=$lab_name "$lab" down >/dev/null 2>&1 || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------- tools
if ! command -v rpm >/dev/null; then
	echo "installing rpm (for rpm -qp) with apt-get"
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm) >"$tmp/apt.log" 2>&1 ||
		{ cat "$tmp/apt.log"; echo "FAIL cannot install rpm"; exit 1; }
fi
if ! command -v go-md2man >/dev/null; then
	echo "installing go-md2man (for the man pages) with apt-get"
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq go-md2man) >"$tmp/apt.log" 2>&1 ||
		{ cat "$tmp/apt.log"; echo "FAIL cannot install go-md2man"; exit 1; }
fi
command -v dpkg-deb >/dev/null || { echo "FAIL dpkg-deb is missing"; exit 1; }

# ---------------------------------------------------------------- build
section build
packaging/build.sh v0.0.0-test.1 "$tmp/v1" >"$tmp/build1.log" 2>&1 || { cat "$tmp/build1.log"; echo "FAIL build v1"; exit 1; }
packaging/build.sh v0.0.0-test.2 "$tmp/v2" >"$tmp/build2.log" 2>&1 || { cat "$tmp/build2.log"; echo "FAIL build v2"; exit 1; }
deb=$(echo "$tmp"/v2/*.deb)
rpm=$(echo "$tmp"/v2/*.rpm)
same "deb file name" "$tmp/v2/baton_0.0.0~test.2-1_$(go env GOARCH).deb" "$deb"
check "rpm file exists" test -f "$rpm"

# ---------------------------------------------------------------- what goes where
section "what goes where"
# want: every file the packages must hold, from the tree as it is now.
shopt -s nullglob
want=(/usr/bin/baton /usr/lib/baton/hello /etc/baton/example.toml
	/usr/share/doc/baton/README.md /usr/share/doc/baton/changelog.gz)
[ -f units/README.md ] && want+=(/usr/share/doc/baton/units/README.md)
for md in docs/*.[1-8].md; do
	page=${md##*/} && page=${page%.md}
	want+=("/usr/share/man/man${page##*.}/$page.gz")
done
for f in units/*.service units/*.socket; do want+=("/usr/lib/systemd/system/${f#units/}"); done
for d in units/*/; do
	d=${d%/}
	[ "${d#units/}" != testdata ] || continue
	variant=("$d"/*.service "$d"/*.socket "$d"/*.conf)
	[ ${#variant[@]} -gt 0 ] || continue
	while IFS= read -r f; do want+=("/usr/share/doc/baton/${f}"); done < <(find "$d" -type f | sort)
done
shopt -u nullglob
# Each format's own: the deb's copyright, Debian changelog and lintian overrides; the
# rpm's %license files.
want_files=$(printf '%s\n' "${want[@]}" /usr/share/doc/baton/copyright /usr/share/doc/baton/changelog.Debian.gz \
	/usr/share/lintian/overrides/baton | sort)

deb_list=$(dpkg-deb -c "$deb")
deb_files=$(awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' <<<"$deb_list" | sort)
same "deb: exactly the expected files" "$want_files" "$deb_files"
check "deb: has /etc/baton/ and /usr/lib/baton/" eval 'grep -q " ./etc/baton/$" <<<"$deb_list" && grep -q " ./usr/lib/baton/$" <<<"$deb_list"'
for m in "-rwxr-xr-x ./usr/bin/baton" "-rwxr-xr-x ./usr/lib/baton/hello" "-rw-r--r-- ./etc/baton/example.toml"; do
	check "deb: mode ${m% *} of ${m#* }" eval 'awk "{ print \$1, \$6 }" <<<"$deb_list" | grep -qxF -- "$m"'
done
same "deb: conffiles" "/etc/baton/example.toml" "$(dpkg-deb -I "$deb" conffiles)"
same "deb: version" "0.0.0~test.2-1" "$(dpkg-deb -f "$deb" Version)"
check "deb: no Depends (static binary)" eval '[ -z "$(dpkg-deb -f "$deb" Depends)" ]'
check "dpkg orders test.1 before test.2" dpkg --compare-versions 0.0.0~test.1 lt 0.0.0~test.2
check "dpkg orders v1.2.3-rc.1 < v1.2.3 < v1.2.3-4-gabc" eval \
	'dpkg --compare-versions 1.2.3~rc.1 lt 1.2.3 && dpkg --compare-versions 1.2.3 lt 1.2.3+4.gabc1234'
mkdir -p "$tmp/control" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/control"
dpkg-deb -x "$deb" "$tmp/root"
for pair in postinst:postinstall prerm:preremove postrm:postremove; do
	check "deb: ${pair%%:*} is scripts/${pair##*:}.sh" cmp -s "$tmp/control/${pair%%:*}" packaging/scripts/${pair##*:}.sh
	check "deb: ${pair%%:*} is executable" test -x "$tmp/control/${pair%%:*}"
done
check "deb: no preinst" test ! -e "$tmp/control/preinst"
same "deb: baton version" "baton v0.0.0-test.2" "$("$tmp/root/usr/bin/baton" version)"
buildinfo=$(go version -m "$tmp/root/usr/bin/baton")
check "baton: built with -trimpath" grep -q 'build.*-trimpath=true' <<<"$buildinfo"
check "baton: static (CGO_ENABLED=0)" grep -q 'build.*CGO_ENABLED=0' <<<"$buildinfo"
check "example.toml runs the packaged hello" grep -qx 'command = \["/usr/lib/baton/hello"\]' "$tmp/root/etc/baton/example.toml"
same "example.toml is config/default.toml but for that line" "$(grep -v '^command = ' config/default.toml)" \
	"$(grep -v '^command = ' "$tmp/root/etc/baton/example.toml")"
for f in units/*.service units/*.socket; do
	check "unit ${f#units/} shipped as is" cmp -s "$f" "$tmp/root/usr/lib/systemd/system/${f#units/}"
done

rpm_files=$(rpm -qpl "$rpm" | sort)
# shellcheck disable=SC2046 # one directory a word
rpm_want=$(printf '%s\n' "${want[@]}" /etc/baton /usr/lib/baton /usr/share/doc/baton \
	/usr/share/licenses/baton/LICENSE /usr/share/licenses/baton/copyright \
	$(cd "$tmp/root" && find usr/share/doc/baton -mindepth 1 -type d | sed 's|^|/|') | sort)
same "rpm: exactly the expected files and own directories" "$rpm_want" "$rpm_files"
same "rpm: config files" "/etc/baton/example.toml" "$(rpm -qpc "$rpm")"
same "rpm: %doc files" "$(printf '%s\n' "${want[@]}" | grep -E '^/usr/share/(doc|man)/' | sort)" "$(rpm -qpd "$rpm" | sort)"
same "rpm: %license files" "$(printf '%s\n' /usr/share/licenses/baton/LICENSE /usr/share/licenses/baton/copyright)" \
	"$(rpm -qpL "$rpm" | sort)"
same "rpm: License" "Apache-2.0 AND BSD-2-Clause AND BSD-3-Clause AND MIT" "$(rpm -qp --qf '%{LICENSE}' "$rpm")"
same "rpm: Requires /bin/sh (the scriptlets)" "/bin/sh" "$(rpm -qpR "$rpm" | grep -v '^rpmlib(')"
check "rpm: %changelog from CHANGELOG.md" eval '[ "$(rpm -qp --changelog "$rpm" | grep -c "^- Added: ")" -gt 0 ]'
check "deb: copyright is packaging/debian/copyright" cmp -s packaging/debian/copyright "$tmp/root/usr/share/doc/baton/copyright"
check "deb: changelog.Debian.gz names this version" eval \
	'[ "$(zcat "$tmp/root/usr/share/doc/baton/changelog.Debian.gz" | sed -n 1p)" = "baton (0.0.0~test.2-1) unstable; urgency=medium" ]'
# baton.toml(5) lists every key of the reference config, and baton(8) every signal and
# exit status of the README's tables (packaging/manpages.sh pulls them in).
man5=$(zcat "$tmp/root/usr/share/man/man5/baton.toml.5.gz")
for key in $(sed -nE 's/^#? ?([a-z_]+) = .*/\1/p' config/default.toml | sort -u); do
	check "baton.toml(5) has the key $key" grep -qE "(^|, )\\\\fB\\\\fC$key = " <<<"$man5"
done
man8=$(zcat "$tmp/root/usr/share/man/man8/baton.8.gz")
for sig in HUP USR2 WINCH QUIT TERM USR1; do
	check "baton(8) has the signal $sig" grep -qF "\\fB\\fC$sig\\fR" <<<"$man8"
done
for st in 0 1 2 3 4; do check "baton(8) has the exit status $st" grep -qx "$st" <<<"$man8"; done
check "deb: changelog.gz is CHANGELOG.md" eval 'zcat "$tmp/root/usr/share/doc/baton/changelog.gz" | cmp -s - CHANGELOG.md'
same "rpm: example.toml is %config(noreplace)" "/etc/baton/example.toml cn" \
	"$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" | grep '^/etc/baton/example.toml')"
same "rpm: version" "0.0.0~test.2-1" "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm")"
same "rpm orders test.1 before test.2" "-1" "$(rpm --eval '%{lua: print(rpm.vercmp("0.0.0~test.1", "0.0.0~test.2"))}')"
for pair in POSTIN:postinstall PREUN:preremove POSTUN:postremove; do
	same "rpm: %${pair%%:*} is scripts/${pair##*:}.sh" "$(cat packaging/scripts/${pair##*:}.sh)" \
		"$(rpm -qp --qf "%{${pair%%:*}}" "$rpm")"
done
same "rpm: no %pre" "(none)" "$(rpm -qp --qf '%{PREIN}' "$rpm")"
check "rpm: --scripts lists postinstall, preuninstall, postuninstall" eval \
	'[ "$(rpm -qp --scripts "$rpm" | grep -c "scriptlet (using /bin/sh)")" = 3 ]'

# ---------------------------------------------------------------- the scripts themselves
section "the scripts"
for s in packaging/scripts/*.sh; do
	check "sh -n $s" sh -n "$s"
	if command -v dash >/dev/null; then check "dash -n $s" dash -n "$s"; fi
	if command -v shellcheck >/dev/null; then check "shellcheck -s sh $s" shellcheck -s sh "$s"; fi
done
# Without systemd (a container, a chroot): every script is silent, calls no systemctl and
# exits 0. A fake systemctl first in PATH records any call.
if [ ! -d /run/systemd/system ]; then
	mkdir -p "$tmp/fakebin"
	printf '#!/bin/sh\necho "systemctl $*" >>%s/systemctl.calls\n' "$tmp" >"$tmp/fakebin/systemctl"
	chmod +x "$tmp/fakebin/systemctl"
	for call in "postinstall configure" "postinstall configure 0.0.1-1" "postinstall 1" "postinstall 2" \
		"preremove remove" "preremove upgrade 0.0.3-1" "preremove 0" "preremove 1" \
		"postremove remove" "postremove upgrade 0.0.3-1" "postremove 0" "postremove 1"; do
		set -- $call
		script=$1
		shift
		out=$(PATH="$tmp/fakebin:$PATH" sh "packaging/scripts/$script.sh" "$@" 2>&1) && rc=0 || rc=$?
		same "no systemd: $script.sh $* exits 0 and prints nothing" "0:" "$rc:$out"
	done
	check "no systemd: no systemctl call" test ! -e "$tmp/systemctl.calls"
else
	echo "skip: the no-systemd checks (this machine runs systemd)"
fi

# ---------------------------------------------------------------- the lab
section "the lab"
lab=${LAB:-/work/shared/systemd-lab/lab}
[ -x "$lab" ] || lab="$root/../shared/systemd-lab/lab"
if [ "${BATON_PACKAGE_LAB:-1}" = 0 ]; then
	echo "skip: the lab install test (BATON_PACKAGE_LAB=0)"
elif [ "$(id -u)" != 0 ] || [ ! -x "$lab" ]; then
	echo "skip: the lab install test (needs root and $lab)"
else
	# One lab per systemd: 252 (the host's /usr), 254 (bookworm-backports), 257 (trixie);
	# the first use of 254 or 257 builds its root file system (about a minute each).
	for lab_root in ${BATON_PACKAGE_LAB_ROOTS:-host bookworm-backports trixie}; do
		section "the lab: $lab_root"
		lab_name=baton-pkg-$$-$lab_root
		export LAB_NAME=$lab_name LAB_ROOT=$lab_root LAB_BIND_RO="$root $tmp"
		if "$lab" up >"$tmp/lab.log" 2>&1; then
			"$lab" exec bash "$here/testdata/lab-install.sh" "$tmp" >"$tmp/lab-out.log" 2>&1 || true
			sed "s/^\(ok  \|FAIL\) lab: /\1 lab $lab_root: /" "$tmp/lab-out.log"
			pass=$((pass + $(grep -c '^ok ' "$tmp/lab-out.log" || true)))
			failed=$((failed + $(grep -c '^FAIL ' "$tmp/lab-out.log" || true)))
			grep -qx 'lab: done' "$tmp/lab-out.log" || bad "lab $lab_root: the lab script did not run to its end"
		else
			cat "$tmp/lab.log"
			bad "lab $lab_root: lab up"
		fi
		"$lab" down >/dev/null 2>&1 || bad "lab $lab_root: lab down"
		lab_name=""
	done
fi

section done
echo "packaging: $pass passed, $failed failed"
[ "$failed" = 0 ]
