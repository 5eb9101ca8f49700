"""keras_pt: pre-train -> fine-tune models for TensorFlow / Keras 3."""

__version__ = "0.1.0"

# GAN pre-training.
from keras_pt.models.discriminator import Discriminator  # noqa: E402
from keras_pt.models.gan import GAN  # noqa: E402
from keras_pt.models.generator import Generator  # noqa: E402
