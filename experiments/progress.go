package experiments

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// progress reports training progress: a bar redrawn in place on a
// terminal, or a log line per metrics line otherwise.
type progress struct {
	bar        io.Writer // nil: log lines
	log        *slog.Logger
	start      int
	total      int
	t0, drawn  time.Time
	stepTokens float64 // positions per batch
}

func newProgress(bar io.Writer, log *slog.Logger, start, total int, stepTokens float64) *progress {
	return &progress{bar: bar, log: log, start: start, total: total, t0: time.Now(), stepTokens: stepTokens}
}

// eta extrapolates from the steps run in this process.
func (p *progress) eta(step int) time.Duration {
	if step <= p.start {
		return 0
	}
	per := time.Since(p.t0) / time.Duration(step-p.start)
	return (per * time.Duration(p.total-step)).Round(time.Second)
}

func (p *progress) update(step int, loss float64) {
	if p.bar == nil || (time.Since(p.drawn) < 200*time.Millisecond && step < p.total) {
		return
	}
	p.drawn = time.Now()
	const width = 30
	fill := width * step / p.total
	tps := p.stepTokens * float64(step-p.start) / time.Since(p.t0).Seconds()
	fmt.Fprintf(p.bar, "\r\033[Kstep %d/%d [%s%s] %3d%% loss %.4f %.0f tok/s ETA %s",
		step, p.total, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*step/p.total, loss, tps, p.eta(step))
}

func (p *progress) logged(step int, loss, tps float64) {
	if p.bar == nil {
		p.log.Info("train", "step", step, "of", p.total, "loss", fmt.Sprintf("%.4f", loss), "tokens_per_s", fmt.Sprintf("%.0f", tps), "eta", p.eta(step))
	}
}

func (p *progress) clear() {
	if p.bar != nil {
		fmt.Fprint(p.bar, "\r\033[K")
	}
}
