"""The two training loops: Keras `fit`, and the model's own `train_step`
under `strategy.run` where `fit` fails (keras#20585, keras#19246)."""

import math

import keras
import tensorflow as tf

from keras_pt.training.guards import _stop_preempted

LOOPS = ("auto", "fit", "custom")
# Whole epochs trained by one `fit` call (their data sets concatenated).
EPOCHS_PER_FIT = 32


def check_static_batches(dataset, batch_size, fully_defined=False):
    """Raises a ValueError unless every batch has `batch_size` rows, statically.

    Args:
        dataset: a batched `tf.data.Dataset`.
        batch_size: int. The global batch size.
        fully_defined: bool. Also require every other dimension to be static
            (what TPUs need). Defaults to False.
    """
    for spec in tf.nest.flatten(dataset.element_spec):
        shape = spec.shape
        if shape.rank is None or shape.rank == 0 or shape[0] != batch_size:
            raise ValueError(
                f"every batch must have a static leading dimension of "
                f"batch_size={batch_size}, but the data set yields {spec}. Batch "
                "with `drop_remainder=True` (keras_pt.data.epoch_batches does) "
                "and the batch size train() passes to the data set function."
            )
        if fully_defined and not shape.is_fully_defined():
            raise ValueError(
                f"TPUs need fully static shapes, but the data set yields {spec}; "
                "pad or resize to a fixed shape in the input pipeline."
            )


def _is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _is_tpu(strategy):
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def _choose_loop(loop, strategy, model):
    """`"auto"`: the `strategy.run` loop where Keras 3.15's `fit` fails.

    That is under MultiWorkerMirroredStrategy (keras#20585) and under a
    multi-replica MirroredStrategy with `steps_per_execution > 1`
    (keras#19246); `fit` everywhere else.
    """
    if loop != "auto":
        return loop
    if _is_multi_worker(strategy):
        return "custom"
    per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
    if isinstance(strategy, tf.distribute.MirroredStrategy) and strategy.num_replicas_in_sync > 1 and per_execution > 1:
        return "custom"
    return "fit"


def _metric_results(model):
    logs = {}
    for metric in model.metrics:
        result = metric.result()
        if isinstance(result, dict):
            logs.update(result)
        else:
            logs[metric.name] = result
    return logs


class _FitCallback(keras.callbacks.Callback):
    """Feeds `fit`'s batch ends to the guard; stops on SIGTERM.

    `first_step(epoch)` is the global step before the first batch that this
    `fit` call trains in Keras epoch `epoch`; `count` the batches per epoch.
    """

    def __init__(self, guard, preemption):
        super().__init__()
        self.guard = guard
        self.preemption = preemption
        self.first_step = lambda epoch: 0
        self.count = 0
        self.base = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.base = self.first_step(epoch)

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1, Keras reports the last execution of
        # an epoch as a full one even when fewer steps were left.
        self.guard.after_step(self.base + min(batch + 1, self.count), logs)
        if self.preemption.requested:
            _stop_preempted(self.guard)

    def on_epoch_end(self, epoch, logs=None):
        # The epoch's validation values, for the callbacks after this one
        # (TensorBoard, History).
        if logs is not None and self.guard.step % self.guard.steps_per_epoch == 0:
            logs.update(self.guard.validation.logs)


def _fit_loop(model, epoch_dataset, start, total, spe, guard, preemption, callbacks, verbose):
    """Keras `fit`: a resumed partial epoch alone, whole epochs in chunks.

    Chunks of whole epochs run as one `fit` call over their concatenated
    data sets with `steps_per_epoch` (Keras keeps one iterator across the
    epochs), so callbacks see true epochs and a run of many short epochs
    does not pay one `fit` call each. Partial epochs (a resumed one, the
    last one of a `steps` budget) and epochs that `steps_per_execution`
    does not divide run as single-epoch calls whose data ends with them.
    """
    history = {}
    adapter = _FitCallback(guard, preemption)
    per_execution = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    step = start
    while step < total:
        epoch, offset = divmod(step, spe)
        whole = (total - step) // spe if offset == 0 and spe % per_execution == 0 else 0
        if whole:
            epochs = min(whole, EPOCHS_PER_FIT)
            dataset = epoch_dataset(epoch).take(spe)
            for e in range(epoch + 1, epoch + epochs):
                dataset = dataset.concatenate(epoch_dataset(e).take(spe))
            count = spe
            adapter.first_step = lambda e: e * spe
        else:
            epochs = 1
            count = min(spe, total - epoch * spe) - offset
            dataset = epoch_dataset(epoch).skip(offset).take(count)
            adapter.first_step = lambda e, base=step: base
        adapter.count = count
        result = model.fit(
            dataset,
            epochs=epoch + epochs,
            initial_epoch=epoch,
            steps_per_epoch=count,
            callbacks=[adapter] + list(callbacks),
            shuffle=False,
            verbose=verbose,
        )
        for name, values in result.history.items():
            history.setdefault(name, []).extend(values)
        if guard.step == step:  # nothing ran (stopped before the first step)
            break
        step = guard.step
        if model.stop_training:
            break
    return history


