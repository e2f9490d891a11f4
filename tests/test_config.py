"""The run config: validation names the field, the hash is canonical, profiles and schedules."""
from __future__ import annotations

import numpy as np
import pytest

from bumpdiff_core import config as config_module
from bumpdiff_core.config import (PROFILES, SEED_STRIDE, ConfigError, RunConfig, allowed_range, checkpoint_steps,
                                  config_from_overrides, grid_shape, parse_override, profile_config, resolve_tap,
                                  tap_layer_names)


def test_the_three_required_profiles_exist_and_validate():
    for name in ("tiny", "quick", "paper"):
        assert name in PROFILES
        assert isinstance(profile_config(name), RunConfig)
    assert profile_config("paper").image_size == 32  # the paper's N


def test_run_id_is_a_hash_of_the_semantic_config():
    a = profile_config("tiny")
    assert a.run_id == profile_config("tiny").run_id
    assert a.run_id == RunConfig.from_dict(a.to_dict()).run_id
    assert a.replace(sigma=1).run_id == a.replace(sigma=1.0).run_id  # 1 and 1.0 are one value
    assert a.replace(seed=1).run_id != a.run_id
    assert a.replace(increment_x=0.5).run_id != a.run_id


def test_round_trip_through_dict():
    c = profile_config("paper")
    assert RunConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("field, value, words", [
    ("sigma", 0.0, "> 0"),
    ("sigma", -1.0, "> 0"),
    ("increment_x", 0.0, "> 0"),
    ("increment_y", 16.0, "< image_size (16)"),
    ("image_size", 10, "multiple of 4"),
    ("image_size", 264, "<= 256"),
    ("beta_end", 1e-5, "> beta_start (0.0001)"),
    ("eval_sampler_steps", 1001, "<= timesteps (1000)"),
    ("umap_neighbors", 100, "<= min(200, eval_labels - 1) (99)"),
    ("channel_mults", (1, 2, 2, 2, 2, 2), "1 to 5 integers, each >= 1 and <= 16"),
    ("attention_levels", (4,), "each >= 1 and <= len(channel_mults) (3)"),
    ("base_channels", 6, "a multiple of 4"),
    ("design", "nope", "'grid', 'random', 'lines', 'holdout' or 'latin'"),
    ("design_count", 0, ">= 1"),
    ("design_seed", -1, ">= 0"),
    ("design_lines", 0, ">= 1"),
    ("holdout_size", 0, ">= 1"),
    ("conditioning", "both", "'global' or 'separable'"),
    ("steps", 0, ">= 1"),
    ("tap_layer", "layer9", "layer1..layer8"),
    ("eval_sampler", "euler", "'ddim' or 'ddpm'"),
])
def test_invalid_values_name_the_field_and_the_allowed_range(field, value, words):
    with pytest.raises(ConfigError) as err:
        RunConfig(**{field: value})
    assert err.value.field_name == field
    assert str(err.value).startswith(f"{field}: ")
    assert words in str(err.value)


def test_unknown_field_and_unknown_profile():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"sigmaa": 1.0})
    assert err.value.field_name == "sigmaa"
    with pytest.raises(ConfigError) as err:
        profile_config("huge")
    assert err.value.field_name == "profile" and "tiny" in str(err.value)


def test_parse_override_types_values_by_field():
    assert parse_override("sigma=1.5") == ("sigma", 1.5)
    assert parse_override("steps=10") == ("steps", 10)
    assert parse_override("channel_mults=1,2,4") == ("channel_mults", (1, 2, 4))
    assert parse_override("coord_channels=true") == ("coord_channels", True)
    for text in ("sigma=abc", "steps=1.5", "sigma=nan", "sigma=inf", "nosuchfield=1"):
        with pytest.raises(ConfigError) as err:
            parse_override(text)
        assert err.value.field_name == text.split("=")[0]


def test_checkpoint_schedule_is_dense_early_then_log_spaced():
    c = profile_config("quick", dict(steps=20000, checkpoint_dense_every=100, checkpoint_dense_until=1000,
                                     checkpoint_log_count=8))
    steps = checkpoint_steps(c)
    assert steps[0] == 0 and steps[-1] == c.steps
    assert steps == sorted(set(steps))
    dense = [s for s in steps if s <= 1000]
    assert dense == list(range(0, 1001, 100))
    late = np.array([s for s in steps if s >= 1000], dtype=float)
    assert len(late) == 9  # 1000 and 8 log-spaced points after it
    ratios = late[1:] / late[:-1]
    np.testing.assert_allclose(ratios, (20000 / 1000) ** (1 / 8), rtol=0.01)  # geometric spacing


