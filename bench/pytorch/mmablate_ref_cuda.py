#!/usr/bin/env python3
"""GPU peer of `mmablate bench train --device cuda --peer pytorch`.

Runs mmablate_ref.py's model (the same decoder, line by line: explicit
causal + same-document mask, softmax, RMSNorm, RoPE, SwiGLU, tied
embedding; with --images also its ViT and connector, e.g. ViT-B/16 at 224
px and the C-Abstractor) on a CUDA device in PyTorch eager mode with bf16
autocast (or fp32), fp32 master weights and torch.optim.AdamW (fused=False,
foreach default), the same shapes and the same step (zero_grad, loss,
backward, clip_grad_norm_(1.0), step) as the Go side. The weights are a
random draw (mmablate_ref.init_params), as the Go side's are: speed does
not depend on their values. With --images every sequence opens with one
image's connector.tokens placeholders (mmablate_ref.bench_batch, the Go
side's SyntheticBatch layout) and the ViT and connector train too. With
--compile the loss is wrapped in torch.compile first (its compile time is
reported apart, not timed).

  mmablate_ref_cuda.py --config CFG.json --batch-size 16 --seq 1024 --steps 10 --warmup 3 [--images] [--amp bf16|none] [--compile]

--device cpu runs the same code on the CPU: a smoke test of the script
where no GPU is, not a measurement (use --amp none there: torch 1.13's CPU
autocast rejects LayerNorm on bf16 input with fp32 weights, which CUDA
autocast runs in fp32).

Prints one JSON line: steps_per_s, tokens_per_s, loss, peak_gpu_mb,
compile_s, torch (version), device (name).
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmablate_ref as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--images", action="store_true", help="the config's ViT and connector, one image per sequence")
    ap.add_argument("--amp", default="bf16", choices=["bf16", "none"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    a = ap.parse_args()
    with open(a.config) as f:
        cfg = json.load(f)
    if a.images:
        if not cfg.get("vision") or not cfg.get("connector"):
            sys.exit(f"{a.config}: --images needs the config's vision and connector sections")
        cfg = {"decoder": cfg["decoder"], "vision": cfg["vision"], "connector": cfg["connector"]}
    else:
        cfg = {"decoder": cfg["decoder"]}
    gen = torch.Generator().manual_seed(a.seed)
    params = ref.init_params(cfg, gen)
    batch, image_token_id = ref.bench_batch(cfg, a.batch_size, a.seq, a.images, gen)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        # The reference builds its masks and RoPE tables with factory calls
        # that take no device argument: make CUDA the default so they land there.
        torch.set_default_device("cuda")
    params = {k: v.to(dev).requires_grad_(True) for k, v in params.items()}
    batch = {k: v.to(dev) for k, v in batch.items()}
    decay = [t for t in params.values() if t.dim() >= 2]
    no_decay = [t for t in params.values() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    model = ref.Model(cfg, params)
    loss_fn = model.loss
    compile_s = 0.0
    if a.compile:
        loss_fn = torch.compile(model.loss)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=True)
        if a.amp == "bf16":
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                loss = loss_fn(batch, image_token_id)
        else:
            loss = loss_fn(batch, image_token_id)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        return loss

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        step()
    sync()
    if a.compile:
        compile_s = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step().item()  # the Go side also reads each step's loss back
    sync()
    dt = time.perf_counter() - t0
    cuda = dev.type == "cuda"
    json.dump({"steps_per_s": a.steps / dt, "tokens_per_s": a.steps * a.batch_size * a.seq / dt, "loss": loss,
               "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0, "compile_s": compile_s,
               "torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu"}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
