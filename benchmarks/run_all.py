"""Every model's training step against the hardware and a reference, in one table.

One row per training step: `Autoencoder` (dense and conv),
`DenoisingAutoencoder`, `GAN`, `MiniBERT` (masked LM), `MiniGPT` (next
token), `SentenceEncoder` (SimCSE), `MiniBERTClassifier` fine-tuning and
`Distiller`; then the cached-generation rows of `generation_speed.py`.
For each training step, measured in this process:

- examples per second (wall clock) and process CPU milliseconds per step,
  medians over every timed step (`StepTimer`, after untimed warm-up steps);
- model FLOPs per example: the matmuls and convolutions of one traced
  `train_step`, forward and backward (`_common.count_step_flops`);
- the fraction of the ceiling per CPU-second: (FLOPs per step / CPU seconds
  per step) / (FLOPs per CPU-second of one large matmul, or for the
  convolutional models one convolution forward + backward of a similar
  shape), both measured in this run;
- where a public implementation of the same shape exists, the same figures
  for it and the ratio `reference CPU time / keras_pt CPU time` (above 1:
  keras_pt does the step in less CPU time) and the wall-clock ratio. The
  references: plain-Keras autoencoders as in the keras.io examples (dense,
  convolutional, denoising on pre-noised inputs), the keras.io-style GAN of
  `gan_throughput.py`, KerasHub's `BertMaskedLM`, `GPT2CausalLM` and
  `BertTextClassifier`, and the keras.io knowledge-distillation `Distiller`
  with the same teacher and student. `SentenceEncoder` has none.

Models alternate round by round with their reference; on a machine shared
with other jobs the CPU-time figures are the steadier ones.

    pip install -e ".[benchmark]"     # keras-hub, for the references
    python benchmarks/run_all.py --quick               # small shapes, a few minutes
    python benchmarks/run_all.py                       # the shapes of the speed table
    python benchmarks/run_all.py --mixed_precision=mixed_bfloat16 --jit_compile=true
    python benchmarks/run_all.py --rows=gan,mini_bert --output=/tmp/speed.json
"""

import json
import os
import platform
import sys
import time

from absl import app, flags

import keras
import numpy as np
import tensorflow as tf

import keras_pt

if __package__ in (None, ""):  # run as a script: python benchmarks/run_all.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _common  # noqa: E402
from benchmarks import gan_throughput, generation_speed, mini_bert_throughput  # noqa: E402

FLAGS = flags.FLAGS

ROWS = (
    "autoencoder_dense",
    "autoencoder_conv",
    "denoising_autoencoder",
    "gan",
    "mini_bert",
    "mini_gpt",
    "sentence_encoder",
    "mini_bert_classifier",
    "distiller",
    "generation",
)

# Shapes of the full run (the speed table) and of --quick.
FULL = {
    "image_shape": (28, 28, 1),
    "dense_batch": 256,
    "conv_batch": 128,
    "gan_batch": 64,
    "gan_base_filters": 32,
    "latent_dim": 32,
    "text": {
        "vocabulary_size": 8192,
        "num_layers": 4,
        "num_heads": 4,
        "hidden_dim": 256,
        "intermediate_dim": 1024,
    },
    "student": {"num_layers": 1, "num_heads": 1, "hidden_dim": 64, "intermediate_dim": 256},
    "sequence_length": 128,
    "text_batch": 32,
    "num_classes": 10,
    "generation": {"batch_size": 8, "prompt_length": 32, "new_tokens": 256, "rounds": 3},
    "warmup_steps": 2,
    "rounds": 6,
    "steps_per_round": 3,
}
QUICK = {
    **FULL,
    "dense_batch": 128,
    "conv_batch": 64,
    "text": {
        "vocabulary_size": 2048,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 128,
        "intermediate_dim": 512,
    },
    "sequence_length": 64,
    "text_batch": 16,
    "generation": {"batch_size": 4, "prompt_length": 16, "new_tokens": 64, "rounds": 2},
    "rounds": 3,
    "steps_per_round": 3,
}
# Tiny shapes for the smoke test (tests/benchmarks/test_benchmarks.py).
TINY = {
    **QUICK,
    "image_shape": (8, 8, 1),
    "dense_batch": 16,
    "conv_batch": 16,
    "gan_batch": 16,
    "gan_base_filters": 8,
    "latent_dim": 8,
    "text": {
        "vocabulary_size": 256,
        "num_layers": 1,
        "num_heads": 2,
        "hidden_dim": 32,
        "intermediate_dim": 64,
    },
    "student": {"num_layers": 1, "num_heads": 1, "hidden_dim": 16, "intermediate_dim": 32},
    "sequence_length": 16,
    "text_batch": 8,
    "generation": {"batch_size": 2, "prompt_length": 4, "new_tokens": 8, "rounds": 1},
    "warmup_steps": 1,
    "rounds": 1,
    "steps_per_round": 2,
}
CONFIGS = {"full": FULL, "quick": QUICK, "tiny": TINY}


