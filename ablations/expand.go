package ablations

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/mixer"
)

// CellInfo is what sweep.json and cell.json say about a cell.
type CellInfo struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Index int    `json:"index"`
	// Dir is the cell's directory relative to the sweep directory.
	Dir      string         `json:"dir"`
	Axes     map[string]any `json:"axes"` // axis name → display value
	Seed     int            `json:"seed"`
	Baseline bool           `json:"baseline"`
}

// Cell is one run of the sweep: its identity and resolved run config.
type Cell struct {
	CellInfo
	Config experiments.Config
	// ConfigYAML is Config.Marshal(): DIR/cells/<id>/config.yaml.
	ConfigYAML []byte
}

// MaxCells bounds a sweep's grid (axes × seeds, before exclude): each
// cell's config is resolved and checked when the file is read (a few
// milliseconds a cell on two cores), and MM1-style sweeps have tens.
const MaxCells = 1000

// maxCellErrors bounds the distinct errors reported from expanding cells:
// one bad value usually breaks many cells the same way.
const maxCellErrors = 10

// expand makes the cells: the cartesian product of the axes (the first
// axis varies slowest), minus excluded combinations, times the seeds
// (innermost, so a configuration's seeds are neighbours).
func (p *parser) expand(s *Sweep) {
	n := len(s.Seeds)
	for _, a := range s.Axes {
		if n *= len(a.Values); n > MaxCells {
			break
		}
	}
	if n > MaxCells {
		p.errs = append(p.errs, &Error{File: p.file, Line: p.axesAt, Err: fmt.Errorf("the grid has more than %d cells before exclude: split the sweep", MaxCells)})
		return
	}
	idx := make([]int, len(s.Axes))
	seen := map[string]string{} // error text → reported
	ids := map[string]string{}  // id → cell name
	for {
		axes := map[string]any{}
		parts := make([]string, 0, len(s.Axes)+1)
		overrides := make([]setting, 0, len(p.set)+len(s.Axes)+1)
		overrides = append(overrides, p.set...)
		for i, a := range s.Axes {
			v := a.Values[idx[i]]
			axes[a.Name] = v
			parts = append(parts, a.Name+"="+valueText(v))
			for j, k := range a.Keys {
				overrides = append(overrides, setting{key: k, value: a.settings[idx[i]][j], path: a.path, line: a.lines[idx[i]]})
			}
		}
		info := CellInfo{Axes: axes}
		excluded := false
		for _, m := range p.exclude {
			excluded = excluded || m.matches(&info)
		}
		sets := make([]string, 0, len(overrides)+1)
		for _, o := range overrides {
			sets = append(sets, o.key+"="+o.value)
		}
		for _, seed := range s.Seeds {
			if excluded || len(seen) >= maxCellErrors {
				break
			}
			c := Cell{CellInfo: CellInfo{Name: strings.Join(append(parts, "seed="+strconv.Itoa(seed)), ","), Axes: axes, Seed: seed}}
			cfg, err := experiments.Parse(p.baseBytes, p.baseName, p.baseDir, append(sets, "seed="+strconv.Itoa(seed)))
			if err != nil {
				p.cellErrors(c.Name, overrides, err, seen)
				continue
			}
			if c.ConfigYAML, err = cfg.Marshal(); err != nil {
				p.errs = append(p.errs, &Error{File: p.file, Line: p.axesAt, Err: fmt.Errorf("cell %s: %w", c.Name, err)})
				continue
			}
			c.Config = cfg
			c.ID, err = cellID(cfg, s.Root)
			if err != nil {
				p.errs = append(p.errs, &Error{File: p.file, Line: p.axesAt, Err: fmt.Errorf("cell %s: %w", c.Name, err)})
				continue
			}
			if prev, dup := ids[c.ID]; dup {
				p.errs = append(p.errs, &Error{File: p.file, Line: p.axesAt,
					Err: fmt.Errorf("%w: %s and %s resolve to the same run config (id %s)", ErrDuplicateCell, prev, c.Name, c.ID)})
				continue
			}
			ids[c.ID] = c.Name
			c.Index = len(s.Cells)
			c.Dir = "cells/" + c.ID
			c.Baseline = p.base != nil && p.base.matches(&c.CellInfo)
			s.Cells = append(s.Cells, c)
		}
		// Next combination: the last axis varies fastest.
		i := len(idx) - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < len(s.Axes[i].Values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			break
		}
	}
	if len(p.errs) > 0 {
		return
	}
	if len(s.Cells) == 0 {
		p.errs = append(p.errs, &Error{File: p.file, Line: p.axesAt, Key: "exclude", Err: fmt.Errorf("%w: exclude drops every cell", ErrEmptyGrid)})
		return
	}
	if p.base != nil {
		for _, c := range s.Cells {
			if c.Baseline {
				return
			}
		}
		p.errs = append(p.errs, &Error{File: p.file, Line: p.base.line, Key: "baseline", Err: errors.New("matches no cell (is it excluded?)")})
	}
}

