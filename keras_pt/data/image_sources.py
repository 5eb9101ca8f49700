"""Image data from what users have on disk or in memory.

`load_images(source)` takes a TFDS name, an `ImageData`, in-memory arrays,
or a path: a folder with one sub-folder of images per class (optionally
under `train/` and `test/`, plus an `unlabeled/` folder of extra images for
pre-training), a NumPy `.npz`/`.npy` file, or MNIST-format IDX files
(`.gz` or not). Every source gives the same `ImageData` the recipes use:
float32 images in [0, 1] of one shape `(height, width, channels)`, int32
labels, a train and a test split (the source's own, or a seeded split of
`test_fraction`).
"""

import gzip
import os
import struct

import numpy as np
import tensorflow as tf

from keras_pt.data.images import ImageData, check_labels, load_image_dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
UNLABELED_FOLDER = "unlabeled"


def image_data_from_arrays(
    train_images,
    train_labels,
    test_images=None,
    test_labels=None,
    unlabeled_images=None,
    test_fraction=0.2,
    seed=0,
    num_classes=None,
    name="arrays",
    class_names=None,
):
    """`ImageData` from NumPy arrays.

    Args:
        train_images: array `(n, h, w)` or `(n, h, w, c)`, integers in
            [0, 255] or floats in [0, 1].
        train_labels: int array `(n,)`, labels in `[0, num_classes)`.
        test_images, test_labels: the test split, or None to hold out a
            seeded `test_fraction` of the training examples (stratified by
            class).
        unlabeled_images: optional extra images for pre-training only.
        test_fraction: float in (0, 1). Defaults to 0.2.
        seed: int. Seed of the held-out split. Defaults to 0.
        num_classes: int or None. Defaults to the largest label + 1.
        name: str. A name for tables and logs.
        class_names: list of str or None. The class of each label id.

    Raises:
        ValueError: for empty arrays, mismatched lengths, images of another
            rank, labels out of range, or fewer than two classes.
    """
    images = _as_images(train_images, "train_images")
    labels = _as_labels(train_labels, len(images), "train_labels")
    if test_images is None:
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}.")
        train_index, test_index = _stratified_split(labels, float(test_fraction), seed)
        images, test, labels, test_labels = (
            images[train_index],
            images[test_index],
            labels[train_index],
            labels[test_index],
        )
    else:
        test = _as_images(test_images, "test_images")
        test_labels = _as_labels(test_labels, len(test), "test_labels")
        if test.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"test images have shape {test.shape[1:]}, train images {images.shape[1:]}; "
                "give both splits images of one shape."
            )
    num_classes = int(max(labels.max(), test_labels.max())) + 1 if num_classes is None else int(num_classes)
    check_labels(labels, num_classes)
    check_labels(test_labels, num_classes)
    if len(np.unique(labels)) < 2:
        raise ValueError(
            f"the training labels hold {len(np.unique(labels))} class; a classifier needs at least two classes."
        )
    unlabeled = None
    if unlabeled_images is not None:
        unlabeled = _as_images(unlabeled_images, "unlabeled_images")
        if unlabeled.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"unlabelled images have shape {unlabeled.shape[1:]}, labelled ones "
                f"{images.shape[1:]}; give every image one shape."
            )
        unlabeled = tf.data.Dataset.from_tensor_slices(unlabeled)
    return ImageData(
        name=name,
        train=tf.data.Dataset.from_tensor_slices((images, labels)),
        test=tf.data.Dataset.from_tensor_slices((test, test_labels)),
        image_shape=tuple(int(d) for d in images.shape[1:]),
        num_classes=num_classes,
        num_train=len(images),
        num_test=len(test),
        unlabeled=unlabeled,
        class_names=None if class_names is None else list(class_names),
    )


