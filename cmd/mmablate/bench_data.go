package main

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
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/shards"
	"github.com/mmablate/mmablate/data/stream"
)

// benchDataConfig holds the flags of `bench data` and of its hidden child.
type benchDataConfig struct {
	sizes         string
	dir           string
	jsonOut       bool
	workers       int
	shuffleBuffer int
	resolution    int
	decodeTime    time.Duration
}

func newBenchDataCmd() *cobra.Command {
	var c benchDataConfig
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Measure image decoding and dataset streaming: samples/s, MB/s, peak RSS",
		Long: `bench data measures the data plane on synthetic caption datasets.

It first generates, once, one dataset per --size under --dir: caption shards
(package data/shards, zstd) whose images are deterministic 640×480 JPEG test
photos at quality 85 (images.SyntheticJPEG, 64 distinct images cycled), so the
same flags always give the same bytes. A dataset already present under --dir
(it has a manifest.json) is reused; generation writes to a .tmp directory and
renames it when complete.

Then it prints:

  decode    640×480 JPEG → resize, centre crop, normalise to --resolution, in
            images per second on one core (GOMAXPROCS=1), for the pure-Go
            (stdlib) path and the libjpeg-turbo path (when compiled in); per
            wall-clock second and per second of CPU time, the figure that
            holds up when other work shares the machine;
  stream    each dataset read for one epoch through data/stream with --workers
            decode goroutines and a --shuffle-buffer: samples/s, MB/s of shard
            bytes, and peak resident memory.

Each dataset is streamed in a child process (this binary, re-executed), whose
peak RSS (VmHWM) it reports, so the figure of one size does not include the
memory of another. The reader holds about a row group plus the shuffle
buffer, so peak RSS should stay flat as the dataset grows.

Example:

  mmablate bench data --size 100MB --dir /tmp/mmablate-bench
  mmablate bench data --size 100MB,1GB --json > bench-data.json

Flags:
  --size            comma-separated dataset sizes (decimal units: 100MB, 1GB;
                    binary: 512MiB); default 100MB,1GB
  --dir             where datasets are generated and reused; default
                    $TMPDIR/mmablate-bench-data
  --json            print one JSON object instead of the table
  --workers         decode goroutines while streaming (0: all cores)
  --shuffle-buffer  rows in the stream's shuffle buffer (default 1000)
  --resolution      output side in pixels (default 224)
  --decode-time     how long each decode path is measured (default 3s)`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return runBenchData(cmd.Context(), cmd.OutOrStdout(), c) },
	}
	f := cmd.Flags()
	f.StringVar(&c.sizes, "size", "100MB,1GB", "comma-separated dataset sizes, e.g. 100MB,1GB")
	f.StringVar(&c.dir, "dir", filepath.Join(os.TempDir(), "mmablate-bench-data"), "directory for the generated datasets (reused when present)")
	f.BoolVar(&c.jsonOut, "json", false, "print JSON instead of a table")
	f.IntVar(&c.workers, "workers", 0, "decode goroutines while streaming (0: all cores)")
	f.IntVar(&c.shuffleBuffer, "shuffle-buffer", 1000, "rows in the stream's shuffle buffer")
	f.IntVar(&c.resolution, "resolution", 224, "output image side in pixels")
	f.DurationVar(&c.decodeTime, "decode-time", 3*time.Second, "measuring time of each decode path")
	cmd.AddCommand(newBenchDataStreamCmd())
	return cmd
}

