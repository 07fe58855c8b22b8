//go:build unix

package cputime

import (
	"testing"
	"time"
)

// TestProcessCountsWork: spinning advances Process (within a generous wall
// deadline: the machine may be busy), and sleeping barely does.
func TestProcessCountsWork(t *testing.T) {
	start := Process()
	if start <= 0 {
		t.Fatalf("Process() = %v at start, want the CPU time already used", start)
	}
	deadline := time.Now().Add(30 * time.Second)
	x := 0
	for Process()-start < 20*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("30 s of spinning advanced Process by only %v (x=%d)", Process()-start, x)
		}
		x++
	}
	before := Process()
	time.Sleep(100 * time.Millisecond)
	if idle := Process() - before; idle > 50*time.Millisecond {
		t.Errorf("100 ms of sleep advanced Process by %v", idle)
	}
}
