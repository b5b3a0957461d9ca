package config

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// largeConfig returns a valid configuration of about 30·n bytes with the
// shapes that once made Parse quadratic: an inline env table of n keys, a
// command of n/10 arguments and n/10 [[listen]] tables.
func largeConfig(n int) []byte {
	b := make([]byte, 0, 40*n)
	for i := range n / 10 {
		b = fmt.Appendf(b, "[[listen]]\nname = \"l%d\"\naddress = \"127.0.0.1:%d\"\n", i, 1024+i%60000)
	}
	b = append(b, "[worker]\ncommand = [\"/bin/app\""...)
	for i := range n / 10 {
		b = fmt.Appendf(b, ", \"--flag%d\"", i)
	}
	b = append(b, "]\nenv = { "...)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "K%d = \"value%d\"", i, i)
	}
	return append(b, " }\n"...)
}

// BenchmarkParseLarge parses largeConfig of 1k, 10k and 100k keys: time and
// memory per key should stay flat from one size to the next.
func BenchmarkParseLarge(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		data := largeConfig(n)
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse("/etc/baton/large.toml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParseLargeIsLinear checks, by counting rather than timing, that
// Parse's cost grows in proportion to the file: twice the keys cost at most
// 2.5 times the allocations and the bytes, and at most 60 bytes are
// allocated per byte of input (about 40 now; 80 for the parser of issue 8,
// which had go-toml decode the whole file first). The quadratic time of
// issue 8 allocated nothing (go-toml compared each key with every key
// before it): BenchmarkParseLarge shows time.
func TestParseLargeIsLinear(t *testing.T) {
	const n = 2_000
	small, large := largeConfig(n), largeConfig(2*n)
	allocsSmall, bytesSmall := parseCost(t, small)
	allocsLarge, bytesLarge := parseCost(t, large)
	t.Logf("%d keys, %d bytes: %.0f allocations, %d bytes allocated", n, len(small), allocsSmall, bytesSmall)
	t.Logf("%d keys, %d bytes: %.0f allocations, %d bytes allocated", 2*n, len(large), allocsLarge, bytesLarge)
	if allocsLarge > 2.5*allocsSmall {
		t.Errorf("twice the keys: %.0f allocations, more than 2.5 × %.0f", allocsLarge, allocsSmall)
	}
	if float64(bytesLarge) > 2.5*float64(bytesSmall) {
		t.Errorf("twice the keys: %d bytes allocated, more than 2.5 × %d", bytesLarge, bytesSmall)
	}
	const perByte = 60
	if bytesLarge > perByte*uint64(len(large)) {
		t.Errorf("%d bytes allocated to parse %d bytes, more than %d per byte", bytesLarge, len(large), perByte)
	}
}

// parseCost returns the allocations and the bytes allocated by one Parse of
// data.
func parseCost(t *testing.T, data []byte) (allocs float64, bytes uint64) {
	t.Helper()
	parse := func() {
		if _, err := Parse("/etc/baton/large.toml", data); err != nil {
			t.Fatal(err)
		}
	}
	allocs = testing.AllocsPerRun(3, parse)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	parse()
	runtime.ReadMemStats(&after)
	return allocs, after.TotalAlloc - before.TotalAlloc
}
