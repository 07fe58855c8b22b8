package experiments

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
)

// testRoot holds what the tests share: the shapes world, its tokenizer
// and the mmablate binary, made once.
var testRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "experiments-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runYAML is a multimodal run small enough to train in about a second,
// on a shapes world small enough to generate in about a second; it
// checkpoints every 4 steps and logs every 2.
func runYAML(world string) string {
	return fmt.Sprintf(`name: crash
seed: 5
shapes:
  dir: %[1]s
  size: 16
  scenes: 80
  docs: 12
  texts: 40
  eval_caption: 0
  eval_vqa: 0
  support: 0
tokenizer: {path: %[1]s/tokenizer.json, vocab: 300}
data:
  sources:
    caption:     {paths: [%[1]s/captions], weight: 2}
    interleaved: {paths: [%[1]s/interleaved], weight: 2}
    text:        {paths: [%[1]s/text], weight: 1}
  packing: {batch_size: 4, seq_len: 48}
model:
  decoder: {width: 48, layers: 2, heads: 2, kv_heads: 1, ffn_hidden: 96, max_seq: 48}
  vision: {resolution: 16, patch: 8, width: 32, depth: 1, heads: 2}
  connector: {type: avgpool, tokens: 4}
train:
  steps: 60
  warmup: 4
  checkpoint_every: 4
  keep_checkpoints: 2
  log_every: 2
  threads: {blas: 1, workers: 1}
eval: {caption: "", vqa: "", text: %[1]s/text, perplexity_samples: 4}
`, world)
}

func worldDir() string { return filepath.Join(testRoot, "shapes") }

