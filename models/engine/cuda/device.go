package cuda

import (
	"fmt"
	"math"
	"runtime"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driver holds the CUDA driver API entry points. Versioned names (_v2) are
// the ones the headers' macros resolve to; the unversioned symbols are the
// 32-bit legacy ABI.
type driver struct {
	lib                                                         *library
	cuInit, cuDeviceGet, cuDeviceGetCount, cuDeviceGetAttribute uintptr
	cuDeviceGetName, cuDevicePrimaryCtxRetain, cuCtxSetCurrent  uintptr
	cuCtxSynchronize, cuGetErrorString, cuDriverGetVersion      uintptr
	cuMemAlloc, cuMemFree, cuMemAllocHost, cuMemFreeHost        uintptr
	cuMemcpyHtoD, cuMemcpyHtoDAsync, cuMemcpyDtoH, cuMemsetD32  uintptr
	cuModuleLoadData, cuModuleGetFunction, cuLaunchKernel       uintptr
	cuEventCreate, cuEventRecord, cuEventElapsedTime            uintptr
	cuFuncGetAttribute                                          uintptr
	cuStreamCreate, cuStreamWaitEvent, cuStreamDestroy          uintptr // the side stream (stream.go); 0 if missing
	cuEventDestroy                                              uintptr
}

func loadDriver() (*driver, error) {
	lib, err := openLibrary("is the NVIDIA driver installed and is there a GPU? (no CUDA toolkit is needed)", "libcuda.so.1", "libcuda.so")
	if err != nil {
		return nil, err
	}
	d := &driver{lib: lib}
	err = lib.bind(map[string]*uintptr{
		"cuInit": &d.cuInit, "cuDeviceGet": &d.cuDeviceGet, "cuDeviceGetCount": &d.cuDeviceGetCount,
		"cuDeviceGetAttribute": &d.cuDeviceGetAttribute, "cuDeviceGetName": &d.cuDeviceGetName,
		"cuDevicePrimaryCtxRetain": &d.cuDevicePrimaryCtxRetain, "cuCtxSetCurrent": &d.cuCtxSetCurrent,
		"cuCtxSynchronize": &d.cuCtxSynchronize, "cuGetErrorString": &d.cuGetErrorString,
		"cuDriverGetVersion": &d.cuDriverGetVersion,
		"cuMemAlloc_v2":      &d.cuMemAlloc, "cuMemFree_v2": &d.cuMemFree,
		"cuMemAllocHost_v2": &d.cuMemAllocHost, "cuMemFreeHost": &d.cuMemFreeHost,
		"cuMemcpyHtoD_v2": &d.cuMemcpyHtoD, "cuMemcpyHtoDAsync_v2": &d.cuMemcpyHtoDAsync, "cuMemcpyDtoH_v2": &d.cuMemcpyDtoH,
		"cuMemsetD32_v2":   &d.cuMemsetD32,
		"cuModuleLoadData": &d.cuModuleLoadData, "cuModuleGetFunction": &d.cuModuleGetFunction,
		"cuLaunchKernel": &d.cuLaunchKernel, "cuFuncGetAttribute": &d.cuFuncGetAttribute,
	})
	if err != nil {
		return nil, err
	}
	// Events only time the GPU's idle gaps (Trainer.IdleTime): a driver
	// without them still trains. CUDA 12.8 added cuEventElapsedTime_v2;
	// drivers keep the unversioned symbol for older binaries.
	if d.events() != nil {
		d.cuEventCreate, d.cuEventRecord, d.cuEventElapsedTime = 0, 0, 0
	}
	if d.lib.bind(map[string]*uintptr{"cuStreamCreate": &d.cuStreamCreate, "cuStreamWaitEvent": &d.cuStreamWaitEvent,
		"cuStreamDestroy_v2": &d.cuStreamDestroy, "cuEventDestroy_v2": &d.cuEventDestroy}) != nil {
		d.cuStreamCreate, d.cuStreamWaitEvent, d.cuStreamDestroy, d.cuEventDestroy = 0, 0, 0, 0
	}
	return d, nil
}

// events binds the event entry points, all or none.
func (d *driver) events() error {
	elapsed, err := d.lib.sym("cuEventElapsedTime_v2")
	if err != nil {
		if elapsed, err = d.lib.sym("cuEventElapsedTime"); err != nil {
			return err
		}
	}
	d.cuEventElapsedTime = elapsed
	return d.lib.bind(map[string]*uintptr{"cuEventCreate": &d.cuEventCreate, "cuEventRecord": &d.cuEventRecord})
}

// check turns a CUresult into an *Error naming call.
func (d *driver) check(call string, r uintptr) error {
	if r == 0 {
		return nil
	}
	var s uintptr
	purego.SyscallN(d.cuGetErrorString, r, uintptr(unsafe.Pointer(&s)))
	return &Error{Lib: d.lib.name, Call: call, Code: int(r), Msg: goString(s)}
}

// call runs fn(args…) and checks its CUresult. Callers pass Go pointers
// as uintptr (&out for a result): uintptrescapes moves what they point to
// to the heap and keeps it there for the call, as it does for
// purego.SyscallN itself. Without it an out-variable stayed on the
// goroutine stack, a stack growth between this frame and the C call moved
// it, and the driver wrote the result to the old place: cuMemAlloc
// "succeeded" with address 0 and the next call on the buffer failed with
// invalid argument (a Trainer built after a second Open, or at a deeper
// stack).
//
//go:uintptrescapes
func (d *driver) call(name string, fn uintptr, args ...uintptr) error {
	r, _, _ := purego.SyscallN(fn, args...)
	return d.check(name, r)
}

// PeakBF16 is the H100/H200 SXM dense bf16 tensor-core peak in FLOP/s
// (NVIDIA's datasheet, 989.4 TFLOP/s): the denominator of the model FLOP
// utilisation that `bench train --device cuda` and this package's
// benchmarks report.
const PeakBF16 = 989.4e12

// Device is one GPU with its primary context, cuBLAS handle and the
// compiled kernels.
type Device struct {
	drv     *driver
	blas    *cublas
	lt      *ltTuner // nil where cuBLASLt did not load: bf16 products use cublasGemmEx
	dev     int32
	ctx     uintptr
	Name    string // "NVIDIA H200"
	SM      string // "sm_90"
	Driver  int    // driver API version, e.g. 13000
	Compile time.Duration

	cc int // compute capability, major·10 + minor

	k kernels

	// host is a block of pinned host memory (cuMemAllocHost) for kernel
	// argument slots and cuBLAS scalars: C memory, so pointers to it may be
	// passed to C freely (Go memory referenced from a C array would need
	// runtime.Pinner on every launch).
	host     uintptr
	args     []uint64  // argument values, one 8-byte slot each
	argPtrs  []uintptr // void*[] handed to cuLaunchKernel
	scalars  []float32 // alpha, beta for cuBLAS
	scratchD []float64 // reduction results copied back

	// stream and blasHandle are where launches and products go: the
	// legacy default stream and the main cuBLAS handle, or a side
	// stream's while onSide runs.
	stream, blasHandle uintptr

	prof *profiler // set while a benchmark profiles (prof.go)
}

const (
	maxArgs     = 24
	hostBytes   = maxArgs*8 + maxArgs*8 + 16 + 8*maxPartials
	maxPartials = 1024
	attrCCMajor = 75 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrCCMinor = 76
)

// Open loads the driver, cuBLAS and NVRTC, makes GPU ordinal current and
// compiles the kernels for it. The error names what is missing.
func Open(ordinal int) (*Device, error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := drv.call("cuInit", drv.cuInit, 0); err != nil {
		return nil, fmt.Errorf("%w (%w)", err, ErrNoDevice)
	}
	var count int32
	if err := drv.call("cuDeviceGetCount", drv.cuDeviceGetCount, uintptr(unsafe.Pointer(&count))); err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, fmt.Errorf("cuda: %s loaded but reports 0 devices: %w", drv.lib.name, ErrNoDevice)
	}
	if ordinal < 0 || ordinal >= int(count) {
		return nil, fmt.Errorf("cuda: GPU %d requested, %d present: %w", ordinal, count, ErrNoDevice)
	}
	d := &Device{drv: drv}
	var ver int32
	if err := drv.call("cuDriverGetVersion", drv.cuDriverGetVersion, uintptr(unsafe.Pointer(&ver))); err != nil {
		return nil, err
	}
	d.Driver = int(ver)
	if err := drv.call("cuDeviceGet", drv.cuDeviceGet, uintptr(unsafe.Pointer(&d.dev)), uintptr(ordinal)); err != nil {
		return nil, err
	}
	var maj, mnr int32
	if err := drv.call("cuDeviceGetAttribute", drv.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&maj)), attrCCMajor, uintptr(d.dev)); err != nil {
		return nil, err
	}
	if err := drv.call("cuDeviceGetAttribute", drv.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&mnr)), attrCCMinor, uintptr(d.dev)); err != nil {
		return nil, err
	}
	d.SM = fmt.Sprintf("sm_%d%d", maj, mnr)
	name := make([]byte, 256)
	if err := drv.call("cuDeviceGetName", drv.cuDeviceGetName, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name)), uintptr(d.dev)); err != nil {
		return nil, err
	}
	d.Name = goString(uintptr(unsafe.Pointer(&name[0])))
	runtime.KeepAlive(name)
	if err := drv.call("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&d.ctx)), uintptr(d.dev)); err != nil {
		return nil, err
	}
	if err := drv.call("cuCtxSetCurrent", drv.cuCtxSetCurrent, d.ctx); err != nil {
		return nil, err
	}
	if err := drv.call("cuMemAllocHost", drv.cuMemAllocHost, uintptr(unsafe.Pointer(&d.host)), hostBytes); err != nil {
		return nil, err
	}
	d.args = hostSlice[uint64](d.host, maxArgs)
	d.argPtrs = hostSlice[uintptr](d.host+maxArgs*8, maxArgs)
	d.scalars = hostSlice[float32](d.host+2*maxArgs*8, 4)
	d.scratchD = hostSlice[float64](d.host+2*maxArgs*8+16, maxPartials)
	for i := range d.argPtrs {
		d.argPtrs[i] = d.host + uintptr(8*i)
	}
	if d.blas, err = loadCublas(); err != nil {
		return nil, err
	}
	d.blasHandle = d.blas.handle
	if lt, err := loadCublasLt(); err == nil {
		d.lt = &ltTuner{lt: lt, plans: map[ltShape]*ltPlan{}, ws: map[uintptr]Buf{}}
	}
	start := time.Now()
	d.cc = int(maj)*10 + int(mnr)
	cubin, err := compileKernels(d.SM, d.cc)
	if err != nil {
		return nil, err
	}
	if err := d.loadKernels(cubin); err != nil {
		return nil, err
	}
	d.Compile = time.Since(start)
	return d, nil
}

