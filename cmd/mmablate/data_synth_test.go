package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data/shards"
)

func TestDataSynth(t *testing.T) {
	out := filepath.Join(t.TempDir(), "shapes")
	small := []string{"data", "synth", "--out", out, "--scenes", "6", "--docs", "3", "--texts", "4",
		"--eval-caption", "3", "--eval-vqa", "4", "--support", "2", "--eval-text", "5", "--size", "32", "--no-book"}
	got, err := runCLI(small...)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if !strings.Contains(got, "wrote 29 rows to "+out) || !strings.Contains(got, "eval/vqa/support") || !strings.Contains(got, "eval/text                   5 rows") {
		t.Fatalf("output:\n%s", got)
	}
	for _, split := range []string{"captions", "interleaved", "text", "eval/caption/query", "eval/caption/support", "eval/vqa/query", "eval/vqa/support", "eval/text"} {
		if bad, err := shards.Verify(filepath.Join(out, split)); err != nil || len(bad) > 0 {
			t.Fatalf("%s: %v %v", split, bad, err)
		}
	}
	got, err = runCLI(append(small, "--workers", "3")...)
	if err != nil || !strings.Contains(got, "is up to date") {
		t.Fatalf("rerun: %v\n%s", err, got)
	}
	// Another --eval-text (a world made before eval/text, say) writes
	// eval/text alone and keeps the other splits, without --force.
	got, err = runCLI(append(small, "--eval-text", "7")...)
	if err != nil || !strings.Contains(got, "wrote 7 rows to "+out) || !strings.Contains(got, "eval/text                   7 rows  1 shard\n") ||
		!strings.Contains(got, "captions                    6 rows  1 shard  (kept") {
		t.Fatalf("--eval-text 7 after 5: %v\n%s", err, got)
	}
	got, err = runCLI(append(small, "--seed", "2")...)
	var ue *usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("other seed: want a failure suggesting --force, got %v\n%s", err, got)
	}
	if _, err = runCLI(append(small, "--seed", "2", "--force")...); err != nil {
		t.Fatalf("--force: %v", err)
	}
	text := filepath.Join(t.TempDir(), "prose.txt")
	os.WriteFile(text, []byte("Some prose.\n\nMore prose."), 0o644)
	out2 := filepath.Join(t.TempDir(), "with-text")
	if got, err := runCLI("data", "synth", "--out", out2, "--scenes", "1", "--docs", "0", "--texts", "0", "--eval-caption", "0",
		"--eval-vqa", "0", "--support", "0", "--no-book", "--text-file", text); err != nil || !strings.Contains(got, "text                        1 rows") {
		t.Fatalf("--text-file: %v\n%s", err, got)
	}
	out3 := filepath.Join(t.TempDir(), "instructions")
	if got, err := runCLI("data", "synth", "--out", out3, "--scenes", "1", "--docs", "0", "--texts", "0", "--eval-caption", "0",
		"--eval-vqa", "0", "--support", "0", "--no-book", "--instructions", "5"); err != nil || !strings.Contains(got, "instructions                5 rows") {
		t.Fatalf("--instructions: %v\n%s", err, got)
	}
	if bad, err := shards.Verify(filepath.Join(out3, "instructions")); err != nil || len(bad) > 0 {
		t.Fatalf("instructions: %v %v", bad, err)
	}
}

func TestDataSynthMisuse(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--out is required"},
		{[]string{"--out", out, "--size", "8"}, "size 8"},
		{[]string{"--out", out, "--size", "100000"}, "size 100000"},
		{[]string{"--out", out, "--scenes", "-3"}, "scenes = -3"},
		{[]string{"--out", out, "--docs", "20000000"}, "docs = 20000000"},
		{[]string{"--out", out, "--eval-text", "-1"}, "eval-text = -1"},
		{[]string{"--out", out, "--max-objects", "12"}, "max-objects = 12"},
		{[]string{"--out", out, "--tiny-fraction", "2"}, "tiny-fraction"},
		{[]string{"--out", out, "--workers", "-1"}, "--workers"},
		{[]string{"--out", out, "--seed", "-1"}, "invalid argument"},
		{[]string{"--out", out, "extra"}, "takes 0 argument"},
	} {
		_, err := runCLI(append([]string{"data", "synth"}, tc.args...)...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("misuse created the output directory")
	}
	_, err := runCLI("data", "synth", "--out", out, "--no-book", "--text-file", "/no/such/file.txt", "--scenes", "1")
	if err == nil || !strings.Contains(err.Error(), "/no/such/file.txt") {
		t.Errorf("missing text file: %v", err)
	}
}
