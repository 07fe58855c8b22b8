package experiments

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// On a terminal (a Bar writer): one line redrawn in place with the step,
// loss, tokens/s and an ETA extrapolated from the steps run so far, and
// no log lines.
func TestProgressBar(t *testing.T) {
	var bar, logs bytes.Buffer
	p := newProgress(&bar, slog.New(slog.NewTextHandler(&logs, nil)), 0, 10, 100)
	p.t0 = time.Now().Add(-10 * time.Second) // 5 steps in 10 s: 2 s a step, 5 steps left
	p.update(5, 2.5)
	got := bar.String()
	for _, want := range []string{"\r\033[K", "step 5/10", "[===============               ]", " 50%", "loss 2.5000", " tok/s", "ETA 10s"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}
	if tps := 100.0 * 5 / 10; !strings.Contains(got, " 50 tok/s") {
		t.Errorf("bar %q: want %.0f tok/s (100 tokens a step, 5 steps in 10 s)", got, tps)
	}
	bar.Reset()
	p.update(6, 2.4) // within 200 ms of the last draw: not redrawn
	if bar.Len() != 0 {
		t.Errorf("redrawn within 200 ms: %q", bar.String())
	}
	p.update(10, 2.0) // the last step is always drawn
	if !strings.Contains(bar.String(), "step 10/10") || !strings.Contains(bar.String(), "100%") {
		t.Errorf("last step not drawn: %q", bar.String())
	}
	p.logged(10, 2.0, 50)
	if logs.Len() != 0 {
		t.Errorf("log lines beside the bar: %q", logs.String())
	}
	bar.Reset()
	p.clear()
	if bar.String() != "\r\033[K" {
		t.Errorf("clear wrote %q, want the erase-line sequence", bar.String())
	}
}

// Not on a terminal (no Bar): a plain log line for each metrics line, no
// control characters, and nothing on update.
func TestProgressLogLines(t *testing.T) {
	var logs bytes.Buffer
	p := newProgress(nil, slog.New(slog.NewTextHandler(&logs, nil)), 20, 40, 100)
	p.t0 = time.Now().Add(-4 * time.Second) // resumed at 20: 10 steps in 4 s, 10 left
	p.update(30, 1.25)
	if logs.Len() != 0 {
		t.Fatalf("update logged %q", logs.String())
	}
	p.logged(30, 1.25, 250)
	got := logs.String()
	for _, want := range []string{"msg=train", "step=30", "of=40", "loss=1.2500", "tokens_per_s=250", "eta=4s"} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %q lacks %q", got, want)
		}
	}
	if strings.ContainsAny(got, "\r\033") {
		t.Errorf("log line %q has terminal control characters", got)
	}
	p.clear() // no bar: nothing to erase, and no panic
}
