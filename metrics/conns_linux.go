//go:build linux

package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TCPStates are the values of the connections' state label: the TCP states in which a
// socket may still be held by a process (an fd); a socket its process closed is orphaned
// (no inode) and no one's any more. "closing" gathers FIN_WAIT1, FIN_WAIT2, CLOSING and
// LAST_ACK.
var TCPStates = []string{"established", "close_wait", "closing"}

// From include/net/tcp_states.h.
const (
	tcpEstablished = 1
	tcpFinWait1    = 4
	tcpFinWait2    = 5
	tcpCloseWait   = 8
	tcpLastAck     = 9
	tcpClosing     = 11
)

func stateLabel(s uint8) string {
	switch s {
	case tcpEstablished:
		return "established"
	case tcpCloseWait:
		return "close_wait"
	}
	return "closing"
}

// Bounds of one count: a scrape reads at most this much, and fails rather than run long.
const (
	maxProcs    = 4096    // processes per generation (workers and their descendants)
	maxSockets  = 1 << 20 // fds that are sockets, over all processes; TCP sockets in the dump
	diagTimeout = 2 * time.Second
)

// Connections counts, per generation, the TCP connections held by the processes gens
// names (each generation's workers: the pids and all their descendants), by state
// (TCPStates). A pid that is gone counts nothing. It fails when the kernel has no inet
// sock_diag (CONFIG_INET_DIAG), or a bound is passed.
func Connections(gens map[int][]int) (map[int]map[string]int, error) {
	owner := map[uint64]int{} // socket inode -> generation
	n := 0
	for g, roots := range gens {
		for _, pid := range descendants(roots) {
			var err error
			if n, err = socketInodes(pid, g, owner, n); err != nil {
				return nil, err
			}
		}
	}
	counts := make(map[int]map[string]int, len(gens))
	for g := range gens {
		counts[g] = map[string]int{}
	}
	if len(owner) == 0 {
		return counts, nil
	}
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := dumpTCP(family, func(state uint8, inode uint32) {
			if g, ok := owner[uint64(inode)]; ok {
				counts[g][stateLabel(state)]++
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return counts, nil
}

// Children returns the children of pid (every thread's: a Go program forks from any of
// its threads), from /proc/PID/task/TID/children; none if pid is gone.
func Children(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var kids []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil && k > 0 {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// descendants returns roots and all their descendants, at most maxProcs.
func descendants(roots []int) []int {
	seen := map[int]bool{}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 && len(out) < maxProcs {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
		queue = append(queue, Children(pid)...)
	}
	return out
}

// socketInodes adds the inodes of pid's sockets to owner, as generation g's; n counts the
// sockets seen so far, against maxSockets.
func socketInodes(pid, g int, owner map[uint64]int, n int) (int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	f, err := os.Open(dir)
	if err != nil {
		return n, nil // gone, or not ours to read: it counts nothing
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, name := range names {
			link, err := os.Readlink(dir + name)
			if err != nil {
				continue
			}
			rest, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
			if err != nil {
				continue
			}
			if n++; n > maxSockets {
				return n, fmt.Errorf("metrics: more than %d sockets in the workers; connections not counted", maxSockets)
			}
			owner[ino] = g
		}
		if err != nil {
			return n, nil
		}
	}
}

// From linux/inet_diag.h.
const (
	inetDiagReqLen = 56 // struct inet_diag_req_v2
	inetDiagMsgLen = 72 // struct inet_diag_msg
)

// dumpTCP asks the kernel for every TCP socket of family in a state a process may hold
// (TCPStates) and calls f with each one's state and inode.
func dumpTCP(family uint8, f func(state uint8, inode uint32)) error {
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return os.NewSyscallError("socket NETLINK_SOCK_DIAG", err)
	}
	defer unix.Close(nl)
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(nl, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	states := uint32(1<<tcpEstablished | 1<<tcpFinWait1 | 1<<tcpFinWait2 | 1<<tcpCloseWait | 1<<tcpLastAck | 1<<tcpClosing)
	ne := binary.NativeEndian
	req := make([]byte, 0, unix.NLMSG_HDRLEN+inetDiagReqLen)
	req = ne.AppendUint32(req, unix.NLMSG_HDRLEN+inetDiagReqLen)
	req = ne.AppendUint16(req, unix.SOCK_DIAG_BY_FAMILY)
	req = ne.AppendUint16(req, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	req = ne.AppendUint32(req, 1) // sequence number
	req = ne.AppendUint32(req, 0) // port id: the kernel's
	req = append(req, family, unix.IPPROTO_TCP, 0, 0)
	req = ne.AppendUint32(req, states)
	req = append(req, make([]byte, inetDiagReqLen-8)...) // inet_diag_sockid: any
	if err := unix.Sendto(nl, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sock_diag: sendto", err)
	}
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(diagTimeout)
	seen := 0
	for {
		if time.Now().After(deadline) {
			return errors.New("sock_diag: the TCP socket dump took too long")
		}
		n, _, err := unix.Recvfrom(nl, buf, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return os.NewSyscallError("sock_diag: recvfrom", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := -int32(ne.Uint32(m.Data)); errno != 0 {
						return os.NewSyscallError("sock_diag", syscall.Errno(errno))
					}
				}
				return errors.New("sock_diag: error without a code")
			case unix.SOCK_DIAG_BY_FAMILY:
				if len(m.Data) < inetDiagMsgLen {
					return errors.New("sock_diag: short inet_diag_msg")
				}
				if seen++; seen > maxSockets {
					return fmt.Errorf("sock_diag: more than %d TCP sockets; connections not counted", maxSockets)
				}
				f(m.Data[1], ne.Uint32(m.Data[68:]))
			}
		}
	}
}
