// Package allocs counts the heap allocations a piece of code makes, leaving
// out those the Go runtime makes for itself. Tests of the zero-allocation
// training and decoding steps use it instead of testing.AllocsPerRun, which
// counts every allocation in the process: while a goroutine sits in a long
// cgo call (an OpenBLAS product), sysmon may hand its P to a new OS thread,
// and the runtime allocates that thread's bookkeeping on the heap. How often
// that happens depends on the machine's timing, not on the code under test.
package allocs

import (
	"fmt"
	"runtime"
	"strings"
)

// Count is what PerRun found.
type Count struct {
	PerRun float64 // allocations per run of f made by stacks outside the runtime
	Site   string  // the stack of the most frequent such allocation; "" when none
}

// PerRun runs f once to warm up, then runs times times while every heap
// allocation is sampled, and counts the allocations whose stack has a frame
// outside package runtime: those of f itself and of any goroutine it wakes
// (a worker pool), but not the runtime's own threads (sysmon starting an M)
// or background goroutines (GC workers, the sweeper). A goroutine that f
// starts is counted: its creation is on f's stack.
func PerRun(runs int, f func()) Count {
	f()
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1 // the runtime re-reads it at the next allocation
	before := snapshot()
	for range runs {
		f()
	}
	after := snapshot()

	var total, worst int64
	var site []uintptr
	for stack, n := range after {
		n -= before[stack]
		if n <= 0 || !counted(stack) {
			continue
		}
		total += n
		if n > worst {
			worst, site = n, trim(stack)
		}
	}
	c := Count{PerRun: float64(total) / float64(runs)}
	if site != nil {
		c.Site = describe(site)
	}
	return c
}

// snapshot is the cumulative allocation count of every sampled stack. Two
// collections first: the runtime publishes a cycle's allocations to the
// profile only after the collection that follows them has swept.
func snapshot() map[[32]uintptr]int64 {
	runtime.GC()
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs := make([]runtime.MemProfileRecord, n+64)
		got, ok := runtime.MemProfile(recs, true)
		if !ok {
			n = got
			continue
		}
		counts := make(map[[32]uintptr]int64, got)
		for _, r := range recs[:got] {
			counts[r.Stack0] += r.AllocObjects
		}
		return counts
	}
}

// counted reports whether an allocation with this stack belongs to the code
// under test. A stack cut at 32 frames is counted: its root is unknown.
// snapshot's own allocations (the first snapshot's map) are not.
func counted(stack [32]uintptr) bool {
	pcs := trim(stack)
	if len(pcs) == len(stack) {
		return true
	}
	outside := false
	frames := runtime.CallersFrames(pcs)
	for {
		fr, more := frames.Next()
		switch {
		case strings.HasSuffix(fr.Function, "/internal/allocs.snapshot"):
			return false
		case fr.Function != "" && !strings.HasPrefix(fr.Function, "runtime.") &&
			!strings.HasPrefix(fr.Function, "internal/runtime/"):
			outside = true
		}
		if !more {
			return outside
		}
	}
}

func trim(stack [32]uintptr) []uintptr {
	for i, pc := range stack {
		if pc == 0 {
			return stack[:i]
		}
	}
	return stack[:]
}

func describe(pcs []uintptr) string {
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		fr, more := frames.Next()
		fmt.Fprintf(&b, "\n\t%s (%s:%d)", fr.Function, fr.File, fr.Line)
		if !more {
			return b.String()
		}
	}
}
