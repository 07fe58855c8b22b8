//go:build !unix

package mixer

import "time"

// cpuTime is unavailable here; the benchmarks then report wall-clock only.
func cpuTime() time.Duration { return 0 }
