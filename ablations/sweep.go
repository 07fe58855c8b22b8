package ablations

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/internal/boundedfile"
)

// Sweep is a parsed, validated and expanded sweep file.
type Sweep struct {
	Name string
	// File is the sweep file's path (absolute after Load).
	File string
	// FileSHA256 is the sha256 of the sweep file's bytes followed by the
	// base run config's bytes (none when the base is inline): what a sweep
	// directory checks to refuse a different sweep.
	FileSHA256 string
	// Source is the sweep file's bytes.
	Source []byte
	// Base is the base run config's path, "" when inline.
	Base string
	// Root is the directory dataset paths are made relative to for cell
	// ids: the sweep file's.
	Root     string
	Axes     []Axis
	Seeds    []int
	Baseline map[string]any
	Slurm    SlurmResources
	Cells    []Cell
}

// Axis is one dimension of the grid: one key path, or a zip group's keys
// that vary together.
type Axis struct {
	Name string   `json:"name"`
	Keys []string `json:"keys"`
	// Values are the display values: the YAML values of a plain axis, the
	// labels (or values joined by "/") of a zip group.
	Values []any `json:"values"`

	settings [][]string // [value][key] the value as YAML flow text
	lines    []int      // [value] its line in the sweep file
	path     string     // key path in the sweep file, for errors
}

// SlurmResources are the sbatch resources of the sweep's array job.
type SlurmResources struct {
	Partition   string `yaml:"partition" json:"partition"`
	Time        string `yaml:"time" json:"time"`
	Mem         string `yaml:"mem" json:"mem"`
	CPUsPerTask int    `yaml:"cpus_per_task" json:"cpus_per_task"`
	Gres        string `yaml:"gres" json:"gres"`
	// MaxParallel caps tasks running at once (--array=0-N%M); 0: no cap.
	MaxParallel int `yaml:"max_parallel" json:"max_parallel"`
	// RequeueExit is the exit status that asks Slurm to requeue the task
	// (run-cell exits with it on SIGTERM); default 75 (EX_TEMPFAIL).
	RequeueExit int    `yaml:"requeue_exit" json:"requeue_exit"`
	Account     string `yaml:"account" json:"account"`
	QOS         string `yaml:"qos" json:"qos"`
}

// DefaultRequeueExit is SlurmResources.RequeueExit when the file leaves it
// out: EX_TEMPFAIL from sysexits.h, "try again later".
const DefaultRequeueExit = 75

// Error is a sweep-file error at a line and key path.
type Error struct {
	File string
	Line int    // 0 when the error has no single line
	Key  string // key path in the sweep file, e.g. axes.model.vision.resolution
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Sentinels, wrapped in Error; test with errors.Is.
var (
	// ErrEmptyGrid: no cell is left after exclude.
	ErrEmptyGrid = errors.New("empty grid")
	// ErrDuplicateCell: two cells resolve to the same run config.
	ErrDuplicateCell = errors.New("duplicate cell")
	// ErrUnknownKey: a key the sweep file or the run config does not have.
	ErrUnknownKey = errors.New("unknown key")
)

var topKeys = []string{"name", "base", "set", "axes", "labels", "zip", "exclude", "seeds", "baseline", "slurm"}

// maxSweepBytes bounds a sweep file and a base config read from disk.
const maxSweepBytes = 4 << 20

// Load reads the sweep file at path and its base, and expands it (Parse).
func Load(path string) (*Sweep, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	s, err := Parse(b, path, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	s.File = abs
	return s, nil
}

func readBounded(path string) ([]byte, error) {
	// A FIFO or device would block or never end: only regular files.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return boundedfile.Read(path, maxSweepBytes)
}

// Parse is Load on bytes: name labels errors, baseDir (absolute) is where
// a relative base path and an inline base's dataset paths are resolved.
func Parse(b []byte, name, baseDir string) (*Sweep, error) {
	p := &parser{file: name, dir: baseDir}
	s := p.parse(b)
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return s, nil
}

type parser struct {
	file string
	dir  string
	errs []error

	baseBytes []byte
	baseName  string // labels the base's errors
	baseDir   string
	// baseLines maps a line of an inline base as re-encoded to its line in
	// the sweep file.
	baseLines map[int]int
	baseRoot  *yaml.Node

	set     []setting
	axesAt  int // line of the first axis (or zip group), for errors that belong to a whole cell
	exclude []match
	base    *match // baseline
	known   map[string]bool
}

// setting is one key=value override with where it came from.
type setting struct {
	key, value, path string
	line             int
}

// match is an exclude entry or the baseline: axis name → display value.
type match struct {
	vals map[string]any
	line int
	path string
}

func (p *parser) errorf(n *yaml.Node, key string, format string, a ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: key, Err: fmt.Errorf(format, a...)})
}

