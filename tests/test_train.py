"""Training: deterministic on CPU, resumable mid-way to the same weights, scheduled checkpoints."""
from __future__ import annotations

import pytest
import torch

import bumpdiff_core.learn.train as train_module
from bumpdiff_core.config import checkpoint_steps, profile_config
from bumpdiff_core.runs.store import Run
from bumpdiff_core.learn.train import Trainer, learning_rate, load_weights

TINY = profile_config("tiny")  # 60 steps, checkpoints at 0, 20, 40, 60


def _train(config, root) -> Run:
    run = Run.create_or_open(config, root)
    Trainer(run, device="cpu", threads=1, progress=False).train()
    return run


def _weights(run, step):
    return run.load_tensors(run.checkpoint_path(step))[0]


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class _StopAt:
    """Replaces the loss function; raises on call number `stop` (like a kill between saves)."""

    def __init__(self, stop):
        self.calls, self.stop = 0, stop
        self.real = train_module.epsilon_loss

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt("stopped mid-way")
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module", params=[0.0, 0.9], ids=["no-ema", "ema"])
def uninterrupted(request, tmp_path_factory):
    config = TINY.replace(ema_decay=request.param)
    return config, _train(config, tmp_path_factory.mktemp("uninterrupted"))


def test_a_run_stopped_mid_way_and_resumed_ends_with_the_same_weights(uninterrupted, tmp_path, monkeypatch):
    config, reference = uninterrupted
    run = Run.create_or_open(config, tmp_path)
    stop = _StopAt(51)  # inside step 50: 10 steps after the last saved state (step 40)
    monkeypatch.setattr(train_module, "epsilon_loss", stop)
    with pytest.raises(KeyboardInterrupt):
        Trainer(run, device="cpu", threads=1, progress=False).train()
    assert run.checkpoint_steps_on_disk() == [0, 20, 40]
    monkeypatch.setattr(train_module, "epsilon_loss", stop.real)

    resumed = Trainer(run, device="cpu", threads=1, progress=False)
    resumed.train()
    assert stop.calls == 51  # the resumed trainer did not use the stopping loss
    assert run.checkpoint_steps_on_disk() == checkpoint_steps(config)
    for step in checkpoint_steps(config):
        _assert_same(_weights(run, step), _weights(reference, step))
    # the resumable state (raw weights, optimizer moments, EMA, loss log) matches too
    final_state = run.load_tensors(run.train_state_path(config.steps))[0]
    _assert_same(final_state, reference.load_tensors(reference.train_state_path(config.steps))[0])
    assert len(final_state["losses"]) == config.steps


def test_a_run_stopped_right_after_a_checkpoint_resumes_there(tmp_path, monkeypatch, uninterrupted):
    config, reference = uninterrupted
    run = Run.create_or_open(config, tmp_path)
    monkeypatch.setattr(train_module, "epsilon_loss", _StopAt(21))  # first call of step 20
    with pytest.raises(KeyboardInterrupt):
        Trainer(run, device="cpu", threads=1, progress=False).train()
    monkeypatch.undo()
    trainer = Trainer(run, device="cpu", threads=1, progress=False)
    assert trainer.try_resume() and trainer.step == 20
    trainer.train()
    _assert_same(_weights(run, config.steps), _weights(reference, config.steps))


def test_same_config_and_seed_give_identical_weights(uninterrupted, tmp_path):
    config, reference = uninterrupted
    again = _train(config, tmp_path / "again")
    for step in checkpoint_steps(config):
        _assert_same(_weights(again, step), _weights(reference, step))
        assert again.read_bytes(again.checkpoint_path(step)) == reference.read_bytes(reference.checkpoint_path(step))


def test_another_seed_gives_other_weights(uninterrupted, tmp_path):
    config, reference = uninterrupted
    other = _train(config.replace(seed=1), tmp_path)
    a, b = _weights(other, config.steps), _weights(reference, config.steps)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_on_disk_follow_the_schedule_and_only_two_states_are_kept(uninterrupted):
    config, run = uninterrupted
    assert run.checkpoint_steps_on_disk() == checkpoint_steps(config) == [0, 20, 40, 60]
    assert run.train_state_steps() == [40, 60]
    model = load_weights(run, 60)
    assert not model.training
    _assert_same({k: v for k, v in model.state_dict().items()}, _weights(run, 60))


def test_training_lowers_the_loss(uninterrupted):
    config, run = uninterrupted
    losses = run.load_tensors(run.train_state_path(config.steps))[0]["losses"]
    assert losses[-20:].mean() < 0.7 * losses[:10].mean()


def test_a_finished_run_is_not_trained_again(uninterrupted):
    config, run = uninterrupted
    before = run.read_bytes(run.checkpoint_path(config.steps))
    trainer = Trainer(run, device="cpu", threads=1, progress=False)
    trainer.train()
    assert trainer.step == config.steps
    assert run.read_bytes(run.checkpoint_path(config.steps)) == before


def test_learning_rate_decays_by_cosine_to_the_final_ratio():
    config = TINY.replace(lr=1e-3, lr_final_ratio=0.1, steps=100)
    assert learning_rate(config, 0) == pytest.approx(1e-3)
    assert learning_rate(config, 50) == pytest.approx(0.55e-3)
    assert learning_rate(config, 100) == pytest.approx(1e-4)
    rates = [learning_rate(config, s) for s in range(101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
