"""MiniGPT pre-training and sampling (`pretrain_minigpt`)."""

import dataclasses
import time

import keras

from keras_pt import data as data_lib
from keras_pt import evaluation
from keras_pt.models.mini_gpt import MiniGPT
from keras_pt.recipes.context import RunContext, resolve_config
from keras_pt.recipes.text_common import (
    SmallTextModelConfig,
    build_preprocessor,
    check_positive,
    heldout_split,
    model_shape,
    steps_per_epoch,
    text_batches,
    write_vocabulary,
)

MODEL_FILENAME = "mini_gpt.keras"
DEFAULT_PROMPTS = ("Return the", "This module", "Raise an exception if")


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
    steps: int = 0

    def table(self):
        """Held-out perplexity of the trained and untrained model and the unigram baseline."""
        rows = [
            (f"MiniGPT after {self.steps} steps", self.perplexity),
            ("MiniGPT untrained", self.initial_perplexity),
            ("unigram (add-one)", self.unigram_perplexity),
        ]
        lines = [f"{'model':<28}{'perplexity':>12}", "-" * 40]
        lines += [f"{name:<28}{value:>12.1f}" for name, value in rows]
        lines.append(f"{'ratio MiniGPT / unigram':<28}{self.perplexity / self.unigram_perplexity:>12.3f}")
        return "\n".join(lines)


@dataclasses.dataclass
class MiniGPTConfig(SmallTextModelConfig):
    """Settings of `pretrain_minigpt` (see its arguments)."""

    model_dir: str = "runs/pretrain_minigpt"
    prompts: tuple = DEFAULT_PROMPTS
    top_k: int = 10


def pretrain_minigpt(config=None, **overrides):
    """Pre-trains a MiniGPT and compares its held-out perplexity with a unigram model.

    Learns a vocabulary from the data set's pre-training text
    (`load_pretraining_texts`), trains for `steps` steps of `batch_size`
    packed texts (`[CLS] text [SEP]`, truncated to `sequence_length`),
    evaluates perplexity on the held-out split (`heldout_split`: `test` for
    `stdlib_docs`, whose text never enters pre-training), and continues the
    prompts greedily and with top-k sampling.

    Args:
        config: `MiniGPTConfig` or None. The settings; keyword arguments
            override its fields (the defaults without one).
        dataset: a TFDS name, a text file or folder, or a
            `keras_pt.data.TextData`.
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
        Others: as in `pretrain_minibert`; `strategy` is a
            `keras_pt.get_strategy` name.

    Returns:
        A `MiniGPTResult`.
    """
    config = resolve_config(MiniGPTConfig, config, overrides)
    c = config
    check_positive(sequence_length=c.sequence_length, batch_size=c.batch_size, steps=c.steps)
    start = time.perf_counter()
    ctx = RunContext("pretrain_minigpt", config)
    strategy = ctx.strategy
    texts, preprocessor = build_preprocessor(
        c.dataset, c.data_dir, c.vocabulary, c.vocabulary_size, c.vocabulary_texts, c.sequence_length
    )
    heldout_texts = data_lib.load_pretraining_texts(c.dataset, heldout_split(c.dataset), c.data_dir)
    heldout = data_lib.preprocess_text_dataset(heldout_texts, preprocessor, c.batch_size).cache()
    size = preprocessor.tokenizer.vocabulary_size()
    unigram = evaluation.unigram_perplexity(
        evaluation.next_token_counts(data_lib.preprocess_text_dataset(texts, preprocessor, c.batch_size), size),
        evaluation.next_token_counts(heldout, size),
    )

    def build():  # in the strategy's scope
        model = MiniGPT.from_preset(
            c.preset,
            preprocessor=preprocessor,
            **model_shape(c.hidden_dim, c.num_layers, c.dropout, c.sequence_length),
        )
        model.compile(optimizer=keras.optimizers.AdamW(c.learning_rate, weight_decay=0.01))
        return model

    # The same seed builds the initial weights that training starts from.
    keras.utils.set_random_seed(c.seed)
    with strategy.scope():
        initial = evaluation.perplexity(build(), heldout)
    trained = ctx.train(
        "pretrain",
        build,
        text_batches(texts, lambda batch: preprocessor(batch)),
        batch_size=c.batch_size,
        steps=c.steps,
        steps_per_epoch=steps_per_epoch(texts, c.batch_size),
        scale_batch_size=ctx.scale_batch_size,
        scale_learning_rate=ctx.scale_batch_size,
        checkpoint_every=ctx.checkpoint_every,
    )
    model = trained.model
    perplexity = evaluation.perplexity(model, heldout)  # outside the strategy's loop

    prompts = list(c.prompts)
    greedy = model.generate(prompts, max_length=c.sequence_length, strategy="greedy")
    sampled = model.generate(prompts, max_length=c.sequence_length, strategy="top_k", top_k=c.top_k, seed=c.seed)
    samples = {p: {"greedy": g, "top_k": s} for p, g, s in zip(prompts, greedy, sampled, strict=True)}
    lines = [
        f"{prompt!r}\n  greedy: {outputs['greedy']}\n  top-{c.top_k}: {outputs['top_k']}\n"
        for prompt, outputs in samples.items()
    ]
    files = {
        "model": ctx.save_model(model, ctx.path(MODEL_FILENAME)),
        "samples": ctx.write_text(ctx.path("samples.txt"), "".join(lines)),
        "vocabulary": write_vocabulary(ctx, preprocessor),
    }
    return MiniGPTResult(
        perplexity=float(perplexity),
        initial_perplexity=float(initial),
        unigram_perplexity=unigram,
        vocabulary_size=size,
        samples=samples,
        steps=trained.step,
        seconds=time.perf_counter() - start,
        files=files,
    )
