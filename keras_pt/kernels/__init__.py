"""Pure `tf.function(jit_compile=True)` ops used inside train steps."""

from keras_pt.kernels import hinge, noise, random
from keras_pt.kernels import gan_losses, gradient_penalty
from keras_pt.kernels import distillation
from keras_pt.kernels import dropout, mlm_masking
