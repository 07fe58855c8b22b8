package main

import (
	"io"
	"os"
	"strings"

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
