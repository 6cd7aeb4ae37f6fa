#!/usr/bin/env python3
"""A random-weight SD 1.5 diffusers pipeline folder for stable-diffusion.cpp (`sd-cli -m DIR`),
used by tools/bench/compare.sh --sdcpp, which times sd.cpp's U-Net steps against
`stylize-tool bench unet` on the same U-Net weights.

    .venv-tools/bin/python tools/bench/make_sdcpp_pipeline.py --unet out/bench-models/sd15-unet --out out/bench-models/sd15-pipeline

Writes
    unet/          links to the --unet folder's files (from `stylize-tool init-random`)
    vae/           AutoencoderKL with SD 1.5's config, random init (diffusers from_config)
    text_encoder/  CLIPTextModel with SD 1.5's config (CLIP ViT-L/14 text tower), random init,
                   keys saved with the `text_model.` prefix sd.cpp's name conversion expects
                   (transformers 5 saves them without it)
    model_index.json
sd.cpp reads only unet/, vae/ and text_encoder/*.safetensors (its CLIP tokenizer is built in),
so no tokenizer/ is written. Developer-only (torch, diffusers, transformers, safetensors).
"""
import argparse
import json
import os

import torch

SD15_VAE = {
    "_class_name": "AutoencoderKL",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

SD15_TEXT_ENCODER = {
    "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 1,
    "projection_dim": 768,
    "vocab_size": 49408,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--unet", required=True, help="diffusers U-Net folder (SD 1.5 architecture)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.manual_seed(a.seed)

    unet_dir = os.path.join(a.out, "unet")
    os.makedirs(unet_dir, exist_ok=True)
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        dst = os.path.join(unet_dir, name)
        if not os.path.lexists(dst):
            os.symlink(os.path.relpath(os.path.join(a.unet, name), unet_dir), dst)

    from diffusers import AutoencoderKL
    vae = AutoencoderKL.from_config(SD15_VAE)
    vae.save_pretrained(os.path.join(a.out, "vae"), safe_serialization=True)

    from safetensors.torch import load_file, save_file
    from transformers import CLIPTextConfig, CLIPTextModel
    te_dir = os.path.join(a.out, "text_encoder")
    CLIPTextModel(CLIPTextConfig(**SD15_TEXT_ENCODER)).save_pretrained(te_dir, safe_serialization=True)
    path = os.path.join(te_dir, "model.safetensors")
    sd = load_file(path)
    sd = {k if k.startswith("text_model.") else "text_model." + k: v.contiguous() for k, v in sd.items()}
    save_file(sd, path, metadata={"format": "pt"})

    json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
               "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
               "text_encoder": ["transformers", "CLIPTextModel"]},
              open(os.path.join(a.out, "model_index.json"), "w"), indent=2)
    print(f"wrote {a.out}: unet/ (linked), vae/ and text_encoder/ (random SD 1.5), "
          f"{len(sd)} text-encoder tensors, first {sorted(sd)[0]}")


if __name__ == "__main__":
    main()
