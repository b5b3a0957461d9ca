//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// The systemd section: baton's shipped units (units/baton@.service and baton@.socket) in a
// systemd-lab container, upgraded with `systemctl kill -s USR2` and reloaded with
// `systemctl reload` under load. The load generator (bench/cmd/load) and the cycles
// (bench/cmd/unitcycle, which runs systemctl) run inside the lab, in its network and PID
// namespaces, built static so that they run on any LAB_ROOT.

const (
	labUnit    = "baton@bench.service"
	labSocket  = "baton@bench.socket"
	labAddr    = "127.0.0.1:8080" // the lab's own loopback
	labConfig  = "/etc/baton/bench.toml"
	unitExe    = "/usr/bin/baton" // baton's path in the shipped units
	labKindSet = "upgrade,reload"
)

// systemdRun is what the section measured, or why it did not run.
type systemdRun struct {
	skipped  string // why the section did not run ("" if it ran)
	lab      string // LAB_NAME
	version  string // systemctl --version, first line
	took     time.Duration
	boot     time.Duration // lab up
	down     time.Duration // lab down
	series   []*seriesResult
	err      error // the section could not be set up, or not torn down
	loadBin  string
	cycleBin string
}

// labCycleEnd is the index of the phase whose end ends each kind's cycle in the
// systemd table: the upgrade ends when the old master is gone; the reload when
// `systemctl reload` returns (its ExecReload=, `baton reload --wait`).
var labCycleEnd = map[string]int{"upgrade": 2, "reload": 0}

