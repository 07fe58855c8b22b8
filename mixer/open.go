package mixer

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/stream"
)

// OpenStreams opens one data/stream Reader per source of a valid cfg,
// over the source's paths, with opts for everything else; a zero
// opts.Image takes CLIP's normalisation at data.packing.resolution. Each source's
// seed is opts.Seed mixed with a hash of its name, so sources are shuffled
// independently and adding a source changes no other's order. On failure
// the streams already opened are closed.
func OpenStreams(ctx context.Context, cfg Config, opts stream.Options) (map[string]data.Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r := cfg.Packing.Resolution; r > 0 {
		switch opts.Image.Resolution {
		case 0:
			opts.Image = images.DefaultOptions(r)
		case r:
		default:
			return nil, fmt.Errorf("%s.packing.resolution is %d but the streams would decode images to %d", KeyPrefix, r, opts.Image.Resolution)
		}
	}
	out := map[string]data.Stream{}
	for _, name := range cfg.names() {
		o := opts
		src := cfg.Sources[name]
		o.Paths = src.Paths
		o.Layout, o.OnError = src.ReadOptions()
		h := fnv.New64a()
		h.Write([]byte(name))
		o.Seed = opts.Seed ^ int64(h.Sum64()>>1)
		r, err := stream.Open(ctx, o)
		if err != nil {
			for _, s := range out {
				s.Close()
			}
			return nil, fmt.Errorf("%s.sources.%s.paths: %w", KeyPrefix, name, err)
		}
		out[name] = r
	}
	return out, nil
}

// ReadOptions are the layout, columns and bad-row policy of a valid
// source, as data/stream and the tokenizer trainer take them.
func (s Source) ReadOptions() (layouts.Options, data.OnError) {
	l, _ := layouts.ParseLayout(s.Layout) // valid: Config.Validate checks it
	onError := data.OnErrorFail
	if s.OnError != "" {
		onError = data.OnError(s.OnError)
	}
	return layouts.Options{Layout: l, CaptionColumn: s.CaptionColumn, ImageColumn: s.ImageColumn, TextColumn: s.TextColumn}, onError
}
