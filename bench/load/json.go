package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// The JSON form of a Result (bench/cmd/load -json), for a program that runs the load
// generator elsewhere (inside a container's network namespace) and reads its result back.
// Decoding what Result.MarshalJSON wrote gives back an equal Result: every count, the
// whole latency histogram and every failure sample. The form also carries derived values
// (failed_total, ok_per_second, latency quantiles) for readers that are not this package;
// decoding ignores them.

// ErrBadJSON is returned when a Result or Histogram in JSON is not one this package wrote.
var ErrBadJSON = errors.New("load: malformed JSON result")

// MarshalText gives the Kind's name, as String does.
func (k Kind) MarshalText() ([]byte, error) {
	if k < 0 || k >= numKinds {
		return nil, fmt.Errorf("load: kind %d: %w", int(k), ErrBadJSON)
	}
	return []byte(k.String()), nil
}

// UnmarshalText parses a Kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range Kinds {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("load: kind %q: %w", b, ErrBadJSON)
}

// MarshalText gives the Mode's name, as String does.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses a Mode's name, as ParseMode does.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// optionsJSON is Options in JSON; durations in nanoseconds.
type optionsJSON struct {
	Addr     string        `json:"addr"`
	Path     string        `json:"path"`
	Clients  int           `json:"clients"`
	Mode     Mode          `json:"mode"`
	Duration time.Duration `json:"duration_ns"`
	Requests int64         `json:"requests"`
	Timeout  time.Duration `json:"timeout_ns"`
}

type failureJSON struct {
	At     time.Time `json:"at"`
	Kind   Kind      `json:"kind"`
	Reused bool      `json:"reused"`
	Err    string    `json:"error"`
}

type latencyJSON struct {
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

type resultJSON struct {
	Options     optionsJSON    `json:"options"`
	Start       time.Time      `json:"start"`
	Elapsed     time.Duration  `json:"elapsed_ns"`
	Limit       string         `json:"limit"`
	Requests    int64          `json:"requests"`
	OK          int64          `json:"ok"`
	Failed      map[Kind]int64 `json:"failed"`
	FailedTotal int64          `json:"failed_total"`
	Reused      int64          `json:"failed_on_reused"`
	Conns       int64          `json:"connections"`
	Throughput  float64        `json:"ok_per_second"`
	Latency     latencyJSON    `json:"latency"`
	Histogram   *Histogram     `json:"latency_histogram"`
	Samples     []failureJSON  `json:"failures"`
}

// MarshalJSON encodes the whole result.
func (r *Result) MarshalJSON() ([]byte, error) {
	o := r.Options
	j := resultJSON{
		Options: optionsJSON{o.Addr, o.Path, o.Clients, o.Mode, o.Duration, o.Requests, o.Timeout},
		Start:   r.Start, Elapsed: r.Elapsed, Limit: r.Limit,
		Requests: r.Requests, OK: r.OK, Failed: map[Kind]int64{}, FailedTotal: r.FailedTotal(),
		Reused: r.Reused, Conns: r.Conns, Throughput: r.Throughput(),
		Latency:   latencyJSON{r.Latency.Quantile(0.5), r.Latency.Quantile(0.99), r.Latency.Quantile(0.999), r.Latency.Max()},
		Histogram: &r.Latency,
		Samples:   make([]failureJSON, 0, len(r.Samples)),
	}
	for _, k := range Kinds {
		j.Failed[k] = r.Failed[k]
	}
	for _, f := range r.Samples {
		j.Samples = append(j.Samples, failureJSON{f.At, f.Kind, f.Reused, f.Err})
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	j.Histogram = &Histogram{}
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	o := j.Options
	*r = Result{
		Options: Options{o.Addr, o.Path, o.Clients, o.Mode, o.Duration, o.Requests, o.Timeout},
		Start:   j.Start, Elapsed: j.Elapsed, Limit: j.Limit,
		Requests: j.Requests, OK: j.OK, Reused: j.Reused, Conns: j.Conns,
	}
	for k, n := range j.Failed {
		r.Failed[k] = n
	}
	if j.Histogram != nil {
		r.Latency = *j.Histogram
	}
	for _, f := range j.Samples {
		r.Samples = append(r.Samples, Failure{f.At, f.Kind, f.Reused, f.Err})
	}
	return nil
}

// histogramJSON is a Histogram in JSON: the non-empty buckets as [index, count] pairs,
// values in microseconds.
type histogramJSON struct {
	Count   uint64      `json:"count"`
	Min     int64       `json:"min_us"`
	Max     int64       `json:"max_us"`
	Sum     float64     `json:"sum_us"`
	Buckets [][2]uint64 `json:"buckets"`
}

// MarshalJSON encodes every bucket that holds a value.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histogramJSON{Count: h.n, Min: h.min, Max: h.max, Sum: h.sum, Buckets: [][2]uint64{}}
	for i, c := range h.counts {
		if c > 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON wrote, and refuses a histogram whose buckets do
// not add up to its count or fall outside [min, max].
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: histogram: %v", ErrBadJSON, err)
	}
	out := Histogram{n: j.Count, min: j.Min, max: j.Max, sum: j.Sum}
	var total uint64
	for _, bc := range j.Buckets {
		i, c := bc[0], bc[1]
		if i >= numBuckets || c == 0 || total+c < total {
			return fmt.Errorf("%w: histogram bucket %d with count %d", ErrBadJSON, i, c)
		}
		if out.counts == nil {
			out.counts = make([]uint64, numBuckets)
		}
		out.counts[i] += c
		total += c
	}
	switch {
	case total != j.Count:
		return fmt.Errorf("%w: histogram buckets hold %d values, count says %d", ErrBadJSON, total, j.Count)
	case j.Count > 0 && (j.Min < 0 || j.Max < j.Min || bucketOf(j.Min) != firstBucket(out.counts) || bucketOf(j.Max) != lastBucket(out.counts)):
		return fmt.Errorf("%w: histogram min %d, max %d disagree with its buckets", ErrBadJSON, j.Min, j.Max)
	case math.IsNaN(j.Sum) || math.IsInf(j.Sum, 0) || j.Sum < 0:
		return fmt.Errorf("%w: histogram sum %v", ErrBadJSON, j.Sum)
	}
	*h = out
	return nil
}

func firstBucket(counts []uint64) int {
	for i, c := range counts {
		if c > 0 {
			return i
		}
	}
	return -1
}

func lastBucket(counts []uint64) int {
	for i := len(counts) - 1; i >= 0; i-- {
		if counts[i] > 0 {
			return i
		}
	}
	return -1
}