def define_flags():
    flags.DEFINE_bool("quick", False, "Small shapes and few steps (a few minutes on 2 cores).")
    flags.DEFINE_list("rows", list(ROWS), f"Rows to run, from: {', '.join(ROWS)}.")
    flags.DEFINE_string(
        "output",
        None,
        "JSON path. Defaults to benchmarks/results.json, or <model_dir>/benchmark_results.json with --model_dir.",
    )
    flags.DEFINE_string("model_dir", None, "Directory for the JSON table (gs:// works).")
    flags.DEFINE_enum(
        "mixed_precision",
        "none",
        ["none", "mixed_bfloat16", "mixed_float16"],
        "Global Keras dtype policy for every model (the ceilings use its compute dtype).",
    )
    flags.DEFINE_enum(
        "jit_compile",
        "auto",
        ["auto", "true", "false"],
        "jit_compile of every model and reference (auto: each model's own default).",
    )
    flags.DEFINE_string(
        "strategy",
        "default",
        "keras_pt.get_strategy name the models are built and "
        "compiled under (default, one_device, mirrored, tpu, auto).",
    )
    flags.DEFINE_bool("uncached_generation", True, "Also time MiniGPT's uncached loop.")
    flags.DEFINE_integer(
        "profile_steps",
        0,
        "If > 0, profile this many steps of each model after its "
        "timing (tf.profiler; op self-time by type, in the JSON and printed).",
    )
    flags.DEFINE_integer("rounds", None, "Timed rounds per model (default: the config's).")
    flags.DEFINE_integer("steps_per_round", None, "Steps per round (default: the config's).")


# === References (plain Keras, as in the keras.io examples) ===


def plain_dense_autoencoder(image_shape, latent_dim, hidden_dims=(256, 128)):
    """keras.io-style dense autoencoder, the same layers as `Autoencoder(architecture="dense")`."""
    size = int(np.prod(image_shape))
    layers = [keras.Input(image_shape), keras.layers.Flatten()]
    layers += [keras.layers.Dense(d, activation="relu") for d in hidden_dims]
    layers += [keras.layers.Dense(latent_dim)]
    layers += [keras.layers.Dense(d, activation="relu") for d in reversed(hidden_dims)]
    layers += [keras.layers.Dense(size, activation="sigmoid"), keras.layers.Reshape(image_shape)]
    return keras.Sequential(layers)


