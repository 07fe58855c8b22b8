package ablations

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testdataDir is the absolute testdata directory: Parse resolves base
// paths against it.
func testdataDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

const head = "name: t\nbase: base.yaml\n"

// parseErrorCases are bad sweep files; their messages are in
// testdata/parse_errors.golden.
var parseErrorCases = []struct {
	name, src string
	is        error // a sentinel the error wraps, if any
}{
	{"not a mapping", "- a\n- b\n", nil},
	{"yaml syntax", "name: [unclosed\n", nil},
	{"unknown top-level key", head + "axis:\n  train.lr: [1]\n", ErrUnknownKey},
	{"missing name and base", "axes: {train.lr: [0.1]}\n", nil},
	{"bad name", "name: \"a b\"\nbase: base.yaml\n", nil},
	{"missing base file", "name: t\nbase: nowhere.yaml\n", nil},
	{"base not a path or mapping", "name: t\nbase: [1]\n", nil},
	{"misspelt axis key", head + "axes:\n  model.vision.resolutoin: [32, 64]\n", ErrUnknownKey},
	{"unknown axis key, nothing close", head + "axes:\n  zzz.qqq: [1]\n", ErrUnknownKey},
	{"axis values not a list", head + "axes:\n  train.lr: 0.1\n", nil},
	{"axis values empty", head + "axes:\n  train.lr: []\n", nil},
	{"axis value of the wrong type", head + "axes:\n  train.lr: [0.1, fast]\n", nil},
	{"axis value breaks validation", head + "axes:\n  train.lr: [0.1, -1]\n", nil},
	{"value listed twice", head + "axes:\n  train.lr: [0.1, 0.2, 0.1]\n", ErrDuplicateCell},
	{"values equal as numbers", head + "axes:\n  train.lr: [0.1, 1e-1]\n", ErrDuplicateCell},
	{"labels of one config", head + "zip:\n  - name: z\n    keys: [train.lr]\n    values: [[0.1], [0.1]]\n    labels: [a, b]\n", ErrDuplicateCell},
	{"threads do not make a cell", head + "axes:\n  train.threads.workers: [1, 2]\n", ErrDuplicateCell},
	{"unknown source", head + "axes:\n  data.sources.captoin.weight: [1, 2]\n", ErrUnknownKey},
	{"set key misspelt", head + "set: {train.stepz: 10}\n", ErrUnknownKey},
	{"set and axis on one key", head + "set: {train.lr: 0.1}\naxes:\n  train.lr: [0.2, 0.3]\n", nil},
	{"label for no axis", head + "axes:\n  train.lr: [0.1]\nlabels: {train.steps: steps}\n", nil},
	{"label with a comma", head + "axes:\n  train.lr: [0.1]\nlabels: {train.lr: \"l,r\"}\n", nil},
	{"two axes with one name", head + "axes:\n  train.lr: [0.1]\n  train.min_lr: [0]\nlabels: {train.lr: x, train.min_lr: x}\n", nil},
	{"zip lengths differ", head + "zip:\n  - name: mix\n    keys: [data.sources.caption.weight, data.sources.text.weight]\n    values: [[1, 2], [3]]\n", nil},
	{"zip labels count", head + "zip:\n  - name: mix\n    keys: [data.sources.caption.weight]\n    values: [[1], [2]]\n    labels: [a]\n", nil},
	{"zip without name", head + "zip:\n  - keys: [train.lr]\n    values: [[0.1]]\n", nil},
	{"zip unknown field", head + "zip:\n  - name: z\n    key: [train.lr]\n", ErrUnknownKey},
	{"zip key also an axis", head + "axes:\n  train.lr: [0.1, 0.2]\nzip:\n  - name: z\n    keys: [train.lr]\n    values: [[0.3]]\n", nil},
	{"zip value of the wrong type", head + "zip:\n  - name: z\n    keys: [train.lr, train.steps]\n    values: [[0.1, 10], [0.2, many]]\n", nil},
	{"exclude names no axis", head + "axes:\n  train.lr: [0.1, 0.2]\nexclude:\n  - {lr: 0.1}\n", ErrUnknownKey},
	{"exclude value not on the axis", head + "axes:\n  train.lr: [0.1, 0.2]\nexclude:\n  - {train.lr: 0.3}\n", nil},
	{"exclude drops everything", head + "axes:\n  train.lr: [0.1, 0.2]\nexclude:\n  - {train.lr: 0.1}\n  - {train.lr: 0.2}\n", ErrEmptyGrid},
	{"baseline names no axis", head + "axes:\n  train.lr: [0.1, 0.2]\nbaseline: {lrr: 0.1}\n", ErrUnknownKey},
	{"baseline excluded", head + "axes:\n  train.lr: [0.1, 0.2]\n  train.steps: [10, 20]\nexclude: [{train.lr: 0.1, train.steps: 10}]\nbaseline: {train.lr: 0.1, train.steps: 10}\n", nil},
	{"seeds empty", head + "seeds: []\n", nil},
	{"seed twice", head + "seeds: [0, 1, 0]\n", nil},
	{"seed negative", head + "seeds: [-1]\n", nil},
	{"slurm unknown key", head + "slurm: {partiton: debug}\n", ErrUnknownKey},
	{"slurm bad types", head + "slurm: {cpus_per_task: two, requeue_exit: 300, time: \"1:00\\n#SBATCH --x\"}\n", nil},
	{"axis value not JSON", head + "axes:\n  train.lr: [{1: a}]\n", nil},
	{"grid too large", head + "axes:\n  train.steps: " + seq(40) + "\n  train.log_every: " + seq(30) + "\n", nil},
	{"inline base error", "name: t\nbase:\n  model:\n    decoder:\n      widht: 8\n", nil},
	{"validation across keys names the cell", head + "axes:\n  model.connector.type: [avgpool, mlp]\n", nil},
}

