//go:build unix

package mixer

import (
	"syscall"
	"time"
)

// cpuTime is the process's user + system CPU time, so a benchmark on a
// shared machine can report cost apart from what other processes took.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
