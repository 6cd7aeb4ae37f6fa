#!/usr/bin/env python3
"""Trains nano and writes models/nano/ (run from the repository root).

Stages (each gets a share of --budget-minutes; step counts are fixed after a short
timing calibration at the start of the stage and stored in the checkpoint, or given
exactly with --steps-ae / --steps-edit / --steps-joint for bit-for-bit reruns):
  0 cache  deterministic 160x160 crops (data.py) and every style's reference of each
           (styles.py), uint8 arrays under --work
  1 ae     AutoencoderTiny reconstruction of natural AND stylised crops (MSE + L1 +
           Sobel-gradient L1), 128x128 random sub-crops
  2 edit   encoder frozen; U-Net + Qwen3-VL encoder on (crop, prompt, style reference)
           triples: U-Net input cat_C[noise, E(src)], 1 DDIM step with prediction_type
           "sample" so the output is the U-Net's x0; loss = latent MSE to E(target)
           + pixel MSE/L1 of D(x0) to the target; small input noise for stability
  3 joint  as 2 with the decoder trainable too (pixel loss dominates)
  4 prompts  text encoder only (U-Net and autoencoder frozen), loss as in 3, on request
           phrasings composed by styles.augmented_prompt (questions, politeness, filler;
           never the held-out templates) mixed 70/30 with the training templates, so
           free-form requests condition like their key phrase
  5 refine  (affine head) U-Net + text encoder + map decoder on augmented requests, loss
           as in 3 plus the maps' distance to their target: the guided-filter maps of
           (source, reference) at the working scale (weight 0.1), the exact identity for
           "original" (weight 1); the original, oil and watercolor samples' pixel loss
           counts twice. The joint stage left the
           maps nearly style-blind (A ~ 0.45 I for the original AND oil: the original lost
           half its fine detail, oil and watercolor stayed close to the input)
  6 export fp16 folder to --out, reload check, FLOP count

    python3 tools/nano/train.py                       # full run, ~170 min on 2 cores
    python3 tools/nano/train.py --smoke               # < 5 min, tiny schedule, writes --out
    python3 tools/nano/train.py --resume              # continue from --work/checkpoint.pt
Progress goes to stdout and --work/train.log.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as nano  # noqa: E402
import styles  # noqa: E402

STAGE_SHARE = dict(cache=0.06, ae=0.20, edit=0.47, joint=0.12, prompts=0.10)  # the rest: export + slack
# With the affine head: the U-Net learns first with the RGB decoder at the working scale,
# then the 12-channel decoder learns the maps with the U-Net frozen.
HEAD_STAGE_SHARE = dict(cache=0.06, ae=0.16, edit=0.33, head=0.12, joint=0.10, prompts=0.08, refine=0.10)
# Samples of these styles count twice in the refine stage: the original must keep the
# input's detail (A = I), oil and watercolor must move away from it.
REFINE_EMPHASIS = ("original", "oil", "watercolor")
STYLE_NAMES = styles.STYLE_NAMES
CACHE_SIZE = 160
CROP = 128

LOG = None


def log(msg: str) -> None:
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


# ----------------------------------------------------------------------------- conditioning

class ConditioningInputs:
    """Builds input_ids / attention_mask / pixel_values / image_grid_thw exactly as the
    Swift ConditioningEncoder does for stylize.json's text_encoder section."""

    def __init__(self, tok):
        self.tok = tok
        self.ids = nano.token_ids(tok)
        pre, post = nano.TEMPLATE.split("{image}")
        assert "{prompt}" in post
        self.prefix = tok.encode(pre, add_special_tokens=False).ids if pre else []
        self.vision = ([self.ids["<|vision_start|>"]] + [self.ids["<|image_pad|>"]] * nano.IMAGE_TOKENS
                       + [self.ids["<|vision_end|>"]])
        self.post = post
        self.cache: dict = {}

    def row(self, prompt: str) -> list[int]:
        r = self.cache.get(prompt)
        if r is None:
            text = self.post.replace("{prompt}", prompt)
            r = self.prefix + self.vision + self.tok.encode(text, add_special_tokens=False).ids
            r = r[:nano.PAD_TO]
            self.cache[prompt] = r
        return r

    def __call__(self, prompts, frames_u8: np.ndarray):
        pad = self.ids["<|endoftext|>"]
        rows = [self.row(p) for p in prompts]
        ids = torch.full((len(rows), nano.PAD_TO), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), nano.PAD_TO), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        pix, grid = patchify(frames_u8)
        mm = (ids == self.ids["<|image_pad|>"]).int()  # transformers 5 wants the modality per token
        return dict(input_ids=ids, attention_mask=mask, pixel_values=pix, image_grid_thw=grid,
                    mm_token_type_ids=mm)


