"""The flags every example binary shares, and flags -> recipe config.

Each binary calls `define_common_flags(Config, kind)` (the same names,
defaults and help text everywhere; defaults of `--dataset`, `--model_dir`
and `--batch_size` come from the recipe's config), defines its own flags
with `define_flag(Config, name, help)` (defaults from the config too), and
builds the config with `config_from_flags(Config)`.
"""

import dataclasses
import sys

from absl import app, flags

from keras_pt import data as data_lib
from keras_pt import training

FLAGS = flags.FLAGS
MIXED_PRECISION = ["mixed_bfloat16", "mixed_float16"]
DATASET_HELP = {
    "image": (
        "Image data: a TFDS name (digits is embedded; mnist, fashion_mnist, ... need --data_dir or "
        "--download), a folder with one sub-folder per class, a .npz/.npy file, or a folder of "
        "MNIST-format IDX files (.gz or not)."
    ),
    "text": (
        "Text data: a TFDS name (stdlib_docs is embedded; imdb_reviews, glue/sst2, glue/mrpc, "
        "glue/qqp), a .txt file (one text per line), a .jsonl/.csv file (--text_column, "
        "--label_column) or a folder with one sub-folder of .txt files per class."
    ),
}


def _default(config_class, name):
    return {field.name: field.default for field in dataclasses.fields(config_class)}[name]


def define_flag(config_class, name, help_text, enum_values=None):
    """Defines `--name` with the config's default for it, typed by that default
    (int, float, bool, str; a tuple or list default gives a list flag)."""
    default = _default(config_class, name)
    if enum_values is not None:
        flags.DEFINE_enum(name, default, list(enum_values), help_text)
    elif isinstance(default, bool):
        flags.DEFINE_bool(name, default, help_text)
    elif isinstance(default, int):
        flags.DEFINE_integer(name, default, help_text)
    elif isinstance(default, float):
        flags.DEFINE_float(name, default, help_text)
    elif isinstance(default, (list, tuple)):
        flags.DEFINE_list(name, list(default), help_text)
    else:
        flags.DEFINE_string(name, default, help_text)


def define_common_flags(config_class, kind):
    """Defines the flags every binary takes; `kind` is `"image"` or `"text"`."""
    flags.DEFINE_string("dataset", _default(config_class, "dataset"), DATASET_HELP[kind])
    flags.DEFINE_string("data_dir", None, "TFDS data directory (a gs:// path on TPUs).")
    flags.DEFINE_string(
        "model_dir",
        _default(config_class, "model_dir"),
        "Output and checkpoints (local, gs:// or any tf.io.gfile path); a rerun with the same "
        "settings resumes from them, other settings are refused.",
    )
    flags.DEFINE_string(
        "strategy",
        "auto",
        "auto, default, one_device, mirrored, multi_worker or tpu (auto: TPU, else all GPUs, else the CPU).",
    )
    flags.DEFINE_string("tpu", None, "TPU name or grpc:// address (default: Colab's, TPU_NAME, or a TPU VM's).")
    flags.DEFINE_enum(
        "mixed_precision",
        None,
        MIXED_PRECISION,
        "mixed_bfloat16 (TPUs, CPUs) or mixed_float16 (GPUs, with loss scaling); float32 if unset.",
    )
    flags.DEFINE_integer("seed", 0, "Seed of the weights, the data order, the random draws and the label draws.")
    batch_size = _default(config_class, "batch_size")
    flags.DEFINE_integer(
        "batch_size",
        batch_size,
        "Global batch size" + ("." if batch_size is not None else " (default: the recipe's choice)."),
    )
    flags.DEFINE_integer("checkpoint_every", None, "Training steps between checkpoints (default: each epoch).")
    flags.DEFINE_bool("scale_batch_size", False, "Multiply the batch size and learning rate by the replica count.")
    flags.DEFINE_bool(
        "restart_from_healthy",
        False,
        "After a NaN or diverged loss, continue the same --model_dir from its last healthy "
        "checkpoint with the new settings (e.g. a lower --learning_rate).",
    )
    flags.DEFINE_integer("verbose", 1, "0 silent, 1 progress bars, 2 one line per epoch.")
    flags.DEFINE_bool("tf_logs", False, "Show TensorFlow's C++ start-up lines (hidden by default).")
    if kind == "image":
        flags.DEFINE_list("image_size", None, "height,width: resize folder images (needed when sizes differ).")
        flags.DEFINE_float("test_fraction", 0.2, "Held-out test share for data without a test split.")
        flags.DEFINE_bool("download", False, "Let TFDS download a named data set (needs the internet).")
    else:
        flags.DEFINE_string(
            "text_column", "text", "Text column of a .jsonl/.csv --dataset (two, comma-separated, for pairs)."
        )
        flags.DEFINE_string("label_column", "label", "Label column of a .jsonl/.csv --dataset (class ids or names).")


def config_from_flags(config_class, **overrides):
    """The recipe config from the parsed flags: every flag named like a field."""
    values = {}
    for field in dataclasses.fields(config_class):
        if field.name in FLAGS:
            values[field.name] = FLAGS[field.name].value
    if values.get("image_size") is not None:
        try:
            values["image_size"] = tuple(int(s) for s in values["image_size"])
        except ValueError:
            raise ValueError(
                f"--image_size takes height,width in pixels, e.g. 28,28; got {FLAGS.image_size}."
            ) from None
    if "text_column" in FLAGS and "dataset" in values:
        values["dataset"] = data_lib.text_source(values["dataset"], FLAGS.text_column, FLAGS.label_column)
    if "prompts" in values:
        values["prompts"] = tuple(values["prompts"])
    values.update(overrides)
    return config_class(**values)


def with_messages(main):
    """`main` where a bad setting or a diverged run ends with its message on
    stderr and exit status 1 instead of a traceback (`--verbose=2` keeps
    the traceback)."""

    def main_with_messages(argv):
        try:
            return main(argv)
        except (ValueError, training.NonFiniteLossError) as error:
            if FLAGS.verbose >= 2:
                raise
            print(f"\nerror: {error}", file=sys.stderr)
            sys.exit(1)

    return main_with_messages


def run(main):
    """`absl.app.run(with_messages(main))`: what every binary's `__main__` calls."""
    app.run(with_messages(main))
