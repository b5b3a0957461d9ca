package fdstore

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// applyPerms chowns and chmods the socket file at path as s asks. It does
// nothing when s sets none of Mode, Owner and Group.
func applyPerms(path string, s Spec) error {
	uid, err := lookupID("user", s.Owner)
	if err != nil {
		return err
	}
	gid, err := lookupID("group", s.Group)
	if err != nil {
		return err
	}
	if uid != -1 || gid != -1 {
		if err := os.Lchown(path, uid, gid); err != nil {
			return err
		}
	}
	if s.Mode != 0 {
		if err := os.Chmod(path, s.Mode); err != nil {
			return err
		}
	}
	return nil
}

// lookupID turns a user or group name, or a numeric id, into an id; "" is
// -1 (leave unchanged).
func lookupID(kind, name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if id, err := strconv.ParseUint(name, 10, 31); err == nil {
		return int(id), nil
	}
	var id string
	if kind == "user" {
		u, err := user.Lookup(name)
		if err != nil {
			return -1, err
		}
		id = u.Uid
	} else {
		g, err := user.LookupGroup(name)
		if err != nil {
			return -1, err
		}
		id = g.Gid
	}
	n, err := strconv.Atoi(id)
	if err != nil {
		return -1, fmt.Errorf("%s %q has non-numeric id %q", kind, name, id)
	}
	return n, nil
}
