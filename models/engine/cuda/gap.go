package cuda

import (
	"time"
	"unsafe"
)

// gapTimer times the GPU's idle gaps between training steps with two CUDA
// events on the default stream (they live as long as the process, like the
// Device's cuBLAS handle): evEnd is recorded after a step's last
// kernel, evStart before the next step's first copy, and the GPU timestamps
// both when it reaches them, so start − end is how long it sat with nothing
// queued. An event recorded while the GPU is still busy is reached only
// once the earlier work is done, so a host that keeps ahead measures ~0.
type gapTimer struct {
	d              *Device
	evStart, evEnd uintptr // CUevent handles; 0 where the driver has no events
	ended          bool    // end was recorded after the last Step
	idle           time.Duration
}

func (g *gapTimer) init(d *Device) error {
	g.d = d
	if d.drv.cuEventCreate == 0 {
		return nil
	}
	for _, ev := range []*uintptr{&g.evStart, &g.evEnd} {
		if err := d.drv.call("cuEventCreate", d.drv.cuEventCreate, uintptr(unsafe.Pointer(ev)), 0); err != nil {
			g.evStart = 0
			return err
		}
	}
	return nil
}

// reset forgets the last step's evEnd: the next gap is not a step-to-step one.
func (g *gapTimer) reset() { g.ended = false }

// begin records evStart (the caller holds the context).
func (g *gapTimer) begin() error {
	if g.evStart == 0 || !g.ended {
		return nil
	}
	return g.d.drv.call("cuEventRecord", g.d.drv.cuEventRecord, g.evStart, 0)
}

// measure adds evStart − evEnd to idle; both events must have completed.
func (g *gapTimer) measure() error {
	if g.evStart == 0 || !g.ended {
		return nil
	}
	g.ended = false
	var ms float32
	if err := g.d.drv.call("cuEventElapsedTime", g.d.drv.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), g.evEnd, g.evStart); err != nil {
		return err
	}
	g.idle += time.Duration(float64(ms) * float64(time.Millisecond))
	return nil
}

// end records evEnd after a step's last kernel.
func (g *gapTimer) end() error {
	if g.evStart == 0 {
		return nil
	}
	g.ended = true
	return g.d.drv.call("cuEventRecord", g.d.drv.cuEventRecord, g.evEnd, 0)
}