def plain_conv_autoencoder(image_shape, latent_dim, filters=(32, 64)):
    """keras.io-style convolutional autoencoder, the layers of `Autoencoder(architecture="conv")`."""
    height, width, channels = image_shape
    stride = 2 ** len(filters)
    small = (height // stride, width // stride, filters[-1])
    layers = [keras.Input(image_shape)]
    layers += [keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu") for f in filters]
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(latent_dim),
        keras.layers.Dense(int(np.prod(small)), activation="relu"),
        keras.layers.Reshape(small),
    ]
    layers += [
        keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu") for f in reversed(filters)
    ]
    layers += [keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid")]
    return keras.Sequential(layers)


class KerasIoDistiller(keras.Model):
    """The keras.io knowledge-distillation `Distiller` (Keras 3 version)."""

    def __init__(self, student, teacher):
        super().__init__()
        self.teacher = teacher
        self.student = student

    def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha=0.1, temperature=3, **kwargs):
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        self.student_loss_fn = student_loss_fn
        self.distillation_loss_fn = distillation_loss_fn
        self.alpha = alpha
        self.temperature = temperature

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False, training=True):
        teacher_pred = self.teacher(x, training=False)
        student_loss = self.student_loss_fn(y, y_pred)
        t = self.temperature
        distillation_loss = self.distillation_loss_fn(
            keras.ops.softmax(teacher_pred / t, axis=1),
            keras.ops.softmax(y_pred / t, axis=1),
        ) * (t**2)
        return self.alpha * student_loss + (1 - self.alpha) * distillation_loss

    def call(self, x, training=False):
        return self.student(x, training=training)


# === Rows ===


_SETTINGS = {"jit_compile": "auto", "strategy": None, "profile_steps": 0}  # set by run()


def _jit():
    return {"auto": "auto", "true": True, "false": False}[_SETTINGS["jit_compile"]]


def _compile(model, **kwargs):
    model.compile(jit_compile=_jit(), **kwargs)
    return model


