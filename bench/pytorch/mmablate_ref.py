#!/usr/bin/env python3
"""PyTorch reference of mmablate's models (MODEL-SPEC.md), for parity tests and
the `mmablate bench train --peer pytorch` peer.

The model follows MODEL-SPEC.md line by line: an Apple-foundation-model-style
decoder (RMSNorm, RoPE rotate-half, GQA with QK-norm, causal + same-document
mask, SwiGLU, tied embedding), a pre-norm ViT, and the four connectors
(avgpool, attnpool, cabstractor, mlp). Parameter names are the safetensors
names of models/README.md, so a file written by Go loads here unchanged.

Modes (the config is the `model:` section as JSON, keys as in the YAML):

  grad  --case DIR [--case DIR ...] [--dtype float64]
        Loss and gradients of one batch per case. DIR holds config.json,
        weights.safetensors and batch.safetensors; the mode writes
        DIR/out.safetensors with `loss` [1] and `grad.<name>` for every
        trainable parameter. Several cases share one process because importing
        torch costs seconds.
  bench --config CFG.json --batch-size 8 --seq 128 --steps 20 --threads 2 [--images]
        Timed AdamW steps on random data; prints JSON
        {"steps_per_s", "tokens_per_s", "peak_rss_mb", "loss"}.
        The caller sets OPENBLAS_NUM_THREADS=1 so that OpenBLAS's threads do
        not oversubscribe the cores torch.set_num_threads already uses.

Batch file tensors (ints stored as F32, exact below 2^24): tokens, targets,
loss_mask, pos, doc_ids [B, T]; images [K, 3, R, R] when K > 0; metadata
`image_token_id`.

Safetensors is read and written with struct + json here because the
safetensors pip package is not installed on these machines.
"""

import argparse
import json
import math
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- safetensors

_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "F64": (torch.float64, 8)}


def st_read(path):
    """Returns ({name: float tensor}, metadata). Checks offsets tile the data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    if n > 100 << 20 or 8 + n > len(raw):
        raise ValueError(f"{path}: bad header length {n}")
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n :]
    out, pos = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        start, end = e["data_offsets"]
        if start != pos or end > len(data):
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {e['data_offsets']}")
        dtype, size = _DTYPES[e["dtype"]]
        count = math.prod(e["shape"])
        if count * size != end - start:
            raise ValueError(f"{path}: tensor {name}: shape {e['shape']} does not match offsets")
        buf = bytearray(data[start:end])  # writable copy: frombuffer warns on read-only bytes
        t = torch.frombuffer(buf, dtype=dtype) if count else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).float()
        pos = end
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} trailing bytes")
    return out, meta


def st_write(path, tensors, metadata=None):
    """Writes F32 tensors, names sorted, header padded to 8 (as the Go writer)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous().cpu()
        b = t.numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------- model

EPS = 1e-5


