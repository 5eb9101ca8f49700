"""MiniBERT pre-training (`pretrain_minibert`).

Learns a WordPiece vocabulary from a text corpus, builds a `MiniBERT` (a
preset shape, a fixed `sequence_length`) whose token embeddings start as
the corpus's co-occurrence vectors (PPMI + SVD, the default), optionally
pre-trains it by masked-LM, ELECTRA or contrastive crops, and saves it as
a `.keras` file with its preprocessor (and so its vocabulary) inside,
beside the unigram baseline's held-out accuracy.
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from keras_pt import data as data_lib
from keras_pt import special_tokens
from keras_pt.models.electra_pretrainer import ElectraPretrainer
from keras_pt.models.mini_bert import PRESETS, MiniBERT
from keras_pt.models.sentence_encoder import SentenceEncoder
from keras_pt.recipes.context import RunConfig, RunContext, local_copy, resolve_config
from keras_pt.recipes.text_common import (
    build_preprocessor,
    check_positive,
    heldout_split,
    write_vocabulary,
)
from keras_pt.schedules import WarmupLinearDecay
from keras_pt.utils.cooccurrence_embeddings import cooccurrence_embeddings

MODEL_FILENAME = "mini_bert.keras"
ELECTRA_FILENAME = "electra.keras"
OBJECTIVES = ("mlm", "electra", "crops")
EMBEDDING_INITS = ("random", "ppmi")
# Contrastive crops: the share of a text's tokens each view keeps, and the
# InfoNCE temperature (see BUILD_NOTES, "pre-training at small budgets").
CROP_RATIO = (0.3, 0.7)
CROP_TEMPERATURE = 0.05


def ordinary_token_ids(packed_batches):
    """Ids of the real, non-special tokens of a packed data set (what MLM can select)."""
    ids = [batch["token_ids"][batch["padding_mask"].astype(bool)] for batch in packed_batches.as_numpy_iterator()]
    ids = np.concatenate(ids) if ids else np.zeros((0,), np.int32)
    return ids[ids >= special_tokens.NUM_SPECIAL_TOKENS]


def unigram_baseline(preprocessor, train_texts, heldout_texts, batch_size=64):
    """The masked-LM accuracy of always predicting the most frequent token.

    Counts the ordinary tokens (not special, not padding: the ones masking
    selects from) of `train_texts`, picks the most frequent, and returns its
    share of the ordinary tokens of `heldout_texts` — the expected accuracy
    of that constant guess at uniformly selected masked positions.

    Returns:
        `(token, accuracy)`: the token string and the held-out accuracy.
    """
    train_ids = ordinary_token_ids(train_texts.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE))
    heldout_ids = ordinary_token_ids(
        heldout_texts.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    )
    if not len(train_ids) or not len(heldout_ids):
        raise ValueError("the texts hold no ordinary tokens to count.")
    top = int(np.argmax(np.bincount(train_ids)))
    return preprocessor.tokenizer.id_to_token(top), float(np.mean(heldout_ids == top))


@dataclasses.dataclass
class PretrainResult:
    """What `pretrain_minibert` measured and wrote.

    Attributes:
        model_path: str. The pre-trained `MiniBERT` (`.keras`, preprocessor
            and vocabulary inside).
        vocabulary_size: int. Tokens learned (special tokens included).
        mlm_accuracy: float. Masked-LM accuracy on the held-out test text.
        unigram_accuracy: float. Accuracy of always predicting
            `unigram_token` (the most frequent training token) there.
        unigram_token: str.
        steps: int. Optimizer steps taken.
        objective: str. `"mlm"`, `"electra"` (then `mlm_accuracy` is the
            generator's, and `rtd_accuracy` the discriminator's share of
            tokens correctly called original or replaced) or `"crops"`
            (no masked-LM: `mlm_accuracy` is NaN).
        seconds: float. Wall-clock time of the whole job.
        files: dict of the paths written (model, vocabulary, TensorBoard logs).
    """

    model_path: str
    vocabulary_size: int
    mlm_accuracy: float
    unigram_accuracy: float
    unigram_token: str
    steps: int
    seconds: float
    files: dict
    objective: str = "mlm"
    rtd_accuracy: object = None


@dataclasses.dataclass
class PretrainMiniBERTConfig(RunConfig):
    """Settings of `pretrain_minibert` (see its arguments)."""

    dataset: object = "stdlib_docs"
    model_dir: str = "runs/pretrain_minibert"
    preset: str = "tiny"
    objective: str = "mlm"
    embedding_init: str = "ppmi"
    sequence_length: int = 128
    vocabulary_size: int = 8192
    vocabulary: object = None
    steps: int = 0
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1


def _check_settings(c):
    check_positive(sequence_length=c.sequence_length, batch_size=c.batch_size)
    if c.steps < 0 or (c.steps == 0 and c.embedding_init != "ppmi"):
        raise ValueError(
            f"steps must be a positive int (or 0 with embedding_init='ppmi': the co-occurrence "
            f"vectors alone); got {c.steps} with embedding_init={c.embedding_init!r}."
        )
    if not 0.0 <= c.warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must lie in [0, 1); got {c.warmup_fraction}.")
    if c.preset not in PRESETS:
        raise ValueError(f"unknown MiniBERT preset {c.preset!r}; choose one of {', '.join(PRESETS)}.")
    if c.embedding_init not in EMBEDDING_INITS:
        raise ValueError(f"unknown embedding_init {c.embedding_init!r}; choose one of {', '.join(EMBEDDING_INITS)}.")
    if c.objective not in OBJECTIVES:
        raise ValueError(f"unknown pre-training objective {c.objective!r}; choose one of {', '.join(OBJECTIVES)}.")


def _build_pretrainer(c, preprocessor, token_vectors=None):
    """`(MiniBERT, the compiled model that pre-trains it)` for `c.objective`,
    the MiniBERT's token embeddings set to `token_vectors` if given."""
    bert = MiniBERT.from_preset(
        c.preset,
        preprocessor=preprocessor,
        max_sequence_length=c.sequence_length,
        dropout=c.dropout,
        seed=c.seed,
    )
    if token_vectors is not None:
        bert.embedding.token_embeddings.assign(token_vectors)
    model = bert
    if c.objective == "electra":
        model = ElectraPretrainer(bert, seed=c.seed)
    elif c.objective == "crops":
        bert.compile()  # the held-out masked-LM evaluation needs it
        model = SentenceEncoder(
            bert.encoder,
            pooling="mean",
            temperature=CROP_TEMPERATURE,
            views="crop",
            crop_ratio=CROP_RATIO,
            seed=c.seed,
        )
    schedule = WarmupLinearDecay(c.learning_rate, max(c.steps, 1), int(c.warmup_fraction * c.steps))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=c.weight_decay, epsilon=1e-6))
    return bert, model


