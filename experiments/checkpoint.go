package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mmablate/mmablate/internal/atomicfile"
	"github.com/mmablate/mmablate/internal/boundedfile"
	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
)

// checkpointVersion is written into every state.json; resume refuses others.
const checkpointVersion = 1

// maxStateBytes bounds a state.json read back: a mixer State is a few
// kilobytes per source.
const maxStateBytes = 64 << 20

// pauseEnv, set to a step number, makes the writer of that step's
// checkpoint print pauseMarker to stderr and sleep for a minute after both
// safetensors files are in place and state.json is written under its
// temporary name, before the rename that commits it. Only the crash tests
// set it, to kill the trainer there.
const pauseEnv = "MMABLATE_TEST_PAUSE_IN_CHECKPOINT"

// pauseMarker starts the line printed at the pause.
const pauseMarker = "checkpoint paused before commit"

// checkpointState is step-N.state.json, the commit point of checkpoint N.
type checkpointState struct {
	Version    int         `json:"version"`
	Step       int         `json:"step"`
	ConfigHash string      `json:"config_hash"` // sha256 of config.resolved.yaml then tokenizer.json
	Mixer      mixer.State `json:"mixer"`
	Weights    fileRef     `json:"weights"`
	Optimizer  fileRef     `json:"optimizer"`
}

type fileRef struct {
	File   string `json:"file"` // base name, in the checkpoints directory
	SHA256 string `json:"sha256"`
}

const checkpointsDir = "checkpoints"

var stateName = regexp.MustCompile(`^step-([0-9]+)\.state\.json$`)

func weightsName(step int) string { return fmt.Sprintf("step-%d.safetensors", step) }
func optimName(step int) string   { return fmt.Sprintf("step-%d.optim.safetensors", step) }
func stateFile(step int) string   { return fmt.Sprintf("step-%d.state.json", step) }

// writeCheckpoint writes checkpoint step in runDir/checkpoints: the two
// safetensors files (each atomically), then state.json (atomically, the
// commit), then removes committed checkpoints beyond keep.
func writeCheckpoint(runDir string, step, keep int, m *models.Model, ms mixer.State, configHash string, log *slog.Logger) error {
	dir := filepath.Join(runDir, checkpointsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	st := checkpointState{Version: checkpointVersion, Step: step, ConfigHash: configHash, Mixer: ms,
		Weights: fileRef{File: weightsName(step)}, Optimizer: fileRef{File: optimName(step)}}
	wp, op := filepath.Join(dir, st.Weights.File), filepath.Join(dir, st.Optimizer.File)
	if err := m.SaveWeights(wp, map[string]string{"step": strconv.Itoa(step)}); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	if err := m.SaveOptimizer(op); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	var err error
	if st.Weights.SHA256, err = fileSHA256(wp); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	if st.Optimizer.SHA256, err = fileSHA256(op); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	var pause func()
	if at, err := strconv.Atoi(os.Getenv(pauseEnv)); err == nil && at == step {
		pause = func() {
			fmt.Fprintf(os.Stderr, "%s: step %d\n", pauseMarker, step)
			time.Sleep(time.Minute)
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, stateFile(step)), append(b, '\n'), pause); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	log.Debug("checkpoint written", "step", step, "dir", dir)
	return pruneCheckpoints(dir, keep)
}

// pruneCheckpoints removes committed checkpoints older than the newest
// keep, each state.json first so that none is ever half there and
// committed.
func pruneCheckpoints(dir string, keep int) error {
	steps, err := committedSteps(dir)
	if err != nil {
		return err
	}
	for _, s := range steps[min(keep, len(steps)):] {
		for _, name := range []string{stateFile(s), weightsName(s), optimName(s)} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("checkpoint: remove old %w", err)
			}
		}
	}
	return nil
}

// committedSteps lists the steps that have a state.json, newest first.
func committedSteps(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	var steps []int
	for _, e := range entries {
		if m := stateName.FindStringSubmatch(e.Name()); m != nil {
			if s, err := strconv.Atoi(m[1]); err == nil {
				steps = append(steps, s)
			}
		}
	}
	slices.Sort(steps)
	slices.Reverse(steps)
	return steps, nil
}