// configFile writes runYAML (plus overrides) and returns its path.
func configFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(p, []byte(runYAML(worldDir())), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var reference struct {
	once  sync.Once
	final []byte
	err   error
}

// referenceFinal trains runYAML uninterrupted, in process, once.
func referenceFinal(t *testing.T) []byte {
	t.Helper()
	reference.once.Do(func() {
		dir := filepath.Join(testRoot, "reference")
		reference.err = trainInProcess(configFileAt(filepath.Join(testRoot, "ref.yaml")), dir)
		if reference.err == nil {
			reference.final, reference.err = os.ReadFile(filepath.Join(dir, FinalWeightsFile))
		}
	})
	if reference.err != nil {
		t.Fatal(reference.err)
	}
	return reference.final
}

func configFileAt(p string) string {
	if err := os.WriteFile(p, []byte(runYAML(worldDir())), 0o644); err != nil {
		panic(err)
	}
	return p
}

func trainInProcess(cfgPath, dir string, overrides ...string) error {
	cfg, err := Load(cfgPath, overrides)
	if err != nil {
		return err
	}
	return Train(context.Background(), cfg, dir, Options{Log: quietLog()})
}

var binary struct {
	once sync.Once
	path string
	err  error
}

// mmablate builds the command once, for the tests that kill it.
func mmablate(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		binary.path = filepath.Join(testRoot, "mmablate")
		out, err := exec.Command("go", "build", "-o", binary.path, "../cmd/mmablate").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the uninterrupted run's %d", what, len(got), len(want))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func metricsLines(dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	return bytes.Count(b, []byte("\n"))
}

// startTrain starts `mmablate train`, returning the process and a channel
// that receives each stderr line.
func startTrain(t *testing.T, env []string, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(mmablate(t), append([]string{"train"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	// A pipe of our own, not StderrPipe: Wait closes StderrPipe's read end
	// as soon as the process exits, losing the last lines (the resume
	// message) when Wait wins the race with the reader. This read end
	// reaches EOF only after the child has exited and everything it wrote
	// was read.
	stderr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		stderr.Close()
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer stderr.Close()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, lines
}

func killAfterLines(t *testing.T, cmd *exec.Cmd, dir string, lines int, sig syscall.Signal) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for metricsLines(dir) < lines {
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before %d metrics lines: nothing was interrupted", err, lines)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d metrics lines", lines)
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return <-done
}

func assertUnfinished(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, DoneFile)); err == nil {
		t.Fatal("the run finished before it was killed: the test proves nothing")
	}
}

func resumeBinary(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command(mmablate(t), "train", "--resume", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
}

// Same config, seed and threads: the same bytes.
func TestSameConfigSameWeights(t *testing.T) {
	want := referenceFinal(t)
	dir := filepath.Join(t.TempDir(), "run")
	if err := trainInProcess(configFile(t), dir); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "second run's final.safetensors", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)
	if n := metricsLines(dir); n != 30 {
		t.Errorf("metrics.jsonl has %d lines, want 60/2 = 30", n)
	}
	for _, f := range []string{ResolvedConfigFile, TokenizerFile, DoneFile, "checkpoints/step-60.state.json", "checkpoints/step-56.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints/step-52.state.json")); err == nil {
		t.Error("step-52 kept: keep_checkpoints is 2")
	}
	checkMetrics(t, dir)
	// DONE comes last: after the weights and the evaluation it vouches for.
	done, err := os.Stat(filepath.Join(dir, DoneFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FinalWeightsFile, EvalFile, "checkpoints/step-60.state.json"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().After(done.ModTime()) {
			t.Errorf("%s was written after %s", f, DoneFile)
		}
	}
}

// checkMetrics reads metrics.jsonl: a line every train.log_every (2) steps
// with the loss, the step's learning rate (train.RateAt of the step just
// run), the gradient norm, tokens/s and the samples drawn per source so
// far, the counts never falling (a long sample is split over rows, so
// they need not reach batch_size a step) and every source drawn by the end.
func checkMetrics(t *testing.T, dir string) {
	t.Helper()
	cfg, err := loadResolved(filepath.Join(dir, ResolvedConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var prev int64
	for i, line := range bytes.Split(bytes.TrimSpace(readFile(t, filepath.Join(dir, MetricsFile))), []byte("\n")) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("metrics line %d: %v", i+1, err)
		}
		for _, k := range []string{"step", "loss", "lr", "grad_norm", "tokens_per_s", "samples", "padding"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("metrics line %d lacks %q: %s", i+1, k, line)
			}
		}
		var ml metricsLine
		if err := json.Unmarshal(line, &ml); err != nil {
			t.Fatalf("metrics line %d: %v", i+1, err)
		}
		var total int64
		for _, src := range []string{"caption", "interleaved", "text"} {
			total += ml.Samples[src]
		}
		switch {
		case ml.Step != 2*(i+1):
			t.Errorf("metrics line %d is step %d, want %d", i+1, ml.Step, 2*(i+1))
		case ml.LR != cfg.Train.RateAt(ml.Step-1):
			t.Errorf("step %d: lr %v, want RateAt(%d) = %v", ml.Step, ml.LR, ml.Step-1, cfg.Train.RateAt(ml.Step-1))
		case !(ml.Loss > 0) || !(ml.GradNorm > 0) || !(ml.TokensPerS > 0):
			t.Errorf("step %d: loss %v, grad norm %v, tokens/s %v: want positive numbers", ml.Step, ml.Loss, ml.GradNorm, ml.TokensPerS)
		case !(ml.Padding >= 0 && ml.Padding < 1):
			t.Errorf("step %d: padding fraction %v, want one in [0, 1)", ml.Step, ml.Padding)
		case total == 0 || total < prev:
			t.Errorf("step %d: %d samples over the sources (%v), %d before: want a positive count that never falls", ml.Step, total, ml.Samples, prev)
		case ml.Step == cfg.Train.Steps && (ml.Samples["caption"] == 0 || ml.Samples["interleaved"] == 0 || ml.Samples["text"] == 0):
			t.Errorf("step %d: samples per source %v, want every source drawn", ml.Step, ml.Samples)
		}
		prev = total
	}
}

// SIGKILL at several points, each time resumed, ends with the
// uninterrupted run's bytes.
func TestKillAndResume(t *testing.T) {
	want := referenceFinal(t)
	dir := filepath.Join(t.TempDir(), "run")
	cfg := configFile(t)
	cmd, _ := startTrain(t, nil, "-c", cfg, "--out", dir)
	killAfterLines(t, cmd, dir, 3, syscall.SIGKILL) // after step 6, between checkpoints 4 and 8
	assertUnfinished(t, dir)
	for _, lines := range []int{9, 15} { // resumed, then killed again
		cmd, _ := startTrain(t, nil, "--resume", dir)
		killAfterLines(t, cmd, dir, lines, syscall.SIGKILL)
		assertUnfinished(t, dir)
	}
	resumeBinary(t, dir)
	sameBytes(t, "final.safetensors after three SIGKILLs", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)
	if n := metricsLines(dir); n != 30 {
		t.Errorf("metrics.jsonl has %d lines after resuming, want 30 (lines past the checkpoint dropped)", n)
	}
}

