package mixer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/mmablate/mmablate/data"
)

// StateVersion is written into every State; Restore refuses others.
const StateVersion = 1

// State is everything a Mixer needs to continue with exactly the batches
// it would have produced, serialised as JSON in training checkpoints:
//
//	{"version": 1, "sampling": "random", "step": 1200, "rng": "…",
//	 "sources": {"caption": {"stream": {"seed": 1, "epoch": 0, "consumed": 4810, …},
//	   "credit": 0.35, "in_epoch": 4811,
//	   "pending": {"id": "cc3m-000481", "offset": 70, "images": 1},
//	   "counters": {"samples": 4811, "tokens": 512840, "images": 4811, "epochs": 0}}, …}}
//
// A partly packed sample is not stored: its source's stream state is the
// one before that sample was drawn, and Pending says how much of it was
// packed, so the restored stream yields it again and packing resumes at
// the same token.
type State struct {
	Version  int                    `json:"version"`
	Sampling string                 `json:"sampling"`
	Step     int64                  `json:"step"`
	RNG      []byte                 `json:"rng"` // the sampler's PCG, MarshalBinary
	Done     bool                   `json:"done,omitempty"`
	Sources  map[string]SourceState `json:"sources"`
	// PadTokens and Tokens keep the padding statistics across a resume.
	PadTokens int64 `json:"pad_tokens"`
	Tokens    int64 `json:"tokens"`
}

// SourceState is one source's part of State.
type SourceState struct {
	Stream   data.State `json:"stream"`
	Stopped  bool       `json:"stopped,omitempty"`
	Credit   float64    `json:"credit"`   // the sampler's deficit, or the stratified carried remainder
	InEpoch  int64      `json:"in_epoch"` // samples drawn in the current epoch
	Pending  *Pending   `json:"pending,omitempty"`
	Counters Counters   `json:"counters"`
}

// Pending is the partly packed sample of a source.
type Pending struct {
	ID     string `json:"id"`
	Offset int    `json:"offset"` // tokens already packed (of BOS, segments, EndOfChunk)
	Images int    `json:"images"` // images already packed
}

// State returns the position after the last batch Next returned.
func (m *Mixer) State() (State, error) {
	if m.err != nil {
		return State{}, fmt.Errorf("mixer: state after a failed Next: %w", m.err)
	}
	rng, err := m.pcg.MarshalBinary()
	if err != nil {
		return State{}, fmt.Errorf("mixer: state: %w", err)
	}
	st := State{Version: StateVersion, Sampling: m.cfg.Sampling, Step: m.step, RNG: rng, Done: m.done,
		Sources: map[string]SourceState{}, PadTokens: m.padTokens, Tokens: m.tokens}
	for i, s := range m.srcs {
		ss := SourceState{Stopped: s.stopped, Credit: m.samp.credit[i], InEpoch: s.inEpoch, Counters: s.counters}
		switch {
		case s.pend != nil:
			ss.Stream = s.before
			ss.Pending = &Pending{ID: s.pend.id, Offset: s.pend.off, Images: s.pend.img}
		case s.redraw != nil: // restored, not yet drawn again
			ss.Stream, ss.Pending = s.before, s.redraw
		default:
			ss.Stream = s.stream.State()
		}
		st.Sources[s.name] = ss
	}
	return st, nil
}

// Restore positions a Mixer built over fresh streams at st, before the
// first Next. It restores every stream from its state; the partly packed
// samples are drawn again by the first Next, which fails if one differs.
func (m *Mixer) Restore(st State) error {
	if m.started {
		return errors.New("mixer: Restore after Next: restore a fresh mixer")
	}
	if st.Version != StateVersion {
		return fmt.Errorf("mixer: restore: state version %d, this build reads %d", st.Version, StateVersion)
	}
	if st.Sampling != m.cfg.Sampling {
		return fmt.Errorf("mixer: restore: state was taken with %s.sampling %q, the config has %q", KeyPrefix, st.Sampling, m.cfg.Sampling)
	}
	if got := slices.Sorted(maps.Keys(st.Sources)); !slices.Equal(got, m.names) {
		return fmt.Errorf("mixer: restore: state has sources %s, %s.sources has %s", strings.Join(got, ", "), KeyPrefix, strings.Join(m.names, ", "))
	}
	if st.Step < 0 {
		return fmt.Errorf("mixer: restore: negative step %d", st.Step)
	}
	if err := m.pcg.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("mixer: restore: rng: %w", err)
	}
	cur := -1
	for i, s := range m.srcs {
		ss := st.Sources[s.name]
		if err := s.stream.Restore(ss.Stream); err != nil {
			return fmt.Errorf("mixer: restore %s.sources.%s: %w", KeyPrefix, s.name, err)
		}
		if math.IsNaN(ss.Credit) || math.IsInf(ss.Credit, 0) {
			return fmt.Errorf("mixer: restore %s.sources.%s: credit %v is not finite", KeyPrefix, s.name, ss.Credit)
		}
		if p := ss.Pending; p != nil {
			if p.Offset < 0 || p.Images < 0 {
				return fmt.Errorf("mixer: restore %s.sources.%s: pending sample %q at offset %d, image %d", KeyPrefix, s.name, p.ID, p.Offset, p.Images)
			}
			if cur >= 0 && m.cfg.Sampling == SamplingRandom {
				return fmt.Errorf("mixer: restore: sources %s and %s both have a pending sample; random sampling packs one at a time", m.names[cur], s.name)
			}
			cur = i
		}
		s.stopped, s.inEpoch, s.counters, s.redraw, s.before = ss.Stopped, ss.InEpoch, ss.Counters, ss.Pending, ss.Stream
		m.samp.credit[i] = ss.Credit
	}
	if m.cfg.Sampling == SamplingRandom {
		m.cur = cur
	}
	m.step, m.done, m.padTokens, m.tokens = st.Step, st.Done, st.PadTokens, st.Tokens
	return nil
}

// redraw draws the restored pending samples again and skips what was
// packed of them before the checkpoint.
func (m *Mixer) redraw(ctx context.Context) error {
	for _, s := range m.srcs {
		p := s.redraw
		if p == nil {
			continue
		}
		smp, err := s.stream.Next(ctx)
		if err != nil {
			return fmt.Errorf("mixer: restore %s.sources.%s: drawing pending sample %q again: %w", KeyPrefix, s.name, p.ID, err)
		}
		if smp.ID != p.ID {
			return fmt.Errorf("mixer: restore %s.sources.%s: the stream gave sample %q where the state has pending %q: the dataset or its order changed", KeyPrefix, s.name, smp.ID, p.ID)
		}
		if err := m.pack.layout(&s.buf, smp, s.name); err != nil {
			return err
		}
		before := 0 // images wholly before the offset; none may straddle it
		for _, at := range s.buf.imageAt {
			if at < p.Offset {
				before++
			}
			if at < p.Offset && p.Offset < at+m.pack.n {
				before = -1
				break
			}
		}
		if p.Offset >= len(s.buf.tokens) || before != p.Images {
			return fmt.Errorf("mixer: restore %s.sources.%s: pending sample %q (%d tokens, %d images) cannot have been packed up to token %d with %d images",
				KeyPrefix, s.name, p.ID, len(s.buf.tokens), len(s.buf.images), p.Offset, p.Images)
		}
		s.buf.off, s.buf.img = p.Offset, p.Images
		s.pend, s.redraw = &s.buf, nil
	}
	return nil
}
