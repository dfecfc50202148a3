module spindle.invalid/bench/go/sched_latency

go 1.19
