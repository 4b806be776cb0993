"""pi0-FAST (Physical Intelligence, 2025) on transformers' PaliGemma, with LeRobot's parameter names.

A PaliGemma that writes the action chunk as text: the prefix (each camera through SigLIP and the projector, the
prompt ``Task: ..., State: <bins>;\\n`` and a BOS token, embedded x sqrt(width)) attends bidirectionally; the
action tokens that follow are decoded greedily, each seeing every valid prefix token and the tokens before it.
Positions count the valid tokens only; softmax in float32. Keys as LeRobot's ``PI0FastPolicy`` saves them
(``model.paligemma_with_expert.paligemma.*``), SigLIP's modules directly under ``vision_tower`` (transformers 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .paligemma_sizes import VISION, VOCAB, Gemma, text_config, vision_config
from .pi05_model import rope
from .smolvla_model import attend


@dataclass(frozen=True)
class Pi0FastShape:
    vlm: Gemma
    image_size: int = 224
    vocab: int = VOCAB
    vision: tuple = tuple(VISION.items())


class _PaliGemmaOnly(nn.Module):
    def __init__(self, shape: Pi0FastShape):
        super().__init__()
        from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

        v = shape.vlm
        text = {**text_config(v), "vocab_size": shape.vocab}
        vision = {**vision_config(shape.image_size, v.width), **dict(shape.vision)}
        config = PaliGemmaConfig(text_config=text, vision_config=vision, projection_dim=v.width,
                                 image_token_index=shape.vocab, vocab_size=shape.vocab, tie_word_embeddings=False)
        self.paligemma = PaliGemmaForConditionalGeneration(config)


class Pi0FastModel(nn.Module):
    """The network with LeRobot's state-dict layout (``model.*``) and greedy, cached decoding."""

    def __init__(self, shape: Pi0FastShape):
        super().__init__()
        self.shape = shape
        self.model = nn.Module()
        self.model.paligemma_with_expert = _PaliGemmaOnly(shape)

    @property
    def vlm(self):
        return self.model.paligemma_with_expert.paligemma.model

    @property
    def lm_head(self) -> nn.Linear:
        return self.model.paligemma_with_expert.paligemma.lm_head

    def _embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        weight = self.vlm.language_model.embed_tokens.weight
        return nn.functional.embedding(tokens, weight) * math.sqrt(weight.shape[-1])

    def _layers(self, hidden: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, cache: list) -> torch.Tensor:
        """Every Gemma layer over ``hidden`` (B, L, W), appending its keys/values to ``cache`` (per layer, keys
        after RoPE); returns the final-normed hidden states."""
        lm = self.vlm.language_model
        cos, sin = lm.rotary_emb(hidden, positions)
        v = self.shape.vlm
        fresh = not cache
        for i, layer in enumerate(lm.layers):
            h = layer.input_layernorm(hidden)
            shape = (*h.shape[:-1], -1, v.head_dim)
            q = rope(layer.self_attn.q_proj(h).view(shape), cos, sin)
            k = rope(layer.self_attn.k_proj(h).view(shape), cos, sin)
            val = layer.self_attn.v_proj(h).view(shape)
            if fresh:
                cache.append((k, val))
            else:
                k = torch.cat([cache[i][0], k], dim=1)
                val = torch.cat([cache[i][1], val], dim=1)
                cache[i] = (k, val)
            out = layer.self_attn.o_proj(attend(q, k, val, mask, v.num_heads, v.num_kv_heads, v.head_dim))
            hidden = hidden + out
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return lm.norm(hidden)

    def prefill(self, images: list[torch.Tensor], image_masks: list[torch.Tensor], tokens: torch.Tensor,
                token_mask: torch.Tensor) -> tuple[list, torch.Tensor, torch.Tensor]:
        """The prefix (cameras, prompt tokens incl. the trailing BOS) once: (cache, padding mask (B, L), logits of
        the first action token (B, vocab))."""
        parts, pads = [], []
        for image, present in zip(images, image_masks, strict=True):
            feats = self.vlm.get_image_features(image).pooler_output
            parts.append(feats)
            pads.append(present[:, None].expand(feats.shape[0], feats.shape[1]))
        parts.append(self._embed_tokens(tokens).to(parts[0].dtype))
        pads.append(token_mask.bool())
        embeds, pad = torch.cat(parts, dim=1), torch.cat(pads, dim=1)
        positions = torch.cumsum(pad.long(), dim=1) - 1
        mask = pad[:, None, :] & pad[:, :, None]
        cache: list = []
        hidden = self._layers(embeds, positions, mask, cache)
        return cache, pad, self.lm_head(hidden[:, -1]).float()

    def step(self, token: torch.Tensor, cache: list, pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoded token (B,) through the cached layers: (logits of the next (B, vocab), the grown mask)."""
        pad = torch.cat([pad, torch.ones_like(pad[:, :1])], dim=1)
        positions = pad.sum(-1, keepdim=True) - 1
        hidden = self._layers(self._embed_tokens(token[:, None]).to(cache[0][0].dtype), positions, pad[:, None, :],
                              cache)
        return self.lm_head(hidden[:, -1]).float(), pad

    def generate(self, images, image_masks, tokens, token_mask, max_steps: int, stop: int | None) -> list[int]:
        """Greedy action tokens of one sample, ending after ``stop`` (the end-of-action token) or at max_steps."""
        cache, pad, logits = self.prefill(images, image_masks, tokens, token_mask)
        out: list[int] = []
        for i in range(max_steps):
            token = torch.argmax(logits, dim=-1)
            out.append(int(token[0]))
            if out[-1] == stop or i == max_steps - 1:
                break
            logits, pad = self.step(token, cache, pad)
        return out
