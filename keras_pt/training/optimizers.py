"""The optimizer settings a checkpoint records, and comparisons of them."""

import json

import keras

from keras_pt.checkpointing import find_optimizers


def _without_names(value):
    if isinstance(value, dict):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, list):
        return [_without_names(v) for v in value]
    return value


def _flatten(settings, prefix=""):
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def optimizer_settings(model):
    """The settings of every optimizer of `model`, as saved in checkpoints.

    Returns:
        dict, optimizer attribute name -> `{"class": class name,
        **get_config()}` as JSON gives it back, without the (per-process
        uniquified) `name`s. The learning rate is its current value (after
        `scale_learning_rate`), or the serialized schedule.
    """
    settings = {
        name: {"class": type(optimizer).__name__, **optimizer.get_config()}
        for name, optimizer in find_optimizers(model)
    }
    # Values JSON cannot hold are compared by type (a repr has addresses).
    encoded = json.dumps(settings, default=lambda value: f"<{type(value).__name__}>")
    return _without_names(json.loads(encoded))


def _constant_learning_rates(model):
    """`{name: float}` for the optimizers whose learning rate is a variable
    (saved in checkpoints), not a schedule."""
    rates = {}
    for name, optimizer in find_optimizers(model):
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if not isinstance(inner._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            rates[name] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return rates
