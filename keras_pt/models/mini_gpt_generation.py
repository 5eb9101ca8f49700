"""Text generation for MiniGPT: a fixed-shape, XLA-compiled decoding loop
with per-block key/value caches."""

import numpy as np
import tensorflow as tf

from keras_pt.kernels import sampling
from keras_pt.models.text_model import is_text
from keras_pt.special_tokens import CLS_ID, MASK_ID, NUM_SPECIAL_TOKENS, PAD_ID, SEP_ID

# Never sampled: padding, the start token and the MLM mask token.
BANNED_IDS = (PAD_ID, CLS_ID, MASK_ID)

BOS_ID = CLS_ID
EOS_ID = SEP_ID


class MiniGPTGeneration:
    """`generate`, `generate_fn` and the cached decoding steps of `MiniGPT`.

    Mixed into `MiniGPT` (before `keras.Model`); it uses the model's
    `embedding`, `transformer_layers`, `lm_head`, `preprocessor`,
    `vocabulary_size`, `max_sequence_length`, `num_heads` and `hidden_dim`,
    and keeps compiled loops in `self._generate_fns`.
    """

    def next_token_logits(self, token_ids, positions):
        """Next-token logits at `positions` only, `(batch, num_positions, V)`.

        Causal attention lets every position but the queried ones be
        skipped in the last block and the head: the earlier blocks run on
        the whole sequence (keys and values), the last block on the queried
        rows (`TransformerEncoderBlock(query_positions=...)`). Equal to
        `self(...)` at those rows. No padding mask: with right padding a
        position never attends to the padding after it.

        Args:
            token_ids: int32 `(batch, seq_len)`.
            positions: int32 `(batch, num_positions)`.
        """
        x = self.embedding(token_ids, training=False)  # (batch, seq, hidden)
        blocks = self.transformer_layers
        for block in blocks[:-1]:
            x = block(x, training=False)  # (batch, seq, hidden)
        x = blocks[-1](x, query_positions=positions, training=False)  # (batch, P, hidden)
        return self.lm_head(x, self.embedding.token_embeddings)

    def prefill_cache(self, token_ids):
        """Key/value caches of every block for a whole `(batch, max_length)` buffer.

        One causal forward pass over the buffer (the prompts' prefill).
        Returns a list of `2 · num_layers` tensors, each block's keys then
        values, `(batch, num_heads, max_length, head_dim)`; a position's
        entries are exact for the buffer's tokens up to that position.
        """
        batch, length = token_ids.shape
        heads = self.num_heads
        empty = tf.zeros([batch, heads, length, self.hidden_dim // heads], self.compute_dtype)
        x = self.embedding(token_ids, training=False)  # (batch, max_length, hidden)
        caches = []
        for block in self.transformer_layers:
            x, keys, values = block.call_with_cache(x, empty, empty, 0)
            caches += [keys, values]
        return caches

    def cached_next_token_logits(self, token_ids, index, caches):
        """Next-token logits after position `index`, reading and updating caches.

        Runs the model on the tokens at `index` only, `token_ids[:, index]`:
        their keys and values go into `caches` (from `prefill_cache`) at
        `index` and they attend to the cached positions `<= index`.

        Args:
            token_ids: int32 `(batch, max_length)`.
            index: int32 scalar.
            caches: list of `2 · num_layers` float tensors `(batch,
                num_heads, max_length, head_dim)`.

        Returns:
            `(logits (batch, vocabulary_size), caches)`.
        """
        batch = token_ids.shape[0]
        tokens = tf.slice(token_ids, tf.stack([0, index]), [batch, 1])  # (batch, 1)
        x = self.embedding(tokens, start_index=index, training=False)  # (batch, 1, hidden)
        updated = []
        for b, block in enumerate(self.transformer_layers):
            x, keys, values = block.call_with_cache(x, caches[2 * b], caches[2 * b + 1], index)
            updated += [keys, values]
        logits = self.lm_head(x, self.embedding.token_embeddings)  # (batch, 1, V)
        return logits[:, 0], updated

    def _generate_loop(self, token_ids, prompt_lengths, seed, temperature, strategy, top_k, use_cache=True):
        """Fills `token_ids` after each prompt, one position per iteration.

        `token_ids` `(batch, max_length)` holds each prompt at its start and
        `[PAD]` after it. Iteration `i` (from the shortest prompt's length to
        `max_length - 1`) computes the next-token logits at position `i - 1`
        and writes a token at position `i` for every sequence whose prompt
        is shorter than `i + 1` and which has not yet emitted `[SEP]`.

        With `use_cache`, one pass over the buffer fills per-block key/value
        caches (`prefill_cache`), and iteration `i` runs the model on the
        tokens at position `i - 1` only, writing their keys and values into
        the caches (`cached_next_token_logits`): the caches hold exact
        entries for every position before it (the prompt tokens from the
        prefill, the rest from earlier iterations), and positions after it
        are masked. Without, iteration `i` re-runs the model on the whole
        buffer (`next_token_logits`); the causal mask keeps position `i - 1`
        blind to the padding after it. Shapes never change, so XLA compiles
        the loop once per buffer shape.
        """
        batch, length = token_ids.shape
        positions = tf.range(length)[None, :]  # (1, max_length)

        def cond(i, ids, done, caches):
            return tf.logical_and(i < length, tf.logical_not(tf.reduce_all(done)))

        def body(i, ids, done, caches):
            if use_cache:
                logits, caches = self.cached_next_token_logits(ids, i - 1, caches)
            else:
                logits = self.next_token_logits(ids, tf.fill([batch, 1], i - 1))[:, 0]
            # (batch, V)
            token = sampling.next_token(
                logits,
                tf.stack([seed, i]),
                strategy=strategy,
                temperature=temperature,
                top_k=top_k,
                banned_ids=BANNED_IDS,
            )  # (batch,)
            in_prompt = i < prompt_lengths
            token = tf.where(done, PAD_ID, token)
            token = tf.where(in_prompt, tf.gather(ids, i, axis=1), token)
            done = tf.logical_or(done, tf.logical_and(~in_prompt, tf.equal(token, EOS_ID)))
            ids = tf.where(tf.equal(positions, i), token[:, None], ids)
            return i + 1, ids, done, caches

        start = tf.maximum(tf.reduce_min(prompt_lengths), 1)
        done = tf.zeros([batch], tf.bool)
        caches = self.prefill_cache(token_ids) if use_cache else []
        _, token_ids, _, _ = tf.while_loop(cond, body, (start, token_ids, done, caches), maximum_iterations=length)
        return token_ids

    def generate_fn(self, strategy="greedy", top_k=10, use_cache=True):
        """The XLA-compiled generation loop for a strategy (cached).

        A `tf.function(jit_compile=True)` of `(token_ids (batch, max_length)
        int32, prompt_lengths (batch,) int32, seed int32 scalar, temperature
        float32 scalar) -> token_ids`; `use_cache=False` gives the loop
        that re-runs the model on the whole buffer at every step.
        """
        key = (strategy, int(top_k) if strategy == "top_k" else None, bool(use_cache))
        if key not in self._generate_fns:
            strategy, k = key[0], key[1] or 1

            def loop(token_ids, prompt_lengths, seed, temperature):
                return self._generate_loop(
                    token_ids,
                    prompt_lengths,
                    seed,
                    temperature,
                    strategy=strategy,
                    top_k=k,
                    use_cache=key[2],
                )

            self._generate_fns[key] = tf.function(loop, jit_compile=True)
        return self._generate_fns[key]

    def _prompt_ids(self, prompts):
        """Lists of int ids and whether the prompts were strings."""
        if is_text(prompts):
            if self.preprocessor is None or not hasattr(self.preprocessor, "tokenizer"):
                raise ValueError(
                    "MiniGPT.generate got text prompts but the model has no "
                    "preprocessor with a tokenizer; pass preprocessor=... or "
                    "token id prompts."
                )
            if isinstance(prompts, str):
                prompts = [prompts]
            if isinstance(prompts, tuple):
                prompts = list(prompts)
            ids = self.preprocessor.tokenizer(tf.constant(prompts, tf.string)).to_list()
            return [[BOS_ID] + list(p) for p in ids], True
        array = prompts.numpy() if isinstance(prompts, tf.Tensor) else prompts
        if isinstance(array, np.ndarray):
            if array.ndim == 1:
                array = array[None]
            if array.ndim != 2 or array.dtype.kind not in "iu":
                raise ValueError(
                    "token id prompts must be an int array (batch, length) padded "
                    f"with [PAD]={PAD_ID}; got {array.dtype} {array.shape}."
                )
            rows = [[int(t) for t in row if t != PAD_ID] for row in array]
        else:
            try:
                rows = [[int(t) for t in row if int(t) != PAD_ID] for row in prompts]
            except (TypeError, ValueError):
                raise ValueError(
                    f"prompts must be strings, a list of token id lists, or an int array; got {type(prompts).__name__}."
                ) from None
        return rows, False

    def generate(
        self,
        prompts,
        max_length=None,
        strategy="greedy",
        temperature=1.0,
        top_k=10,
        seed=None,
        use_cache=True,
    ):
        """Continues prompts token by token until `[SEP]` or `max_length`.

        Prompts are strings (tokenized by the preprocessor, `[CLS]`
        prepended) or token ids (lists of ids, or an int array padded with
        `[PAD]`; used as given, so include `[CLS]` to start like the
        training data). All prompts are completed together in one
        fixed-shape loop compiled with XLA (`generate_fn`); a sequence stops
        after it emits `[SEP]` and is padded with `[PAD]`. `[PAD]`, `[CLS]`
        and `[MASK]` are never sampled.

        One causal pass over the `(batch, max_length)` buffer fills a
        key/value cache per block, `(batch, num_heads, max_length,
        head_dim)`; each step then runs the model on one position per
        sequence and attends to the cache (static shapes: the caches are
        updated in place with `dynamic_update_slice` and later positions
        are masked). `use_cache=False` re-runs the model on the whole buffer
        at each step instead (quadratic in `max_length`); both give the same
        tokens up to float rounding (the sums are ordered differently, which
        can only matter where two tokens' logits all but tie).

        Args:
            prompts: str, list of str, list of lists of int, or int array.
            max_length: int or None. Total length, prompt included. Defaults
                to the preprocessor's `sequence_length`, else
                `max_sequence_length`.
            strategy: str. `"greedy"` (most likely token), `"top_k"` (sample
                among the `top_k` most likely) or `"temperature"` (sample
                from the whole softmax at `temperature`). Defaults to
                `"greedy"`.
            temperature: float > 0. Softmax temperature of the sampling
                strategies. Defaults to 1.0.
            top_k: int. Candidates of `"top_k"`. Defaults to 10.
            seed: int or None. The same prompts and seed always give the same
                output. Defaults to None (a seed from NumPy's global
                generator).
            use_cache: bool. Keep the prefix's keys and values in fixed-shape
                caches (one model position per step); False re-runs the
                whole buffer at each step. Defaults to True.

        Returns:
            For string prompts, a list of str (prompt and continuation,
            detokenized, special tokens dropped); for id prompts, an int32
            array `(batch, max_length)`.

        Raises:
            ValueError: for an unknown strategy, bad parameters, an empty
                prompt, or a prompt longer than `max_length`.
        """
        sampling.check_sampling_args(strategy, temperature, top_k, self.vocabulary_size)
        if max_length is None:
            max_length = getattr(self.preprocessor, "sequence_length", None) or (self.max_sequence_length)
        if int(max_length) != max_length or not 2 <= max_length <= self.max_sequence_length:
            raise ValueError(
                f"max_length must be an integer in [2, max_sequence_length="
                f"{self.max_sequence_length}]; got {max_length}."
            )
        rows, text = self._prompt_ids(prompts)
        if not rows:
            raise ValueError("generate got no prompts.")
        for row in rows:
            if not row:
                raise ValueError(
                    f"a prompt is empty; start id prompts with [CLS] (id {BOS_ID}) for an unconditional sample."
                )
            if len(row) > max_length:
                raise ValueError(
                    f"a prompt has {len(row)} tokens, more than max_length={max_length}; "
                    "raise max_length or shorten the prompt."
                )
            if min(row) < 0 or max(row) >= self.vocabulary_size:
                raise ValueError(f"prompt token ids must lie in [0, {self.vocabulary_size}); got {row}.")
        buffer = np.full((len(rows), int(max_length)), PAD_ID, np.int32)
        for b, row in enumerate(rows):
            buffer[b, : len(row)] = row
        lengths = np.array([len(row) for row in rows], np.int32)
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        token_ids = self.generate_fn(strategy, top_k, use_cache)(
            tf.constant(buffer),
            tf.constant(lengths),
            tf.constant(int(seed), tf.int32),
            tf.constant(float(temperature), tf.float32),
        ).numpy()
        if not text:
            return token_ids
        return self.detokenize(token_ids)

    def detokenize(self, token_ids):
        """Text of generated ids: up to the first `[SEP]`, special tokens dropped."""
        pieces = []
        for row in np.asarray(token_ids):
            kept = []
            for t in row.tolist():
                if t == EOS_ID:
                    break
                if t >= NUM_SPECIAL_TOKENS or t == 1:  # ordinary tokens and [UNK]
                    kept.append(t)
            pieces.append(kept)
        strings = self.preprocessor.tokenizer.detokenize(tf.ragged.constant(pieces, tf.int32))
        return [s.decode("utf-8") for s in strings.numpy()]