// seq is the YAML list [1, 2, …, n].
func seq(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i + 1)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func TestParseErrors(t *testing.T) {
	dir := testdataDir(t)
	var out strings.Builder
	for _, tc := range parseErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.src), "sweep.yaml", dir)
			if err == nil {
				t.Fatalf("Parse succeeded with %d cells, want an error", len(s.Cells))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			if !strings.HasPrefix(err.Error(), "sweep.yaml") {
				t.Errorf("error %q does not start with the file name", err)
			}
			out.WriteString("# " + tc.name + "\n" + err.Error() + "\n\n")
		})
	}
	golden(t, "parse_errors.golden", out.String())
}

func TestLoadNamesRelativeBase(t *testing.T) {
	_, err := Load("testdata/bad_base.yaml")
	if err == nil {
		t.Fatal("Load succeeded, want the base's error")
	}
	// The base's own error carries the base file's path and line.
	want := "testdata/bad_base.yaml: cell seed=0: " + filepath.Join("testdata", "bad_base_run.yaml") + ":3: train.lr:"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

// Known keys come from the run config's type: optional keys the defaults'
// YAML omits count, map entries are those the base names.
func TestKnownKeys(t *testing.T) {
	var base yaml.Node
	if err := yaml.Unmarshal([]byte("data:\n  sources:\n    caption: {weight: 1}\n"), &base); err != nil {
		t.Fatal(err)
	}
	known := knownKeys(&base)
	for key, want := range map[string]bool{
		"train.lr": true, "train.threads.workers": true, "model.decoder.ffn_pruning": true, "model.vision.resolution": true,
		"data.sources.caption.weight": true, "data.sources.caption.paths": true, "data.sources.text.weight": false,
		"train.lrr": false, "model": true, "data.packing.seq_len": true,
	} {
		if known[key] != want {
			t.Errorf("known[%s] = %v, want %v", key, known[key], want)
		}
	}
}
