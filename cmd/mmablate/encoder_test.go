package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encoderRunYAML is a run config on a tiny shapes world at dir (generated
// on first use), or, with noWorld, one whose caption rows are at a path
// that does not exist.
func encoderRunYAML(dir string, noWorld bool) string {
	shapesDir, world := dir, dir
	if noWorld {
		shapesDir, world = `""`, dir+"/missing"
	}
	return fmt.Sprintf(`name: enc
shapes: {dir: %[1]s, size: 16, scenes: 40, docs: 2, texts: 2, eval_caption: 8, eval_vqa: 0, support: 2, max_objects: 1}
tokenizer: {path: %[2]s/tokenizer.json, vocab: 300}
data:
  sources:
    caption: {paths: [%[3]s/captions], weight: 1}
  packing: {batch_size: 1, seq_len: 32}
model:
  decoder: {width: 32, layers: 1, heads: 2, kv_heads: 1, ffn_hidden: 64, max_seq: 32}
  vision: {resolution: 16, patch: 8, width: 16, depth: 1, heads: 2}
  connector: {type: avgpool, tokens: 4}
train: {threads: {blas: 1, workers: 1}}
eval: {caption: %[3]s/eval/caption, vqa: "", text: ""}
`, shapesDir, dir, world)
}

func TestEncoderPretrainCmd(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(cfg, []byte(encoderRunYAML(filepath.Join(dir, "world"), false)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string) ([]byte, string) {
		t.Helper()
		path := filepath.Join(dir, name)
		out, err := runCLI("encoder", "pretrain", "-c", cfg, "--out", path, "--steps", "3", "--batch", "2", "--seed", "4")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b, out
	}
	a, out := run("a.safetensors")
	for _, want := range []string{"attribute", "chance", "background", "color", "shape", "size", "position", "a.safetensors"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b, _ := run("b.safetensors"); !bytes.Equal(a, b) {
		t.Error("the same config and seed wrote different files")
	}

	// With an encoder: section and model.vision.init, no flags: the file
	// is the one those settings make, written where the config says.
	init := filepath.Join(dir, "init.safetensors")
	withSection := filepath.Join(dir, "section.yaml")
	src, _ := os.ReadFile(cfg)
	src = append(src, []byte("encoder: {steps: 3, batch: 2, seed: 4}\n")...)
	if err := os.WriteFile(withSection, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI("encoder", "pretrain", "-c", withSection, "--set", "model.vision.init="+init); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if c, err := os.ReadFile(init); err != nil || !bytes.Equal(a, c) {
		t.Errorf("the encoder: section's settings did not make the same file as the flags (err %v)", err)
	}
}

func TestEncoderPretrainCmdErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(cfg, []byte(encoderRunYAML(dir, true)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "vit.safetensors")
	tests := []struct {
		name    string
		args    []string
		usage   bool
		wantErr string
	}{
		{"no config", []string{"--out", out}, true, "needs -c"},
		{"no out", []string{"-c", cfg}, true, "needs --out"},
		{"zero steps", []string{"-c", cfg, "--out", out, "--steps", "0"}, true, "positive"},
		{"negative lr", []string{"-c", cfg, "--out", out, "--lr", "-1"}, true, "positive"},
		{"argument", []string{"-c", cfg, "--out", out, "extra"}, true, "argument"},
		{"unknown flag", []string{"-c", cfg, "--out", out, "--epochs", "2"}, true, "epochs"},
		{"missing world", []string{"-c", cfg, "--out", out}, false, filepath.Join(dir, "missing", "captions") + " does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(append([]string{"encoder", "pretrain"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if got := errors.As(err, new(*usageError)); got != tc.usage {
				t.Errorf("usage error (exit 2): %v, want %v", got, tc.usage)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run wrote the encoder file")
	}
}
