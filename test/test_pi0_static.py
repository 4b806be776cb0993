"""pi0 fast path (static prefix cache, captured graphs) against the eager transformers path, same noise."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.policies import create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.policies.pi0_static import Pi0Static, StaticShape  # noqa: E402
from vla_ros.policies.tiny_models import build_tiny_pi0  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

ROBOT = load_robot("widowx")
KEYS = ["image_0", "wrist"]
CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_pi0(tmp_path_factory.mktemp("pi0"), state_dim=7, action_dim=7, chunk_size=20)


def make(model_dir, node: dict | None = None, **options):
    """A pi0 backend built the way the policy node builds it (``node``: extra policy-node parameters)."""
    backend = {"model_path": str(model_dir), "device": "cpu", "seed": 0, "num_steps": 4, **options}
    params = {"backend": "pi0", "image_keys": KEYS, "image_topics": [f"/{k}" for k in KEYS], "chunk_dt": 0.1,
              "horizon": 10, **(node or {}), **{f"pi0.{k}": v for k, v in backend.items()}}
    return create_policy("pi0", policy_context(ROBOT, params))


def observation(seed=0, prefix_values=None, instruction="pick up the red cube"):
    rng = np.random.default_rng(seed)
    images = {k: rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for k in KEYS}
    state = np.array([0.1, -0.5, 0.4, 0.0, 1.2, 0.1, 0.03]) + 0.05 * rng.standard_normal(7)
    obs = Observation(123.4, state, images, instruction)
    if prefix_values is not None:
        obs.extras["prefix"] = {"values": prefix_values, "valid": np.ones(10, bool), "delay": 3,
                                "execution_horizon": 3}
    return obs


def rel(a, b) -> float:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).norm() / b.norm())


def test_static_path_equals_the_eager_path_for_the_same_noise(model_dir):
    eager, fast = make(model_dir, compile="off"), make(model_dir, compile="on")
    assert eager.fast is None and fast.fast is not None and fast.timing["fast_path"]
    for seed in (0, 1, 2):  # fresh inputs each time: the static buffers are re-read, not stale
        obs = observation(seed)
        noise = torch.randn(1, 20, 32, generator=torch.Generator().manual_seed(seed))
        ref = eager.sample_eager(eager.preprocess(obs), None, noise)
        out = fast.sample(fast.preprocess(obs), None, noise)
        assert rel(out, ref) < 1e-5
        np.testing.assert_allclose(fast.infer(obs).values, eager.infer(obs).values, rtol=1e-5, atol=1e-6)


def test_guided_rtc_static_path_equals_eager(model_dir):
    eager, fast = make(model_dir, compile="off", num_steps=6), make(model_dir, compile="on", num_steps=6)
    free = eager.infer(observation()).values
    obs = observation(prefix_values=free + 0.05)
    guided_eager, guided_fast = eager.infer(obs).values, fast.infer(obs).values
    np.testing.assert_allclose(guided_fast, guided_eager, rtol=1e-5, atol=1e-6)
    assert not np.allclose(guided_fast, fast.infer(observation()).values)  # the prefix changed the chunk


def test_prompt_longer_than_the_static_length_runs_the_eager_path(model_dir):
    fast, eager = make(model_dir, compile="on", max_prompt_tokens=4), make(model_dir, compile="off")
    obs = observation(instruction="pick up the red cube and put it in the blue block")
    np.testing.assert_allclose(fast.infer(obs).values, eager.infer(obs).values, rtol=1e-5, atol=1e-6)
    assert fast.fast_fallbacks == 1 and fast.diagnostics()["pi0_static_fallbacks"] == 1
    short = observation(instruction="lift")
    fast.infer(short)
    assert fast.fast_fallbacks == 1


def test_first_chunk_is_timed_and_reported(model_dir):
    policy = make(model_dir, compile="on")
    assert "first_chunk_ms" not in policy.timing and policy.timing["warm_chunk_ms"] > 0
    policy.infer(observation())
    assert policy.diagnostics()["pi0_first_chunk_ms"] > 0


def test_padding_tokens_are_never_attended_to(model_dir):
    """Garbage in the padded prompt slots must not change the actions."""
    policy = make(model_dir, compile="off")
    fast = Pi0Static(policy.model, StaticShape(len(KEYS), 12, 3))
    inputs = policy.preprocess(observation())
    noise = torch.randn(1, 20, 32, generator=torch.Generator().manual_seed(3))
    fast.load(inputs["pixel_values"], inputs["text_ids"], inputs["state"], noise)
    a = fast.sample().clone()
    n = fast.shape.cameras * fast.tokens_per_image + len(inputs["text_ids"])
    fast.ids[0, n:] = 7  # a real word id in the padded slots
    b = fast.sample().clone()
    assert rel(b, a) < 1e-6


@pytest.mark.skipif(not CUDA, reason="needs CUDA (CUDA graphs)")
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-4), ("bfloat16", 3e-2)])
def test_cuda_graphs_equal_the_eager_path(model_dir, dtype, tol):
    eager = make(model_dir, compile="off", device="cuda", dtype=dtype)
    fast = make(model_dir, compile="auto", device="cuda", dtype=dtype)
    assert fast.fast is not None and fast.fast.graphs and set(fast.fast._graph) == {"prefix", "plain", "guided"}
    for seed in (0, 1):
        obs = observation(seed)
        free = eager.infer(obs).values
        np.testing.assert_allclose(fast.infer(obs).values, free, rtol=tol, atol=tol)
        guided = observation(seed, prefix_values=free + 0.05)
        delta_fast = fast.infer(guided).values - guided.state
        delta_eager = eager.infer(guided).values - guided.state
        assert rel(delta_fast, delta_eager) < tol
