"""Smoke test of benchmarks/run_all.py's machinery on tiny shapes (no timing asserted)."""

import json

import numpy as np
import pytest
import tensorflow as tf

import keras
import keras_pt
from benchmarks import _common, run_all

ROW_FIELDS = (
    "name",
    "unit",
    "batch_size",
    "examples_per_second",
    "cpu_seconds_per_step",
    "flops_per_example",
    "ceiling",
    "ceiling_fraction",
    "reference",
)


def test_step_flops_of_a_dense_autoencoder_match_the_analytic_count():
    # 64 -> 16 -> 8 -> 4 -> 8 -> 16 -> 64: forward and both backward products,
    # except the input gradient of the first layer, which nothing needs.
    model = keras_pt.Autoencoder((8, 8, 1), latent_dim=4, hidden_dims=(16, 8))
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4, drop_remainder=True)
    model.fit(dataset, epochs=1, verbose=0)
    products = 64 * 16 + 16 * 8 + 8 * 4 + 4 * 8 + 8 * 16 + 16 * 64
    expected = 4 * (3 * 2 * products - 2 * 64 * 16)
    assert _common.count_step_flops(model, dataset.element_spec) == expected


def test_conv_flops_count_forward_and_both_gradients():
    model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(3, 3, padding="same")])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((2, 4, 4, 2), "float32")
    y = np.zeros((2, 4, 4, 3), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2, drop_remainder=True)
    model.fit(dataset, epochs=1, verbose=0)
    # Forward and filter gradient; the input gradient is not needed.
    assert _common.count_step_flops(model, dataset.element_spec) == 2 * 2 * (2 * 16 * 3 * 9 * 2)


@pytest.mark.slow
def test_run_all_writes_every_field(tmp_path):
    result = run_all.run(["autoencoder_dense", "gan"], "tiny")
    path = tmp_path / "results.json"
    path.write_text(json.dumps(result, default=str))
    loaded = json.loads(path.read_text())
    assert [row["row"] for row in loaded["rows"]] == ["autoencoder_dense", "gan"]
    for kind in ("matmul", "conv"):
        assert loaded["ceilings"][kind]["flops_per_cpu_second"] > 0
    for row in loaded["rows"]:
        for field in ROW_FIELDS:
            assert field in row, field
        assert row["flops_per_example"] > 0
        assert row["ceiling_fraction"] > 0
        assert row["reference"]["cpu_seconds_per_step"] > 0
        assert row["ratio_cpu"] > 0
    table = run_all.table(loaded)
    assert "Autoencoder dense" in table and "keras.io-style GAN" in table