func (p *parser) wrap(n *yaml.Node, key string, err error) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: key, Err: err})
}

func (p *parser) parse(b []byte) *Sweep {
	s := &Sweep{File: p.file, Source: b, Root: p.dir, Slurm: SlurmResources{RequeueExit: DefaultRequeueExit}}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		p.errs = append(p.errs, &Error{File: p.file, Err: err})
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		p.errs = append(p.errs, &Error{File: p.file, Err: fmt.Errorf("a sweep file is a YAML mapping (%s)", strings.Join(topKeys, ", "))})
		return nil
	}
	root := doc.Content[0]
	nodes := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if !slices.Contains(topKeys, k.Value) {
			p.wrap(k, k.Value, unknownKey(k.Value, topKeys, "in a sweep file"))
			continue
		}
		if _, dup := nodes[k.Value]; dup {
			p.errorf(k, k.Value, "given twice")
			continue
		}
		nodes[k.Value] = v
	}
	if len(p.errs) > 0 {
		return nil
	}
	p.parseName(s, nodes["name"], root)
	p.parseBase(s, nodes["base"], root)
	p.parseSlurm(s, nodes["slurm"])
	p.parseSeeds(s, nodes["seeds"])
	if len(p.errs) > 0 {
		return nil
	}
	p.known = knownKeys(p.baseRoot)
	p.parseSet(nodes["set"])
	labels := p.parseLabels(nodes["labels"])
	p.parseAxes(s, nodes["axes"], labels)
	p.parseZip(s, nodes["zip"])
	p.checkAxes(s, nodes["labels"], labels)
	if len(p.errs) > 0 {
		return nil
	}
	p.exclude = p.parseMatches(s, nodes["exclude"], "exclude")
	if n := nodes["baseline"]; n != nil {
		if m := p.parseMatch(s, n, "baseline"); m != nil {
			p.base = m
			s.Baseline = m.vals
		}
	}
	if len(p.errs) > 0 {
		return nil
	}
	p.expand(s)
	sum := sha256.New()
	sum.Write(b)
	sum.Write(p.baseBytes)
	s.FileSHA256 = hex.EncodeToString(sum.Sum(nil))
	return s
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (p *parser) parseName(s *Sweep, n, root *yaml.Node) {
	if n == nil {
		p.errorf(root, "name", "missing: the sweep's name (letters, digits, '.', '_', '-')")
		return
	}
	if n.Kind != yaml.ScalarNode || !nameRE.MatchString(n.Value) {
		p.errorf(n, "name", "%s: want letters, digits, '.', '_' or '-' (it names Slurm jobs and files)", describe(n))
		return
	}
	s.Name = n.Value
}

func (p *parser) parseBase(s *Sweep, n, root *yaml.Node) {
	switch {
	case n == nil:
		p.errorf(root, "base", "missing: the run config every cell starts from (a path relative to the sweep file, or an inline mapping)")
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Value != "":
		path := n.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.dir, path)
		}
		b, err := readBounded(path)
		if errors.Is(err, fs.ErrNotExist) {
			p.errorf(n, "base", "%s: no such file (a relative path is relative to the sweep file's directory)", n.Value)
			return
		}
		if err != nil {
			p.wrap(n, "base", err)
			return
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			p.wrap(n, "base", fmt.Errorf("%s: %w", path, err))
			return
		}
		p.baseBytes, p.baseDir, s.Base = b, filepath.Dir(path), path
		p.baseName = n.Value
		if !filepath.IsAbs(n.Value) {
			p.baseName = filepath.Join(filepath.Dir(p.file), n.Value)
		}
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
			p.baseRoot = doc.Content[0]
		}
	case n.Kind == yaml.MappingNode:
		b, err := yaml.Marshal(n)
		if err != nil {
			p.wrap(n, "base", err)
			return
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			p.wrap(n, "base", err)
			return
		}
		p.baseLines = map[int]int{}
		mapLines(doc.Content[0], n, p.baseLines)
		p.baseBytes, p.baseDir, p.baseName, p.baseRoot = b, p.dir, inlineBaseName, n
	default:
		p.errorf(n, "base", "%s: want a path to a run config or an inline run config mapping", describe(n))
	}
}

