// Package allocs counts the heap allocations a piece of code makes, leaving
// out those the Go runtime makes for its own caches. Tests of the
// zero-allocation training and decoding steps use it instead of
// testing.AllocsPerRun, which counts every allocation in the process. Two
// runtime allocations made CI fail that way, and whether they happen depends
// on the machine's timing, not on the code under test:
//   - while a goroutine sits in a long cgo call (an OpenBLAS product), sysmon
//     may hand its P to a new OS thread, whose m and g are heap objects;
//   - a goroutine that blocks (a worker pool's WaitGroup) takes a wait-queue
//     entry (sudog) from its P's cache, refilled from a central cache that
//     every collection empties; the refill allocates.
//
// Both are reused afterwards, so they are bounded, not per-step costs.
package allocs

import (
	"fmt"
	"runtime"
	"slices"
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
// (a worker pool), but not the runtime's own threads (sysmon starting an M),
// its background goroutines (GC workers, the sweeper) or its caches. A
// goroutine that f starts is counted: its creation is on f's stack.
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

// runtimeCaches are the runtime functions whose allocations fill a cache the
// runtime reuses (see the package comment); they may sit under user frames.
var runtimeCaches = []string{"runtime.allocm", "runtime.acquireSudog"}

// counted reports whether an allocation with this stack belongs to the code
// under test. A stack cut at 32 frames is counted: its root is unknown.
func counted(stack [32]uintptr) bool {
	pcs := trim(stack)
	if len(pcs) == len(stack) {
		return true
	}
	var funcs []string
	frames := runtime.CallersFrames(pcs)
	for {
		fr, more := frames.Next()
		funcs = append(funcs, fr.Function)
		if !more {
			return byCode(funcs)
		}
	}
}

// byCode reports whether a stack of these functions, leaf first, allocates
// for the code under test: it has a function outside the runtime and none of
// runtimeCaches. snapshot's own allocations (the first snapshot's map) are
// not the code's either.
func byCode(funcs []string) bool {
	outside := false
	for _, fn := range funcs {
		switch {
		case strings.HasSuffix(fn, "/internal/allocs.snapshot"), slices.Contains(runtimeCaches, fn):
			return false
		case fn != "" && !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/runtime/"):
			outside = true
		}
	}
	return outside
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