def test_checkpoint_schedule_always_holds_zero_and_the_last_step():
    for name in PROFILES:
        steps = checkpoint_steps(profile_config(name))
        assert steps[0] == 0 and steps[-1] == profile_config(name).steps
    odd = profile_config("tiny", dict(steps=55, checkpoint_dense_every=20, checkpoint_dense_until=60))
    assert checkpoint_steps(odd) == [0, 20, 40, 55]


def test_layer_names_and_layer4():
    assert tap_layer_names(3) == ["stem", "down1", "down2", "down3", "mid", "up1", "up2", "up3"]
    for i, name in enumerate(tap_layer_names(3), start=1):
        assert resolve_tap(f"layer{i}", 3) == name
        assert resolve_tap(name, 3) == name
    assert resolve_tap("layer4", 3) == "down3"
    with pytest.raises(ConfigError):
        resolve_tap("layer0", 3)


def test_command_line_overrides_report_a_wrong_type_with_the_allowed_range():
    assert config_from_overrides("tiny", ["steps=5", "sigma=0.5"]) == profile_config("tiny", dict(steps=5, sigma=0.5))
    # the range follows the other overrides: sigma <= N / 2 with N = 16
    with pytest.raises(ConfigError) as err:
        config_from_overrides("tiny", ["image_size=16", "sigma=wide"])
    assert str(err.value) == "sigma: must be a finite number, > 0 and <= 8.0; got 'wide'"
    assert allowed_range("steps", profile_config("tiny")) == ">= 1 and <= 10000000"
    # every field with a range states it, text fields too; a field without one has none
    assert allowed_range("tap_layer", profile_config("tiny")) == \
        "one of layer1..layer6 or stem, down1, down2, mid, up1, up2"
    assert allowed_range("coord_channels", profile_config("tiny")) is None


# ---------------------------------------------------------------------------------------------
# each field declared once: type from the default, range and help in its metadata
# ---------------------------------------------------------------------------------------------

def test_every_field_is_declared_once_with_its_type_range_and_help():
    import dataclasses

    assert not hasattr(config_module, "_FIELD_TYPES")  # no second table of types
    for f in dataclasses.fields(RunConfig):
        assert f.type == type(f.default).__name__, f.name  # the annotation agrees with the default
        assert f.metadata["help"], f.name
        assert isinstance(f.metadata["hash_if_default"], bool)


@pytest.mark.parametrize("name", [f.name for f in __import__("dataclasses").fields(RunConfig)])
def test_the_stated_range_is_the_checked_range(name):
    """For every field: a value the error rejects is reported with exactly `allowed_range`."""
    base = profile_config("quick")
    allowed = allowed_range(name, base)
    bad = {bool: None, int: -10**9, float: -1e9, str: "no-such-value", tuple: (99,) * 9}[type(getattr(base, name))]
    if allowed is None or bad is None:
        return
    with pytest.raises(ConfigError) as err:
        base.replace(**{name: bad})
    assert err.value.field_name == name
    assert str(err.value) == f"{name}: must be {allowed}; got {list(bad) if isinstance(bad, tuple) else bad!r}"


def test_ranges_follow_the_other_fields():
    base = profile_config("quick")
    assert allowed_range("sigma", base.replace(image_size=32)) == "> 0 and <= 16.0"
    assert allowed_range("increment_y", base.replace(image_size=32)) == "> 0 and < image_size (32)"
    assert allowed_range("beta_end", base.replace(beta_start=0.001)) == "> beta_start (0.001) and <= 0.999"
    assert allowed_range("umap_neighbors", base.replace(eval_labels=500)) == ">= 2 and <= min(200, eval_labels - 1) (200)"
    assert allowed_range("eval_sampler_steps", base.replace(timesteps=50, eval_sampler_steps=10)) == \
        ">= 1 and <= timesteps (50)"
    assert "(8)" in allowed_range("image_size", base.replace(image_size=32, channel_mults=(1, 1, 1, 1)))


def test_image_size_is_a_multiple_of_4_and_of_the_unet_halvings():
    for n in (8, 12, 20, 28, 256):
        assert profile_config("quick", dict(image_size=n)).image_size == n
    for n in (4, 10, 14, 260):
        with pytest.raises(ConfigError, match="image_size"):
            profile_config("quick", dict(image_size=n))
    # four levels halve three times: 12 is not a multiple of 8
    with pytest.raises(ConfigError) as err:
        profile_config("quick", dict(image_size=12, channel_mults=(1, 2, 2, 2)))
    assert "a multiple of 2**(len(channel_mults) - 1) (8)" in str(err.value)
    assert profile_config("quick", dict(image_size=24, channel_mults=(1, 2, 2, 2))).image_size == 24


