package mixer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/mmablate/mmablate/data"
)

// Mixer draws samples from its sources in the configured ratio and packs
// them into Batches. It is used by one goroutine.
type Mixer struct {
	cfg    Config
	names  []string
	srcs   []*source
	sched  schedule
	samp   sampler
	pcg    *rand.PCG
	rng    *rand.Rand
	pack   packer
	batch  Batch
	step   int64
	cur    int // random mode: the source whose doc is being packed, -1 when none
	weight []float64
	p      []float64
	active []bool
	counts []int
	rowSrc []int

	padTokens, tokens int64
	lastPadding       float64
	started, done     bool
	err               error // sticky: a failed stream or a sample that cannot fit
}

// source is one stream of the mixture and its bookkeeping.
type source struct {
	name     string
	cfg      Source
	stream   data.Stream
	stopped  bool
	inEpoch  int64 // samples drawn in the current epoch
	counters Counters
	pend     *doc       // drawn and partly packed; nil when none
	before   data.State // the stream's State before pend was drawn
	buf      doc        // pend points here; its buffers are reused
	redraw   *Pending   // set by Restore: draw this sample again on the first Next
}

// Counters are what a source has given so far, for training metrics.
type Counters struct {
	Samples int64 `json:"samples"`
	Tokens  int64 `json:"tokens"` // sequence positions its documents take (specials and placeholders included)
	Images  int64 `json:"images"`
	Epochs  int   `json:"epochs"` // epochs finished
}

// Stats is a snapshot of the mixer's counters.
type Stats struct {
	Step    int64               // batches produced
	Sources map[string]Counters // by source name
	Stopped []string            // sources that left the mixture (exhausted: stop)
	// PadTokens and Tokens count padding and all positions over every
	// batch; LastPadding is the last batch's padding fraction.
	PadTokens, Tokens int64
	LastPadding       float64
	// Skipped counts the rows each source's stream dropped with
	// on_error: skip, by reason (sources that skipped nothing are absent).
	Skipped map[string]data.SkipCounts `json:",omitempty"`
}

// PaddingFraction is the share of all positions so far that are padding.
func (s Stats) PaddingFraction() float64 {
	if s.Tokens == 0 {
		return 0
	}
	return float64(s.PadTokens) / float64(s.Tokens)
}

// New builds a Mixer over opened streams, one per source name of cfg,
// each fresh or to be positioned by Restore. The Mixer owns the streams:
// Close closes them.
func New(cfg Config, streams map[string]data.Stream, sp Specials) (*Mixer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := sp.check(); err != nil {
		return nil, fmt.Errorf("mixer: %w", err)
	}
	cfg = cfg.withDefaults()
	names := cfg.names()
	for _, n := range names {
		if streams[n] == nil {
			return nil, fmt.Errorf("%s.sources.%s: no stream was opened for it", KeyPrefix, n)
		}
	}
	for n := range streams {
		if _, ok := cfg.Sources[n]; !ok {
			return nil, fmt.Errorf("mixer: a stream was given for %q, which %s.sources does not name (sources: %s)", n, KeyPrefix, strings.Join(names, ", "))
		}
	}
	k := len(names)
	pk := cfg.Packing
	pcg := rand.NewPCG(cfg.Seed, cfg.Seed^0x6d69786572) // "mixer"
	m := &Mixer{cfg: cfg, names: names, sched: newSchedule(cfg, names), samp: sampler{credit: make([]float64, k)},
		pcg: pcg, rng: rand.New(pcg), pack: newPacker(pk, sp),
		batch: newBatch(pk.BatchSize, pk.SeqLen, pk.ImagesPerSeq(), pk.Resolution, sp.Image), cur: -1,
		weight: make([]float64, k), p: make([]float64, k), active: make([]bool, k), counts: make([]int, k),
		rowSrc: make([]int, pk.BatchSize)}
	for _, n := range names {
		m.srcs = append(m.srcs, &source{name: n, cfg: cfg.Sources[n], stream: streams[n]})
	}
	return m, nil
}

// Next returns the next batch, valid until the following call. After every
// source stopped (exhausted: stop) it returns the last, padded, batch and
// then io.EOF. Errors name the source, and the sample and config key where
// one is at fault. Any other error than io.EOF, a cancelled ctx included,
// leaves a batch half packed, so it is sticky: continue from the last
// State in a new Mixer.
func (m *Mixer) Next(ctx context.Context) (*Batch, error) {
	if m.err != nil {
		return nil, m.err
	}
	if m.done {
		return nil, io.EOF
	}
	b, err := m.next(ctx)
	if err != nil && err != io.EOF {
		m.err = err
	}
	return b, err
}

func (m *Mixer) next(ctx context.Context) (*Batch, error) {
	if !m.started {
		if err := m.redraw(ctx); err != nil {
			return nil, err
		}
		m.started = true
	}
	b := &m.batch
	b.Images, b.NumImages = b.Images[:0], 0
	if !m.weights() {
		m.done = true
		return nil, io.EOF
	}
	stratified := m.cfg.Sampling == SamplingStratified
	if stratified {
		m.samp.split(m.p, b.B, m.counts)
		m.assignRows(0)
	}
	pad, filled := 0, false
	for r := range b.B {
		w := row{r: r}
		for w.pos < b.T {
			var d *doc
			var err error
			if stratified {
				d, err = m.stratifiedDoc(ctx, r)
			} else {
				d, err = m.randomDoc(ctx)
			}
			if err != nil {
				return nil, err
			}
			if d == nil {
				break
			}
			n := m.pack.place(b, &w, d)
			if n == 0 {
				// layout refuses every sample an empty sequence cannot
				// take; this guard turns a broken invariant into an error
				// instead of an endless loop of empty rows.
				if w.pos == 0 {
					return nil, fmt.Errorf("mixer: sample %q does not fit an empty sequence (%s.packing)", d.id, KeyPrefix)
				}
				break
			}
			filled = true
			if d.done() {
				m.finish(d)
			}
		}
		pad += m.pack.pad(b, &w)
	}
	if !filled {
		m.done = true
		return nil, io.EOF
	}
	m.step++
	m.padTokens += int64(pad)
	m.tokens += int64(b.B * b.T)
	m.lastPadding = float64(pad) / float64(b.B*b.T)
	return b, nil
}