// inlineBaseName labels an inline base's errors from experiments, which
// are then rewritten to the sweep file's lines.
const inlineBaseName = "\x00inline-base"

// mapLines pairs each node of the re-encoded tree a with its original b.
func mapLines(a, b *yaml.Node, out map[int]int) {
	out[a.Line] = b.Line
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return
	}
	for i := range a.Content {
		mapLines(a.Content[i], b.Content[i], out)
	}
}

func (p *parser) parseSlurm(s *Sweep, n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "slurm", "%s: want a mapping (partition, time, mem, cpus_per_task, gres, max_parallel, requeue_exit, account, qos)", describe(n))
		return
	}
	keys := []string{"partition", "time", "mem", "cpus_per_task", "gres", "max_parallel", "requeue_exit", "account", "qos"}
	r := s.Slurm
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := "slurm." + k.Value
		if !slices.Contains(keys, k.Value) {
			p.wrap(k, key, unknownKey(k.Value, keys, "in slurm"))
			continue
		}
		var err error
		switch k.Value {
		case "cpus_per_task", "max_parallel", "requeue_exit":
			var x int
			if err = decodeScalar(v, &x); err == nil && x < 0 {
				err = fmt.Errorf("%d is negative", x)
			}
			switch k.Value {
			case "cpus_per_task":
				r.CPUsPerTask = x
			case "max_parallel":
				r.MaxParallel = x
			default:
				if err == nil && x > 255 {
					err = fmt.Errorf("%d: an exit status is 0..255", x)
				}
				r.RequeueExit = x
			}
		default:
			var x string
			if err = decodeScalar(v, &x); err == nil && strings.ContainsFunc(x, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				err = fmt.Errorf("%q holds a control character (it goes into #SBATCH lines)", x)
			}
			switch k.Value {
			case "partition":
				r.Partition = x
			case "time":
				r.Time = x
			case "mem":
				r.Mem = x
			case "gres":
				r.Gres = x
			case "account":
				r.Account = x
			default:
				r.QOS = x
			}
		}
		if err != nil {
			p.wrap(v, key, err)
		}
	}
	s.Slurm = r
}

// decodeScalar decodes a scalar node into x, with yaml.v3's "line N:" cut.
func decodeScalar(n *yaml.Node, x any) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value, got %s", describe(n))
	}
	if err := n.Decode(x); err != nil {
		return errors.New(trimLine(err))
	}
	return nil
}

var linePrefix = regexp.MustCompile(`^(yaml: unmarshal errors:\n\s*)?line -?\d+: `)

func trimLine(err error) string {
	return linePrefix.ReplaceAllString(strings.TrimSpace(err.Error()), "")
}

func (p *parser) parseSeeds(s *Sweep, n *yaml.Node) {
	if n == nil {
		s.Seeds = []int{0}
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "seeds", "%s: want a list of seeds, e.g. [0, 1, 2]", describe(n))
		return
	}
	if len(n.Content) == 0 {
		p.errorf(n, "seeds", "empty: list at least one seed, or leave seeds out for [0]")
		return
	}
	for i, v := range n.Content {
		key := fmt.Sprintf("seeds[%d]", i)
		var x int
		if err := decodeScalar(v, &x); err != nil {
			p.wrap(v, key, err)
			continue
		}
		if x < 0 {
			p.errorf(v, key, "%d is negative", x)
			continue
		}
		if slices.Contains(s.Seeds, x) {
			p.errorf(v, key, "seed %d is listed twice (its cells would be duplicates)", x)
			continue
		}
		s.Seeds = append(s.Seeds, x)
	}
}

func (p *parser) parseSet(n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "set", "%s: want a mapping of run-config key paths to values, e.g. {train.steps: 200}", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := "set." + k.Value
		if !p.checkKey(k, path, k.Value) {
			continue
		}
		if slices.ContainsFunc(p.set, func(o setting) bool { return o.key == k.Value }) {
			p.errorf(k, path, "given twice")
			continue
		}
		p.set = append(p.set, setting{key: k.Value, value: flow(v), path: path, line: v.Line})
	}
}

// checkKey reports whether key is a run-config key path; if not it adds an
// error with a did-you-mean.
func (p *parser) checkKey(n *yaml.Node, path, key string) bool {
	if p.known[key] {
		return true
	}
	known := make([]string, 0, len(p.known))
	for k := range p.known {
		known = append(known, k)
	}
	p.wrap(n, path, unknownKey(key, known, "in the run config"))
	return false
}