// latestCheckpoint finds the newest complete checkpoint of runDir: its
// state.json parses, names its own step and this config, and both files'
// sha256s match. Damaged ones are passed over with a warning naming the
// file; nil means there is none at all. When checkpoints exist but none is
// complete, the error lists why each was refused.
func latestCheckpoint(runDir, configHash string, log *slog.Logger) (*checkpointState, error) {
	dir := filepath.Join(runDir, checkpointsDir)
	steps, err := committedSteps(dir)
	if err != nil {
		return nil, err
	}
	var refused []error
	for _, s := range steps {
		st, err := readCheckpointState(dir, s, configHash)
		if err == nil {
			return st, nil
		}
		if errors.Is(err, errOtherConfig) {
			return nil, err
		}
		log.Warn("skipping damaged checkpoint", "err", err)
		refused = append(refused, err)
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("no complete checkpoint in %s (remove it to start over): %w", dir, errors.Join(refused...))
	}
	return nil, nil
}

var errOtherConfig = errors.New("checkpoint of another config")

func readCheckpointState(dir string, step int, configHash string) (*checkpointState, error) {
	path := filepath.Join(dir, stateFile(step))
	b, err := boundedfile.Read(path, maxStateBytes)
	if err != nil {
		return nil, err
	}
	var st checkpointState
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case st.Version != checkpointVersion:
		return nil, fmt.Errorf("%s: version %d, this build reads %d", path, st.Version, checkpointVersion)
	case st.Step != step:
		return nil, fmt.Errorf("%s: holds step %d", path, st.Step)
	case st.ConfigHash != configHash:
		return nil, fmt.Errorf("%s: %w: config hash %s, config.resolved.yaml and tokenizer.json give %s", path, errOtherConfig, st.ConfigHash, configHash)
	case st.Weights.File != weightsName(step) || st.Optimizer.File != optimName(step):
		return nil, fmt.Errorf("%s: names files %s and %s, want %s and %s", path, st.Weights.File, st.Optimizer.File, weightsName(step), optimName(step))
	}
	for _, f := range []fileRef{st.Weights, st.Optimizer} {
		p := filepath.Join(dir, f.File)
		sum, err := fileSHA256(p)
		if err != nil {
			return nil, err
		}
		if sum != f.SHA256 {
			return nil, fmt.Errorf("%s: sha256 %s, %s recorded %s: the file was damaged after the checkpoint", p, sum, path, f.SHA256)
		}
	}
	return &st, nil
}

// loadCheckpoint restores the model's weights and AdamW state from st.
func loadCheckpoint(runDir string, st *checkpointState, m *models.Model) error {
	dir := filepath.Join(runDir, checkpointsDir)
	if _, err := m.LoadWeights(filepath.Join(dir, st.Weights.File)); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	op := filepath.Join(dir, st.Optimizer.File)
	if err := m.LoadOptimizer(op); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if m.Steps() != st.Step {
		return fmt.Errorf("resume: %s holds %d optimiser steps, %s says %d", op, m.Steps(), stateFile(st.Step), st.Step)
	}
	return nil
}

// cleanCheckpoints removes what a killed writer left: temporary files and
// the files of a checkpoint that was never committed. It runs before the
// job writes anything.
func cleanCheckpoints(runDir string) error {
	dir := filepath.Join(runDir, checkpointsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	committed := map[string]bool{}
	steps, err := committedSteps(dir)
	if err != nil {
		return err
	}
	for _, s := range steps {
		committed[weightsName(s)], committed[optimName(s)] = true, true
	}
	stray := regexp.MustCompile(`^(\.step-.*\.tmp.*|step-[0-9]+(\.optim)?\.safetensors)$`)
	for _, e := range entries {
		if n := e.Name(); stray.MatchString(n) && !committed[n] {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("checkpoints: %w", err)
			}
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileAtomic writes b through internal/atomicfile, calling
// beforeRename (the kill tests' pause) once the temporary holds b and before
// it is renamed over path.
func writeFileAtomic(path string, b []byte, beforeRename func()) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		if beforeRename != nil {
			beforeRename()
		}
		return nil
	})
}
