"""Models: one file per public model, each owning its training step."""

from keras_pt.models.autoencoder import Autoencoder
from keras_pt.models.denoising_autoencoder import DenoisingAutoencoder
from keras_pt.models.encoder_classifier import EncoderClassifier
from keras_pt.models.mlp_classifier import MLPClassifier
from keras_pt.models.sim_clr import SimCLR
from keras_pt.models.svm_classifier import SVMClassifier
from keras_pt.models.discriminator import Discriminator
from keras_pt.models.gan import GAN
from keras_pt.models.generator import Generator
from keras_pt.models.mini_gpt import MiniGPT
from keras_pt.models.sentence_encoder import SentenceEncoder
