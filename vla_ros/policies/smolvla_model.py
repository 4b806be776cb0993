"""SmolVLA (Shukor et al., 2025) on transformers' SmolVLM and Llama modules, with LeRobot's parameter names.

* Backbone: ``SmolVLMForConditionalGeneration`` with its text model cut to the first ``num_vlm_layers``.
* Action expert: a Llama of the text model's shape at ``expert_width_multiplier`` x the width (the MLP sized
  as LeRobot's ``get_intermediate_size``), one expert layer per ``num_vlm_layers / num_expert_layers`` VLM
  layers, no token embedding. In cross-attention layers (every layer ``i`` with ``i % self_attn_every_n_layers
  != 0``) the expert's ``k_proj``/``v_proj`` map the VLM's cached keys/values to the expert's heads and the
  expert's queries count positions from 0; in the other layers the expert's own keys/values join the cache.
* Prefix (bidirectional): per camera the vision encoder + pixel-shuffle connector, x sqrt(width); the
  language tokens x sqrt(width); one state token (``state_proj``) in its own block. RoPE with base 10,000
  on every attention, attention in float32.
* Suffix (causal): ``action_in_proj(x)`` with sin-cos(t) through ``action_time_mlp_in/out`` (SiLU); flow
  matching from noise at t = 1 to actions at t = 0 in ``num_steps`` Euler steps, ``action_out_proj`` in
  float32.

Keys are LeRobot's (``model.vlm_with_expert.vlm.*``, ``model.vlm_with_expert.lm_expert.*``, ``model.state_proj``
...), so ``model.safetensors`` loads with no renaming.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SmolVLAShape:
    """The LeRobot config fields that shape the network."""

    num_vlm_layers: int = 16
    num_expert_layers: int = -1
    self_attn_every_n_layers: int = 2
    expert_width_multiplier: float = 0.75
    attention_mode: str = "cross_attn"
    max_state_dim: int = 32
    max_action_dim: int = 32
    chunk_size: int = 50
    min_period: float = 4e-3
    max_period: float = 4.0
    add_image_special_tokens: bool = False

    @classmethod
    def from_lerobot(cls, cfg: dict) -> SmolVLAShape:
        names = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls, k))(cfg[k]) for k in names if k in cfg and cfg[k] is not None})


def expert_intermediate_size(width: int, multiplier: int = 4, multiple_of: int = 256) -> int:
    """LeRobot's MLP size of the expert: 2/3 of ``multiplier`` x width, rounded up to ``multiple_of``."""
    size = int(multiplier * int(2 * width / 3))
    return multiple_of * ((size + multiple_of - 1) // multiple_of)


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10_000.0) -> torch.Tensor:
    """Rotary embedding of (B, L, H, D) by (B, L) positions, halves rotated (LeRobot's, computed in float32)."""
    half = x.shape[-1] // 2
    dtype = x.dtype
    x = x.float()
    exponents = (2.0 / x.shape[-1]) * torch.arange(half, dtype=torch.float32, device=x.device)
    angles = positions[..., None].float() / (base ** exponents)[None, None, :]
    sin, cos = torch.sin(angles)[..., None, :], torch.cos(angles)[..., None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(dtype)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, heads: int, kv_heads: int,
           head_dim: int) -> torch.Tensor:
    """Masked softmax attention in float32: q (B, Lq, H, D), k/v (B, Lk, Hkv, D), mask (B, Lq, Lk) bool;
    returns (B, Lq, H * D) in v's dtype."""
    groups = heads // kv_heads
    k = k.repeat_interleave(groups, dim=2).float().transpose(1, 2)
    v_all = v.repeat_interleave(groups, dim=2).transpose(1, 2)
    scores = torch.matmul(q.float().transpose(1, 2), k.transpose(2, 3)) * head_dim ** -0.5
    scores = torch.where(mask[:, None], scores, torch.finfo(torch.float32).min)
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    out = torch.matmul(probs, v_all).transpose(1, 2)
    return out.reshape(out.shape[0], out.shape[1], heads * head_dim)