def _as_images(images, what):
    images = np.asarray(images)
    if images.size == 0:
        raise ValueError(f"{what} is empty: there are no images to train on.")
    if images.ndim == 3:
        images = images[..., None]  # (n, h, w) -> (n, h, w, 1)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{what} must have shape (n, height, width) or (n, height, width, channels) "
            f"with 1, 3 or 4 channels; got {images.shape}."
        )
    if images.dtype.kind in "iu":
        if images.min() < 0 or images.max() > 255:
            raise ValueError(f"{what} holds integers outside [0, 255]; scale them to bytes or floats in [0, 1].")
        return (images / 255.0).astype(np.float32)
    if images.dtype.kind == "f":
        if images.min() < 0.0 or images.max() > 1.0:
            raise ValueError(
                f"{what} holds floats outside [0, 1] (min {images.min():.3g}, max "
                f"{images.max():.3g}); scale them to [0, 1] or pass uint8 images."
            )
        return images.astype(np.float32)
    raise ValueError(f"{what} must hold numbers; got dtype {images.dtype}.")


def _as_labels(labels, count, what):
    if labels is None:
        raise ValueError(f"{what} is missing: labelled images need one label each.")
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"{what} must be integer class ids; got dtype {labels.dtype}.")
    if len(labels) != count:
        raise ValueError(f"{what} has {len(labels)} labels for {count} images; give one label per image.")
    return labels.astype(np.int32)


def _stratified_split(labels, test_fraction, seed):
    rng = np.random.RandomState(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(members)))
        if len(members) > 1:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return np.sort(np.asarray(train, int)), np.sort(np.asarray(test, int))


# === Files ===


def _read_image(path, image_size, channels):
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
            if image_size is not None:
                image = image.resize((image_size[1], image_size[0]), Image.BILINEAR)
            return np.asarray(image, np.uint8)
    except OSError as error:
        raise ValueError(f"{path} is not an image that can be read ({error}); remove it or convert it.") from error


def _image_files(folder):
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )


def _channels_of(paths):
    from PIL import Image

    with Image.open(paths[0]) as image:
        return 1 if image.mode in ("1", "L", "I", "I;16", "F", "P") and image.mode != "P" else 3


def _read_images(paths, image_size, channels, root):
    images = [_read_image(p, image_size, channels) for p in paths]
    shapes = sorted({im.shape[:2] for im in images})
    if len(shapes) > 1:
        raise ValueError(
            f"images under {root} have different sizes {shapes[:4]}; pass image_size=(height, "
            "width) (--image_size) to resize them all."
        )
    return np.stack(images)


