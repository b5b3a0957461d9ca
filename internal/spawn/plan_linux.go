//go:build linux && (spawn_fallback || !(amd64 || arm64 || riscv64 || loong64 || ppc64le))

package spawn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// plan is what the fallback's trampoline does before it execs the program: Attr, resolved
// by Start in the parent (the path looked up, the environment deduplicated, the journal
// header built), sent to the trampoline over its socket. Both ends are the same binary,
// /proc/self/exe, so the encoding needs no version.
type plan struct {
	path    string
	args    []string
	env     []string // without the variables of pidVars
	dir     string
	pidVars []string // "LISTEN_PID=", "WATCHDOG_PID=": set to the trampoline's own pid
	ignore  []uint64

	cred        bool
	uid, gid    uint64
	groups      []uint64
	noSetGroups bool

	pdeathsig uint64
	ppid      uint64 // the parent whose death pdeathsig follows

	nofile    bool
	nofileCur uint64
	nofileMax uint64

	journal       bool
	journalSocket string
	journalHeader string
	journalStdout bool
	journalStderr bool
}

// encode appends each field in order: a number as a uvarint, a string as its length and
// bytes, a list as its length and items.
func (p *plan) encode() []byte {
	var b []byte
	u := func(v uint64) { b = binary.AppendUvarint(b, v) }
	flag := func(v bool) {
		if v {
			u(1)
		} else {
			u(0)
		}
	}
	str := func(s string) { u(uint64(len(s))); b = append(b, s...) }
	strs := func(ss []string) {
		u(uint64(len(ss)))
		for _, s := range ss {
			str(s)
		}
	}
	nums := func(vs []uint64) {
		u(uint64(len(vs)))
		for _, v := range vs {
			u(v)
		}
	}
	str(p.path)
	strs(p.args)
	strs(p.env)
	str(p.dir)
	strs(p.pidVars)
	nums(p.ignore)
	flag(p.cred)
	u(p.uid)
	u(p.gid)
	nums(p.groups)
	flag(p.noSetGroups)
	u(p.pdeathsig)
	u(p.ppid)
	flag(p.nofile)
	u(p.nofileCur)
	u(p.nofileMax)
	flag(p.journal)
	str(p.journalSocket)
	str(p.journalHeader)
	flag(p.journalStdout)
	flag(p.journalStderr)
	return b
}

var errPlan = errors.New("spawn: malformed trampoline plan")

// decodePlan reads what encode wrote, and nothing more.
func decodePlan(b []byte) (*plan, error) {
	var bad bool
	u := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	flag := func() bool { return u() != 0 }
	str := func() string {
		n := u()
		if n > uint64(len(b)) {
			bad = true
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	strs := func() []string {
		n := u()
		if n > uint64(len(b)) { // each item takes a byte at least
			bad = true
			return nil
		}
		ss := make([]string, 0, n)
		for range n {
			ss = append(ss, str())
		}
		return ss
	}
	nums := func() []uint64 {
		n := u()
		if n > uint64(len(b)) {
			bad = true
			return nil
		}
		vs := make([]uint64, 0, n)
		for range n {
			vs = append(vs, u())
		}
		return vs
	}
	p := &plan{}
	p.path = str()
	p.args = strs()
	p.env = strs()
	p.dir = str()
	p.pidVars = strs()
	p.ignore = nums()
	p.cred = flag()
	p.uid = u()
	p.gid = u()
	p.groups = nums()
	p.noSetGroups = flag()
	p.pdeathsig = u()
	p.ppid = u()
	p.nofile = flag()
	p.nofileCur = u()
	p.nofileMax = u()
	p.journal = flag()
	p.journalSocket = str()
	p.journalHeader = str()
	p.journalStdout = flag()
	p.journalStderr = flag()
	if bad || len(b) != 0 || p.path == "" || len(p.args) == 0 {
		return nil, errPlan
	}
	return p, nil
}

// newPlan checks a as the fast path does before its fork (no NUL in a string the exec
// takes, a valid journal identifier) and resolves it.
func newPlan(a *Attr, path string) (*plan, error) {
	for _, s := range a.Args {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("spawn: argv: %w", syscall.EINVAL)
		}
	}
	pidVars := a.pidPrefixes()
	env := withoutPrefixes(dedupEnv(a.Env), pidVars)
	for _, s := range env {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("spawn: environment: %w", syscall.EINVAL)
		}
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, fmt.Errorf("spawn: %q: %w", path, syscall.EINVAL)
	}
	if strings.IndexByte(a.Dir, 0) >= 0 {
		return nil, fmt.Errorf("spawn: dir: %w", syscall.EINVAL)
	}
	p := &plan{path: path, args: a.Args, env: env, dir: a.Dir, pidVars: pidVars}
	for _, sig := range a.Ignore {
		p.ignore = append(p.ignore, uint64(sig))
	}
	if c := a.Credential; c != nil {
		p.cred, p.uid, p.gid, p.noSetGroups = true, uint64(c.Uid), uint64(c.Gid), c.NoSetGroups
		for _, g := range c.Groups {
			p.groups = append(p.groups, uint64(g))
		}
	}
	if a.Pdeathsig != 0 {
		p.pdeathsig, p.ppid = uint64(a.Pdeathsig), uint64(syscall.Getpid())
	}
	// The fast path's child keeps the limit of the process that forks it unless Nofile
	// says otherwise; the trampoline starts with the one the Go runtime started this
	// process with (os/exec puts it back), so it is always told.
	lim := syscall.Rlimit{}
	if a.Nofile != nil {
		lim = *a.Nofile
	} else if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, os.NewSyscallError("getrlimit", err)
	}
	p.nofile, p.nofileCur, p.nofileMax = true, uint64(lim.Cur), uint64(lim.Max)
	if j := a.Journal; j != nil && (j.Stdout || j.Stderr) {
		hdr, err := journalHeader(j)
		if err != nil {
			return nil, err
		}
		p.journal, p.journalSocket, p.journalHeader = true, journalSocket, string(hdr)
		p.journalStdout, p.journalStderr = j.Stdout, j.Stderr
	}
	return p, nil
}
