package load

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketsTile(t *testing.T) {
	// Every bucket's upper edge is in that bucket and the next value is in the
	// next bucket: the buckets cover the values without gap or overlap.
	for i := 0; i < numBuckets-1; i++ {
		high := bucketHigh(i)
		if got := bucketOf(high); got != i {
			t.Fatalf("bucketOf(bucketHigh(%d)=%d) = %d", i, high, got)
		}
		if got := bucketOf(high + 1); got != i+1 {
			t.Fatalf("bucketOf(%d) = %d, want %d", high+1, got, i+1)
		}
	}
}

func TestQuantile(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{3 * ms}, 0.99, 3 * ms},
		{"median of exact values", []time.Duration{10e3, 20e3, 30e3, 40e3, 50e3}, 0.5, 30e3},
		{"q=1 is the max", []time.Duration{10e3, 20e3, 7 * time.Second}, 1, 7 * time.Second},
		{"q=0 is the min bucket", []time.Duration{100e3, 200e3}, 0, 100e3},
		{"sub-microsecond is zero", []time.Duration{500}, 0.5, 0},
		{"negative is zero", []time.Duration{-ms}, 0.5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			if got := h.Quantile(tc.q); got != tc.want {
				t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestQuantilePrecision(t *testing.T) {
	// Against sorted samples: the histogram's answer is never below the true
	// quantile and at most 1/128 above it.
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var max time.Duration
	counts := make(map[int64]int)
	const n = 100000
	for range n {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		h.Record(d)
		counts[d.Microseconds()]++
		if d > max {
			max = d
		}
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := exactQuantile(counts, n, q)
		got := h.Quantile(q).Microseconds()
		if got < want || float64(got-want) > float64(want)/subBuckets+1 {
			t.Errorf("Quantile(%v) = %dµs, exact %dµs", q, got, want)
		}
	}
	if got, want := h.Max(), max.Truncate(time.Microsecond); got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
	if h.Count() != n {
		t.Errorf("Count = %d, want %d", h.Count(), n)
	}
}

func exactQuantile(counts map[int64]int, n int, q float64) int64 {
	rank := int(q*float64(n) + 0.999999)
	seen := 0
	for v := int64(0); ; v++ {
		seen += counts[v]
		if seen >= rank {
			return v
		}
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * 37 * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var got Histogram
	got.Merge(&a)
	got.Merge(&b)
	got.Merge(nil)
	got.Merge(&Histogram{})
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, got.Quantile(q), all.Quantile(q))
		}
	}
	if got.Min() != all.Min() || got.Max() != all.Max() || got.Count() != all.Count() || got.Mean() != all.Mean() {
		t.Errorf("merged min/max/count/mean = %v/%v/%d/%v, want %v/%v/%d/%v",
			got.Min(), got.Max(), got.Count(), got.Mean(), all.Min(), all.Max(), all.Count(), all.Mean())
	}
}

func FuzzBucket(f *testing.F) {
	f.Add(int64(0))          // the first bucket
	f.Add(int64(255))        // the last exact value
	f.Add(int64(256))        // the first shared bucket
	f.Add(int64(1) << 40)    // a large power of two
	f.Add(int64(1)<<62 + 12) // near the top of the range
	f.Fuzz(func(t *testing.T, v int64) {
		if v < 0 {
			v = -v
		}
		if v < 0 { // MinInt64
			return
		}
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		high := bucketHigh(i)
		if high < v {
			t.Fatalf("bucketHigh(bucketOf(%d)) = %d, below the value", v, high)
		}
		if float64(high-v) > float64(v)/subBuckets {
			t.Fatalf("bucket of %d reaches %d: wider than 1/%d", v, high, subBuckets)
		}
	})
}
