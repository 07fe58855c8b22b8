package stream

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/mmablate/mmablate/data"
)

// job is one row on its way to Next. The producer queues jobs on order in
// the epoch's order and hands them to the workers; each worker fills the
// job's own out, so Next, reading order, sees results in order whatever
// the workers' timing.
type job struct {
	u   unit
	s   slot
	out chan result // capacity 1: a worker never waits on Next
}

type result struct {
	sample data.Sample
	err    error // a *data.RowError
}

// pipeline is one epoch's producer and workers. In flight at most: the
// shuffle buffer, the row group being read, and 2×workers jobs.
type pipeline struct {
	ctx    context.Context
	cancel context.CancelFunc
	order  chan *job
	wg     sync.WaitGroup
	head   *job  // taken from order, its result not yet received
	err    error // why the producer stopped early; written before order closes
}

func (r *Reader) startEpoch() *pipeline {
	ctx, cancel := context.WithCancel(r.ctx)
	p := &pipeline{ctx: ctx, cancel: cancel, order: make(chan *job, 2*r.cfg.workers)}
	jobs := make(chan *job, r.cfg.workers)
	units := epochUnits(r.files, r.cfg.seed, r.epoch, r.cfg.rank, r.cfg.world)
	rng := shuffleRNG(r.cfg.seed, r.epoch)
	position := r.position // Next moves r.position while the producer runs
	p.wg.Add(1 + r.cfg.workers)
	go func() {
		defer p.wg.Done()
		defer close(p.order)
		defer close(jobs)
		p.err = r.produce(ctx, units, rng, position, p.order, jobs)
	}()
	for range r.cfg.workers {
		go func() {
			defer p.wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					j.out <- result{err: ctx.Err()}
					continue
				}
				j.out <- r.decodeRow(j)
			}
		}()
	}
	return p
}

// next returns the next row's result, io.EOF at the end of the epoch, or
// why the epoch cannot go on.
func (p *pipeline) next(ctx context.Context) (result, error) {
	if p.head == nil {
		select {
		case j, ok := <-p.order:
			if !ok {
				if p.err != nil {
					return result{}, p.err
				}
				return result{}, io.EOF
			}
			p.head = j
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
	}
	select {
	case res := <-p.head.out:
		p.head = nil
		var re *data.RowError
		if res.err != nil && !errors.As(res.err, &re) {
			return result{}, res.err // the workers were cancelled
		}
		return res, nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-p.ctx.Done():
		return result{}, p.ctx.Err()
	}
}

// stop cancels the epoch and waits for its goroutines.
func (p *pipeline) stop() {
	p.cancel()
	p.wg.Wait()
}

// produce reads the epoch's units from the cursor that position p leads to,
// passes their rows through the shuffle buffer and queues what leaves it.
func (r *Reader) produce(ctx context.Context, units []unit, rng *rand.Rand, p int64, order, jobs chan<- *job) error {
	sh := newShuffler(r.cfg.shuffleBuffer, rng)
	cursor, needed := fastForward(sh, units, p)
	refill := map[int]bool{} // units before the cursor still holding buffered rows
	for id := range needed {
		refill[id.unit] = true
	}
	emit := func(s slot) error {
		j := &job{u: units[s.id.unit], s: s, out: make(chan result, 1)}
		select {
		case order <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for ui, u := range units {
		if ui < cursor.unit && !refill[ui] {
			continue
		}
		path := r.files[u.file].path
		var seen int64
		err := r.src.readRowGroup(ctx, u.file, u.rg, func(row int64, rec *data.Record, rowErr error) error {
			if row < u.start || row >= u.start+u.n {
				return nil
			}
			seen++
			id := slotID{ui, row - u.start}
			bi, refilling := needed[id]
			if !refilling && id.before(cursor) {
				return nil
			}
			s := slot{id: id, row: row, rec: rec, err: rowErr}
			if sh.size > 0 && rec != nil {
				s.rec = detach(rec)
			}
			if refilling {
				sh.buf[bi] = s
				delete(needed, id)
				return nil
			}
			if out, ok := sh.push(s); ok {
				return emit(out)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("stream: %s: row group %d: %w", path, u.rg, err)
		}
		if seen != u.n {
			return fmt.Errorf("stream: %s: row group %d: read %d of the %d rows its footer promised from row %d", path, u.rg, seen, u.n, u.start)
		}
	}
	if len(needed) > 0 {
		return errors.New("stream: restore: buffered rows were not found in their row groups")
	}
	for {
		s, ok := sh.drain()
		if !ok {
			return nil
		}
		if err := emit(s); err != nil {
			return err
		}
	}
}

// detach copies rec's image bytes, which may point into the buffers of its
// whole row group: a row that waits in the shuffle buffer must not keep
// that row group alive after the reader has moved on.
func detach(rec *data.Record) *data.Record {
	c := *rec
	c.Images = make([]*data.ImageRef, len(rec.Images))
	for i, im := range rec.Images {
		if im != nil {
			c.Images[i] = &data.ImageRef{Bytes: bytes.Clone(im.Bytes), Path: im.Path}
		}
	}
	return &c
}

// decodeRow turns a row into a Sample, or into the *data.RowError that
// locates why it cannot be one.
func (r *Reader) decodeRow(j *job) result {
	path := r.files[j.u.file].path
	if j.s.err != nil {
		var re *data.RowError
		if errors.As(j.s.err, &re) {
			return result{err: j.s.err}
		}
		return result{err: &data.RowError{File: path, RowGroup: j.u.rg, Row: j.s.row, Err: j.s.err}}
	}
	rec := j.s.rec
	s := data.Sample{ID: rec.ID, Kind: rec.Kind, Meta: rec.Meta, Segments: make([]data.Segment, len(rec.Texts))}
	for i, t := range rec.Texts {
		if t != nil {
			s.Segments[i].Text = *t
			if r.cfg.tokenizer != nil {
				s.Segments[i].Tokens = r.cfg.tokenizer.Encode(*t)
			}
			continue
		}
		if i >= len(rec.Images) || rec.Images[i] == nil {
			return result{err: &data.RowError{File: path, RowGroup: j.u.rg, Row: j.s.row, Column: "texts",
				Err: fmt.Errorf("%w: segment %d has neither text nor image", data.ErrBadRecord, i)}}
		}
		im, err := r.decode(rec.Images[i].Bytes)
		if err != nil {
			column := cmp.Or(r.files[j.u.file].imageColumn, "images")
			return result{err: &data.RowError{File: path, RowGroup: j.u.rg, Row: j.s.row, Column: column,
				Err: fmt.Errorf("segment %d: %w", i, err)}}
		}
		s.Segments[i].Image = im
	}
	return result{sample: s}
}
