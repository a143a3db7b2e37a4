"""A brute-force FastAV oracle, written independently of the package.

Plain tensor math on the model's state dict (no transformers modules, no package
code): every layer runs eagerly on the explicit token subset it processes, one batch
row at a time, with attention probabilities materialised. Rollout is the literal
matrix product; selections are Python sorts with the contract's tie rules.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch


class Weights:
    def __init__(self, model):
        self.sd = {k: v.detach().double() for k, v in model.state_dict().items()}
        c = model.config
        self.L, self.H, self.KV = c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads
        self.hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.eps = c.rms_norm_eps
        self.theta = c.rope_parameters["rope_theta"]
        if "lm_head.weight" not in self.sd:
            self.sd["lm_head.weight"] = self.sd["model.embed_tokens.weight"]

    def w(self, name):
        return self.sd[name]


def rms_norm(x, weight, eps):
    return weight * (x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, positions, theta):
    """x: [H, n, hd]; positions: [n]."""
    hd = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = positions.double()[:, None] * inv[None]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    rotated = torch.cat([-x[..., hd // 2:], x[..., : hd // 2]], -1)
    return x * cos + rotated * sin


def layer(W: Weights, l: int, h, positions):
    """One decoder layer on exactly the tokens given. h: [n, D]; positions: [n] ascending.
    Returns (output [n, D], probs [H, n, n])."""
    p = f"model.layers.{l}."
    x = rms_norm(h, W.w(p + "input_layernorm.weight"), W.eps)
    n = h.shape[0]
    q = (x @ W.w(p + "self_attn.q_proj.weight").T + W.w(p + "self_attn.q_proj.bias")).view(n, W.H, W.hd).transpose(0, 1)
    k = (x @ W.w(p + "self_attn.k_proj.weight").T + W.w(p + "self_attn.k_proj.bias")).view(n, W.KV, W.hd).transpose(0, 1)
    v = (x @ W.w(p + "self_attn.v_proj.weight").T + W.w(p + "self_attn.v_proj.bias")).view(n, W.KV, W.hd).transpose(0, 1)
    q, k = rope(q, positions, W.theta), rope(k, positions, W.theta)
    k = k.repeat_interleave(W.H // W.KV, dim=0)
    v = v.repeat_interleave(W.H // W.KV, dim=0)
    scores = q @ k.transpose(1, 2) / math.sqrt(W.hd)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    probs = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    attn = (probs @ v).transpose(0, 1).reshape(n, -1) @ W.w(p + "self_attn.o_proj.weight").T
    h = h + attn
    x = rms_norm(h, W.w(p + "post_attention_layernorm.weight"), W.eps)
    gate = x @ W.w(p + "mlp.gate_proj.weight").T
    up = x @ W.w(p + "mlp.up_proj.weight").T
    h = h + (torch.nn.functional.silu(gate) * up) @ W.w(p + "mlp.down_proj.weight").T
    return h, probs


def logits_of(W, h_last):
    return rms_norm(h_last, W.w("model.norm.weight"), W.eps) @ W.w("lm_head.weight").T


def _floor_ratio(ratio: float, count: int) -> int:
    return math.floor(Fraction(repr(ratio)) * count)


def global_keep(config, layout, maps, candidate):
    """The set of candidates that survive the global cut (the same rules, by hand)."""
    kinds, frames, n = layout.kind_codes(), layout.frames(), layout.n_tokens
    cands = [j for j in range(n) if candidate[j]]
    audio = [j for j in cands if kinds[j] == 2]
    positional = {
        j for j in cands
        if (config.cutoff is not None and j < config.cutoff)
        or j in audio[: config.keep_audio]
        or (frames[j] >= 0 and frames[j] < config.keep_frames)
    }
    if config.global_policy == "none":
        return set(cands)
    if config.global_policy == "positional":
        return positional
    budget = config.global_budget
    if budget is None:
        budget = len(positional)
    elif isinstance(budget, float):
        budget = math.ceil(Fraction(repr(budget)) * len(cands))
    R = torch.eye(n, dtype=torch.float64)
    for A in maps:
        R = (config.alpha * A + (1 - config.alpha) * torch.eye(n, dtype=torch.float64)) @ R
    rows = {"all": list(range(n)), "text": [j for j in range(n) if kinds[j] == 0], "last": [n - 1]}[config.rollout_queries]
    importance = R[rows or [n - 1]].mean(0)
    return set(sorted(cands, key=lambda j: (-importance[j].item(), j))[:budget])


def oracle_prefill(model, layout, config, embeds):
    """Brute-force prefill. config: resolved PruningConfig; embeds [B, N, D].
    Returns per row (kept {layer: [original indices]}, logits [V] float64)."""
    W = Weights(model)
    K, L, n = config.global_layer, W.L, layout.n_tokens
    kinds = layout.kind_codes()
    candidate = [bool(kinds[j] != 0) and j != n - 1 for j in range(n)]
    rows = []
    for row in range(embeds.shape[0]):
        T, h, maps, kept = list(range(n)), embeds[row].double(), [], {}
        for l in range(L):
            if l == K:
                keep = global_keep(config, layout, maps, candidate)
                local = [i for i, j in enumerate(T) if not candidate[j] or j in keep]
                h, T = h[local], [T[i] for i in local]
            if l >= K:
                kept[l] = list(T)
            h_out, probs = layer(W, l, h, torch.tensor(T))
            if l < K:
                maps.append(probs.mean(0))
            if K <= l < L - 1:
                scores = probs[:, -1, :].mean(0)  # head-mean last row of eager attention
                cands = [i for i, j in enumerate(T) if candidate[j]]
                drop = set(sorted(cands, key=lambda i: (scores[i].item(), -T[i]))[: _floor_ratio(config.fine_ratio, len(cands))])
                local = [i for i in range(len(T)) if i not in drop]
                h_out, T = h_out[local], [T[i] for i in local]
            h = h_out
        rows.append((kept, logits_of(W, h[-1])))
    return rows


def oracle_recompute_logits(model, config, prompt_embeds, kept, generated):
    """Next-token logits recomputed from scratch for one row: the prompt plus the
    generated tokens, every layer on its kept prompt tokens plus all generated ones."""
    W = Weights(model)
    K, n = config.global_layer, prompt_embeds.shape[0]
    token_embeds = W.w("model.embed_tokens.weight")[torch.tensor(generated, dtype=torch.long)]
    everything = torch.cat([prompt_embeds.double(), token_embeds.reshape(-1, prompt_embeds.shape[1])])
    new = list(range(n, n + len(generated)))
    T, h = list(range(n)) + new, everything
    for l in range(W.L):
        wanted = (list(range(n)) if l < K else kept[l]) + new
        where = {j: i for i, j in enumerate(T)}
        h, T = h[[where[j] for j in wanted]], wanted
        h, _ = layer(W, l, h, torch.tensor(T))
    return logits_of(W, h[-1])
