#!/usr/bin/env python3
"""The nano model: configs, tokenizer, and writing the model folder.

    python3 tools/nano/model.py --random OUT_DIR     write a randomly initialised folder
                                                     (format check; train.py writes the real one)

Folder layout (docs/ARCHITECTURE.md#model-folders, the format the Swift engine loads):
    model_index.json, stylize.json
    unet/         diffusers UNet2DConditionModel, concat-channels edit U-Net (2L in, L out)
    vae/          diffusers AutoencoderTiny, 16 channels, /8, 16 latent channels
    text_encoder/ transformers Qwen3VLModel (language_model.*, visual.*) + preprocessor_config.json
    tokenizer/    byte-level BPE tokenizer.json in Qwen2 format + tokenizer_config.json
    scheduler/    DDIMScheduler, trailing, prediction_type "sample" (1 step returns x0)
All weights are stored fp16.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import styles  # noqa: E402

# ----------------------------------------------------------------------------- configs

LATENT_CHANNELS = 16
AE_CHANNELS = 16

VAE_CONFIG = dict(
    in_channels=3, out_channels=3,
    encoder_block_out_channels=[AE_CHANNELS] * 4,
    decoder_block_out_channels=[AE_CHANNELS] * 4,
    act_fn="relu", upsample_fn="nearest", upsampling_scaling_factor=2,
    latent_channels=LATENT_CHANNELS,
    # Full-resolution work is what costs: the encoder's first level is only conv_in, the
    # decoder's last level only the final conv (plus the upsampled conv before it).
    num_encoder_blocks=[0, 1, 2, 2],
    num_decoder_blocks=[2, 2, 1, 0],
    latent_magnitude=3.0, latent_shift=0.5,
    scaling_factor=1.0, shift_factor=0.0, force_upcast=False,
)

# The affine output head (docs/ARCHITECTURE.md#working-resolution): the model runs at
# WORKING_SCALE of the frame and its decoder predicts, per working pixel, a colour
# transform of the full-size input (out_c = sum_i A_ci I_i + b_c; 12 channels, 4c + i).
# The autoencoder stage trains an RGB decoder (its encoder makes the source latents);
# the exported vae/ is that encoder with the 12-channel decoder.
WORKING_SCALE = 0.5
WORKING_MAX_PIXELS = 320 * 240
HEAD_CHANNELS = 12
HEAD_CONFIG = dict(VAE_CONFIG, out_channels=HEAD_CHANNELS)

TEXT_HIDDEN = 64
HIDDEN_LAYERS = [-1]
CROSS_DIM = TEXT_HIDDEN * len(HIDDEN_LAYERS)

UNET_CONFIG = dict(
    sample_size=32,
    in_channels=2 * LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    block_out_channels=[32, 64, 128],
    layers_per_block=1,
    norm_num_groups=8,
    cross_attention_dim=CROSS_DIM,
    attention_head_dim=4,           # diffusers' legacy name: the number of heads
    transformer_layers_per_block=1,
    act_fn="silu",
    flip_sin_to_cos=True, freq_shift=0,
)

# Image the vision tower sees: 128x128 -> 8x8 patches of 16 -> 16 merged tokens.
ENCODER_IMAGE = 128
PATCH = 16
MERGE = 2
IMAGE_TOKENS = (ENCODER_IMAGE // PATCH // MERGE) ** 2
PAD_TO = 48
TEMPLATE = "<|im_start|>user\n{image}{prompt}<|im_end|>\n"

# Qwen2/Qwen3(-VL) added tokens, in the standard order (ids follow the BPE vocabulary).
QWEN_SPECIAL = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False), ("<|file_sep|>", False),
    ("<tool_response>", False), ("</tool_response>", False), ("<think>", False), ("</think>", False),
]
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BPE_VOCAB = 768


def prompt_corpus() -> list[str]:
    """Every training prompt (never the held-out paraphrases), plus a little generic text."""
    out = []
    for n in styles.STYLE_NAMES:
        out += styles.train_prompts(n)
        out += [p.capitalize() for p in styles.train_prompts(n)]
    out += ["user", "assistant", "system", "a photo", "the video", "make this image look different",
            "Describe the picture.", "0123456789", "!?.,;:'\"()-_/"]
    return out


def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers import AddedToken
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, fuse_unk=False, byte_fallback=False,
                               ignore_merges=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    corpus = prompt_corpus()
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=s, normalized=False, lstrip=False, rstrip=False,
                                       single_word=False) for t, s in QWEN_SPECIAL])
    return tok


def token_ids(tok) -> dict:
    return {t: tok.token_to_id(t) for t, _ in QWEN_SPECIAL}


def vocab_size(tok) -> int:
    n = tok.get_vocab_size(with_added_tokens=True)
    return (n + 63) // 64 * 64


def text_encoder_config(tok):
    from transformers import Qwen3VLConfig
    ids = token_ids(tok)
    return Qwen3VLConfig(
        text_config=dict(vocab_size=vocab_size(tok), hidden_size=TEXT_HIDDEN, intermediate_size=192,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         hidden_act="silu", rms_norm_eps=1e-6, attention_bias=False, max_position_embeddings=512,
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [4, 2, 2], "mrope_interleaved": True}),
        vision_config=dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, in_channels=3,
                           patch_size=PATCH, spatial_merge_size=MERGE, temporal_patch_size=2,
                           out_hidden_size=TEXT_HIDDEN, num_position_embeddings=64,
                           deepstack_visual_indexes=[1], hidden_act="gelu_pytorch_tanh"),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_models(tok, seed: int = 0):
    from diffusers import AutoencoderTiny, UNet2DConditionModel
    from transformers import Qwen3VLModel
    torch.manual_seed(seed)
    vae = AutoencoderTiny(**VAE_CONFIG)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    te = Qwen3VLModel(text_encoder_config(tok))
    return vae, unet, te


def build_head(vae):
    """The affine head: `vae`'s encoder, a decoder with 12 outputs starting as the identity
    transform (weights of the last conv near 0, bias = the identity's coefficients)."""
    from diffusers import AutoencoderTiny
    head = AutoencoderTiny(**HEAD_CONFIG)
    reset_head_decoder(head, vae)
    return head


def reset_head_decoder(head, vae):
    """The head's encoder and decoder from `vae`'s (all but the last conv, whose output
    count differs), the last conv near 0 with the identity transform as its bias. Called
    again when the head stage starts, so the head starts from the *trained* RGB decoder."""
    head.encoder.load_state_dict(vae.encoder.state_dict())
    rgb, ours = vae.decoder.state_dict(), head.decoder.state_dict()
    ours.update({k: v for k, v in rgb.items() if ours[k].shape == v.shape})
    head.decoder.load_state_dict(ours)
    last = [m for m in head.decoder.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(0.01)
        last.bias.copy_(torch.tensor([1., 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]))


def apply_affine(coefficients, image):
    """The Swift engine's applyAffineColor: coefficients [B, 12, h, w] interpolated
    bilinearly (align_corners=False) to the image's size [B, 3, H, W], then
    out_c = sum_i A_ci I_i + b_c (unclamped here; the engine clamps to [-1, 1])."""
    import torch.nn.functional as F
    c = F.interpolate(coefficients, size=image.shape[-2:], mode="bilinear", align_corners=False)
    c = c.view(c.shape[0], 3, 4, *c.shape[-2:])
    return (c[:, :, :3] * image[:, None]).sum(2) + c[:, :, 3]


SCHEDULER_CONFIG = dict(
    _class_name="DDIMScheduler", num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
    beta_schedule="scaled_linear", trained_betas=None, clip_sample=False, clip_sample_range=1.0,
    set_alpha_to_one=True, steps_offset=0, prediction_type="sample", thresholding=False,
    dynamic_thresholding_ratio=0.995, sample_max_value=1.0, timestep_spacing="trailing",
    rescale_betas_zero_snr=False,
)


def stylize_json(default_style: str = "watercolor", affine: bool = False) -> dict:
    head = {"output_head": "affine", "working": {"scale": WORKING_SCALE, "max_pixels": WORKING_MAX_PIXELS}} if affine else {}
    return head | {
        "conditioning_mode": "concat-channels",
        "default_prompt": styles.STYLES[default_style]["keys"][0],
        "steps": 1,
        "strength": 1.0,
        "text_encoder": {
            "template": TEMPLATE,
            "hidden_layers": HIDDEN_LAYERS,
            "max_length": PAD_TO, "pad_to": PAD_TO, "drop_first": 0,
            "pad_token": "<|endoftext|>", "attention_mask": True, "add_special_tokens": False,
            "image_size": [ENCODER_IMAGE, ENCODER_IMAGE],
        },
        "styles": [{"name": n, "prompts": styles.example_prompts(n), "reference": s["ref"]}
                   for n, s in styles.STYLES.items()],
    }


PREPROCESSOR_CONFIG = {
    "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "image_processor_type": "Qwen2VLImageProcessor",
    "merge_size": MERGE, "patch_size": PATCH, "temporal_patch_size": 2, "resample": 3,
    "rescale_factor": 1 / 255,
    "size": {"shortest_edge": (PATCH * MERGE) ** 2, "longest_edge": ENCODER_IMAGE * ENCODER_IMAGE * 4},
}


def tokenizer_config(tok) -> dict:
    added = {str(tok.token_to_id(t)): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                       "single_word": False, "special": s} for t, s in QWEN_SPECIAL}
    return {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
        "errors": "replace", "model_max_length": PAD_TO * 8, "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "clean_up_tokenization_spaces": False,
    }


def write_folder(out: str, vae, unet, te, tok, default_style: str = "watercolor", head=None) -> None:
    """Writes the complete model folder with fp16 weights (`head`: the affine head's
    autoencoder, written as vae/ instead of `vae`)."""
    if os.path.exists(out):
        shutil.rmtree(out)
    for sub in ["tokenizer", "scheduler"]:
        os.makedirs(os.path.join(out, sub))

    def dump(path, obj):
        with open(os.path.join(out, path), "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")

    import copy
    for name, m in [("unet", unet), ("vae", head if head is not None else vae)]:
        copy.deepcopy(m).to(torch.float16).save_pretrained(os.path.join(out, name), safe_serialization=True)
    copy.deepcopy(te).to(torch.float16).save_pretrained(os.path.join(out, "text_encoder"), safe_serialization=True)
    dump("text_encoder/preprocessor_config.json", PREPROCESSOR_CONFIG)
    tok.save(os.path.join(out, "tokenizer", "tokenizer.json"))
    dump("tokenizer/tokenizer_config.json", tokenizer_config(tok))
    dump("scheduler/scheduler_config.json", dict(SCHEDULER_CONFIG, _diffusers_version=__import__("diffusers").__version__))
    dump("model_index.json", {
        "_class_name": "StylizePipeline", "_diffusers_version": __import__("diffusers").__version__,
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "Qwen3VLModel"],
        "tokenizer": ["transformers", "Qwen2TokenizerFast"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderTiny"],
    })
    dump("stylize.json", stylize_json(default_style, affine=head is not None))


def folder_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def param_count(m) -> int:
    return sum(p.numel() for p in m.parameters())


def check_folder(path: str) -> None:
    """Loads the folder back with diffusers / transformers / tokenizers; raises on failure."""
    from diffusers import AutoencoderTiny, DDIMScheduler, UNet2DConditionModel
    from tokenizers import Tokenizer
    from transformers import Qwen3VLModel
    UNet2DConditionModel.from_pretrained(os.path.join(path, "unet"))
    AutoencoderTiny.from_pretrained(os.path.join(path, "vae"))
    Qwen3VLModel.from_pretrained(os.path.join(path, "text_encoder"))
    DDIMScheduler.from_pretrained(os.path.join(path, "scheduler"))
    Tokenizer.from_file(os.path.join(path, "tokenizer", "tokenizer.json"))
    try:
        from transformers import AutoTokenizer, Qwen2VLImageProcessor
        AutoTokenizer.from_pretrained(os.path.join(path, "tokenizer"))
        Qwen2VLImageProcessor.from_pretrained(os.path.join(path, "text_encoder"))
    except Exception as e:  # informative only: the engine reads tokenizer.json itself
        print(f"note: transformers AutoTokenizer / image processor load: {e}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--random", metavar="OUT_DIR", required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    tok = build_tokenizer()
    vae, unet, te = build_models(tok, a.seed)
    write_folder(a.random, vae, unet, te, tok)
    check_folder(a.random)
    print(f"vae {param_count(vae):,}  unet {param_count(unet):,}  text_encoder {param_count(te):,}  "
          f"folder {folder_size(a.random) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
