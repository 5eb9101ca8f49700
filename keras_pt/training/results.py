"""`TrainResult`: what one `train` call did."""

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass
class TrainResult:
    """What `train` did.

    Attributes:
        model: the trained `keras.Model`.
        strategy: the `tf.distribute.Strategy` it trained under.
        history: dict of epoch logs, name -> list (epochs trained in this call;
            a resumed partial epoch logs the means over its remaining steps).
        logs: dict. The logs of the last step (global means over the epoch so
            far).
        initial_step: int. Steps already done when this call started
            (0 unless resumed).
        step: int. Steps done when it returned.
        global_batch_size: int. Examples per step over all replicas.
        steps_per_epoch: int.
        checkpoint: str or None. The newest checkpoint.
        seconds: float. Wall-clock time of the call.
        validation: dict. `validation_fn`'s values, name -> list with one
            entry per completed epoch since step 0 (resumed runs included).
        best_epoch: int or None. With `early_stopping`, the 0-based epoch
            whose validation value was best (its weights are the model's
            when `restore_best_weights`).
        stopped_early: bool. Whether `early_stopping` ended the run.
    """

    model: keras.Model
    strategy: tf.distribute.Strategy
    history: dict
    logs: dict
    initial_step: int
    step: int
    global_batch_size: int
    steps_per_epoch: int
    checkpoint: str
    seconds: float
    validation: dict = dataclasses.field(default_factory=dict)
    best_epoch: int = None
    stopped_early: bool = False
