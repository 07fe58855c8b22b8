//go:build !unix

package images

import "time"

// cpuTime is unavailable here; the benchmarks then report wall-clock rates only.
func cpuTime() time.Duration { return 0 }