// enter locks the calling goroutine to its thread and makes the device's
// context current there; the returned func undoes the lock.
func (d *Device) enter() func() {
	runtime.LockOSThread()
	purego.SyscallN(d.drv.cuCtxSetCurrent, d.ctx)
	return runtime.UnlockOSThread
}

// Sync waits for all queued GPU work and reports any asynchronous error.
func (d *Device) Sync() error {
	defer d.enter()()
	return d.sync()
}

func (d *Device) sync() error {
	return d.drv.call("cuCtxSynchronize", d.drv.cuCtxSynchronize)
}

// Buf is a device allocation of N float32 (or int32) elements.
type Buf struct {
	P uintptr // device address
	N int     // elements (4 bytes each)
}

// At is the address of element i.
func (b Buf) At(i int) uintptr { return b.P + uintptr(4*i) }

// Off is the buffer from element i on.
func (b Buf) Off(i int) Buf { return Buf{P: b.At(i), N: b.N - i} }

// alloc returns a zeroed device buffer of n 4-byte elements.
func (d *Device) alloc(n int) (Buf, error) {
	var p uintptr
	if err := d.drv.call(fmt.Sprintf("cuMemAlloc(%d MB)", 4*n>>20), d.drv.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(4*max(n, 1))); err != nil {
		return Buf{}, err
	}
	b := Buf{P: p, N: n}
	if err := d.zero(b); err != nil {
		return b, fmt.Errorf("zeroing a new buffer of %d floats at %#x: %w", n, p, err)
	}
	return b, nil
}

