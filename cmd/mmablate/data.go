package main

import "github.com/spf13/cobra"

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Prepare, inspect, import and verify Parquet datasets",
		Long: `Datasets are directories of Parquet shards plus a manifest.json (see the
package doc of data for the canonical schema). The data commands also read
the layouts people already have: hf-image, img2dataset, obelics, text.

  mmablate data inspect PATH [--json]        what a file or dataset holds
  mmablate data import --layout L SRC... --out DIR
  mmablate data verify DIR                   manifest against the files
  mmablate data synth --out DIR              the built-in shapes world`,
	}
	cmd.AddCommand(newDataVerifyCmd(), newDataInspectCmd(), newDataImportCmd(), newDataSynthCmd())
	return cmd
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and memory of the data plane and the engine",
	}
	cmd.AddCommand(newBenchDataCmd(), newBenchTrainCmd())
	return cmd
}
