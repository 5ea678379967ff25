package control

import (
	"runtime"
	"runtime/metrics"
)

// Process is what the mount's own process holds, for watching its memory
// over a long run: the soak test compares it before and after, and a person
// can see whether a mount that has uploaded much still holds much.
type Process struct {
	Goroutines int `json:"goroutines"`
	// HeapLive is the Go heap's live objects as of the last garbage
	// collection; HeapHeld is what the heap holds from the system
	// (live, free and not yet returned); Stacks is the goroutines' stacks.
	HeapLive int64 `json:"heap_live"`
	HeapHeld int64 `json:"heap_held"`
	Stacks   int64 `json:"stacks"`
	// GoTotal is all the memory the Go runtime has mapped and not returned;
	// the rest of the resident set is files mapped by the cache's store.
	GoTotal int64  `json:"go_total"`
	GCs     uint64 `json:"gcs"` // completed garbage collections since start
}

// processMetrics are the runtime/metrics samples ReadProcess reads.
var processMetrics = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/cycles/total:gc-cycles",
}

// ReadProcess samples the calling process. It is cheap (no stop of the
// world), so every status carries it.
func ReadProcess() Process {
	s := make([]metrics.Sample, len(processMetrics))
	for i, n := range processMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) int64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(s[i].Value.Uint64())
	}
	return Process{
		Goroutines: runtime.NumGoroutine(),
		HeapLive:   v(0),
		HeapHeld:   v(1) + v(2) + v(3),
		Stacks:     v(4),
		GoTotal:    v(5) - v(6),
		GCs:        uint64(v(7)),
	}
}
