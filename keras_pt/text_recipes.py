"""End-to-end text recipes that the example binaries call.

`pretrain_minigpt` pre-trains the causal LM `MiniGPT` on a text corpus and
measures its held-out perplexity against the unigram perplexity;
`train_sentence_embeddings` trains a `SentenceEncoder` on a `MiniBERT`
encoder with in-batch negatives and measures pair retrieval against
chance. Both learn a WordPiece vocabulary from the pre-training text first
(or take a given one), write it to `vocabulary.txt` and save the trained
model (tokenizer included) as a `.keras` file.
"""

import dataclasses
import os
import time

import keras
import tensorflow as tf

from keras_pt import data as data_lib
from keras_pt import distribute
from keras_pt import evaluation, training
from keras_pt.evaluation.text_baselines import tfidf_retrieval_accuracy
from keras_pt.layers.mini_bert_preprocessor import MiniBERTPreprocessor
from keras_pt.layers.wordpiece_tokenizer import WordPieceTokenizer
from keras_pt.models.mini_bert import MiniBERT
from keras_pt.models.mini_gpt import MiniGPT
from keras_pt.models.sentence_encoder import SentenceEncoder

DEFAULT_PROMPTS = ("Return the", "This module", "Raise an exception if")


def heldout_split(name):
    """The held-out split of a text data set: `test` if it has labels, else the last labelled split."""
    spec = data_lib.text_dataset_spec(name)
    return "test" if "test" in spec.labeled_splits else spec.labeled_splits[-1]


def _preprocessor(dataset, data_dir, vocabulary, vocabulary_size, vocabulary_texts, sequence_length):
    texts = data_lib.load_pretraining_texts(dataset, data_dir=data_dir)
    if vocabulary is None:
        vocabulary = data_lib.learn_vocabulary(texts, vocabulary_size, max_texts=vocabulary_texts)
    elif isinstance(vocabulary, str) and not tf.io.gfile.exists(vocabulary):
        raise ValueError(
            f"vocabulary file {vocabulary!r} does not exist; pass a file with one "
            "token per line (e.g. the vocabulary.txt of an earlier run), or leave "
            "it unset to learn a vocabulary."
        )
    preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), sequence_length)
    return texts, preprocessor


