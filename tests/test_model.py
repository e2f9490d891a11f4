"""The conditional UNet: named taps, "layer 4", shapes, parameter counts, conditioning."""
from __future__ import annotations

import pytest
import torch

from bumpdiff_core.config import profile_config, resolve_tap
from bumpdiff_core.learn.model import ConditionalUNet, parameter_count

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
    from bumpdiff_core.learn.train import build_model

    config = profile_config("tiny")
    a, b = build_model(config), build_model(config)
    c = build_model(config.replace(seed=1))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert any(not torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())


# --- separable conditioning: x only through columns, y only through rows ---------------------------

def _separable_model(image_size=16, seed=0, **overrides):
    config = profile_config("quick", dict(conditioning="separable", **overrides))
    if image_size != config.image_size:  # 12 is no valid config size (multiple of 8), yet the UNet runs
        config = config.replace(image_size=16)
        object.__setattr__(config, "image_size", image_size)
    torch.manual_seed(seed)
    return ConditionalUNet(config).eval(), config


@pytest.mark.parametrize("image_size", [8, 12, 16])
def test_separable_forward_keeps_shapes_and_names(image_size):
    model, config = _separable_model(image_size)
    x = torch.randn(3, 1, image_size, image_size)
    taps: dict = {}
    with torch.no_grad():
        out = model(x, torch.tensor([5, 500, 999]), torch.rand(3, 2) * image_size, taps=taps)
    assert out.shape == x.shape and list(taps) == BLOCKS
    assert torch.isfinite(out).all()


def test_separable_spatial_modulation_has_rank_one_per_channel():
    model, config = _separable_model()
    torch.manual_seed(1)
    xy = torch.rand(6, 2) * 16
    with torch.no_grad():
        for size, block in ((16, model.down[0].blocks[0]), (8, model.down[1].blocks[0]), (4, model.mid.blocks[0])):
            axes = model.axis_features(xy, size, size)  # the three resolutions of the quick UNet
            for modulation in block.spatial_modulation(axes):
                assert modulation.shape == (6, block.film.out_features // 2, size, size)
                singular = torch.linalg.svdvals(modulation.double())  # (B, C, min(H, W))
                assert (singular[..., 0] > 1e-6).all()
                assert (singular[..., 1:] <= 1e-5 * singular[..., :1]).all()  # float32 round-off


def test_separable_global_vector_carries_the_timestep_only():
    model, _ = _separable_model()
    t = torch.tensor([3, 400, 900])
    xy = (torch.rand(3, 2) * 16).requires_grad_()
    cond = model.condition(t, xy)
    (grad,) = torch.autograd.grad(cond.square().sum(), xy, allow_unused=True)
    assert grad is None or torch.count_nonzero(grad) == 0
    # ... while the global model's vector does depend on (x, y)
    global_model = ConditionalUNet(profile_config("quick"))
    (grad,) = torch.autograd.grad(global_model.condition(t, xy).square().sum(), xy)
    assert (grad.abs().sum(dim=0) > 0).all()


def test_separable_x_reaches_only_columns_and_y_only_rows():
    model, _ = _separable_model()
    xy = torch.tensor([[3.0, 10.0], [12.5, 1.0]])
    with torch.no_grad():
        rows, columns = model.axis_features(xy, 16, 16)
        rows_x, columns_x = model.axis_features(xy + torch.tensor([2.0, 0.0]), 16, 16)
        rows_y, columns_y = model.axis_features(xy + torch.tensor([0.0, 2.0]), 16, 16)
    assert torch.equal(rows, rows_x) and not torch.equal(columns, columns_x)
    assert torch.equal(columns, columns_y) and not torch.equal(rows, rows_y)


def test_separable_output_depends_on_x_and_y():
    model, _ = _separable_model()
    x, t, xy = torch.randn(2, 1, 16, 16), torch.tensor([100, 700]), torch.tensor([[3.0, 10.0], [12.0, 2.0]])
    with torch.no_grad():
        out = model(x, t, xy)
        for delta in ([1.0, 0.0], [0.0, 1.0]):
            assert (model(x, t, xy + torch.tensor(delta)) - out).abs().max() > 1e-4


def test_global_conditioning_has_no_separable_layers():
    config = profile_config("quick")
    assert config.conditioning == "global"
    names = set(ConditionalUNet(config).state_dict())
    assert not any("row" in n or "column" in n for n in names)
    separable = set(ConditionalUNet(config.replace(conditioning="separable")).state_dict())
    assert separable > names - {n for n in names if n.startswith("cond_mlp.0.")}
