package mixer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"
)

// childEnv names the directory a re-executed test binary resumes from;
// when it is set, TestMain runs resumeChild instead of the tests.
const childEnv = "MMABLATE_MIXER_RESUME_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := resumeChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "resume child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childResult is what the child process writes: the batches it produced
// after Restore and its Stats at the end.
type childResult struct {
	Batches []Batch
	Stats   Stats
}

// resumeChild is the new process of TestResumeInANewProcess. It knows
// nothing but the files in dir: config.yaml (the data block), state.json
// (the parent's State as JSON bytes) and batches (how many to produce). It
// opens the shards the config names, restores and writes result.json.
func resumeChild(dir string) error {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	cfgBytes, err := read("config.yaml")
	if err != nil {
		return err
	}
	cfg, err := ParseConfig(cfgBytes)
	if err != nil {
		return err
	}
	stBytes, err := read("state.json")
	if err != nil {
		return err
	}
	var st State
	if err := json.Unmarshal(stBytes, &st); err != nil {
		return fmt.Errorf("state.json: %w", err)
	}
	nBytes, err := read("batches")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(string(nBytes))
	if err != nil {
		return fmt.Errorf("batches: %w", err)
	}
	ctx := context.Background()
	streams, err := OpenStreams(ctx, cfg, testStreamOptions)
	if err != nil {
		return err
	}
	m, err := New(cfg, streams, testSpecials)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Restore(st); err != nil {
		return err
	}
	var res childResult
	for range n {
		b, err := m.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		res.Batches = append(res.Batches, cloneBatch(b))
	}
	res.Stats = m.Stats()
	js, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "result.json"), js, 0o644)
}

// TestResumeInANewProcess takes the State after k batches, writes it as
// JSON bytes beside the config, and has a new process (this test binary,
// re-executed) rebuild everything from those files alone: it must produce
// exactly the batches and counters of an uninterrupted run, across a
// schedule change and an epoch end of real Parquet streams.
func TestResumeInANewProcess(t *testing.T) {
	const res, total = 8, 14
	for _, tc := range []struct{ sampling, interp, policy string }{
		{SamplingRandom, InterpLinear, ExhaustedRepeat},
		{SamplingStratified, InterpConstant, ExhaustedStop},
	} {
		t.Run(tc.sampling+"/"+tc.interp, func(t *testing.T) {
			cfg := mixtureConfig(tc.sampling, OverflowSplit, tc.policy)
			cfg.Interpolation = tc.interp
			cfg.Packing.Resolution, cfg.Packing.SeqLen = res, 48
			cfg.Schedule[0].Step = 8 // linear: the weights move at every step up to 8
			cfg, open := realSources(t, cfg, map[string]int{"caption": 10, "interleaved": 7, "text": 9}, 12, encodePNG)
			cfgYAML, err := yaml.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := New(cfg, open(), testSpecials)
			if err != nil {
				t.Fatal(err)
			}
			want := run(t, ref, total, cfg)
			ref.Close()
			if len(want) != total {
				t.Fatalf("%d batches, want %d", len(want), total)
			}
			pending := 0
			for _, k := range []int{3, 5} {
				m, err := New(cfg, open(), testSpecials)
				if err != nil {
					t.Fatal(err)
				}
				run(t, m, k, cfg)
				st, err := m.State()
				m.Close()
				if err != nil {
					t.Fatal(err)
				}
				epochsAfter := 0
				for name, s := range st.Sources {
					if s.Pending != nil {
						pending++
					}
					if s.Counters.Epochs < ref.Stats().Sources[name].Epochs {
						epochsAfter++
					}
				}
				if epochsAfter == 0 {
					t.Fatalf("no source finishes an epoch after batch %d: the test misses an epoch end after the resume", k)
				}
				stJSON, err := json.Marshal(st)
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				for name, b := range map[string][]byte{"config.yaml": cfgYAML, "state.json": stJSON, "batches": []byte(strconv.Itoa(total - k))} {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"="+dir)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("child process: %v\n%s", err, out)
				}
				js, err := os.ReadFile(filepath.Join(dir, "result.json"))
				if err != nil {
					t.Fatal(err)
				}
				var got childResult
				if err := json.Unmarshal(js, &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Batches) != total-k {
					t.Fatalf("resumed after %d: the child gave %d batches, want %d", k, len(got.Batches), total-k)
				}
				for i := range got.Batches {
					if !equalBatch(got.Batches[i], want[k+i]) {
						t.Fatalf("resumed after %d batches in a new process: batch %d differs", k, k+i)
					}
				}
				if a, b := got.Stats, ref.Stats(); a.Step != b.Step || a.PadTokens != b.PadTokens || !equalCounters(a.Sources, b.Sources) {
					t.Fatalf("resumed after %d: stats %+v, uninterrupted %+v", k, a, b)
				}
			}
			if pending == 0 {
				t.Fatal("no snapshot had a partly packed sample: the test misses a case")
			}
		})
	}
}
