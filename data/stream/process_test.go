package stream

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
)

// The child half of TestResumeInNewProcess runs when this variable names
// a dataset directory.
const childDatasetEnv = "MMABLATE_STREAM_TEST_DATASET"

// childOptions are the reader options of both halves: a shuffle buffer,
// several workers and skipped bad rows, so that the resumed position has to
// restore all of them.
func childOptions(dir string) Options {
	return Options{Paths: []string{dir}, Image: images.DefaultOptions(16), Seed: 4,
		ShuffleBuffer: 6, Workers: 3, OnError: data.OnErrorSkip}
}

// childOutput is what a child process reports.
type childOutput struct {
	Events  []string        `json:"events"`
	State   json.RawMessage `json:"state"`
	Skipped data.SkipCounts `json:"skipped"`
}

// TestResumeInNewProcess reads one dataset in a chain of processes (this
// test binary, re-executed): each opens the dataset afresh, restores the
// State the previous one wrote as JSON bytes, reads its share and writes its
// own State. Together they must yield exactly the events of one
// uninterrupted reader, across epoch ends (cuts just before and after an
// EOF, and mid-epoch), with the same skip counts.
func TestResumeInNewProcess(t *testing.T) {
	if dir := os.Getenv(childDatasetEnv); dir != "" {
		runChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := filepath.Join(t.TempDir(), "ds")
	writeDataset(t, dir, 40, 20, 8, 7) // 35 samples an epoch, 5 truncated images
	r, err := Open(context.Background(), childOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const total = 100 // events: almost three epochs
	want := events(t, r, total)
	if slices.Index(want, "EOF") != 35 {
		t.Fatalf("uninterrupted reader: first EOF at %d, want 35: %v", slices.Index(want, "EOF"), want)
	}

	cuts := []int{0, 17, 35, 36, 60, 71, total}
	var got []string
	var out childOutput
	statePath := filepath.Join(t.TempDir(), "state.json")
	for i := 1; i < len(cuts); i++ {
		out = child(t, dir, statePath, i > 1, cuts[i]-cuts[i-1])
		if err := os.WriteFile(statePath, out.State, 0o644); err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Events...)
		if !slices.Equal(got, want[:cuts[i]]) {
			t.Fatalf("after process %d (events %d..%d): got %v, want %v", i, cuts[i-1], cuts[i], got, want[:cuts[i]])
		}
	}
	if !maps.Equal(out.Skipped, r.Skipped()) {
		t.Fatalf("skip counts after the chain %v, uninterrupted %v", out.Skipped, r.Skipped())
	}
}

// child runs this test in a new process that restores the State in
// statePath (when restore is set) and reads n events.
func child(t *testing.T, dir, statePath string, restore bool, n int) childOutput {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeInNewProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDatasetEnv+"="+dir, "MMABLATE_STREAM_TEST_EVENTS="+strconv.Itoa(n))
	if restore {
		cmd.Env = append(cmd.Env, "MMABLATE_STREAM_TEST_STATE="+statePath)
	}
	outPath := filepath.Join(t.TempDir(), "out.json")
	cmd.Env = append(cmd.Env, "MMABLATE_STREAM_TEST_OUT="+outPath)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child process: %v\n%s", err, b)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var out childOutput
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("child output %s: %v", b, err)
	}
	return out
}

func runChild(t *testing.T, dir string) {
	n, err := strconv.Atoi(os.Getenv("MMABLATE_STREAM_TEST_EVENTS"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), childOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if p := os.Getenv("MMABLATE_STREAM_TEST_STATE"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var st data.State
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if err := r.Restore(st); err != nil {
			t.Fatal(err)
		}
	}
	out := childOutput{Events: events(t, r, n), Skipped: r.Skipped()}
	if out.State, err = json.Marshal(r.State()); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("MMABLATE_STREAM_TEST_OUT"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
