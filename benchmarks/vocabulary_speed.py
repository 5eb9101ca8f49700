"""Time `learn_vocabulary`'s two methods on the same ~100k short texts.

The corpus is made offline from the embedded `stdlib_docs` text: windows
of 6-24 consecutive words at random offsets of its word stream (seeded), so
the texts are short English prose, mostly distinct, about as long as
dictionary definitions or short reviews. For each vocabulary size, both
methods learn a vocabulary from the same texts in the same process; the
script prints each one's wall-clock and CPU time (after a warm-up run of
both on 1,000 texts), the ratio, the vocabulary sizes, how many tokens
they share, and how each vocabulary tokenizes held-out text
(tokens per text, `[UNK]` share) through the package's tokenizer layer.

    python benchmarks/vocabulary_speed.py
    python benchmarks/vocabulary_speed.py --num_texts=20000 --vocabulary_sizes=4096
    python benchmarks/vocabulary_speed.py --corpus_file=texts.txt  # one text per line
"""

import os
import random
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from keras_pt import data  # noqa: E402
from keras_pt.layers import WordPieceTokenizer, special_tokens  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "TFDS data_dir for stdlib_docs (default: a fresh temp dir).")
flags.DEFINE_string(
    "corpus_file",
    None,
    "A UTF-8 text file with one text per line to time instead of the generated corpus (its first --num_texts lines).",
)
flags.DEFINE_integer("num_texts", 100_000, "Texts in the corpus.")
flags.DEFINE_integer("min_words", 6, "The fewest words of a text.")
flags.DEFINE_integer("max_words", 24, "The most words of a text.")
flags.DEFINE_list(
    "vocabulary_sizes",
    ["8192", "4096", "2000"],
    "Vocabulary sizes to learn (8192: pretrain_minibert's default; 2000: the sentence embedding and MiniGPT recipes').",
)
flags.DEFINE_integer("min_frequency", 2, "learn_vocabulary's min_frequency.")
flags.DEFINE_list("methods", list(data.vocabulary.METHODS), "Methods to time, in this order.")
flags.DEFINE_integer("seed", 0, "Seed of the window offsets.")


def windows(words, num_texts, min_words, max_words, seed):
    """`num_texts` texts of `min_words`..`max_words` consecutive words."""
    rng = random.Random(seed)
    texts = []
    for _ in range(num_texts):
        n = rng.randint(min_words, max_words)
        start = rng.randrange(0, len(words) - n)
        texts.append(" ".join(words[start : start + n]))
    return texts


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()
    data_dir = FLAGS.data_dir or tempfile.mkdtemp(prefix="tfds_")
    if FLAGS.corpus_file:
        with open(FLAGS.corpus_file, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line, _ in zip(f, range(FLAGS.num_texts))]
        origin = FLAGS.corpus_file
    else:
        source = data.load_pretraining_texts("stdlib_docs", data_dir=data_dir)
        words = " ".join(t.decode("utf-8") for t in source.as_numpy_iterator()).split()
        texts = windows(words, FLAGS.num_texts, FLAGS.min_words, FLAGS.max_words, FLAGS.seed)
        origin = f"windows of {len(words):,} words of stdlib_docs (train+unsupervised)"
    print(
        f"corpus: {len(texts):,} texts ({len(set(texts)):,} distinct), "
        f"{np.mean([len(t.split()) for t in texts]):.1f} words per text, "
        f"{len({w.lower() for t in texts for w in t.split()}):,} distinct lowercased "
        f"words; {origin}"
    )
    corpus = tf.data.Dataset.from_tensor_slices(texts)
    heldout = [
        t.decode("utf-8")
        for t, _ in data.load_text_dataset("stdlib_docs", "test", data_dir=data_dir).as_numpy_iterator()
    ]

    # Warm up both (TensorFlow traces the word split once per process).
    for method in FLAGS.methods:
        data.learn_vocabulary(corpus.take(1000), 500, min_frequency=1, method=method)

    for size in [int(v) for v in FLAGS.vocabulary_sizes]:
        print(f"\nvocabulary_size={size}, min_frequency={FLAGS.min_frequency}:")
        seconds, cpu_seconds, vocabularies = {}, {}, {}
        for method in FLAGS.methods:
            start, cpu_start = time.perf_counter(), time.process_time()
            vocabularies[method] = data.learn_vocabulary(corpus, size, min_frequency=FLAGS.min_frequency, method=method)
            seconds[method] = time.perf_counter() - start
            cpu_seconds[method] = time.process_time() - cpu_start
            tokenizer = WordPieceTokenizer(vocabularies[method])  # FastWordpieceTokenizer loads it
            ids = tokenizer(tf.constant(heldout))
            counts = ids.row_lengths().numpy()
            flat = ids.flat_values.numpy()
            print(
                f"  {method:<16} {seconds[method]:7.1f} s ({cpu_seconds[method]:.1f} CPU-s)  "
                f"{len(vocabularies[method]):>6,} tokens; "
                f"stdlib_docs test: {counts.mean():.1f} tokens per text, "
                f"[UNK] {np.mean(flat == special_tokens.UNK_ID):.3%}"
            )
        if len(seconds) == 2:
            old, new = "tensorflow_text", "tokenizers"
            shared = len(set(vocabularies[old]) & set(vocabularies[new]))
            print(
                f"  ratio tensorflow_text / tokenizers: {seconds[old] / seconds[new]:.1f}x "
                f"wall-clock ({seconds[old]:.1f} s vs {seconds[new]:.1f} s), "
                f"{cpu_seconds[old] / cpu_seconds[new]:.1f}x CPU time; shared tokens {shared:,}"
            )


if __name__ == "__main__":
    app.run(main)
