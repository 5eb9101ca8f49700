"""GAN pre-training, Fréchet distance and a linear probe of the
discriminator's features (`train_gan`).

The probe follows the DCGAN paper's protocol: every discriminator layer's
activations, max-pooled to a `grid_size` grid and concatenated, standardised
with statistics of the unlabelled training images, then a linear L2-SVM
trained on `labels_per_class` labels per class. It is repeated for
`probe_draws` label draws, for the trained discriminator and for the same
discriminator at its initial weights, beside a linear SVM (scikit-learn
`LinearSVC`) and a logistic regression on the raw pixels of the same draws.
"""

import dataclasses
import time

import keras
import numpy as np

from keras_pt import data as data_lib
from keras_pt.callbacks import FrechetDistance, SampleGrid
from keras_pt.evaluation import GeneratorEvaluator, baselines, images_array, train_feature_classifier
from keras_pt.models.discriminator import Discriminator
from keras_pt.models.gan import GAN
from keras_pt.models.generator import Generator
from keras_pt.models.svm_classifier import SVMClassifier
from keras_pt.recipes.context import RunConfig, RunContext, resolve_config
from keras_pt.recipes.pretrain_finetune import labeled_arrays, load_config_images

LOSSES = ("non_saturating", "hinge", "wasserstein")


@dataclasses.dataclass
class GANConfig(RunConfig):
    """Settings of `train_gan` (see its arguments)."""

    dataset: object = "digits"
    image_size: object = None
    test_fraction: float = 0.2
    download: bool = False
    model_dir: str = "runs/train_gan"
    loss: str = "non_saturating"
    epochs: int = 40
    batch_size: int = 64
    latent_dim: int = 64
    base_filters: int = 64
    d_steps: int = 1
    # Two time-scale update rule (Heusel et al., 2017): a faster discriminator.
    d_learning_rate: float = 4e-4
    g_learning_rate: float = 1e-4
    jit_compile: object = "auto"
    steps_per_execution: int = 1
    labels_per_class: int = 5
    probe_draws: int = 5
    grid_size: int = 2
    svm_c: float = 0.1
    num_eval_samples: int = 1000
    classifier_epochs: int = 20
    svm_steps: int = 0


@dataclasses.dataclass
class GANResult:
    """What `train_gan` measured.

    Attributes:
        frechet_distances: list of float. Before training, then after each
            epoch (`FrechetDistance` on the feature classifier).
        classifier_accuracy: float. Test accuracy of the feature classifier.
        probe: dict mapping `"trained"` and `"untrained"` (the discriminator
            at its initial weights) to a `Spread` of the probe's test
            accuracies over the label draws.
        baselines: dict mapping `"linear_svm"` and `"logistic_regression"`
            (raw pixels, the same draws) to a `Spread`.
        seconds: float.
        files: dict of the paths written.
    """

    frechet_distances: list
    classifier_accuracy: float
    probe: dict
    baselines: dict
    seconds: float
    files: dict

    def table(self):
        """The probe's and the baselines' accuracy as text."""
        difference = baselines.Spread(
            np.subtract(self.probe["trained"].values, self.probe["untrained"].values).tolist()
        )
        rows = [
            ("SVM on trained discriminator features", self.probe["trained"]),
            ("SVM on untrained discriminator features", self.probe["untrained"]),
            ("  paired difference", difference),
            ("raw pixels: linear SVM (LinearSVC)", self.baselines["linear_svm"]),
            ("raw pixels: logistic regression", self.baselines["logistic_regression"]),
        ]
        lines = [f"{'features':<42}{'test accuracy':>16}", "-" * 58]
        lines += [f"{name:<42}{str(spread):>16}" for name, spread in rows]
        lines.append("Fréchet distance per epoch: " + " ".join(f"{d:.2f}" for d in self.frechet_distances))
        return "\n".join(lines)


def to_tanh_range(image, *label):
    return (image * 2.0 - 1.0, *label) if label else image * 2.0 - 1.0


