//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// notifyWatch is a notify socket (sd_notify(3)) the driver gives a server in place of
// systemd's, and every message received on it, with when the driver read it. HAProxy's
// master (-Ws) sends READY=1 there when it can take a signal again, after a start or a
// reload: as under systemd, the next reload waits for it.
type notifyWatch struct {
	conn *net.UnixConn
	path string
	kick chan struct{} // a message arrived (capacity 1)

	mu   sync.Mutex
	msgs []notifyMsg
	err  error // why reading stopped
}

type notifyMsg struct {
	at     time.Time
	fields map[string]string
}

func newNotifyWatch(path string) (*notifyWatch, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	n := &notifyWatch{conn: conn, path: path, kick: make(chan struct{}, 1)}
	go n.read()
	return n, nil
}

func (n *notifyWatch) read() {
	buf := make([]byte, 4096) // sd_notify messages are short; a longer one is cut
	for {
		k, err := n.conn.Read(buf)
		at := time.Now()
		n.mu.Lock()
		if err != nil {
			n.err = err
		} else {
			n.msgs = append(n.msgs, notifyMsg{at: at, fields: parseNotify(string(buf[:k]))})
		}
		n.mu.Unlock()
		select {
		case n.kick <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// count is the number of messages received so far: a wait from it sees only later ones.
func (n *notifyWatch) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.msgs)
}

// wait waits for a message from the from-th on in which key has value, and returns its
// index and when it was read.
func (n *notifyWatch) wait(from int, key, value string, deadline time.Time) (int, time.Time, error) {
	for {
		n.mu.Lock()
		for i := from; i < len(n.msgs); i++ {
			if n.msgs[i].fields[key] == value {
				at := n.msgs[i].at
				n.mu.Unlock()
				return i, at, nil
			}
		}
		from = len(n.msgs)
		err := n.err
		n.mu.Unlock()
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("notify socket: %s=%s not received: %w", key, value, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, time.Time{}, fmt.Errorf("notify socket: %s=%s: %w", key, value, os.ErrDeadlineExceeded)
		}
		t := time.NewTimer(left)
		select {
		case <-n.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

func (n *notifyWatch) close() {
	n.conn.Close()
	os.Remove(n.path)
}

// parseNotify parses an sd_notify datagram: newline-separated KEY=VALUE assignments. A line
// without "=" or with an empty key is skipped; the last of a repeated key wins, as in
// systemd.
func parseNotify(msg string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(msg, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		out[k] = v
	}
	return out
}
