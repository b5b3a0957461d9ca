#!/bin/bash
# verify.sh: lint baton's unit files with `systemd-analyze verify`.
#
#   units/verify.sh                 this machine's systemd (no systemd PID 1 needed)
#   units/verify.sh --lab ROOT      inside a systemd-lab container, ROOT = host |
#                                   bookworm-backports (systemd 254) | trixie (257)
#   units/verify.sh --all           this machine, then --lab bookworm-backports, --lab trixie
#   units/verify.sh --baton PATH    the baton binary to check against (or env BATON_BIN;
#                                   default: bin/baton of this checkout, `make build`)
#
# A unit set is verified only by a systemd that knows all of its keys: units/*.service and
# *.socket need >= 252, units/v254/ needs >= 254 and is skipped (with a note) on older ones.
#
# Fails on ANY output of systemd-analyze, not only on its exit code: an unknown key,
# even an unknown Type=, is only a warning with exit code 0 (FACTS §g). ExecStart= and
# friends must name an existing executable where verify runs, so every unit is verified
# from a temporary copy in which /usr/bin/baton is replaced by the built binary.
#
# Also checks that each units/v254/X differs from units/X only in the keys that make it
# the v254 form (Type, ReloadSignal, ExecReload, FileDescriptorStorePreserve) and in
# comments: the copies cannot drift apart.
#
# Environment: BATON_BIN, LAB (the lab script, default /work/shared/systemd-lab/lab).
# Exit status: 0 all clean, 1 a finding, 2 usage or set-up error.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lab=${LAB:-/work/shared/systemd-lab/lab}
bin=${BATON_BIN:-$here/../bin/baton}
labs=()
cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

die() { echo "verify.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
    --baton) [ $# -ge 2 ] || die "--baton needs a path"; bin=$2; shift 2 ;;
    --lab) [ $# -ge 2 ] || die "--lab needs host, bookworm-backports or trixie"; labs+=("$2"); shift 2 ;;
    --all) labs+=(. bookworm-backports trixie); shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done

[ -x "$bin" ] && [ -f "$bin" ] || die "no baton binary at $bin: run 'make build' in the checkout, or set BATON_BIN / --baton"
bin=$(realpath "$bin")
# The path is pasted into unit files: keep it to characters systemd takes literally.
[[ "$bin" =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "baton path '$bin' has characters unsafe in a unit file"

# v254_diff BASE V254: the lines in which the v254 form differs from the base, once
# comments, blank lines and the v254 keys are left out; empty when they agree.
v254_diff() {
    local keep='^(Type|ReloadSignal|ExecReload|FileDescriptorStorePreserve)='
    diff <(grep -Ev '^[#;]|^[[:space:]]*$' "$1" | grep -Ev "$keep") \
         <(grep -Ev '^[#;]|^[[:space:]]*$' "$2" | grep -Ev "$keep")
}

# verify_here: verify every unit set this systemd knows; print one line per unit.
verify_here() {
    local version tmp set f out rc name fails=0
    version=$(systemd-analyze --version | awk 'NR == 1 { print $2 }')
    [[ "$version" =~ ^[0-9]+$ ]] || die "cannot read the systemd version: $(systemd-analyze --version | head -1)"
    echo "$(systemd-analyze --version | head -1), baton $bin"
    tmp=$(mktemp -d) || die "mktemp failed"
    cleanup+=("$tmp")

    for f in "$here"/v254/*.service "$here"/v254/*.socket; do
        if ! out=$(v254_diff "$here/$(basename "$f")" "$f" 2>&1); then
            echo "FAIL v254/$(basename "$f") drifted from $(basename "$f") beyond the v254 keys:"
            echo "$out" | sed 's/^/    /'
            fails=$((fails + 1))
        fi
    done

    for set in . v254; do
        if [ "$set" = v254 ] && [ "$version" -lt 254 ]; then
            echo "skip v254/* (needs systemd >= 254; this is $version)"
            continue
        fi
        mkdir -p "$tmp/$set"
        # Each set is whole (v254/ has its own copy of the socket unit): verify resolves
        # Requires=, Also= and Conflicts= among the files of one directory.
        for f in "$here/$set"/*.service "$here/$set"/*.socket; do
            [ -f "$f" ] || continue
            sed "s|/usr/bin/baton|$bin|g" "$f" >"$tmp/$set/$(basename "$f")"
        done
        for f in "$here/$set"/*.service "$here/$set"/*.socket; do
            [ -f "$f" ] || continue
            name=${set#.}; name=${name:+$name/}$(basename "$f")
            # --man=no: whether man pages are installed says nothing about the units.
            out=$(cd "$tmp/$set" && systemd-analyze verify --man=no "./$(basename "$f")" 2>&1)
            rc=$?
            if [ $rc -ne 0 ] || [ -n "$out" ]; then
                echo "FAIL $name (rc=$rc):"
                echo "$out" | sed "s|$tmp/v254/|units/v254/|g; s|$tmp/|units/|g; s|$bin|/usr/bin/baton|g; s/^/    /"
                fails=$((fails + 1))
            else
                echo "ok   $name"
            fi
        done
    done
    [ $fails -eq 0 ]
}

# verify_in_lab ROOT: boot a lab with this folder and the binary bound read-only, run
# this script inside, always take the lab down.
verify_in_lab() {
    local root=$1 name rc out
    [ -x "$lab" ] || die "no lab script at $lab (set LAB)"
    name="units-verify-$root-$$"
    echo "--- lab $root ($name)"
    if ! out=$(LAB_ROOT=$root LAB_NAME=$name LAB_BIND_RO="$here $(dirname "$bin")" "$lab" up 2>&1); then
        LAB_NAME=$name "$lab" down >/dev/null 2>&1
        echo "FAIL lab $root did not come up:"
        echo "$out" | sed 's/^/    /'
        return 1
    fi
    LAB_NAME=$name "$lab" exec env BATON_BIN="$bin" "$here/verify.sh"
    rc=$?
    LAB_NAME=$name "$lab" down >/dev/null 2>&1 || echo "warning: 'LAB_NAME=$name $lab down' failed" >&2
    # A second down on a stopped lab removes its state directory.
    LAB_NAME=$name "$lab" down >/dev/null 2>&1
    return $rc
}

if [ ${#labs[@]} -eq 0 ]; then
    verify_here
    exit $?
fi
status=0
for root in "${labs[@]}"; do
    if [ "$root" = . ]; then
        echo "--- this machine"
        verify_here || status=1
    else
        verify_in_lab "$root" || status=1
    fi
done
[ $status -eq 0 ] && echo "all clean" || echo "FAILED"
exit $status
