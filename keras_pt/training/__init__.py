"""One training entry point for every keras_pt model, on any strategy.

`train(build_model, dataset_fn, batch_size=...)` builds the strategy, seeds
everything, sets the mixed-precision policy, builds and compiles the model
inside the strategy's scope, scales the batch size and learning rate by the
replica count where asked, resumes from the newest checkpoint in
`model_dir`, and trains:

- default, one-device, Mirrored and TPU strategies: Keras `fit` (a resumed
  partial epoch in a call of its own, whole epochs in chunks);
- MultiWorkerMirroredStrategy: the model's own `train_step` under
  `strategy.run` in a small loop over `strategy.distribute_datasets_from_function`,
  because Keras 3's `fit` fails there (keras#20585; `loop="fit"` tries it);
  the same loop runs `steps_per_execution > 1` under a multi-replica
  MirroredStrategy, where `fit` fails too (keras#19246).

Exact resumption: checkpoints (`keras_pt.checkpointing`) hold every model
variable (with `SeedGenerator` states), every optimizer, the step counter
and the data position. The data order is a pure function of `(seed, step)`:
`dataset_fn(epoch, batch_size, seed)` must return the same batches for the
same arguments (`keras_pt.data.epoch_batches` does), and a run resumed at
step `s` asks for epoch `s // steps_per_epoch` and skips `s %
steps_per_epoch` batches. A resumed run therefore ends with exactly the
weights of an uninterrupted one.

Validation and early stopping: `validation_fn(model)` runs at the end of
every epoch (on every worker, before the epoch's checkpoint), and
`EarlyStopping` stops training when its value stops improving and restores
the best weights. The early-stopping state (best value, epochs without
improvement, best weights) is part of every checkpoint, so a resumed run
stops at the same epoch with the same weights as an uninterrupted one.

Divergence: training stops with `NonFiniteLossError` at the first step
whose loss is NaN or Inf, and with `DivergenceError` (a subclass) at the
first step whose loss exceeds `divergence_factor` times its reference
(the best loss so far, floored by the first / factor). A checkpoint is
written only after its step passed both checks; the error names the last
healthy checkpoint (one whose weights a later step's loss confirmed) and
records the divergence in `model_dir/divergence.json`, so `train(...,
restart_from_healthy=True)` with new settings continues from that
checkpoint. Resuming with other optimizer settings (class, learning
rate, any `get_config()` value) is refused unless the caller opts in
(`allow_optimizer_change=True`). A corrupt newest checkpoint is renamed
aside, and the previous one is used.

SIGTERM (preemption) makes every worker save a checkpoint at the same
step and stop with `TrainingPreempted`; running again resumes.
"""

import time

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.checkpointing import (  # noqa: F401 (re-exported)
    Checkpointer,
    checkpoint_step,
    find_optimizers,
    training_state,
)
from keras_pt.schedules import ScaledLearningRate, scale_learning_rates  # noqa: F401
from keras_pt.training.errors import DivergenceError, NonFiniteLossError, TrainingPreempted
from keras_pt.training.guards import _Guard, _Preemption, _stop_preempted  # noqa: F401
from keras_pt.training.loop import (  # noqa: F401
    EPOCHS_PER_FIT,
    LOOPS,
    _choose_loop,
    _custom_loop,
    _distribute,
    _FitCallback,
    _fit_loop,
    _is_multi_worker,
    _is_tpu,
    _make_train_function,
    _metric_results,
    check_static_batches,
)
from keras_pt.training.optimizers import (  # noqa: F401
    _constant_learning_rates,
    _flatten,
    _without_names,
    optimizer_settings,
)
from keras_pt.training.results import TrainResult
from keras_pt.training.resume import (  # noqa: F401
    CHECKPOINT_SUBDIR,
    DIVERGENCE_FILE,
    _open_checkpoints,
    _read_json,
    _resume,
)
from keras_pt.training.setup import (  # noqa: F401
    MIXED_PRECISION_POLICIES,
    _build,
    _check_arguments,
    _check_policy,
    _epoch_datasets,
    _global_batch_size,
    _prepare,
    _run_metadata,
    _steps_per_epoch,
)
from keras_pt.training.validation import (  # noqa: F401
    _INFERENCE_FUNCTIONS,
    EarlyStopping,
    _inference_function,
    _to_float,
    _Validation,
    classification_accuracy,
)

# A loss above this many times the best loss so far counts as divergence.
DIVERGENCE_FACTOR = 1e3


