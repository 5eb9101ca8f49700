"""Learning-rate schedules saved with models, and scaling of optimizers'
learning rates (the linear scaling rule of `keras_pt.training.train`)."""

import keras
import tensorflow as tf

from keras_pt.checkpointing import find_optimizers


@keras.saving.register_keras_serializable(package="keras_pt")
class ScaledLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule multiplied by a constant factor."""

    def __init__(self, schedule, factor):
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "factor": self.factor,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(**config)


def scale_learning_rates(model, factor):
    """Multiplies the learning rate of every optimizer of `model` by `factor`.

    Constant rates are multiplied in place; a `LearningRateSchedule` is
    wrapped in `ScaledLearningRate`.
    """
    for _, optimizer in find_optimizers(model):
        current = optimizer.learning_rate
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if isinstance(inner._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            optimizer.learning_rate = ScaledLearningRate(inner._learning_rate, factor)
        else:
            optimizer.learning_rate = float(keras.ops.convert_to_numpy(current)) * factor


@keras.saving.register_keras_serializable(package="keras_pt")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's learning-rate schedule: linear warm-up, then linear decay to 0.

    Args:
        learning_rate: float. The peak, reached after `warmup_steps`.
        total_steps: int. The rate is 0 from this step on.
        warmup_steps: int. Steps of the linear warm-up from 0.
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=0):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need 0 <= warmup_steps <= total_steps and total_steps >= 1; got "
                f"warmup_steps={warmup_steps}, total_steps={total_steps}."
            )
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        decay = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        up = step / warmup
        down = (self.total_steps - step) / decay
        factor = tf.clip_by_value(tf.minimum(up, down), 0.0, 1.0)
        return self.learning_rate * factor

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }
