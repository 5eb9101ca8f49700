"""Statistics of a text data set for choosing MiniBERT's vocabulary and length.

Builds (or reuses) the data set, learns a WordPiece vocabulary, and prints
split sizes, class counts, timings, vocabulary size, tokens per text (mean,
median, 95th percentile, max), the share of `[UNK]` tokens, the share of
texts that fit a sequence length, and host-side preprocessing throughput.

    python benchmarks/text_data_stats.py
    python benchmarks/text_data_stats.py --vocabulary_size=4096 --vocabulary_split=train+unsupervised
"""

import tempfile
import time

from absl import app, flags, logging

import numpy as np
import tensorflow_datasets as tfds

from keras_pt import data
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer, special_tokens

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "stdlib_docs", "Text data set name.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: a fresh temp dir).")
flags.DEFINE_integer("vocabulary_size", 8192, "Vocabulary size to learn.")
flags.DEFINE_string("vocabulary_split", "train", "Split to learn the vocabulary on.")
flags.DEFINE_integer("min_frequency", 2, "learn_vocabulary's min_frequency.")
flags.DEFINE_integer("sequence_length", 128, "Sequence length for the fit share and throughput.")
flags.DEFINE_integer("batch_size", 32, "Batch size for the throughput.")


def describe(counts):
    return (
        f"mean {counts.mean():.1f}, median {np.median(counts):.0f}, "
        f"p95 {np.percentile(counts, 95):.0f}, max {counts.max()}"
    )


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()
    data_dir = FLAGS.data_dir or tempfile.mkdtemp(prefix="tfds_")
    spec = data.text_dataset_spec(FLAGS.dataset)
    start = time.perf_counter()
    builder = tfds.builder(FLAGS.dataset, data_dir=data_dir)
    builder.download_and_prepare()
    print(f"prepare {FLAGS.dataset}: {time.perf_counter() - start:.1f} s ({data_dir})")
    for name, split in sorted(builder.info.splits.items()):
        print(f"  split {name}: {split.num_examples}")
    label = builder.info.features["label"]
    train = data.load_text_dataset(FLAGS.dataset, "train", data_dir=data_dir)
    labels = np.array([y for _, y in train.as_numpy_iterator()])
    print(f"  {label.num_classes} classes, train counts:")
    for index, name in enumerate(label.names):
        print(f"    {name}: {int((labels == index).sum())}")

    if FLAGS.vocabulary_split in spec.labeled_splits:
        corpus = data.load_text_dataset(FLAGS.dataset, FLAGS.vocabulary_split, data_dir=data_dir)
    else:
        corpus = data.load_pretraining_texts(FLAGS.dataset, FLAGS.vocabulary_split, data_dir=data_dir)
    start = time.perf_counter()
    vocabulary = data.learn_vocabulary(corpus, FLAGS.vocabulary_size, min_frequency=FLAGS.min_frequency)
    print(
        f"learn_vocabulary({FLAGS.vocabulary_split}, {FLAGS.vocabulary_size}): "
        f"{time.perf_counter() - start:.1f} s, {len(vocabulary)} tokens"
    )
    tokenizer = WordPieceTokenizer(vocabulary)
    for split in spec.labeled_splits + ("pretraining",):
        if split == "pretraining":
            texts = data.load_pretraining_texts(FLAGS.dataset, data_dir=data_dir)
        else:
            texts = data.load_text_dataset(FLAGS.dataset, split, data_dir=data_dir)
        counts = data.token_counts(tokenizer, texts)
        ids = np.concatenate([tokenizer(b).flat_values.numpy() for b in data.texts_only(texts).batch(512)])
        fits = np.mean(counts + 1 + len(spec.text_features) <= FLAGS.sequence_length)
        print(
            f"  tokens per text, {split}: {describe(counts)}; [UNK] "
            f"{np.mean(ids == special_tokens.UNK_ID):.2%}; fit in "
            f"{FLAGS.sequence_length}: {fits:.1%}"
        )

    preprocessor = MiniBERTPreprocessor(tokenizer, FLAGS.sequence_length)
    texts = data.load_pretraining_texts(FLAGS.dataset, data_dir=data_dir).cache()
    batches = iter(data.preprocess_text_dataset(texts, preprocessor, FLAGS.batch_size, repeat=True))
    for _ in range(20):
        next(batches)
    steps = 200
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    rate = steps * FLAGS.batch_size / (time.perf_counter() - start)
    print(f"host preprocessing: {rate:.0f} sequences/s (batch {FLAGS.batch_size})")


if __name__ == "__main__":
    app.run(main)