func (p *parser) parseLabels(n *yaml.Node) map[string]string {
	labels := map[string]string{}
	if n == nil {
		return labels
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "labels", "%s: want a mapping of axis key paths to short names", describe(n))
		return labels
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var l string
		if err := decodeScalar(v, &l); err != nil {
			p.wrap(v, "labels."+k.Value, err)
			continue
		}
		if !labelOK(l) {
			p.errorf(v, "labels."+k.Value, "%q: a label is a non-empty name without ',', '=' or spaces (it goes into cell names)", l)
			continue
		}
		labels[k.Value] = l
	}
	return labels
}

func labelOK(l string) bool {
	return l != "" && !strings.ContainsAny(l, ",= \t\n\r")
}

func (p *parser) parseAxes(s *Sweep, n *yaml.Node, labels map[string]string) {
	if n == nil {
		return
	}
	p.axesAt = n.Line
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "axes", "%s: want a mapping of run-config key paths to lists of values", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := "axes." + k.Value
		if !p.checkKey(k, path, k.Value) {
			continue
		}
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			p.errorf(v, path, "%s: want a non-empty list of values", describe(v))
			continue
		}
		name := k.Value
		if l, ok := labels[k.Value]; ok {
			name = l
		}
		a := Axis{Name: name, Keys: []string{k.Value}, path: path}
		ok := true
		for _, x := range v.Content {
			d, err := display(x)
			if err != nil {
				p.wrap(x, path, err)
				ok = false
				continue
			}
			a.Values = append(a.Values, d)
			a.settings = append(a.settings, []string{flow(x)})
			a.lines = append(a.lines, x.Line)
		}
		if ok {
			s.Axes = append(s.Axes, a)
		}
	}
}

func (p *parser) parseZip(s *Sweep, n *yaml.Node) {
	if n == nil {
		return
	}
	if p.axesAt == 0 {
		p.axesAt = n.Line
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "zip", "%s: want a list of groups {name, keys, values, labels}", describe(n))
		return
	}
	for gi, g := range n.Content {
		gp := fmt.Sprintf("zip[%d]", gi)
		if g.Kind != yaml.MappingNode {
			p.errorf(g, gp, "%s: want a mapping {name, keys, values, labels}", describe(g))
			continue
		}
		f := map[string]*yaml.Node{}
		for i := 0; i+1 < len(g.Content); i += 2 {
			k := g.Content[i]
			if !slices.Contains([]string{"name", "keys", "values", "labels"}, k.Value) {
				p.wrap(k, gp+"."+k.Value, unknownKey(k.Value, []string{"name", "keys", "values", "labels"}, "in a zip group"))
				continue
			}
			f[k.Value] = g.Content[i+1]
		}
		var a Axis
		a.path = gp
		if v := f["name"]; v == nil {
			p.errorf(g, gp+".name", "missing: the axis name of the group (used in cell names)")
		} else if err := decodeScalar(v, &a.Name); err != nil {
			p.wrap(v, gp+".name", err)
		} else if !labelOK(a.Name) {
			p.errorf(v, gp+".name", "%q: a name without ',', '=' or spaces", a.Name)
		}
		kn := f["keys"]
		if kn == nil || kn.Kind != yaml.SequenceNode || len(kn.Content) == 0 {
			p.errorf(orNode(kn, g), gp+".keys", "want a non-empty list of run-config key paths")
			continue
		}
		ok := true
		for i, k := range kn.Content {
			kp := fmt.Sprintf("%s.keys[%d]", gp, i)
			var key string
			if err := decodeScalar(k, &key); err != nil {
				p.wrap(k, kp, err)
				ok = false
				continue
			}
			if !p.checkKey(k, kp, key) {
				ok = false
				continue
			}
			if slices.Contains(a.Keys, key) {
				p.errorf(k, kp, "%s is listed twice", key)
				ok = false
			}
			a.Keys = append(a.Keys, key)
		}
		vn := f["values"]
		if vn == nil || vn.Kind != yaml.SequenceNode || len(vn.Content) == 0 {
			p.errorf(orNode(vn, g), gp+".values", "want a non-empty list of value lists, one value per key")
			continue
		}
		var ln *yaml.Node
		if l := f["labels"]; l != nil {
			if l.Kind != yaml.SequenceNode || len(l.Content) != len(vn.Content) {
				p.errorf(l, gp+".labels", "want a list of %d labels, one per entry of values", len(vn.Content))
				ok = false
			} else {
				ln = l
			}
		}
		for i, row := range vn.Content {
			vp := fmt.Sprintf("%s.values[%d]", gp, i)
			if row.Kind != yaml.SequenceNode || len(row.Content) != len(kn.Content) {
				p.errorf(row, vp, "%s: want a list of %d values, one per key (%s)", describe(row), len(kn.Content), strings.Join(a.Keys, ", "))
				ok = false
				continue
			}
			var set []string
			var shown []string
			for _, x := range row.Content {
				set = append(set, flow(x))
				d, err := display(x)
				if err != nil {
					p.wrap(x, vp, err)
					ok = false
				}
				shown = append(shown, fmt.Sprint(d))
			}
			var d any = strings.Join(shown, "/")
			if ln != nil {
				lv, err := display(ln.Content[i])
				if err != nil {
					p.wrap(ln.Content[i], fmt.Sprintf("%s.labels[%d]", gp, i), err)
					ok = false
				}
				d = lv
			}
			a.Values = append(a.Values, d)
			a.settings = append(a.settings, set)
			a.lines = append(a.lines, row.Line)
		}
		if ok {
			s.Axes = append(s.Axes, a)
		}
	}
}

