"""Contrastive sentence embeddings and pair retrieval (`train_sentence_embeddings`)."""

import dataclasses
import time

import keras

from keras_pt import data as data_lib
from keras_pt import evaluation
from keras_pt.evaluation.text_baselines import tfidf_retrieval_accuracy
from keras_pt.models.mini_bert import PRESETS, MiniBERT
from keras_pt.models.sentence_encoder import SentenceEncoder
from keras_pt.recipes.context import RunContext, resolve_config
from keras_pt.recipes.minibert_pretraining import EMBEDDING_INITS, corpus_token_vectors
from keras_pt.recipes.text_common import (
    SmallTextModelConfig,
    build_preprocessor,
    heldout_split,
    model_shape,
    steps_per_epoch,
    text_batches,
    write_vocabulary,
)

MODEL_FILENAME = "sentence_encoder.keras"


@dataclasses.dataclass
class SentenceEmbeddingResult:
    """What `train_sentence_embeddings` measured.

    Attributes:
        accuracy: float. Held-out pair retrieval accuracy of the trained
            embeddings: a pair's first text (a first sentence; a
            `debian_packages` description) finds its own partner (the
            remainder; the package's tags as words) among `num_candidates`
            candidates.
        untrained_accuracy: float. The same for the encoder before
            contrastive training (after MLM pre-training, if any).
        tfidf_accuracy: float. The same for TF-IDF bag-of-words vectors
            (a lexical baseline, fitted on the held-out texts).
        chance: float. `1 / num_candidates`.
        num_candidates: int.
        num_pairs: int. Held-out pairs, without repeated texts (see
            `keras_pt.data.distinct_pairs`).
        examples: list of `(query, [(text, cosine), ...])` nearest-neighbour
            searches over the held-out candidates.
        seconds: float.
        files: dict of the paths written.
    """

    accuracy: float
    untrained_accuracy: float
    tfidf_accuracy: float
    chance: float
    num_candidates: int
    num_pairs: int
    examples: list
    seconds: float
    files: dict

    def table(self, trained_name="trained embeddings"):
        """Held-out retrieval accuracy of the embeddings and the baselines as text."""
        rows = [
            (trained_name, self.accuracy),
            ("encoder before training", self.untrained_accuracy),
            ("TF-IDF cosine", self.tfidf_accuracy),
            (f"chance (1/{self.num_candidates})", self.chance),
        ]
        width = max(len(name) for name, _ in rows) + 2
        lines = [f"{'embeddings':<{width}}{'top-1':>7}", "-" * (width + 7)]
        lines += [f"{name:<{width}}{value:>7.3f}" for name, value in rows]
        return "\n".join(lines)


@dataclasses.dataclass
class SentenceEmbeddingConfig(SmallTextModelConfig):
    """Settings of `train_sentence_embeddings` (see its arguments)."""

    model_dir: str = "runs/sentence_embeddings"
    objective: str = "supervised"
    mlm_steps: int = 0
    embedding_init: str = "ppmi"
    temperature: float = 0.05
    pooling: str = "mean"
    num_candidates: int = 32
    views: str = "crop"


def _heldout_pairs(c):
    """`(queries, candidates)`: the held-out split's pairs, each text once.

    A repeated query or candidate text (packages sharing one tag set) would
    have more than one right answer, so only the first pair of each text is
    kept (`keras_pt.data.distinct_pairs`).
    """
    heldout = list(data_lib.load_sentence_pairs(c.dataset, heldout_split(c.dataset), c.data_dir).as_numpy_iterator())
    queries, candidates = data_lib.distinct_pairs(
        [a.decode("utf-8") for a, _ in heldout], [b.decode("utf-8") for _, b in heldout]
    )
    if len(queries) < c.num_candidates:
        raise ValueError(
            f"only {len(queries)} held-out pairs with distinct texts, fewer than "
            f"num_candidates={c.num_candidates}; lower num_candidates."
        )
    return queries, candidates


def _build(c, preprocessor, strategy, token_vectors=None):
    """`(bert, embedder)`: a MiniBERT (compiled for masked-LM when
    `mlm_steps`; its token embeddings `token_vectors` when given) and the
    compiled `SentenceEncoder` on its encoder."""
    with strategy.scope():
        bert = MiniBERT.from_preset(
            c.preset,
            vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
            **model_shape(c.hidden_dim, c.num_layers, c.dropout, c.sequence_length),
        )
        if token_vectors is not None:
            bert.embedding.token_embeddings.assign(token_vectors)
        embedder = SentenceEncoder(
            bert.encoder,
            pooling=c.pooling,
            temperature=c.temperature,
            preprocessor=preprocessor,
            views=c.views,
            seed=c.seed,
        )
        embedder.compile(optimizer=keras.optimizers.Adam(c.learning_rate))
        if c.mlm_steps:
            bert.compile(optimizer=keras.optimizers.AdamW(c.learning_rate, weight_decay=0.01))
    return bert, embedder


