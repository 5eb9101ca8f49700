from keras_pt.models.discriminator import Discriminator
from keras_pt.models.gan import GAN
from keras_pt.models.generator import Generator
