package experiments

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncoderOnFirstUse: with an encoder: section, the first run that
// needs model.vision.init pretrains it and later runs leave it alone;
// without one, a missing file is an error that says how to make it.
func TestEncoderOnFirstUse(t *testing.T) {
	cfg := encoderConfig(t)
	if err := prepareShapes(context.Background(), cfg, quietLog()); err != nil { // as Train does first
		t.Fatal(err)
	}
	init := filepath.Join(t.TempDir(), "enc", "vit.safetensors")
	cfg.Model.Vision.Init = init

	cfg.Encoder = nil
	err := prepareEncoder(context.Background(), cfg, quietLog())
	if err == nil || !strings.Contains(err.Error(), "model.vision.init") || !strings.Contains(err.Error(), "encoder:") {
		t.Fatalf("missing file, no encoder: section: error %v", err)
	}
	if _, err := os.Stat(init); err == nil {
		t.Fatal("a file was made without an encoder: section")
	}

	cfg.Encoder = &EncoderPretrain{Steps: 10, Batch: 4, Seed: 3}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := prepareEncoder(context.Background(), cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(init)
	if err != nil {
		t.Fatalf("the encoder was not made: %v", err)
	}
	st, _ := os.Stat(init)
	// A later run, even with other settings, loads the file as it is.
	cfg.Encoder.Steps = 11
	if err := prepareEncoder(context.Background(), cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(init)
	st2, _ := os.Stat(init)
	if !bytes.Equal(first, again) || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("an existing encoder file was remade")
	}

	noInit := cfg
	v := *cfg.Model.Vision
	v.Init = ""
	noInit.Model.Vision = &v
	if err := noInit.Validate(); err == nil || !strings.Contains(err.Error(), "encoder: needs model.vision.init") {
		t.Fatalf("encoder: without model.vision.init: %v", err)
	}
}

// TestPrepareEncoderLeavesWorld: prepareEncoder pretrains on the world its
// caller prepared and does not check or generate it again (Train runs
// prepareShapes once, first). Shapes parameters that differ from the
// world's make prepareShapes refuse it, so a second preparation fails here.
func TestPrepareEncoderLeavesWorld(t *testing.T) {
	cfg := encoderConfig(t)
	if err := prepareShapes(context.Background(), cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	cfg.Shapes.Scenes++
	if err := prepareShapes(context.Background(), cfg, quietLog()); err == nil {
		t.Fatal("prepareShapes accepted a world of other parameters: the test below proves nothing")
	}
	cfg.Model.Vision.Init = filepath.Join(t.TempDir(), "vit.safetensors")
	cfg.Encoder = &EncoderPretrain{Steps: 2, Batch: 2, Seed: 1}
	if err := prepareEncoder(context.Background(), cfg, quietLog()); err != nil {
		t.Fatalf("prepareEncoder prepared the world again: %v", err)
	}
	if _, err := os.Stat(cfg.Model.Vision.Init); err != nil {
		t.Fatal(err)
	}
}
