// Package proc answers the two questions sweep directories ask of a RUNNING
// record: which machine is this, and is that process alive. The executors
// and the reports share it.
package proc

import (
	"errors"
	"os"
	"syscall"
)

// Hostname is this machine's name as RUNNING records write it ("" if
// unknown).
func Hostname() string {
	h, _ := os.Hostname()
	return h
}

// Alive reports whether pid names a live process on this host. A process
// of another user answers EPERM and is alive too.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
