//go:build linux

package experiments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A disk that fills up while a checkpoint is written: training stops with
// an error naming the checkpoint and ENOSPC, the previous complete
// checkpoint is intact and in use, no temporary file is left, and once
// there is room again the resumed run ends with the uninterrupted run's
// bytes. The disk is a tmpfs sized to hold two checkpoints but not a
// third (train.keep_checkpoints is 2 and old ones go only after the new
// one is committed), so the step-12 checkpoint is the one that fails.
func TestFullDisk(t *testing.T) {
	want := referenceFinal(t)
	ref := filepath.Join(testRoot, "reference", checkpointsDir)
	var ckpt int64
	for _, name := range []string{weightsName(60), optimName(60), stateFile(60)} {
		fi, err := os.Stat(filepath.Join(ref, name))
		if err != nil {
			t.Fatal(err)
		}
		ckpt += fi.Size()
	}
	mnt := t.TempDir()
	size := 2*ckpt + ckpt/2 + 64<<10 // two checkpoints, tokenizer.json, config and metrics; not a third checkpoint
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a %d-byte tmpfs to fill (%v): the test needs root, which CI has", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	dir := filepath.Join(mnt, "run")
	err := trainInProcess(configFile(t), dir)
	if err == nil {
		t.Fatalf("training on a %d-byte disk succeeded: checkpoints are %d bytes each, so it should have filled", size, ckpt)
	}
	t.Log(err)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "checkpoint step 12") {
		t.Fatalf("error %q: want ENOSPC while writing checkpoint step 12", err)
	}
	assertUnfinished(t, dir)
	hash := runHash(readFile(t, filepath.Join(dir, ResolvedConfigFile)), readFile(t, filepath.Join(dir, TokenizerFile)))
	st, err := latestCheckpoint(dir, hash, quietLog())
	if err != nil || st == nil || st.Step != 8 {
		t.Fatalf("after the disk filled during checkpoint 12, the newest complete checkpoint is %+v (%v), want step 8 intact", st, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, checkpointsDir, ".*")); len(tmp) > 0 {
		t.Errorf("temporary files left on the full disk: %v", tmp)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	if err := resumeInProcess(dir); err != nil {
		t.Fatalf("resume once there is room: %v", err)
	}
	sameBytes(t, "final.safetensors after the disk filled and was grown", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)
}