var (
	setErrRE    = regexp.MustCompile(`^--set ([^:\s]+): (?s:(.*))$`)
	inlineErrRE = regexp.MustCompile(`^\x00inline-base:(\d+): ([^:\s]+): (?s:(.*))$`)
)

// cellErrors turns experiments' errors for one cell into sweep-file
// errors: an override's error gets the line and key path of the value in
// the sweep file, an inline base's its line there; any other (a check
// across keys, say) names the cell.
func (p *parser) cellErrors(cell string, overrides []setting, err error, seen map[string]string) {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		msg := e.Error()
		if _, dup := seen[msg]; dup || len(seen) >= maxCellErrors {
			continue
		}
		seen[msg] = cell
		if p.overrideError(msg, overrides) {
			continue
		}
		if m := inlineErrRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			p.errs = append(p.errs, &Error{File: p.file, Line: p.baseLines[n], Key: "base." + m[2], Err: errors.New(m[3])})
			continue
		}
		if key, rest, ok := strings.Cut(msg, ": "); ok {
			if o, ok := lastOverride(overrides, key); ok {
				p.errs = append(p.errs, &Error{File: p.file, Line: o.line, Key: o.keyPath(key), Err: fmt.Errorf("cell %s: %s", cell, rest)})
				continue
			}
		}
		if strings.HasPrefix(msg, inlineBaseName) {
			msg = p.file + " base" + strings.TrimPrefix(msg, inlineBaseName)
		}
		p.errs = append(p.errs, &Error{File: p.file, Line: p.axesAt, Err: fmt.Errorf("cell %s: %s", cell, msg)})
	}
}

// overrideError reports an experiments "--set key: ..." error at the
// sweep-file line of the override it came from, if it did.
func (p *parser) overrideError(msg string, overrides []setting) bool {
	m := setErrRE.FindStringSubmatch(msg)
	if m == nil {
		return false
	}
	o, ok := lastOverride(overrides, m[1])
	if !ok {
		return false
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: o.line, Key: o.keyPath(m[1]), Err: fmt.Errorf("value %s: %s", o.value, m[2])})
	return true
}

// lastOverride is the override that set key (or a section above or
// below it): the last one, as it is the one applied.
func lastOverride(overrides []setting, key string) (setting, bool) {
	for i := len(overrides) - 1; i >= 0; i-- {
		o := overrides[i]
		if key == o.key || strings.HasPrefix(key, o.key+".") || strings.HasPrefix(o.key, key+".") {
			return o, true
		}
	}
	return setting{}, false
}

// keyPath is the sweep-file key path of an error about run-config key.
func (o setting) keyPath(key string) string {
	switch {
	case strings.HasPrefix(key, o.key+"."):
		return o.path + strings.TrimPrefix(key, o.key)
	case !strings.HasSuffix(o.path, o.key): // a zip group: name the key
		return o.path + " " + o.key
	}
	return o.path
}

// cellID is the first 12 hex digits of the sha256 of cfg as YAML, with
// train.threads zeroed and dataset paths relative to root.
func cellID(cfg experiments.Config, root string) (string, error) {
	c := cfg
	c.Train.Threads = experiments.Threads{}
	rel := func(p string) string {
		if p == "" || !filepath.IsAbs(p) {
			return p
		}
		if r, err := filepath.Rel(root, p); err == nil {
			return filepath.ToSlash(r)
		}
		return p
	}
	c.Shapes.Dir = rel(c.Shapes.Dir)
	c.Shapes.TextFiles = make([]string, len(cfg.Shapes.TextFiles))
	for i, p := range cfg.Shapes.TextFiles {
		c.Shapes.TextFiles[i] = rel(p)
	}
	c.Tokenizer.Path = rel(c.Tokenizer.Path)
	c.Data.Sources = make(map[string]mixer.Source, len(cfg.Data.Sources))
	for n, s := range cfg.Data.Sources {
		paths := make([]string, len(s.Paths))
		for i, p := range s.Paths {
			paths[i] = rel(p)
		}
		s.Paths = paths
		c.Data.Sources[n] = s
	}
	c.Eval.Caption, c.Eval.VQA, c.Eval.Text = rel(c.Eval.Caption), rel(c.Eval.VQA), rel(c.Eval.Text)
	b, err := c.Marshal()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12], nil
}
