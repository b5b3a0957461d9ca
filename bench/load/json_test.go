package load

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func histogramOf(ds ...time.Duration) Histogram {
	var h Histogram
	for _, d := range ds {
		h.Record(d)
	}
	return h
}

func TestResultJSONRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 2, 7, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		r    Result
	}{
		{"empty", Result{Limit: "stopped"}},
		{"counts, histogram and samples", Result{
			Options:  Options{Addr: "127.0.0.1:8080", Path: "/", Clients: 64, Mode: NewConn, Duration: time.Hour, Requests: 5, Timeout: 5 * time.Second},
			Start:    at,
			Elapsed:  1500 * time.Millisecond,
			Requests: 1000, OK: 997, Reused: 2, Conns: 1000, Limit: "duration",
			Failed:  [numKinds]int64{Reset: 2, Timeout: 1},
			Latency: histogramOf(300*time.Microsecond, 2*time.Millisecond, 2*time.Millisecond, 7*time.Second),
			Samples: []Failure{
				{At: at, Kind: Reset, Reused: true, Err: "read response: connection reset by peer"},
				{At: at.Add(time.Millisecond), Kind: Timeout, Err: "i/o timeout"},
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(&tc.r)
			if err != nil {
				t.Fatal(err)
			}
			var got Result
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if got.Latency.Quantile(0.5) != tc.r.Latency.Quantile(0.5) || got.Latency.Max() != tc.r.Latency.Max() || got.Latency.Count() != tc.r.Latency.Count() {
				t.Errorf("latency p50/max/count %v/%v/%d, want %v/%v/%d", got.Latency.Quantile(0.5), got.Latency.Max(), got.Latency.Count(),
					tc.r.Latency.Quantile(0.5), tc.r.Latency.Max(), tc.r.Latency.Count())
			}
			// The histograms compared bucket by bucket through their JSON; the rest directly.
			gh, _ := json.Marshal(&got.Latency)
			wh, _ := json.Marshal(&tc.r.Latency)
			if string(gh) != string(wh) {
				t.Errorf("histogram %s, want %s", gh, wh)
			}
			got.Latency, tc.r.Latency = Histogram{}, Histogram{}
			if !reflect.DeepEqual(got, tc.r) {
				t.Errorf("got %+v\nwant %+v", got, tc.r)
			}
		})
	}
}

func TestResultJSONFields(t *testing.T) {
	// The derived fields a reader outside this package relies on.
	r := Result{Requests: 10, OK: 8, Elapsed: time.Second, Failed: [numKinds]int64{EOF: 2}, Latency: histogramOf(time.Millisecond)}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"failed_total": 2.0, "ok_per_second": 8.0, "requests": 10.0}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if f, _ := m["failed"].(map[string]any); f["EOF"] != 2.0 || f["refused"] != 0.0 {
		t.Errorf("failed = %v, want every kind by name, EOF 2", m["failed"])
	}
}

func TestHistogramJSONRefused(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not an object", `[1]`},
		{"bucket out of range", `{"count":1,"min_us":1,"max_us":1,"buckets":[[99999,1]]}`},
		{"buckets do not add up", `{"count":2,"min_us":1,"max_us":1,"buckets":[[1,1]]}`},
		{"min outside the buckets", `{"count":1,"min_us":5,"max_us":5,"buckets":[[1,1]]}`},
		{"empty bucket listed", `{"count":0,"buckets":[[1,0]]}`},
		{"negative sum", `{"count":1,"min_us":1,"max_us":1,"sum_us":-1,"buckets":[[1,1]]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			if err := json.Unmarshal([]byte(tc.in), &h); !errors.Is(err, ErrBadJSON) {
				t.Errorf("err = %v, want ErrBadJSON", err)
			}
		})
	}
}

func TestKindText(t *testing.T) {
	for _, k := range Kinds {
		t.Run(k.String(), func(t *testing.T) {
			b, err := k.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			var got Kind
			if err := got.UnmarshalText(b); err != nil || got != k {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, k)
			}
		})
	}
	var k Kind
	if err := k.UnmarshalText([]byte("lost")); !errors.Is(err, ErrBadJSON) {
		t.Errorf("UnmarshalText(lost) err = %v, want ErrBadJSON", err)
	}
}

// FuzzHistogramJSON: whatever a histogram decodes from, it encodes to JSON that decodes
// to the same histogram (the same JSON again).
func FuzzHistogramJSON(f *testing.F) {
	f.Add(`{"count":0,"buckets":[]}`)                                                   // empty
	f.Add(`{"count":2,"min_us":3,"max_us":300,"sum_us":303,"buckets":[[3,1],[278,1]]}`) // two buckets, one exact, one shared
	f.Add(`{"count":1,"min_us":9000000000,"max_us":9000000000,"buckets":[[3462,1]]}`)   // a large value (2.5 hours)
	f.Add(`{"count":1,"min_us":1,"max_us":1,"buckets":[[1,1],[1,0]]}`)                  // an empty bucket listed
	f.Fuzz(func(t *testing.T, in string) {
		var h Histogram
		if err := json.Unmarshal([]byte(in), &h); err != nil {
			return
		}
		b1, err := json.Marshal(&h)
		if err != nil {
			t.Fatalf("encode what decoded: %v", err)
		}
		var h2 Histogram
		if err := json.Unmarshal(b1, &h2); err != nil {
			t.Fatalf("decode %s: %v", b1, err)
		}
		b2, _ := json.Marshal(&h2)
		if string(b1) != string(b2) {
			t.Fatalf("not stable:\n%s\n%s", b1, b2)
		}
		if h2.Count() > 0 && (h2.Quantile(1) != h2.Max() || h2.Quantile(0) < 0) {
			t.Fatalf("quantiles out of range: q1 %v max %v", h2.Quantile(1), h2.Max())
		}
	})
}

func TestHistogramJSONSeedsDecode(t *testing.T) {
	// The fuzz seeds that stand for valid histograms are valid.
	for _, in := range []string{
		`{"count":2,"min_us":3,"max_us":300,"sum_us":303,"buckets":[[3,1],[278,1]]}`,
		`{"count":1,"min_us":9000000000,"max_us":9000000000,"buckets":[[3462,1]]}`,
	} {
		var h Histogram
		if err := json.Unmarshal([]byte(in), &h); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}
