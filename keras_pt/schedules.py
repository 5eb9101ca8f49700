"""Learning-rate schedules saved with models, and scaling of optimizers'
learning rates (the linear scaling rule of `keras_pt.training.train`)."""

import keras

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