// finish forgets a fully packed doc.
func (m *Mixer) finish(d *doc) {
	for i, s := range m.srcs {
		if s.pend == d {
			s.pend = nil
			if m.cur == i {
				m.cur = -1
			}
		}
	}
}

// weights sets m.weight, m.active and m.p for the current step; false
// when every source has stopped.
func (m *Mixer) weights() bool {
	m.sched.at(m.step, m.weight)
	for i, s := range m.srcs {
		m.active[i] = !s.stopped
	}
	return normalise(m.weight, m.active, m.p)
}

// assignRows gives rows from..B-1 to sources by m.counts, in source order.
func (m *Mixer) assignRows(from int) {
	r := from
	for i, c := range m.counts {
		for range c {
			m.rowSrc[r] = i
			r++
		}
	}
}

// randomDoc returns the doc being packed, or draws the next sample.
func (m *Mixer) randomDoc(ctx context.Context) (*doc, error) {
	if m.cur >= 0 {
		return m.srcs[m.cur].pend, nil
	}
	if !slices.Contains(m.active, true) {
		return nil, nil
	}
	for {
		i := m.samp.pick(m.p, m.rng)
		d, err := m.draw(ctx, i)
		if err != nil || d != nil {
			m.cur = i
			return d, err
		}
		m.samp.remove(i, m.active)
		if !m.weights() {
			return nil, nil // the rest of the batch is padding
		}
	}
}

// stratifiedDoc returns the next doc for row r from the row's source. When
// that source stops, the row ends and the source's later rows in this
// batch are split among the sources left.
func (m *Mixer) stratifiedDoc(ctx context.Context, r int) (*doc, error) {
	i := m.rowSrc[r]
	if m.srcs[i].stopped {
		return nil, nil
	}
	if d := m.srcs[i].pend; d != nil {
		return d, nil
	}
	d, err := m.draw(ctx, i)
	if err != nil || d != nil {
		return d, err
	}
	m.samp.remove(i, m.active)
	orphans := 0
	for _, s := range m.rowSrc[r+1:] {
		if s == i {
			orphans++
		}
	}
	if !m.weights() || orphans == 0 {
		return nil, nil
	}
	// Rows are in source order, so the orphans are the rows after r up to
	// the next source's first; shift the later sources' rows to make room.
	rest := slices.Clone(m.rowSrc[r+1:])
	rest = slices.DeleteFunc(rest, func(s int) bool { return s == i })
	m.samp.split(m.p, orphans, m.counts)
	for _, s := range rest {
		m.counts[s]++
	}
	m.assignRows(r + 1)
	return nil, nil
}

// draw takes the next sample of source i and lays it out as its pending
// doc, applying the source's exhausted policy at an epoch's end. It
// returns nil, nil when the source stops.
func (m *Mixer) draw(ctx context.Context, i int) (*doc, error) {
	s := m.srcs[i]
	for {
		before := s.stream.State()
		smp, err := s.stream.Next(ctx)
		if err == io.EOF {
			if s.inEpoch == 0 {
				return nil, fmt.Errorf("%s.sources.%s: the stream gave no samples in epoch %d: the source is empty", KeyPrefix, s.name, s.counters.Epochs)
			}
			s.counters.Epochs++
			s.inEpoch = 0
			if s.cfg.Exhausted == ExhaustedStop {
				s.stopped = true
				return nil, nil
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s.sources.%s: %w", KeyPrefix, s.name, err)
		}
		s.inEpoch++
		if err := m.pack.layout(&s.buf, smp, s.name); err != nil {
			return nil, err
		}
		s.before, s.pend = before, &s.buf
		s.counters.Samples++
		s.counters.Tokens += int64(len(s.buf.tokens))
		s.counters.Images += int64(len(s.buf.images))
		return s.pend, nil
	}
}

// Stats returns the counters so far.
func (m *Mixer) Stats() Stats {
	st := Stats{Step: m.step, Sources: map[string]Counters{}, PadTokens: m.padTokens, Tokens: m.tokens, LastPadding: m.lastPadding}
	for _, s := range m.srcs {
		st.Sources[s.name] = s.counters
		if sk := s.stream.State().Skipped; len(sk) > 0 {
			if st.Skipped == nil {
				st.Skipped = map[string]data.SkipCounts{}
			}
			st.Skipped[s.name] = sk
		}
		if s.stopped {
			st.Stopped = append(st.Stopped, s.name)
		}
	}
	return st
}

// Close closes every stream.
func (m *Mixer) Close() error {
	var errs []error
	for _, s := range m.srcs {
		if err := s.stream.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s.sources.%s: close: %w", KeyPrefix, s.name, err))
		}
	}
	return errors.Join(errs...)
}
