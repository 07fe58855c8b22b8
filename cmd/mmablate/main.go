// Command mmablate runs MM1-style multimodal pre-training ablations: it
// prepares datasets, trains and evaluates small vision-language models,
// expands sweep files into cells, and writes reports.
//
//	mmablate data synth --out data/shapes          # the built-in dataset
//	mmablate data inspect data/shapes/captions     # what a dataset holds
//	mmablate sweep run ablations/examples/quickstart.yaml --out runs/quickstart
//	mmablate report runs/quickstart
//
// Run `mmablate COMMAND --help` for each command's manual.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mmablate:", err)
		var ue *usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