// A SIGKILL while a checkpoint is being committed leaves the previous
// checkpoint in use and resume still ends with the same bytes.
func TestKillDuringCheckpoint(t *testing.T) {
	want := referenceFinal(t)
	dir := filepath.Join(t.TempDir(), "run")
	cmd, stderr := startTrain(t, []string{pauseEnv + "=4"}, "-c", configFile(t), "--out", dir)
	var paused string
	for line := range stderr {
		if strings.HasPrefix(line, pauseMarker) {
			paused = line
			break
		}
	}
	if paused != pauseMarker+": step 4" {
		t.Fatalf("pause line %q, want %q", paused, pauseMarker+": step 4")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	ck := filepath.Join(dir, checkpointsDir)
	if _, err := os.Stat(filepath.Join(ck, weightsName(4))); err != nil {
		t.Fatalf("the weights of the paused checkpoint should be in place: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ck, stateFile(4))); err == nil {
		t.Fatal("step-4.state.json exists: the kill came after the commit")
	}
	// No complete checkpoint yet: resume starts over, from nothing.
	resumeBinary(t, dir)
	sameBytes(t, "final.safetensors after a kill during the first checkpoint", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)

	// Again with an earlier complete checkpoint to fall back to.
	dir2 := filepath.Join(t.TempDir(), "run2")
	cmd, stderr = startTrain(t, []string{pauseEnv + "=12"}, "-c", configFile(t), "--out", dir2)
	paused = ""
	for line := range stderr {
		if strings.HasPrefix(line, pauseMarker) {
			paused = line
			break
		}
	}
	if paused != pauseMarker+": step 12" {
		t.Fatalf("pause line %q, want %q", paused, pauseMarker+": step 12")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	hash := runHash(readFile(t, filepath.Join(dir2, ResolvedConfigFile)), readFile(t, filepath.Join(dir2, TokenizerFile)))
	st, err := latestCheckpoint(dir2, hash, quietLog())
	if err != nil || st == nil || st.Step != 8 {
		t.Fatalf("after a kill while committing step 12, the newest complete checkpoint is %+v (%v), want step 8", st, err)
	}
	resumeBinary(t, dir2)
	sameBytes(t, "final.safetensors after a kill during the step-12 checkpoint", readFile(t, filepath.Join(dir2, FinalWeightsFile)), want)
	if matches, _ := filepath.Glob(filepath.Join(dir2, checkpointsDir, ".*")); len(matches) > 0 {
		t.Errorf("temporary files left after resume: %v", matches)
	}
}

// SIGINT (Ctrl-C) and SIGTERM each write a checkpoint at the current step
// and exit with a message saying how to resume; the resumed run ends with
// the same bytes.
func TestSignalCheckpointsAndResumes(t *testing.T) {
	want := referenceFinal(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			cmd, stderr := startTrain(t, nil, "-c", configFile(t), "--out", dir)
			var msgs []string
			collected := make(chan struct{})
			go func() {
				for l := range stderr {
					msgs = append(msgs, l)
				}
				close(collected)
			}()
			err := killAfterLines(t, cmd, dir, 5, sig)
			<-collected
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit after %v: %v, want status 1", sig, err)
			}
			all := strings.Join(msgs, "\n")
			if !strings.Contains(all, "resume with: mmablate train --resume "+dir) {
				t.Fatalf("no resume instruction in stderr:\n%s", all)
			}
			steps, err := committedSteps(filepath.Join(dir, checkpointsDir))
			if err != nil || len(steps) == 0 || steps[0] < 10 {
				t.Fatalf("checkpoints after %v at step ≥ 10: %v (%v), want one at the step it stopped", sig, steps, err)
			}
			t.Logf("%v checkpoint at step %d", sig, steps[0])
			assertUnfinished(t, dir)
			resumeBinary(t, dir)
			sameBytes(t, "final.safetensors after "+sig.String()+" and resume", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)
		})
	}
}

