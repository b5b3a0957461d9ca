//go:build linux

// Command driver is baton's benchmark: in one run it puts baton (standalone, with the
// reference worker), nginx and HAProxy (Debian's packages; HAProxy configured for reloads)
// through upgrade, reload and rollback cycles under HTTP load (HAProxy: reloads only), in
// keep-alive and new-connection modes, again beside a CPU hog (starvation), and writes a markdown
// report: failed requests by kind, latency, cycle times and their phases, baton's master
// RSS and idle CPU, supervised vs bare throughput, and cycle time against the number of
// workers and listeners. Its systemd section runs baton's shipped units in a systemd-lab
// container (../shared/systemd-lab/lab) and measures the same upgrade and reload cycles
// done with `systemctl kill -s USR2` and `systemctl reload`; it is skipped, with a note
// in the report, when the driver is not root or the lab cannot boot.
//
//	go run ./bench/cmd/driver [-cycles 100] [-out FILE] [flags]
//
// Every server listens on 127.0.0.1 only. The driver makes itself a child subreaper and
// reaps, so that every process it starts (and every new master those start) stays its
// child; it ends them all, by pid, before it exits. It installs nginx and HAProxy with
// apt-get if they are missing and -install-nginx is set (the default).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/baton-supervisor/baton/bench/load"
)

// driver holds the run's settings and the processes' reaper.
type driver struct {
	baton, hello, nginx string
	haproxy             string
	nginxRoot           string // a root tree with a newer nginx, run with chroot
	work                string // scratch directory: one folder per system started
	reaper              *reaper

	cycles, clients, workers int
	systems, kinds           []string
	modes                    []load.Mode
	drain, gap, timeout      time.Duration
	stepTimeout              time.Duration
	tputDuration, tputWarm   time.Duration
	tputRounds               int
	idle                     time.Duration
	scaleCycles              int
	scaleWorkers             []int
	scaleListeners           []int
	sections                 []string
	labScript, labRoot       string
	unitsDir                 string
	labCycles                int
	labLoadIn                string
	workerProcs              int
	llConns                  int           // long-lived section: idle connections
	llSpread, llStopTimeout  time.Duration // its stop_spread and stop_timeout
	llPing                   time.Duration // a request on each idle connection this often (0: none)
	hogs                     int           // busy loops of the starvation section's hog
	hogNice                  int           // nice of the hog's autogroup
}

func (d *driver) cpus() int { return runtime.NumCPU() }

func (d *driver) deadline() time.Time { return time.Now().Add(d.stepTimeout) }

