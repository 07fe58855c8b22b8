package cuda

import (
	"cmp"
	"errors"
	"slices"
	"unsafe"
)

// profiler times each kernel launch, product and memset queued while it
// is set (Device.prof), between two events on the stream it goes to, and
// sums the times by name: where a step's GPU time goes, kernel by kernel
// (BenchmarkStepProfile). The events add a few µs of gaps a call, and a
// side stream's work is counted in full though it overlaps the main
// stream's, so the table ranks the parts rather than adding up to the
// step.
type profiler struct {
	free []uintptr // events made and not in use
	recs []profRecord
}

type profRecord struct {
	name       string
	start, end uintptr
}

// profileEntry is one name's total over the profiled calls.
type profileEntry struct {
	Name  string
	Calls int
	MS    float64
}

// startProfile times every call from now until stopProfile.
func (d *Device) startProfile() error {
	if d.drv.cuEventCreate == 0 {
		return errors.New("cuda: profiling needs the driver's events")
	}
	d.prof = &profiler{}
	return nil
}

// stopProfile waits for the profiled calls and returns their times by
// name, the largest total first; it destroys the events.
func (d *Device) stopProfile() ([]profileEntry, error) {
	p := d.prof
	d.prof = nil
	if p == nil {
		return nil, nil
	}
	err := d.sync()
	byName := map[string]*profileEntry{}
	for _, r := range p.recs {
		var ms float32
		if err == nil {
			err = d.drv.call("cuEventElapsedTime", d.drv.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), r.start, r.end)
		}
		e := byName[r.name]
		if e == nil {
			e = &profileEntry{Name: r.name}
			byName[r.name] = e
		}
		e.Calls++
		e.MS += float64(ms)
		p.free = append(p.free, r.start, r.end)
	}
	if d.drv.cuEventDestroy != 0 {
		for _, ev := range p.free {
			err = errors.Join(err, d.drv.call("cuEventDestroy", d.drv.cuEventDestroy, ev))
		}
	}
	out := make([]profileEntry, 0, len(byName))
	for _, e := range byName {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b profileEntry) int { return cmp.Compare(b.MS, a.MS) })
	return out, err
}

// profile records a start event for a call on the current stream and
// returns what records its end under name, known only then (a product
// says which library ran it); name "" drops the call. A no-op without a
// profiler.
func (d *Device) profile() func(name string) {
	p := d.prof
	if p == nil {
		return func(string) {}
	}
	start, err := p.record(d, d.stream)
	if err != nil {
		return func(string) {}
	}
	stream := d.stream
	return func(name string) {
		if name == "" {
			p.free = append(p.free, start)
			return
		}
		if end, err := p.record(d, stream); err == nil {
			p.recs = append(p.recs, profRecord{name: name, start: start, end: end})
		}
	}
}

// record takes a free event (or makes one) and records it on stream.
func (p *profiler) record(d *Device, stream uintptr) (uintptr, error) {
	var ev uintptr
	if n := len(p.free); n > 0 {
		ev, p.free = p.free[n-1], p.free[:n-1]
	} else if err := d.drv.call("cuEventCreate", d.drv.cuEventCreate, uintptr(unsafe.Pointer(&ev)), 0); err != nil {
		return 0, err
	}
	if err := d.drv.call("cuEventRecord", d.drv.cuEventRecord, ev, stream); err != nil {
		p.free = append(p.free, ev)
		return 0, err
	}
	return ev, nil
}
