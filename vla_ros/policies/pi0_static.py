"""Static-shape pi0 sampling: a fixed prefix KV cache and the denoising loop as captured CUDA graphs.

The same weights and the same math as transformers' ``PI0ForConditionalGeneration``: the model's own
modules embed the images (SigLIP + projector), the prompt tokens and the flow time; the Gemma layers
run here over the same weights in fewer kernels (q/k/v, and the action expert's gate/up, as one GEMM;
fused RMSNorm; rope by a roll; residual adds inside ``addmm``). The prefix (SigLIP per camera +
PaliGemma prefill, prompt zero-padded to a fixed length and masked) writes its keys/values into
preallocated buffers; each denoising step runs the action expert against them with pi0's block mask
(the state token sees the prefix and itself, action tokens see everything). Nothing is cropped or
reallocated per step, so on CUDA the prefix and all steps (plain, or with guided-RTC vector-Jacobian
products) replay as graphs captured once at load. On the CPU the same code runs uncaptured; tests
compare both with the eager model for the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .rtc_guidance import model_times
from .static_flow import StaticFlow


@dataclass(frozen=True)
class StaticShape:
    """What a captured graph is specialised for."""

    cameras: int
    prompt_tokens: int  # text tokens after the image tokens (prompts are padded to this)
    num_steps: int


class FusedLayer:
    """One Gemma decoder layer's weights laid out for few kernels: q/k/v in one GEMM (and gate/up where
    ``fuse_mlp``), RMSNorm as one fused op with (1 + w) in float32, residual adds inside ``addmm``."""

    def __init__(self, layer, fuse_mlp: bool):
        attn, mlp = layer.self_attn, layer.mlp
        linears = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj)
        if any(lin.bias is not None for lin in linears):
            raise ValueError("biased projections: no fused layout")
        with torch.no_grad():
            self.qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
            self.gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]) if fuse_mlp else None
            self.norm_in = 1.0 + layer.input_layernorm.weight.float()
            self.norm_post = 1.0 + layer.post_attention_layernorm.weight.float()
        self.gate, self.up = mlp.gate_proj.weight, mlp.up_proj.weight
        self.o, self.down = attn.o_proj.weight, mlp.down_proj.weight
        self.eps_in, self.eps_post = layer.input_layernorm.eps, layer.post_attention_layernorm.eps
        self.act = mlp.act_fn
        self.scale = attn.scaling

    def mlp(self, h: torch.Tensor) -> torch.Tensor:
        """h + MLP(norm(h)) for (T, D) tokens."""
        x = rms_norm(h, self.norm_post, self.eps_post)
        if self.gate_up is not None:
            gate, up = F.linear(x, self.gate_up).chunk(2, dim=-1)
        else:
            gate, up = F.linear(x, self.gate), F.linear(x, self.up)
        return torch.addmm(h, self.act(gate) * up, self.down.t())


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Gemma's RMSNorm: computed in float32, weight (1 + w), cast back."""
    return F.rms_norm(x.float(), (x.shape[-1],), weight, eps).to(x.dtype)


