#!/usr/bin/env bash
# run.sh: baton's lab suite on real systemd, one version after the other.
#
#   labtest/run.sh [252|254|257|all]...    default: all
#
# 252 boots the host's own /usr (Debian 12); 254 a bookworm rootfs with systemd from
# bookworm-backports; 257 a Debian 13 (trixie) rootfs. The rootfs trees are built on first
# use (`lab image`, about a minute each, kept in /var/lib/systemd-lab). Each version runs
# `go test -tags lab -count=1 ./labtest` with its own lab; the timings are printed per
# version, image build apart. Extra `go test` flags: GOTESTFLAGS (e.g. "-run TestReload -v").
# Environment: LAB (the lab script; default ../shared/systemd-lab/lab from the repo).
# Exit status: 0 if every version passed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
export LAB=${LAB:-$(cd "$repo/.." && pwd)/shared/systemd-lab/lab}
export PATH="$PATH:/usr/local/go/bin"
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (systemd-nspawn)" >&2; exit 2; }
[ -x "$LAB" ] || { echo "run.sh: no lab script at $LAB (set LAB)" >&2; exit 2; }

versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(all)
[ "${versions[*]}" = all ] && versions=(252 254 257)

root_of() {
    case "$1" in
    252) echo host ;;
    254) echo bookworm-backports ;;
    257) echo trixie ;;
    *) echo "run.sh: unknown version '$1' (252, 254, 257 or all)" >&2; return 1 ;;
    esac
}

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.1f s", ns / 1e9 }'; }

summary=()
status=0
for v in "${versions[@]}"; do
    root=$(root_of "$v") || exit 2
    image=0
    if [ "$root" != host ]; then
        t0=$(now)
        "$LAB" image "$root" >/dev/null || { summary+=("$v: FAIL (lab image $root)"); status=1; continue; }
        image=$(( $(now) - t0 ))
    fi
    echo "=== systemd $v (LAB_ROOT=$root)"
    t0=$(now)
    # shellcheck disable=SC2086
    (cd "$repo" && LAB_ROOT=$root go test -tags lab -count=1 -timeout 20m ${GOTESTFLAGS:-} ./labtest)
    rc=$?
    took=$(( $(now) - t0 ))
    result=PASS
    [ $rc -eq 0 ] || { result=FAIL; status=1; }
    line="$v: $result in $(secs $took)"
    [ "$image" -gt 1000000000 ] && line+=" (+ $(secs $image) building the $root image)"
    summary+=("$line")
done
echo "=== summary"
printf '%s\n' "${summary[@]}"
exit $status