def _write_vocabulary(preprocessor, model_dir):
    path = os.path.join(model_dir, "vocabulary.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(token + "\n" for token in preprocessor.tokenizer.get_vocabulary())
    return path


def _shape(hidden_dim, num_layers, dropout, sequence_length):
    shape = {"max_sequence_length": sequence_length, "dropout": dropout}
    if hidden_dim is not None:
        shape.update(hidden_dim=hidden_dim, num_heads=max(1, hidden_dim // 64), intermediate_dim=4 * hidden_dim)
    if num_layers is not None:
        shape["num_layers"] = num_layers
    return shape


@dataclasses.dataclass
class MiniGPTResult:
    """What `pretrain_minigpt` measured.

    Attributes:
        perplexity: float. Held-out perplexity of the trained model.
        initial_perplexity: float. The same for the untrained model.
        unigram_perplexity: float. Held-out perplexity of the add-one
            unigram model of the training targets (the context-free baseline).
        vocabulary_size: int.
        samples: dict mapping each prompt to its greedy and top-k
            continuations.
        seconds: float. Wall-clock time of the whole job.
        files: dict of the paths written.
    """

    perplexity: float
    initial_perplexity: float
    unigram_perplexity: float
    vocabulary_size: int
    samples: dict
    seconds: float
    files: dict


def _text_batches(dataset, pack):
    """A `keras_pt.training.train` data set function: the `(seed, epoch)`
    shuffle of an unbatched text data set, batched and packed on the host."""

    def dataset_fn(epoch, batch_size, seed):
        batches = data_lib.epoch_batches(dataset, batch_size, seed, epoch)
        return batches.map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    return dataset_fn


def _steps_per_epoch(dataset, batch_size):
    """Full batches in one pass (filtered data sets have no known length)."""
    n = data_lib.count_examples(dataset)
    if n < batch_size:
        raise ValueError(
            f"the data set has {n} examples, fewer than batch_size={batch_size}; "
            "lower the batch size."
        )
    return n // batch_size


def pretrain_minigpt(
    dataset="stdlib_docs",
    data_dir=None,
    strategy="auto",
    model_dir="runs/pretrain_minigpt",
    preset="tiny",
    hidden_dim=None,
    num_layers=None,
    vocabulary=None,
    vocabulary_size=2000,
    vocabulary_texts=None,
    sequence_length=64,
    batch_size=32,
    steps=300,
    learning_rate=1e-3,
    dropout=0.1,
    prompts=DEFAULT_PROMPTS,
    top_k=10,
    seed=0,
    verbose=0,
):
    """Pre-trains a MiniGPT and compares its held-out perplexity with a unigram model.

    Learns a vocabulary from the data set's pre-training text
    (`load_pretraining_texts`), trains for `steps` steps of `batch_size`
    packed texts (`[CLS] text [SEP]`, truncated to `sequence_length`),
    evaluates perplexity on the held-out split (`heldout_split`: `test` for
    `stdlib_docs`, whose text never enters pre-training), and continues the
    prompts greedily and with top-k sampling.

    Args:
        preset: str. A `MiniGPT.from_preset` name. `hidden_dim` /
            `num_layers` override its shape (heads = hidden / 64,
            intermediate = 4 · hidden).
        vocabulary: list of str, str or None. A vocabulary (or the path
            of a file with one token per line) to use instead of learning
            one; it must start with the special tokens. Defaults to None
            (learn `vocabulary_size` tokens).
        vocabulary_texts: int or None. Learn the vocabulary from at most
            this many texts. Defaults to None: all of them.
        verbose: int. Keras verbosity of `fit`.
        Others: as their names say; `strategy` is a
            `keras_pt.get_strategy` name.

    Returns:
        A `MiniGPTResult`.
    """
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    strategy = distribute.get_strategy(strategy)
    os.makedirs(model_dir, exist_ok=True)
    texts, preprocessor = _preprocessor(
        dataset, data_dir, vocabulary, vocabulary_size, vocabulary_texts, sequence_length
    )
    heldout_texts = data_lib.load_pretraining_texts(dataset, heldout_split(dataset), data_dir)
    heldout = data_lib.preprocess_text_dataset(heldout_texts, preprocessor, batch_size).cache()
    size = preprocessor.tokenizer.vocabulary_size()
    unigram = evaluation.unigram_perplexity(
        evaluation.next_token_counts(
            data_lib.preprocess_text_dataset(texts, preprocessor, batch_size), size
        ),
        evaluation.next_token_counts(heldout, size),
    )

    def build():  # in the strategy's scope
        model = MiniGPT.from_preset(
            preset,
            preprocessor=preprocessor,
            **_shape(hidden_dim, num_layers, dropout, sequence_length),
        )
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01))
        return model

    # The same seed builds the initial weights that training starts from.
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        initial = build().evaluate(heldout, verbose=0, return_dict=True)["perplexity"]
    model = training.train(
        build,
        _text_batches(texts, lambda batch: preprocessor(batch)),
        batch_size=batch_size,
        steps=steps,
        steps_per_epoch=_steps_per_epoch(texts, batch_size),
        strategy=strategy,
        model_dir=model_dir,
        seed=seed,
        verbose=verbose,
    ).model
    perplexity = model.evaluate(heldout, verbose=0, return_dict=True)["perplexity"]

    greedy = model.generate(list(prompts), max_length=sequence_length, strategy="greedy")
    sampled = model.generate(
        list(prompts), max_length=sequence_length, strategy="top_k", top_k=top_k, seed=seed
    )
    samples = {p: {"greedy": g, "top_k": s} for p, g, s in zip(prompts, greedy, sampled, strict=True)}
    files = {
        "model": os.path.join(model_dir, "minigpt.keras"),
        "samples": os.path.join(model_dir, "samples.txt"),
        "vocabulary": _write_vocabulary(preprocessor, model_dir),
    }
    model.save(files["model"])
    with open(files["samples"], "w") as f:
        for prompt, outputs in samples.items():
            f.write(f"{prompt!r}\n  greedy: {outputs['greedy']}\n  top-{top_k}: {outputs['top_k']}\n")
    return MiniGPTResult(
        perplexity=float(perplexity),
        initial_perplexity=float(initial),
        unigram_perplexity=unigram,
        vocabulary_size=size,
        samples=samples,
        seconds=time.perf_counter() - start,
        files=files,
    )


@dataclasses.dataclass
class SentenceEmbeddingResult:
    """What `train_sentence_embeddings` measured.

    Attributes:
        accuracy: float. Held-out pair retrieval accuracy of the trained
            embeddings: a first sentence finds its own remainder among
            `num_candidates` candidates.
        untrained_accuracy: float. The same for the encoder before
            contrastive training (after MLM pre-training, if any).
        tfidf_accuracy: float. The same for TF-IDF bag-of-words vectors
            (a lexical baseline, fitted on the held-out texts).
        chance: float. `1 / num_candidates`.
        num_candidates: int.
        num_pairs: int. Held-out pairs.
        examples: list of `(query, [(text, cosine), ...])` nearest-neighbour
            searches over the held-out remainders.
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


def train_sentence_embeddings(
    dataset="stdlib_docs",
    data_dir=None,
    strategy="auto",
    model_dir="runs/sentence_embeddings",
    objective="supervised",
    preset="tiny",
    hidden_dim=None,
    num_layers=None,
    vocabulary=None,
    vocabulary_size=2000,
    vocabulary_texts=None,
    sequence_length=64,
    batch_size=32,
    steps=300,
    mlm_steps=0,
    temperature=0.05,
    pooling="mean",
    learning_rate=1e-3,
    dropout=0.1,
    num_candidates=32,
    seed=0,
    verbose=0,
    views="crop",
):
    """Trains contrastive sentence embeddings on a MiniBERT encoder; pair retrieval.

    Training pairs are `(first sentence, remainder)` of the pre-training
    texts (`keras_pt.data.load_sentence_pairs`); held-out pairs come from
    the held-out split. `objective="supervised"` trains on the pairs;
    `"unsupervised"` contrasts two views of each raw pre-training text:
    two random crops (`views="crop"`) or the text under two dropouts
    (`views="dropout"`, SimCSE). With `mlm_steps > 0` the MiniBERT is first
    pre-trained by masked-LM on the same texts.

    Args:
        objective: str. `"supervised"` or `"unsupervised"`.
        mlm_steps: int. Masked-LM pre-training steps first. Defaults to 0.
        views: str. The unsupervised objective's views, `"crop"` or
            `"dropout"` (see `SentenceEncoder`). Defaults to `"crop"`.
        num_candidates: int. Candidates per retrieval query (chance is
            `1 / num_candidates`).
        Others: as in `pretrain_minigpt`; `temperature` and `pooling` as in
            `SentenceEncoder`.

    Returns:
        A `SentenceEmbeddingResult`.
    """
    if objective not in ("supervised", "unsupervised"):
        raise ValueError(
            f"unknown objective {objective!r}; choose 'supervised' (first sentence vs "
            "remainder pairs) or 'unsupervised' (two views of each text, see views=)."
        )
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    strategy = distribute.get_strategy(strategy)
    os.makedirs(model_dir, exist_ok=True)
    texts, preprocessor = _preprocessor(
        dataset, data_dir, vocabulary, vocabulary_size, vocabulary_texts, sequence_length
    )
    pairs = data_lib.load_sentence_pairs(dataset, data_lib.text_dataset_spec(dataset).pretraining_split, data_dir)
    heldout = list(data_lib.load_sentence_pairs(dataset, heldout_split(dataset), data_dir).as_numpy_iterator())
    queries = [a.decode("utf-8") for a, _ in heldout]
    candidates = [b.decode("utf-8") for _, b in heldout]
    if len(heldout) < num_candidates:
        raise ValueError(
            f"only {len(heldout)} held-out pairs, fewer than num_candidates={num_candidates}; "
            "lower num_candidates."
        )

    with strategy.scope():
        bert = MiniBERT.from_preset(
            preset,
            vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
            **_shape(hidden_dim, num_layers, dropout, sequence_length),
        )
        embedder = SentenceEncoder(
            bert.encoder,
            pooling=pooling,
            temperature=temperature,
            preprocessor=preprocessor,
            views=views,
            seed=seed,
        )
        embedder.compile(optimizer=keras.optimizers.Adam(learning_rate))
        if mlm_steps:
            bert.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01))
    if mlm_steps:
        mlm_data = data_lib.preprocess_text_dataset(texts, preprocessor, batch_size, shuffle_seed=seed + 1, repeat=True)
        bert.fit(mlm_data, steps_per_epoch=mlm_steps, epochs=1, verbose=verbose)

    def accuracy():
        return evaluation.retrieval_accuracy(
            embedder.embed(queries), embedder.embed(candidates), num_candidates, seed=seed
        )

    untrained = accuracy()
    if objective == "supervised":
        dataset_fn = _text_batches(pairs, lambda a, b: (preprocessor(a), preprocessor(b)))
        steps_per_epoch = _steps_per_epoch(pairs, batch_size)
    else:
        dataset_fn = _text_batches(texts, lambda batch: preprocessor(batch))
        steps_per_epoch = _steps_per_epoch(texts, batch_size)
    # Contrastive training continues from these weights (and the masked-LM
    # pre-training, if any): a build function handing over this model.
    embedder = training.train(
        lambda: embedder,
        dataset_fn,
        batch_size=batch_size,
        steps=steps,
        steps_per_epoch=steps_per_epoch,
        strategy=strategy,
        model_dir=os.path.join(model_dir, "contrastive"),
        seed=seed,
        verbose=verbose,
    ).model
    trained = accuracy()

    index = embedder.build_index(candidates)
    examples = [(q, embedder.search(q, index, k=1)[0]) for q in queries[:3]]
    files = {
        "model": os.path.join(model_dir, "sentence_encoder.keras"),
        "vocabulary": _write_vocabulary(preprocessor, model_dir),
    }
    embedder.save(files["model"])
    return SentenceEmbeddingResult(
        accuracy=trained,
        untrained_accuracy=untrained,
        tfidf_accuracy=tfidf_retrieval_accuracy(queries, candidates, num_candidates, seed),
        chance=1.0 / num_candidates,
        num_candidates=num_candidates,
        num_pairs=len(heldout),
        examples=examples,
        seconds=time.perf_counter() - start,
        files=files,
    )
