package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/experiments/scoring"
)

// Task names a benchmark.
type Task string

const (
	TaskCaption Task = "caption"
	TaskVQA     Task = "vqa"
)

// Subdirectories of a benchmark directory (data/shapes' layout).
const (
	QueryDir   = "query"
	SupportDir = "support"
)

// example is one benchmark row: an image with its question and answers
// (VQA) or its references (captioning).
type example struct {
	id       string
	where    string // "file: row N", for errors about the row's image
	image    []byte // encoded, decoded on first use into pix
	pix      []float32
	question string   // VQA: the row's text segment
	answer   string   // VQA: meta "answer", the target of a demonstration
	answers  []string // VQA: meta "answers", the ten human answers scored against
	refs     []string // captioning: meta "references"
}

// benchmark is one task's query and support splits.
type benchmark struct {
	task    Task
	dir     string
	queries []example
	support []example
}

// errEnough stops a read once the query limit is reached.
var errEnough = errors.New("enough rows")

// loadBenchmark reads dir/query (its first maxQueries rows, 0 = all) and
// dir/support. Rows are kept encoded; images are decoded on first use.
func loadBenchmark(ctx context.Context, task Task, dir string, maxQueries int) (*benchmark, error) {
	b := &benchmark{task: task, dir: dir}
	var err error
	if b.queries, err = readSplit(ctx, task, filepath.Join(dir, QueryDir), maxQueries, false); err != nil {
		return nil, err
	}
	if b.support, err = readSplit(ctx, task, filepath.Join(dir, SupportDir), 0, true); err != nil {
		return nil, err
	}
	if len(b.queries) == 0 {
		return nil, fmt.Errorf("%s: no query rows", filepath.Join(dir, QueryDir))
	}
	return b, nil
}

// readSplit reads the rows of one split in dataset order, at most limit
// (0: all). Support rows must carry a demonstration target.
func readSplit(ctx context.Context, task Task, dir string, limit int, support bool) ([]example, error) {
	files, err := layouts.ListFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("%s benchmark: %w", task, err)
	}
	var out []example
	for _, path := range files {
		f, err := layouts.Open(path, layouts.Options{})
		if err != nil {
			return nil, fmt.Errorf("%s benchmark: %w", task, err)
		}
		for rg := range f.NumRowGroups() {
			err = f.ReadRowGroup(ctx, rg, func(row int64, rec *data.Record, rerr error) error {
				if rerr != nil {
					return rerr
				}
				ex, column, perr := parseExample(task, rec, support)
				if perr != nil {
					return &data.RowError{File: path, RowGroup: rg, Row: row, Column: column, Err: fmt.Errorf("id %q: %w", rec.ID, perr)}
				}
				ex.where = fmt.Sprintf("%s: row %d", path, row)
				out = append(out, ex)
				if limit > 0 && len(out) == limit {
					return errEnough
				}
				return nil
			})
			if err != nil {
				break
			}
		}
		f.Close()
		switch {
		case errors.Is(err, errEnough):
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("%s benchmark: %w", task, err)
		}
	}
	return out, nil
}

// exampleMeta is the part of a benchmark row's meta that evaluation reads.
type exampleMeta struct {
	References []string `json:"references"`
	Answer     string   `json:"answer"`
	Answers    []string `json:"answers"`
}

// parseExample checks one record against its task's layout (data/shapes
// doc.go: caption [image] + meta references; VQA [image, question] + meta
// answer and answers) and returns it, or an error and the column at fault.
func parseExample(task Task, rec *data.Record, support bool) (example, string, error) {
	ex := example{id: rec.ID}
	var texts []string
	for i, im := range rec.Images {
		switch {
		case im != nil && ex.image != nil:
			return ex, "images", errors.New("more than one image: a benchmark row has exactly one")
		case im != nil:
			ex.image = im.Bytes
		case rec.Texts[i] != nil:
			texts = append(texts, *rec.Texts[i])
		}
	}
	if ex.image == nil {
		return ex, "images", errors.New("no image")
	}
	var meta exampleMeta
	if err := json.Unmarshal([]byte(rec.Meta), &meta); err != nil {
		return ex, "meta", fmt.Errorf("meta: %w", err)
	}
	switch task {
	case TaskCaption:
		if len(meta.References) == 0 {
			return ex, "meta", errors.New(`meta "references": missing or empty`)
		}
		for i, r := range meta.References {
			if strings.TrimSpace(r) == "" {
				return ex, "meta", fmt.Errorf(`meta "references"[%d] is blank`, i)
			}
		}
		ex.refs = meta.References
	case TaskVQA:
		ex.question = strings.TrimSpace(strings.Join(texts, " "))
		if ex.question == "" {
			return ex, "texts", errors.New("no question text")
		}
		if len(meta.Answers) != scoring.NumVQAAnswers {
			return ex, "meta", fmt.Errorf(`meta "answers" has %d answers, want %d`, len(meta.Answers), scoring.NumVQAAnswers)
		}
		ex.answers = meta.Answers
		ex.answer = strings.TrimSpace(meta.Answer)
		if support && ex.answer == "" {
			return ex, "meta", errors.New(`meta "answer": missing or blank, but a demonstration needs its answer`)
		}
	default:
		return ex, "", fmt.Errorf("unknown task %q", task)
	}
	return ex, "", nil
}

// pixels decodes the example's image once and keeps it.
func (ex *example) pixels(opts images.Options) ([]float32, error) {
	if ex.pix == nil {
		im, err := images.Decode(ex.image, opts)
		if err != nil {
			return nil, fmt.Errorf("%s (id %q): %w", ex.where, ex.id, err)
		}
		ex.pix = im.Pix
	}
	return ex.pix, nil
}
