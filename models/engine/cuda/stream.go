package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// A side stream runs work that the main (legacy default) stream does not
// wait for right away: the ViT backward's weight-gradient products and
// bias sums, whose small shapes leave most of the GPU idle while the
// input-gradient chain runs. Ordering between the two streams is by
// events only: the side stream waits for a main-stream event before it
// reads what the main stream wrote, and the main stream waits for a
// side-stream event before it overwrites what the side stream reads.

// sideStream is the side stream, its cuBLAS handle and a pool of events
// reused every pass.
type sideStream struct {
	stream, blas uintptr
	events       []uintptr
	next         int // the pool's next free event this pass
}

// cuStreamNonBlocking: the side stream does not synchronise implicitly
// with the legacy default stream (CU_STREAM_NON_BLOCKING).
const cuStreamNonBlocking = 1

// cuEventDisableTiming: events that only order streams
// (CU_EVENT_DISABLE_TIMING).
const cuEventDisableTiming = 2

// initSide creates the side stream with events for n orderings a pass;
// without the driver's stream and event entry points (old drivers) it
// returns an error and callers run everything on the main stream.
func (d *Device) initSide(n int) (*sideStream, error) {
	if d.drv.cuStreamCreate == 0 || d.drv.cuEventCreate == 0 || d.blas.setStream == 0 {
		return nil, fmt.Errorf("cuda: the driver or cuBLAS lacks the stream entry points")
	}
	s := &sideStream{events: make([]uintptr, n)}
	err := d.drv.call("cuStreamCreate", d.drv.cuStreamCreate, uintptr(unsafe.Pointer(&s.stream)), cuStreamNonBlocking)
	if err == nil {
		err = d.blas.check("cublasCreate (side stream)", first(purego.SyscallN(d.blas.create, uintptr(unsafe.Pointer(&s.blas)))))
	}
	if err == nil {
		err = d.blas.check("cublasSetStream", first(purego.SyscallN(d.blas.setStream, s.blas, s.stream)))
	}
	for i := range s.events {
		if err == nil {
			err = d.drv.call("cuEventCreate", d.drv.cuEventCreate, uintptr(unsafe.Pointer(&s.events[i])), cuEventDisableTiming)
		}
	}
	if err != nil {
		return nil, errors.Join(err, d.closeSide(s))
	}
	return s, nil
}

// event records an event of the pool on stream and returns it.
func (d *Device) event(s *sideStream, stream uintptr) (uintptr, error) {
	if s.next == len(s.events) {
		return 0, fmt.Errorf("cuda: side stream: more than %d orderings in one pass", len(s.events))
	}
	ev := s.events[s.next]
	s.next++
	return ev, d.drv.call("cuEventRecord", d.drv.cuEventRecord, ev, stream)
}

// wait makes stream wait for ev (recorded on the other stream).
func (d *Device) wait(stream, ev uintptr) error {
	return d.drv.call("cuStreamWaitEvent", d.drv.cuStreamWaitEvent, stream, ev, 0)
}

// onSide queues f's launches and products on the side stream, after
// everything queued on the main stream so far, and returns the event that
// marks their end there (the main stream waits for it with d.wait(0, ev)
// before it overwrites what f read).
func (d *Device) onSide(s *sideStream, f func() error) (uintptr, error) {
	start, err := d.event(s, 0)
	if err != nil {
		return 0, err
	}
	if err := d.wait(s.stream, start); err != nil {
		return 0, err
	}
	d.stream, d.blasHandle = s.stream, s.blas
	err = f()
	d.stream, d.blasHandle = 0, d.blas.handle
	if err != nil {
		return 0, err
	}
	return d.event(s, s.stream)
}

// closeSide destroys the side stream's events, cuBLAS handle and stream
// (the caller has synchronised).
func (d *Device) closeSide(s *sideStream) error {
	var errs []error
	for _, ev := range s.events {
		if ev != 0 {
			errs = append(errs, d.drv.call("cuEventDestroy", d.drv.cuEventDestroy, ev))
		}
	}
	if s.blas != 0 {
		errs = append(errs, d.blas.check("cublasDestroy (side stream)", first(purego.SyscallN(d.blas.destroy, s.blas))))
	}
	if s.stream != 0 {
		errs = append(errs, d.drv.call("cuStreamDestroy", d.drv.cuStreamDestroy, s.stream))
	}
	return errors.Join(errs...)
}
