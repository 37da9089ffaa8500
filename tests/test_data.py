"""Data sets: the fixed mnist5k split, digits at 28x28, online sets fail clearly offline, the trainer's knobs."""
import pytest
import torch

from training.data.datasets import DatasetUnavailable, digits, mnist5k, online_dataset


def test_mnist5k_split_is_fixed_and_stratified():
    s = mnist5k()
    assert s.train_x.shape == (4000, 1, 28, 28) and s.test_x.shape == (1000, 1, 28, 28)
    assert torch.equal(s.test_y.bincount(), torch.full((10,), 100))
    assert 0 <= s.train_x.min() and s.train_x.max() <= 1
    mnist5k.cache_clear()
    again = mnist5k()
    assert torch.equal(again.test_x, s.test_x) and torch.equal(again.train_y, s.train_y)
    # no image is in both halves
    tr = {hash(x.numpy().tobytes()) for x in s.train_x[:, 0]}
    assert not any(hash(x.numpy().tobytes()) in tr for x in s.test_x[:, 0])


def test_digits_look_like_mnist():
    d = digits()
    assert d.train_x.shape[1:] == (1, 28, 28)
    assert len(d.train_x) + len(d.test_x) == 1797
    assert d.train_x[:, :, :4].abs().sum() == 0  # the 4 px MNIST border is empty


def test_online_sets_fail_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailable, match="internet"):
        online_dataset("MNIST")
    with pytest.raises(ValueError, match="unknown data set"):
        online_dataset("ImageNet")


def test_trainer_max_steps_and_cancel():
    from training.trainer import TrainConfig, train
    from zoo.digits import ResNetDigits

    s = mnist5k()
    r = train(ResNetDigits(), s, TrainConfig(epochs=5, batch_size=32, max_steps=3))
    assert r["steps"] == 3 and not r["stopped"] and len(r["history"]) == 3
    seen = []
    r = train(ResNetDigits(), s, TrainConfig(epochs=5, batch_size=32),
              on_step=lambda i: seen.append(i.step) or i.step < 2)
    assert r["stopped"] and r["steps"] == 2 and seen == [1, 2]


def test_seeded_draws_stay_seeded_when_visitors_draw_at_once():
    """The augmentation previews and Look inside's random weights seed torch's process-wide RNG: two visitors at
    once each get the draws of their own seed, every time (their seeding and drawing take turns)."""
    import threading

    from look_inside.weights import random_init
    from training.data.transforms import AugmentSettings, draw
    from zoo.digits import ResNetDigits

    img = torch.rand(3, 40, 40)
    s = AugmentSettings(resize=32, crop_size=28)
    want = {seed: draw(img, s, 6, seed) for seed in (1, 2)}
    weights = {seed: random_init(ResNetDigits, seed).conv1.weight.detach().clone() for seed in (3, 4)}
    bad, start = [], threading.Barrier(4)

    def visitor(seed, kind):
        start.wait()
        for _ in range(15):
            if kind == "draw" and not torch.equal(draw(img, s, 6, seed), want[seed]):
                bad.append(("draw", seed))
            if kind == "init" and not torch.equal(random_init(ResNetDigits, seed).conv1.weight, weights[seed]):
                bad.append(("init", seed))

    threads = [threading.Thread(target=visitor, args=a) for a in ((1, "draw"), (2, "draw"), (3, "init"), (4, "init"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad, bad[:5]