func (d *Device) zero(b Buf) error {
	if b.N == 0 {
		return nil
	}
	if d.prof != nil {
		defer d.profile()("memset")
	}
	return d.drv.call("cuMemsetD32", d.drv.cuMemsetD32, b.P, 0, uintptr(b.N))
}

// upload copies src into b; download copies len(dst) elements of b into
// dst. Both are synchronous (pageable host memory).
func upload[T float32 | int32 | int64 | uint64](d *Device, b Buf, src []T) error {
	if len(src) == 0 {
		return nil
	}
	return d.drv.call("cuMemcpyHtoD", d.drv.cuMemcpyHtoD, b.P, uintptr(unsafe.Pointer(&src[0])), uploadBytes(b, src))
}

// uploadBytes is src's size, which must fit in b (a caller's sizing bug
// otherwise: the copy would run past the allocation).
func uploadBytes[T float32 | int32 | int64 | uint64](b Buf, src []T) uintptr {
	bytes := len(src) * int(unsafe.Sizeof(src[0]))
	if bytes > 4*b.N {
		panic(fmt.Sprintf("cuda: upload of %d bytes into a %d-byte buffer", bytes, 4*b.N))
	}
	return uintptr(bytes)
}

// staging is page-locked host memory (cuMemAllocHost) that a step's batch
// passes through on its way to the GPU. A pageable cuMemcpyHtoD makes the
// host wait for the stream's earlier work and then copies through the
// driver's bounce buffer while the GPU computes nothing: about a
// millisecond a step for the multimodal reference's 16 images. From
// pinned memory the copy is queued (cuMemcpyHtoDAsync) behind the
// previous step's update, runs at the bus's speed, and the host goes on
// queueing kernels.
type staging struct {
	p          uintptr
	size, used int
}