def _image_dataset(images, batch_size, targets=None):
    data = images if targets is None else (images, targets)
    return (
        tf.data.Dataset.from_tensor_slices(data)
        .batch(batch_size, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )


def _images(config, batch_size, low=0.0):
    rng = np.random.default_rng(0)
    return rng.uniform(low, 1, size=(batch_size * 4, *config["image_shape"])).astype("float32")


def row_autoencoder(config, architecture):
    batch = config["dense_batch" if architecture == "dense" else "conv_batch"]
    images = _images(config, batch)
    shape, latent = config["image_shape"], config["latent_dim"]
    ours = _compile(
        keras_pt.Autoencoder(shape, latent, architecture=architecture),
        optimizer=keras.optimizers.Adam(1e-3),
    )
    build = plain_dense_autoencoder if architecture == "dense" else plain_conv_autoencoder
    reference = _compile(build(shape, latent), optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return {
        "ours": (ours, _image_dataset(images, batch)),
        "reference": ("keras.io autoencoder", reference, _image_dataset(images, batch, images)),
        "batch": batch,
        "unit": "images",
        "ceiling": "matmul" if architecture == "dense" else "conv",
    }


def row_denoising_autoencoder(config):
    batch = config["dense_batch"]
    images = _images(config, batch)
    shape, latent = config["image_shape"], config["latent_dim"]
    ours = _compile(
        keras_pt.DenoisingAutoencoder(image_shape=shape, latent_dim=latent, seed=0),
        optimizer=keras.optimizers.Adam(1e-3),
    )
    # keras.io's denoising example corrupts the inputs once, before fit.
    rng = np.random.default_rng(1)
    noisy = images + 0.2 * rng.standard_normal(images.shape).astype("float32")
    noisy *= rng.uniform(size=images.shape) >= 0.2
    reference = _compile(plain_dense_autoencoder(shape, latent), optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return {
        "ours": (ours, _image_dataset(images, batch)),
        "reference": (
            "keras.io denoising autoencoder",
            reference,
            _image_dataset(noisy.astype("float32"), batch, images),
        ),
        "batch": batch,
        "unit": "images",
        "ceiling": "matmul",
    }


def row_gan(config):
    batch, shape = config["gan_batch"], list(config["image_shape"])
    latent, filters = config["latent_dim"] * 2, config["gan_base_filters"]
    images = _images(config, batch, low=-1.0)

    def pair():
        return (
            keras_pt.Generator(shape, latent, architecture="dcgan", base_filters=filters),
            keras_pt.Discriminator(shape, architecture="dcgan", base_filters=filters),
        )

    def adam():
        return keras.optimizers.Adam(2e-4, beta_1=0.5)

    generator, discriminator = pair()
    ours = _compile(keras_pt.GAN(generator, discriminator, seed=0), d_optimizer=adam(), g_optimizer=adam())
    generator, discriminator = pair()
    reference = gan_throughput.ReferenceGAN(discriminator, generator, latent)
    reference.compile(
        d_optimizer=adam(),
        g_optimizer=adam(),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    if _SETTINGS["jit_compile"] != "auto":
        reference.jit_compile = _jit()
    return {
        "ours": (ours, _image_dataset(images, batch)),
        "reference": ("keras.io-style GAN", reference, _image_dataset(images, batch)),
        "batch": batch,
        "unit": "images",
        "ceiling": "conv",
    }


def _text_shape(config):
    return config["text"], config["sequence_length"], config["text_batch"]


def _packed(config, num_batches=4):
    text, length, batch = _text_shape(config)
    return mini_bert_throughput.make_batches(
        np.random.default_rng(0), num_batches, batch, length, text["vocabulary_size"]
    )


def _mini_bert(config, text=None, **kwargs):
    text = {**config["text"], **(text or {})}
    return keras_pt.MiniBERT(
        max_sequence_length=config["sequence_length"],
        activation="gelu_approximate",
        seed=0,
        **text,
        **kwargs,
    )


def _bert_backbone(config):
    import keras_hub  # the benchmark extra; never imported by keras_pt

    return keras_hub.models.BertBackbone(max_sequence_length=config["sequence_length"], dropout=0.1, **config["text"])


def row_mini_bert(config):
    import keras_hub

    text, length, batch = _text_shape(config)
    packed = _packed(config)
    predictions = int(np.ceil(round(0.15 * length, 6)))
    ours = _compile(_mini_bert(config, max_predictions=predictions), optimizer=keras.optimizers.Adam(5e-5))
    reference = _compile(
        keras_hub.models.BertMaskedLM(_bert_backbone(config), preprocessor=None),
        optimizer=keras.optimizers.Adam(5e-5),
    )
    x, y, w = mini_bert_throughput.keras_hub_inputs(packed, text["vocabulary_size"], 0.15, predictions, [0, 1])
    return {
        "ours": (ours, mini_bert_throughput.make_dataset(batch, packed)),
        "reference": (
            "KerasHub BertMaskedLM",
            reference,
            mini_bert_throughput.make_dataset(batch, x, y, w),
        ),
        "batch": batch,
        "unit": "sequences",
        "ceiling": "matmul",
    }


def row_mini_gpt(config):
    import keras_hub

    text, length, batch = _text_shape(config)
    packed = _packed(config)
    inputs = {"token_ids": packed["token_ids"], "padding_mask": packed["padding_mask"]}
    ours = _compile(
        keras_pt.MiniGPT(max_sequence_length=length, activation="gelu_approximate", **text),
        optimizer=keras.optimizers.Adam(5e-5),
    )
    backbone = keras_hub.models.GPT2Backbone(max_sequence_length=length, dropout=0.1, **text)
    reference = _compile(
        keras_hub.models.GPT2CausalLM(backbone, preprocessor=None),
        optimizer=keras.optimizers.Adam(5e-5),
    )
    # What GPT2CausalLMPreprocessor gives: the next token as label, padding weighted 0.
    ids, mask = packed["token_ids"], packed["padding_mask"]
    labels = np.concatenate([ids[:, 1:], np.zeros_like(ids[:, :1])], axis=1)
    weights = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], axis=1)
    return {
        "ours": (ours, mini_bert_throughput.make_dataset(batch, inputs)),
        "reference": (
            "KerasHub GPT2CausalLM",
            reference,
            mini_bert_throughput.make_dataset(batch, inputs, labels, weights.astype("float32")),
        ),
        "batch": batch,
        "unit": "sequences",
        "ceiling": "matmul",
    }


def row_sentence_encoder(config):
    _, _, batch = _text_shape(config)
    ours = _compile(
        keras_pt.SentenceEncoder(_mini_bert(config).encoder, pooling="mean"),
        optimizer=keras.optimizers.Adam(5e-5),
    )
    return {
        "ours": (ours, mini_bert_throughput.make_dataset(batch, _packed(config))),
        "reference": None,
        "batch": batch,
        "unit": "sequences",
        "ceiling": "matmul",
    }


def _labels(config, packed):
    rng = np.random.default_rng(2)
    return rng.integers(0, config["num_classes"], size=len(packed["token_ids"])).astype("int32")


def row_mini_bert_classifier(config):
    import keras_hub

    _, _, batch = _text_shape(config)
    packed = _packed(config)
    labels = _labels(config, packed)
    ours = _compile(
        keras_pt.MiniBERTClassifier(_mini_bert(config), config["num_classes"], seed=0),
        optimizer=keras.optimizers.Adam(5e-5),
    )
    reference = _compile(
        keras_hub.models.BertTextClassifier(_bert_backbone(config), config["num_classes"], preprocessor=None),
        optimizer=keras.optimizers.Adam(5e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    dataset = mini_bert_throughput.make_dataset(batch, packed, labels)
    return {
        "ours": (ours, dataset),
        "reference": ("KerasHub BertTextClassifier", reference, dataset),
        "batch": batch,
        "unit": "sequences",
        "ceiling": "matmul",
    }


def row_distiller(config):
    _, _, batch = _text_shape(config)
    packed = _packed(config)
    labels = _labels(config, packed)
    classes = config["num_classes"]

    def pair():
        teacher = keras_pt.MiniBERTClassifier(_mini_bert(config), classes, seed=0)
        student = keras_pt.MiniBERTClassifier(_mini_bert(config, text=config["student"]), classes, seed=0)
        return teacher, student

    teacher, student = pair()
    ours = _compile(
        keras_pt.Distiller(teacher, student, temperature=4.0, alpha=0.1),
        optimizer=keras.optimizers.Adam(5e-5),
    )
    teacher, student = pair()
    teacher.trainable = False
    reference = _compile(
        KerasIoDistiller(student, teacher),
        optimizer=keras.optimizers.Adam(5e-5),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
        student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        distillation_loss_fn=keras.losses.KLDivergence(),
        alpha=0.1,
        temperature=4.0,
    )
    dataset = mini_bert_throughput.make_dataset(batch, packed, labels)
    return {
        "ours": (ours, dataset),
        "reference": ("keras.io Distiller", reference, dataset),
        "batch": batch,
        "unit": "sequences",
        "ceiling": "matmul",
    }


BUILDERS = {
    "autoencoder_dense": lambda c: row_autoencoder(c, "dense"),
    "autoencoder_conv": lambda c: row_autoencoder(c, "conv"),
    "denoising_autoencoder": row_denoising_autoencoder,
    "gan": row_gan,
    "mini_bert": row_mini_bert,
    "mini_gpt": row_mini_gpt,
    "sentence_encoder": row_sentence_encoder,
    "mini_bert_classifier": row_mini_bert_classifier,
    "distiller": row_distiller,
}
NAMES = {
    "autoencoder_dense": "Autoencoder dense",
    "autoencoder_conv": "Autoencoder conv",
    "denoising_autoencoder": "DenoisingAutoencoder",
    "gan": "GAN",
    "mini_bert": "MiniBERT masked LM",
    "mini_gpt": "MiniGPT next token",
    "sentence_encoder": "SentenceEncoder SimCSE",
    "mini_bert_classifier": "MiniBERTClassifier fine-tune",
    "distiller": "Distiller",
}


# === Measurement ===


def _flops(model, dataset):
    try:
        return _common.count_step_flops(model, dataset.element_spec)
    except Exception as error:  # a count is a nicety; the timing still stands
        print(f"warning: no FLOP count for {type(model).__name__}: {error}")
        return None


def _time_models(entries, config):
    """Warm-up, then rounds alternating between the entries; `StepTimer` per entry."""
    for model, dataset in entries.values():  # trace and compile outside the timing
        model.fit(dataset, steps_per_epoch=config["warmup_steps"], epochs=1, verbose=0)
    timers = {name: _common.StepTimer() for name in entries}
    order = list(entries)
    for round_index in range(config["rounds"]):
        for name in order if round_index % 2 == 0 else order[::-1]:
            model, dataset = entries[name]
            model.fit(
                dataset,
                steps_per_epoch=config["steps_per_round"],
                epochs=1,
                verbose=0,
                callbacks=[timers[name]],
            )
    return timers


def _parameters(model):
    return int(sum(np.prod(w.shape) for w in model.weights))


def _figures(timer, batch, flops, ceiling):
    figures = _common.summarize_steps(timer, batch)
    figures["flops_per_example"] = None if flops is None else flops / batch
    figures["ceiling_fraction"] = None
    if flops is not None:
        achieved = flops / figures["cpu_seconds_per_step"]
        figures["flops_per_cpu_second"] = achieved
        figures["ceiling_fraction"] = achieved / ceiling["flops_per_cpu_second"]
        # Per wall-second: the figure that means something on an accelerator.
        figures["ceiling_fraction_wall"] = flops / figures["wall_seconds_per_step"] / ceiling["flops_per_second"]
    return figures


def measure_row(key, config, ceilings):
    strategy = _SETTINGS["strategy"] or tf.distribute.get_strategy()
    with strategy.scope():  # build and compile in the strategy's scope
        spec = BUILDERS[key](config)
    entries = {"ours": spec["ours"]}
    if spec["reference"] is not None:
        entries["reference"] = spec["reference"][1:]
    timers = _time_models(entries, config)
    ceiling = ceilings[spec["ceiling"]]
    row = {
        "row": key,
        "name": NAMES[key],
        "unit": spec["unit"],
        "batch_size": spec["batch"],
        "ceiling": spec["ceiling"],
    }
    model = spec["ours"][0]
    row["jit_compile"] = bool(model.jit_compile)
    row["parameters"] = _parameters(model)
    row.update(_figures(timers["ours"], spec["batch"], _flops(*spec["ours"]), ceiling))
    row["reference"] = None
    if spec["reference"] is not None:
        name, reference, dataset = spec["reference"]
        figures = _figures(timers["reference"], spec["batch"], _flops(reference, dataset), ceiling)
        figures.update(name=name, jit_compile=bool(reference.jit_compile), parameters=_parameters(reference))
        row["reference"] = figures
        row["ratio_cpu"] = figures["cpu_seconds_per_step"] / row["cpu_seconds_per_step"]
        row["ratio_wall"] = row["examples_per_second"] / figures["examples_per_second"]
    if _SETTINGS["profile_steps"]:
        steps = _SETTINGS["profile_steps"]
        row["profile"] = _common.profile_fit(*spec["ours"], steps)
        if spec["reference"] is not None:
            row["reference"]["profile"] = _common.profile_fit(*spec["reference"][1:], steps)
    return row


def measure_generation(config, uncached=True):
    gen = config["generation"]
    rows, same, _ = generation_speed.measure(
        config["text"],
        gen["batch_size"],
        gen["prompt_length"],
        gen["new_tokens"],
        rounds=gen["rounds"],
        uncached_rounds=1 if uncached else 0,
        keras_hub_jit=(True,),
    )
    cached = rows[generation_speed.CACHED]
    out = []
    for name, figures in rows.items():
        row = {
            "row": "generation",
            "name": f"{name} generate",
            "unit": "new tokens",
            "batch_size": gen["batch_size"],
            "examples_per_second": figures["tokens_per_second"],
            "examples_per_cpu_second": figures["tokens_per_cpu_second"],
            "cpu_seconds_per_call": figures["cpu_seconds_per_call"],
            "seconds_per_call": figures["seconds_per_call"],
            "calls": figures["calls"],
            "new_tokens": gen["new_tokens"],
            "prompt_length": gen["prompt_length"],
        }
        if name != generation_speed.CACHED:
            row["cached_ratio_cpu"] = cached["tokens_per_cpu_second"] / figures["tokens_per_cpu_second"]
            row["cached_ratio_wall"] = cached["tokens_per_second"] / figures["tokens_per_second"]
        out.append(row)
    if same is not None:
        out[0]["cached_equals_uncached"] = same
    return out


def measure_ceilings(config, dtype):
    text = config["text"]
    m = config["text_batch"] * config["sequence_length"]
    batch, (height, width, _) = config["conv_batch"], config["image_shape"]
    return {
        "matmul": _common.matmul_ceiling(m, text["hidden_dim"], text["intermediate_dim"], dtype),
        # The conv autoencoder's second encoder layer (and the DCGAN's middle one).
        "conv": _common.conv_ceiling(batch, height // 2, width // 2, 32, 64, strides=2, dtype=dtype),
    }


def run(
    rows,
    config_name="full",
    mixed_precision="none",
    jit_compile="auto",
    uncached=True,
    strategy="default",
    profile_steps=0,
    overrides=None,
):
    """Measures `rows` with the named shapes; returns the JSON-ready result.

    `config_name`: `"full"`, `"quick"` or `"tiny"` (the smoke test's);
    `jit_compile`: `"auto"`, `"true"` or `"false"`; `strategy`: a
    `keras_pt.get_strategy` name; `profile_steps`: steps profiled per model
    (0: none); `overrides`: config entries to replace (e.g. `rounds`).
    """
    config = {**CONFIGS[config_name], **(overrides or {})}
    _SETTINGS["profile_steps"] = profile_steps
    _SETTINGS["jit_compile"] = jit_compile
    _SETTINGS["strategy"] = keras_pt.get_strategy(strategy)
    if mixed_precision != "none":
        keras.mixed_precision.set_global_policy(mixed_precision)
    dtype = {"none": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[mixed_precision]
    started = time.time()
    ceilings = measure_ceilings(config, dtype)
    results = []
    for key in rows:
        print(f"measuring {key} ...", flush=True)
        if key == "generation":
            results.extend(measure_generation(config, uncached))
        else:
            results.append(measure_row(key, config, ceilings))
        keras.backend.clear_session()
    # Measured again at the end: how much the ceiling moved during the run.
    ceilings_after = measure_ceilings(config, dtype)
    for kind, after in ceilings_after.items():
        ceilings[kind]["flops_per_cpu_second_at_end"] = after["flops_per_cpu_second"]
    return {
        "config": config_name,
        "shapes": {k: v for k, v in config.items()},
        "mixed_precision": mixed_precision,
        "jit_compile": jit_compile,
        "strategy": strategy,
        "ceilings": ceilings,
        "rows": results,
        "environment": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "devices": [d.device_type for d in tf.config.list_physical_devices()],
        },
        "seconds": time.time() - started,
    }


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def table(result):
    """The Markdown table of a `run` result."""
    lines = [
        "| step | unit/s | CPU ms/step | GFLOP/example | fraction of ceiling | reference "
        "| reference unit/s | reference CPU ms/step | reference fraction | CPU ratio | wall ratio |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        if row["row"] == "generation":
            ratio = row.get("cached_ratio_cpu")
            lines.append(
                f"| {row['name']} ({row['new_tokens']} tokens) | "
                f"{row['examples_per_second']:.1f} tok | "
                f"{row['cpu_seconds_per_call'] * 1000:.0f} /call | — | — | "
                f"{'MiniGPT cached vs this' if ratio else ''} | | | | "
                f"{_fmt(ratio, '.2f')} | {_fmt(row.get('cached_ratio_wall'), '.2f')} |"
            )
            continue
        ref = row["reference"] or {}
        flops = row["flops_per_example"]
        lines.append(
            f"| {row['name']} (batch {row['batch_size']}) | "
            f"{row['examples_per_second']:.1f} | {row['cpu_seconds_per_step'] * 1000:.1f} | "
            f"{_fmt(None if flops is None else flops / 1e9, '.4f')} | "
            f"{_fmt(row['ceiling_fraction'], '.2f')} {row['ceiling']} | "
            f"{ref.get('name', '—')} | {_fmt(ref.get('examples_per_second'), '.1f')} | "
            f"{_fmt(None if not ref else ref['cpu_seconds_per_step'] * 1000, '.1f')} | "
            f"{_fmt(ref.get('ceiling_fraction'), '.2f')} | "
            f"{_fmt(row.get('ratio_cpu'), '.2f')} | {_fmt(row.get('ratio_wall'), '.2f')} |"
        )
    return "\n".join(lines)


def describe(result):
    out = [
        f"config {result['config']}, {result['mixed_precision']}, jit_compile="
        f"{result['jit_compile']}; TF {result['environment']['tensorflow']}, Keras "
        f"{result['environment']['keras']}, {result['environment']['cpu_count']} CPUs, load "
        f"average at the end {', '.join(f'{x:.1f}' for x in result['environment']['load_average'])}"
    ]
    for kind, ceiling in result["ceilings"].items():
        out.append(
            f"{kind} ceiling: {ceiling['shape']}: {ceiling['flops_per_cpu_second'] / 1e9:.1f} "
            f"GFLOP per CPU-second ({ceiling['flops_per_cpu_second_at_end'] / 1e9:.1f} at the "
            f"end), {ceiling['flops_per_second'] / 1e9:.1f} GFLOP/s wall"
        )
    for row in result["rows"]:
        for name, figures in (
            (row["name"], row),
            ((row.get("reference") or {}).get("name"), row.get("reference") or {}),
        ):
            profile = figures.get("profile")
            if profile:
                top = ", ".join(f"{op} {share:.0%}" for op, share in profile["top"][:5])
                out.append(
                    f"profile {row['name']}{'' if name == row['name'] else ' reference ' + name}:"
                    f" {profile['self_ms_per_step']:.1f} ms op self-time per step, "
                    f"{profile['kernel_share']:.0%} in matmuls/convolutions; {top}"
                )
        if "cached_equals_uncached" in row:
            out.append(f"cached = uncached tokens at {row['cached_equals_uncached']:.4f} of positions")
    return "\n".join(out)


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.rows) - set(ROWS))
    if unknown:
        raise app.UsageError(f"unknown rows {unknown}; choose from {', '.join(ROWS)}.")
    rows = [key for key in ROWS if key in FLAGS.rows]
    overrides = {
        name: getattr(FLAGS, name) for name in ("rounds", "steps_per_round") if getattr(FLAGS, name) is not None
    }
    result = run(
        rows,
        "quick" if FLAGS.quick else "full",
        FLAGS.mixed_precision,
        FLAGS.jit_compile,
        FLAGS.uncached_generation,
        FLAGS.strategy,
        FLAGS.profile_steps,
        overrides,
    )
    result["command"] = " ".join(["python", "benchmarks/run_all.py", *sys.argv[1:]])
    output = FLAGS.output
    if output is None:
        output = (
            os.path.join(FLAGS.model_dir, "benchmark_results.json")
            if FLAGS.model_dir
            else os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json")
        )
    tf.io.gfile.makedirs(os.path.dirname(output) or ".")
    with tf.io.gfile.GFile(output, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print()
    print(describe(result))
    print()
    print(table(result))
    print()
    print(
        f"CPU ratio: reference CPU time / keras_pt CPU time per step (> 1: keras_pt cheaper); "
        f"wall ratio: keras_pt / reference examples per second. Written to {output}."
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