def block_mask(pad: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """(B, L, L) attention mask: token i sees token j when j is not padding and j's block starts at or
    before i's (``blocks``: 1 where a new block starts, big_vision's ``mask_ar``)."""
    cum = torch.cumsum(blocks, dim=1)
    return (cum[:, None, :] <= cum[:, :, None]) & (pad[:, None, :] & pad[:, :, None])


def sincos(t: torch.Tensor, width: int, min_period: float, max_period: float) -> torch.Tensor:
    """Sine-cosine embedding (B, width) of the flow time ``t`` (B,), periods spaced geometrically, float64."""
    fraction = torch.linspace(0.0, 1.0, width // 2, dtype=torch.float64, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = (2 * math.pi / period)[None, :] * t[:, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def patch_positions(side: int, legacy: bool, dtype=torch.float32, device=None) -> torch.Tensor:
    """Position-embedding row of each patch of a full ``side`` x ``side`` image (row-major).

    transformers 4.x (what LeRobot 0.4 trained with) bucketises ``i / side * (1 - 1e-6)``, which falls just
    below every boundary: rows and columns 0, 0, 1, ..., side - 2. transformers 5 gives 0 .. side - 1. A
    checkpoint needs the rule it was trained with."""
    boundaries = torch.arange(1 / side, 1.0, 1 / side, device=device)
    index = torch.arange(side, dtype=dtype if legacy else torch.float32, device=device)
    frac = index / side * (1 - 1e-6) if legacy else torch.clamp(index * (1.0 / side), max=1.0 - 1e-6)
    bucket = torch.bucketize(frac, boundaries, right=True)
    return (bucket[:, None] * side + bucket[None, :]).flatten()


class _VLMWithExpert(nn.Module):
    def __init__(self, vlm_config, shape: SmolVLAShape):
        super().__init__()
        from transformers import LlamaModel, SmolVLMForConditionalGeneration

        self.vlm = SmolVLMForConditionalGeneration(vlm_config)
        text = self.vlm.model.text_model
        if shape.num_vlm_layers > 0:
            text.layers = text.layers[: shape.num_vlm_layers]
        text_cfg = vlm_config.text_config
        expert_cfg = copy.deepcopy(text_cfg)
        expert_cfg.hidden_size = int(text_cfg.hidden_size * shape.expert_width_multiplier)
        expert_cfg.intermediate_size = expert_intermediate_size(expert_cfg.hidden_size)
        expert_cfg.num_hidden_layers = shape.num_expert_layers if shape.num_expert_layers > 0 else len(text.layers)
        if len(text.layers) % expert_cfg.num_hidden_layers:
            raise ValueError(f"num_vlm_layers {len(text.layers)} is not a multiple of num_expert_layers "
                             f"{expert_cfg.num_hidden_layers}")
        self.lm_expert = LlamaModel(expert_cfg)
        self.cross = "cross" in shape.attention_mode
        self.every = shape.self_attn_every_n_layers
        kv_width = text_cfg.num_key_value_heads * text_cfg.head_dim
        for i, layer in enumerate(self.lm_expert.layers):
            if self.cross and not self._self_attention(i):
                out = expert_cfg.num_key_value_heads * expert_cfg.head_dim
                layer.self_attn.k_proj = nn.Linear(kv_width, out, bias=expert_cfg.attention_bias)
                layer.self_attn.v_proj = nn.Linear(kv_width, out, bias=expert_cfg.attention_bias)
        self.lm_expert.embed_tokens = None
        self.heads, self.kv_heads = text_cfg.num_attention_heads, text_cfg.num_key_value_heads
        self.head_dim = text_cfg.head_dim
        self.expert_width = expert_cfg.hidden_size
        self.stride = len(text.layers) // expert_cfg.num_hidden_layers

    def _self_attention(self, i: int) -> bool:
        return not self.cross or (self.every > 0 and i % self.every == 0)

    def expert_layer(self, i: int):
        """The expert layer paired with VLM layer ``i`` (None where the expert skips it)."""
        if self.stride > 1 and i % self.stride:
            return None
        return self.lm_expert.layers[i // self.stride]

    @staticmethod
    def _qkv(layer, hidden: torch.Tensor):
        h = layer.input_layernorm(hidden).to(layer.self_attn.q_proj.weight.dtype)
        shape = (*h.shape[:-1], -1, layer.self_attn.head_dim)
        return (layer.self_attn.q_proj(h).view(shape), layer.self_attn.k_proj(h).view(shape),
                layer.self_attn.v_proj(h).view(shape))

    @staticmethod
    def _finish(layer, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        out = layer.self_attn.o_proj(attended.to(layer.self_attn.o_proj.weight.dtype)) + hidden
        return layer.mlp(layer.post_attention_layernorm(out)) + out

    def prefix_cache(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> list:
        """Keys (after RoPE) and values of every VLM layer over the prefix."""
        cache = []
        hidden = embeds
        for layer in self.vlm.model.text_model.layers:
            q, k, v = self._qkv(layer, hidden)
            q, k = rope(q, positions), rope(k, positions)
            cache.append((k, v))
            hidden = self._finish(layer, hidden, attend(q, k, v, mask, self.heads, self.kv_heads, self.head_dim))
        return cache

    def expert(self, hidden: torch.Tensor, cache: list, prefix_pad: torch.Tensor) -> torch.Tensor:
        """The expert over the suffix tokens (causal among themselves) given the prefix cache."""
        batch, length = hidden.shape[:2]
        prefix_len = prefix_pad.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=hidden.device).tril()
        self_mask = torch.cat([prefix_pad[:, None, :].expand(batch, length, prefix_len),
                               causal[None].expand(batch, -1, -1)], dim=2)
        cross_mask = prefix_pad[:, None, :].expand(batch, length, prefix_len)
        offset = prefix_pad.sum(dim=-1, keepdim=True)
        steps = torch.arange(length, device=hidden.device)[None, :].expand(batch, -1)
        for i, (keys, values) in enumerate(cache):
            layer = self.expert_layer(i)
            if layer is None:
                continue
            h = layer.input_layernorm(hidden).to(layer.self_attn.q_proj.weight.dtype)
            shape = (batch, length, -1, layer.self_attn.head_dim)
            q = layer.self_attn.q_proj(h).view(shape)
            if self._self_attention(i):
                k, v = layer.self_attn.k_proj(h).view(shape), layer.self_attn.v_proj(h).view(shape)
                positions = offset + steps
                q, k = rope(q, positions), rope(k, positions)
                k, v = torch.cat([keys, k], dim=1), torch.cat([values, v], dim=1)
                mask = self_mask
            else:
                kv_shape = (batch, prefix_len, -1, layer.self_attn.head_dim)
                flat_k = keys.to(layer.self_attn.k_proj.weight.dtype).reshape(batch, prefix_len, -1)
                flat_v = values.to(layer.self_attn.v_proj.weight.dtype).reshape(batch, prefix_len, -1)
                k, v = layer.self_attn.k_proj(flat_k).view(kv_shape), layer.self_attn.v_proj(flat_v).view(kv_shape)
                q = rope(q, steps)
                mask = cross_mask
            hidden = self._finish(layer, hidden, attend(q, k, v, mask, self.heads, self.kv_heads, self.head_dim))
        return self.lm_expert.norm(hidden)


class _FlowMatching(nn.Module):
    def __init__(self, vlm_config, shape: SmolVLAShape):
        super().__init__()
        self.vlm_with_expert = _VLMWithExpert(vlm_config, shape)
        width, expert = vlm_config.text_config.hidden_size, self.vlm_with_expert.expert_width
        self.state_proj = nn.Linear(shape.max_state_dim, width)
        self.action_in_proj = nn.Linear(shape.max_action_dim, expert)
        self.action_out_proj = nn.Linear(expert, shape.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * expert, expert)
        self.action_time_mlp_out = nn.Linear(expert, expert)


class SmolVLAModel(nn.Module):
    """The network with LeRobot's state-dict layout (``model.*``) and the inference passes."""

    def __init__(self, vlm_config, shape: SmolVLAShape, image_tokens: tuple[int, int] | None = None,
                 legacy_positions: bool = True):
        super().__init__()
        self.shape = shape
        self.legacy_positions = legacy_positions
        self.model = _FlowMatching(vlm_config, shape)
        self.width = vlm_config.text_config.hidden_size
        self.image_tokens = image_tokens  # (<fake_token_around_image>, <global-img>) where special tokens are used

    @property
    def core(self) -> _VLMWithExpert:
        return self.model.vlm_with_expert

    def _embed_tokens(self, ids: list[int], batch: int, device) -> torch.Tensor:
        embed = self.core.vlm.model.text_model.get_input_embeddings()
        return embed(torch.tensor(ids, device=device))[None].expand(batch, -1, -1)

    def embed_image(self, image: torch.Tensor) -> torch.Tensor:
        """The vision encoder over a full-size (B, 3, S, S) image, patch positions by ``legacy_positions``."""
        vision = self.core.vlm.model.vision_model
        pixels = image.to(vision.dtype)
        patches = vision.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        side = vision.embeddings.num_patches_per_side
        if patches.shape[1] != side * side:
            size = side * vision.embeddings.patch_size
            raise ValueError(f"images must be {size} px square, got {tuple(image.shape)}")
        rows = patch_positions(side, self.legacy_positions, pixels.dtype, pixels.device)
        hidden = patches + vision.embeddings.position_embedding(rows)[None]
        return vision.post_layernorm(vision.encoder(inputs_embeds=hidden).last_hidden_state)

    def embed_prefix(self, images: list[torch.Tensor], image_masks: list[torch.Tensor], tokens: torch.Tensor,
                     token_mask: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embeddings (B, L, W), padding mask (B, L) and block starts (B, L) of images, language and state."""
        vlm = self.core.vlm.model
        parts, pads = [], []
        batch = state.shape[0]
        special = self.shape.add_image_special_tokens and self.image_tokens is not None
        for image, present in zip(images, image_masks, strict=True):
            if special:
                start = self._embed_tokens(list(self.image_tokens), batch, image.device)
                parts.append(start)
                pads.append(torch.ones(batch, start.shape[1], dtype=torch.bool, device=image.device))
            feats = vlm.connector(self.embed_image(image))
            feats = feats * torch.tensor(feats.shape[-1] ** 0.5, dtype=feats.dtype, device=feats.device)
            parts.append(feats)
            pads.append(present[:, None].expand(batch, feats.shape[1]))
            if special:
                end = self._embed_tokens([self.image_tokens[0]], batch, image.device)
                parts.append(end)
                pads.append(torch.ones(batch, 1, dtype=torch.bool, device=image.device))
        lang = vlm.text_model.get_input_embeddings()(tokens)
        parts.append(lang * math.sqrt(lang.shape[-1]))
        pads.append(token_mask.bool())
        parts.append(self.model.state_proj(state)[:, None, :])
        pads.append(torch.ones(batch, 1, dtype=torch.bool, device=state.device))
        embeds, pad = torch.cat(parts, dim=1), torch.cat(pads, dim=1)
        blocks = torch.zeros_like(pad, dtype=torch.int64)
        blocks[:, -1] = 1  # the state token: images and language do not attend to it
        return embeds, pad, blocks

    def prefix(self, images, image_masks, tokens, token_mask, state) -> tuple[list, torch.Tensor]:
        embeds, pad, blocks = self.embed_prefix(images, image_masks, tokens, token_mask, state)
        positions = torch.cumsum(pad.long(), dim=1) - 1
        return self.core.prefix_cache(embeds, block_mask(pad, blocks), positions), pad

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cache: list, prefix_pad: torch.Tensor) -> torch.Tensor:
        """LeRobot's denoising velocity (noise - actions) of x (B, chunk, max_action_dim) at flow time t (B,)."""
        m = self.model
        actions = m.action_in_proj(x)
        time = sincos(t, actions.shape[-1], self.shape.min_period, self.shape.max_period).to(actions.dtype)
        fused = torch.cat([actions, time[:, None, :].expand_as(actions)], dim=2)
        suffix = m.action_time_mlp_out(nn.functional.silu(m.action_time_mlp_in(fused)))
        out = self.core.expert(suffix, cache, prefix_pad)[:, -self.shape.chunk_size :]
        return m.action_out_proj(out.to(m.action_out_proj.weight.dtype))