def load_image_folder(path, image_size=None, channels=None, test_fraction=0.2, seed=0):
    """`ImageData` from a folder with one sub-folder of images per class.

    Layouts: `path/<class>/*.png` (a seeded, stratified `test_fraction` is
    held out), or `path/train/<class>/...` and `path/test/<class>/...`.
    Class names are the sub-folder names, sorted; label `i` is the `i`-th.
    An `unlabeled/` folder (beside the class folders, or beside `train/`)
    holds images used for pre-training only.

    Args:
        path: str. The folder.
        image_size: `(height, width)` or None. Resize every image to it;
            None keeps the images' own size, which must then be the same
            for all.
        channels: 1, 3 or None. Grey or RGB; None takes the first image's
            (grey stays grey, anything else becomes RGB).
        test_fraction, seed: the held-out split when there is no `test/`.

    Raises:
        ValueError: for a missing or empty folder, a single class, mixed
            image sizes without `image_size`, or an unreadable image.
    """
    if not os.path.isdir(path):
        raise ValueError(f"no folder {path!r}: give a folder with one sub-folder of images per class.")
    image_size = None if image_size is None else tuple(int(s) for s in image_size)
    split_root = os.path.join(path, "train")
    has_splits = os.path.isdir(split_root)
    train_root = split_root if has_splits else path
    class_names = sorted(
        d
        for d in os.listdir(train_root)
        if os.path.isdir(os.path.join(train_root, d)) and d != UNLABELED_FOLDER and d != "test"
    )
    if len(class_names) < 2:
        raise ValueError(
            f"{train_root!r} has {len(class_names)} class folder(s) {class_names}; a classifier "
            "needs one sub-folder of images per class, at least two."
        )

    def read_split(root):
        paths, labels = [], []
        for label, name in enumerate(class_names):
            folder = os.path.join(root, name)
            files = _image_files(folder) if os.path.isdir(folder) else []
            paths += files
            labels += [label] * len(files)
        return paths, np.asarray(labels, np.int32)

    train_paths, train_labels = read_split(train_root)
    if not train_paths:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {train_root!r}.")
    channels = channels or _channels_of(train_paths)
    test_images = test_labels = None
    if has_splits:
        test_paths, test_labels = read_split(os.path.join(path, "test"))
        if not test_paths:
            raise ValueError(f"{os.path.join(path, 'test')!r} has no images in its class folders.")
        test_images = _read_images(test_paths, image_size, channels, path)
    unlabeled = None
    unlabeled_folder = os.path.join(path, UNLABELED_FOLDER)
    if os.path.isdir(unlabeled_folder) and _image_files(unlabeled_folder):
        unlabeled = _read_images(_image_files(unlabeled_folder), image_size, channels, path)
    train_images = _read_images(train_paths, image_size, channels, path)
    if test_images is not None and test_images.shape[1:] != train_images.shape[1:]:
        raise ValueError(
            f"test images are {test_images.shape[1:3]}, train images {train_images.shape[1:3]}; "
            "pass image_size=(height, width) to resize them all."
        )
    return image_data_from_arrays(
        train_images,
        train_labels,
        test_images,
        test_labels,
        unlabeled_images=unlabeled,
        test_fraction=test_fraction,
        seed=seed,
        num_classes=len(class_names),
        name=os.path.basename(os.path.normpath(path)),
        class_names=class_names,
    )


_NPZ_KEYS = (
    ("x_train", "y_train", "x_test", "y_test"),  # keras.datasets
    ("train_images", "train_labels", "test_images", "test_labels"),
    ("images", "labels", None, None),
    ("x", "y", None, None),
)


def load_numpy_images(path, test_fraction=0.2, seed=0):
    """`ImageData` from a `.npz` file (or a `.npy` of images with a
    `<name>_labels.npy` beside it).

    `.npz` keys: `x_train, y_train[, x_test, y_test]` (the keras.datasets
    layout), `train_images, train_labels[, test_images, test_labels]`,
    `images, labels` or `x, y`; an `unlabeled` array is used for
    pre-training only. Without a test split a seeded `test_fraction` is
    held out.
    """
    if not os.path.isfile(path):
        raise ValueError(f"no file {path!r}.")
    name = os.path.splitext(os.path.basename(path))[0]
    if path.endswith(".npy"):
        labels_path = path[: -len(".npy")] + "_labels.npy"
        if not os.path.isfile(labels_path):
            raise ValueError(
                f"{path} holds images; put their labels in {labels_path} (one int per "
                "image), or save both in one .npz with keys images and labels."
            )
        return image_data_from_arrays(
            np.load(path), np.load(labels_path), test_fraction=test_fraction, seed=seed, name=name
        )
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a NumPy .npz/.npy file that can be read ({error}).") from error
    keys = set(arrays.files)
    for x, y, x_test, y_test in _NPZ_KEYS:
        if x in keys and y in keys:
            has_test = x_test in keys and y_test in keys
            return image_data_from_arrays(
                arrays[x],
                arrays[y],
                arrays[x_test] if has_test else None,
                arrays[y_test] if has_test else None,
                unlabeled_images=arrays["unlabeled"] if "unlabeled" in keys else None,
                test_fraction=test_fraction,
                seed=seed,
                name=name,
            )
    raise ValueError(
        f"{path} has arrays {sorted(keys)}; name them x_train, y_train (and x_test, y_test), or images and labels."
    )