func (d *driver) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	d := &driver{}
	var out, failures, systems, kinds, modes, scaleW, scaleL, sections, work string
	var installNginx, keep bool
	fs := flag.NewFlagSet("driver", flag.ContinueOnError)
	fs.StringVar(&d.baton, "baton", "bin/baton", "baton binary (make build)")
	fs.StringVar(&d.hello, "hello", "bin/hello", "reference worker binary (make build)")
	fs.StringVar(&d.nginx, "nginx", "", "nginx binary (default: nginx in PATH or /usr/sbin/nginx)")
	fs.StringVar(&d.nginxRoot, "nginx-root", "", "run the nginx of this root tree (chroot; e.g. Debian 13's) instead of the host's")
	fs.StringVar(&d.haproxy, "haproxy", "", "haproxy binary (default: haproxy in PATH or /usr/sbin/haproxy)")
	fs.BoolVar(&installNginx, "install-nginx", true, "apt-get install nginx-light and haproxy if they are missing")
	fs.StringVar(&out, "out", "", "write the markdown report to this `file` (default stdout)")
	fs.StringVar(&failures, "failures", "", "write every failed request of the cycle series to this CSV `file`")
	fs.StringVar(&work, "work", "", "scratch `dir` (default a new temporary directory, removed at the end)")
	fs.BoolVar(&keep, "keep", false, "keep the scratch directory (configs and logs)")
	fs.IntVar(&d.cycles, "cycles", 100, "cycles of each kind, per system and load mode")
	fs.IntVar(&d.clients, "clients", load.DefaultClients, "concurrent clients of the load")
	fs.IntVar(&d.workers, "workers", 2, "workers of baton and nginx in the cycle series")
	fs.StringVar(&systems, "systems", "baton,nginx,haproxy,haproxy-nospread", "systems cycled (haproxy: reloads only; haproxy-nospread: without close-spread-time)")
	fs.StringVar(&kinds, "kinds", "upgrade,reload,rollback", "cycle kinds")
	fs.StringVar(&modes, "modes", "keep-alive,new-conn", "load modes")
	fs.DurationVar(&d.drain, "drain", time.Second, "the reference worker's -drain")
	fs.DurationVar(&d.gap, "gap", 50*time.Millisecond, "pause between two cycles (load keeps running)")
	fs.DurationVar(&d.timeout, "timeout", 5*time.Second, "per-request timeout of the load")
	fs.DurationVar(&d.stepTimeout, "step-timeout", 60*time.Second, "limit of every wait for a cycle step")
	fs.DurationVar(&d.tputDuration, "tput", 3*time.Second, "duration of each throughput run")
	fs.DurationVar(&d.tputWarm, "tput-warm", time.Second, "unmeasured load before each throughput run")
	fs.IntVar(&d.tputRounds, "tput-rounds", 10, "throughput rounds per mode (each system once per round)")
	fs.DurationVar(&d.idle, "idle", 10*time.Second, "idle window for baton master CPU")
	fs.IntVar(&d.scaleCycles, "scale-cycles", 10, "cycles of each kind per scaling point")
	fs.StringVar(&scaleW, "scale-workers", "1,4,16,64", "worker counts of the scaling table")
	fs.StringVar(&scaleL, "scale-listeners", "1,16,256", "listener counts of the scaling table")
	fs.StringVar(&sections, "sections", "systemd,cycles,starvation,throughput,resources,scaling,gate,memory", "which parts to run (and longlived, not by default: 10,000 connections)")
	fs.IntVar(&d.hogs, "hogs", runtime.NumCPU(), "busy loops of the starvation section's CPU hog")
	fs.IntVar(&d.hogNice, "hog-nice", 0, "nice of the hog's autogroup (-20..19; its session's weight against the servers' and the load's, /proc/PID/autogroup)")
	fs.StringVar(&d.labScript, "lab", defaultLab(), "the systemd-lab script, for the systemd section (default $LAB, else ../shared/systemd-lab/lab)")
	fs.StringVar(&d.labRoot, "lab-root", "host", "LAB_ROOT of the systemd section's lab (host: this machine's systemd)")
	fs.StringVar(&d.unitsDir, "units", "units", "the `dir` of baton@.service and baton@.socket")
	fs.IntVar(&d.labCycles, "systemd-cycles", 100, "cycles of each kind and load mode in the systemd section")
	fs.IntVar(&d.workerProcs, "worker-gomaxprocs", 0, "GOMAXPROCS of every reference worker (supervised or bare); 0: the Go default, one per CPU")
	fs.IntVar(&d.llConns, "ll-conns", 10000, "idle keep-alive connections of the longlived section")
	fs.DurationVar(&d.llSpread, "ll-spread", 10*time.Second, "stop_spread of the longlived section's paced rows")
	fs.DurationVar(&d.llPing, "ll-ping", 0, "longlived section: each idle connection makes a request this often (0: never), to race the server's closes")
	fs.DurationVar(&d.llStopTimeout, "ll-stop-timeout", 20*time.Second, "stop_timeout of the longlived section (hello paces over what it leaves)")
	fs.StringVar(&d.labLoadIn, "lab-load-in", "service", "where the systemd section's load runs: service (a transient service inside the lab, beside baton's) or outside (`lab exec`: the host's cgroup, outside the lab's)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	d.systems, d.kinds, d.sections = splitList(systems), splitList(kinds), splitList(sections)
	if d.scaleWorkers, err = intList(scaleW); err == nil {
		d.scaleListeners, err = intList(scaleL)
	}
	for _, m := range splitList(modes) {
		mode, merr := load.ParseMode(m)
		err = errors.Join(err, merr)
		d.modes = append(d.modes, mode)
	}
	if d.hogs < 1 {
		err = errors.Join(err, fmt.Errorf("-hogs %d: want at least 1", d.hogs))
	}
	if d.hogNice < -20 || d.hogNice > 19 {
		err = errors.Join(err, fmt.Errorf("-hog-nice %d: want -20 to 19", d.hogNice))
	}
	if d.labLoadIn != "service" && d.labLoadIn != "outside" {
		err = errors.Join(err, fmt.Errorf("-lab-load-in %q: want service or outside", d.labLoadIn))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 2
	}
	if err := d.setup(installNginx, work); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 1
	}
	if !keep && work == "" {
		defer os.RemoveAll(d.work)
	}
	// Whatever happens, nothing the driver started outlives it.
	defer stopAll(10 * time.Second)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-stop
		fmt.Fprintf(os.Stderr, "driver: %v: ending every process it started\n", s)
		stopAll(10 * time.Second)
		os.Exit(1)
	}()

	// machineInfo runs commands and waits for them: before the reaper, which would reap
	// them first.
	rep := &report{started: time.Now(), args: args, machine: machineInfo(d), d: d}
	// The systemd section boots a container that must not become the driver's child: it
	// runs before the driver is a child subreaper.
	if d.has("systemd") {
		rep.systemd = d.systemdSection()
		d.progress("systemd section: took %v %s%v", rep.systemd.took.Round(time.Second), rep.systemd.skipped, errText(rep.systemd.err))
	}
	if d.reaper, err = startReaper(); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 1
	}
	d.progress("baton: %s, nginx: %s, haproxy: %s, scratch: %s", rep.machine.batonVersion, rep.machine.nginxVersion, rep.machine.haproxyVersion, d.work)
	if d.has("cycles") {
		for _, sys := range d.systems {
			for _, kind := range d.kinds {
				if !hasCycle(sys, kind) {
					continue
				}
				for _, mode := range d.modes {
					r := d.runSeries(sys, kind, mode, d.cycles, 0)
					d.progress("%s %s %s: %s", sys, kind, mode, r.summary())
					rep.series = append(rep.series, r)
				}
			}
		}
	}
	if d.has("starvation") {
		rep.starved = d.starvationSection()
	}
	if d.has("throughput") {
		for _, mode := range d.modes {
			rep.tput = append(rep.tput, d.throughput(mode)...)
		}
	}
	if d.has("resources") {
		rep.idle = d.idleResources()
		d.progress("baton master idle with 4 workers: RSS %d KiB, %d ticks in %v %v", rep.idle.rss, rep.idle.ticks, rep.idle.window, rep.idle.err)
	}
	if d.has("scaling") {
		for _, w := range d.scaleWorkers {
			p := d.scale(w, 1)
			d.progress("scaling %d workers, 1 listener: upgrade p50 %v, reload p50 %v %v", w, totals(p.upgrade).pct(50), totals(p.reload).pct(50), p.err)
			rep.scaleW = append(rep.scaleW, p)
		}
		for _, l := range d.scaleListeners {
			p := d.scale(2, l)
			d.progress("scaling 2 workers, %d listeners: upgrade p50 %v, reload p50 %v %v", l, totals(p.upgrade).pct(50), totals(p.reload).pct(50), p.err)
			rep.scaleL = append(rep.scaleL, p)
		}
	}
	if d.has("gate") {
		rep.gate = d.healthGate()
	}
	if d.has("memory") {
		rep.memory = d.memorySection()
	}
	if d.has("longlived") {
		rep.long = d.longLived()
	}
	rep.finished = time.Now()
	rep.loadEnd = loadAvg()
	if failures != "" {
		all := append(slices.Clone(rep.series), rep.starved...)
		if rep.systemd != nil {
			all = append(slices.Clone(all), rep.systemd.series...)
		}
		if err := writeFailuresFile(failures, all); err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
		}
	}

	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	rep.write(w)
	if rep.failed() {
		return 1
	}
	return 0
}

func writeFailuresFile(path string, series []*seriesResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	// us_into_cycle: µs since the cycle started; "+µs" since the cycle before ended.
	fmt.Fprintln(f, "seen,system,cycle,load,kind,reused,cycle_no,phase,us_into_cycle,error")
	for _, s := range series {
		if s.phases == nil {
			continue
		}
		writeFailures(f, s)
	}
	return f.Close()
}

func (d *driver) has(section string) bool {
	for _, s := range d.sections {
		if s == section {
			return true
		}
	}
	return false
}

// defaultLab is $LAB, else the lab beside the repository (run from its root, as make does).
func defaultLab() string {
	if l := os.Getenv("LAB"); l != "" {
		return l
	}
	return filepath.Join("..", "shared", "systemd-lab", "lab")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "ERROR: " + err.Error()
}
