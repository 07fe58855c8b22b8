package experiments

// LoadResolved reads a run directory's config.resolved.yaml, the config a
// run was trained with, for commands that read a finished run (mmablate
// eval). The file lists every key and is decoded over a zero Config, so a
// text-only model stays text-only; errors name the file, line and key
// path, as Load's do.
func LoadResolved(path string) (Config, error) { return loadResolved(path) }

// MaxImages is the image budget of the model that c trains: the batch's
// packed sequences times the image slots of each (0 for a text-only
// model). A model built to evaluate the run needs the same budget, as its
// shapes follow from it.
func (c Config) MaxImages() int {
	return c.Data.Packing.BatchSize * c.Data.Packing.ImagesPerSeq()
}
