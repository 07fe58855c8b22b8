//go:build !unix

package images

import "time"

// cpuTime is unavailable here; benchDecode then reports wall-clock only.
func cpuTime() time.Duration { return 0 }
