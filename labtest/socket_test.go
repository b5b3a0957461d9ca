//go:build lab && linux

package labtest

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// (a) Socket activation from two socket units: baton takes both fds by name and its
// workers serve each one on the right address.
func TestSocketActivationTwoUnits(t *testing.T) {
	in := newInstance(t, roleSocket, "a", 18101)
	admin := "/run/labtest-admin-a.sock"
	adminUnit := "labtest-admin-a.socket"
	writeFile(t, "/etc/systemd/system/"+adminUnit,
		"[Socket]\nListenStream="+admin+"\nFileDescriptorName=admin\nService="+in.Name+"\n")
	t.Cleanup(func() { lab.exec("", "systemctl", "stop", adminUnit) })
	// The service takes fds from both socket units.
	in.dropIn(in.Name, "[Unit]\nRequires="+adminUnit+"\nAfter="+adminUnit+"\n\n[Service]\nSockets="+in.Socket+" "+adminUnit+"\n")
	in.sockets = append(in.sockets, adminUnit)
	in.conf.Command = []string{filepath.Join(lab.Bin, "hello"), "-names", in.FDName + ",admin", "-drain", "300ms"}
	c0 := cursor(t)
	in.start()
	master := in.mainPID()
	workers := in.waitWorkers(c0, master, 2)

	want := map[string]string{in.FDName: in.HTTP, "admin": admin}
	checks := map[string]func(entry) bool{}
	for name, addr := range want {
		// baton got each fd by its name, from socket activation.
		checks[fmt.Sprintf("baton: listening name=%s address=%s source=activated", name, addr)] = func(e entry) bool {
			return e.Msg() == "listening" && e.AttrInt("pid") == master && e.Attr("name") == name && e.Attr("address") == addr && e.Attr("source") == "activated"
		}
		// Each worker serves each name on its own address: hello logs the address of
		// the fd it found under each name.
		for _, w := range workers {
			checks[fmt.Sprintf("worker %d: serving name=%s addr=%s", w, name, addr)] = func(e entry) bool {
				return e.Msg() == "serving" && e.AttrInt("pid") == w && e.Attr("name") == name && e.Attr("addr") == addr
			}
		}
	}
	waitLines(t, 10*time.Second, in.Name, c0, checks)
	for _, addr := range want {
		r := mustServe(t, addr, 8)
		for pid := range r.servedBy() {
			if !slices.Contains(workers, pid) {
				t.Errorf("%s answered by %d, not one of baton's workers %v", addr, pid, workers)
			}
		}
	}
}
