"""Image data as `tf.data` pipelines for pre-training and fine-tuning.

`load_image_dataset` reads any TFDS image classification data set (the
embedded `digits`, or `mnist`, `fashion_mnist`, `cifar10`, ... where they can
be downloaded or are already in `data_dir`) and scales images to [0, 1].
`batch`, `unlabeled` and `labeled_subset` make the views the models train on.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pt.data import digits as _digits  # noqa: F401  (registers "digits")
from keras_pt.data.batching import batch  # noqa: F401 (once defined here)
from keras_pt.data.tfds_prepare import download_and_prepare

EMBEDDED_IMAGE_DATASETS = ("digits",)
DEFAULT_DATA_DIR = os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


@dataclasses.dataclass
class ImageData:
    """Train and test splits of an image classification data set.

    Attributes:
        name: str. The TFDS name.
        train: unbatched `tf.data.Dataset` of `(image, label)`, images
            float32 in [0, 1] of shape `image_shape`, labels int32.
        test: the same for the test split.
        image_shape: tuple `(height, width, channels)`.
        num_classes: int.
        num_train: int. Examples in `train`.
        num_test: int. Examples in `test`.
        unlabeled: unbatched `tf.data.Dataset` of images, or None. Extra
            images without labels (pre-training only).
        class_names: list of str, or None. The class of each label id.
    """

    name: str
    train: tf.data.Dataset
    test: tf.data.Dataset
    image_shape: tuple
    num_classes: int
    num_train: int
    num_test: int
    unlabeled: tf.data.Dataset = None
    class_names: list = None

    def pretraining_images(self):
        """Every image without its label: `train`, then `unlabeled`."""
        images = unlabeled(self.train)
        return images if self.unlabeled is None else images.concatenate(self.unlabeled)


def load_image_dataset(name="digits", data_dir=None, download=True):
    """Loads a TFDS image classification data set scaled to [0, 1].

    Args:
        name: str. A TFDS name with `image` and `label` features and `train`
            and `test` splits. Defaults to `"digits"` (embedded, offline).
        data_dir: str or None. TFDS data directory (a `gs://` path works).
            Defaults to TFDS's default (`~/tensorflow_datasets`).
        download: bool. Whether TFDS may download and prepare the data.
            Embedded data sets are always prepared locally. Defaults to True.

    Raises:
        ValueError: for an unknown name, a data set without image and label
            features, or an empty split.
    """
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"unknown data set {name!r}: not a TFDS data set name. Use the "
            f"embedded {', '.join(EMBEDDED_IMAGE_DATASETS)} (offline) or a "
            "TFDS image data set such as mnist, fashion_mnist or cifar10."
        ) from error
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise ValueError(
            f"data set {name!r} has features {sorted(features.keys())}; an image "
            "data set needs 'image' and 'label' features."
        )
    if download or name in EMBEDDED_IMAGE_DATASETS:
        builder = download_and_prepare(builder, name, data_dir)
    elif not builder.is_prepared():
        raise ValueError(
            f"data set {name!r} is not prepared in {builder.data_dir_root!r} and "
            "download=False. Where the machine reaches the internet, allow the "
            "download (download=True, or the examples' --download); offline, point "
            "to local files instead: a folder with one sub-folder of images per "
            "class, a .npz file (x_train, y_train[, x_test, y_test]) or a folder of "
            "MNIST-format IDX files (keras_pt.data.load_images)."
        )
    image_shape = tuple(features["image"].shape)
    if None in image_shape:
        raise ValueError(
            f"data set {name!r} has images of varying shape {image_shape}; resize them to a fixed shape first."
        )
    scale = float(np.iinfo(features["image"].np_dtype).max)

    def prepare(split):
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        try:
            num = builder.info.splits[split].num_examples
        except KeyError:  # info without split statistics (e.g. mocked data)
            num = int(ds.cardinality())
        if num == 0:
            raise ValueError(f"split {split!r} of data set {name!r} is empty.")

        def scale_pair(image, label):
            image = tf.cast(image, tf.float32) / scale
            return image, tf.cast(label, tf.int32)

        ds = ds.map(scale_pair, num_parallel_calls=tf.data.AUTOTUNE)
        return ds, num

    train, num_train = prepare("train")
    test, num_test = prepare("test")
    return ImageData(
        name=name,
        train=train.cache(),
        test=test.cache(),
        image_shape=image_shape,
        num_classes=features["label"].num_classes,
        num_train=num_train,
        num_test=num_test,
    )


def unlabeled(dataset):
    """Drops the labels of an `(image, label)` data set: images only."""
    return dataset.map(lambda image, label: image, num_parallel_calls=tf.data.AUTOTUNE)


def labeled_subset(dataset, labels_per_class, seed=0, num_classes=None):
    """The first `labels_per_class` examples of each class after a seeded shuffle.

    Deterministic given `seed`. Runs on the host (the data set is iterated
    once), which is fine for the labelled subsets fine-tuning uses.

    Args:
        dataset: unbatched `tf.data.Dataset` of `(image, label)`.
        labels_per_class: int. Examples to keep for each class.
        seed: int. Seed of the shuffle. Defaults to 0.
        num_classes: int or None. Expected number of classes; labels must lie
            in `[0, num_classes)`. Defaults to the labels seen.

    Raises:
        ValueError: if a class has fewer than `labels_per_class` examples, a
            label is out of range, or the data set is empty.
    """
    if labels_per_class <= 0:
        raise ValueError(f"labels_per_class must be positive, got {labels_per_class}.")
    images, labels = [], []
    for image, label in dataset.as_numpy_iterator():
        images.append(image)
        labels.append(label)
    if not labels:
        raise ValueError("the data set is empty: there is nothing to take labels from.")
    labels = np.asarray(labels, dtype=np.int32)
    images = np.stack(images)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    check_labels(labels, num_classes)
    order = np.random.RandomState(seed).permutation(len(labels))
    keep = []
    for c in range(num_classes):
        members = order[labels[order] == c][:labels_per_class]
        if len(members) < labels_per_class:
            raise ValueError(
                f"class {c} has only {len(members)} examples, fewer than "
                f"labels_per_class={labels_per_class}; lower labels_per_class."
            )
        keep.extend(members.tolist())
    keep = np.asarray(sorted(keep, key=lambda i: np.where(order == i)[0][0]))
    return tf.data.Dataset.from_tensor_slices((images[keep], labels[keep]))


def check_labels(labels, num_classes):
    """Raises a ValueError unless every label lies in `[0, num_classes)`."""
    labels = np.asarray(labels)
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for num_classes={num_classes}, "
            f"but found {sorted(set(bad.tolist()))[:5]}; fix the labels or "
            "raise num_classes."
        )