def train(
    build_model,
    dataset_fn,
    *,
    batch_size,
    epochs=1,
    steps=None,
    steps_per_epoch=None,
    strategy="auto",
    tpu=None,
    devices=None,
    scale_batch_size=False,
    scale_learning_rate=False,
    mixed_precision=None,
    model_dir=None,
    checkpoint_every=None,
    keep_checkpoints=3,
    callbacks=None,
    seed=0,
    loop="auto",
    handle_sigterm=True,
    validation_fn=None,
    early_stopping=None,
    config=None,
    divergence_factor=DIVERGENCE_FACTOR,
    restart_from_healthy=False,
    allow_optimizer_change=False,
    verbose=0,
):
    """Builds, resumes and trains a model under a `tf.distribute` strategy.

    Args:
        build_model: callable `() -> keras.Model`. Makes AND compiles the
            model; called inside the strategy's scope with the
            mixed-precision policy set. The model may own its `train_step`
            and several optimizers (kept as attributes and built by
            `compile`, like the GAN's); randomness must come from
            `keras.random.SeedGenerator`s the model holds.
        dataset_fn: callable `(epoch, batch_size, seed) -> tf.data.Dataset`
            of the epoch's global batches (`batch_size` examples each, static
            shapes). It must return the same batches in the same order for
            the same arguments (e.g. `keras_pt.data.epoch_batches`), which
            makes resumption exact.
        batch_size: int. Global batch size (split over the replicas).
        epochs: int. Epochs to train, counted from step 0. Defaults to 1.
        steps: int or None. Total train steps instead of `epochs`.
        steps_per_epoch: int or None. Defaults to the cardinality of the
            epoch-0 data set.
        strategy: str or `tf.distribute.Strategy`. A
            `keras_pt.distribute.get_strategy` name. Defaults to `"auto"`.
        tpu: str or None. TPU name or `grpc://` address (`"tpu"`/`"auto"`).
        devices: list of str or None. Devices of `"mirrored"`.
        scale_batch_size: bool. Multiply `batch_size` by the number of
            replicas (keep the per-replica batch of a one-device run).
            Defaults to False.
        scale_learning_rate: bool. Multiply every optimizer's learning rate
            by the number of replicas (the linear scaling rule; use with
            `scale_batch_size`). Defaults to False.
        mixed_precision: str or None. `"mixed_bfloat16"` (TPUs, CPUs) or
            `"mixed_float16"` (GPUs; `compile` wraps the optimizer in a
            `LossScaleOptimizer`). Variables, losses and metrics stay
            float32. Defaults to None (float32).
        model_dir: str or None. Checkpoints go to `model_dir/checkpoints`;
            a run finds the newest readable one there and continues from
            it. Defaults to None (no checkpoints).
        checkpoint_every: int or None. Steps between checkpoints. Defaults
            to once per epoch; a checkpoint is also written at the end.
        keep_checkpoints: int. Newest checkpoints kept. Defaults to 3.
        callbacks: list of `keras.callbacks.Callback`. Under `fit` they may
            see several `fit` calls (a resumed partial epoch, then up to
            `EPOCHS_PER_FIT` whole epochs per call), with true epoch numbers.
        seed: int. Seeds Python, NumPy and TensorFlow
            (`keras.utils.set_random_seed`) before the model is built, and is
            passed to `dataset_fn`. Defaults to 0.
        loop: str. `"fit"`, `"custom"` (the `strategy.run` loop) or
            `"auto"`: custom where Keras 3.15's `fit` fails (under
            MultiWorkerMirroredStrategy, keras#20585, and under a
            multi-replica MirroredStrategy with `steps_per_execution > 1`,
            keras#19246), else fit. Defaults to `"auto"`.
        handle_sigterm: bool. On SIGTERM save a checkpoint and raise
            `TrainingPreempted` (main thread only). Defaults to True.
        validation_fn: callable `(model) -> dict of name -> float`, or None.
            Called at the end of every epoch on every worker, before that
            epoch's checkpoint; its values join the epoch logs (callbacks,
            `history`) and `TrainResult.validation`. It must give every
            worker the same values and use no cross-replica communication:
            e.g. `classification_accuracy(dataset)`. Defaults to None.
        early_stopping: `EarlyStopping` or None. Stop when its `monitor`
            (a `validation_fn` value) has not improved for `patience`
            epochs, then restore the best epoch's weights. Its state is
            checkpointed: a resumed run stops where an uninterrupted one
            would, and a stopped run stays stopped. Defaults to None.
        config: JSON-able dict or None. The settings that define the run
            (data, hyperparameters, a fingerprint of the starting weights),
            saved in every checkpoint: resuming from a checkpoint written
            with another `config` is refused. Defaults to None.
        divergence_factor: float or None. A logged loss (any log whose name
            contains "loss"; Keras's running mean over the epoch so far)
            above `divergence_factor` times its reference stops training
            with `DivergenceError`, before that step's checkpoint. The
            reference is the best (lowest) value of that loss so far in the
            run, but at least its first value / `divergence_factor`; first
            and best values are kept in every checkpoint. The best value
            rather than a recent one, because a diverging run raises its
            recent values step by step; the floor, because a loss that fell
            by more than the factor (training loss near zero) may spike on
            a hard batch: it counts as diverged only above its first value.
            The factor is large because an exploding loss grows
            geometrically and passes any fixed factor within a step or two,
            while a healthy loss may rise severalfold (a GAN player losing
            ground). A loss that has been <= 0 (a signed objective, e.g. a
            Wasserstein GAN's `g_loss`) is not compared; one that starts
            near zero and grows in a healthy run needs a larger factor or
            None. None turns the check off (NaN and Inf still stop
            training). Defaults to 1e3.
        restart_from_healthy: bool. After a `NonFiniteLossError` or
            `DivergenceError` in `model_dir`, continue from the last healthy
            checkpoint it named (or from step 0 when there was none) with
            this call's settings: the newer checkpoints are renamed aside
            (`ckpt-*.diverged-<n>`), and this call's optimizer settings
            (e.g. a lower learning rate) and `config` replace the
            checkpoint's, as with `allow_optimizer_change`. Batch size,
            steps per epoch and seed must still match. Without a recorded
            divergence it resumes from the newest checkpoint. Defaults to
            False.
        allow_optimizer_change: bool. Resume from a checkpoint written with
            other optimizer settings (`optimizer_settings`: class, learning
            rate, any `get_config()` value) and continue with this call's
            settings; the checkpoint's optimizer variables (moments,
            iterations) are kept, so the optimizers' variables must still
            match. Otherwise such a resume is refused with the differing
            settings. Defaults to False.
        verbose: int. Keras verbosity. Defaults to 0.

    Returns:
        A `TrainResult`.

    Raises:
        NonFiniteLossError: at the first NaN/Inf loss (or weight); the last
            healthy checkpoint stays intact and the message says how to
            continue from it (`restart_from_healthy=True`).
        DivergenceError: at the first loss above `divergence_factor` times
            the best so far (a `NonFiniteLossError`).
        TrainingPreempted: after SIGTERM, once the checkpoint is saved.
        ValueError: for bad arguments, a data set without static batches,
            or a checkpoint written by another model, data setting,
            `config` or optimizer settings.

    Example:

    >>> import numpy as np, keras_pt
    >>> images = tf.data.Dataset.from_tensor_slices(np.random.rand(64, 8, 8, 1).astype("float32"))
    >>> def build():
    ...     model = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=4)
    ...     model.compile(optimizer="adam")
    ...     return model
    >>> result = train(build, lambda epoch, batch_size, seed: keras_pt.data.epoch_batches(
    ...     images, batch_size, seed, epoch), batch_size=16, epochs=2, strategy="default")
    >>> result.step
    8
    """
    start_time = time.time()
    policy = _check_arguments(mixed_precision, loop, batch_size, epochs, steps)
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = distribute.get_strategy(strategy, tpu=tpu, devices=devices)
    global_batch = _global_batch_size(batch_size, strategy.num_replicas_in_sync, scale_batch_size)

    keras.utils.set_random_seed(seed)
    previous_policy = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        model = _build(build_model, strategy)
        loop = _choose_loop(loop, strategy, model)
        epoch_dataset = _epoch_datasets(dataset_fn, global_batch, seed, fully_defined=_is_tpu(strategy))
        first = epoch_dataset(0)
        spe = _steps_per_epoch(first, steps_per_epoch)
        total = int(steps) if steps is not None else int(epochs) * spe
        _prepare(model, strategy, first, scale_learning_rate)

        # Resume from the newest checkpoint written with the same settings.
        validation = _Validation(validation_fn, early_stopping, model)
        metadata = _run_metadata(global_batch, spe, seed, config)
        settings = optimizer_settings(model)  # this call's, before a restore
        checkpointer, manifest, divergence_file = _open_checkpoints(
            model,
            model_dir,
            validation,
            metadata,
            settings,
            strategy,
            keep_checkpoints,
            restart_from_healthy,
            allow_optimizer_change,
        )
        manifest = manifest or {}
        start = int(manifest.get("step", 0))
        guard = _Guard(
            checkpointer,
            checkpoint_every or spe,
            spe,
            dict(metadata, optimizers=settings),
            start,
            manifest.get("path"),
            validation,
            divergence_factor=divergence_factor,
            loss_history=(manifest.get("divergence") or {}).get("first_and_best_loss"),
            divergence_file=divergence_file,
        )

        # Train.
        history = {}
        if start < total and not validation.stopped:
            with _Preemption(handle_sigterm) as preemption:
                args = (epoch_dataset, start, total, spe, guard, preemption, callbacks or [])
                if loop == "custom":
                    history = _custom_loop(model, strategy, *args, verbose)
                else:
                    history = _fit_loop(model, *args, verbose)
        guard.save()
        # After the last checkpoint, which keeps the last step's weights.
        validation.restore_best()
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return TrainResult(
        model=model,
        strategy=strategy,
        history=history,
        logs=guard.logs,
        initial_step=start,
        step=guard.step,
        global_batch_size=global_batch,
        steps_per_epoch=spe,
        checkpoint=guard.checkpoint,
        seconds=time.time() - start_time,
        validation=validation.history,
        best_epoch=validation.best_epoch,
        stopped_early=validation.stopped,
    )
