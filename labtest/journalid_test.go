//go:build lab && linux

package labtest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// journalOf returns the entries of unit with SYSLOG_IDENTIFIER ident, as `journalctl -t
// ident` finds them. Not after a cursor: journalctl 252 with a match and --after-cursor
// skips the first matching entry when the cursor's own entry does not match (it skips
// two entries from the cursor, taking the first for the cursor's); 254 and 257 do not.
// The unit is this test's alone, started once, and the checks name the workers' pids.
func journalOf(t testing.TB, ident, unit string) []entry {
	t.Helper()
	return parseJournal(t, run(t, "journalctl", "-q", "-o", "json", "--no-pager", "-t", ident, "_SYSTEMD_UNIT="+unit))
}

// waitIdent waits until each named check is satisfied by some entry of `journalctl -t
// ident` of the unit, and returns the entries.
func waitIdent(t testing.TB, ident, unit string, checks map[string]func(entry) bool) []entry {
	t.Helper()
	var es []entry
	waitFor(t, 20*time.Second, "journalctl -t "+ident, func() (bool, string) {
		es = journalOf(t, ident, unit)
		var missing []string
		for name, ok := range checks {
			if !slices.ContainsFunc(es, ok) {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, fmt.Sprintf("%d entries %v; missing: %s", len(es), es, strings.Join(missing, "; "))
	})
	return es
}

// withWorkerConfig writes the instance's config with lines added to its [worker] table.
func (in *instance) withWorkerConfig(c conf, lines ...string) {
	in.t.Helper()
	in.conf = c
	text := in.configText(c)
	if !strings.Contains(text, "[worker]\n") {
		in.t.Fatalf("no [worker] table in:\n%s", text)
	}
	writeFile(in.t, in.Config, strings.Replace(text, "[worker]\n", "[worker]\n"+strings.Join(lines, "\n")+"\n", 1))
}

// reload runs `systemctl reload` and fails the test unless it succeeds.
func (in *instance) reload() {
	in.t.Helper()
	if _, errOut, rc := runRC(in.t, "systemctl", "reload", in.Name); rc != 0 {
		in.t.Fatalf("systemctl reload: exit %d: %s", rc, errOut)
	}
}

// issue 9: each worker writes to a journal stream of its own, so `journalctl -t hello`
// finds its lines, under the worker's own _PID, with sd-daemon priority prefixes honoured,
// also from the workers of a new master after an upgrade; a server we did not write
// (python3's http.server) logs under "python3"; baton's own lines stay "baton", and no
// worker line is left under "baton".
func TestWorkersJournalIdentifier(t *testing.T) {
	in := newInstance(t, roleSocket, "jid", 18191)
	t.Cleanup(func() {
		if t.Failed() {
			out, _, _ := lab.exec("", "journalctl", "-q", "--no-pager", "-o", "verbose", "-u", in.Name, "_TRANSPORT=stdout")
			t.Logf("the unit's stdout entries:\n%s", out)
		}
	})
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	first := in.waitWorkers(c0, master, 2)

	// hello as the command: the identifier is its base name.
	checks := map[string]func(entry) bool{}
	for _, w := range first {
		checks["serving from _PID="+strconv.Itoa(w)] = func(e entry) bool {
			return e.Msg() == "serving" && e.F["_PID"] == strconv.Itoa(w) && e.F["PRIORITY"] == "6" &&
				e.F["_TRANSPORT"] == "stdout" && e.F["_SYSTEMD_UNIT"] == in.Name
		}
	}
	waitIdent(t, "hello", in.Name, checks)
	mustServe(t, in.HTTP, 4)

	// hello started through a shell that first writes a line with a "<3>" prefix (exec
	// keeps the pid); log_identifier keeps the name.
	c1 := cursor(t)
	c := in.conf
	c.Command = []string{"/bin/sh", "-c", `echo "<3>failing on purpose: worker $BATON_WORKER" >&2; exec "$0" "$@"`,
		filepath.Join(lab.Bin, "hello"), "-names", in.FDName, "-drain", "300ms"}
	in.withWorkerConfig(c, `log_identifier = "hello"`)
	in.reload()
	workers := in.waitWorkers(c1, master, 2)
	prefixed := func(gen []int) map[string]func(entry) bool {
		checks := map[string]func(entry) bool{}
		for _, w := range gen {
			pid := strconv.Itoa(w)
			checks["<3> line at PRIORITY=3 from _PID="+pid] = func(e entry) bool {
				return strings.HasPrefix(e.Message(), "failing on purpose: worker ") && e.F["PRIORITY"] == "3" && e.F["_PID"] == pid
			}
			checks["serving at PRIORITY=6 from _PID="+pid] = func(e entry) bool {
				return e.Msg() == "serving" && e.F["PRIORITY"] == "6" && e.F["_PID"] == pid
			}
		}
		return checks
	}
	waitIdent(t, "hello", in.Name, prefixed(workers))

	// An upgrade: the new master gives its workers streams of their own too.
	c2 := cursor(t)
	run(t, "systemctl", "kill", "--kill-whom=main", "-s", "USR2", in.Name)
	newMaster := in.newMaster(c2, master)
	in.waitMainPID(newMaster)
	newWorkers := in.waitWorkers(c2, newMaster, 2)
	waitIdent(t, "hello", in.Name, prefixed(newWorkers))
	mustServe(t, in.HTTP, 4)

	// python3's http.server, which logs each request to stderr.
	script := filepath.Join(lab.Dir, "journalid-server.py")
	writeFile(t, script, `import http.server, os, signal, socket, threading

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("pid=%d generation=%s worker=%s\n" % (os.getpid(),
            os.environ["BATON_GENERATION"], os.environ["BATON_WORKER"])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = http.server.HTTPServer(None, Handler, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
srv.socket.setblocking(False)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
threading.Thread(target=srv.serve_forever, args=(0.1,)).start()
signal.sigwait({signal.SIGTERM})
srv.shutdown()
`)
	c3 := cursor(t)
	c.Command = []string{"/usr/bin/python3", script}
	in.withWorkerConfig(c, `ready = "started"`)
	in.reload()
	pyWorkers := in.waitWorkers(c3, newMaster, 2)
	served := mustServe(t, in.HTTP, 8).servedBy()
	checks = map[string]func(entry) bool{}
	for w := range served {
		pid := strconv.Itoa(w)
		if !slices.Contains(pyWorkers, w) {
			t.Errorf("answered by %d, not one of the python3 workers %v", w, pyWorkers)
		}
		checks["a request line from _PID="+pid] = func(e entry) bool {
			return strings.Contains(e.Message(), `"GET / HTTP/1.1" 200`) && e.F["_PID"] == pid && e.F["_SYSTEMD_UNIT"] == in.Name
		}
	}
	waitIdent(t, "python3", in.Name, checks)

	// baton's own lines keep their identifier; none of the workers' is among them.
	all := slices.Concat(first, workers, newWorkers, pyWorkers)
	es := journal(t, in.Name, c0)
	if len(filter(es, func(e entry) bool { return e.F["SYSLOG_IDENTIFIER"] == "baton" && e.Msg() == "worker ready" })) == 0 {
		t.Errorf("no \"worker ready\" line under SYSLOG_IDENTIFIER=baton")
	}
	for _, e := range filter(es, func(e entry) bool { return e.F["SYSLOG_IDENTIFIER"] == "baton" }) {
		if slices.Contains(all, e.PID()) {
			t.Errorf("a worker's line under baton: %v", e)
		}
	}
	if got := containing(es, "could not connect its own"); len(got) > 0 {
		t.Errorf("a worker could not connect its own stream: %v", got)
	}
	if testing.Verbose() {
		t.Logf("journalctl -t hello -t python3 -o short:\n%s", run(t, "journalctl", "-q", "--no-pager", "-o", "short", "-t", "hello", "-t", "python3", "_SYSTEMD_UNIT="+in.Name))
	}
}
