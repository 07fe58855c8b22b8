package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmablate/mmablate/data/shards"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100MB", 100e6, true},
		{"1GB", 1e9, true},
		{"1.5GB", 1.5e9, true},
		{"512MiB", 512 << 20, true},
		{"64KiB", 64 << 10, true},
		{"10B", 10, true},
		{"100", 0, false},
		{"MB", 0, false},
		{"-1MB", 0, false},
		{"0GB", 0, false},
		{"1e9GB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for in, want := range map[int64]string{100e6: "100MB", 1e9: "1GB", 1500: "1500B", 2000: "2KB"} {
		if got := formatSize(in); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestBenchDatasetIsGeneratedOnceAndStreamed(t *testing.T) {
	root := t.TempDir()
	stale := filepath.Join(root, "captions-400KB.tmp")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := ensureBenchDataset(context.Background(), root, 400e3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale %s is still there", stale)
	}
	m, err := shards.LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows < 4 || m.Shards[0].Bytes < 300e3 || m.Shards[0].Bytes > 600e3 {
		t.Fatalf("400KB dataset has %d rows in %d bytes", m.Rows, m.Shards[0].Bytes)
	}
	info, _ := os.Stat(filepath.Join(dir, shards.ManifestName))
	again, err := ensureBenchDataset(context.Background(), root, 400e3)
	if err != nil || again != dir {
		t.Fatalf("second call: %q, %v", again, err)
	}
	if info2, _ := os.Stat(filepath.Join(dir, shards.ManifestName)); !info2.ModTime().Equal(info.ModTime()) {
		t.Error("the dataset was generated again instead of reused")
	}

	res, err := streamOnce(context.Background(), dir, benchDataConfig{workers: 2, shuffleBuffer: 3, resolution: 32})
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != m.Rows || res.Rows != m.Rows || res.SamplesPerSecond <= 0 || res.PeakRSSBytes < 1<<20 {
		t.Fatalf("streamOnce = %+v, want every one of %d rows and a peak RSS", res, m.Rows)
	}
}

// TestPrintBenchData pins the table `bench data` prints (UPDATE_GOLDEN=1
// rewrites testdata/bench-data.golden).
func TestPrintBenchData(t *testing.T) {
	rep := benchDataReport{Resolution: 224, Workers: 2, ShuffleBuffer: 1000,
		Decode: []decodeResult{{"stdlib", 55.25, 128.7}, {"libjpeg-turbo", 360.74, 696.9}},
		Stream: []streamResult{
			{Dataset: "100MB", Rows: 2181, Bytes: 100_100_000, SamplesPerSecond: 306.6, MBPerSecond: 14.07, PeakRSSBytes: 201 << 20},
			{Dataset: "1GB", Rows: 21815, Bytes: 1_000_800_000, SamplesPerSecond: 410, MBPerSecond: 18.8, PeakRSSBytes: 215 << 20},
		}}
	var buf bytes.Buffer
	if err := printBenchData(&buf, rep); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "bench-data.golden", buf.String())
}
