"""The built-in VLA: a small language-conditioned visuomotor policy that predicts action chunks.

Image(s) -> a convolutional encoder whose feature maps are modulated (FiLM) by the instruction, then
spatial-softmax keypoints and pooled features; instruction -> mean of learned word embeddings; joint
state -> MLP. A trunk fuses them and a head predicts ``horizon`` x ``action_dim`` normalised actions:
``regression`` (one pass, L1 loss) or ``flow`` (pi0-style flow matching, Euler steps from noise).
Optionally a *glimpse*: a small crop of the full-resolution frame centred where one colour-attention head
looks (the named object), read by its own small CNN: the object's yaw, a few pixels at the model's image
size, is a dozen at the camera's. Optionally a *turn to the nearest face*: the grasp's jaw angle read modulo
the object's symmetry, and the jaws turned to the face nearest their current angle (see ``ModelConfig.turn``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.image import check_crops, crop_sources

HEADS = ("regression", "flow")


@dataclass
class ModelConfig:
    """Architecture and the robot interface the weights were trained for (saved as config.json)."""

    image_keys: list[str]
    state_joints: list[str]
    action_joints: list[str]
    delta_joints: list[str] = field(default_factory=list)  # actions relative to the state at capture
    horizon: int = 10
    chunk_dt: float = 0.1
    image_size: int = 96
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 32])
    keypoints: int = 16
    text_dim: int = 64
    hidden: int = 256
    head: str = "regression"
    flow_steps: int = 10
    vocab_size: int = 64
    goal_weight: float = 1.0  # auxiliary loss: the episode's grasp pose (training only; grounds the instruction)
    attention_heads: int = 0  # instruction-chosen colour attention over the pixels (0: none)
    glimpse: int = 0  # side (pixels of the glimpse_source frame) of the crop around the attended object (0: none)
    glimpse_source: int = 224  # the frame the glimpse is cut from, resized with padding to this square size
    glimpse_head: int = 0  # the attention head whose location centres the glimpse
    glimpse_cameras: list[str] = field(default_factory=list)  # the image keys that get a glimpse (empty: every one)
    # views cut from a camera's full-resolution frame, read like another camera: {key: [camera, x0, y0, x1, y1]}
    # (fractions of its width and height; the key is one of image_keys)
    crops: dict[str, list] = field(default_factory=dict)
    # The jaws' angle about the vertical as a sum of coefficient x joint (rad; WidowX: waist - wrist_rotate), empty:
    # none. The grasp head then also predicts the grasp's angle modulo ``turn_period`` (as cos and sin of
    # 2 pi / turn_period times it: a cube at +44 degrees and one at -46 look alike and are grasped alike), and
    # ``turn_joint``'s chunk is a learned share per step of the turn from the current angle to the nearest such
    # grasp (plus a mix of the other turn joints' columns): the choice between two faces, which a regression
    # head averages into a diagonal, is made here, from the joint state, as the expert makes it.
    turn: dict[str, float] = field(default_factory=dict)
    turn_joint: str = ""
    turn_period: float = math.pi / 2

    FILE = "config.json"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {self.head!r}")
        if self.glimpse and not 0 <= self.glimpse_head < self.attention_heads:
            raise ValueError(f"glimpse_head {self.glimpse_head} is not one of the {self.attention_heads} "
                             "attention heads")
        if self.glimpse < 0 or self.glimpse > self.glimpse_source:
            raise ValueError(f"glimpse {self.glimpse} px must lie in [0, glimpse_source {self.glimpse_source}]")
        unknown = [k for k in self.glimpse_cameras if k not in self.image_keys]
        if unknown:
            raise ValueError(f"glimpse_cameras {unknown} are not among the model's cameras {self.image_keys}")
        check_crops(self.crops)
        if any(k not in self.image_keys for k in self.crops):
            raise ValueError(f"crops {list(self.crops)} must be among image_keys {self.image_keys}")
        if self.turn:
            missing = [j for j in self.turn if j not in self.state_joints or j not in self.action_joints]
            if missing:
                raise ValueError(f"turn joints {missing} must be among both state_joints and action_joints")
            if self.turn_joint not in self.delta_joints:
                raise ValueError(f"turn_joint {self.turn_joint!r} must be one of the delta joints {self.delta_joints}")
            if self.head != "regression" or not self.turn_period > 0.0:
                raise ValueError("a turn needs the regression head and a turn_period > 0")

    def turn_angle(self, joints, names: list[str]):
        """The jaws' angle (rad) from joint values (..., len(names)) (numpy or torch) -> (...)."""
        return sum(c * joints[..., names.index(j)] for j, c in self.turn.items())

    @property
    def cameras(self) -> list[str]:
        """The cameras the model's images come from (a crop's camera for a crop)."""
        return crop_sources(self.image_keys, self.crops)

    @property
    def glimpse_keys(self) -> list[str]:
        """The cameras a glimpse model crops, in image_keys order (none without a glimpse)."""
        if not self.glimpse:
            return []
        return [k for k in self.image_keys if not self.glimpse_cameras or k in self.glimpse_cameras]

    @property
    def action_size(self) -> int:
        return self.horizon * len(self.action_joints)

    def save(self, folder: str | Path) -> None:
        (Path(folder) / self.FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> ModelConfig:
        return cls(**json.loads((Path(folder) / cls.FILE).read_text()))


class FiLM(nn.Module):
    """Feature-wise scale and shift of a feature map from a conditioning vector."""

    def __init__(self, cond: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.proj(cond)[:, :, None, None].chunk(2, dim=1)
        return x * (1.0 + scale) + shift


def spatial_softmax(features: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) maps -> (B, K * 2) expected (x, y) in [-1, 1] of each map's softmax."""
    b, k, h, w = features.shape
    attention = torch.softmax(features.flatten(2), dim=-1).view(b, k, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=features.device)
    ys = torch.linspace(-1.0, 1.0, h, device=features.device)
    x = (attention.sum(dim=2) * xs).sum(dim=-1)
    y = (attention.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1).flatten(1)


class ImageEncoder(nn.Module):
    """Conv stack (with pixel-coordinate channels) modulated by the instruction; keypoints + pooled."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.convs = nn.ModuleList([
            nn.Conv2d(5, c[0], 5, stride=2, padding=2),
            nn.Conv2d(c[0], c[1], 3, stride=2, padding=1),
            nn.Conv2d(c[1], c[2], 3, padding=1),
            nn.Conv2d(c[2], c[3], 3, padding=1),
        ])
        self.norms = nn.ModuleList([nn.GroupNorm(min(8, ch), ch) for ch in c])
        self.films = nn.ModuleList([FiLM(cfg.text_dim, ch) for ch in c[1:]])
        self.keypoints = nn.Conv2d(c[3], cfg.keypoints, 1)
        self.out_dim = 2 * cfg.keypoints + c[3]
        self.heads = cfg.attention_heads
        if self.heads:
            self.colours = nn.Linear(cfg.text_dim, self.heads * 3)  # per head, a direction in (normalised) RGB
            self.sharpness = nn.Parameter(torch.tensor(math.log(10.0)))  # a sharp start: a cube is 0.2% of the pixels
            self.out_dim += self.heads * 5
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S) uint8 or float in [0, 1]; text (B, text_dim)."""
        x = self.normalise(images)
        b, _, h, w = x.shape
        ys = torch.linspace(-1.0, 1.0, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
        attended = [self.attend(x, text)] if self.heads else []
        x = torch.cat([x, xs, ys], dim=1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x))
            if i > 0:
                x = self.films[i - 1](x, text)
            x = F.gelu(x)
        return torch.cat([spatial_softmax(self.keypoints(x)), x.mean(dim=(2, 3)), *attended], dim=1)

    def attend(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Where the pixels' colour matches the instruction: per head, a softmax over the pixels of their
        normalised RGB projected on a direction the instruction chooses; its expected (x, y) in [-1, 1] and the
        mean colour there. Finding "the red cube" is then one dot product per pixel, not a search the later
        layers must learn; (B, 3, H, W) -> (B, heads * 5)."""
        b, _, h, w = x.shape
        pixels = x.flatten(2)  # (B, 3, HW)
        logits = torch.einsum("bkc,bcn->bkn", self.colours(text).view(b, self.heads, 3), pixels)
        attention = torch.softmax(logits * self.sharpness.exp(), dim=-1)  # (B, heads, HW)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device).repeat(h)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device).repeat_interleave(w)
        where = torch.stack([attention @ xs, attention @ ys], dim=-1)  # (B, heads, 2)
        what = torch.einsum("bkn,bcn->bkc", attention, pixels)  # (B, heads, 3)
        return torch.cat([where, what], dim=-1).flatten(1)

    def where(self, features: torch.Tensor, head: int) -> torch.Tensor:
        """Attention head ``head``'s expected (x, y) in [-1, 1] (pixel centres of the model's image) from
        ``forward``'s output (B, out_dim) -> (B, 2)."""
        start = self.out_dim - self.heads * 5 + 5 * head
        return features[:, start:start + 2]


class Glimpse(nn.Module):
    """A ``size`` x ``size`` crop of a ``source`` x ``source`` frame around a point, read by a small CNN (the
    crop is resampled bilinearly, so the point need not fall on a pixel) -> (B, out_dim)."""

    out_dim = 64

    def __init__(self, size: int, source: int, model_size: int):
        super().__init__()
        self.size, self.source, self.model_size = size, source, model_size
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.GroupNorm(8, 16), nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GroupNorm(8, 32), nn.GELU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.GroupNorm(8, 32), nn.GELU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, self.out_dim), nn.GELU())

    def grid(self, centre: torch.Tensor) -> torch.Tensor:
        """Sampling grid (B, size, size, 2) for ``grid_sample`` (align_corners=False) around ``centre`` (B, 2),
        given as the attention gives it: -1 and 1 are the centres of the model image's first and last pixels."""
        m = self.model_size
        centre = ((centre + 1.0) * (m - 1) + 1.0) / m - 1.0  # -> the image's edges at -1 and 1
        steps = (2.0 * torch.arange(self.size, device=centre.device) + 1.0) / self.source - self.size / self.source
        gy, gx = torch.meshgrid(steps, steps, indexing="ij")
        return torch.stack([gx, gy], dim=-1)[None] + centre[:, None, None, :]

    def crop(self, frames: torch.Tensor, centre: torch.Tensor, normalise=None) -> torch.Tensor:
        """The crop (B, 3, size, size) of ``frames`` (B, 3, source, source) around ``centre`` (B, 2), zero outside
        the frame; ``normalise`` is applied to a window of ``size + 4`` pixels around it first, not to the whole
        frame (a 224x224 float frame per sample and step is most of a training step's memory traffic)."""
        grid = self.grid(centre)
        w = min(self.size + 4, self.source)
        pixels = ((grid + 1.0) * self.source - 1.0) / 2.0  # (continuous pixel coordinates, align_corners=False)
        start = (pixels.mean(dim=(1, 2)).round() - w // 2).clamp(0, self.source - w).long()
        window = torch.stack([frames[i, :, y:y + w, x:x + w] for i, (x, y) in enumerate(start.tolist())])
        window = normalise(window) if normalise is not None else window.float()
        local = (2.0 * (pixels - start[:, None, None, :]) + 1.0) / w - 1.0
        return F.grid_sample(window, local, mode="bilinear", padding_mode="zeros", align_corners=False)

    def forward(self, frames: torch.Tensor, centre: torch.Tensor, normalise=None) -> torch.Tensor:
        """frames (B, 3, source, source); centre (B, 2); ``normalise``: as for ``crop``."""
        return self.net(self.crop(frames, centre, normalise))


def time_embedding(t: torch.Tensor, dim: int = 32) -> torch.Tensor:
    """Sinusoidal embedding of flow time t in [0, 1] (B,) -> (B, dim)."""
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), dim // 2, device=t.device))
    angles = t[:, None] * freqs[None] * 2.0 * math.pi
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TinyVLA(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.text_dim, padding_idx=0)
        self.text = nn.Sequential(nn.Linear(cfg.text_dim, cfg.text_dim), nn.GELU())
        self.vision = ImageEncoder(cfg)
        self.state = nn.Sequential(nn.Linear(len(cfg.state_joints), 64), nn.GELU())
        fused = self.vision.out_dim * len(cfg.image_keys) + 64 + cfg.text_dim
        self.trunk = nn.Sequential(nn.Linear(fused, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden),
                                   nn.GELU())
        # The grasp pose from the camera(s) and the instruction only: with the joint state as an input the
        # network learns to continue the current motion and never grounds the instruction in the image.
        seen = self.vision.out_dim * len(cfg.image_keys) + cfg.text_dim
        self.turns = 2 if cfg.turn else 0  # (cos, sin) of the grasp's angle times 2 pi / turn_period
        self.goal = nn.Sequential(nn.Linear(seen, cfg.hidden), nn.GELU(),
                                  nn.Linear(cfg.hidden, len(cfg.action_joints) + self.turns))
        if cfg.glimpse:  # added to the first layers of trunk and goal, zero at the start (a model without it)
            self.glimpse = Glimpse(cfg.glimpse, cfg.glimpse_source, cfg.image_size)
            looks = self.glimpse.out_dim * len(cfg.glimpse_keys)
            self.glimpse_trunk, self.glimpse_goal = nn.Linear(looks, cfg.hidden), nn.Linear(looks, cfg.hidden)
            for layer in (self.glimpse_trunk, self.glimpse_goal):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        features = cfg.hidden + len(cfg.action_joints) + self.turns
        if cfg.turn:  # per step, the share of the turn to the nearest face the chunk has made (zero at the start)
            self.turn_share = nn.Linear(features, cfg.horizon)
            self.turn_follow = nn.Linear(len([j for j in cfg.turn if j != cfg.turn_joint]), 1)
            for layer in (self.turn_share, self.turn_follow):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        if cfg.head == "regression":
            self.head = nn.Linear(features, cfg.action_size)
        else:
            self.head = nn.Sequential(nn.Linear(features + cfg.action_size + 32, cfg.hidden), nn.GELU(),
                                      nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                      nn.Linear(cfg.hidden, cfg.action_size))

    def encode(self, images: torch.Tensor, state: torch.Tensor, tokens: torch.Tensor,
               glimpses: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, cams, 3, S, S); state (B, state_dim) normalised; tokens (B, L); glimpses (B, G cams, 3, G,
        G) the frames of ``glimpse_keys`` at ``glimpse_source`` (a glimpse model only) -> (B, hidden + action_dim
        [+ 2]): the trunk's features and the grasp pose (normalised, absolute; with a turn, then the cos and sin of
        its angle times 2 pi / turn_period) predicted from image(s) and instruction."""
        mask = (tokens > 0).float()
        words = (self.embed(tokens) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        text = self.text(words)
        vision = [self.vision(images[:, k], text) for k in range(images.shape[1])]
        trunk_in = self.trunk[0](torch.cat([*vision, self.state(state), text], dim=1))
        goal_in = self.goal[0](torch.cat([*vision, text], dim=1))
        if self.cfg.glimpse:
            if glimpses is None:
                raise ValueError("this model takes glimpses: the frames at glimpse_source as well")
            where = [self.vision.where(vision[self.cfg.image_keys.index(key)], self.cfg.glimpse_head).detach()
                     for key in self.cfg.glimpse_keys]
            looks = torch.cat([self.glimpse(glimpses[:, j], w, self.vision.normalise) for j, w in enumerate(where)],
                              dim=1)
            trunk_in, goal_in = trunk_in + self.glimpse_trunk(looks), goal_in + self.glimpse_goal(looks)
        return torch.cat([self.trunk[1:](trunk_in), self.goal[1:](goal_in)], dim=1)

    def velocity(self, features: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Flow head: d(actions)/dt at flow time t (0 = noise, 1 = data); x (B, action_size)."""
        return self.head(torch.cat([features, x, time_embedding(t)], dim=1))

    def grasp_pose(self, features: torch.Tensor) -> torch.Tensor:
        """The predicted grasp pose (B, action_dim) (normalised) within ``encode``'s output."""
        start = self.cfg.hidden
        return features[:, start:start + len(self.cfg.action_joints)]

    def face_turn(self, features: torch.Tensor, now: torch.Tensor) -> torch.Tensor:
        """The turn (rad, (B,)) from the jaws' angle ``now`` (B,) to the nearest grasp the grasp head predicts: its
        angle modulo turn_period, the representative nearest ``now`` (as the expert chooses the face). (The angle's
        gradient is atan2's with |(cos, sin)| taken as at least 0.5: near zero, early in training, it explodes.)"""
        period = self.cfg.turn_period
        cos, sin = features[:, -2], features[:, -1]
        c, s = cos.detach(), sin.detach()
        slope = (c * sin - s * cos) / (c * c + s * s).clamp(min=0.25)
        angle = torch.atan2(s, c) + slope - slope.detach()
        return wrap(angle * period / (2.0 * math.pi) - now, period)

    def chunk(self, features: torch.Tensor, turn: torch.Tensor | None = None) -> torch.Tensor:
        """Regression head: normalised actions (B, horizon * action_dim). With a turn, turn_joint's column is made
        of the other turn joints' columns (a learned mix: the wrist follows the waist's turn) plus a learned share
        per step of ``turn`` (B,) rad, the turn to the nearest face: no other path to it, so the chunk turns to one
        face and cannot average two."""
        out = self.head(features)
        if not self.cfg.turn:
            return out
        if turn is None:
            raise ValueError("this model turns to the nearest face: it needs the jaws' current angle")
        joints = self.cfg.action_joints
        out = out.view(-1, self.cfg.horizon, len(joints))
        others = [joints.index(j) for j in self.cfg.turn if j != self.cfg.turn_joint]
        column = self.turn_follow(out[:, :, others]).squeeze(-1) + self.turn_share(features) * turn[:, None]
        index = joints.index(self.cfg.turn_joint)
        return torch.cat([out[:, :, :index], column[:, :, None], out[:, :, index + 1:]], dim=2).flatten(1)

    def loss(self, images, state, tokens, actions: torch.Tensor, goals: torch.Tensor | None = None,
             goal_weights: torch.Tensor | None = None, glimpses: torch.Tensor | None = None,
             turns: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss for normalised target actions (B, horizon, action_dim), plus ``goal_weight`` times the
        L1 error of the normalised grasp pose ``goals`` (B, action_dim) when given (a weighted mean over the
        batch with ``goal_weights`` (B,)): most frames of a demonstration can be continued from the joint state
        alone, the grasp pose needs the image and the instruction. A turn model takes ``turns`` (B, 2): the jaws'
        angle now and at the demonstration's grasp (rad); the grasp head learns the cos and sin of the grasp's angle
        (an L1 error weighted as the grasp pose's)."""
        if self.cfg.turn and turns is None:
            raise ValueError("this model turns to the nearest face: training needs turns (now, grasp)")
        features = self.encode(images, state, tokens, glimpses)
        target = actions.flatten(1)
        aux = 0.0
        if goals is not None:
            error = (self.grasp_pose(features) - goals).abs().mean(1)
            if self.cfg.turn:  # (with the grasp pose's loss only: the validation loss is the chunk's alone)
                angle = turns[:, 1] * (2.0 * math.pi / self.cfg.turn_period)
                error = error + (features[:, -2:] - torch.stack([angle.cos(), angle.sin()], dim=1)).abs().mean(1)
            weights = torch.ones_like(error) if goal_weights is None else goal_weights
            aux = self.cfg.goal_weight * (error * weights).sum() / weights.sum().clamp(min=1e-9)
        # A turn model's chunk is made with the turn the grasp head reads, as when it runs, and its error teaches
        # that head too. Made with the demonstration's turn instead, the chunk needed nothing from the image for it
        # and the glimpse never learnt the cube's yaw (angle error 0.34 rad after 5 epochs; chance 0.39).
        turn = self.face_turn(features, turns[:, 0]) if self.cfg.turn else None
        if self.cfg.head == "regression":
            return F.l1_loss(self.chunk(features, turn), target) + aux
        noise = torch.randn_like(target)
        t = torch.distributions.Beta(1.5, 1.0).sample((target.shape[0],)).to(target.device)  # pi0's time density
        x = (1.0 - t[:, None]) * noise + t[:, None] * target
        return F.mse_loss(self.velocity(features, x, t), target - noise) + aux

    @torch.no_grad()
    def predict(self, images, state, tokens, noise: torch.Tensor | None = None,
                glimpses: torch.Tensor | None = None, turn_now: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised actions (B, horizon, action_dim); a turn model needs ``turn_now`` (B,): the jaws' angle
        (rad, ``ModelConfig.turn_angle`` of the joint state)."""
        features = self.encode(images, state, tokens, glimpses)
        shape = (features.shape[0], self.cfg.horizon, len(self.cfg.action_joints))
        if self.cfg.head == "regression":
            turn = None
            if self.cfg.turn:
                if turn_now is None:
                    raise ValueError("this model turns to the nearest face: it needs turn_now, the jaws' angle")
                turn = self.face_turn(features, turn_now)
            return self.chunk(features, turn).view(shape)
        x = noise.flatten(1) if noise is not None else torch.randn(
            features.shape[0], self.cfg.action_size, device=features.device)
        steps = self.cfg.flow_steps
        for k in range(steps):
            t = torch.full((x.shape[0],), k / steps, device=x.device)
            x = x + self.velocity(features, x, t) / steps
        return x.view(shape)


def wrap(angle: torch.Tensor, period: float) -> torch.Tensor:
    """``angle`` moved by whole periods into [-period / 2, period / 2)."""
    return torch.remainder(angle + 0.5 * period, period) - 0.5 * period
