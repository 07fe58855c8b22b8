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

// TestByCode: a stack wholly inside the runtime (sysmon starting a thread)
// is not the code's, one that reaches user code is, unless it passes through
// a runtime cache's refill.
func TestByCode(t *testing.T) {
	const user = "github.com/mmablate/mmablate/models/engine.(*Pool).For"
	for _, tc := range []struct {
		name  string
		stack []string
		want  bool
	}{
		{"runtime only", []string{"runtime.malg", "runtime.allocm", "runtime.newm", "runtime.sysmon", "runtime.mstart"}, false},
		{"background goroutine", []string{"runtime.mallocgc", "internal/runtime/maps.newarray", "runtime.bgsweep", "runtime.goexit"}, false},
		{"user code", []string{"runtime.mallocgc", "runtime.makeslice", user, "testing.tRunner", "runtime.goexit"}, true},
		{"user code, goroutine start", []string{"runtime.malg", "runtime.newproc1", "runtime.newproc", user}, true},
		{"user code, sudog cache refill", []string{"runtime.newobject", "runtime.acquireSudog", "runtime.semacquire1", "sync.(*WaitGroup).Wait", user}, false},
		{"user code, new thread", []string{"runtime.malg", "runtime.allocm", "runtime.newm", "runtime.startm", "runtime.wakep", "runtime.ready", user}, false},
		{"snapshot", []string{"runtime.makemap", "github.com/mmablate/mmablate/internal/allocs.snapshot", "github.com/mmablate/mmablate/internal/allocs.PerRun"}, false},
	} {
		if got := byCode(tc.stack); got != tc.want {
			t.Errorf("%s: byCode = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTruncatedStackCounted: a stack cut at 32 frames counts, whatever its
// frames: its root is unknown.
func TestTruncatedStackCounted(t *testing.T) {
	var stack [32]uintptr
	for i := range stack {
		stack[i] = reflect.ValueOf(runtime.GC).Pointer() + 1 // a return address lies inside its function
	}
	if !counted(stack) {
		t.Error("a truncated runtime-only stack was not counted")
	}
	stack[31] = 0
	if counted(stack) {
		t.Error("an untruncated runtime-only stack was counted")
	}
}
