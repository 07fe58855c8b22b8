//go:build !unix

package tokenizer

import "time"

// cpuTime is unavailable here; the benchmarks then report wall-clock only.
func cpuTime() time.Duration { return 0 }
