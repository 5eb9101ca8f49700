"""TFDS builder for scikit-learn's bundled 8x8 handwritten digits.

The data ships inside scikit-learn (UCI "Optical Recognition of Handwritten
Digits", 1,797 images of 10 classes, pixel values 0..16), so it builds
offline. Pixels are rescaled to uint8 0..255 (`round(v * 255 / 16)`).

Fixed split, by position in scikit-learn's order: every fifth example
(index % 5 == 0) is `test` (360 images), the others are `train` (1,437).

Example:

>>> import tensorflow_datasets as tfds
>>> import keras_pt.data  # registers the builder
>>> ds = tfds.load("digits", split="train", data_dir="/tmp/tfds")  # doctest: +SKIP
"""

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 1437
NUM_TEST = 360


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 8x8 handwritten digits as a TFDS data set."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self):
        return self.dataset_info_from_configs(
            description=(
                "8x8 grayscale handwritten digits bundled with scikit-learn "
                "(UCI optdigits test set): 1,797 images, 10 classes. Split: "
                "index % 5 == 0 is test, the rest train."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # The data is installed with scikit-learn.
        return {
            "train": self._generate_examples(test=False),
            "test": self._generate_examples(test=True),
        }

    def _generate_examples(self, test):
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        for index, (image, label) in enumerate(zip(images, digits.target)):
            if (index % 5 == 0) == test:
                yield index, {"image": image[..., None], "label": int(label)}
