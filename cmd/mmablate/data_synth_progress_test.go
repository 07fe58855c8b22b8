package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/data/shapes"
)

// TestSynthProgressBar checks the terminal line: the shared bar over all
// rows, the percentage, rows, the current split's rows and the rate; at
// most one redraw per redrawEvery except at the last row, which is always
// drawn so the line ends at 100%; each line erases what a longer earlier
// one left; done erases the bar and nothing else.
func TestSynthProgressBar(t *testing.T) {
	var buf, logs bytes.Buffer
	p := newSynthProgress(&buf)
	p.tty = true
	p.log = slog.New(slog.NewTextHandler(&logs, nil))
	p.start = p.start.Add(-1000 * time.Second) // 5 rows in 1000 s: "0 rows/s"
	p.last = p.last.Add(-time.Second)
	p.update(shapes.Progress{Split: "eval/caption/support", SplitDone: 5, SplitRows: 10, Done: 5, TotalRows: 20})
	want := "\rsynth [#####...............]  25.0%  5/20 rows  eval/caption/support 5/10  0 rows/s\033[K"
	if got := buf.String(); got != want {
		t.Fatalf("a quarter of the way:\n got %q\nwant %q", got, want)
	}
	buf.Reset()
	p.update(shapes.Progress{Split: "eval/caption/support", SplitDone: 6, SplitRows: 10, Done: 6, TotalRows: 20})
	if buf.Len() != 0 {
		t.Fatalf("redrawn within %v: %q", p.redrawEvery, buf.String())
	}
	p.update(shapes.Progress{Split: "text", SplitDone: 10, SplitRows: 10, Done: 20, TotalRows: 20})
	want = "\rsynth [####################] 100.0%  20/20 rows  text 10/10  0 rows/s\033[K"
	if got := buf.String(); got != want {
		t.Fatalf("the last row, within the redraw interval:\n got %q\nwant %q", got, want)
	}
	buf.Reset()
	p.done()
	if got := buf.String(); got != "\r\033[K" {
		t.Fatalf("done wrote %q, want the erase-line sequence", got)
	}
	if logs.Len() != 0 {
		t.Fatalf("logged on a terminal: %q", logs.String())
	}
}

// TestSynthProgressLogLines: off a terminal there is no bar and no control
// character; one log line per logEvery names the split, its rows and all
// rows, and done writes nothing.
func TestSynthProgressLogLines(t *testing.T) {
	var buf, logs bytes.Buffer
	p := newSynthProgress(&buf)
	if p.tty {
		t.Fatal("a bytes.Buffer taken for a terminal")
	}
	p.log = slog.New(slog.NewTextHandler(&logs, nil))
	p.start = p.start.Add(-4 * time.Second)
	prog := shapes.Progress{Split: "captions", SplitDone: 40, SplitRows: 50, Done: 40, TotalRows: 80}
	p.update(prog)
	if logs.Len() != 0 {
		t.Fatalf("logged before logEvery: %q", logs.String())
	}
	p.last = p.last.Add(-p.logEvery)
	p.update(prog)
	got := logs.String()
	for _, want := range []string{"msg=\"synth progress\"", "split=captions", "split_rows=40", "of=50", "rows=40", "total=80", "rows_per_s=10"} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %q lacks %q", got, want)
		}
	}
	if strings.Count(got, "\n") != 1 {
		t.Errorf("want one log line, got %q", got)
	}
	logs.Reset()
	prog.SplitDone, prog.Done = 41, 41
	p.update(prog)
	if logs.Len() != 0 {
		t.Fatalf("logged again within logEvery: %q", logs.String())
	}
	p.done()
	if buf.Len() != 0 || strings.ContainsAny(got, "\r\033") {
		t.Fatalf("off a terminal: wrote %q, logged %q", buf.String(), got)
	}
}

// TestDataSynthProgressRedirected: run through the command with stderr
// redirected (not a terminal), synth prints its summary and no bar.
func TestDataSynthProgressRedirected(t *testing.T) {
	out := filepath.Join(t.TempDir(), "shapes")
	got, err := runCLI("data", "synth", "--out", out, "--scenes", "3", "--docs", "1", "--texts", "1",
		"--eval-caption", "1", "--eval-vqa", "1", "--support", "1", "--size", "16", "--no-book")
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if strings.ContainsAny(got, "\r\033") || strings.Contains(got, "synth [") {
		t.Fatalf("redirected output has a progress bar: %q", got)
	}
}
