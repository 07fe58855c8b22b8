// Package experiments runs one cell of an ablation: it owns the run config
// (the YAML file that names the data mixture, the model, the training
// schedule and the evaluation), and the training job that turns it into a
// run directory: shapes world, tokenizer and pretrained image encoder
// (model.vision.init with an encoder: section; PretrainEncoder) prepared
// on first use, AdamW
// with a warm-up + cosine learning rate, metrics.jsonl, atomic checkpoints,
// exact resume, and DONE once everything else is written.
//
// # Config
//
// A run config is decoded with unknown keys rejected; every error names
// the file, line and key path:
//
//	tiny.yaml:14: train.lr: cannot unmarshal !!str `fast` into float64
//	tiny.yaml:9: model.decoder.widht: unknown key (known: vocab, width, …)
//	--set train.lrr: unknown key (known: steps, lr, min_lr, …)
//
// Absent keys take the defaults of Default. `--set a.b.c=value` overrides
// (the value parsed as a YAML scalar or flow collection) are applied to
// the YAML tree before decoding, so they meet the same checks. Relative
// paths are relative to the config file's directory and become absolute.
// Derived: model.decoder.vocab from the tokenizer when 0;
// data.packing.image_tokens and data.packing.resolution from the model when
// 0; data.seed from seed when 0. Checked across sections:
// data.packing.image_tokens = model.connector.tokens,
// data.packing.resolution = model.vision.resolution,
// data.packing.seq_len ≤ model.decoder.max_seq.
//
// # Run directory
//
//	config.resolved.yaml                  the config after defaults, overrides, derivation
//	tokenizer.json                        the tokenizer used (resume reads this copy)
//	metrics.jsonl                         one line per train.log_every steps
//	checkpoints/step-N.safetensors        weights
//	checkpoints/step-N.optim.safetensors  AdamW moments
//	checkpoints/step-N.state.json         step, mixer State, config hash, both files' sha256
//	final.safetensors                     weights after train.steps
//	eval.json                             experiments/eval's Results for final.safetensors
//	DONE                                  last
//
// A checkpoint is committed by its state.json: the two safetensors files
// are each written to a temporary name, fsynced and renamed first, then
// state.json the same way, then the directory is fsynced. A checkpoint
// counts only when its state.json parses and both sha256s match, so a
// crash at any instant leaves the previous complete checkpoint in use.
// Older checkpoints beyond train.keep_checkpoints are removed only after
// the new one is committed.
//
// # Determinism and resume
//
// Weights, data order and packing are a function of the resolved config:
// two runs of the same config, seed and train.threads on the same machine
// and build give byte-identical final.safetensors, and so does a run that
// was killed (SIGKILL included) and resumed any number of times, because a
// checkpoint holds everything that evolves: weights, AdamW moments and
// step, and the mixer's State (stream positions, sampler credits and PCG,
// the partly packed sample). The learning rate is a pure function of the
// step. What breaks bit-identity: other train.threads (workers split
// matrix products by rows over goroutines, and OpenBLAS threads split them
// its own way, both changing the kernels' blocking and so the rounding:
// 60 steps of examples/tiny.yaml with workers 1 and 2 end with different
// bytes), another BLAS build or version (cgo OpenBLAS against the purego
// build), and another CPU (its vector width and FMA change rounding).
// metrics.jsonl's tokens_per_s, time, data_wait_ms and gpu_idle_ms are
// wall-clock and differ.
//
// # Metrics
//
// Each metrics.jsonl line holds step, loss, lr, grad_norm, tokens_per_s,
// samples / tokens / images drawn per source (cumulative), padding (the
// share of all sequence positions so far that are padding), skipped (rows
// dropped with a source's on_error: skip, by source and reason; absent when
// none), time, device and, on the GPU, precision; data_wait_ms is the mean
// time per step the trainer waited for its batch (the next batch is drawn
// while the current step runs) and gpu_idle_ms the GPU's mean idle gap
// between steps.
package experiments