def read_idx(path):
    """A NumPy array from an IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ValueError(f"cannot read IDX file {path!r} ({error}).") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (MNIST format).")
    rank = data[3]
    dims = struct.unpack(f">{rank}I", data[4 : 4 + 4 * rank])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * rank)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: {body.size} values for shape {dims}.")
    return body.reshape(dims)


def _find_idx(folder, kind, split):
    prefix = "train" if split == "train" else "t10k"
    for name in os.listdir(folder):
        lower = name.lower()
        if lower.startswith(prefix) and kind in lower and ("idx" in lower or lower.endswith(".gz")):
            return os.path.join(folder, name)
    return None


def load_idx_images(path, test_fraction=0.2, seed=0):
    """`ImageData` from MNIST-format IDX files in a folder.

    The folder holds `train-images-idx3-ubyte[.gz]` and
    `train-labels-idx1-ubyte[.gz]`, and optionally the `t10k-` test files
    (the layout of MNIST and of data sets distributed like it).
    """
    if not os.path.isdir(path):
        raise ValueError(f"no folder {path!r} with IDX files.")
    train_images, train_labels = _find_idx(path, "images", "train"), _find_idx(path, "labels", "train")
    if not train_images or not train_labels:
        raise ValueError(f"{path!r} has no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] files.")
    test_images, test_labels = _find_idx(path, "images", "test"), _find_idx(path, "labels", "test")
    has_test = bool(test_images and test_labels)
    return image_data_from_arrays(
        read_idx(train_images),
        read_idx(train_labels),
        read_idx(test_images) if has_test else None,
        read_idx(test_labels) if has_test else None,
        test_fraction=test_fraction,
        seed=seed,
        name=os.path.basename(os.path.normpath(path)),
    )


def _is_idx_folder(path):
    return os.path.isdir(path) and _find_idx(path, "images", "train") is not None


def load_images(source, data_dir=None, image_size=None, test_fraction=0.2, seed=0, download=False):
    """`ImageData` from any image source the package takes.

    Args:
        source: a TFDS name (`"digits"` is embedded; `mnist`, ... need
            `data_dir` or TFDS's cache), a path (class folders, `.npz` /
            `.npy`, a folder of IDX files), an `ImageData`, or a tuple of
            arrays `(images, labels)` / `(x_train, y_train, x_test, y_test)`.
        data_dir: TFDS data directory, for names.
        image_size: `(height, width)` or None: resize folder images.
        test_fraction, seed: the held-out split of sources without one.
        download: bool. Let TFDS download a named data set. Defaults to
            False (the data must be prepared in `data_dir` already).

    Raises:
        ValueError: with what to change, for a source that cannot be read.
    """
    if isinstance(source, ImageData):
        return source
    if isinstance(source, tuple):
        if len(source) not in (2, 4):
            raise ValueError(
                "array sources are (images, labels) or (x_train, y_train, x_test, y_test); "
                f"got a tuple of {len(source)}."
            )
        return image_data_from_arrays(*source, test_fraction=test_fraction, seed=seed)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            f"an image source is a TFDS name, a path, an ImageData or a tuple of arrays; got {type(source).__name__}."
        )
    source = os.fspath(source)
    if os.path.isdir(source):
        if _is_idx_folder(source):
            return load_idx_images(source, test_fraction, seed)
        return load_image_folder(source, image_size, test_fraction=test_fraction, seed=seed)
    if os.path.isfile(source):
        if source.endswith((".npz", ".npy")):
            return load_numpy_images(source, test_fraction, seed)
        raise ValueError(
            f"{source!r} is a file of an unknown kind; give a folder of class folders, a folder "
            "of IDX files, or a .npz/.npy file."
        )
    if source.startswith((".", "/", "~")) or source.endswith((".npz", ".npy", ".gz")):
        raise ValueError(f"no file or folder {source!r}.")
    return load_image_dataset(source, data_dir=data_dir, download=download)
