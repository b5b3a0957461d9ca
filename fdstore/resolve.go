package fdstore

import (
	"fmt"
	"strings"
)

// Resolve merges the listeners baton has (from Activation, the FD store or
// an old master) with the ones the config asks for, by name.
//
// For each spec, in order:
//   - if have holds Activated listeners of that name, all of them are used
//     as they are: systemd's socket unit wins over the config, even when
//     the address differs;
//   - else the first unclaimed listener of that name in have that Matches
//     the spec is reused; for a unix socket file, the spec's Mode, Owner
//     and Group are set again where they differ from what was set last
//     (for a listener from the FD store or an old master: from what its
//     file has), so a reload changes them;
//   - else the spec is opened with Open.
//
// use holds these in spec order, followed by the Activated listeners no
// spec names, in their order in have (a socket unit need not be listed in
// the config). unused holds the Opened listeners of have that no spec
// claimed: the caller closes them and removes them from the FD store.
// Every listener of have ends up in exactly one of use and unused, and the
// caller owns both.
//
// A socket file's mode and owner are changed only through an fd checked to
// be the file the listener's socket is bound to, never through its path
// (see perms.go). If the path holds anything else, a symlink swapped in
// say, Resolve fails with an error wrapping ErrNotBoundFile. The files of
// all reused listeners are checked before any is changed, after every new
// listener is open: an error leaves every socket file as it was, but for a
// chown or chmod failing half way.
//
// On error, everything Resolve opened is closed (and the socket files it
// created removed) and have is untouched: the caller still owns it. Specs
// are validated (Spec.Validate) before anything is opened; a nil listener
// or an invalid Source in have is an error.
//
// Resolve records in the reused listeners what it set on their socket
// files: two calls must not share listeners at the same time.
//
// Matches and Open look up host and service names in specs, with no
// deadline: give Resolve specs from LookupSpecs, and it looks nothing up.
//
// Renaming a listener in the config while keeping its address makes Open
// fail with an address-in-use error: the listener under the old name still
// holds the address until the caller closes it.
func Resolve(specs []Spec, have []*Listener) (use, unused []*Listener, err error) {
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, nil, err
		}
	}
	activated := make(map[string]bool)
	for i, l := range have {
		if l == nil || !l.Source.valid() {
			return nil, nil, fmt.Errorf("fdstore: resolve: listener %d (%v) has no valid source", i, l)
		}
		if l.Source == Activated {
			activated[l.Name] = true
		}
	}

	claimed := make([]bool, len(have))
	var opened []*Listener
	type reuse struct {
		l *Listener
		s Spec
		c *permChange
	}
	var reused []reuse // unix socket files
	defer func() {
		for _, r := range reused {
			r.c.close()
		}
		if err != nil {
			for _, l := range opened {
				l.Close()
				if l.Network == "unix" && l.Addr != "" && !strings.HasPrefix(l.Addr, "@") {
					removeSocketFile(l.Addr) // the file Open created
				}
			}
			use, unused = nil, nil
		}
	}()
	for _, s := range specs {
		if activated[s.Name] {
			for i, l := range have {
				if !claimed[i] && l.Source == Activated && l.Name == s.Name {
					claimed[i] = true
					use = append(use, l)
				}
			}
			continue
		}
		if i := reusable(s, have, claimed); i >= 0 {
			claimed[i] = true
			if s.Network == "unix" && !strings.HasPrefix(s.Address, "@") {
				reused = append(reused, reuse{l: have[i], s: s})
			}
			use = append(use, have[i])
			continue
		}
		l, err := Open(s)
		if err != nil {
			return nil, nil, err
		}
		opened = append(opened, l)
		use = append(use, l)
	}
	for i := range reused {
		r := &reused[i]
		if r.c, err = r.l.reusePerms(r.s); err != nil {
			return nil, nil, fmt.Errorf("fdstore: reuse %q on unix %s: %w", r.s.Name, r.s.Address, err)
		}
	}
	for _, r := range reused {
		if r.c == nil {
			continue
		}
		if err := r.c.apply(); err != nil {
			return nil, nil, fmt.Errorf("fdstore: reuse %q on unix %s: %w", r.s.Name, r.s.Address, err)
		}
	}
	for i, l := range have {
		switch {
		case claimed[i]:
		case l.Source == Activated:
			use = append(use, l)
		default:
			unused = append(unused, l)
		}
	}
	return use, unused, nil
}

// reusable returns the index of the first unclaimed Opened listener in have
// that matches s, or -1.
func reusable(s Spec, have []*Listener, claimed []bool) int {
	for i, l := range have {
		if !claimed[i] && l.Source == Opened && l.Matches(s) {
			return i
		}
	}
	return -1
}
