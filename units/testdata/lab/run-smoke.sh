#!/bin/bash
# run-smoke.sh ROOT SET: boot a lab (ROOT = host | bookworm-backports | trixie), run
# smoke.sh SET (base | v254) in it, take it down.
root=${1:?} set_=${2:?}
here=$(cd "$(dirname "$0")" && pwd)
units=$(cd "$here/../.." && pwd) bindir=$(cd "$units/../bin" && pwd)
lab=${LAB:-/work/shared/systemd-lab/lab}
name=units-smoke-$set_-$root-$$
LAB_ROOT=$root LAB_NAME=$name LAB_BIND_RO="$units $bindir" "$lab" up >/dev/null 2>&1 || { echo "lab $root did not come up"; exit 2; }
LAB_NAME=$name "$lab" exec env UNITS="$units" BATON_BIN="$bindir/baton" HELLO_BIN="$bindir/hello" "$here/smoke.sh" "$set_"
rc=$?
LAB_NAME=$name "$lab" down >/dev/null 2>&1
LAB_NAME=$name "$lab" down >/dev/null 2>&1   # a second down removes the state directory
exit $rc
