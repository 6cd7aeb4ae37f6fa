#!/usr/bin/env python3
"""FLOPs per frame of the nano model at 256x256 (or --size), per component.

Counts 2*MACs of every Conv2d and Linear (forward hooks) and of the attention matmuls
(Q.K^T and P.V, by wrapping F.scaled_dot_product_attention). Norms, activations,
softmax and elementwise work are not counted (they are small next to the GEMMs, but
not free on CPU). The text encoder runs on the side path (per prompt / every
refresh-interval frames), so it is reported separately and not in the per-frame total.

    python3 tools/nano/flops.py [--size 256] [--model models/nano]
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as nano  # noqa: E402

BUDGET_GFLOP = 3.0


class Counter:
    def __init__(self):
        self.flops = 0
        self.by_res: dict = {}

    def add(self, f, key=None):
        self.flops += f
        if key is not None:
            self.by_res[key] = self.by_res.get(key, 0) + f


def count(module: torch.nn.Module, fn) -> Counter:
    c = Counter()
    hooks = []

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        c.add(2 * out.numel() * k, f"conv@{out.shape[-2]}x{out.shape[-1]}")

    def lin_hook(m, inp, out):
        c.add(2 * out.numel() * m.in_features, "linear")

    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Conv3d):
            hooks.append(m.register_forward_hook(
                lambda m, i, o: c.add(2 * o.numel() * (m.in_channels // m.groups) * int(torch.tensor(m.kernel_size).prod()), "conv3d")))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    orig = F.scaled_dot_product_attention

    def sdpa(q, k, v, *args, **kwargs):
        # q [..., L, E], k [..., S, E], v [..., S, Ev]
        batch = q.numel() // (q.shape[-1] * q.shape[-2])
        if k.dim() == q.dim():
            batch_k = k.numel() // (k.shape[-1] * k.shape[-2])
            batch = max(batch, batch_k)
        c.add(2 * batch * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1]), "attention")
        return orig(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = sdpa
    torch.nn.functional.scaled_dot_product_attention = sdpa
    try:
        with torch.no_grad():
            fn()
    finally:
        F.scaled_dot_product_attention = orig
        torch.nn.functional.scaled_dot_product_attention = orig
        for h in hooks:
            h.remove()
    return c


def measure(vae, unet, te, tok, size: int = 256, verbose: bool = True) -> dict:
    lat = size // 8
    L = nano.LATENT_CHANNELS
    x = torch.zeros(1, 3, size, size)
    ctx = torch.zeros(1, nano.PAD_TO, nano.CROSS_DIM)
    enc = count(vae.encoder, lambda: vae.encoder(x))
    dec = count(vae.decoder, lambda: vae.decoder(torch.zeros(1, L, lat, lat)))
    un = count(unet, lambda: unet(torch.zeros(1, 2 * L, lat, lat), torch.tensor([999]), ctx))
    # side path: one prompt with one frame through the Qwen3-VL encoder
    from train import encode_conditioning_inputs  # noqa: E402
    import numpy as np
    cond = encode_conditioning_inputs(tok, ["make it look like an oil painting"],
                                                      np.zeros((1, nano.ENCODER_IMAGE, nano.ENCODER_IMAGE, 3), np.uint8))
    tx = count(te, lambda: te(**cond))
    res = dict(vae_encode=enc.flops, unet=un.flops, vae_decode=dec.flops, text_encoder=tx.flops)
    res["per_frame"] = enc.flops + un.flops + dec.flops
    if verbose:
        print(f"FLOPs per frame at {size}x{size} (2*MACs; conv, linear, attention matmuls)")
        for k in ["vae_encode", "unet", "vae_decode"]:
            print(f"  {k:12s} {res[k] / 1e9:7.3f} GFLOP")
        print(f"  {'total':12s} {res['per_frame'] / 1e9:7.3f} GFLOP   (budget {BUDGET_GFLOP} -> "
              f"{'OK' if res['per_frame'] <= BUDGET_GFLOP * 1e9 else 'OVER'})")
        print(f"  side path: text_encoder (prompt + {nano.ENCODER_IMAGE}^2 frame, {nano.PAD_TO} tokens) "
              f"{tx.flops / 1e9:.4f} GFLOP per refresh")
        for name, c in [("encoder", enc), ("decoder", dec), ("unet", un)]:
            parts = ", ".join(f"{k} {v / 1e9:.3f}" for k, v in sorted(c.by_res.items()))
            print(f"  {name} by stage (GFLOP): {parts}")
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--model", help="a written model folder (default: build from model.py's configs)")
    a = p.parse_args()
    torch.set_num_threads(1)
    tok = nano.build_tokenizer()
    if a.model:
        from diffusers import AutoencoderTiny, UNet2DConditionModel
        from tokenizers import Tokenizer
        from transformers import Qwen3VLModel
        vae = AutoencoderTiny.from_pretrained(os.path.join(a.model, "vae")).float()
        unet = UNet2DConditionModel.from_pretrained(os.path.join(a.model, "unet")).float()
        te = Qwen3VLModel.from_pretrained(os.path.join(a.model, "text_encoder")).float()
        tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer", "tokenizer.json"))
    else:
        vae, unet, te = nano.build_models(tok)
    r = measure(vae, unet, te, tok, a.size)
    print(f"parameters: vae {nano.param_count(vae):,}  unet {nano.param_count(unet):,}  "
          f"text_encoder {nano.param_count(te):,}  (fp16 weights "
          f"{2 * (nano.param_count(vae) + nano.param_count(unet) + nano.param_count(te)) / 1e6:.2f} MB)")
    sys.exit(0 if r["per_frame"] <= BUDGET_GFLOP * 1e9 else 1)


if __name__ == "__main__":
    main()
