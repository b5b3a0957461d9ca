package spawn

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Attr describes a process to start.
type Attr struct {
	// Path is the program. A name without a slash is looked up in the PATH of Env (else
	// of this process), as a shell would; a relative path is relative to Dir.
	Path string
	// Args is the argument vector, Args[0] included.
	Args []string
	// Env is the environment, as "KEY=value" strings. Of a key given twice the last
	// value is kept, as os/exec does.
	Env []string
	// Dir is the working directory; empty: this process's.
	Dir string
	// Files are the child's open fds: fd i is Files[i]. Give at least stdin, stdout and
	// stderr. The caller keeps ownership: close them after Start as it sees fit.
	Files []*os.File
	// Setpgid puts the child in a process group of its own.
	Setpgid bool
	// Pdeathsig is sent to the child when the thread that started it exits (prctl(2)).
	Pdeathsig syscall.Signal
	// Credential, if not nil, is the child's user, group and supplementary groups.
	Credential *syscall.Credential
	// Ignore are the signals the child starts with ignored (SIG_IGN).
	Ignore []syscall.Signal
	// ListenPID sets LISTEN_PID=<the child's own pid> in Env (sd_listen_fds(3)), in place
	// of any LISTEN_PID it holds.
	ListenPID bool
	// WatchdogPID sets WATCHDOG_PID=<the child's own pid> in Env (sd_watchdog_enabled(3)),
	// in place of any WATCHDOG_PID it holds: a process the child starts inherits the
	// variable but, with another pid, does not take the watchdog for its own.
	WatchdogPID bool
	// Nofile, if not nil, is the child's RLIMIT_NOFILE (see OriginalNofile).
	Nofile *syscall.Rlimit
	// Journal, if not nil, gives the child a journal stream of its own (see Journal).
	Journal *Journal
}

// Journal asks for a stream connection of the child's own to systemd-journald, made as
// systemd makes one for a service with StandardOutput=journal: the child connects to
// journald's stdout socket between fork and exec, writes the stream header, and the
// connection replaces its fd 1, fd 2 or both (in place of Files[1] and Files[2]).
// journald records every line with the identifier of the header and the _PID of the
// process that connected (SO_PEERCRED), which is the child's own.
//
// It is best effort: when a step fails (no journald, a full backlog, no more fds), the
// child keeps Files[1] and Files[2], runs all the same, and Start reports the failure as
// its warning. Lines may start with a priority prefix ("<3>", sd-daemon(3)); lines
// without one are at priority info.
type Journal struct {
	// Identifier is SYSLOG_IDENTIFIER of every line (`journalctl -t`). It must be
	// non-empty and hold no newline or NUL byte: it is one line of the header.
	Identifier string
	// Stdout and Stderr say which of fd 1 and fd 2 the stream replaces.
	Stdout, Stderr bool
}

// journalSocket is journald's stream socket (systemd-journald.service(8)): a fixed path,
// which neither a config nor a worker can redirect. Tests point it at a fake.
var journalSocket = "/run/systemd/journal/stdout"

// journalHeader is the stream header of j, as src/journal/journald-stream.c reads it, one
// line each: identifier, unit id (empty: journald takes the unit from the cgroup),
// priority (6, info), level prefix (1: "<N>" prefixes are honoured), forward to syslog,
// to kmsg, to the console (0: as journald.conf says).
func journalHeader(j *Journal) ([]byte, error) {
	if j.Identifier == "" || strings.ContainsAny(j.Identifier, "\n\x00") {
		return nil, fmt.Errorf("spawn: journal identifier %q: must be one non-empty line", j.Identifier)
	}
	return []byte(j.Identifier + "\n\n6\n1\n0\n0\n0\n"), nil
}

// dedupEnv returns env with only the last of each key's entries, in their order.
func dedupEnv(env []string) []string {
	last := make(map[string]int, len(env))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := make([]string, 0, len(last))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}

// LookPath resolves the program name of a process with environment env and working
// directory dir: a name with a slash is returned as it is (relative to dir); a bare name
// is searched in env's PATH, else in this process's.
func LookPath(name string, env []string, dir string) (string, error) {
	if name == "" {
		return "", errors.New("spawn: empty program name")
	}
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true // the last one, as Start keeps it
		}
	}
	if !found {
		path = os.Getenv("PATH")
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		cand := filepath.Join(d, name)
		check := cand
		if !filepath.IsAbs(cand) && dir != "" {
			check = filepath.Join(dir, cand)
		}
		if _, err := exec.LookPath(check); err == nil {
			if !strings.Contains(cand, "/") {
				cand = "./" + cand
			}
			return cand, nil
		}
	}
	return "", fmt.Errorf("spawn: %q: %w", name, exec.ErrNotFound)
}

// OriginalNofile returns the soft and hard RLIMIT_NOFILE this process was started with.
// The Go runtime raises its own soft limit to the hard one at start (go.dev/issue/46279)
// and os/exec puts the original back in the children it starts; Start does the same with
// Attr.Nofile. When the runtime did raise it, the original is known only to a child that
// os/exec started and that is not a Go program: a shell's `ulimit -Sn` tells it, once per
// process (a few milliseconds). When the runtime changed nothing, it is the current limit.
var OriginalNofile = sync.OnceValues(func() (syscall.Rlimit, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return lim, os.NewSyscallError("getrlimit", err)
	}
	if lim.Cur != lim.Max-1 {
		return lim, nil // as started: the runtime sets max-1 when it raises
	}
	out, err := exec.Command("/bin/sh", "-c", "ulimit -Sn").Output()
	if err != nil {
		return lim, fmt.Errorf("spawn: the original RLIMIT_NOFILE: /bin/sh: %w", err)
	}
	s := strings.TrimSpace(string(out))
	if s == "unlimited" {
		lim.Cur = ^uint64(0)
		return lim, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return lim, fmt.Errorf("spawn: the original RLIMIT_NOFILE: /bin/sh said %q", s)
	}
	lim.Cur = n
	return lim, nil
})