def pretrain_minibert(config=None, **overrides):
    """Learns a vocabulary, pre-trains a MiniBERT by masked-LM and saves it.

    The vocabulary is learned (`keras_pt.data.learn_vocabulary`) from the
    data set's pre-training text (`load_pretraining_texts`: for
    `stdlib_docs`, `train+unsupervised`, which holds no validation or test
    text), which also feeds pre-training: `steps` AdamW steps of
    `batch_size` texts packed to `sequence_length` tokens on the host, the
    learning rate warming up linearly over `warmup_fraction` of the steps,
    then decaying linearly to 0 (BERT's schedule). Masking is dynamic (fresh
    each step, in `MiniBERT.train_step`). Training runs through
    `keras_pt.training.train`, so it works under every strategy (the
    `strategy.run` loop under `multi_worker`), checkpoints under
    `model_dir/pretrain` and resumes from there when run again with the
    same settings (other settings are refused). The
    masked-LM accuracy on the held-out test text is then compared with the
    unigram baseline (`unigram_baseline`).

    Args:
        config: `PretrainMiniBERTConfig` or None. The settings; keyword
            arguments override its fields (the defaults without one).
        dataset: a TFDS name (`keras_pt.data.TEXT_DATASETS`, the embedded
            `"stdlib_docs"` by default), a text file or folder, or a
            `keras_pt.data.TextData` (`keras_pt.data.load_texts`).
        data_dir: str or None. TFDS data directory.
        strategy: str or `tf.distribute.Strategy`. A `keras_pt.get_strategy`
            name.
        tpu: str or None. TPU name or address (`"tpu"`/`"auto"`).
        model_dir: str. Where `mini_bert.keras` (and its `.sha256`),
            `vocabulary.txt`, `settings.json`, the checkpoints
            (`pretrain/`) and the TensorBoard logs (`logs/pretrain`) go; a
            local, `gs://` or other `tf.io.gfile` path.
        preset: str. `MiniBERT.from_preset` name: `"tiny"`, `"mini"` or
            `"small"`.
        objective: str. `"mlm"` (masked-LM, the default) or `"electra"`
            (`keras_pt.ElectraPretrainer`: a 1-block generator fills the
            masked positions and the MiniBERT learns to tell replaced
            tokens; the MiniBERT is saved as `mini_bert.keras`, the whole
            pre-trainer as `electra.keras`) or `"crops"` (contrastive:
            `keras_pt.SentenceEncoder(views="crop")` on the MiniBERT's
            encoder, two random spans of 30-70% of each text matched
            against the rest of the batch, mean pooling, temperature
            0.05; the MiniBERT is saved, its masked-LM head untrained).
        embedding_init: str. `"ppmi"` (the default): the token embeddings
            start as the corpus's co-occurrence vectors
            (`keras_pt.utils.cooccurrence_embeddings`: PPMI of tokens
            sharing a packed text, truncated SVD to `hidden_dim`; seconds
            on the host), so the encoder knows which tokens share topics
            before its first step; or `"random"` (BERT's truncated normal).
        sequence_length: int. Tokens per packed text, `[CLS]`/`[SEP]`
            included; longer texts are truncated.
        vocabulary_size: int. The most WordPiece tokens to learn. A small
            corpus may give fewer (merged pairs must be seen twice):
            `stdlib_docs` offers about 7,500.
        vocabulary: list of str, str or None. A vocabulary (or the path of
            a file with one token per line, e.g. the `vocabulary.txt` of an
            earlier run) to use instead of learning one; it must start with
            the special tokens. Defaults to None (learn `vocabulary_size`
            tokens).
        batch_size: int. Global batch size.
        steps: int. Optimizer steps (an epoch is one pass over the text).
            0 (the default, with `embedding_init="ppmi"`): the
            co-occurrence vectors alone, no gradient step (the rest of the
            network random, `mlm_accuracy` NaN): what measured best at
            budgets of minutes (BUILD_NOTES, "Token embeddings from co-occurrence counts").
        learning_rate: float. Peak AdamW learning rate.
        warmup_fraction: float. Share of `steps` spent warming up.
        weight_decay: float. AdamW weight decay.
        dropout: float. Dropout of the encoder.
        mixed_precision: str or None. `"mixed_bfloat16"` (TPUs) or
            `"mixed_float16"` (GPUs); None keeps float32.
        scale_batch_size: bool. Multiply the batch size and learning rate
            by the number of replicas.
        checkpoint_every: int or None. Steps between checkpoints. Defaults
            to once per epoch.
        restart_from_healthy: bool. After a `NonFiniteLossError`, continue
            from the last healthy checkpoint with these settings.
        seed: int. Seed of the weights, the data order and the masks.
        verbose: int. Keras verbosity (1: progress bars).

    Returns:
        A `PretrainResult`.

    Raises:
        ValueError: for an unknown data set, preset or strategy, or
            non-positive sizes.
    """
    config = resolve_config(PretrainMiniBERTConfig, config, overrides)
    c = config
    _check_settings(c)
    start = time.perf_counter()
    ctx = RunContext("pretrain_minibert", config)

    # Learn the vocabulary from the pre-training text
    texts, preprocessor = build_preprocessor(
        c.dataset, c.data_dir, c.vocabulary, c.vocabulary_size, None, c.sequence_length
    )
    vocabulary = preprocessor.tokenizer.get_vocabulary()
    vocabulary_path = write_vocabulary(ctx, preprocessor)

    # Held-out text and the unigram baseline on it
    # (the test split's texts; for unlabelled text, its held-out share)
    test_texts = data_lib.load_pretraining_texts(c.dataset, heldout_split(c.dataset), c.data_dir)
    test = data_lib.preprocess_text_dataset(
        test_texts, preprocessor, min(c.batch_size, data_lib.count_examples(test_texts))
    ).cache()
    unigram_token, unigram_accuracy = unigram_baseline(preprocessor, texts, test_texts)

    # Token vectors from the corpus's co-occurrence counts
    token_vectors = None
    if c.embedding_init == "ppmi":
        token_vectors = corpus_token_vectors(texts, preprocessor, PRESETS[c.preset]["hidden_dim"], seed=c.seed)

    # Pre-train by masked-LM (or replaced-token detection, or crops)
    bert = {}  # the MiniBERT that build() makes, whatever trains it

    def build():  # in the strategy's scope
        bert["model"], model = _build_pretrainer(c, preprocessor, token_vectors)
        return model

    def dataset_fn(epoch, batch_size, seed):  # the same (epoch, seed), the same batches
        batches = data_lib.epoch_batches(texts, batch_size, seed, epoch)
        return batches.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    if c.steps:
        trained = ctx.train(
            "pretrain",
            build,
            dataset_fn,
            batch_size=c.batch_size,
            steps=c.steps,
            scale_batch_size=ctx.scale_batch_size,
            scale_learning_rate=ctx.scale_batch_size,
            checkpoint_every=ctx.checkpoint_every,
        )
        model, steps_taken = trained.model, trained.step
    else:  # the co-occurrence vectors alone, no gradient step
        with ctx.strategy.scope():
            model = build()
        steps_taken = 0
    files = {}
    rtd_accuracy = None
    if c.objective == "electra":
        files["electra"] = ctx.save_model(model, ctx.path(ELECTRA_FILENAME))
        rtd_accuracy = mlm_accuracy(model, test, key="rtd_accuracy")
    model_path = ctx.save_model(bert["model"], ctx.path(MODEL_FILENAME))
    files.update({"model": model_path, "vocabulary": vocabulary_path, "logs": ctx.path("logs")})
    return PretrainResult(
        model_path=model_path,
        vocabulary_size=len(vocabulary),
        mlm_accuracy=(float("nan") if c.objective == "crops" or not steps_taken else mlm_accuracy(model, test)),
        unigram_accuracy=unigram_accuracy,
        unigram_token=unigram_token,
        steps=steps_taken,
        seconds=time.perf_counter() - start,
        files=files,
        objective=c.objective,
        rtd_accuracy=rtd_accuracy,
    )


def corpus_token_vectors(texts, preprocessor, dim, seed=0, batch_size=1024):
    """`cooccurrence_embeddings` of the packed `texts`: `(vocabulary_size, dim)` float32."""
    ids = [
        batch["token_ids"]
        for batch in texts.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator()
    ]
    return cooccurrence_embeddings(ids, preprocessor.tokenizer.vocabulary_size(), dim, seed=seed)


def mlm_accuracy(model, packed, repeats=3, key="mlm_accuracy"):
    """Held-out masked-LM accuracy (or another logged `key`), over
    `repeats` fresh maskings.

    Evaluated on a copy of the model rebuilt outside the strategy
    (`local_copy`: correct under every strategy, `multi_worker` included),
    whose seed state is a copy too: evaluating does not change the masks of
    later training.
    """
    copy = local_copy(model)
    return float(np.mean([copy.evaluate(packed, verbose=0, return_dict=True)[key] for _ in range(repeats)]))
