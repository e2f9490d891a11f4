"""The conditional UNet: named taps, "layer 4", shapes, parameter counts, conditioning."""
from __future__ import annotations

import pytest
import torch

from bumpdiff_core.config import profile_config, resolve_tap
from bumpdiff_core.model import ConditionalUNet, parameter_count

BLOCKS = ["stem", "down1", "down2", "down3", "mid", "up1", "up2", "up3"]


def _forward(config, batch=3, seed=0):
    torch.manual_seed(seed)
    model = ConditionalUNet(config).eval()
    n = config.image_size
    x = torch.randn(batch, 1, n, n)
    t = torch.randint(0, config.timesteps, (batch,))
    xy = torch.rand(batch, 2) * n
    taps: dict = {}
    with torch.no_grad():
        out = model(x, t, xy, taps=taps)
    return model, (x, t, xy), out, taps


def test_every_block_is_tapped_by_name_in_forward_order():
    config = profile_config("quick")
    model, _, out, taps = _forward(config)
    assert model.tap_names == BLOCKS
    assert list(taps) == BLOCKS
    for i, name in enumerate(BLOCKS, start=1):
        assert resolve_tap(f"layer{i}", len(config.channel_mults)) == name


def test_layer4_is_down3_the_last_encoder_block_before_the_bottleneck():
    config = profile_config("quick")
    assert config.tap_layer == "layer4"
    assert resolve_tap(config.tap_layer, 3) == "down3"
    _, _, _, taps = _forward(config)
    n, deepest = config.image_size, config.base_channels * config.channel_mults[-1]
    # down3 runs at the lowest resolution (N / 4) with the deepest width, as the bottleneck's input
    assert taps["down3"].shape == (3, deepest, n // 4, n // 4)
    assert taps["mid"].shape == taps["down3"].shape


def test_output_has_the_input_shape():
    for name in ("tiny", "quick"):
        config = profile_config(name)
        _, (x, _, _), out, _ = _forward(config)
        assert out.shape == x.shape


def test_taps_do_not_change_the_output():
    config = profile_config("tiny")
    model, (x, t, xy), out, _ = _forward(config)
    with torch.no_grad():
        assert torch.equal(model(x, t, xy), out)


def test_parameter_counts_of_quick_and_paper():
    quick = parameter_count(ConditionalUNet(profile_config("quick")))
    paper = parameter_count(ConditionalUNet(profile_config("paper")))
    assert 100_000 < quick < 400_000, quick    # "a small one": ~0.2 M
    assert 20_000_000 < paper < 27_000_000, paper  # the UNet_conditional width: ~23 M


def test_output_depends_on_the_requested_position_and_the_timestep():
    config = profile_config("tiny")
    model, (x, t, xy), out, _ = _forward(config)
    with torch.no_grad():
        moved = model(x, t, xy + torch.tensor([1.0, 0.0]))
        moved_y = model(x, t, xy + torch.tensor([0.0, 1.0]))
        later = model(x, (t + 100) % config.timesteps, xy)
    for other in (moved, moved_y, later):
        assert (other - out).abs().max() > 1e-4


@pytest.mark.parametrize("overrides", [dict(attention_levels=(2, 3)), dict(coord_channels=True),
                                       dict(blocks_per_level=2)])
def test_variants_keep_shapes_and_names(overrides):
    config = profile_config("quick", overrides)
    model, (x, _, _), out, taps = _forward(config, batch=2)
    assert out.shape == x.shape and list(taps) == BLOCKS


def test_initial_weights_depend_on_the_seed_only():
    from bumpdiff_core.train import build_model

    config = profile_config("tiny")
    a, b = build_model(config), build_model(config)
    c = build_model(config.replace(seed=1))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert any(not torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
