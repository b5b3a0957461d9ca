//go:build linux

// Flood sends notify datagrams to a baton master's worker notify socket (a worker's
// $NOTIFY_SOCKET) as fast as the master takes them, until a file exists, for the lab test
// of a notify flood. It runs inside the systemd-lab container, as root.
//
// The datagrams rotate through three kinds, each of which the master's loop must read and
// judge:
//
//   - STATUS= from this process: a sender that is not a worker;
//   - STATUS= with the credentials of the pid given by -as (root may send another pid's
//     SCM_CREDENTIALS): a worker that talks too much; skipped without -as;
//   - a datagram that is not KEY=VALUE lines: malformed.
//
// The socket blocks while the master's queue is full, so the flood goes as fast as the
// master reads, and no faster. Output, on stdout, one line at the end:
//
//	{"sent":N,"errors":{"reason":count,...}}
//
// Exit status: 0 when the summary was printed, 2 on bad usage or when the socket cannot be
// opened.
//
// Usage:
//
//	flood -socket ADDR -until FILE [-as PID]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// result is the summary line.
type result struct {
	Sent   int            `json:"sent"`
	Errors map[string]int `json:"errors"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("socket", "", "the notify socket `address`: a path, or @ and an abstract name")
	until := fs.String("until", "", "keep sending until this `file` exists")
	as := fs.Int("as", 0, "also send with the credentials of this `pid` (a worker)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || *until == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: flood -socket ADDR -until FILE [-as PID]")
		return 2
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintf(stderr, "flood: %v\n", os.NewSyscallError("socket", err))
		return 2
	}
	defer unix.Close(fd)
	to := &unix.SockaddrUnix{Name: *addr}
	own := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: 0, Gid: 0})
	worker := unix.UnixCredentials(&unix.Ucred{Pid: int32(*as), Uid: 0, Gid: 0})
	res := result{Errors: map[string]int{}}
	for i := 0; ; i++ {
		if i%256 == 0 {
			if _, err := os.Stat(*until); !errors.Is(err, os.ErrNotExist) {
				break
			}
		}
		msg, oob := []byte(fmt.Sprintf("STATUS=flood %d", i)), own
		switch i % 3 {
		case 1:
			if *as == 0 {
				continue
			}
			oob = worker
		case 2:
			msg = []byte("not a notify message\x00\xff")
		}
		if err := unix.Sendmsg(fd, msg, oob, to, 0); err != nil {
			res.Errors[err.Error()]++
			continue
		}
		res.Sent++
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return 0
}
