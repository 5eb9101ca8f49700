"""Image data from class folders, .npz/.npy files, IDX files and arrays."""

import os

import numpy as np
from PIL import Image

from keras_pt import data
from tests import fixtures
from tests.test_case import TestCase


def _digits(n_per_class=6, num_classes=3, size=8, seed=0):
    return fixtures.toy_images(n_per_class, num_classes, size, seed)


def _write_folder(root, images, labels, names=("cat", "dog", "owl"), size=None):
    fixtures.write_image_folder(root, images, labels, names, resize_odd_to=size)


_write_idx = fixtures.write_idx


def _arrays(image_data):
    x, y = zip(*image_data.train.as_numpy_iterator())
    return np.stack(x), np.asarray(y)


class ImageSourcesTest(TestCase):
    def test_class_folders_with_held_out_split_and_unlabeled(self):
        images, labels = _digits()
        root = self.get_temp_dir() + "/folders"
        _write_folder(root, images, labels)
        os.makedirs(os.path.join(root, "unlabeled"))
        Image.fromarray(images[0]).save(os.path.join(root, "unlabeled", "u.png"))
        result = data.load_images(root, test_fraction=0.34, seed=1)
        self.assertEqual(result.image_shape, (8, 8, 1))
        self.assertEqual(result.class_names, ["cat", "dog", "owl"])
        self.assertEqual((result.num_train, result.num_test), (12, 6))
        x, y = _arrays(result)
        self.assertEqual(x.dtype, np.float32)
        self.assertBetween(float(x.max()), 0.99, 1.0)
        # Each image keeps its label: the bright row is its class.
        self.assertAllEqual(np.argmax(x[..., 0].mean(axis=2), axis=1), y)
        self.assertEqual(len(list(result.pretraining_images())), 13)

    def test_train_test_folders_and_resizing(self):
        images, labels = _digits()
        root = self.get_temp_dir() + "/splits"
        _write_folder(os.path.join(root, "train"), images, labels, size=(12, 12))
        _write_folder(os.path.join(root, "test"), images[::2], labels[::2])
        with self.assertRaisesRegex(ValueError, r"different sizes.*image_size=\(height, width\)"):
            data.load_images(root)
        result = data.load_images(root, image_size=(28, 28))
        self.assertEqual(result.image_shape, (28, 28, 1))
        self.assertEqual((result.num_train, result.num_test), (18, 9))

    def test_npz_and_npy(self):
        images, labels = _digits()
        path = os.path.join(self.get_temp_dir(), "mine.npz")
        np.savez(path, x_train=images, y_train=labels, x_test=images[:3], y_test=labels[:3])
        result = data.load_images(path)
        self.assertEqual((result.num_train, result.num_test, result.num_classes), (18, 3, 3))
        x, y = _arrays(result)
        self.assertAllClose(x[..., 0], images / 255.0)
        self.assertAllEqual(y, labels)
        npy = os.path.join(self.get_temp_dir(), "pics.npy")
        np.save(npy, images.astype(np.float32) / 255.0)
        with self.assertRaisesRegex(ValueError, "pics_labels.npy"):
            data.load_images(npy)
        np.save(npy[:-4] + "_labels.npy", labels)
        self.assertEqual(data.load_images(npy).num_classes, 3)
        bad = os.path.join(self.get_temp_dir(), "bad.npz")
        np.savez(bad, pictures=images)
        with self.assertRaisesRegex(ValueError, r"has arrays \['pictures'\]; name them x_train"):
            data.load_images(bad)

    def test_idx_files(self):
        images, labels = _digits(size=28)
        for suffix in ("", ".gz"):
            root = os.path.join(self.get_temp_dir(), "idx" + suffix)
            os.makedirs(root)
            _write_idx(os.path.join(root, "train-images-idx3-ubyte" + suffix), images)
            _write_idx(os.path.join(root, "train-labels-idx1-ubyte" + suffix), labels)
            _write_idx(os.path.join(root, "t10k-images-idx3-ubyte" + suffix), images[:4])
            _write_idx(os.path.join(root, "t10k-labels-idx1-ubyte" + suffix), labels[:4])
            result = data.load_images(root)
            self.assertEqual((result.image_shape, result.num_train, result.num_test), ((28, 28, 1), 18, 4))
            self.assertAllEqual(_arrays(result)[1], labels)
        truncated = os.path.join(self.get_temp_dir(), "t.idx")
        _write_idx(truncated, images)
        with open(truncated, "r+b") as f:
            f.truncate(100)
        with self.assertRaisesRegex(ValueError, "truncated"):
            data.read_idx(truncated)

    def test_arrays(self):
        images, labels = _digits()
        result = data.load_images((images, labels), test_fraction=0.5, seed=0)
        self.assertEqual((result.num_train, result.num_test), (9, 9))
        _, test_labels = zip(*result.test.as_numpy_iterator())
        self.assertEqual(sorted(np.bincount(test_labels).tolist()), [3, 3, 3])  # stratified

    def test_bad_sources(self):
        images, labels = _digits()
        root = self.get_temp_dir()
        one_class = os.path.join(root, "one")
        _write_folder(one_class, images[labels == 0], labels[labels == 0])
        cases = [
            (os.path.join(root, "missing"), "no file or folder"),
            ("./nothing_here", "no file or folder"),
            (one_class, r"1 class folder\(s\).*at least two"),
            ((images, labels[:5]), "5 labels for 18 images"),
            ((images[:0], labels[:0]), "is empty"),
            ((images.astype(np.float32), labels), r"floats outside \[0, 1\]"),
            ((images, np.zeros_like(labels)), "at least two classes"),
            ((images, labels - 1), r"labels must lie in \[0, "),
            (3, "got int"),
        ]
        for source, message in cases:
            with self.assertRaisesRegex(ValueError, message, msg=str(source)[:40]):
                data.load_images(source)
        empty = os.path.join(root, "empty.npz")
        open(empty, "wb").close()
        with self.assertRaisesRegex(ValueError, "is not a NumPy"):
            data.load_images(empty)

    def test_unprepared_tfds_name_fails_at_once_offline(self):
        with self.assertRaisesRegex(ValueError, "not prepared.*download=True.*offline, point to local files"):
            data.load_images("mnist", data_dir=self.get_temp_dir())
        with self.assertRaisesRegex(ValueError, "unknown data set 'no_such_set'"):
            data.load_images("no_such_set")
