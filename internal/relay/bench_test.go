//go:build linux

package relay

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv("RELAY_BENCH_WRITER"); spec != "" {
		writerMain(spec)
		return
	}
	os.Exit(m.Run())
}

// writerMain is the benchmark's child: "<lines> <size>" writes that many lines of size
// bytes to its stdout, one write(2) each, as a program that logs unbuffered does.
func writerMain(spec string) {
	f := strings.Fields(spec)
	n, _ := strconv.Atoi(f[0])
	size, _ := strconv.Atoi(f[1])
	line := append(bytes.Repeat([]byte("x"), size-1), '\n')
	for range n {
		if _, err := unix.Write(1, line); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// BenchmarkRelay measures what relaying costs the relaying process: a child writes b.N
// lines as fast as it can into its relayed stdout; the sink is a pipe that cat(1) drains
// into /dev/null ("sink"), or a pipe whose reader is gone ("gone"). Reported: the CPU time
// (user+system) of this process per line and per MB, the child's own CPU per line for
// comparison, and the throughput. Run with a fixed count, for example
//
//	go test -run '^$' -bench Relay -benchtime 2000000x ./internal/relay
func BenchmarkRelay(b *testing.B) {
	for _, sink := range []string{"sink", "gone"} {
		for _, size := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/line=%d", sink, size), func(b *testing.B) {
				benchRelay(b, sink == "gone", size)
			})
		}
	}
}

func benchRelay(b *testing.B, gone bool, size int) {
	sinkR, sinkW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	var cat *exec.Cmd
	if !gone {
		cat = exec.Command("cat")
		cat.Stdin = sinkR
		if err := cat.Start(); err != nil {
			b.Fatal(err)
		}
	}
	sinkR.Close()
	r, err := New(sinkW, sinkW)
	if err != nil {
		b.Fatal(err)
	}
	sinkW.Close()
	o, err := r.Open()
	if err != nil {
		b.Fatal(err)
	}
	w := exec.Command(os.Args[0])
	w.Env = append(os.Environ(), fmt.Sprintf("RELAY_BENCH_WRITER=%d %d", b.N, size))
	w.Stdout, w.Stderr = o.Stdout, os.Stderr

	before := selfCPU(b)
	start := time.Now()
	b.ResetTimer()
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	o.Close()
	if err := w.Wait(); err != nil {
		b.Fatal(err)
	}
	if err := r.Close(time.Minute); err != nil { // returns once every line is relayed
		b.Fatal(err)
	}
	b.StopTimer()
	wall := time.Since(start)
	cpu := selfCPU(b) - before
	if cat != nil {
		cat.Wait()
	}
	child := w.ProcessState.UserTime() + w.ProcessState.SystemTime()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "relay-cpu-ns/line")
	b.ReportMetric(cpu.Seconds()*1e3/(float64(b.N*size)/1e6), "relay-cpu-ms/MB")
	b.ReportMetric(float64(child.Nanoseconds())/float64(b.N), "writer-cpu-ns/line")
	b.ReportMetric(float64(b.N*size)/1e6/wall.Seconds(), "MB/s")
}

func selfCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
