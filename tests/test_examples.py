"""The example pages' Python side: the digits data and its split, the trained generator's quality (docs/examples.md's
table), and the build's errors. The pages themselves are clicked through in test_examples_browser.py."""

import numpy as np
import pytest

from examples import build
from examples.dcgan import digits, quality


def test_digits_are_mnist_like_and_the_split_keeps_the_classifier_data_apart():
    x, y = digits.images_28()
    assert sorted(set(y.tolist())) == list(range(10))
    assert x.shape == (1797, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert not x[:, :4].any() and not x[:, :, 24:].any()  # the 4-pixel margin, as MNIST's
    s = digits.split()
    assert len(s.gan_x) + len(s.held_x) == 1797
    assert abs(len(s.held_x) / 1797 - digits.HELD_OUT) < 0.01
    gan = {a.tobytes() for a in s.gan_x}
    assert not any(a.tobytes() in gan for a in s.held_x)
    assert np.bincount(s.held_y).min() >= 50  # every digit held out, stratified
    again = digits.split()
    assert np.array_equal(again.held_x, s.held_x)  # seeded


def test_the_trained_generator_draws_the_digit_asked_for():
    """The bar of docs/examples.md's table: 90% of 1000 samples overall, 75% of each digit's 100, as read by a
    classifier that never saw the GAN's training digits (and that reads those right at least 95% of the time)."""
    q = quality.measure(quality.HERE / "generator.onnx", samples=100)
    assert q.classifier_on_real >= 0.95
    assert q.overall >= quality.OVERALL, q.table()
    assert min(q.per_digit) >= quality.PER_DIGIT, q.table()
    assert q.ok


def test_noise_is_the_pages_input():
    z = digits.noise(7, 5, seed=1)
    assert z.shape == (5, 110)
    assert (z[:, 107] == 1).all() and (z[:, 100:].sum(1) == 1).all()
    assert abs(z[:, :100].std() - 1) < 0.2


def test_build_without_the_generator_says_so_in_one_line(tmp_path, capsys):
    assert build.main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dcgan/generator.onnx: missing" in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_quality_without_a_model_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        quality.main(["--model", str(tmp_path / "none.onnx")])
    assert exit.value.code == 2
    assert "none.onnx: no such file" in capsys.readouterr().err


def test_training_with_too_few_steps_is_refused_before_anything_is_written(tmp_path, capsys):
    from examples.dcgan import train

    with pytest.raises(SystemExit) as exit:
        train.main(["--steps", "0", "--out", str(tmp_path)])
    assert exit.value.code == 2
    assert "--steps must be at least 50" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
