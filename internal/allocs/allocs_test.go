package allocs

import (
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var sink []byte

//go:noinline
func allocate(n int) {
	for range n {
		sink = make([]byte, 64)
	}
}

// TestPerRun: allocations made by f, or by a goroutine f hands work to, are
// counted exactly and the most frequent one's stack names its function;
// code that allocates nothing counts zero.
func TestPerRun(t *testing.T) {
	work := make(chan int)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a pool worker: its stack does not include f
		defer wg.Done()
		for n := range work {
			allocate(n)
			done <- struct{}{}
		}
	}()
	defer func() { close(work); wg.Wait() }()

	for _, tc := range []struct {
		name string
		f    func()
		want float64
	}{
		{"nothing", func() {}, 0},
		{"own stack", func() { allocate(3) }, 3},
		{"worker", func() { work <- 2; <-done }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := PerRun(5, tc.f)
			if c.PerRun != tc.want {
				t.Fatalf("PerRun = %v, want %v (site:%s)", c.PerRun, tc.want, c.Site)
			}
			if (c.Site != "") != (tc.want > 0) {
				t.Fatalf("Site %q with %v allocations", c.Site, c.PerRun)
			}
			if tc.want > 0 && !strings.Contains(c.Site, "allocs.allocate") {
				t.Errorf("Site does not name allocate:%s", c.Site)
			}
		})
	}
}

// TestRuntimeOwnStacks: a stack wholly inside the runtime (sysmon starting a
// thread) is not counted, one that reaches user code is, and a stack cut at
// 32 frames is counted because its root is unknown.
func TestRuntimeOwnStacks(t *testing.T) {
	// A return address lies inside its function: entry+1.
	gc, gosched := pcOf(runtime.GC), pcOf(runtime.Gosched)
	runtimeOnly := [32]uintptr{gc, gosched}
	user := [32]uintptr{gc, pcOf(allocate)}
	var full [32]uintptr
	for i := range full {
		full[i] = gc
	}
	if counted(runtimeOnly) {
		t.Error("a runtime-only stack was counted")
	}
	if !counted(user) {
		t.Error("a stack reaching allocs.allocate was not counted")
	}
	if !counted(full) {
		t.Error("a truncated stack was not counted")
	}
}

func pcOf(f any) uintptr { return reflect.ValueOf(f).Pointer() + 1 }
