package images

import (
	"hash/crc32"
	"runtime"
)

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// runtimeMem snapshots the cumulative bytes the Go heap has handed out.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.total = s.TotalAlloc
}
