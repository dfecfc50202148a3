// Command sched_latency is the Go reference for `spindle bench
// sched_latency`: the same load, flags and JSON lines, with goroutines on
// GOMAXPROCS=--workers Ps instead of coroutines on spindle's workers.
//
//	go run . --workers 2 [--hogs yield|no-yield] [--interactive 1000] [--work-us 10] [--secs 10]
//
// The load, for --secs seconds:
//
//   - hogs: 2 CPU-bound goroutines per P, each looping over 1 µs of hashing
//     and counting its loops. Go has no explicit yield point like spindle's
//     checkpoint(), and needs none: since Go 1.14 the runtime preempts a
//     goroutine that has run for 10 ms asynchronously (sysmon signals its
//     thread, and the goroutine is stopped at the next instruction that is
//     a safe point). So the loop is a plain loop under both --hogs values;
//     the flag is accepted and echoed so that the two programs take the
//     same command lines. (spindle cannot interrupt Rust code at an
//     arbitrary instruction soundly; its --hogs no-yield shows what its
//     monitor does instead.)
//   - interactive: --interactive goroutines, each looping: time.Sleep(1 ms),
//     record wake latency = now − the sleep's due time (the clock before
//     the call + 1 ms), then --work-us µs of hashing. Goroutine i of n first
//     sleeps i/n ms unmeasured, so the wake-ups are spread over the
//     millisecond.
//
// "µs of hashing" is calibrated once at start: rounds of a multiply–
// xorshift step (MurmurHash3's fmix64) per microsecond, the fastest of 5
// timed samples, as spindle-cli/src/bench/busy.rs does for its own hash.
// So a hog loop is a microsecond of CPU on both sides, and
// cpu_loops_per_sec is the hogs' CPU time in µs per second.
//
// The issue's defaults (1,000 interactive goroutines × 10 µs per ~1 ms)
// ask for about 9.9 CPU-seconds per second, more than a 2-core machine
// has; --interactive 100 with --workers 2 is a load that fits.
//
// Output: one JSON line per metric (p50_wake_us, p99_wake_us,
// cpu_loops_per_sec) with the fields workload, system ("go"), n
// (= interactive), workers, metric, value, policy ("go": Go has one
// scheduler), hogs, interactive, work_us, secs and forced_yields (null: Go
// exports no count of its asynchronous preemptions). Wake latencies are
// counted in a log-linear histogram (64 buckets per power of two), the
// same as spindle's, and quantiles are by nearest rank. Details go to
// stderr.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	hashK          = 0xff51afd7ed558ccd
	sampleRounds   = 1 << 21
	samples        = 5
	hogsPerWorker  = 2
	sleepFor       = time.Millisecond
	loopWork       = time.Microsecond
	subBits        = 7
	exact          = 1 << subBits
	half           = exact / 2
	defaultWorkers = 1
)

// sink keeps the hash results alive so the compiler cannot drop the loops.
var sink atomic.Uint64

// spin runs rounds dependent hash steps from x.
//
//go:noinline
func spin(rounds uint64, x uint64) uint64 {
	for i := uint64(0); i < rounds; i++ {
		x ^= x >> 33
		x *= hashK
	}
	return x
}

// calibrate returns hash rounds per microsecond: the fastest of a few
// samples (a preempted sample only ever looks slower).
func calibrate() float64 {
	best := time.Duration(math.MaxInt64)
	for i := 0; i < samples; i++ {
		start := time.Now()
		sink.Store(spin(sampleRounds, uint64(i)+1))
		if d := time.Since(start); d < best {
			best = d
		}
	}
	if best <= 0 {
		best = 1
	}
	return float64(sampleRounds) / (float64(best.Nanoseconds()) / 1e3)
}

// roundsFor is the rounds that take d of CPU (at least one).
func roundsFor(perUs float64, d time.Duration) uint64 {
	r := math.Round(float64(d.Nanoseconds()) / 1e3 * perUs)
	if r < 1 {
		return 1
	}
	return uint64(r)
}

// histogram counts nanosecond values: exact below 128, then 64 buckets per
// power of two (spindle-cli/src/bench/histogram.rs has the same layout).
type histogram struct {
	counts []uint64
	total  uint64
	max    uint64
}

func index(v uint64) int {
	if v < exact {
		return int(v)
	}
	msb := 63 - bits.LeadingZeros64(v)
	shift := msb - (subBits - 1)
	return shift*half + int(v>>uint(shift))
}

func bucket(i int) (low, width uint64) {
	if i < exact {
		return uint64(i), 1
	}
	shift := uint(i/half - 1)
	return uint64(i%half+half) << shift, 1 << shift
}

