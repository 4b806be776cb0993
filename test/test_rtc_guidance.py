"""Guided RTC inpainting on a flow whose velocity field is known in closed form."""

import pytest

torch = pytest.importorskip("torch")

from vla_ros.core.merge import rtc_weights  # noqa: E402
from vla_ros.policies.rtc_guidance import guidance_weight, guided_sample  # noqa: E402

H, A = 10, 2
MU = torch.linspace(-1.0, 1.0, H * A).reshape(H, A)
SIGMA = 0.5


def gaussian_velocity(x, t):
    """Exact flow-matching velocity for x0 ~ N(0, I) -> x1 ~ N(MU, SIGMA^2 I), x_t = (1 - t) x0 + t x1."""
    var = (1 - t) ** 2 + t**2 * SIGMA**2
    centred = x - t * MU
    e_x1 = MU + t * SIGMA**2 / var * centred
    e_x0 = (1 - t) / var * centred
    return e_x1 - e_x0


def test_guidance_weight_schedule():
    assert guidance_weight(0.0, 5.0) == 5.0
    assert guidance_weight(1.0, 5.0) == 0.0
    assert guidance_weight(0.5, 5.0) == pytest.approx(min(5.0, 1.0 * 0.5 / 0.25))
    assert guidance_weight(0.9, 100.0) == pytest.approx(0.1 / 0.9 * (0.81 + 0.01) / 0.01)


def test_unguided_sampler_reproduces_the_data_distribution():
    torch.manual_seed(0)
    noise = torch.randn(4000, H, A, dtype=torch.float64)
    out = guided_sample(gaussian_velocity, noise, steps=50)
    assert torch.allclose(out.mean(0), MU.double(), atol=0.05)
    assert out.std(0).mean().item() == pytest.approx(SIGMA, abs=0.03)


def test_guidance_inpaints_the_prefix_and_leaves_the_tail_free():
    torch.manual_seed(1)
    noise = torch.randn(H, A, dtype=torch.float64)
    prefix = torch.full((H, A), 2.0, dtype=torch.float64)  # far from MU: guidance has to do the work
    weights = torch.tensor(rtc_weights(H, 3, 3, "linear"))
    free = guided_sample(gaussian_velocity, noise.clone(), 20)
    guided = guided_sample(gaussian_velocity, noise.clone(), 20, prefix, weights, beta=5.0)
    head_free = (free[:3] - prefix[:3]).abs().mean().item()
    head_guided = (guided[:3] - prefix[:3]).abs().mean().item()
    assert head_guided < 0.2 * head_free  # the first d = 3 steps follow the previous chunk
    # zero-weight steps are only coupled through the (here diagonal) velocity field: unchanged
    assert torch.allclose(guided[7:], free[7:], atol=1e-9)
    # weights decay: the blend region sits between the prefix and the free sample
    mid = guided[4:7]
    assert torch.all((mid - free[4:7]).abs() > 1e-3)


def test_model_times_lerobot_and_openpi():
    """LeRobot casts 1 + k * dt to float32; openpi sums dt in float32 (0.70000005 at k = 3, where LeRobot has 0.7)."""
    from vla_ros.policies.rtc_guidance import model_times

    lerobot, openpi = model_times(10), model_times(10, openpi=True)
    assert lerobot[0] == openpi[0] == 1.0 and lerobot[3] == pytest.approx(0.7, abs=1e-7)
    assert lerobot[3] != openpi[3] and abs(lerobot[3] - openpi[3]) < 1e-6
    assert len(openpi) == 10 and openpi[-1] == pytest.approx(0.1, abs=1e-6)