def rmsnorm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Model:
    """Holds the parameters as a flat {name: tensor} dict (the safetensors names)."""

    def __init__(self, cfg, params):
        self.cfg, self.p = cfg, params
        d = cfg["decoder"]
        self.D, self.L, self.H, self.KV = d["width"], d["layers"], d["heads"], d["kv_heads"]
        self.hd = self.D // self.H
        self.rope_base = d["rope_base"]
        self.qk_norm = d.get("qk_norm", True)
        self.vision = cfg.get("vision")
        self.conn = cfg.get("connector")

    # ---- decoder
    def rope(self, x, pos):
        # x [B, T, heads, hd]; pos [B, T]
        hd = self.hd
        inv = self.rope_base ** (-torch.arange(0, hd // 2, dtype=torch.float64, device=pos.device) * 2 / hd)
        ang = pos.to(torch.float64)[..., None] * inv  # [B, T, hd/2]
        cos = torch.cat([ang.cos(), ang.cos()], -1).to(x.dtype)[:, :, None, :]
        sin = torch.cat([ang.sin(), ang.sin()], -1).to(x.dtype)[:, :, None, :]
        return x * cos + rotate_half(x) * sin

    def attn(self, i, x, pos, mask):
        p, B, T = self.p, x.shape[0], x.shape[1]
        pre = f"llm.layers.{i}.attn."
        q = (x @ p[pre + "wq.weight"].t()).view(B, T, self.H, self.hd)
        k = (x @ p[pre + "wk.weight"].t()).view(B, T, self.KV, self.hd)
        v = (x @ p[pre + "wv.weight"].t()).view(B, T, self.KV, self.hd)
        if self.qk_norm:
            q = rmsnorm(q, p[pre + "q_norm.weight"])
            k = rmsnorm(k, p[pre + "k_norm.weight"])
        q, k = self.rope(q, pos), self.rope(k, pos)
        rep = self.H // self.KV
        q = q.transpose(1, 2)  # [B, H, T, hd]
        k = k.transpose(1, 2).repeat_interleave(rep, dim=1)
        v = v.transpose(1, 2).repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        s = s.masked_fill(~mask[:, None], float("-inf"))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, self.D)
        return o @ p[pre + "wo.weight"].t()

    def mlp(self, i, x):
        p, pre = self.p, f"llm.layers.{i}.mlp."
        return (F.silu(x @ p[pre + "w1.weight"].t()) * (x @ p[pre + "w3.weight"].t())) @ p[pre + "w2.weight"].t()

    def decoder_loss(self, x, batch):
        p = self.p
        pos, doc = batch["pos"], batch["doc_ids"]
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        mask = causal[None] & (doc[:, :, None] == doc[:, None, :])  # [B, Tq, Tk]
        for i in range(self.L):
            h = x + self.attn(i, rmsnorm(x, p[f"llm.layers.{i}.attn_norm.weight"]), pos, mask)
            x = h + self.mlp(i, rmsnorm(h, p[f"llm.layers.{i}.mlp_norm.weight"]))
        x = rmsnorm(x, p["llm.norm.weight"])
        logits = x @ p["llm.tok_embed.weight"].t()
        V = logits.shape[-1]
        tgt = batch["targets"].reshape(-1)
        m = batch["loss_mask"].reshape(-1).to(logits.dtype)
        ce = F.cross_entropy(logits.reshape(-1, V), tgt.clamp(0, V - 1), reduction="none")
        return (ce * m).sum() / m.sum().clamp_min(1e-30) if m.sum() > 0 else (ce * m).sum()

    # ---- vision
    def vit(self, img):
        p, c = self.p, self.vision
        B, P, Dv, Hv = img.shape[0], c["patch"], c["width"], c["heads"]
        g = img.shape[-1] // P
        x = img.reshape(B, 3, g, P, g, P).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, 3 * P * P)
        x = x @ p["vit.patch_embed.weight"].t() + p["vit.patch_embed.bias"]
        x = x + p["vit.pos_embed"]
        hd = Dv // Hv
        for i in range(c["depth"]):
            pre = f"vit.blocks.{i}."
            y = F.layer_norm(x, (Dv,), p[pre + "ln1.weight"], p[pre + "ln1.bias"], EPS)
            qkv = (y @ p[pre + "attn.qkv.weight"].t() + p[pre + "attn.qkv.bias"]).view(B, g * g, 3, Hv, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, Hv, Np, hd]
            a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd)).softmax(-1) @ v
            a = a.transpose(1, 2).reshape(B, g * g, Dv)
            x = x + a @ p[pre + "attn.proj.weight"].t() + p[pre + "attn.proj.bias"]
            y = F.layer_norm(x, (Dv,), p[pre + "ln2.weight"], p[pre + "ln2.bias"], EPS)
            y = F.gelu(y @ p[pre + "mlp.fc1.weight"].t() + p[pre + "mlp.fc1.bias"])
            x = x + y @ p[pre + "mlp.fc2.weight"].t() + p[pre + "mlp.fc2.bias"]
        x = F.layer_norm(x, (Dv,), p["vit.norm.weight"], p["vit.norm.bias"], EPS)
        return x.view(B, g, g, Dv)

    def resblock(self, i, x):
        # x [B, Dv, h, w]; LN2d = LayerNorm over channels at each position.
        p, pre = self.p, f"connector.blocks.{i}."

        def ln2d(t, name):
            return F.layer_norm(t.permute(0, 2, 3, 1), (t.shape[1],), p[pre + name + ".weight"], p[pre + name + ".bias"], EPS).permute(0, 3, 1, 2)

        y = F.conv2d(F.silu(ln2d(x, "norm1")), p[pre + "conv1.weight"], p[pre + "conv1.bias"], padding=1)
        y = F.conv2d(F.silu(ln2d(y, "norm2")), p[pre + "conv2.weight"], p[pre + "conv2.bias"], padding=1)
        return x + y

    def connector(self, grid):
        p, c = self.p, self.conn
        B, h, w, Dv = grid.shape
        n = int(round(math.sqrt(c["tokens"])))
        kind = c["type"]
        if kind == "avgpool":
            y = F.adaptive_avg_pool2d(grid.permute(0, 3, 1, 2), n).permute(0, 2, 3, 1).reshape(B, n * n, Dv)
            return y @ p["connector.proj.weight"].t() + p["connector.proj.bias"]
        if kind == "attnpool":
            Hv = self.vision["heads"]
            hd, N = Dv // Hv, c["tokens"]
            kv = F.layer_norm(grid.reshape(B, h * w, Dv), (Dv,), p["connector.norm.weight"], p["connector.norm.bias"], EPS)
            q = (p["connector.queries"] @ p["connector.attn.wq.weight"].t() + p["connector.attn.wq.bias"]).view(N, Hv, hd).transpose(0, 1)
            k = (kv @ p["connector.attn.wk.weight"].t() + p["connector.attn.wk.bias"]).view(B, h * w, Hv, hd).transpose(1, 2)
            v = (kv @ p["connector.attn.wv.weight"].t() + p["connector.attn.wv.bias"]).view(B, h * w, Hv, hd).transpose(1, 2)
            o = ((q[None] @ k.transpose(-1, -2)) / math.sqrt(hd)).softmax(-1) @ v  # [B, Hv, N, hd]
            o = o.transpose(1, 2).reshape(B, N, Dv) @ p["connector.attn.wo.weight"].t() + p["connector.attn.wo.bias"]
            return o @ p["connector.proj.weight"].t() + p["connector.proj.bias"]
        if kind == "cabstractor":
            depth = c.get("depth", 1)
            x = grid.permute(0, 3, 1, 2)
            for i in range(depth):
                x = self.resblock(i, x)
            x = F.adaptive_avg_pool2d(x, n)
            for i in range(depth, 2 * depth):
                x = self.resblock(i, x)
            x = x.permute(0, 2, 3, 1).reshape(B, n * n, Dv)
            return x @ p["connector.proj.weight"].t() + p["connector.proj.bias"]
        if kind == "mlp":
            y = F.gelu(grid.reshape(B, h * w, Dv) @ p["connector.fc1.weight"].t() + p["connector.fc1.bias"])
            return y @ p["connector.fc2.weight"].t() + p["connector.fc2.bias"]
        raise ValueError(f"unknown connector {kind!r}")

    def loss(self, batch, image_token_id):
        tokens = batch["tokens"]
        B, T = tokens.shape
        x = self.p["llm.tok_embed.weight"][tokens]  # [B, T, D]
        if batch.get("images") is not None and batch["images"].shape[0] > 0:
            img_tok = self.connector(self.vit(batch["images"])).reshape(-1, self.D)
            flat = (tokens.reshape(-1) == image_token_id).nonzero().squeeze(1)
            if flat.numel() != img_tok.shape[0]:
                raise ValueError(f"{flat.numel()} image placeholders for {img_tok.shape[0]} image tokens")
            x = x.reshape(B * T, self.D).index_copy(0, flat, img_tok).view(B, T, self.D)
        return self.decoder_loss(x, batch)


