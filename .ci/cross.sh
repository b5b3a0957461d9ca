#!/usr/bin/env bash
# Every Linux GOARCH: baton builds and vets for each (go build cross-compiles, no qemu);
# the spawn, sdnotify and fdstore tests run for arm64 (spawn's fast path) under qemu-user,
# for s390x (the fallback, and big-endian) under qemu-user, for 386 (the fallback) on this
# kernel's 32-bit support; and baton and hello built for s390x start a worker that serves.
#
# qemu-user needs binfmt_misc for a foreign binary that execs itself (spawn's trampoline,
# the tests' helpers): when the host has no qemu handler registered, the runs happen in a
# user and mount namespace with a binfmt_misc instance of its own (Linux >= 6.7), so
# nothing changes for the rest of the machine. Needs root (the namespace's uid map), and
# Debian's qemu-user-static and curl (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export CGO_ENABLED=0
out=$(mktemp -d /tmp/baton-cross.XXXXXX)
trap 'rm -rf "$out"' EXIT

echo "== build and vet for every linux GOARCH"
for arch in $(go tool dist list | sed -n 's|^linux/||p'); do
  GOOS=linux GOARCH=$arch go build ./...
  GOOS=linux GOARCH=$arch go vet ./...
  echo "ok   linux/$arch"
done

if [ "${1:-}" = build-only ]; then exit 0; fi

need=()
command -v qemu-aarch64-static >/dev/null && command -v qemu-s390x-static >/dev/null || need+=(qemu-user-static)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

pkgs=(internal/spawn sdnotify fdstore)
for arch in arm64 s390x 386; do
  for p in "${pkgs[@]}"; do
    GOOS=linux GOARCH=$arch go test -c -o "$out/$arch/$(basename "$p").test" "./$p"
  done
done
GOOS=linux GOARCH=s390x go build -o "$out/s390x/baton" ./cmd/baton
GOOS=linux GOARCH=s390x go build -o "$out/s390x/hello" ./examples/hello

# The runs, in a script of their own: here, or in the namespace.
cat > "$out/run.sh" <<'RUN'
set -euo pipefail
out=$1
fail=0
# What qemu-user 7.2 (Debian 12) does not emulate, so these fail under it on any guest
# and pass on the 386 run, a real kernel: NETLINK_SOCK_DIAG sockets (EPROTONOSUPPORT:
# fdstore's check of a unix socket's file), getsockopt TCP_INFO (zeros: the backlog
# check), MSG_CTRUNC on a truncated SCM_RIGHTS (qemu receives into a buffer of its own).
qemu_skip_fdstore='^(TestBoundFile|TestOpenBacklog|TestOpenUnixOwner|TestPlanPermsSwappedAfterBind|TestResolve|TestResolveSocketFileSwapped|TestResolveChecksAllBeforeChanging|TestResolveChangesPerms|TestResolveChangesPermsAfterReceive)$'
qemu_skip_sdnotify='^TestServerClosesFDs$/^control data truncated$'
# And an execve of /proc/self/exe, qemu-user runs the binary at the path it started the
# guest from, not the file it runs: the fallback's trampoline after a binary is replaced.
qemu_skip_spawn_fallback='^(TestStartAfterBinaryReplaced|TestSignals)$'
# And the host's view of a guest's signals: qemu-user's own process ignores host signal 32
# (SigIgn in /proc/PID/status has it), whatever the guest's dispositions are. TestSignals
# runs natively on amd64 (both paths) and 386 (the fallback).
qemu_skip_spawn='^TestSignals$'
for arch in arm64 s390x 386; do
  for t in "$out/$arch"/*.test; do
    skip=
    if [ $arch != 386 ]; then
      case $(basename "$t") in
        fdstore.test) skip=$qemu_skip_fdstore ;;
        sdnotify.test) skip=$qemu_skip_sdnotify ;;
        spawn.test) skip=$qemu_skip_spawn; [ $arch = arm64 ] || skip=$qemu_skip_spawn_fallback ;;
      esac
    fi
    if (cd "$(dirname "$t")" && "$t" -test.count=1 ${skip:+-test.skip "$skip"} >"$t.log" 2>&1); then
      echo "ok   $arch $(basename "$t")${skip:+ (skipped under qemu-user: $skip)}"
    else
      echo "FAIL $arch $(basename "$t")"; cat "$t.log"; fail=1
    fi
  done
done

# e2e smoke: baton/s390x runs 2 hello/s390x workers through the fallback; a request is
# answered by one, with LISTEN_PID its own pid; QUIT stops it all.
port=$((20000 + RANDOM % 20000))
"$out/s390x/baton" run --workers 2 --listen http=127.0.0.1:$port -- "$out/s390x/hello" >"$out/baton.log" 2>&1 &
baton=$!
deadline=$((SECONDS + 60)) body=
until body=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null); do
  if [ $SECONDS -ge $deadline ] || ! kill -0 $baton 2>/dev/null; then break; fi
done
kill -QUIT $baton 2>/dev/null || true
wait $baton || true
if [ -n "$body" ]; then
  echo "ok   s390x e2e: $body"
else
  echo "FAIL s390x e2e: no answer on 127.0.0.1:$port"; cat "$out/baton.log"; fail=1
fi
exit $fail
RUN

binfmt=/proc/sys/fs/binfmt_misc
if grep -qs '^enabled' "$binfmt/qemu-aarch64" && grep -qs '^enabled' "$binfmt/qemu-s390x"; then
  bash "$out/run.sh" "$out"
  exit
fi

# A namespace with a binfmt_misc of its own. The uid map is written from here once the
# child has unshared (its user namespace differs from ours); the child waits on a fifo.
register() { # the register line for /usr/share/binfmts/qemu-$1 (magic, mask, -P interpreter)
  local f=/usr/share/binfmts/qemu-$1
  printf ':qemu-%s:M:0:%s:%s:%s:FP\n' "$1" "$(sed -n 's/^magic //p' "$f")" \
    "$(sed -n 's/^mask //p' "$f")" "$(sed -n 's/^interpreter //p' "$f")"
}
mkfifo "$out/go"
unshare --user --mount -- bash -c '
  read -r _ <"$1/go"
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  printf "%s" "$2" >/proc/sys/fs/binfmt_misc/register
  printf "%s" "$3" >/proc/sys/fs/binfmt_misc/register
  exec bash "$1/run.sh" "$1"' ns "$out" "$(register aarch64)" "$(register s390x)" &
child=$!
deadline=$((SECONDS + 10))
until [ "$(readlink /proc/$child/ns/user)" != "$(readlink /proc/self/ns/user)" ]; do
  if [ $SECONDS -ge $deadline ]; then echo "unshare did not start"; exit 1; fi
done
echo "0 0 4294967295" >/proc/$child/uid_map
echo "0 0 4294967295" >/proc/$child/gid_map
echo go >"$out/go"
wait $child
