package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// The long-running data commands (import, synth) report progress the same
// way: a bar redrawn in place when stderr is a terminal, a log line every
// few seconds when it is not, so that redirected logs stay readable.

// isTerminal says whether w is a terminal, where a redrawn line makes
// sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar draws frac (0..1) of a width-cell bar: [#######.......].
func progressBar(frac float64, width int) string {
	n := int(min(max(frac, 0), 1) * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// progressLine is the reporting import and synth share: the bar redrawn at
// most every redrawEvery on a terminal (and always at the last row, so the
// final line says 100%), a log line every logEvery otherwise.
type progressLine struct {
	w           io.Writer
	log         *slog.Logger
	tty         bool
	start       time.Time
	last        time.Time
	redrawEvery time.Duration
	logEvery    time.Duration
	shown       bool
}

func newProgressLine(w io.Writer) progressLine {
	now := time.Now()
	return progressLine{w: w, log: slog.Default(), tty: isTerminal(w), start: now, last: now,
		redrawEvery: 200 * time.Millisecond, logEvery: 10 * time.Second}
}

// due says, with rows of total done, whether to redraw the bar or to log a
// line now, and the rows per second so far.
func (p *progressLine) due(rows, total int64) (draw, log bool, rate float64) {
	now := time.Now()
	switch {
	case p.tty && (now.Sub(p.last) >= p.redrawEvery || rows == total):
		draw = true
	case !p.tty && now.Sub(p.last) >= p.logEvery:
		log = true
	default:
		return false, false, 0
	}
	p.last = now
	return draw, log, float64(rows) / max(now.Sub(p.start).Seconds(), 1e-3)
}

// draw rewrites the line; \033[K erases what a longer earlier line left
// (a longer split name, a rate with more digits).
func (p *progressLine) draw(format string, args ...any) {
	p.shown = true
	fmt.Fprintf(p.w, "\r"+format+"\033[K", args...)
}

// done erases the bar, so the summary that follows starts a clean line.
func (p *progressLine) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