// Without --out, `mmablate train -c` writes to the config's out; the key
// changes where the run goes, not what it trains.
func TestTrainOutFromConfig(t *testing.T) {
	want := referenceFinal(t)
	dir := filepath.Join(t.TempDir(), "run")
	out, err := exec.Command(mmablate(t), "train", "-c", configFile(t), "--set", "out="+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	sameBytes(t, "final.safetensors of a run placed by out", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)
	if !bytes.Contains(readFile(t, filepath.Join(dir, ResolvedConfigFile)), []byte("out: "+dir)) {
		t.Errorf("%s lacks out: %s", ResolvedConfigFile, dir)
	}
}

// finishedRun trains runYAML into a fresh directory, in process.
func finishedRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if err := trainInProcess(configFile(t), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unfinish makes a finished run look interrupted after its last checkpoint.
func unfinish(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{DoneFile, FinalWeightsFile, EvalFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
}

func resumeInProcess(dir string) error {
	return Resume(context.Background(), dir, Options{Log: quietLog()})
}

// A damaged newest checkpoint is passed over (with a warning) for the one
// before it, and the run still ends with the same bytes; with none intact,
// resume fails naming the files.
func TestCorruptCheckpoints(t *testing.T) {
	want := referenceFinal(t)
	ck := func(dir, name string) string { return filepath.Join(dir, checkpointsDir, name) }
	truncate := func(t *testing.T, path string) {
		t.Helper()
		if err := os.Truncate(path, 100); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("truncated newest weights", func(t *testing.T) {
		dir := finishedRun(t)
		unfinish(t, dir)
		truncate(t, ck(dir, weightsName(60)))
		if err := resumeInProcess(dir); err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "final.safetensors resumed from step 56", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)
	})
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
	}{
		{"every checkpoint damaged", func(t *testing.T, dir string) {
			truncate(t, ck(dir, weightsName(60)))
			truncate(t, ck(dir, optimName(56)))
		}, []string{"no complete checkpoint", weightsName(60) + ": sha256", optimName(56) + ": sha256"}},
		{"state.json not JSON", func(t *testing.T, dir string) {
			os.WriteFile(ck(dir, stateFile(60)), []byte("{"), 0o644)
			os.WriteFile(ck(dir, stateFile(56)), []byte("\x00"), 0o644)
		}, []string{stateFile(60) + ": unexpected EOF", stateFile(56) + ": invalid character"}},
		{"bad safetensors header with matching sha256", func(t *testing.T, dir string) {
			forge(t, dir, 60, weightsName(60), []byte("\xff\xff\xff\xff\xff\xff\xff\x7f{}"))
		}, []string{weightsName(60)}},
		{"weights of another shape with matching sha256", func(t *testing.T, dir string) {
			other := filepath.Join(t.TempDir(), "other")
			if err := trainInProcess(configFile(t), other, "model.decoder.width=32", "train.steps=4", "train.warmup=1"); err != nil {
				t.Fatal(err)
			}
			forge(t, dir, 60, weightsName(60), readFile(t, filepath.Join(other, FinalWeightsFile)))
		}, []string{weightsName(60), "llm.tok_embed.weight has shape [300 32], the model needs [300 48]"}},
		{"edited config", func(t *testing.T, dir string) {
			p := filepath.Join(dir, ResolvedConfigFile)
			os.WriteFile(p, bytes.Replace(readFile(t, p), []byte("lr: 0.003"), []byte("lr: 0.002"), 1), 0o644)
		}, []string{stateFile(60), "checkpoint of another config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := finishedRun(t)
			unfinish(t, dir)
			tc.damage(t, dir)
			err := resumeInProcess(dir)
			if err == nil {
				t.Fatal("resume succeeded")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// forge replaces a checkpoint file and records its sha256 in state.json,
// as if the checkpoint had been written that way.
func forge(t *testing.T, dir string, step int, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, checkpointsDir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(dir, checkpointsDir, stateFile(step))
	st := readFile(t, sp)
	var cs checkpointState
	if err := json.Unmarshal(st, &cs); err != nil {
		t.Fatal(err)
	}
	sum, err := fileSHA256(p)
	if err != nil {
		t.Fatal(err)
	}
	cs.Weights.SHA256 = sum
	out, _ := json.Marshal(cs)
	if err := os.WriteFile(sp, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBadRuns(t *testing.T) {
	referenceFinal(t) // the shapes world and its tokenizer exist
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	nonEmpty := t.TempDir()
	os.WriteFile(filepath.Join(nonEmpty, "notes.txt"), []byte("x"), 0o644)
	for _, tc := range []struct {
		name      string
		dir       string
		overrides []string
		want      []string
	}{
		{"non-empty run directory", nonEmpty, nil, []string{"run directory " + nonEmpty + " is not empty", "--resume"}},
		{"unwritable run directory", filepath.Join(file, "run"), nil, []string{file + "/run", "not a directory"}},
		{"missing dataset", "", []string{"data.sources.caption.paths=[" + worldDir() + "/captions, /nonexistent/captions]"},
			[]string{"data.sources.caption.paths[1]", "/nonexistent/captions", "no such file"}},
		{"missing eval dataset", "", []string{"eval.vqa=/nonexistent/vqa"}, []string{"eval.vqa", "/nonexistent/vqa"}},
		{"missing encoder weights", "", []string{"model.vision.init=/nonexistent/vit.safetensors"}, []string{"model.vision.init", "/nonexistent/vit.safetensors", "no such file"}},
		{"vocab mismatch", "", []string{"model.decoder.vocab=299"}, []string{"model.decoder.vocab 299 differs", "tokenizer.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = filepath.Join(t.TempDir(), "run")
			}
			err := trainInProcess(configFile(t), dir, tc.overrides...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			// A config that cannot start writes nothing, so the corrected
			// config can be run into the same directory.
			if tc.dir == "" {
				if entries, _ := os.ReadDir(dir); len(entries) > 0 {
					t.Errorf("the failed run left %d files in %s", len(entries), dir)
				}
			}
		})
	}
	if err := resumeInProcess(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a run directory") && !strings.Contains(err.Error(), "a run directory?") {
		t.Errorf("resume of an empty directory: %v", err)
	}
}

// TestMetricsLinePaddingAndSkips: the mixer's padding fraction and its
// skipped rows by source and reason reach metrics.jsonl.
func TestMetricsLinePaddingAndSkips(t *testing.T) {
	st := mixer.Stats{PadTokens: 25, Tokens: 100, Skipped: map[string]data.SkipCounts{"caption": {"invalid image": 3}}}
	var b bytes.Buffer
	if err := writeMetrics(&b, 7, models.StepStats{Loss: 1}, 0.1, 10, st, deviceLine{}, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	var ml metricsLine
	if err := json.Unmarshal(b.Bytes(), &ml); err != nil {
		t.Fatal(err)
	}
	if ml.Padding != 0.25 || ml.Skipped["caption"]["invalid image"] != 3 {
		t.Fatalf("metrics line %s: want padding 0.25 and 3 skipped caption rows", b.Bytes())
	}
	b.Reset()
	if err := writeMetrics(&b, 8, models.StepStats{Loss: 1}, 0.1, 10, mixer.Stats{}, deviceLine{}, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("skipped")) {
		t.Fatalf("metrics line %s names skips where there were none", b.Bytes())
	}
}

// TestScaleLR: the longest key matching a tensor holds, whatever the map's
// order; a key matching nothing is logged; "vit" does not cover "vitals".
func TestScaleLR(t *testing.T) {
	ps := engine.NewParams[float32]()
	for _, name := range []string{"connector.blocks.0.conv1.weight", "connector.blocks.1.conv1.weight", "connector.proj.weight", "vit.patch.weight", "vitals", "llm.norm"} {
		ps.Add(name, 2, 2)
	}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	scaleLR(ps, map[string]float64{"connector.blocks.1": 0.5, "connector": 2, "connector.blocks": 0.1, "vit": 3, "nothing.here": 9}, log)
	want := map[string]float64{
		"connector.blocks.0.conv1.weight": 0.1, "connector.blocks.1.conv1.weight": 0.5, "connector.proj.weight": 2,
		"vit.patch.weight": 3, "vitals": 1, "llm.norm": 1,
	}
	for name, w := range want {
		p, _ := ps.Lookup(name)
		if p.LRScale != w {
			t.Errorf("%s: LRScale %v, want %v", name, p.LRScale, w)
		}
	}
	if !strings.Contains(logged.String(), "key=nothing.here") || strings.Contains(logged.String(), "WARN msg=\"train.lr_scale: no tensor of this model has this name or prefix\" key=vit") {
		t.Errorf("log:\n%s", logged.String())
	}
}