// orNode is n, or parent when n is missing: where to point an error.
func orNode(n, parent *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return parent
}

// checkAxes checks what spans axes: unique names and keys, labels naming
// axis keys, no key both in set and an axis, display values distinct.
func (p *parser) checkAxes(s *Sweep, labelsNode *yaml.Node, labels map[string]string) {
	names := map[string]string{}
	keys := map[string]string{}
	for _, a := range s.Axes {
		if prev, dup := names[a.Name]; dup {
			p.errs = append(p.errs, &Error{File: p.file, Line: a.lines[0], Key: a.path,
				Err: fmt.Errorf("axis name %q is also the name of %s: give one a different label", a.Name, prev)})
		}
		names[a.Name] = a.path
		for _, k := range a.Keys {
			if prev, dup := keys[k]; dup {
				p.errs = append(p.errs, &Error{File: p.file, Line: a.lines[0], Key: a.path, Err: fmt.Errorf("%s is also varied by %s", k, prev)})
			}
			keys[k] = a.path
			if slices.ContainsFunc(p.set, func(o setting) bool { return o.key == k }) {
				p.errs = append(p.errs, &Error{File: p.file, Line: a.lines[0], Key: a.path, Err: fmt.Errorf("%s is also in set: an axis value would override it; drop one", k)})
			}
		}
		seen := map[string]int{}
		for i, v := range a.Values {
			c := canon(v)
			if j, dup := seen[c]; dup {
				p.errs = append(p.errs, &Error{File: p.file, Line: a.lines[i], Key: a.path,
					Err: fmt.Errorf("%w: value %s is listed twice (entries %d and %d)", ErrDuplicateCell, c, j, i)})
			}
			seen[c] = i
		}
	}
	if labelsNode != nil && labelsNode.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(labelsNode.Content); i += 2 {
			k := labelsNode.Content[i]
			if _, ok := labels[k.Value]; ok && !slices.ContainsFunc(s.Axes, func(a Axis) bool { return len(a.Keys) == 1 && a.Keys[0] == k.Value && a.path == "axes."+k.Value }) {
				p.errorf(k, "labels."+k.Value, "not a key of axes (a zip group is named by its name)")
			}
		}
	}
}

func (p *parser) parseMatches(s *Sweep, n *yaml.Node, path string) []match {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "%s: want a list of {axis: value, ...} conditions", describe(n))
		return nil
	}
	var out []match
	for i, e := range n.Content {
		if m := p.parseMatch(s, e, fmt.Sprintf("%s[%d]", path, i)); m != nil {
			out = append(out, *m)
		}
	}
	return out
}

// parseMatch reads {axis name: display value, ...}; every name must be an
// axis and every value one of its values.
func (p *parser) parseMatch(s *Sweep, n *yaml.Node, path string) *match {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		p.errorf(n, path, "%s: want a mapping of axis names to values, e.g. {res: 32}", describe(n))
		return nil
	}
	names := make([]string, len(s.Axes))
	for i, a := range s.Axes {
		names[i] = a.Name
	}
	m := &match{vals: map[string]any{}, line: n.Line, path: path}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := path + "." + k.Value
		ai := slices.Index(names, k.Value)
		if ai < 0 {
			p.wrap(k, kp, unknownKey(k.Value, names, "among the axis names"))
			ok = false
			continue
		}
		d, err := display(v)
		if err != nil {
			p.wrap(v, kp, err)
			ok = false
			continue
		}
		if !slices.ContainsFunc(s.Axes[ai].Values, func(x any) bool { return canon(x) == canon(d) }) {
			vals := make([]string, len(s.Axes[ai].Values))
			for j, x := range s.Axes[ai].Values {
				vals[j] = canon(x)
			}
			p.errorf(v, kp, "%s is not one of the axis's values (%s)", canon(d), strings.Join(vals, ", "))
			ok = false
			continue
		}
		m.vals[k.Value] = d
	}
	if !ok {
		return nil
	}
	return m
}