// systemdSection boots a lab, runs every series and powers the lab off. It runs before
// the driver becomes a child subreaper (see bootLab).
func (d *driver) systemdSection() *systemdRun {
	t0 := time.Now()
	sr := &systemdRun{lab: fmt.Sprintf("baton-bench-%d", os.Getpid())}
	defer func() { sr.took = time.Since(t0) }()
	var kinds []string
	for _, k := range d.kinds {
		if strings.Contains(labKindSet, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		sr.skipped = "no upgrade or reload among -kinds"
		return sr
	}
	dir := filepath.Join(d.work, "systemd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		sr.err = err
		return sr
	}
	if os.Getuid() != 0 {
		sr.skipped = "not root: the lab (systemd-nspawn) needs root"
		return sr
	}
	if sr.err = d.buildLabTools(sr, dir); sr.err != nil {
		return sr
	}
	bind := []string{filepath.Dir(d.baton), d.work}
	if hd := filepath.Dir(d.hello); !slices.Contains(bind, hd) {
		bind = append(bind, hd)
	}
	d.progress("systemd: booting lab %s (LAB_ROOT=%s)", sr.lab, d.labRoot)
	lab, err := bootLab(d.labScript, sr.lab, d.labRoot, bind, filepath.Join(dir, "lab.log"))
	if err != nil {
		sr.skipped = err.Error()
		return sr
	}
	defer func() {
		if err := lab.down(); err != nil && sr.err == nil {
			sr.err = err
		}
		sr.down = lab.downTook
	}()
	sr.boot = lab.bootTook
	if sr.err = d.installLab(lab, sr, dir); sr.err != nil {
		return sr
	}
	for _, kind := range kinds {
		for _, mode := range d.modes {
			r := d.labSeries(lab, sr, dir, kind, mode)
			d.progress("systemd %s %s: %s", kind, mode, r.summary())
			sr.series = append(sr.series, r)
		}
	}
	return sr
}

// buildLabTools builds bench/cmd/load and bench/cmd/unitcycle, static, into dir.
func (d *driver) buildLabTools(sr *systemdRun, dir string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, serr := os.Stat(goTool); serr != nil {
			goTool = "/usr/local/go/bin/go"
		}
	}
	sr.loadBin, sr.cycleBin = filepath.Join(dir, "load"), filepath.Join(dir, "unitcycle")
	for out, pkg := range map[string]string{sr.loadBin: "github.com/baton-supervisor/baton/bench/cmd/load", sr.cycleBin: "github.com/baton-supervisor/baton/bench/cmd/unitcycle"} {
		cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return nil
}

// installLab installs the units with baton's path replaced by d.baton, the socket on the
// lab's loopback, and the config; and starts the socket.
func (d *driver) installLab(lab *labCtl, sr *systemdRun, dir string) error {
	v, err := lab.exec("systemctl", "--version")
	if err != nil {
		return err
	}
	sr.version, _, _ = strings.Cut(strings.TrimSpace(v), "\n")
	// The lab has only loopback, and first-boot presets enable the wait-online services.
	if _, err := lab.exec("systemctl", "mask", "systemd-networkd-wait-online.service", "NetworkManager-wait-online.service"); err != nil {
		return err
	}
	var files []string
	for _, name := range []string{"baton@.service", "baton@.socket"} {
		b, err := os.ReadFile(filepath.Join(d.unitsDir, name))
		if err != nil {
			return fmt.Errorf("%w (-units)", err)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(strings.ReplaceAll(string(b), unitExe, d.baton)), 0o644); err != nil {
			return err
		}
		files = append(files, f)
	}
	if _, err := lab.run(nil, append([]string{"install-unit"}, files...)...); err != nil {
		return err
	}
	if err := lab.writeFile("/etc/systemd/system/"+labSocket+".d/bench.conf", "[Socket]\nListenStream=\nListenStream="+labAddr+"\n"); err != nil {
		return err
	}
	if err := lab.writeFile(labConfig, labBatonConfig(d.hello, d.drain.String(), d.workers, d.workerProcs)); err != nil {
		return err
	}
	if _, err := lab.exec("systemctl", "daemon-reload"); err != nil {
		return err
	}
	_, err = lab.exec("systemctl", "start", labSocket)
	return err
}

// labBatonConfig is the config of the benchmarked instance: its listener comes from the
// socket unit (named http), otherwise as standalone: auto commit, no soak.
func labBatonConfig(hello, drain string, workers, gomaxprocs int) string {
	return fmt.Sprintf(`# baton benchmark, under systemd: the listener comes from baton@bench.socket.
[worker]
command = [%q, "-drain", %q, "-names", "*"]
count = %d
start_timeout = "60s"
stop_timeout = "30s"
%s
[upgrade]
commit = "auto"
soak = "0s"
timeout = "120s"
`, hello, drain, workers, workerEnv(gomaxprocs))
}

// labSeries starts the service fresh, runs the load inside the lab, the cycles inside
// the lab, then stops the load and the service.
func (d *driver) labSeries(lab *labCtl, sr *systemdRun, dir, kind string, mode load.Mode) *seriesResult {
	r := &seriesResult{system: "baton-systemd", kind: kind, mode: mode, workers: d.workers}
	if _, err := lab.exec("systemctl", "start", labUnit); err != nil {
		r.err = fmt.Errorf("%w\n%s", err, d.labJournal(lab))
		return r
	}
	defer func() {
		if _, err := lab.exec("systemctl", "stop", labUnit); err != nil && r.err == nil {
			r.err = err
		}
		lab.exec("systemctl", "reset-failed", labUnit)
	}()
	ld, err := startLabLoad(lab, d.labLoadIn, sr.loadBin, filepath.Join(dir, fmt.Sprintf("load-%s-%s.json", kind, mode)), d.clients, mode, d.timeout)
	if err != nil {
		r.err = err
		return r
	}
	if err := ld.waitWarm(d.deadline()); err != nil {
		ld.stop(d.timeout + 10*time.Second)
		r.err = err
		return r
	}
	out, cerr := lab.exec(sr.cycleBin, "-unit", labUnit, "-kind", kind, "-cycles", strconv.Itoa(d.labCycles),
		"-gap", d.gap.String(), "-timeout", d.stepTimeout.String())
	res, lerr := ld.stop(d.timeout + 10*time.Second)
	r.load = res
	var uc unitCycles
	if err := json.Unmarshal([]byte(lastLines(out, 1)), &uc); err != nil && cerr == nil {
		cerr = fmt.Errorf("unitcycle output: %w: %s", err, lastLines(out, 5))
	}
	r.phases, r.cycles = uc.Phases, uc.cycles()
	switch {
	case cerr != nil:
		r.err = fmt.Errorf("%w\n%s", cerr, d.labJournal(lab))
	case uc.Error != "":
		r.err = fmt.Errorf("unitcycle: %s\n%s", uc.Error, d.labJournal(lab))
	case lerr != nil:
		r.err = lerr
	}
	if r.load != nil && len(r.phases) > 0 {
		r.failedIn = attribute(r.cycles, len(r.phases), r.load.Samples)
	}
	return r
}

// labJournal is the end of the service's journal, for an error message.
func (d *driver) labJournal(lab *labCtl) string {
	out, _ := lab.exec("journalctl", "-u", labUnit, "-n", "30", "--no-pager", "-o", "short-monotonic")
	return "last lines of its journal:\n" + out
}

// unitCycles is bench/cmd/unitcycle's output.
type unitCycles struct {
	Phases []string `json:"phases"`
	Cycles []struct {
		Start time.Time   `json:"start"`
		Ends  []time.Time `json:"ends"`
	} `json:"cycles"`
	Error string `json:"error"`
}

func (u unitCycles) cycles() []cycle {
	var cs []cycle
	for _, c := range u.Cycles {
		if len(c.Ends) == len(u.Phases) && len(c.Ends) > 0 {
			cs = append(cs, cycle{start: c.Start, ends: c.Ends})
		}
	}
	return cs
}