// newBenchDataStreamCmd is the hidden child that streams one dataset and
// prints a streamResult as JSON, so its peak RSS is its own.
func newBenchDataStreamCmd() *cobra.Command {
	var c benchDataConfig
	cmd := &cobra.Command{
		Use:    "stream-child DIR",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := streamOnce(cmd.Context(), args[0], c)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	cmd.Flags().IntVar(&c.workers, "workers", 0, "decode goroutines")
	cmd.Flags().IntVar(&c.shuffleBuffer, "shuffle-buffer", 1000, "shuffle buffer rows")
	cmd.Flags().IntVar(&c.resolution, "resolution", 224, "output image side")
	return cmd
}

type decodeResult struct {
	Path            string  `json:"path"`
	ImagesPerSecond float64 `json:"images_per_second"`
	// ImagesPerCPUSecond divides by the CPU time the process used instead of
	// the wall clock: the per-core figure that holds up on a loaded machine.
	ImagesPerCPUSecond float64 `json:"images_per_cpu_second,omitempty"`
}

type streamResult struct {
	Dataset          string  `json:"dataset"`
	Rows             int64   `json:"rows"`
	Bytes            int64   `json:"bytes"`
	Samples          int64   `json:"samples"`
	Seconds          float64 `json:"seconds"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	MBPerSecond      float64 `json:"mb_per_second"`
	PeakRSSBytes     int64   `json:"peak_rss_bytes"`
}

type benchDataReport struct {
	Resolution    int            `json:"resolution"`
	Workers       int            `json:"workers"`
	ShuffleBuffer int            `json:"shuffle_buffer"`
	Decode        []decodeResult `json:"decode"`
	Stream        []streamResult `json:"stream"`
}

func runBenchData(ctx context.Context, out io.Writer, c benchDataConfig) error {
	var sizes []int64
	for _, s := range strings.Split(c.sizes, ",") {
		n, err := parseSize(strings.TrimSpace(s))
		if err != nil {
			return usagef("--size: %v", err)
		}
		sizes = append(sizes, n)
	}
	if c.resolution <= 0 || c.workers < 0 || c.shuffleBuffer < 0 || c.decodeTime <= 0 {
		return usagef("--resolution and --decode-time must be positive, --workers and --shuffle-buffer not negative")
	}
	if c.workers == 0 {
		c.workers = runtime.GOMAXPROCS(0)
	}
	rep := benchDataReport{Resolution: c.resolution, Workers: c.workers, ShuffleBuffer: c.shuffleBuffer}

	jpg := images.SyntheticJPEG(640, 480, 0, 85)
	opt := images.DefaultOptions(c.resolution)
	for _, fast := range []bool{false, true} {
		name := "stdlib"
		if fast {
			name = "libjpeg-turbo"
			if !images.FastPathAvailable() {
				slog.Info("bench data: libjpeg-turbo path not compiled in; skipping it")
				continue
			}
		}
		// One core: the figure is per core whatever the machine.
		prev := runtime.GOMAXPROCS(1)
		rate, err := images.BenchDecode(ctx, jpg, opt, fast, c.decodeTime)
		runtime.GOMAXPROCS(prev)
		if err != nil {
			return err
		}
		rep.Decode = append(rep.Decode, decodeResult{Path: name, ImagesPerSecond: rate.PerSecond, ImagesPerCPUSecond: rate.PerCPUSecond})
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench data: finding this binary to re-run it: %w", err)
	}
	for _, size := range sizes {
		dir, err := ensureBenchDataset(ctx, c.dir, size)
		if err != nil {
			return err
		}
		res, err := streamInChild(ctx, self, dir, c)
		if err != nil {
			return err
		}
		res.Dataset = formatSize(size)
		rep.Stream = append(rep.Stream, res)
	}

	if c.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printBenchData(out, rep)
}

// printBenchData writes rep as the table `bench data` prints.
func printBenchData(out io.Writer, rep benchDataReport) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "decode 640×480 JPEG → %d px, one core\timages/s\timages/cpu-s\t\n", rep.Resolution)
	for _, d := range rep.Decode {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t\n", d.Path, d.ImagesPerSecond, d.ImagesPerCPUSecond)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "stream (%d workers, shuffle buffer %d)\trows\tMB\tsamples/s\tMB/s\tpeak RSS MiB\t\n", rep.Workers, rep.ShuffleBuffer)
	for _, s := range rep.Stream {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", s.Dataset, s.Rows, float64(s.Bytes)/1e6,
			s.SamplesPerSecond, s.MBPerSecond, float64(s.PeakRSSBytes)/(1<<20))
	}
	return tw.Flush()
}

// streamInChild re-executes this binary to stream dir once.
func streamInChild(ctx context.Context, self, dir string, c benchDataConfig) (streamResult, error) {
	var res streamResult
	cmd := exec.CommandContext(ctx, self, "bench", "data", "stream-child", dir,
		"--workers", strconv.Itoa(c.workers), "--shuffle-buffer", strconv.Itoa(c.shuffleBuffer),
		"--resolution", strconv.Itoa(c.resolution))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	slog.Info("bench data: streaming", "dataset", dir)
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("bench data: streaming %s in a child process: %w", dir, err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return res, fmt.Errorf("bench data: reading the child's result for %s: %w", dir, err)
	}
	return res, nil
}

// streamOnce reads one epoch of dir and measures it, in the child.
func streamOnce(ctx context.Context, dir string, c benchDataConfig) (streamResult, error) {
	m, err := shards.LoadManifest(dir)
	if err != nil {
		return streamResult{}, err
	}
	res := streamResult{Rows: m.Rows}
	for _, s := range m.Shards {
		res.Bytes += s.Bytes
	}
	r, err := stream.Open(ctx, stream.Options{Paths: []string{dir}, Image: images.DefaultOptions(c.resolution),
		Seed: 1, ShuffleBuffer: c.shuffleBuffer, Workers: c.workers, OnError: data.OnErrorFail})
	if err != nil {
		return res, err
	}
	defer r.Close()
	start := time.Now()
	for {
		_, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		res.Samples++
	}
	res.Seconds = time.Since(start).Seconds()
	res.SamplesPerSecond = float64(res.Samples) / res.Seconds
	res.MBPerSecond = float64(res.Bytes) / 1e6 / res.Seconds
	if res.PeakRSSBytes, err = peakRSS(); err != nil {
		return res, err
	}
	return res, nil
}

// peakRSS reads this process's resident-set high-water mark (Linux).
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("bench data: peak RSS needs /proc/self/status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench data: parsing VmHWM %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("bench data: no VmHWM line in /proc/self/status")
}

// Benchmark datasets: 64 distinct photos, cycled so that neighbouring rows
// differ (zstd cannot fold them into each other).
const (
	benchImages  = 64
	benchQuality = 85
)

// ensureBenchDataset returns the dataset of about size bytes under root,
// generating it first unless a complete one is there.
func ensureBenchDataset(ctx context.Context, root string, size int64) (string, error) {
	dir := filepath.Join(root, "captions-"+formatSize(size))
	if _, err := shards.LoadManifest(dir); err == nil {
		slog.Info("bench data: reusing dataset", "dir", dir)
		return dir, nil
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	pool := make([][]byte, benchImages)
	var poolBytes int64
	for i := range pool {
		pool[i] = images.SyntheticJPEG(640, 480, uint64(i), benchQuality)
		poolBytes += int64(len(pool[i]))
	}
	rows := max(1, size*benchImages/poolBytes)
	w, err := shards.NewWriter(tmp, shards.Options{CreatedBy: "mmablate bench data"})
	if err != nil {
		return "", err
	}
	progress := newProgress("generating "+dir, rows)
	for i := range rows {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return "", err
		}
		rec := &data.Record{ID: fmt.Sprintf("bench-%08d", i), Kind: data.KindCaption,
			Texts:  []*string{nil, data.Str(fmt.Sprintf("synthetic photo %d of %d", i%benchImages, benchImages))},
			Images: []*data.ImageRef{{Bytes: pool[i%benchImages], Path: fmt.Sprintf("%08d.jpg", i)}, nil}, Meta: "{}"}
		if err := w.Write(rec); err != nil {
			w.Abort()
			return "", err
		}
		progress(i + 1)
	}
	if _, err := w.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// newProgress reports n of total: a bar on a terminal, a log line per 10%
// otherwise.
func newProgress(what string, total int64) func(n int64) {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return func(n int64) {
			if n%100 == 0 || n == total {
				fmt.Fprintf(os.Stderr, "\r%s: %3d%%", what, n*100/total)
				if n == total {
					fmt.Fprintln(os.Stderr)
				}
			}
		}
	}
	return func(n int64) {
		if n*10/total != (n-1)*10/total {
			slog.Info("bench data: "+what, "rows", n, "of", total)
		}
	}
}

// parseSize reads sizes like 100MB, 1GB (powers of 1000) and 512MiB
// (powers of 1024).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v <= 0 || v*float64(u.mult) > 1<<50 {
				return 0, fmt.Errorf("size %q: want a positive number and a unit, e.g. 100MB or 1GB", s)
			}
			return int64(v * float64(u.mult)), nil
		}
	}
	return 0, fmt.Errorf("size %q: missing unit (B, KB, MB, GB, KiB, MiB, GiB)", s)
}

// formatSize names a size the way --size spells it, for directory names.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}
