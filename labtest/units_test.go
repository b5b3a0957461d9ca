//go:build lab && linux

package labtest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The units under test come from units/ (or $LABTEST_UNITS), installed as they are but for
// the path of baton, which becomes the binary built for this run. The tests do not rely
// on the units' file names: each test asks for a unit by what it must do (role), found by
// its directives.

// placeholderExe is the path of baton in the unit files as shipped.
const placeholderExe = "/usr/bin/baton"

// role is what a test needs a service unit for.
type role int

const (
	roleSocket       role = iota // Type=notify, with a socket unit of its own (X@.socket)
	roleFDStore                  // Type=notify, sockets baton opens itself, kept in the FD store
	roleNotifyReload             // Type=notify-reload (systemd 253 and later)
)

func (r role) String() string {
	return [...]string{"socket-activated Type=notify service", "Type=notify service with the FD store", "Type=notify-reload service"}[r]
}

// Unit is one unit file, parsed: section → key → values in order.
type Unit struct {
	Name     string // file name, e.g. baton@.service
	Text     string // as installed (baton's path substituted)
	Sections map[string]map[string][]string
}

// Get returns the last value of key in section ("" if none): the one systemd uses for a
// single-valued key.
func (u *Unit) Get(section, key string) string {
	vs := u.Sections[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func parseUnit(name, text string) *Unit {
	u := &Unit{Name: name, Text: text, Sections: map[string]map[string][]string{}}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(text, "\\\n", " ")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u.Sections[section] == nil {
				u.Sections[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if ok && section != "" {
				k = strings.TrimSpace(k)
				u.Sections[section][k] = append(u.Sections[section][k], strings.TrimSpace(v))
			}
		}
	}
	return u
}

// UnitSet is every unit file installed from units/.
type UnitSet struct {
	Dir   string
	Units map[string]*Unit
}

// prefix is the part of a template name before '@' ("baton" for baton@.service).
func prefix(name string) string {
	p, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(name, ".service"), ".socket"), "@")
	return p
}

// socketOf returns the socket unit paired with service template svc (X@.service and
// X@.socket), or nil.
func (s *UnitSet) socketOf(svc *Unit) *Unit {
	return s.Units[strings.TrimSuffix(svc.Name, ".service")+".socket"]
}

// service returns the service template for r, or an error that says what is missing.
// Several candidates: the one with the shortest name (the plainest variant).
func (s *UnitSet) service(r role) (*Unit, error) {
	var cands []*Unit
	for _, u := range s.Units {
		if !strings.HasSuffix(u.Name, "@.service") {
			continue
		}
		typ := u.Get("Service", "Type")
		store, _ := strconv.Atoi(u.Get("Service", "FileDescriptorStoreMax"))
		switch r {
		case roleSocket:
			if typ == "notify" && s.socketOf(u) != nil {
				cands = append(cands, u)
			}
		case roleFDStore:
			if typ == "notify" && store > 0 && s.socketOf(u) == nil {
				cands = append(cands, u)
			}
		case roleNotifyReload:
			if typ == "notify-reload" {
				cands = append(cands, u)
			}
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("no unit in %s is a %s (template X@.service)", s.Dir, r)
	}
	slices.SortFunc(cands, func(a, b *Unit) int {
		if d := len(a.Name) - len(b.Name); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return cands[0], nil
}

// configPath is where the service's instance inst reads its config: the -c argument of
// ExecStart=, with %i expanded.
func configPath(svc *Unit, inst string) string {
	m := regexp.MustCompile(`(?:^|\s)(?:-c|--config)[ =](\S+)`).FindStringSubmatch(svc.Get("Service", "ExecStart"))
	p := "/etc/baton/%i.toml"
	if m != nil {
		p = m[1]
	}
	return expand(p, inst)
}

// controlSocket is the default control socket of instance inst: control.sock in the
// first RuntimeDirectory=, or "" when the unit has none.
func controlSocket(svc *Unit, inst string) string {
	dirs := strings.Fields(svc.Get("Service", "RuntimeDirectory"))
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Join("/run", expand(dirs[0], inst), "control.sock")
}

// expand replaces the instance specifiers.
func expand(s, inst string) string {
	return strings.NewReplacer("%i", inst, "%I", inst).Replace(s)
}

// installUnits copies the unit files of units/ (or $LABTEST_UNITS) into the lab with
// baton's path substituted, and creates the users the units run as. A subfolder vNNN
// holds the forms for systemd >= NNN under the same names: installed when this systemd
// is new enough, each renamed X-vNNN@ (and the names they mention with it), so that both
// forms can be tested side by side.
func (l *Lab) installUnits() error {
	dir := os.Getenv("LABTEST_UNITS")
	if dir == "" {
		dir = filepath.Join(l.Repo, "units")
	}
	set := &UnitSet{Dir: dir, Units: map[string]*Unit{}}
	l.Units = set
	out := filepath.Join(l.Dir, "units")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var files []string
	add := func(name, text string) error {
		text = strings.ReplaceAll(text, placeholderExe, filepath.Join(l.Bin, "baton"))
		set.Units[name] = parseUnit(name, text)
		files = append(files, filepath.Join(out, name))
		return os.WriteFile(files[len(files)-1], []byte(text), 0o644)
	}
	units, err := readUnits(dir)
	if err != nil {
		return err
	}
	for name, text := range units {
		if err := add(name, text); err != nil {
			return err
		}
	}
	subs, _ := filepath.Glob(filepath.Join(dir, "v[0-9]*"))
	for _, sub := range subs {
		v, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(sub), "v"))
		if err != nil || v > l.Version {
			continue
		}
		units, err := readUnits(sub)
		if err != nil {
			return err
		}
		var pairs []string // every template name of the set → its renamed form
		for name := range units {
			p := prefix(name) + "@"
			pairs = append(pairs, p, prefix(name)+"-"+filepath.Base(sub)+"@")
		}
		r := strings.NewReplacer(pairs...)
		for name, text := range units {
			if err := add(r.Replace(name), r.Replace(text)); err != nil {
				return err
			}
		}
	}
	if len(files) == 0 {
		fmt.Fprintf(os.Stderr, "labtest: no unit files in %s: the tests that need them fail\n", dir)
		return nil
	}
	cmd := l.command(append([]string{"install-unit"}, files...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab install-unit: %v\n%s", err, out)
	}
	for _, u := range set.Units {
		user := u.Get("Service", "User")
		if user == "" || user == "root" || u.Get("Service", "DynamicUser") == "yes" {
			continue
		}
		if _, _, err := l.exec("", "sh", "-c", `id "$1" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$1"`, "sh", user); err != nil {
			return fmt.Errorf("create user %s for %s: %w", user, u.Name, err)
		}
	}
	return nil
}

// readUnits reads the .service and .socket files of dir: name → text.
func readUnits(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	units := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".service") || strings.HasSuffix(e.Name(), ".socket")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		units[e.Name()] = string(b)
	}
	return units, nil
}