def _make_train_function(model, strategy, local_batch):
    train_step = model.train_step
    if model.jit_compile:
        train_step = tf.function(train_step, jit_compile=True)

    def step_fn(data):
        # MultiWorkerMirroredStrategy's iterators drop the static batch
        # dimension; restore it (and check it) for shape-dependent steps.
        data = tf.nest.map_structure(lambda t: tf.ensure_shape(t, [local_batch] + t.shape[1:].as_list()), data)
        return train_step(data)

    # A per-worker flag, summed over workers: every worker learns of a
    # SIGTERM sent to any one of them at the same step.
    flag = tf.Variable(0, dtype=tf.int32, trainable=False, name="preempted")

    @tf.function
    def train_function(iterator, num_steps):
        if num_steps == 1:
            strategy.run(step_fn, args=(next(iterator),))
        else:
            for _ in tf.range(num_steps):
                strategy.run(step_fn, args=(next(iterator),))
        preempted = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(flag)), axis=None)
        return _metric_results(model), preempted

    return train_function, flag


def _distribute(strategy, dataset, global_batch):
    """Each replica's slice of every global batch, with static shapes.

    Every input pipeline (one per worker) reads the same global batches and
    keeps the slices of its own replicas, in replica order: replica `r`
    trains on rows `[r * B / N, (r + 1) * B / N)` of each global batch, as
    its share of the one-device step. (`experimental_distribute_dataset`
    under MultiWorkerMirroredStrategy loses the static batch dimension.)
    """

    def per_replica(context):
        local = context.get_per_replica_batch_size(global_batch)
        replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * replicas_here * local

        def split(*batch):
            batch = batch[0] if len(batch) == 1 else batch
            return tf.nest.map_structure(
                lambda t: tf.reshape(
                    t[first : first + replicas_here * local],
                    [replicas_here, local] + t.shape[1:].as_list(),
                ),
                batch,
            )

        return dataset.map(split).unbatch()

    return strategy.distribute_datasets_from_function(per_replica)


def _custom_loop(model, strategy, epoch_dataset, start, total, spe, guard, preemption, callbacks, verbose):
    per_execution = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=math.ceil(total / spe),
        steps=spe,
        model=model,
    )
    history, logs = {}, {}
    train_function = flag = None
    model.stop_training = False
    callback_list.on_train_begin()
    step = start
    while step < total:
        epoch, offset = divmod(step, spe)
        count = min(spe, total - epoch * spe) - offset
        dataset = epoch_dataset(epoch)
        global_batch = tf.nest.flatten(dataset.element_spec)[0].shape[0]
        if train_function is None:
            train_function, flag = _make_train_function(model, strategy, global_batch // strategy.num_replicas_in_sync)
        iterator = iter(_distribute(strategy, dataset.skip(offset).take(count), global_batch))
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        done = 0
        while done < count:
            chunk = min(per_execution, count - done)
            callback_list.on_train_batch_begin(offset + done)
            if preemption.requested:
                flag.assign(1)
            logs, preempted = train_function(iterator, chunk)
            done += chunk
            step = epoch * spe + offset + done
            guard.after_step(step, logs)
            callback_list.on_train_batch_end(offset + done - 1, logs)
            if int(preempted) > 0:
                _stop_preempted(guard)
            if model.stop_training:
                break
        epoch_logs = dict(guard.logs)
        if step % spe == 0:
            epoch_logs.update(guard.validation.logs)
        callback_list.on_epoch_end(epoch, epoch_logs)
        for name, value in epoch_logs.items():
            history.setdefault(name, []).append(value)
        if model.stop_training:
            break
    callback_list.on_train_end(guard.logs)
    return history
