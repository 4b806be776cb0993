"""pi0.5 (Physical Intelligence, 2025) on transformers' PaliGemma and Gemma modules, with LeRobot's parameter names.

Differences from pi0 (openpi ``pi0_config.py``: "the state input is part of the discrete language tokens; the
action expert uses adaRMSNorm to inject the flow matching timestep"):

* Prefix: each camera through SigLIP and the projector, then the prompt ``Task: ..., State: <bins>;\\nAction: ``
  (the normalised state discretised into 256 bins) embedded x sqrt(width); bidirectional. No state token.
* Suffix: ``action_in_proj(x)`` only, the action tokens bidirectional among themselves.
* Time: sin-cos(t) through ``time_mlp_in``/``time_mlp_out`` (SiLU after each) is the condition of every expert
  RMSNorm: ``dense(cond)`` gives scale, shift and gate; ``norm(x) (1 + scale) + shift``; residuals
  ``x + y * gate``; the final norm is adaptive too.
* Attention: the expert's queries see the VLM's cached prefix keys/values and the suffix's own (joint attention,
  as pi0), RoPE on positions counted over the valid prefix tokens; softmax in float32.

Keys as LeRobot's ``PI05Policy`` saves them (``model.paligemma_with_expert.paligemma.*``,
``model.paligemma_with_expert.gemma_expert.*``, ``model.action_in_proj``, ``model.time_mlp_in`` ...), except
that transformers 5 holds SigLIP's modules directly under ``vision_tower`` (4.x: ``vision_tower.vision_model``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .paligemma_sizes import VISION, VOCAB, Gemma, text_config, vision_config
from .smolvla_model import attend, block_mask, sincos


@dataclass(frozen=True)
class Pi05Shape:
    vlm: Gemma
    expert: Gemma
    image_size: int = 224
    chunk_size: int = 50
    max_state_dim: int = 32
    max_action_dim: int = 32
    min_period: float = 4e-3
    max_period: float = 4.0
    vocab: int = VOCAB
    vision: tuple = tuple(VISION.items())


class AdaRMSNorm(nn.Module):
    """RMSNorm whose scale, shift and gate come from a condition (openpi's adaptive Gemma norm)."""

    def __init__(self, width: int, cond_width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.dense = nn.Linear(cond_width, 3 * width)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = x.dtype
        normed = x * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + self.eps)
        scale, shift, gate = self.dense(cond)[:, None, :].chunk(3, dim=-1)
        return (normed * (1 + scale.float()) + shift.float()).to(dtype), gate.to(dtype)


class ExpertLayer(nn.Module):
    def __init__(self, g: Gemma, cond_width: int):
        super().__init__()
        from transformers.models.gemma.configuration_gemma import GemmaConfig
        from transformers.models.gemma.modeling_gemma import GemmaMLP

        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(g.width, g.num_heads * g.head_dim, bias=False)
        self.self_attn.k_proj = nn.Linear(g.width, g.num_kv_heads * g.head_dim, bias=False)
        self.self_attn.v_proj = nn.Linear(g.width, g.num_kv_heads * g.head_dim, bias=False)
        self.self_attn.o_proj = nn.Linear(g.num_heads * g.head_dim, g.width, bias=False)
        self.mlp = GemmaMLP(GemmaConfig(hidden_size=g.width, intermediate_size=g.mlp_dim,
                                        hidden_activation="gelu_pytorch_tanh"))
        self.input_layernorm = AdaRMSNorm(g.width, cond_width)
        self.post_attention_layernorm = AdaRMSNorm(g.width, cond_width)


class Expert(nn.Module):
    """The action expert: Gemma layers with adaptive norms, no token embedding (``gemma_expert``)."""

    def __init__(self, g: Gemma, vocab: int):
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleList(ExpertLayer(g, g.width) for _ in range(g.depth))
        self.model.norm = AdaRMSNorm(g.width, g.width)
        self.lm_head = nn.Linear(g.width, vocab, bias=False)  # saved by LeRobot, unused


class _PaliGemmaWithExpert(nn.Module):
    def __init__(self, shape: Pi05Shape):
        super().__init__()
        from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

        v, e = shape.vlm, shape.expert
        text = {**text_config(v), "vocab_size": shape.vocab}
        vision = {**vision_config(shape.image_size, v.width), **dict(shape.vision)}
        config = PaliGemmaConfig(text_config=text, vision_config=vision, projection_dim=v.width,
                                 image_token_index=shape.vocab, vocab_size=shape.vocab)
        self.paligemma = PaliGemmaForConditionalGeneration(config)
        self.gemma_expert = Expert(e, shape.vocab)
        if (e.num_heads, e.num_kv_heads, e.head_dim) != (v.num_heads, v.num_kv_heads, v.head_dim):
            raise ValueError("the expert's attention heads must match the VLM's (joint attention)")


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Gemma's rotary embedding (halves rotated) of (B, L, H, D) with (B, L, D) cos/sin."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, :, None, :] + rotated * sin[:, :, None, :]


class Pi05Model(nn.Module):
    """The network with LeRobot's state-dict layout (``model.*``) and the inference passes."""

    def __init__(self, shape: Pi05Shape):
        super().__init__()
        self.shape = shape
        self.model = nn.Module()
        self.model.paligemma_with_expert = _PaliGemmaWithExpert(shape)
        e = shape.expert
        self.model.action_in_proj = nn.Linear(shape.max_action_dim, e.width)
        self.model.action_out_proj = nn.Linear(e.width, shape.max_action_dim)
        self.model.time_mlp_in = nn.Linear(e.width, e.width)
        self.model.time_mlp_out = nn.Linear(e.width, e.width)

    @property
    def vlm(self):
        return self.model.paligemma_with_expert.paligemma.model

    def embed_prefix(self, images: list[torch.Tensor], image_masks: list[torch.Tensor], tokens: torch.Tensor,
                     token_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (B, L, W) and padding mask (B, L) of the cameras and the prompt."""
        parts, pads = [], []
        for image, present in zip(images, image_masks, strict=True):
            feats = self.vlm.get_image_features(image).pooler_output
            parts.append(feats)
            pads.append(present[:, None].expand(feats.shape[0], feats.shape[1]))
        embed = self.vlm.language_model.embed_tokens
        lang = nn.functional.embedding(tokens, embed.weight) * math.sqrt(embed.weight.shape[-1])
        parts.append(lang.to(parts[0].dtype))
        pads.append(token_mask.bool())
        return torch.cat(parts, dim=1), torch.cat(pads, dim=1)

    def prefix(self, images, image_masks, tokens, token_mask) -> tuple[list, torch.Tensor]:
        """Keys (after RoPE) and values of every VLM layer over the prefix, and its padding mask."""
        embeds, pad = self.embed_prefix(images, image_masks, tokens, token_mask)
        positions = torch.cumsum(pad.long(), dim=1) - 1
        mask = block_mask(pad, torch.zeros_like(pad, dtype=torch.int64))
        lm = self.vlm.language_model
        cos, sin = lm.rotary_emb(embeds, positions)
        v = self.shape.vlm
        cache, hidden = [], embeds
        for layer in lm.layers:
            h = layer.input_layernorm(hidden)
            shape = (*h.shape[:-1], -1, v.head_dim)
            q = rope(layer.self_attn.q_proj(h).view(shape), cos, sin)
            k = rope(layer.self_attn.k_proj(h).view(shape), cos, sin)
            val = layer.self_attn.v_proj(h).view(shape)
            cache.append((k, val))
            out = layer.self_attn.o_proj(attend(q, k, val, mask, v.num_heads, v.num_kv_heads, v.head_dim))
            hidden = hidden + out
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return cache, pad

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cache: list, prefix_pad: torch.Tensor) -> torch.Tensor:
        """LeRobot's denoising velocity (noise - actions) of x (B, chunk, max_action_dim) at flow time t (B,)."""
        m, e = self.model, self.shape.expert
        hidden = m.action_in_proj(x)
        time = sincos(t, hidden.shape[-1], self.shape.min_period, self.shape.max_period).to(hidden.dtype)
        cond = nn.functional.silu(m.time_mlp_out(nn.functional.silu(m.time_mlp_in(time))))
        batch, length = hidden.shape[:2]
        prefix_len = prefix_pad.shape[1]
        mask = torch.cat([prefix_pad[:, None, :].expand(batch, length, prefix_len),
                          torch.ones(batch, length, length, dtype=torch.bool, device=x.device)], dim=2)
        positions = prefix_pad.sum(-1, keepdim=True) + torch.arange(length, device=x.device)[None]
        cos, sin = self.vlm.language_model.rotary_emb(hidden, positions)
        expert = m.paligemma_with_expert.gemma_expert.model
        for layer, (keys, values) in zip(expert.layers, cache, strict=True):
            h, gate = layer.input_layernorm(hidden, cond)
            shape = (batch, length, -1, e.head_dim)
            q = rope(layer.self_attn.q_proj(h).view(shape), cos, sin)
            k = torch.cat([keys, rope(layer.self_attn.k_proj(h).view(shape), cos, sin)], dim=1)
            v = torch.cat([values, layer.self_attn.v_proj(h).view(shape)], dim=1)
            out = layer.self_attn.o_proj(attend(q, k, v, mask, e.num_heads, e.num_kv_heads, e.head_dim))
            hidden = hidden + out * gate
            h, gate = layer.post_attention_layernorm(hidden, cond)
            hidden = hidden + layer.mlp(h) * gate
        out = expert.norm(hidden, cond)[0][:, -self.shape.chunk_size :]
        return m.action_out_proj(out.to(m.action_out_proj.weight.dtype))  # (LeRobot: float32 there)
