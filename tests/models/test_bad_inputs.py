"""Every public model answers bad input with the package's own message."""

import numpy as np
import tensorflow as tf

import keras_pt
from keras_pt import data
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer
from tests.test_case import TestCase


def _models():
    ae = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=2)
    ae.compile("adam")
    dae = keras_pt.DenoisingAutoencoder(image_shape=(8, 8, 1), latent_dim=2)
    dae.compile("adam")
    svm = keras_pt.SVMClassifier(ae.encoder, 3)
    svm.compile()
    mlp = keras_pt.MLPClassifier(ae.encoder, 3)
    mlp.compile()
    texts = tf.data.Dataset.from_tensor_slices(["hello world the cat sat"] * 20)
    preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(data.learn_vocabulary(texts, 60, min_frequency=1)), 8)
    shape = dict(num_layers=1, hidden_dim=8, num_heads=1, intermediate_dim=16, max_sequence_length=8)
    bert = keras_pt.MiniBERT(preprocessor=preprocessor, **shape)
    bert.compile()
    classifier = keras_pt.MiniBERTClassifier(bert, 3)
    classifier.compile()
    gpt = keras_pt.MiniGPT(preprocessor=preprocessor, **shape)
    gpt.compile()
    sentences = keras_pt.SentenceEncoder(bert.encoder, preprocessor=preprocessor)
    sentences.compile("adam")
    student = keras_pt.MiniBERTClassifier(keras_pt.MiniBERT(preprocessor=preprocessor, **shape), 3)
    distiller = keras_pt.Distiller(classifier, student)
    distiller.compile("adam")
    generator = keras_pt.Generator((8, 8, 1), 4, base_filters=4)
    discriminator = keras_pt.Discriminator((8, 8, 1), base_filters=4)
    gan = keras_pt.GAN(generator, discriminator)
    gan.compile()
    simclr = keras_pt.SimCLR(image_shape=(8, 8, 1))
    simclr.compile("adam")
    return dict(
        image=[ae, dae, simclr, gan, discriminator],
        head=[svm, mlp],
        text=[bert, classifier, gpt, sentences, distiller],
        latent=[generator],
    )


class BadInputTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.models = _models()

    def assertOwnMessage(self, call, pattern):
        with self.assertRaisesRegex(ValueError, pattern) as caught:
            call()
        self.assertNotIn("Only input tensors", str(caught.exception))

    def test_empty_and_missing_inputs(self):
        empty_set = tf.data.Dataset.from_tensor_slices(np.zeros((0, 8, 8, 1), "float32")).batch(4)
        for group in self.models.values():
            for model in group:
                name = type(model).__name__
                with self.subTest(model=name):
                    self.assertOwnMessage(lambda: model([]), rf"{name}.call got an empty list; pass at least one")
                    self.assertOwnMessage(lambda: model.predict([]), rf"{name}.predict got an empty list")
                    self.assertOwnMessage(lambda: model.fit(None), rf"{name}.fit got no inputs \(x=None\); pass")
                    self.assertOwnMessage(lambda: model.fit(empty_set, verbose=0), rf"{name}.fit got an empty tf.data")
                    self.assertOwnMessage(
                        lambda: model.evaluate(empty_set, verbose=0), rf"{name}.evaluate got an empty tf.data"
                    )

    def test_text_given_to_image_models(self):
        for group in ("image", "head", "latent"):
            for model in self.models[group]:
                name = type(model).__name__
                with self.subTest(model=name):
                    self.assertOwnMessage(lambda: model("a cat"), rf"{name}.call takes .*not text \(a str\)")
                    self.assertOwnMessage(
                        lambda: model.predict(["a", "b"]), rf"{name}.predict takes .*not text \(a list of 2\)"
                    )
                    self.assertOwnMessage(
                        lambda: model.predict(np.zeros((0, 8, 8, 1), "float32")), rf"{name}.predict got 0 examples"
                    )

    def test_labels_out_of_range(self):
        images = np.zeros((4, 8, 8, 1), "float32")
        for model in self.models["head"]:
            name = type(model).__name__
            with self.subTest(model=name):
                self.assertOwnMessage(
                    lambda: model.fit(images, np.array([0, 1, 2, 3]), verbose=0),
                    rf"labels of {name}.fit must be class ids in \[0, num_classes=3\); got \[3\]",
                )
                self.assertOwnMessage(lambda: model.evaluate(images, np.array([0, -1, 2, 1]), verbose=0), r"got \[-1\]")
        classifier = self.models["text"][1]
        self.assertOwnMessage(
            lambda: classifier.fit(["hello world", "the cat"], np.array([0, 7]), verbose=0), r"got \[7\]"
        )
        # From a tf.data set: checked in the input pipeline, before the step.
        labelled = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1, 2, 5]))).batch(2)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, r"must be class ids in \[0, num_classes=3\)"):
            self.models["head"][1].fit(labelled, verbose=0)

    def test_text_models_fit_on_raw_strings(self):
        classifier = self.models["text"][1]
        history = classifier.fit(
            ["hello world", "the cat", "sat", "cat"], np.array([0, 1, 2, 1]), batch_size=2, verbose=0
        )
        self.assertTrue(np.isfinite(history.history["loss"][0]))