func (h *histogram) record(v uint64) {
	i := index(v)
	for len(h.counts) <= i {
		h.counts = append(h.counts, 0)
	}
	h.counts[i]++
	h.total++
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for len(h.counts) < len(o.counts) {
		h.counts = append(h.counts, 0)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile is the q-quantile by nearest rank, as the middle of its bucket
// and never above the maximum; NaN when empty.
func (h *histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucket(i)
			v := low + width/2
			if v > h.max {
				v = h.max
			}
			return float64(v)
		}
	}
	return float64(h.max)
}

// jsonNum rounds v as spindle's json_num does; NaN becomes null.
func jsonNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	scale := 1e6
	if math.Abs(v) >= 100 {
		scale = 10
	} else if math.Abs(v) >= 1 {
		scale = 1000
	}
	return strconv.FormatFloat(math.Round(v*scale)/scale, 'f', -1, 64)
}

func main() {
	workers := flag.Int("workers", defaultWorkers, "GOMAXPROCS")
	hogs := flag.String("hogs", "yield", "yield or no-yield (the same plain loop in Go: it preempts asynchronously)")
	interactive := flag.Int("interactive", 1000, "interactive goroutines")
	workUs := flag.Int("work-us", 10, "microseconds of work after each wake-up")
	secs := flag.Float64("secs", 10, "seconds the load runs")
	flag.Parse()
	if *workers < 1 || *interactive < 0 || *workUs < 0 || !(*secs > 0) ||
		(*hogs != "yield" && *hogs != "no-yield") {
		fmt.Fprintln(os.Stderr, "usage: sched_latency [--workers N>=1] [--hogs yield|no-yield] "+
			"[--interactive N] [--work-us US] [--secs S>0]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*workers)
	perUs := calibrate()
	fmt.Fprintf(os.Stderr, "sched_latency (%s): %.0f hash rounds per µs; %d hogs and %d interactive "+
		"goroutines asking for ≈%.1f CPU-seconds per second on %d Ps\n",
		runtime.Version(), perUs, *workers*hogsPerWorker, *interactive,
		float64(*interactive)*float64(*workUs)/1000, *workers)

	var stop atomic.Bool
	var wg sync.WaitGroup
	loopRounds := roundsFor(perUs, loopWork)
	workRounds := roundsFor(perUs, time.Duration(*workUs)*time.Microsecond)
	nHogs := *workers * hogsPerWorker
	loops := make([]uint64, nHogs)
	hists := make([]histogram, *interactive)

	start := time.Now()
	for i := 0; i < nHogs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			x, n := uint64(1), uint64(0)
			for !stop.Load() {
				x = spin(loopRounds, x)
				n++
			}
			loops[i] = n
			sink.Store(x)
		}(i)
	}
	for i := 0; i < *interactive; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := &hists[i]
			time.Sleep(time.Duration(int64(sleepFor) * int64(i) / int64(*interactive)))
			x := uint64(1)
			for !stop.Load() {
				due := time.Now().Add(sleepFor)
				time.Sleep(sleepFor)
				late := time.Since(due)
				if late < 0 {
					fmt.Fprintln(os.Stderr, "a sleep ended before it was due")
					os.Exit(3)
				}
				h.record(uint64(late.Nanoseconds()))
				x = spin(workRounds, x)
			}
			sink.Store(x)
		}(i)
	}
	time.Sleep(time.Duration(*secs*float64(time.Second)) - time.Since(start))
	stop.Store(true)
	elapsed := time.Since(start)
	wg.Wait()

	var wake histogram
	neverWoke := 0
	for i := range hists {
		if hists[i].total == 0 {
			neverWoke++
		}
		wake.merge(&hists[i])
	}
	var total uint64
	for _, n := range loops {
		total += n
	}
	us := func(q float64) float64 { return wake.quantile(q) / 1e3 }
	loopsPerSec := float64(total) / elapsed.Seconds()
	fmt.Fprintf(os.Stderr, "sched_latency go hogs=%s workers=%d interactive=%d: wake p50 %.0f µs, "+
		"p99 %.0f µs, p99.9 %.0f µs, max %.0f µs over %d wake-ups (%d goroutines never woke); "+
		"hogs %.0f loops/s\n",
		*hogs, *workers, *interactive, us(0.5), us(0.99), us(0.999), us(1.0), wake.total,
		neverWoke, loopsPerSec)
	for _, m := range []struct {
		name  string
		value float64
	}{
		{"p50_wake_us", us(0.5)},
		{"p99_wake_us", us(0.99)},
		{"cpu_loops_per_sec", loopsPerSec},
	} {
		var b strings.Builder
		fmt.Fprintf(&b, `{"workload":"sched_latency","system":"go","n":%d,"workers":%d,`+
			`"metric":%q,"value":%s,"policy":"go","hogs":%q,"interactive":%d,"work_us":%d,`+
			`"secs":%s,"forced_yields":null}`,
			*interactive, *workers, m.name, jsonNum(m.value), *hogs, *interactive, *workUs,
			jsonNum(*secs))
		fmt.Println(b.String())
	}
}
