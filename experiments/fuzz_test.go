package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary config bytes and one arbitrary override to
// Parse: it must return a Config or an error, never panic, and a Config
// it returns must be valid and marshal.
func FuzzParse(f *testing.F) {
	tiny, err := os.ReadFile("examples/tiny.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(base), "train.lr=1e-3")
	f.Add(tiny, "model.vision=null")
	f.Add([]byte("a: &x [*x]\n"), "data.sources.c.paths=[x]")
	f.Add([]byte("train: {threads: {blas: 2}}\n"), "eval.shots=[0, 4]")
	f.Fuzz(func(t *testing.T, b []byte, override string) {
		c, err := Parse(b, "f.yaml", "/base", []string{override})
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a config that does not validate: %v", err)
		}
		if _, err := c.Marshal(); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}

// FuzzCheckpointState feeds arbitrary bytes as a run's newest
// step-8.state.json, beside intact weights and optimiser files:
// latestCheckpoint must never panic, and any state it accepts must be the
// one its checks allow (version, step, config hash, file names and both
// files' sha256s).
func FuzzCheckpointState(f *testing.F) {
	good := checkpointState{Version: checkpointVersion, Step: 8, ConfigHash: "h",
		Weights: fileRef{File: weightsName(8)}, Optimizer: fileRef{File: optimName(8)}}
	weights, optim := []byte("weights"), []byte("optimizer")
	good.Weights.SHA256, good.Optimizer.SHA256 = sha256Hex(weights), sha256Hex(optim)
	b, err := json.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version": 1, "step": 8, "config_hash": "h", "mixer": {"sources": null}}`))
	f.Add([]byte(`{"version": 2}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, state []byte) {
		run := t.TempDir()
		dir := filepath.Join(run, checkpointsDir)
		for name, b := range map[string][]byte{weightsName(8): weights, optimName(8): optim, stateFile(8): state} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		st, err := latestCheckpoint(run, "h", quietLog())
		if err != nil || st == nil {
			return
		}
		if st.Version != checkpointVersion || st.Step != 8 || st.ConfigHash != "h" || st.Weights != good.Weights || st.Optimizer != good.Optimizer {
			t.Fatalf("accepted a checkpoint state that fails its checks: %+v", st)
		}
	})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