func (m *match) matches(c *CellInfo) bool {
	for k, v := range m.vals {
		if canon(c.Axes[k]) != canon(v) {
			return false
		}
	}
	return true
}

// flow is n as one line of YAML (flow style), the value of an override.
func flow(n *yaml.Node) string {
	c := deepCopy(n)
	setFlow(c)
	b, err := yaml.Marshal(c)
	if err != nil { // a node that came from yaml.Unmarshal always encodes
		panic(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// deepCopy copies n without comments and anchors, aliases replaced by
// what they name, so the copy stands alone.
func deepCopy(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return deepCopy(n.Alias)
	}
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = deepCopy(x)
	}
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	return &c
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style |= yaml.FlowStyle
	}
	for _, x := range n.Content {
		setFlow(x)
	}
}

// display decodes n to a plain Go value for sweep.json and cell names.
func display(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, errors.New(trimLine(err))
	}
	if _, err := json.Marshal(v); err != nil {
		return nil, fmt.Errorf("value %s: %w", flow(n), err)
	}
	return v, nil
}

// canon is the comparable text of a display value: JSON, so 32 and 32.0
// compare equal and "32" does not.
func canon(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// valueText is a display value as it appears in a cell name.
func valueText(v any) string {
	switch v.(type) {
	case string, int, float64, bool:
		return fmt.Sprint(v)
	}
	return canon(v)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%s %q", n.Tag, n.Value)
}

// unknownKey is ErrUnknownKey with the closest known key, if one is close.
func unknownKey(key string, known []string, where string) error {
	if best := closest(key, known); best != "" {
		return fmt.Errorf("%w %s (did you mean %s?)", ErrUnknownKey, where, best)
	}
	if len(known) <= 12 {
		return fmt.Errorf("%w %s (known: %s)", ErrUnknownKey, where, strings.Join(known, ", "))
	}
	return fmt.Errorf("%w %s", ErrUnknownKey, where)
}

// closest is the known key nearest to key by edit distance, if within a
// third of its length (at least 2); ties go to the first in sorted order.
func closest(key string, known []string) string {
	known = slices.Sorted(slices.Values(known))
	best, bestD := "", max(2, len(key)/3)+1
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// knownKeys is every key path of a run config, from experiments.Config's
// type (its yaml tags), so that optional keys left out of the defaults'
// YAML (omitempty: model.decoder.ffn_pruning, …) count. Map entries
// (data.sources.<name>) are the names the base gives; sections the config
// keeps as raw YAML accept any key below them.
func knownKeys(base *yaml.Node) map[string]bool {
	if base != nil && base.Kind == yaml.DocumentNode && len(base.Content) > 0 {
		base = base.Content[0]
	}
	out := map[string]bool{}
	var walk func(t reflect.Type, n *yaml.Node, path string)
	walk = func(t reflect.Type, n *yaml.Node, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t == reflect.TypeFor[yaml.Node]():
			if n != nil { // raw YAML: what the base sets is known
				for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
					p := path + "." + n.Content[i].Value
					out[p] = true
					walk(t, n.Content[i+1], p)
				}
			}
		case t.Kind() == reflect.Struct:
			for f := range t.Fields() {
				if !f.IsExported() {
					continue
				}
				name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "-" {
					continue
				}
				if strings.Contains(opts, "inline") {
					walk(f.Type, n, path)
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				p := name
				if path != "" {
					p = path + "." + name
				}
				out[p] = true
				walk(f.Type, child(n, name), p)
			}
		case t.Kind() == reflect.Map:
			for i := 0; n != nil && n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
				p := path + "." + n.Content[i].Value
				out[p] = true
				walk(t.Elem(), n.Content[i+1], p)
			}
		}
	}
	walk(reflect.TypeFor[experiments.Config](), base, "")
	return out
}

// child is the value of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