// newStaging allocates bytes of pinned host memory; carve splits it.
func (d *Device) newStaging(bytes int) (*staging, error) {
	s := &staging{size: bytes}
	if err := d.drv.call(fmt.Sprintf("cuMemAllocHost(%d MB)", bytes>>20), d.drv.cuMemAllocHost, uintptr(unsafe.Pointer(&s.p)), uintptr(max(bytes, 1))); err != nil {
		return nil, err
	}
	return s, nil
}

// stagingBytes is what n elements of 4 bytes take in a staging area
// (carve aligns each slice to 64 bytes).
func stagingBytes(n int) int { return (4*n + 63) &^ 63 }

// carve takes the next n elements of s; the caller sized s with
// stagingBytes for every slice it carves.
func carve[T int32 | float32](s *staging, n int) []T {
	b := stagingBytes(n)
	if s.used+b > s.size {
		panic(fmt.Sprintf("cuda: staging area of %d bytes has no room for %d more", s.size, b))
	}
	out := hostSlice[T](s.p+uintptr(s.used), n)
	s.used += b
	return out
}

func (d *Device) freeStaging(s *staging) error {
	if s == nil || s.p == 0 {
		return nil
	}
	return d.drv.call("cuMemFreeHost", d.drv.cuMemFreeHost, s.p)
}

// uploadAsync queues a copy of src, carved from a staging area, into b on
// the default stream. The host does not wait: src must not change until
// the stream has passed the copy.
func uploadAsync[T float32 | int32](d *Device, b Buf, src []T) error {
	if len(src) == 0 {
		return nil
	}
	return d.drv.call("cuMemcpyHtoDAsync", d.drv.cuMemcpyHtoDAsync, b.P, uintptr(unsafe.Pointer(&src[0])), uploadBytes(b, src), 0)
}

func download[T float32 | int32 | float64](d *Device, dst []T, b Buf) error {
	if len(dst) == 0 {
		return nil
	}
	bytes := len(dst) * int(unsafe.Sizeof(dst[0]))
	if bytes > 4*b.N {
		panic(fmt.Sprintf("cuda: download of %d bytes from a %d-byte buffer", bytes, 4*b.N))
	}
	return d.drv.call("cuMemcpyDtoH", d.drv.cuMemcpyDtoH, uintptr(unsafe.Pointer(&dst[0])), b.P, uintptr(bytes))
}

// launch queues kernel f on d.stream (the legacy default stream but
// inside onSide). Arguments are Go values of
// the kernel's parameter types: Buf or uintptr for pointers, int or int32
// for int, i64 for long long, float32 for float.
func (d *Device) launch(name string, f uintptr, grid, block [3]int, smem int, args ...any) error {
	if len(args) > maxArgs {
		panic("cuda: too many kernel arguments")
	}
	for i, a := range args {
		switch v := a.(type) {
		case uintptr:
			d.args[i] = uint64(v)
		case Buf:
			d.args[i] = uint64(v.P)
		case int32:
			d.args[i] = uint64(uint32(v))
		case i64:
			d.args[i] = uint64(v)
		case int:
			if v > math.MaxInt32 || v < math.MinInt32 {
				panic(fmt.Sprintf("cuda: %s: int argument %d overflows int32", name, v))
			}
			d.args[i] = uint64(uint32(int32(v)))
		case float32:
			d.args[i] = uint64(math.Float32bits(v))
		default:
			panic(fmt.Sprintf("cuda: %s: argument %d has unsupported type %T", name, i, a))
		}
	}
	if grid[0] == 0 || grid[1] == 0 || grid[2] == 0 {
		return nil // nothing to do (an empty tensor)
	}
	if d.prof != nil {
		defer d.profile()(name)
	}
	return d.drv.call("cuLaunchKernel "+name, d.drv.cuLaunchKernel, f,
		uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
		uintptr(block[0]), uintptr(block[1]), uintptr(block[2]),
		uintptr(smem), d.stream, d.host+maxArgs*8, 0)
}
