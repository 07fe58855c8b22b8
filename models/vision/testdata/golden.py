"""Writes vit_golden.json: a tiny ViT built from MODEL-SPEC.md in PyTorch
(float64), its weights, an input batch, the output, and the gradients of
loss = sum(output * upstream), plus torch's bilinear position-embedding
resizes. The Go tests load the weights by name and must reproduce the rest.

Run from this directory: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 golden.py
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

R, P, D, DEPTH, HEADS, B = 8, 4, 8, 2, 2, 2
G = R // P


class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x):  # (B, N, D)
        b, n, _ = x.shape
        hd = D // HEADS
        q, k, v = self.qkv(x).reshape(b, n, 3, HEADS, hd).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / hd**0.5, dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, D))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, 4 * D)
        self.fc2 = nn.Linear(4 * D, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D, eps=1e-5)
        self.attn = Attn()
        self.ln2 = nn.LayerNorm(D, eps=1e-5)
        self.mlp = MLP()

    def forward(self, x):
        h = x + self.attn(self.ln1(x))
        return h + self.mlp(self.ln2(h))


class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(3 * P * P, D)
        self.pos_embed = nn.Parameter(torch.zeros(G * G, D))
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(D, eps=1e-5)

    def forward(self, img):  # (B, 3, R, R)
        b = img.shape[0]
        x = img.reshape(b, 3, G, P, G, P).permute(0, 2, 4, 1, 3, 5).reshape(b, G * G, 3 * P * P)
        x = self.patch_embed(x) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x).reshape(b, G, G, D)


def flat(t):
    return t.detach().reshape(-1).tolist()


model = ViT()
with torch.no_grad():
    for p in model.parameters():  # every weight away from its init so each term matters
        p.add_(torch.randn_like(p) * 0.3)
img = torch.randn(B, 3, R, R)
out = model(img)
up = torch.randn_like(out)
(out * up).sum().backward()


def resize(src, frm, to, dim):
    g = src.reshape(1, frm, frm, dim).permute(0, 3, 1, 2)
    r = F.interpolate(g, size=(to, to), mode="bilinear", align_corners=False)
    return r.permute(0, 2, 3, 1).reshape(-1)


resizes = []
for frm, to, dim in [(3, 5, 2), (5, 3, 3), (4, 7, 1), (2, 8, 2)]:
    src = torch.randn(frm * frm * dim)
    resizes.append({"from": frm, "to": to, "dim": dim, "src": flat(src), "dst": flat(resize(src, frm, to, dim))})

json.dump({
    "config": {"resolution": R, "patch": P, "width": D, "depth": DEPTH, "heads": HEADS, "batch": B},
    "params": {"vit." + n: {"shape": list(p.shape), "data": flat(p)} for n, p in model.named_parameters()},
    "grads": {"vit." + n: flat(p.grad) for n, p in model.named_parameters()},
    "input": flat(img),
    "output": flat(out),
    "upstream": flat(up),
    "resizes": resizes,
}, open("vit_golden.json", "w"))