@pytest.mark.parametrize("image_size", [12, 20])
def test_the_unet_runs_at_image_sizes_that_are_multiples_of_4(image_size):
    """The relaxed range is real: the default three-level UNet (12 -> 6 -> 3, 20 -> 10 -> 5) maps an
    N x N batch to N x N noise predictions, with every tapped block present."""
    import torch

    from bumpdiff_core.learn.train import build_model

    config = profile_config("quick", dict(image_size=image_size))
    model = build_model(config)
    x = torch.randn(3, 1, image_size, image_size)
    taps = {}
    with torch.no_grad():
        out = model(x, torch.tensor([0, 500, 999]), torch.rand(3, 2) * image_size, taps=taps)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert sorted(taps) == sorted(tap_layer_names(3))
    assert taps["down3"].shape[-1] == image_size // 4


# ---------------------------------------------------------------------------------------------
# fields added after schema 1: the training-set design and the conditioning variant
# ---------------------------------------------------------------------------------------------

NEW_FIELDS = dict(design="random", design_count=10, design_seed=3, design_lines=3, holdout_size=2,
                  conditioning="separable")


def test_fields_added_later_leave_every_existing_run_id_alone():
    for name in PROFILES:
        c = profile_config(name)
        for field in NEW_FIELDS:
            assert f'"{field}"' not in c.canonical_json()  # at their defaults they are not hashed
            assert field in c.to_dict()  # but config.json still records them
        # a config.json written before these fields existed loads to the same run
        old = {k: v for k, v in c.to_dict().items() if k not in NEW_FIELDS}
        assert RunConfig.from_dict(old) == c and RunConfig.from_dict(old).run_id == c.run_id
    tiny = profile_config("tiny")
    ids = {tiny.run_id}
    for field, value in NEW_FIELDS.items():
        changed = tiny.replace(**{field: value})
        assert f'"{field}"' in changed.canonical_json()
        assert RunConfig.from_dict(changed.to_dict()) == changed
        ids.add(changed.run_id)
    assert len(ids) == 1 + len(NEW_FIELDS)  # a value other than the default is a different run


@pytest.mark.parametrize("size, dx, dy", [(8, 1.0, 1.0), (16, 0.1, 1.0), (32, 0.1, 0.1), (16, 0.65, 0.3),
                                          (8, 2.0, 3.0), (8, 7.9, 0.5), (32, 0.25, 0.75), (12, 5.0, 1.0)])
def test_grid_shape_counts_the_centres_of_data_centre_grid(size, dx, dy):
    from bumpdiff_core.learn.data import centre_grid

    centres = centre_grid(size, dx, dy)
    nx, ny = grid_shape(profile_config("quick", dict(image_size=size, increment_x=dx, increment_y=dy)))
    assert (len(np.unique(centres[:, 0])), len(np.unique(centres[:, 1]))) == (nx, ny)
    assert len(centres) == nx * ny


def test_design_fields_are_bounded_by_the_grid_when_their_design_is_chosen():
    tiny = profile_config("tiny")  # 8 x 8, increment 1: 64 positions, 8 per axis
    assert tiny.replace(design="random", design_count=64).design_count == 64
    assert tiny.replace(design="lines", design_lines=8).design_lines == 8
    assert tiny.replace(design="holdout", holdout_size=7).holdout_size == 7
    for changes, says in [(dict(design="random", design_count=65), "<= grid positions (64) when design is 'random'"),
                          (dict(design="lines", design_lines=9), "<= grid positions per axis (8) when design is 'lines'"),
                          (dict(design="holdout", holdout_size=8), "< grid positions per axis (8) when design is 'holdout'"),
                          (dict(design="holdout", increment_x=2.0, holdout_size=4), "< grid positions per axis (4)")]:
        with pytest.raises(ConfigError) as err:
            tiny.replace(**changes)
        assert err.value.field_name in changes and says in str(err.value)
    # the defaults (64 centres, a 6-square) exceed a coarse grid, which stays valid under another design
    coarse = tiny.replace(increment_x=2.0, increment_y=2.0)  # 4 x 4 = 16 positions
    assert coarse.design == "grid" and coarse.run_id != tiny.run_id


def test_new_fields_parse_from_the_command_line():
    c = config_from_overrides("tiny", ["design=holdout", "holdout_size=3", "conditioning=separable"])
    assert (c.design, c.holdout_size, c.conditioning) == ("holdout", 3, "separable")
    with pytest.raises(ConfigError) as err:
        config_from_overrides("tiny", ["design_count=many"])
    assert str(err.value) == ("design_count: must be an integer, >= 1 and <= grid positions (64) when design is "
                              "'random'; got 'many'")


def test_one_seed_stride_numbers_training_and_evaluation_streams():
    from bumpdiff_core.measure import evaluate
    from bumpdiff_core.learn import train

    c = profile_config("tiny")
    assert list(evaluate.sample_seeds(c, 3)) == [c.eval_seed * SEED_STRIDE + i for i in range(3)]
    assert not hasattr(train, "_STEP_SEED_STRIDE") and not hasattr(evaluate, "_SAMPLE_SEED_STRIDE")
