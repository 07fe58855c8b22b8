"""Writes golden.json: each connector of MODEL-SPEC.md built in PyTorch
(float64) at a tiny size, its weights, an input grid batch (B, h, w, Dv), the
output (B, N, D), and the gradients of loss = sum(output * upstream) for
every weight and for the grid. The Go tests load the weights by name and must
reproduce the rest.

Run from this directory: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 golden.py
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


class AvgPool(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n = math.isqrt(c["tokens"])
        self.proj = nn.Linear(c["in"], c["out"])

    def forward(self, g):  # (B, h, w, Dv)
        x = F.adaptive_avg_pool2d(g.permute(0, 3, 1, 2), self.n)  # (B, Dv, n, n)
        return self.proj(x.flatten(2).transpose(1, 2))


class Attn(nn.Module):
    def __init__(self, dv):
        super().__init__()
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(dv, dv) for _ in range(4))


class AttnPool(nn.Module):
    def __init__(self, c):
        super().__init__()
        dv = c["in"]
        self.heads = c["heads"]
        self.queries = nn.Parameter(torch.randn(c["tokens"], dv) * 0.02)
        self.norm = nn.LayerNorm(dv, eps=1e-5)
        self.attn = Attn(dv)
        self.proj = nn.Linear(dv, c["out"])

    def forward(self, g):
        b, h, w, dv = g.shape
        hd = dv // self.heads
        a = self.norm(g.reshape(b, h * w, dv))
        q = self.attn.wq(self.queries).expand(b, -1, -1)
        split = lambda x: x.reshape(b, x.shape[1], self.heads, hd).transpose(1, 2)
        q, k, v = split(q), split(self.attn.wk(a)), split(self.attn.wv(a))
        att = torch.softmax(q @ k.transpose(-1, -2) / hd**0.5, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, -1, dv)
        return self.proj(self.attn.wo(o))


class LN2d(nn.LayerNorm):
    def forward(self, x):  # (B, C, h, w): normalise the channels at each position
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    def __init__(self, dv):
        super().__init__()
        self.norm1 = LN2d(dv, eps=1e-5)
        self.conv1 = nn.Conv2d(dv, dv, 3, padding=1)
        self.norm2 = LN2d(dv, eps=1e-5)
        self.conv2 = nn.Conv2d(dv, dv, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))


class CAbstractor(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.depth, self.n = c["depth"], math.isqrt(c["tokens"])
        self.blocks = nn.ModuleList(ResBlock(c["in"]) for _ in range(2 * c["depth"]))
        self.proj = nn.Linear(c["in"], c["out"])

    def forward(self, g):
        x = g.permute(0, 3, 1, 2)
        for i, blk in enumerate(self.blocks):
            if i == self.depth:
                x = F.adaptive_avg_pool2d(x, self.n)
            x = blk(x)
        return self.proj(x.flatten(2).transpose(1, 2))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c["in"], c["out"])
        self.fc2 = nn.Linear(c["out"], c["out"])

    def forward(self, g):
        b, h, w, dv = g.shape
        return self.fc2(F.gelu(self.fc1(g.reshape(b, h * w, dv))))


def flat(t):
    return t.detach().reshape(-1).tolist()


CASES = [
    ("avgpool", AvgPool, {"tokens": 4, "h": 5, "w": 3, "in": 3, "out": 5}),
    ("attnpool", AttnPool, {"tokens": 3, "h": 3, "w": 3, "in": 4, "out": 5, "heads": 2}),
    ("cabstractor", CAbstractor, {"tokens": 4, "depth": 2, "h": 5, "w": 5, "in": 4, "out": 3}),
    ("cabstractor", CAbstractor, {"tokens": 9, "depth": 1, "h": 4, "w": 6, "in": 3, "out": 2}),
    ("mlp", MLP, {"tokens": 6, "h": 2, "w": 3, "in": 3, "out": 4}),
]
B = 2
cases = []
for kind, cls, c in CASES:
    m = cls(c)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    grid = torch.randn(B, c["h"], c["w"], c["in"], requires_grad=True)
    out = m(grid)
    up = torch.randn_like(out)
    (out * up).sum().backward()
    cases.append({
        "kind": kind, "config": c, "batch": B,
        "params": {"connector." + n: {"shape": list(p.shape), "data": flat(p)} for n, p in m.named_parameters()},
        "grads": {"connector." + n: flat(p.grad) for n, p in m.named_parameters()},
        "input": flat(grid), "output": flat(out), "upstream": flat(up), "dinput": flat(grid.grad),
    })
json.dump(cases, open("golden.json", "w"))