def _host_predict(model, images, batch_size=256):
    # Outside the strategy's loop: exact under every strategy.
    return np.concatenate(
        [keras.ops.convert_to_numpy(model(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    )


def probe(discriminator, data, strategy, c):
    """Test accuracies of linear SVMs on pooled features, one per label draw."""
    images = images_array(data.train.map(to_tanh_range))
    with strategy.scope():
        pooled = discriminator.pooled_encoder(c.grid_size)
    features = _host_predict(pooled, images)  # unlabelled images
    with strategy.scope():
        encoder = keras.Sequential(
            [
                pooled,
                keras.layers.Normalization(mean=features.mean(0), variance=features.var(0) + 1e-6),
            ]
        )
    n = c.labels_per_class * data.num_classes
    test_x, test_y = labeled_arrays(data.test.map(to_tanh_range))
    accuracies = []
    for draw in range(c.probe_draws):
        seed = c.seed + draw
        labelled = data_lib.labeled_subset(data.train, c.labels_per_class, seed=seed)
        with strategy.scope():
            # A linear L2-SVM (squared hinge), as in the DCGAN paper's protocol.
            svm = SVMClassifier(encoder, data.num_classes, C=c.svm_c, hinge="one_vs_rest", squared=True)
            svm.compile(optimizer=keras.optimizers.Adam(1e-2))
            # The probe's objective, solved on the labelled examples' features.
            svm.adapt(labelled.map(to_tanh_range))
        if c.svm_steps:
            train = data_lib.batch(labelled.map(to_tanh_range), min(n, 256), shuffle_seed=seed, repeat=True)
            svm.fit(train, epochs=1, steps_per_epoch=c.svm_steps, verbose=0, shuffle=False)
        predicted = np.argmax(_host_predict(svm, test_x), axis=-1)
        accuracies.append(float(np.mean(predicted == test_y)))
    return baselines.Spread(accuracies)


def raw_pixel_baselines(data, c):
    """LinearSVC and logistic regression on the raw pixels, the probe's label draws."""
    draws = [
        labeled_arrays(data_lib.labeled_subset(data.train, c.labels_per_class, seed=c.seed + draw))
        for draw in range(c.probe_draws)
    ]
    return baselines.raw_input_baselines(draws, *labeled_arrays(data.test))


def _gan_builder(c, image_shape, strategy):
    """The `build_model` of `training.train`: a compiled GAN (in the strategy's scope)."""

    def build():
        gan = GAN(
            Generator(image_shape, c.latent_dim, base_filters=c.base_filters),
            Discriminator(image_shape, base_filters=c.base_filters),
            loss=c.loss,
            d_steps=c.d_steps,
            seed=c.seed,
        )
        gan.compile(
            d_optimizer=keras.optimizers.Adam(c.d_learning_rate, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(c.g_learning_rate, beta_1=0.5),
            jit_compile=c.jit_compile if strategy.num_replicas_in_sync == 1 else False,
            steps_per_execution=c.steps_per_execution,
        )
        return gan

    return build


def _frechet_evaluator(data, c, ctx):
    """The feature classifier for the Fréchet distance (images in [0, 1]),
    saved, and the evaluator on it: `(evaluator, test accuracy, files)`."""
    classifier, accuracy = train_feature_classifier(data, epochs=c.classifier_epochs, seed=c.seed)
    files = {"feature_classifier": ctx.save_model(classifier, ctx.path("feature_classifier.keras"))}
    if c.verbose:
        print(f"feature classifier test accuracy: {accuracy:.4f}")
    evaluator = GeneratorEvaluator(
        classifier,
        images_array(data.train),
        c.latent_dim,
        num_samples=c.num_eval_samples,
        seed=c.seed,
    )
    return evaluator, accuracy, files


def train_gan(config=None, **overrides):
    """Trains a GAN, scores it with the Fréchet distance, probes its discriminator.

    A feature classifier (`train_feature_classifier`) trained on the
    labelled images gives the Fréchet distance of generated images, before
    training and after every epoch. The GAN trains through
    `keras_pt.training.train` (every strategy, `multi_worker` included;
    mixed precision with loss scaling for both optimizers; checkpoints in
    `<model_dir>/train` that a rerun with the same settings resumes from).
    Then the discriminator's pooled features are probed with a linear SVM
    (module doc), beside the untrained discriminator and the raw pixels.

    Args:
        config: `GANConfig` or None. The settings; keyword arguments
            override its fields (the defaults without one).
        dataset: an image source for `keras_pt.data.load_images` (a TFDS
            name, the embedded `"digits"` by default; a folder; NumPy or
            IDX files; arrays).
        loss: str. `"non_saturating"`, `"hinge"` or `"wasserstein"`.
        d_steps: int. Discriminator steps per generator step.
        d_learning_rate, g_learning_rate: float. Adam learning rates.
        jit_compile: `"auto"`, True or False. XLA for the train step (one
            device only); `"auto"`: on a single GPU, off on CPU.
        labels_per_class, probe_draws, grid_size, svm_c, svm_steps: the
            probe (module doc); `svm_steps` Adam steps follow the solved
            optimum.
        num_eval_samples: int. Generated images per Fréchet distance.
        classifier_epochs: int. Epochs of the feature classifier.
        Others: as in `keras_pt.recipes.pretrain_finetune`.

    Returns:
        A `GANResult`. Files under `model_dir`: sample grids
        (`samples/samples_epoch_XXX.png`), `feature_classifier.keras`,
        `gan.keras`, the generator as a SavedModel
        (`generator_savedmodel/`), TensorBoard logs (`logs/`).
    """
    config = resolve_config(GANConfig, config, overrides)
    c = config
    if c.loss not in LOSSES:
        raise ValueError(f"unknown loss {c.loss!r}; choose one of {', '.join(LOSSES)}.")
    start = time.time()
    ctx = RunContext("train_gan", config)
    strategy = ctx.strategy
    data = load_config_images(c)
    image_shape = list(data.image_shape)

    evaluator, accuracy, files = _frechet_evaluator(data, c, ctx)

    build = _gan_builder(c, image_shape, strategy)

    # The same seed builds the same initial weights that training starts from.
    keras.utils.set_random_seed(c.seed)
    with strategy.scope():
        initial = build()
    untrained = evaluator(initial.generator)["frechet_distance"]
    if c.verbose:
        print(f"epoch 0 (untrained): frechet_distance={untrained:.3f}")

    images = data.pretraining_images().map(to_tanh_range)

    def dataset_fn(epoch, batch_size, seed):  # the same (epoch, seed), the same batches
        return data_lib.epoch_batches(images, batch_size, seed, epoch)

    fd_callback = FrechetDistance(evaluator)
    samples = SampleGrid(
        ctx.path("samples"),
        c.latent_dim,
        log_dir=ctx.path("logs") if ctx.is_chief else None,
        seed=c.seed,
    )
    result = ctx.train(
        "train",
        build,
        dataset_fn,
        callbacks=[fd_callback] + ([samples] if ctx.is_chief else []),
        batch_size=c.batch_size,
        epochs=c.epochs,
        scale_batch_size=ctx.scale_batch_size,
        scale_learning_rate=ctx.scale_batch_size,
        checkpoint_every=ctx.checkpoint_every,
    )
    gan = result.model
    files.update(
        gan=ctx.save_model(gan, ctx.path("gan.keras")),
        generator=ctx.path("generator_savedmodel"),
        samples=ctx.path("samples"),
        logs=ctx.path("logs"),
    )
    if ctx.is_chief:
        gan.generator.export_saved_model(files["generator"])

    # Linear SVM on the discriminator's features vs. the same discriminator
    # at its initial weights.
    return GANResult(
        frechet_distances=[untrained] + [s["frechet_distance"] for _, s in fd_callback.history],
        classifier_accuracy=float(accuracy),
        probe={
            "trained": probe(gan.discriminator, data, strategy, c),
            "untrained": probe(initial.discriminator, data, strategy, c),
        },
        baselines=raw_pixel_baselines(data, c),
        seconds=time.time() - start,
        files=files,
    )
