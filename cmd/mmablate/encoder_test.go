package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encoderRunConfig copies the experiments package's encoder test config
// (one source for both packages' encoder tests) into dir as run.yaml: its
// relative paths put the shapes world at dir/world, generated on first use.
func encoderRunConfig(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "experiments", "testdata", "encoder.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(p, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncoderPretrainCmd(t *testing.T) {
	dir := t.TempDir()
	cfg := encoderRunConfig(t, dir)
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
	cfg := encoderRunConfig(t, dir)
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
		// No shapes.dir: nothing generates the world the config's caption rows are in.
		{"missing world", []string{"-c", cfg, "--out", out, "--set", `shapes.dir=""`}, false, filepath.Join(dir, "world", "captions") + " does not exist"},
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