def encode_conditioning_inputs(tok, prompts, frames_u8):
    return ConditioningInputs(tok)(prompts, frames_u8)


def patchify(frames_u8: np.ndarray):
    """Qwen2VLImageProcessor on frames already at ENCODER_IMAGE^2 (smart_resize is the
    identity there): rescale, normalise (mean = std = 0.5), temporal repeat, merge order."""
    b, h, w, _ = frames_u8.shape
    p, m, tp = nano.PATCH, nano.MERGE, 2
    x = torch.from_numpy(frames_u8).float().div(255).sub(0.5).div(0.5).permute(0, 3, 1, 2)  # B C H W
    gh, gw = h // p, w // p
    x = x.reshape(b, 3, gh // m, m, p, gw // m, m, p)          # b c bh mh py bw mw px
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)                        # b bh bw mh mw c py px
    x = x.unsqueeze(6).expand(b, gh // m, gw // m, m, m, 3, tp, p, p)
    pix = x.reshape(b * gh * gw, 3 * tp * p * p).contiguous()
    grid = torch.tensor([[1, gh, gw]] * b, dtype=torch.long)
    return pix, grid


def resize_for_encoder(imgs_u8: np.ndarray) -> np.ndarray:
    """Antialiased bicubic (PIL), what the engine does before the image processor."""
    from PIL import Image
    s = nano.ENCODER_IMAGE
    if imgs_u8.shape[1:3] == (s, s):
        return imgs_u8
    return np.stack([np.asarray(Image.fromarray(i).resize((s, s), Image.BICUBIC)) for i in imgs_u8])


# ----------------------------------------------------------------------------- data cache

def _cache_item(args):
    seed, i = args
    import data
    global _SAMPLER
    if "_SAMPLER" not in globals() or _SAMPLER.seed != seed:
        _SAMPLER = data.Sampler(seed, CACHE_SIZE)
    cv_threads = __import__("cv2").setNumThreads(1)  # noqa: F841
    x = _SAMPLER.crop(i)
    ys = np.stack([styles.apply(n, x) for n in STYLE_NAMES if n != "original"])
    return x, ys


def build_cache(work: str, seed: int, n: int, workers: int):
    path = os.path.join(work, f"cache_s{seed}_n{n}.npz")
    if os.path.exists(path):
        d = np.load(path)
        log(f"cache: loaded {path}")
        return d["x"], d["y"]
    t = time.time()
    jobs = [(seed, i) for i in range(n)]
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(workers) as pool:
            items = pool.map(_cache_item, jobs, chunksize=16)
    else:
        items = [_cache_item(j) for j in jobs]
    x = np.stack([a for a, _ in items])
    y = np.stack([b for _, b in items])  # [n, styles-1, S, S, 3] (identity is x itself)
    np.savez(path, x=x, y=y)
    log(f"cache: {n} crops x {len(STYLE_NAMES)} styles in {time.time() - t:.0f} s -> {path}")
    return x, y


class Batches:
    """Deterministic batches: batch(stage, step) depends only on (seed, stage, step)."""

    def __init__(self, x, y, seed: int, tok, crop: int = CROP):
        self.x, self.y, self.seed, self.crop = x, y, seed, crop
        self.cond = ConditioningInputs(tok)
        self.prompts = {n: styles.train_prompts(n) for n in STYLE_NAMES}

    def _rng(self, stage: int, step: int):
        return np.random.default_rng([self.seed, 1000 + stage, step])

    def _sub(self, rng, arrs):
        s = self.crop
        y0, x0 = rng.integers(0, CACHE_SIZE - s + 1, 2)
        return [a[y0:y0 + s, x0:x0 + s] for a in arrs]

    def ae(self, stage: int, step: int, bs: int):
        rng = self._rng(stage, step)
        out = []
        for _ in range(bs):
            i = rng.integers(len(self.x))
            k = rng.integers(len(STYLE_NAMES))  # 0 = original
            img = self.x[i] if k == 0 else self.y[i, k - 1]
            out.append(self._sub(rng, [img])[0])
        return to_tensor(np.stack(out))

    def edit(self, stage: int, step: int, bs: int, augment: bool = False, with_styles: bool = False):
        """(source, target, conditioning, generator), and the style names with `with_styles`."""
        rng = self._rng(stage, step)
        src, tgt, prompts, enc_imgs, names = [], [], [], [], []
        for _ in range(bs):
            i = rng.integers(len(self.x))
            k = rng.integers(len(STYLE_NAMES))
            name = STYLE_NAMES[k]
            names.append(name)
            target = self.x[i] if k == 0 else self.y[i, k - 1]
            a, b = self._sub(rng, [self.x[i], target])
            src.append(a)
            tgt.append(b)
            if augment and rng.uniform() < 0.7:
                p = styles.augmented_prompt(name, rng)
            else:
                p = self.prompts[name][rng.integers(len(self.prompts[name]))]
                r = rng.uniform()
                p = p.capitalize() if r < 0.2 else (p + "." if r < 0.3 else p)
            prompts.append(p)
            enc_imgs.append(self.x[i])  # the encoder sees the whole (larger) frame
        src_t = to_tensor(np.stack(src))
        # small sensor-like noise on half of the sources (temporal stability)
        sig = torch.from_numpy(rng.uniform(0, 4 / 255, (bs, 1, 1, 1)).astype(np.float32))
        sig = sig * torch.from_numpy((rng.uniform(size=(bs, 1, 1, 1)) < 0.5).astype(np.float32))
        g = torch.Generator().manual_seed(int(rng.integers(1 << 62)))
        src_t = (src_t + 2 * sig * torch.randn(src_t.shape, generator=g)).clamp(-1, 1)
        cond = self.cond(prompts, resize_for_encoder(np.stack(enc_imgs)))
        if with_styles:
            return src_t, to_tensor(np.stack(tgt)), cond, g, names
        return src_t, to_tensor(np.stack(tgt)), cond, g


def to_tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


# ----------------------------------------------------------------------------- losses

def sobel(x):
    k = torch.tensor([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=x.dtype) / 4
    kk = torch.stack([k, k.t()])[:, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(x, kk, padding=1, groups=x.shape[1])


def pixel_loss(pred, tgt):
    return F.mse_loss(pred, tgt) + 0.1 * F.l1_loss(pred, tgt) + 0.1 * F.l1_loss(sobel(pred), sobel(tgt))


def psnr(pred, tgt):
    mse = F.mse_loss(pred.clamp(-1, 1), tgt, reduction="none").mean((1, 2, 3)) / 4  # [0,1] scale
    return (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item()


def lr_at(step, total, base, warm=50):
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


# ----------------------------------------------------------------------------- the edit step

TIMESTEP = 999  # DDIM trailing, 1 step


def edit_forward(vae, unet, te, src, cond, g, train_decoder: bool, head=None, with_maps: bool = False):
    """With `head` (the affine head) the model runs at WORKING_SCALE of `src` (area
    downscale, as the engine's resizeArea) and its decoder's colour maps are applied to the
    full-size `src`, exactly as the Swift engine does; `with_maps` returns the maps (at the
    working scale) in place of x0."""
    if head is not None:
        k = round(1 / nano.WORKING_SCALE)
        work = F.avg_pool2d(src, k)
    else:
        work = src
    with torch.no_grad():
        src_lat = vae.encoder(work) * vae.config.scaling_factor
    ctx = te(**cond).last_hidden_state
    noise = torch.randn(src_lat.shape, generator=g)  # init_noise_sigma = 1; scale_model_input = id
    x0 = unet(torch.cat([noise, src_lat], 1), torch.full((src.shape[0],), TIMESTEP), ctx).sample
    if head is not None:
        maps = head.decoder(x0 / vae.config.scaling_factor)
        return (maps if with_maps else x0), nano.apply_affine(maps, src)
    out = vae.decoder(x0 / vae.config.scaling_factor)
    return x0, out


# The affine head's 12 channels (4c + i: A_ci for i < 3, b_c at i = 3) of out = in.
IDENTITY_MAPS = torch.tensor([1., 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])


def guided_maps(src, tgt, r: int = 1, eps: float = 1e-4):
    """The affine head's target: per pixel, the colour transform (3×3 + offset, the
    head's 12-channel layout 4c + i) that best maps `src` to `tgt` over a (2r+1)² window,
    regularised by eps (for [0, 1] images; ours span [-1, 1]), averaged over the window:
    a fast guided filter with the RGB guide (tools/nano/upsample_study.py's oracle)."""
    def box(x):
        return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)
    b_, _, h, w = src.shape
    mi, ms = box(src), box(tgt)
    cov_ii = torch.stack([torch.stack([box(src[:, i] * src[:, j]) - mi[:, i] * mi[:, j] for j in range(3)], -1)
                          for i in range(3)], -2)                       # [B, h, w, 3, 3]
    cov_is = torch.stack([torch.stack([box(src[:, i] * tgt[:, c]) - mi[:, i] * ms[:, c] for c in range(3)], -1)
                          for i in range(3)], -2)                       # [B, h, w, 3(guide), 3(out)]
    a = torch.linalg.solve(cov_ii + 4 * eps * torch.eye(3), cov_is)   # [B, h, w, 3(guide), 3(out)]
    bias = ms.permute(0, 2, 3, 1) - torch.einsum("bhwi,bhwic->bhwc", mi.permute(0, 2, 3, 1), a)
    maps = torch.cat([a.permute(0, 4, 3, 1, 2).reshape(b_, 3, 3, h, w),    # [B, 3(out), 3(guide), h, w]
                      bias.permute(0, 3, 1, 2)[:, :, None]], 2).reshape(b_, 12, h, w)
    return box(maps)


# ----------------------------------------------------------------------------- main

def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-minutes", type=float, default=170)
    ap.add_argument("--smoke", action="store_true", help="tiny schedule (< 5 min), same code path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is robust on a shared 2-core machine: 2 threads collapse under contention)")
    ap.add_argument("--out", default="models/nano")
    ap.add_argument("--work", default="runs/nano")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--cache-items", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps-ae", type=int)
    ap.add_argument("--steps-edit", type=int)
    ap.add_argument("--steps-joint", type=int)
    ap.add_argument("--steps-prompts", type=int)
    ap.add_argument("--steps-head", type=int)
    ap.add_argument("--steps-refine", type=int)
    ap.add_argument("--no-deadline", action="store_true", help="never cut a stage short (exact reruns)")
    ap.add_argument("--head", choices=["affine", "rgb"], default="affine",
                    help="affine: run at the working scale and predict colour maps (the current design); "
                         "rgb: the first nano's full-resolution RGB decoder")
    a = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.work, exist_ok=True)
    LOG = os.path.join(a.work, "train.log")
    budget = (4.0 if a.smoke else a.budget_minutes) * 60
    n_cache = a.cache_items or (96 if a.smoke else 4000)
    bs = 4 if a.smoke else a.batch
    log(f"nano train: seed {a.seed}, budget {budget / 60:.0f} min, threads {a.threads}, batch {bs}, "
        f"cache {n_cache}, out {a.out}")

    tok = nano.build_tokenizer()
    vae, unet, te = nano.build_models(tok, a.seed)
    head = nano.build_head(vae) if a.head == "affine" else None
    ckpt_path = os.path.join(a.work, "checkpoint.pt")
    state = dict(stage="ae", step=0, plan={}, elapsed=0.0, history=[])
    opt_state = None
    if a.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, weights_only=False)
        vae.load_state_dict(ck["vae"]); unet.load_state_dict(ck["unet"]); te.load_state_dict(ck["te"])
        if head is not None and ck.get("head") is not None:
            head.load_state_dict(ck["head"])
        state, opt_state = ck["state"], ck.get("opt")
        log(f"resumed at stage {state['stage']} step {state['step']} (elapsed {state['elapsed'] / 60:.1f} min)")
        for late in ("prompts", "refine") if head is not None else ("prompts",):
            if state["stage"] == "done" and late not in state["plan"]:
                # a checkpoint finished before this stage existed: run just the missing stages
                state["stage"], state["step"], opt_state = late, 0, None
                log(f"checkpoint predates the {late} stage: continuing with it")
    elapsed0 = state["elapsed"]

    def elapsed():
        return elapsed0 + time.time() - t_start

    def save(opt):
        state["elapsed"] = elapsed()
        tmp = ckpt_path + ".tmp"
        torch.save(dict(vae=vae.state_dict(), unet=unet.state_dict(), te=te.state_dict(),
                        head=head.state_dict() if head is not None else None, state=state,
                        opt=opt.state_dict() if opt is not None else None), tmp)
        os.replace(tmp, ckpt_path)

    # stage 0: data
    t0 = time.time()
    x, y = build_cache(a.work, a.seed, n_cache, workers=2)
    batches = Batches(x, y, a.seed, tok)
    if "cache_s" not in state:
        state["cache_s"] = time.time() - t0

    # fixed held-in validation batch (training distribution, not the evaluation photos)
    vb = batches.edit(99, 0, 8)
    vb_aug = batches.edit(98, 0, 8, augment=True)
    styles.check_augmentation_excludes_heldout()
    # the original style on clean crops: the refine stage's detail check
    id_rows = np.arange(0, len(x), max(1, len(x) // 8))[:8]
    id_crops = to_tensor(x[id_rows][:, 16:16 + CROP, 16:16 + CROP])
    vb_id = (id_crops, id_crops, batches.cond([styles.STYLES["original"]["keys"][0]] * len(id_rows),
                                              resize_for_encoder(x[id_rows])), None)

    stages = (["ae", "edit", "head", "joint", "prompts", "refine"] if head is not None
              else ["ae", "edit", "joint", "prompts"])
    shares = HEAD_STAGE_SHARE if head is not None else STAGE_SHARE
    explicit = dict(ae=a.steps_ae, edit=a.steps_edit, head=a.steps_head, joint=a.steps_joint, prompts=a.steps_prompts,
                    refine=a.steps_refine)
    k_work = round(1 / nano.WORKING_SCALE)

    def working(t):
        return F.avg_pool2d(t, k_work) if head is not None else t
    for si, stage in enumerate(stages):
        if state["stage"] == "done" or stages.index(state["stage"]) > si:
            continue
        if stage == "ae":
            params = list(vae.parameters())
            base_lr = 2e-3
        elif stage == "edit":
            # With the affine head this runs at the working scale with the RGB decoder: the
            # latent target gives the U-Net a direct signal (end to end through the colour
            # maps alone it stayed at the identity's PSNR).
            params = list(unet.parameters()) + list(te.parameters())
            base_lr = 1e-3
        elif stage == "head":
            params = list(head.decoder.parameters())
            base_lr = 1e-3
        elif stage in ("joint", "refine"):
            params = list(unet.parameters()) + list(te.parameters()) + list((head or vae).decoder.parameters())
            base_lr = 3e-4
        else:
            params = list(te.parameters())
            base_lr = 3e-4
        for p in vae.parameters():
            p.requires_grad_(stage == "ae" or (stage == "joint" and p in set(vae.decoder.parameters())))
        for p in unet.parameters():
            p.requires_grad_(stage in ("edit", "joint", "refine"))
        for p in te.parameters():
            p.requires_grad_(stage != "ae")
        if head is not None:
            head.encoder.load_state_dict(vae.encoder.state_dict())  # the trained encoder makes the source latents
            for p in head.parameters():
                p.requires_grad_(False)
            for p in head.decoder.parameters():
                p.requires_grad_(stage in ("head", "joint", "refine"))
        opt = torch.optim.AdamW(params, lr=base_lr, weight_decay=1e-4 if stage == "ae" else 1e-2,
                                betas=(0.9, 0.99))
        if opt_state is not None and state["stage"] == stage and state["step"] > 0:
            opt.load_state_dict(opt_state)
        opt_state = None
        if state["stage"] != stage:
            state["stage"], state["step"] = stage, 0
            if stage == "head":
                nano.reset_head_decoder(head, vae)  # from the trained RGB decoder, not the initial one

        def train_step(step):
            if stage == "ae":
                img = batches.ae(si + 1, step, bs)
                lat = vae.encoder(img)
                rec = vae.decoder(lat)
                loss = pixel_loss(rec, img)
                info = dict(psnr=psnr(rec, img))
            elif stage == "head":
                src, tgt, cond, g = batches.edit(si + 1, step, bs)
                with torch.no_grad():
                    x0, _ = edit_forward(vae, unet, te, working(src), cond, g, False)
                    target_maps = guided_maps(working(src), working(tgt))
                maps = head.decoder(x0 / vae.config.scaling_factor)
                out = nano.apply_affine(maps, src)
                loss = F.mse_loss(maps, target_maps) + pixel_loss(out, tgt)
                info = dict(psnr=psnr(out, tgt))
            elif stage == "refine":
                src, tgt, cond, g, names = batches.edit(si + 1, step, bs, augment=True, with_styles=True)
                maps, out = edit_forward(vae, unet, te, src, cond, g, True, head, with_maps=True)
                with torch.no_grad():
                    target_maps = guided_maps(working(src), working(tgt))
                    for b_, n_ in enumerate(names):
                        if n_ == "original":
                            target_maps[b_] = IDENTITY_MAPS.view(12, 1, 1)
                # the identity's target is exact; the guided maps are a 3x3-window estimate
                # at the working scale, so they only steer (a tenth of the weight)
                map_w = torch.tensor([1.0 if n_ == "original" else 0.1 for n_ in names]).view(-1, 1, 1, 1)
                twice = [b_ for b_, n_ in enumerate(names) if n_ in REFINE_EMPHASIS]
                loss = pixel_loss(out, tgt) + (map_w * (maps - target_maps) ** 2).mean()
                if twice:
                    loss = loss + pixel_loss(out[twice], tgt[twice])
                info = dict(psnr=psnr(out, tgt))
            else:
                src, tgt, cond, g = batches.edit(si + 1, step, bs, augment=stage == "prompts")
                if head is not None and stage == "edit":
                    src, tgt = working(src), working(tgt)
                affine = head if (head is not None and stage != "edit") else None
                x0, out = edit_forward(vae, unet, te, src, cond, g, stage == "joint", affine)
                if affine is not None:
                    loss = pixel_loss(out, tgt)
                else:
                    with torch.no_grad():
                        tgt_lat = vae.encoder(tgt) * vae.config.scaling_factor
                    lat_w = 1.0 if stage == "edit" else 0.1
                    loss = lat_w * F.mse_loss(x0, tgt_lat) + pixel_loss(out, tgt)
                info = dict(psnr=psnr(out, tgt))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            info["loss"] = loss.item()
            return info

        # plan: calibrate step time, then fix the step count for this stage's budget share
        if stage not in state["plan"]:
            if explicit[stage] is not None:
                state["plan"][stage] = explicit[stage]
            else:
                calib = 3 if a.smoke else 8
                for g_ in opt.param_groups:
                    g_["lr"] = 0.0  # calibration steps do not train (keeps resume exact)
                t = time.time()
                for s_ in range(calib):
                    train_step(10_000_000 + s_)
                per = (time.time() - t) / calib
                opt = torch.optim.AdamW(params, lr=base_lr, weight_decay=opt.defaults["weight_decay"],
                                        betas=(0.9, 0.99))
                share = shares[stage] * budget
                if stage == "ae":  # the cache's unused share goes to the autoencoder
                    share += max(0.0, shares["cache"] * budget - state["cache_s"])
                state["plan"][stage] = max(10, int(share / per))
                log(f"{stage}: {per * 1000:.0f} ms/step at batch {bs} -> {state['plan'][stage]} steps "
                    f"({share / 60:.1f} min)")
        total = state["plan"][stage]
        # safety net for the 3-hour limit on a slower or busier machine than calibrated:
        # stop the stage (keeping what it learnt) when its cumulative share is overrun by 5 min
        order = ["cache"] + stages
        deadline = sum(shares[k] for k in order[:order.index(stage) + 1]) * budget + 300
        last_save, t_log = time.time(), time.time()
        while state["step"] < total:
            if not a.no_deadline and elapsed() > deadline:
                log(f"{stage}: deadline {deadline / 60:.1f} min passed at step {state['step']}/{total}; moving on")
                break
            step = state["step"]
            for g_ in opt.param_groups:
                g_["lr"] = lr_at(step, total, base_lr)
            info = train_step(step)
            state["step"] += 1
            if step % (10 if a.smoke else 100) == 0 or state["step"] == total:
                msg = f"{stage} {state['step']}/{total} loss {info['loss']:.4f} psnr {info['psnr']:.2f}"
                if stage != "ae":
                    with torch.no_grad():
                        vals = [("val", vb), ("val-aug", vb_aug)] + ([("val-original", vb_id)] if stage == "refine" else [])
                        for label, (src, tgt, cond, _) in vals:
                            g = torch.Generator().manual_seed(0)
                            if head is not None and stage == "edit":  # the U-Net alone, at the working scale
                                _, out = edit_forward(vae, unet, te, working(src), cond, g, False)
                                tgt = working(tgt)
                            else:
                                _, out = edit_forward(vae, unet, te, src, cond, g, False, head)
                            msg += f" | {label} psnr {psnr(out, tgt):.2f}"
                msg += f" | {(time.time() - t_log):.0f}s, elapsed {elapsed() / 60:.1f} min"
                log(msg)
                state["history"].append(dict(stage=stage, step=state["step"], **info))
                t_log = time.time()
            if time.time() - last_save > (60 if a.smoke else 600):
                save(opt)
                last_save = time.time()
        save(opt)

    # export
    state["stage"] = "done"
    save(None)
    vae.eval(); unet.eval(); te.eval()
    if head is not None:
        head.eval()
        head.encoder.load_state_dict(vae.encoder.state_dict())
    nano.write_folder(a.out, vae, unet, te, tok, head=head)
    nano.check_folder(a.out)
    import flops
    # With the head the model runs at the working scale: a 256² frame costs the 128² model
    # plus ~25 flops per frame pixel for the colour maps.
    r = flops.measure(head if head is not None else vae, unet, te, tok,
                      int(256 * nano.WORKING_SCALE) if head is not None else 256, verbose=True)
    size = nano.folder_size(a.out)
    summary = dict(seed=a.seed, smoke=a.smoke, plan=state["plan"], minutes=elapsed() / 60,
                   gflop_per_frame_256=r["per_frame"] / 1e9, folder_mb=size / 1e6,
                   params=dict(vae=nano.param_count(vae), unet=nano.param_count(unet), te=nano.param_count(te)))
    with open(os.path.join(a.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log(f"done: {json.dumps(summary)}")
    if size > 20e6:
        log("WARNING: folder exceeds 20 MB")


if __name__ == "__main__":
    main()
