"""Does a short pre-training pay? One budget, one objective, three label draws.

Pre-trains a MiniBERT for `--steps` steps with one objective (masked-LM,
ELECTRA's replaced-token detection, or contrastive crops through
`SentenceEncoder`), then measures it two ways against the same network
with random weights:

- a linear probe: logistic regression on standardised mean-pooled
  features, `--labels_per_class` labels per class, for each label draw;
- `keras_pt.recipes.finetune_minibert` with the recipe's defaults, for
  each label draw (`--finetune_seeds`), which also trains the from-scratch
  arm and TF-IDF + LinearSVC on the same labels.

Prints one JSON line per stage and writes `<out>/result.json`. The figures
of BUILD_NOTES.md ("A second text corpus, and pre-training at small
budgets") came from:

    python benchmarks/text_pretraining_budget.py --dataset=debian_packages \
        --sequence_length=32 --steps=3000 --out=/tmp/a                   # run A
    ... --objective=electra --steps=3000 --out=/tmp/b                    # run B
    ... --batch_size=256 --steps=1000 --learning_rate=2e-3 --dropout=0 \
        --jit_compile --out=/tmp/c                                        # run C
    ... --objective=crop --batch_size=128 --steps=1000 --out=/tmp/d      # run D
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_pt import ElectraPretrainer, MiniBERT, SentenceEncoder, recipes  # noqa: E402
from keras_pt import data as data_lib  # noqa: E402
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer  # noqa: E402
from keras_pt.schedules import WarmupLinearDecay  # noqa: E402
from keras_pt.utils.cooccurrence_embeddings import cooccurrence_embeddings  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "stdlib_docs", "A keras_pt.data.TEXT_DATASETS name.")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_enum("objective", "mlm", ["mlm", "electra", "crop"], "Pre-training objective.")
flags.DEFINE_string("preset", "tiny", "MiniBERT preset.")
flags.DEFINE_integer("sequence_length", 128, "Tokens per packed text.")
flags.DEFINE_integer("vocabulary_size", 8192, "The most WordPiece tokens to learn.")
flags.DEFINE_integer("batch_size", 32, "Pre-training batch size.")
flags.DEFINE_integer("steps", 1000, "Pre-training steps.")
flags.DEFINE_float("learning_rate", 1e-3, "Peak AdamW learning rate (10% warm-up, linear decay).")
flags.DEFINE_float("dropout", 0.1, "Encoder dropout.")
flags.DEFINE_enum(
    "embedding_init",
    "random",
    ["random", "ppmi"],
    "Token embeddings: random, or PPMI + SVD of the corpus's co-occurrence counts.",
)
flags.DEFINE_float("finetune_learning_rate", 1e-3, "finetune_minibert's learning rate.")
flags.DEFINE_bool("jit_compile", False, "Compile the pre-training step with XLA.")
flags.DEFINE_integer("labels_per_class", 20, "Labels per class for the probe and fine-tuning.")
flags.DEFINE_list("probe_seeds", ["0", "1", "2"], "Label draws of the linear probe.")
flags.DEFINE_list("finetune_seeds", ["0", "1", "2"], "Label draws of finetune_minibert.")
flags.DEFINE_string("out", "/tmp/text_pretraining_budget", "Output folder.")


def mean_pooled(model, preprocessor, texts, batch_size=256):
    """Mean of the last layer's token states over the padding mask."""
    features = []
    for batch in texts.batch(batch_size):
        packed = preprocessor(batch)
        states = model.encoder(packed, training=False)["sequence_output"]  # (batch, seq, hidden)
        mask = tf.cast(packed["padding_mask"], states.dtype)[..., None]
        features.append((tf.reduce_sum(states * mask, 1) / tf.reduce_sum(mask, 1)).numpy())
    return np.concatenate(features)


def linear_probe(model, preprocessor, seeds):
    """Test accuracy of logistic regression on the features, per label draw."""
    from sklearn.linear_model import LogisticRegression

    spec = data_lib.text_dataset_spec(FLAGS.dataset)
    train = data_lib.load_text_dataset(FLAGS.dataset, "train", FLAGS.data_dir)
    test = data_lib.load_text_dataset(FLAGS.dataset, "test", FLAGS.data_dir)
    test_labels = np.array([y for _, y in test.as_numpy_iterator()])
    test_features = mean_pooled(model, preprocessor, test.map(lambda x, y: x))
    scores = []
    for seed in seeds:
        subset = data_lib.labeled_text_subset(train, FLAGS.labels_per_class, seed=seed, num_classes=spec.num_classes)
        labels = np.array([y for _, y in subset.as_numpy_iterator()])
        features = mean_pooled(model, preprocessor, subset.map(lambda x, y: x))
        mean, sd = features.mean(0), features.std(0) + 1e-6
        probe = LogisticRegression(C=1.0, max_iter=2000).fit((features - mean) / sd, labels)
        scores.append(float(np.mean(probe.predict((test_features - mean) / sd) == test_labels)))
    return scores