# ---------------------------------------------------------------- init (bench only)

def init_params(cfg, gen):
    """MODEL-SPEC's init: normal(0, 0.02), zero biases, unit norms, output projections / sqrt(2·layers)."""
    d, p = cfg["decoder"], {}
    D, L, H, KV, Fh, V = d["width"], d["layers"], d["heads"], d["kv_heads"], d["ffn_hidden"], d["vocab"]
    hd = D // H

    def normal(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * 0.02 * scale

    out_scale = 1 / math.sqrt(2 * L)
    p["llm.tok_embed.weight"] = normal(V, D)
    for i in range(L):
        pre = f"llm.layers.{i}."
        p[pre + "attn_norm.weight"] = torch.ones(D)
        p[pre + "attn.wq.weight"] = normal(H * hd, D)
        p[pre + "attn.wk.weight"] = normal(KV * hd, D)
        p[pre + "attn.wv.weight"] = normal(KV * hd, D)
        p[pre + "attn.wo.weight"] = normal(D, H * hd, scale=out_scale)
        if d.get("qk_norm", True):
            p[pre + "attn.q_norm.weight"] = torch.ones(hd)
            p[pre + "attn.k_norm.weight"] = torch.ones(hd)
        p[pre + "mlp_norm.weight"] = torch.ones(D)
        p[pre + "mlp.w1.weight"] = normal(Fh, D)
        p[pre + "mlp.w3.weight"] = normal(Fh, D)
        p[pre + "mlp.w2.weight"] = normal(D, Fh, scale=out_scale)
    p["llm.norm.weight"] = torch.ones(D)
    v, c = cfg.get("vision"), cfg.get("connector")
    if v:
        Dv, P, g = v["width"], v["patch"], v["resolution"] // v["patch"]
        vs = 1 / math.sqrt(2 * v["depth"])
        p["vit.patch_embed.weight"], p["vit.patch_embed.bias"] = normal(Dv, 3 * P * P), torch.zeros(Dv)
        p["vit.pos_embed"] = normal(g * g, Dv)
        for i in range(v["depth"]):
            pre = f"vit.blocks.{i}."
            for ln in ("ln1", "ln2"):
                p[pre + ln + ".weight"], p[pre + ln + ".bias"] = torch.ones(Dv), torch.zeros(Dv)
            p[pre + "attn.qkv.weight"], p[pre + "attn.qkv.bias"] = normal(3 * Dv, Dv), torch.zeros(3 * Dv)
            p[pre + "attn.proj.weight"], p[pre + "attn.proj.bias"] = normal(Dv, Dv, scale=vs), torch.zeros(Dv)
            p[pre + "mlp.fc1.weight"], p[pre + "mlp.fc1.bias"] = normal(4 * Dv, Dv), torch.zeros(4 * Dv)
            p[pre + "mlp.fc2.weight"], p[pre + "mlp.fc2.bias"] = normal(Dv, 4 * Dv, scale=vs), torch.zeros(Dv)
        p["vit.norm.weight"], p["vit.norm.bias"] = torch.ones(Dv), torch.zeros(Dv)
        kind = c["type"]
        if kind in ("avgpool", "attnpool", "cabstractor"):
            p["connector.proj.weight"], p["connector.proj.bias"] = normal(D, Dv), torch.zeros(D)
        if kind == "attnpool":
            p["connector.queries"] = normal(c["tokens"], Dv)
            p["connector.norm.weight"], p["connector.norm.bias"] = torch.ones(Dv), torch.zeros(Dv)
            for w in ("wq", "wk", "wv", "wo"):
                p[f"connector.attn.{w}.weight"], p[f"connector.attn.{w}.bias"] = normal(Dv, Dv), torch.zeros(Dv)
        if kind == "cabstractor":
            depth = c.get("depth", 1)
            for i in range(2 * depth):
                pre = f"connector.blocks.{i}."
                for nm in ("norm1", "norm2"):
                    p[pre + nm + ".weight"], p[pre + nm + ".bias"] = torch.ones(Dv), torch.zeros(Dv)
                p[pre + "conv1.weight"], p[pre + "conv1.bias"] = normal(Dv, Dv, 3, 3), torch.zeros(Dv)
                p[pre + "conv2.weight"], p[pre + "conv2.bias"] = normal(Dv, Dv, 3, 3, scale=1 / math.sqrt(4 * depth)), torch.zeros(Dv)
        if kind == "mlp":
            p["connector.fc1.weight"], p["connector.fc1.bias"] = normal(D, Dv), torch.zeros(D)
            p["connector.fc2.weight"], p["connector.fc2.bias"] = normal(D, D), torch.zeros(D)
    return p


def bench_batch(cfg, B, T, with_images, gen):
    """One image per sequence: N placeholders first, then text (the Go bench's layout)."""
    V = cfg["decoder"]["vocab"]
    image_token_id = V - 1
    tokens = torch.randint(0, V - 1, (B, T), generator=gen)
    batch = {"pos": torch.arange(T).repeat(B, 1), "doc_ids": torch.zeros(B, T, dtype=torch.long)}
    mask = torch.ones(B, T)
    if with_images:
        N, R = cfg["connector"]["tokens"], cfg["vision"]["resolution"]
        tokens[:, :N] = image_token_id
        mask[:, :N] = 0
        batch["images"] = torch.randn(B, 3, R, R, generator=gen)
    batch["tokens"] = tokens
    batch["targets"] = torch.roll(tokens, -1, 1).clamp_max(V - 2)
    batch["loss_mask"] = mask
    return batch, image_token_id


# ---------------------------------------------------------------- modes

def cmd_grad(a):
    for case in a.case:
        grad_case(case, getattr(torch, a.dtype))


def grad_case(case, dtype):
    cfg = json.load(open(f"{case}/config.json"))
    weights, _ = st_read(f"{case}/weights.safetensors")
    raw, meta = st_read(f"{case}/batch.safetensors")
    frozen = bool(cfg.get("vision") and cfg["vision"].get("freeze"))
    params = {}
    for name, t in weights.items():
        params[name] = t.to(dtype).requires_grad_(not (frozen and name.startswith("vit.")))
    batch = {k: raw[k].long() for k in ("tokens", "targets", "pos", "doc_ids")}
    batch["loss_mask"] = raw["loss_mask"].to(dtype)
    if "images" in raw:
        batch["images"] = raw["images"].to(dtype)
    model = Model(cfg, params)
    loss = model.loss(batch, int(meta.get("image_token_id", "-1")))
    loss.backward()
    out = {"loss": loss.detach().reshape(1)}
    for name, t in params.items():
        if t.requires_grad:
            out["grad." + name] = t.grad if t.grad is not None else torch.zeros_like(t)
    st_write(f"{case}/out.safetensors", out)


def cmd_bench(a):
    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))
    if not a.images:
        cfg = {"decoder": cfg["decoder"]}
    gen = torch.Generator().manual_seed(a.seed)
    params = {k: v.requires_grad_(True) for k, v in init_params(cfg, gen).items()}
    decay = [t for t in params.values() if t.dim() >= 2]
    no_decay = [t for t in params.values() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    batch, image_token_id = bench_batch(cfg, a.batch_size, a.seq, a.images, gen)
    model = Model(cfg, params)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(batch, image_token_id)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()  # process_time: CPU of every thread
    for _ in range(a.steps):
        loss = step()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    json.dump(
        {
            "steps_per_s": a.steps / dt,
            "tokens_per_s": a.steps * a.batch_size * a.seq / dt,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loss": loss,
            "threads": torch.get_num_threads(),
            "cpu_s": cpu,
        },
        sys.stdout,
    )
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("grad")
    g.add_argument("--case", action="append", required=True)
    g.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    b = sub.add_parser("bench")
    b.add_argument("--config", required=True)
    b.add_argument("--batch-size", type=int, default=8)
    b.add_argument("--seq", type=int, default=128)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--images", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(getattr(a, "threads", 1))
    {"grad": cmd_grad, "bench": cmd_bench}[a.mode](a)


if __name__ == "__main__":
    main()