def rope_tables(rotary, like: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, 1, D) cos and sign-folded sin, so that rope(x) = x * cos + roll(x, D/2) * sin."""
    cos, sin = rotary(like, positions)
    half = sin.shape[-1] // 2
    sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)
    return cos[0, :, None], sin[0, :, None]


def project(layer: FusedLayer, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, heads: int, kv_heads: int,
            head_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotated queries folded for grouped attention (1, KVH, G * T, D), keys and values (1, KVH, T, D)."""
    t = h.shape[0]
    y = F.linear(rms_norm(h, layer.norm_in, layer.eps_in), layer.qkv).view(t, heads + 2 * kv_heads, head_dim)
    qk = y[:, : heads + kv_heads]
    qk = torch.addcmul(qk * cos, torch.roll(qk, head_dim // 2, dims=-1), sin)
    group = heads // kv_heads
    q = qk[:, :heads].reshape(t, kv_heads, group, head_dim).permute(1, 2, 0, 3).reshape(1, kv_heads, group * t,
                                                                                          head_dim)
    k = qk[:, heads:].permute(1, 0, 2)[None]
    v = y[:, heads + kv_heads:].permute(1, 0, 2)[None]
    return q, k, v


def attend(layer: FusedLayer, h: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
           mask: torch.Tensor, heads: int) -> torch.Tensor:
    """h + o_proj(attention): the query heads sharing a key/value head are folded into the query axis,
    so nothing is repeated and SDPA runs one fused kernel; ``mask`` is a bool or additive bias."""
    kv_heads, head_dim = k.shape[1], k.shape[-1]
    group, t = heads // kv_heads, h.shape[0]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=layer.scale)
    out = out.reshape(kv_heads, group, t, head_dim).permute(2, 0, 1, 3).reshape(t, heads * head_dim)
    return torch.addmm(h, out, layer.o.t())


class Pi0Static(StaticFlow):
    """pi0 inference over static buffers; ``sample`` is the graph replay on CUDA."""

    def __init__(self, model, shape: StaticShape, beta: float = 5.0, graphs: bool | None = None,
                 openpi_times: bool = False):
        self.model, self.shape, self.beta = model, shape, float(beta)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        cfg = model.config
        self.vlm = model.model.vlm
        self.lm = self.vlm.language_model
        self.dit = model.model.dit
        vision = cfg.vlm_config.vision_config
        self.image_size = int(vision.image_size)
        self.tokens_per_image = (self.image_size // int(vision.patch_size)) ** 2
        self.image_token_id = int(cfg.vlm_config.image_token_id)
        self.length = shape.cameras * self.tokens_per_image + shape.prompt_tokens
        self.chunk, self.action_dim = int(cfg.chunk_size), int(cfg.max_action_dim)
        text, dit = cfg.vlm_config.text_config, cfg.dit_config
        self.kv_heads, self.head_dim = int(text.num_key_value_heads), int(text.head_dim)
        self.lm_heads, self.dit_heads = int(text.num_attention_heads), int(dit.num_attention_heads)
        if (int(dit.num_key_value_heads), int(dit.head_dim)) != (self.kv_heads, self.head_dim):
            raise ValueError("the action expert's key/value heads differ from the VLM's: no shared cache layout")
        # the action expert runs every step: its gate/up weights are concatenated (a copy, ~2% of pi0's size)
        self.lm_layers = [FusedLayer(layer, fuse_mlp=False) for layer in self.lm.layers]
        self.dit_layers = [FusedLayer(layer, fuse_mlp=True) for layer in self.dit.layers]
        z = dict(device=self.device)
        # static inputs (filled by load()) and the prefix cache (filled by the prefix pass)
        self.pixels = torch.zeros(1, shape.cameras, 3, self.image_size, self.image_size, dtype=self.dtype, **z)
        self.ids = torch.zeros(1, self.length, dtype=torch.long, **z)
        self.ids[:, : shape.cameras * self.tokens_per_image] = self.image_token_id
        self.valid = torch.zeros(1, self.length, dtype=torch.long, **z)
        self.state = torch.zeros(1, int(cfg.max_state_dim), dtype=self.dtype, **z)
        self.noise = torch.zeros(1, self.chunk, self.action_dim, dtype=self.dtype, **z)
        self.target = torch.zeros_like(self.noise)
        self.weights = torch.zeros(self.chunk, self.action_dim, dtype=self.dtype, **z)  # per step and column
        self.keys = [torch.zeros(1, self.kv_heads, self.length, self.head_dim, dtype=self.dtype, **z)
                     for _ in self.lm.layers]
        self.values = [torch.zeros_like(k) for k in self.keys]
        n_suffix = self.chunk + 1
        # which keys each suffix query sees: every valid prefix token; the state token (row 0) only itself
        self.suffix_mask = torch.ones(n_suffix, self.length + n_suffix, dtype=torch.bool, **z)
        self.suffix_mask[0, self.length + 1:] = False
        # the additive bias SDPA reads, rows repeated per query head sharing a key/value head; its row
        # stride is padded to 16 elements so the fused kernel takes it without a copy
        rows, cols = (self.dit_heads // self.kv_heads) * n_suffix, self.length + n_suffix
        self.suffix_bias = torch.zeros(rows, -(-cols // 16) * 16, dtype=self.dtype, **z)[:, :cols]
        self.suffix_positions = torch.zeros(1, n_suffix, dtype=torch.long, **z)
        self.taus = [torch.full((1,), tau, dtype=torch.float32, **z)
                     for tau in model_times(shape.num_steps, openpi_times)]
        self.result = torch.zeros_like(self.noise)
        self.init_graphs(graphs)

    # -- inputs ------------------------------------------------------------------------------
    def fits(self, text_ids: list[int]) -> bool:
        return len(text_ids) <= self.shape.prompt_tokens

    def load(self, pixels: torch.Tensor, text_ids: list[int], state: torch.Tensor, noise: torch.Tensor,
             target: torch.Tensor | None = None, weights: torch.Tensor | None = None) -> None:
        """Copy one observation into the static buffers (pixels (1, cams, 3, S, S) in [-1, 1])."""
        n_img = self.shape.cameras * self.tokens_per_image
        n = len(text_ids)
        if not self.fits(text_ids):
            raise ValueError(f"prompt of {n} tokens exceeds the captured {self.shape.prompt_tokens}")
        ids = torch.zeros(self.shape.prompt_tokens, dtype=torch.long)
        ids[:n] = torch.tensor(text_ids, dtype=torch.long)
        valid = torch.zeros(self.length, dtype=torch.long)
        valid[: n_img + n] = 1
        mask = torch.ones_like(self.suffix_mask[:, : self.length], device="cpu")
        mask[:, n_img + n:] = False
        self.pixels.copy_(pixels)
        self.ids[0, n_img:].copy_(ids)
        self.valid[0].copy_(valid)
        self.suffix_mask[:, : self.length].copy_(mask)
        self.suffix_positions.copy_(torch.arange(self.chunk + 1)[None] + n_img + n)
        self.state.copy_(state)
        self.noise.copy_(noise)
        if target is not None:
            self.target.copy_(target)
            self.weights.copy_(weights.reshape(self.chunk, -1).expand(self.chunk, self.action_dim))

    # -- the model, over static tensors --------------------------------------------------------
    def embed(self) -> torch.Tensor:
        """Image features (SigLIP + projector, camera by camera) then the prompt's token embeddings:
        what ``embed_prefix`` computes for image tokens first and every camera present, without its
        data-dependent indexing (which a graph capture cannot hold)."""
        n_img = self.shape.cameras * self.tokens_per_image
        feats = self.vlm.get_image_features(self.pixels.flatten(0, 1)).pooler_output
        text = self.vlm.get_input_embeddings()(self.ids[:, n_img:])
        return torch.cat([feats.reshape(1, n_img, -1).to(text.dtype), text], dim=1)

    def prefix(self) -> None:
        """SigLIP + PaliGemma prefill; every layer's keys/values land in the static cache."""
        h = self.embed()[0]
        cos, sin = rope_tables(self.lm.rotary_emb, h, self.valid.cumsum(-1) - 1)
        key_mask = self.valid.bool()  # (1, T): padded prompt tokens are never attended to
        last = len(self.lm_layers) - 1
        for i, layer in enumerate(self.lm_layers):
            q, k, v = project(layer, h, cos, sin, self.lm_heads, self.kv_heads, self.head_dim)
            self.keys[i].copy_(k)
            self.values[i].copy_(v)
            if i == last:
                break  # the last layer's output feeds nothing: only its keys/values are used
            h = layer.mlp(attend(layer, h, q, k, v, key_mask, self.lm_heads))

    def velocity(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """d(actions)/dt at flow time t = step / num_steps (t = 0 noise, 1 data): minus pi0's u."""
        h = self.model.embed_action_time(self.state, x, self.taus[step])[0]
        cos, sin = rope_tables(self.dit.rotary_emb, h, self.suffix_positions)
        for i, layer in enumerate(self.dit_layers):
            q, k, v = project(layer, h, cos, sin, self.dit_heads, self.kv_heads, self.head_dim)
            k = torch.cat([self.keys[i], k], dim=2)
            v = torch.cat([self.values[i], v], dim=2)
            h = layer.mlp(attend(layer, h, q, k, v, self.suffix_bias, self.dit_heads))
        h = self.dit.norm(h[-self.chunk:])
        return -self.model.action_out_proj(h)[None]

    def _before_denoise(self) -> None:
        """The suffix attention bias (0 where a query sees a key, -inf elsewhere) from the current mask."""
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        bias = torch.where(self.suffix_mask, zero, float("-inf"))
        self.suffix_bias.copy_(bias.repeat(self.dit_heads // self.kv_heads, 1))
