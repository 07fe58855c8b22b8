package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair, so that a test can give a command
// a real terminal as stderr and read what it drew.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("skipped: no pseudo-terminal to draw the bar on: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Skipf("skipped: unlock the pseudo-terminal: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Skipf("skipped: pseudo-terminal number: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("skipped: open the pseudo-terminal's other end: %v", err)
	}
	return m, s
}

// TestDataSynthProgressOnTerminal runs the command with a terminal as
// stderr: it draws the bar (ending at 100% on the last split's last row),
// erases it, and prints the summary on stdout.
func TestDataSynthProgressOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	drawn := make(chan []byte)
	go func() { // read while the command writes, so it never blocks on a full terminal buffer
		var b bytes.Buffer
		_, err := io.Copy(&b, master)
		if err != nil && !errors.Is(err, syscall.EIO) { // EIO: the other end closed
			b.WriteString("\nread error: " + err.Error())
		}
		drawn <- b.Bytes()
	}()
	var stdout bytes.Buffer
	root := newRootCmd()
	root.SetOut(&stdout)
	root.SetErr(slave)
	out := filepath.Join(t.TempDir(), "shapes")
	root.SetArgs([]string{"data", "synth", "--out", out, "--scenes", "6", "--docs", "2", "--texts", "2",
		"--eval-caption", "2", "--eval-vqa", "2", "--support", "2", "--eval-text", "2", "--size", "16", "--no-book"})
	err := root.Execute()
	slave.Close()
	bar := string(<-drawn)
	if err != nil {
		t.Fatalf("%v\n%s", err, bar)
	}
	last := "\rsynth [####################] 100.0%  20/20 rows  eval/text 2/2  "
	if !strings.Contains(bar, last) || !strings.HasSuffix(bar, "\r\033[K") {
		t.Fatalf("terminal got %q, want a bar ending with %q and then erased", bar, last)
	}
	if !strings.HasPrefix(stdout.String(), "wrote 20 rows to "+out) || strings.ContainsAny(stdout.String(), "\r\033") {
		t.Fatalf("stdout %q", stdout.String())
	}
}
