"""EncoderClassifier: the shared base of the fine-tuning heads."""

import keras
import tensorflow as tf


class EncoderClassifier(keras.Model):
    """A classification head on any encoder: `logits = head(encoder(x))`.

    Subclasses make `self.head_layers` (applied in order to the features)
    and may override `compute_loss`. The encoder is frozen when
    `trainable_encoder=False` (a linear probe) and trained with the head
    otherwise (full fine-tuning); flip it with `set_encoder_trainable` and
    compile again.

    `compile` defaults to the head's loss and an `"accuracy"` metric. Labels
    are int class indices in `[0, num_classes)`; an out-of-range label stops
    training with an error (graph mode; under `jit_compile=True` check labels
    in the input pipeline, e.g. with `keras_pt.data.check_labels`).
    """

    def __init__(self, encoder, num_classes, trainable_encoder=False, **kwargs):
        if not isinstance(encoder, keras.layers.Layer):
            raise ValueError(
                f"encoder must be a keras Model or Layer mapping inputs to "
                f"(batch, features), got {type(encoder).__name__}."
            )
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        super().__init__(**kwargs)

        # === Layers ===
        self.encoder = encoder

        # === Config ===
        self.num_classes = int(num_classes)
        self.trainable_encoder = bool(trainable_encoder)
        self.encoder.trainable = self.trainable_encoder

    def set_encoder_trainable(self, trainable):
        """Freezes (False) or unfreezes (True) the encoder; compile again after."""
        self.trainable_encoder = bool(trainable)
        self.encoder.trainable = self.trainable_encoder

    def call(self, inputs, training=False):
        features = self.encoder(inputs, training=training and self.trainable_encoder)
        if len(features.shape) != 2:
            raise ValueError(
                f"the encoder must return (batch, features), got shape "
                f"{tuple(features.shape)}; pool or flatten its output."
            )
        x = features  # (batch, features)
        for layer in self.head_layers:
            x = layer(x, training=training)
        return x  # (batch, num_classes)

    def check_labels(self, y):
        """Asserts int labels in [0, num_classes) inside the step."""
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        message = (
            f"labels must lie in [0, {self.num_classes}) for num_classes="
            f"{self.num_classes}; fix the labels or raise num_classes"
        )
        with tf.control_dependencies(
            [
                tf.debugging.assert_non_negative(y, message=message),
                tf.debugging.assert_less(y, self.num_classes, message=message),
            ]
        ):
            return tf.identity(y)

    def default_loss(self):
        return None

    def compile(self, optimizer="adam", loss="auto", metrics="auto", **kwargs):
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.layers.serialize(self.encoder),
                "num_classes": self.num_classes,
                "trainable_encoder": self.trainable_encoder,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.layers.deserialize(config["encoder"])
        return cls(**config)
