"""FeatureClassifier: the image classifier whose features GAN metrics use."""

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_pt")
class FeatureClassifier(keras.Model):
    """Small CNN trained on a labelled image data set; its penultimate layer
    is the feature space of the Fréchet and kernel distances.

    As TF-GAN does for MNIST, generated images are scored in the feature space
    of a classifier trained on the same data set (Inception features say
    little about 8x8 digits). `call(images)` returns logits `(batch,
    num_classes)`; `features(images)` returns `(batch, feature_dim)`. Images
    are in [0, 1], as `keras_pt.data.load_image_dataset` gives them.
    `train_feature_classifier` trains and saves one.

    Args:
        image_shape: list of int. `(height, width, channels)`.
        num_classes: int. Number of classes.
        filters: int. Filters of the first convolution (the second has
            twice as many). Defaults to 32.
        feature_dim: int. Size of the feature layer. Defaults to 128.

    Example:

    >>> classifier = FeatureClassifier([8, 8, 1], num_classes=10, filters=4)
    >>> classifier.features(np.zeros((2, 8, 8, 1), "float32")).shape
    TensorShape([2, 128])
    """

    def __init__(self, image_shape, num_classes, filters=32, feature_dim=128, **kwargs):
        super().__init__(**kwargs)
        image_shape = [int(d) for d in image_shape]
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (height, width, channels); got {image_shape}.")
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}.")

        # === Layers ===
        self.feature_extractor = keras.Sequential(
            [
                keras.Input(tuple(image_shape)),
                keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
                keras.layers.Conv2D(
                    2 * filters, 3, strides=2, padding="same", activation="relu"
                ),  # (b, h / 2, w / 2, 2 * filters)
                keras.layers.GlobalAveragePooling2D(),  # (b, 2 * filters)
                keras.layers.Dense(feature_dim, activation="relu"),  # (b, feature_dim)
            ],
            name="feature_extractor",
        )
        self.logits = keras.layers.Dense(int(num_classes), name="logits")
        self.logits.build((None, int(feature_dim)))

        # === Config ===
        self.image_shape = image_shape
        self.num_classes = int(num_classes)
        self.filters = int(filters)
        self.feature_dim = int(feature_dim)
        self.built = True

    def features(self, images):
        return self.feature_extractor(images, training=False)

    def call(self, inputs, training=False):
        return self.logits(self.feature_extractor(inputs, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "num_classes": self.num_classes,
                "filters": self.filters,
                "feature_dim": self.feature_dim,
            }
        )
        return config


def train_feature_classifier(data, epochs=20, batch_size=64, filters=32, feature_dim=128, save_path=None, seed=0):
    """Trains a `FeatureClassifier` on `data.train` and reports test accuracy.

    Args:
        data: `keras_pt.data.ImageData` (from `load_image_dataset`).
        epochs: int. Defaults to 20 (a few seconds on the 8x8 digits).
        batch_size: int. Defaults to 64.
        filters: int. See `FeatureClassifier`. Defaults to 32.
        feature_dim: int. See `FeatureClassifier`. Defaults to 128.
        save_path: str or None. Where to save the `.keras` file. Defaults to
            None (not saved).
        seed: int. Seed of the weights and the shuffle. Defaults to 0.

    Returns:
        `(classifier, test_accuracy)`.
    """
    keras.utils.set_random_seed(seed)
    classifier = FeatureClassifier(list(data.image_shape), data.num_classes, filters=filters, feature_dim=feature_dim)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    train = data.train.shuffle(10_000, seed=seed).batch(batch_size)
    classifier.fit(train, epochs=epochs, verbose=0, shuffle=False)  # shuffled by tf.data
    _, accuracy = classifier.evaluate(data.test.batch(256), verbose=0)
    if save_path:
        classifier.save(save_path)
    return classifier, float(accuracy)


def images_array(dataset, limit=None):
    """Stacks the images of an unbatched `(image, label)` or image data set."""
    images = []
    for item in dataset.as_numpy_iterator():
        images.append(item[0] if isinstance(item, tuple) else item)
        if limit is not None and len(images) >= limit:
            break
    if not images:
        raise ValueError("the data set is empty: no images to evaluate against.")
    return np.stack(images).astype(np.float32)
