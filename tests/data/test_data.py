import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pt import data
from keras_pt.data.tfds_prepare import download_and_prepare
from tests.test_case import TestCase


class DigitsTest(TestCase):
    def test_embedded_digits(self):
        d = data.load_image_dataset("digits", data_dir=self.get_temp_dir())
        self.assertEqual((d.image_shape, d.num_classes, d.num_train, d.num_test), ((8, 8, 1), 10, 1437, 360))
        x, y = next(iter(d.train.batch(2000)))
        self.assertEqual(x.shape, (1437, 8, 8, 1))
        self.assertEqual(x.dtype, tf.float32)
        self.assertAllInRange(x, 0.0, 1.0)
        self.assertEqual(float(tf.reduce_max(x)), 1.0)
        self.assertAllEqual(np.bincount(y.numpy(), minlength=10) > 100, [True] * 10)
        # Also loadable with plain tfds.load.
        ds = tfds.load("digits", split="test", data_dir=self.get_temp_dir())
        self.assertEqual(len(list(ds)), 360)

    def test_pipelines(self):
        d = data.load_image_dataset("digits", data_dir=self.get_temp_dir())
        batches = data.batch(data.unlabeled(d.train), 100, shuffle_seed=1)
        shapes = {tuple(b.shape) for b in batches}
        self.assertEqual(shapes, {(100, 8, 8, 1)})  # drop_remainder: static shapes
        a = data.labeled_subset(d.train, 5, seed=3, num_classes=10)
        b = data.labeled_subset(d.train, 5, seed=3, num_classes=10)
        c = data.labeled_subset(d.train, 5, seed=4, num_classes=10)
        ya = [y for _, y in a.as_numpy_iterator()]
        self.assertEqual(np.bincount(ya).tolist(), [5] * 10)
        xa = np.stack([x for x, _ in a.as_numpy_iterator()])
        self.assertAllEqual(xa, np.stack([x for x, _ in b.as_numpy_iterator()]))
        self.assertNotAllClose(xa, np.stack([x for x, _ in c.as_numpy_iterator()]))

    def test_mock_tfds_mnist(self):
        with tfds.testing.mock_data(num_examples=40):
            d = data.load_image_dataset("mnist", data_dir=self.get_temp_dir())
            self.assertEqual(d.image_shape, (28, 28, 1))
            x, y = next(iter(data.batch(d.train, 8)))
            self.assertEqual(x.shape, (8, 28, 28, 1))
            self.assertAllInRange(x, 0.0, 1.0)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "unknown data set 'digitz'.*digits"):
            data.load_image_dataset("digitz", data_dir=self.get_temp_dir())
        empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 8, 8, 1), "float32"), np.zeros((0,), "int32")))
        with self.assertRaisesRegex(ValueError, "empty"):
            data.batch(empty, 4)
        with self.assertRaisesRegex(ValueError, "empty"):
            data.labeled_subset(empty, 2)
        small = tf.data.Dataset.from_tensor_slices(np.zeros((3, 2), "float32"))
        with self.assertRaisesRegex(ValueError, "fewer than batch_size=4"):
            data.batch(small, 4)
        few = tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), np.array([0, 0, 1, 1], "int32")))
        with self.assertRaisesRegex(ValueError, "class 0 has only 2 examples"):
            data.labeled_subset(few, 3, num_classes=2)
        with self.assertRaisesRegex(ValueError, r"labels must lie in \[0, 2\).*\[5\]"):
            data.check_labels([0, 1, 5], 2)


class _RacedBuilder:
    """A builder whose preparation loses the race: another process renamed
    its copy into place first (TFDS then raises `FileExistsError`)."""

    def download_and_prepare(self):
        raise FileExistsError("Cannot rename .../incomplete.XXXX_1.0.0. Destination .../1.0.0 already exists.")


class PrepareRaceTest(TestCase):
    def test_the_copy_another_process_prepared_is_used(self):
        data_dir = self.get_temp_dir()
        tfds.builder("digits", data_dir=data_dir).download_and_prepare()  # the other process
        builder = download_and_prepare(_RacedBuilder(), "digits", data_dir)
        self.assertTrue(builder.is_prepared())
        self.assertEqual(len(list(builder.as_dataset(split="test"))), 360)

    def test_an_unprepared_data_set_still_fails(self):
        with self.assertRaises(FileExistsError):
            download_and_prepare(_RacedBuilder(), "digits", os.path.join(self.get_temp_dir(), "empty"))
