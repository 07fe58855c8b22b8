package main

import (
	"fmt"

	"github.com/mmablate/mmablate/data/shards"
	"github.com/spf13/cobra"
)

func newDataVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check a dataset directory against its manifest.json",
		Long: `Verify reads DIR/manifest.json and checks every shard it lists: the file
exists, has the listed size and sha256, and its Parquet footer holds the
listed rows and row groups in the canonical schema. It also reports any
.parquet file in DIR that the manifest does not list, and a schema version
this build does not write.

It prints "ok: N shards, R rows" when everything matches. Otherwise it prints
one line per mismatch, naming the file, what differs, and the expected and
found values, and exits with status 1. A manifest that cannot be read (missing,
not JSON, names outside DIR, totals that do not add up) is an error, also
status 1. Verify reads every byte of every shard, so it takes about as long as
copying the dataset.

Example:

  $ mmablate data verify data/shapes/captions
  ok: 4 shards, 20000 rows

  $ mmablate data verify data/broken
  shard-00001.parquet: sha256: expected 9f86d081…, got 1b4f0e98…
  shard-00003.parquet: file: expected a shard listed in manifest.json, got no such file
  mmablate: data/broken: 2 mismatch(es) with manifest.json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			m, err := shards.LoadManifest(dir)
			if err != nil {
				return err
			}
			mismatches, err := shards.Verify(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, mm := range mismatches {
				fmt.Fprintln(out, mm)
			}
			if len(mismatches) > 0 {
				return fmt.Errorf("%s: %d mismatch(es) with %s", dir, len(mismatches), shards.ManifestName)
			}
			fmt.Fprintf(out, "ok: %d shards, %d rows\n", len(m.Shards), m.Rows)
			return nil
		},
	}
}
