//go:build !unix

package shapes

import "time"

// cpuTime is unavailable here; the benchmarks then report wall-clock only.
func cpuTime() time.Duration { return 0 }
