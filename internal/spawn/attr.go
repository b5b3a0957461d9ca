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
	// Nofile, if not nil, is the child's RLIMIT_NOFILE (see OriginalNofile).
	Nofile *syscall.Rlimit
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