def _check_settings(c):
    if c.objective not in ("supervised", "unsupervised"):
        raise ValueError(
            f"unknown objective {c.objective!r}; choose 'supervised' (first sentence vs "
            "remainder pairs) or 'unsupervised' (two views of each text, see views=)."
        )
    if c.embedding_init not in EMBEDDING_INITS:
        raise ValueError(f"unknown embedding_init {c.embedding_init!r}; choose one of {', '.join(EMBEDDING_INITS)}.")


def train_sentence_embeddings(config=None, **overrides):
    """Trains contrastive sentence embeddings on a MiniBERT encoder; pair retrieval.

    Training pairs are `keras_pt.data.load_sentence_pairs` of the
    pre-training split: `(first sentence, remainder)` of each text, or the
    data set's `pair_features` (`debian_packages`: a package's description
    and its debtags as words); held-out pairs come from the held-out split,
    each query and candidate text once. `objective="supervised"` trains on
    the pairs; `"unsupervised"` contrasts two views of each raw pre-training
    text: two random crops (`views="crop"`) or the text under two dropouts
    (`views="dropout"`, SimCSE). With `mlm_steps > 0` the MiniBERT is first
    pre-trained by masked-LM on the same texts.

    Args:
        config: `SentenceEmbeddingConfig` or None. The settings; keyword
            arguments override its fields (the defaults without one).
        objective: str. `"supervised"` or `"unsupervised"`.
        mlm_steps: int. Masked-LM pre-training steps first. Defaults to 0.
        embedding_init: str. `"ppmi"` (the default, see above) or
            `"random"`.
        views: str. The unsupervised objective's views, `"crop"` or
            `"dropout"` (see `SentenceEncoder`). Defaults to `"crop"`.
        num_candidates: int. Candidates per retrieval query (chance is
            `1 / num_candidates`).
        Others: as in `pretrain_minigpt`; `temperature` and `pooling` as in
            `SentenceEncoder`.

    Returns:
        A `SentenceEmbeddingResult`.
    """
    config = resolve_config(SentenceEmbeddingConfig, config, overrides)
    c = config
    _check_settings(c)
    start = time.perf_counter()
    ctx = RunContext("train_sentence_embeddings", config)
    strategy = ctx.strategy
    texts, preprocessor = build_preprocessor(
        c.dataset, c.data_dir, c.vocabulary, c.vocabulary_size, c.vocabulary_texts, c.sequence_length
    )
    pretraining_split = data_lib.text_dataset_spec(c.dataset).pretraining_split
    pairs = data_lib.load_sentence_pairs(c.dataset, pretraining_split, c.data_dir)
    queries, candidates = _heldout_pairs(c)
    token_vectors = None
    if c.embedding_init == "ppmi":
        hidden_dim = c.hidden_dim or PRESETS[c.preset]["hidden_dim"]
        token_vectors = corpus_token_vectors(texts, preprocessor, hidden_dim, seed=c.seed)
    bert, embedder = _build(c, preprocessor, strategy, token_vectors)
    common = dict(
        batch_size=c.batch_size,
        scale_batch_size=ctx.scale_batch_size,
        scale_learning_rate=ctx.scale_batch_size,
        checkpoint_every=ctx.checkpoint_every,
    )
    text_steps = steps_per_epoch(texts, c.batch_size)
    if c.mlm_steps:
        # Masked-LM first, on the same texts; the encoder is shared.
        ctx.train(
            "mlm",
            lambda: bert,
            text_batches(texts, lambda batch: preprocessor(batch)),
            steps=c.mlm_steps,
            steps_per_epoch=text_steps,
            **common,
        )

    def accuracy():
        return evaluation.retrieval_accuracy(
            embedder.embed(queries), embedder.embed(candidates), c.num_candidates, seed=c.seed
        )

    untrained = accuracy()
    if c.objective == "supervised":
        dataset_fn = text_batches(pairs, lambda a, b: (preprocessor(a), preprocessor(b)))
        epoch_steps = steps_per_epoch(pairs, c.batch_size)
    else:
        dataset_fn = text_batches(texts, lambda batch: preprocessor(batch))
        epoch_steps = text_steps
    # Contrastive training continues from these weights (and the masked-LM
    # pre-training, if any): a build function handing over this model.
    embedder = ctx.train(
        "contrastive",
        lambda: embedder,
        dataset_fn,
        steps=c.steps,
        steps_per_epoch=epoch_steps,
        **common,
    ).model
    trained = accuracy()

    index = embedder.build_index(candidates)
    examples = [(q, embedder.search(q, index, k=1)[0]) for q in queries[:3]]
    files = {
        "model": ctx.save_model(embedder, ctx.path(MODEL_FILENAME)),
        "vocabulary": write_vocabulary(ctx, preprocessor),
    }
    return SentenceEmbeddingResult(
        accuracy=trained,
        untrained_accuracy=untrained,
        tfidf_accuracy=tfidf_retrieval_accuracy(queries, candidates, c.num_candidates, c.seed),
        chance=1.0 / c.num_candidates,
        num_candidates=c.num_candidates,
        num_pairs=len(queries),
        examples=examples,
        seconds=time.perf_counter() - start,
        files=files,
    )
