#!/usr/bin/env bash
# run.sh: the fleet test (labtest/fleet: four systemd labs, the Ansible collection's rolling
# upgrades under load). `make fleet` runs it; so does .ci/run, as root.
#
#   labtest/fleet/run.sh
#
# Installs what it needs with apt-get when missing: Debian's ansible (7.7, ansible-core
# 2.14, with the community.docker.nsenter connection) and go-md2man (packaging/build.sh's
# man pages). Extra `go test` flags: GOTESTFLAGS (e.g. "-run TestFleet/install"). The plays'
# output is kept in bin/fleet/ (BATON_FLEET_LOGS). Environment: LAB (the lab script;
# default ../shared/systemd-lab/lab from the repo). Prints the wall time; exit status 0 if
# the test passed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export LAB=${LAB:-$(cd "$repo/.." && pwd)/shared/systemd-lab/lab}
export PATH="$PATH:/usr/local/go/bin"
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (systemd-nspawn)" >&2; exit 2; }
[ -x "$LAB" ] || { echo "run.sh: no lab script at $LAB (set LAB)" >&2; exit 2; }

need=()
command -v ansible-playbook >/dev/null || need+=(ansible)
command -v go-md2man >/dev/null || need+=(go-md2man)
if [ ${#need[@]} -gt 0 ]; then
	echo "run.sh: installing ${need[*]} with apt-get"
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null ||
		{ echo "run.sh: apt-get install ${need[*]} failed" >&2; exit 1; }
fi
ansible-playbook --version | head -1

export BATON_FLEET_LOGS=${BATON_FLEET_LOGS:-$repo/bin/fleet}
rm -rf "$BATON_FLEET_LOGS"
t0=$(date +%s%N)
# shellcheck disable=SC2086
(cd "$repo" && go test -tags lab -count=1 -timeout 20m -v ${GOTESTFLAGS:-} ./labtest/fleet)
rc=$?
awk -v ns="$(($(date +%s%N) - t0))" 'BEGIN { printf "=== fleet: %.1f s wall time", ns / 1e9 }'
[ $rc -eq 0 ] && echo " (PASS)" || echo " (FAIL)"
echo "the plays' output: $BATON_FLEET_LOGS"
exit $rc
