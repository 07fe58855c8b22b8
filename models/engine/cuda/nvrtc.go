package cuda

import (
	_ "embed"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

//go:embed kernels.cu
var kernelSource string

// nvrtcNames are the sonames tried, newest first.
var nvrtcNames = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}

// compileKernels compiles kernels.cu with NVRTC to a CUBIN for sm (native
// code for the detected GPU, no PTX JIT at load). cc is the compute
// capability as 90 for 9.0.
func compileKernels(sm string, cc int) ([]byte, error) {
	lib, err := openLibrary("NVRTC ships with the CUDA runtime libraries (pip nvidia-cuda-nvrtc, or a toolkit)", nvrtcNames...)
	if err != nil {
		return nil, err
	}
	var create, compile, logSize, getLog, cubinSize, getCubin, destroy, errStr uintptr
	if err := lib.bind(map[string]*uintptr{
		"nvrtcCreateProgram": &create, "nvrtcCompileProgram": &compile,
		"nvrtcGetProgramLogSize": &logSize, "nvrtcGetProgramLog": &getLog,
		"nvrtcGetCUBINSize": &cubinSize, "nvrtcGetCUBIN": &getCubin,
		"nvrtcDestroyProgram": &destroy, "nvrtcGetErrorString": &errStr,
	}); err != nil {
		return nil, err
	}
	check := func(call string, r uintptr) error {
		if r == 0 {
			return nil
		}
		s, _, _ := purego.SyscallN(errStr, r)
		return &Error{Lib: lib.name, Call: call, Code: int(r), Msg: goString(s)}
	}
	src, name := cString(kernelSource), cString("kernels.cu")
	var prog uintptr
	r, _, _ := purego.SyscallN(create, uintptr(unsafe.Pointer(&prog)), uintptr(unsafe.Pointer(&src[0])), uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	runtime.KeepAlive(src)
	runtime.KeepAlive(name)
	if err := check("nvrtcCreateProgram", r); err != nil {
		return nil, err
	}
	defer purego.SyscallN(destroy, uintptr(unsafe.Pointer(&prog)))
	opts := []string{"--gpu-architecture=" + sm, "--std=c++17", "-default-device",
		fmt.Sprintf("-DMMABLATE_CC=%d", cc)}
	cs := make([][]byte, len(opts))
	// The options array holds Go pointers inside Go memory: pin both for the call.
	var pin runtime.Pinner
	defer pin.Unpin()
	ptrs := make([]*byte, len(opts))
	for i, o := range opts {
		cs[i] = cString(o)
		pin.Pin(&cs[i][0])
		ptrs[i] = &cs[i][0]
	}
	pin.Pin(&ptrs[0])
	r, _, _ = purego.SyscallN(compile, prog, uintptr(len(ptrs)), uintptr(unsafe.Pointer(&ptrs[0])))
	if r != 0 {
		var n uintptr
		purego.SyscallN(logSize, prog, uintptr(unsafe.Pointer(&n)))
		logBuf := make([]byte, n+1)
		purego.SyscallN(getLog, prog, uintptr(unsafe.Pointer(&logBuf[0])))
		return nil, fmt.Errorf("%w\n%s", check("nvrtcCompileProgram "+strings.Join(opts, " "), r), strings.TrimRight(string(logBuf), "\x00\n"))
	}
	var n uintptr
	if err := check("nvrtcGetCUBINSize", first(purego.SyscallN(cubinSize, prog, uintptr(unsafe.Pointer(&n))))); err != nil {
		return nil, err
	}
	cubin := make([]byte, n)
	if err := check("nvrtcGetCUBIN", first(purego.SyscallN(getCubin, prog, uintptr(unsafe.Pointer(&cubin[0]))))); err != nil {
		return nil, err
	}
	return cubin, nil
}

func first(r1, _, _ uintptr) uintptr { return r1 }
