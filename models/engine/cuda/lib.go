package cuda

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Error is a failed library load or CUDA, cuBLAS or NVRTC call.
type Error struct {
	Lib  string // "libcuda.so.1", "cublas", "nvrtc", …
	Call string // the C function, or "dlopen" / "dlsym"
	Code int    // the library's status code; 0 for load failures
	Msg  string // the library's own description
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("cuda: %s: %s: error %d: %s", e.Lib, e.Call, e.Code, e.Msg)
	}
	return fmt.Sprintf("cuda: %s: %s: %s", e.Lib, e.Call, e.Msg)
}

// ErrNoDevice is wrapped by Open's error when the driver loads but reports
// no CUDA device.
var ErrNoDevice = errors.New("no CUDA device")

// library is one dlopen'ed shared object.
type library struct {
	name   string
	handle uintptr
}

// openLibrary tries each name in turn (versioned sonames first: the
// unversioned .so exists only with a toolkit's -dev files) and returns the
// first that loads; the error names every candidate and the hint.
func openLibrary(hint string, names ...string) (*library, error) {
	var msgs []string
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return &library{name: n, handle: h}, nil
		}
		msgs = append(msgs, err.Error())
	}
	return nil, &Error{Lib: strings.Join(names, " | "), Call: "dlopen", Msg: strings.Join(msgs, "; ") + "; " + hint}
}

// sym resolves one symbol. Checking with Dlsym first matters:
// purego.RegisterLibFunc panics on a missing symbol.
func (l *library) sym(name string) (uintptr, error) {
	p, err := purego.Dlsym(l.handle, name)
	if err != nil || p == 0 {
		return 0, &Error{Lib: l.name, Call: "dlsym " + name, Msg: fmt.Sprint(err) + " (library too old?)"}
	}
	return p, nil
}

// bind resolves every (name, *uintptr) pair of syms.
func (l *library) bind(syms map[string]*uintptr) error {
	var errs []error
	for name, dst := range syms {
		p, err := l.sym(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*dst = p
	}
	return errors.Join(errs...)
}

// cString returns s as a NUL-terminated byte slice.
func cString(s string) []byte { return append([]byte(s), 0) }

// goString copies the NUL-terminated C string at p.
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	base := unsafe.Add(unsafe.Pointer(nil), p)
	n := 0
	for *(*byte)(unsafe.Add(base, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(base), n))
}

// hostSlice views n elements of C-allocated (pinned host) memory at p.
func hostSlice[T any](p uintptr, n int) []T {
	return unsafe.Slice((*T)(unsafe.Add(unsafe.Pointer(nil), p)), n)
}