def main(argv):
    del argv
    start = time.time()
    tf.io.gfile.makedirs(FLAGS.out)
    texts = data_lib.load_pretraining_texts(FLAGS.dataset, data_dir=FLAGS.data_dir)
    vocabulary = data_lib.learn_vocabulary(texts, FLAGS.vocabulary_size)
    preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), FLAGS.sequence_length)
    keras.utils.set_random_seed(0)
    bert = MiniBERT.from_preset(
        FLAGS.preset,
        preprocessor=preprocessor,
        max_sequence_length=FLAGS.sequence_length,
        dropout=FLAGS.dropout,
        seed=0,
    )
    bert.compile(optimizer="adam")  # for the held-out masked-LM accuracy
    if FLAGS.embedding_init == "ppmi":
        began = time.time()
        ids = [b["token_ids"] for b in texts.batch(1024).map(preprocessor).as_numpy_iterator()]
        vectors = cooccurrence_embeddings(ids, len(vocabulary), bert.hidden_dim)
        bert.embedding.token_embeddings.assign(vectors)
        print(json.dumps({"ppmi_seconds": time.time() - began}), flush=True)
    trainer = bert
    if FLAGS.objective == "electra":
        trainer = ElectraPretrainer(bert, seed=0)
    elif FLAGS.objective == "crop":
        trainer = SentenceEncoder(
            bert.encoder, pooling="mean", temperature=0.05, views="crop", crop_ratio=(0.3, 0.7), seed=0
        )
    schedule = WarmupLinearDecay(FLAGS.learning_rate, max(FLAGS.steps, 1), int(0.1 * FLAGS.steps))
    trainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, epsilon=1e-6),
        jit_compile=True if FLAGS.jit_compile else "auto",
    )
    batches = (
        texts.shuffle(100_000, seed=0, reshuffle_each_iteration=True)
        .repeat()
        .batch(FLAGS.batch_size, drop_remainder=True)
        .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(4)
    )
    began = time.time()
    if FLAGS.steps:
        trainer.fit(batches, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
    result = {"pretrain_seconds": time.time() - began}
    heldout = (
        data_lib.load_text_dataset(FLAGS.dataset, "test", FLAGS.data_dir)
        .map(lambda x, y: x)
        .batch(64)
        .map(preprocessor)
    )
    evaluated = (bert if FLAGS.objective == "crop" else trainer).evaluate(heldout, verbose=0, return_dict=True)
    result["heldout"] = {k: float(v) for k, v in evaluated.items()}
    print(json.dumps(result), flush=True)
    bert.save(os.path.join(FLAGS.out, "mini_bert.keras"))

    seeds = [int(s) for s in FLAGS.probe_seeds]
    random_bert = MiniBERT.from_config(bert.get_config())
    result["probe"] = {
        "pretrained": linear_probe(bert, preprocessor, seeds),
        "random": linear_probe(random_bert, preprocessor, seeds),
    }
    print(json.dumps({"probe": result["probe"]}), flush=True)

    result["finetune"] = []
    for seed in [int(s) for s in FLAGS.finetune_seeds]:
        tuned = recipes.finetune_minibert(
            bert,
            dataset=FLAGS.dataset,
            data_dir=FLAGS.data_dir,
            model_dir=os.path.join(FLAGS.out, f"finetune_{seed}"),
            labels_per_class=FLAGS.labels_per_class,
            learning_rate=FLAGS.finetune_learning_rate,
            seed=seed,
            export=False,
            baseline_draws=1,
            verbose=0,
        )
        row = {
            "seed": seed,
            "test": tuned.accuracy,
            "validation": tuned.validation_accuracy,
            "tfidf_svm": tuned.baselines["tfidf_svm"]["test"],
        }
        result["finetune"].append(row)
        print(json.dumps(row), flush=True)
    for arm in ("pretrained", "from_scratch"):
        values = [row["test"][arm] for row in result["finetune"]]
        if values:
            print(f"{arm:<13} {np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}")
    values = [row["tfidf_svm"] for row in result["finetune"]]
    if values:
        print(f"{'tfidf_svm':<13} {np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}")
    result["seconds"] = time.time() - start
    with tf.io.gfile.GFile(os.path.join(FLAGS.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
