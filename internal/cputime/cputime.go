// Package cputime reads the CPU time this process has used. Benchmarks on
// a shared machine divide work by it rather than by wall-clock time, which
// also counts waiting for a core.
package cputime

import "time"

// Process is the user + system CPU time of every thread of this process so
// far; 0 where the platform cannot say (callers then report wall-clock
// rates only).
func Process() time.Duration { return process() }
