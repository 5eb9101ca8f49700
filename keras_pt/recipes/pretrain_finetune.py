"""End-to-end recipes that the example binaries call.

`pretrain_finetune` is the main job: pre-train an image encoder on
unlabelled images (SimCLR by default, or a (denoising) autoencoder), then
train MLP and SVM heads on a few labels, beside the same heads on an
untrained encoder and linear classifiers on the raw pixels, over several
label draws.
"""

import dataclasses
import time

import keras
import numpy as np

from keras_pt import data as data_lib
from keras_pt.evaluation import baselines as baselines_lib
from keras_pt.models.autoencoder import Autoencoder
from keras_pt.models.denoising_autoencoder import DenoisingAutoencoder
from keras_pt.models.mlp_classifier import MLPClassifier
from keras_pt.models.sim_clr import SimCLR
from keras_pt.models.svm_classifier import SVMClassifier
from keras_pt.recipes.context import RunConfig, RunContext, join, resolve_config, weights_sha256
from keras_pt.utils.image_grid import save_image_grid

HEADS = {"mlp": MLPClassifier, "svm": SVMClassifier}
PRETRAINING = ("simclr", "denoising_autoencoder", "autoencoder")
BASELINE_NAMES = {
    "linear_svm": "linear SVM (LinearSVC)",
    "logistic_regression": "logistic regression",
}


@dataclasses.dataclass
class PretrainFinetuneResult:
    """What `pretrain_finetune` measured.

    Attributes:
        accuracy: dict mapping `(encoder, head, mode)` to a
            `keras_pt.evaluation.baselines.Spread` of test accuracies over
            the label draws (`.mean`, `.std`, `.values`), with encoder in
            `("untrained", "pretrained")`, head in `("mlp", "svm")` and mode
            in `("frozen", "fine-tuned")`.
        baselines: dict mapping `"linear_svm"` and `"logistic_regression"`
            (scikit-learn, on the raw pixels, the same label draws) to a
            `Spread`.
        reconstruction_loss: float or None. Test reconstruction loss after
            pre-training (autoencoders).
        mean_image_loss: float or None. The same loss for predicting the
            mean training image (the baseline a useful code must beat).
        seconds: float. Wall-clock time of the whole job.
        files: dict of the paths written (model, PNG grid, TensorBoard logs).
    """

    accuracy: dict
    baselines: dict
    reconstruction_loss: object
    mean_image_loss: object
    seconds: float
    files: dict

    def table(self):
        """The accuracy table as text: heads, then the raw-pixel baselines."""
        lines = [
            f"{'head':<6}{'encoder mode':<14}{'untrained':>16}{'pretrained':>16}",
            "-" * 52,
        ]
        for head in HEADS:
            for mode in ("frozen", "fine-tuned"):
                untrained = self.accuracy[("untrained", head, mode)]
                pretrained = self.accuracy[("pretrained", head, mode)]
                lines.append(f"{head:<6}{mode:<14}{str(untrained):>16}{str(pretrained):>16}")
        lines.append("raw pixels (same label draws):")
        for name, spread in self.baselines.items():
            lines.append(f"  {BASELINE_NAMES[name]:<34}{str(spread):>16}")
        return "\n".join(lines)


def _mean_image_loss(train, test, per_example_loss):
    mean = np.mean([x for x, _ in train.as_numpy_iterator()], axis=0)
    test_images = np.stack([x for x, _ in test.as_numpy_iterator()])
    guess = np.broadcast_to(mean, test_images.shape).astype(np.float32)
    return float(np.mean(per_example_loss(test_images, guess)))


def _reconstruction_loss(model, dataset, batch_size):
    # Evaluated on the host, outside the strategy: exact under every
    # strategy (Keras's evaluate shares fit's multi-worker failure).
    losses = [keras.ops.convert_to_numpy(model.per_example_loss(x, model(x))) for x in dataset.batch(batch_size)]
    return float(np.mean(np.concatenate(losses)))


def _accuracy(model, dataset, batch_size):
    hits = [np.argmax(keras.ops.convert_to_numpy(model(x)), axis=-1) == y.numpy() for x, y in dataset.batch(batch_size)]
    return float(np.mean(np.concatenate(hits)))


def batches_fn(dataset, passes=1):
    """A `keras_pt.training.train` data set function for an unbatched data set.

    Returns `dataset_fn(epoch, batch_size, seed)`: the epoch's batches
    (`passes` shuffled passes over `dataset`), ordered by `(seed, epoch)`
    (`keras_pt.data.epoch_batches`), static shapes.
    """

    def dataset_fn(epoch, batch_size, seed):
        return data_lib.epoch_batches(dataset, batch_size, seed, epoch, passes=passes)

    return dataset_fn


def load_config_images(c):
    """The `ImageData` of an image recipe's config (`dataset`, `data_dir`,
    `image_size`, `test_fraction`, `seed`, `download`)."""
    return data_lib.load_images(
        c.dataset,
        data_dir=c.data_dir,
        image_size=c.image_size,
        test_fraction=c.test_fraction,
        seed=c.seed,
        download=c.download,
    )


def labeled_arrays(dataset):
    """`(x, y)` NumPy arrays of an unbatched `(example, label)` data set."""
    pairs = list(dataset.as_numpy_iterator())
    return np.stack([x for x, _ in pairs]), np.asarray([y for _, y in pairs])


@dataclasses.dataclass
class PretrainFinetuneConfig(RunConfig):
    """Settings of `pretrain_finetune` (see its arguments)."""

    dataset: object = "digits"
    model_dir: str = "runs/pretrain_finetune"
    pretraining: str = "simclr"
    architecture: str = "auto"
    latent_dim: int = 32
    pretrain_epochs: object = None
    finetune_steps: int = 300
    labels_per_class: int = 10
    label_draws: int = 3
    batch_size: object = None
    learning_rate: float = 1e-3
    svm_c: float = 1.0
    finetune_lr_scale: float = 0.1
    image_size: object = None
    test_fraction: float = 0.2
    download: bool = False


def pretrain_finetune(config=None, **overrides):
    """Pre-trains an image encoder, then trains MLP and SVM heads on a few labels.

    For each of `label_draws` draws of `labels_per_class` labelled examples
    per class (seeds `seed`, `seed + 1`, ...), on the pre-trained encoder
    and on the same model at its initial weights: the SVM head frozen (the
    linear probe, solved to its optimum by `SVMClassifier.adapt`), then
    fine-tuned from there; the MLP head frozen, then fine-tuned. On the same
    draws, scikit-learn's `LinearSVC` and `LogisticRegression` on the raw
    pixels (`keras_pt.evaluation.baselines`).

    Every training phase runs through `keras_pt.training.train`, so it works
    under every strategy (including `multi_worker`), checkpoints into
    `model_dir/<phase>/checkpoints`, and resumes exactly when run again
    with the same `model_dir` and settings (finished phases are restored,
    not retrained). A rerun with other settings is refused with the keys
    that differ (`keras_pt.recipes.RunContext`); each head's checkpoints
    also record the SHA-256 of the encoder it was trained on.

    Args:
        config: `PretrainFinetuneConfig` or None. The settings; keyword
            arguments override its fields (the defaults without one).
        dataset: an image source for `keras_pt.data.load_images`: a TFDS
            name (the embedded `"digits"`, the default, or a prepared one in
            `data_dir`), a folder of class folders, a `.npz`/`.npy` file, a
            folder of MNIST-format IDX files, an `ImageData`, or arrays.
            Pre-training uses every training image and the source's
            unlabelled images.
        data_dir: str or None. TFDS data directory.
        strategy: str or `tf.distribute.Strategy`. A
            `keras_pt.distribute.get_strategy` name.
        tpu: str or None. TPU name or `grpc://` address for `"tpu"`/`"auto"`.
        model_dir: str. Where the pre-trained model (`pretrained.keras`), a
            PNG grid (`views.png`: images and two random views each, or
            `reconstructions.png`), TensorBoard logs (`logs/`) and the
            checkpoints of each phase go.
        pretraining: str. `"simclr"` (contrastive, `SimCLR`),
            `"denoising_autoencoder"` or `"autoencoder"`.
        architecture: str. `"conv"`, `"dense"` or `"auto"` (conv for
            SimCLR, dense for the autoencoders).
        latent_dim: int. Code size of the autoencoders.
        pretrain_epochs: int or None. Epochs over the unlabelled training
            images. Defaults to 20 for SimCLR, 40 for the autoencoders.
        finetune_steps: int. Optimizer steps of each head phase that trains
            (the MLP probe; fine-tuning of both heads).
        labels_per_class: int. Labelled training examples per class.
        label_draws: int. Draws of the labelled examples.
        batch_size: int or None. Global batch size of pre-training.
            Defaults to 128 for SimCLR (more negatives), 64 otherwise.
        learning_rate: float. Adam learning rate.
        svm_c: float. `C` of the SVM head.
        finetune_lr_scale: float. Learning rate of fine-tuning relative to
            `learning_rate`.
        mixed_precision: str or None. `"mixed_bfloat16"` or
            `"mixed_float16"`; None trains in float32.
        scale_batch_size: bool. Multiply the pre-training batch size and
            learning rate by the number of replicas.
        checkpoint_every: int or None. Pre-training steps between
            checkpoints. Defaults to once per epoch. The heads checkpoint at
            the end of each phase.
        seed: int. Seed of weights, views/noise, data order and the first
            label draw.
        verbose: int. Keras verbosity (1: progress bars).
        image_size: `(height, width)` or None. Resize folder images to it
            (needed when their sizes differ).
        test_fraction: float. The held-out test share for sources without
            a test split. Defaults to 0.2.
        download: bool. Let TFDS download a named data set. Defaults to
            False: offline, an unprepared name fails at once.
        restart_from_healthy: bool. After a `NonFiniteLossError`, continue
            from the last healthy checkpoint with these settings (e.g. a
            lower `learning_rate`) instead of refusing the changed ones.

    Returns:
        A `PretrainFinetuneResult`.
    """
    config = resolve_config(PretrainFinetuneConfig, config, overrides)
    c = config
    if c.pretraining not in PRETRAINING:
        raise ValueError(f"unknown pretraining {c.pretraining!r}; choose one of {', '.join(PRETRAINING)}.")
    if int(c.label_draws) < 1:
        raise ValueError(f"label_draws must be at least 1, got {c.label_draws}.")
    start = time.time()
    ctx = RunContext("pretrain_finetune", config)
    data = load_config_images(c)
    contrastive = c.pretraining == "simclr"
    c = dataclasses.replace(
        c,
        architecture=("conv" if contrastive else "dense") if c.architecture == "auto" else c.architecture,
        pretrain_epochs=(20 if contrastive else 40) if c.pretrain_epochs is None else c.pretrain_epochs,
        batch_size=(128 if contrastive else 64) if c.batch_size is None else c.batch_size,
    )
    untrained, pretrained = _pretrain(ctx, c, data)
    files = {"model": ctx.save_model(pretrained, ctx.path("pretrained.keras"))}
    test_x, test_y = labeled_arrays(data.test)  # whole passes over the cached split
    files["grid"] = _write_grid(ctx, pretrained, test_x[:16], contrastive)
    reconstruction_loss = mean_image_loss = None
    if not contrastive:
        reconstruction_loss = _reconstruction_loss(pretrained, data_lib.unlabeled(data.test), c.batch_size)
        mean_image_loss = _mean_image_loss(data.train, data.test, pretrained.per_example_loss)
    accuracy, draws = _train_heads(ctx, c, data, {"untrained": untrained, "pretrained": pretrained})
    return PretrainFinetuneResult(
        accuracy={key: baselines_lib.Spread(values) for key, values in accuracy.items()},
        baselines=baselines_lib.raw_input_baselines(draws, test_x, test_y),
        reconstruction_loss=reconstruction_loss,
        mean_image_loss=mean_image_loss,
        seconds=time.time() - start,
        files=dict(files, logs=ctx.path("logs"), settings=ctx.path("settings.json")),
    )


def _pretrain(ctx, c, data):
    """`(untrained, pretrained)`: the pre-training model at its initial
    weights, and trained on the unlabelled images."""

    def new_model():
        if c.pretraining == "simclr":
            return SimCLR(image_shape=data.image_shape, architecture=c.architecture, seed=c.seed)
        kwargs = dict(image_shape=data.image_shape, latent_dim=c.latent_dim, architecture=c.architecture)
        if c.pretraining == "denoising_autoencoder":
            return DenoisingAutoencoder(seed=c.seed, **kwargs)
        return Autoencoder(**kwargs)

    def build_model():
        model = new_model()
        model.compile(optimizer=keras.optimizers.Adam(c.learning_rate))
        return model

    # The untrained baseline: the pre-trained model's initial weights.
    keras.utils.set_random_seed(c.seed)
    with ctx.strategy.scope():
        untrained = new_model()
        untrained(np.zeros((1,) + data.image_shape, np.float32))
    pretrained = ctx.train(
        "pretrain",
        build_model,
        batches_fn(data.pretraining_images()),
        batch_size=c.batch_size,
        epochs=c.pretrain_epochs,
        scale_batch_size=c.scale_batch_size,
        scale_learning_rate=c.scale_batch_size,
        checkpoint_every=ctx.checkpoint_every,
    ).model
    return untrained, pretrained


def _write_grid(ctx, pretrained, images, contrastive):
    """A PNG of test images with two random views each (SimCLR) or their
    reconstructions (autoencoders); returns its path."""
    if contrastive:
        first = keras.ops.convert_to_numpy(pretrained.view(images[:8]))
        second = keras.ops.convert_to_numpy(pretrained.view(images[:8]))
        grid = np.concatenate([images[:8], first, second]).astype(np.float32)
        path, rows = ctx.path("views.png"), 3
    else:
        reconstructions = keras.ops.convert_to_numpy(pretrained(images)).astype(np.float32)
        grid = np.concatenate([images[:8], reconstructions[:8], images[8:], reconstructions[8:]])
        path, rows = ctx.path("reconstructions.png"), 4
    if ctx.is_chief:
        save_image_grid(grid, path, rows=rows, columns=8)
    return path


def _train_heads(ctx, c, data, encoders):
    """Both heads on each encoder, frozen then fine-tuned, for every label
    draw. Returns `(accuracy, draws)`: test accuracies per `(encoder,
    head, mode)` and the labelled `(x, y)` arrays of each draw."""
    replicas = ctx.strategy.num_replicas_in_sync
    num_labelled = c.labels_per_class * data.num_classes
    head_batch = min(32, num_labelled - num_labelled % replicas)
    # An epoch of the heads is several passes over the few labels (about 50
    # steps), not a handful of steps.
    passes = max(1, (50 * head_batch) // num_labelled)
    # What each head is trained on, recorded in its checkpoints.
    encoder_sha256 = {name: weights_sha256(model.encoder) for name, model in encoders.items()}
    accuracy, draws = {}, []
    for draw in range(int(c.label_draws)):
        draw_seed = c.seed + draw
        labelled = data_lib.labeled_subset(data.train, c.labels_per_class, seed=draw_seed, num_classes=data.num_classes)
        draws.append(labeled_arrays(labelled))
        for source, trained in encoders.items():
            for head_name, head_cls in HEADS.items():
                name = f"{head_name}_{source}_draw{draw}"

                def build_head(head_cls=head_cls, trained=trained, name=name, head_name=head_name, labelled=labelled):
                    kwargs = {"C": c.svm_c} if head_name == "svm" else {}
                    # The head copies the encoder; adapt sets the feature
                    # statistics and, for the SVM, solves the linear probe.
                    head = head_cls(trained.encoder, data.num_classes, name=name, **kwargs)
                    head.adapt(labelled)
                    head.compile(optimizer=keras.optimizers.Adam(c.learning_rate))
                    return head

                def train_head(
                    build, mode, name=name, source=source, head_name=head_name, labelled=labelled, draw_seed=draw_seed
                ):
                    if c.verbose:
                        print(f"Training the {head_name} head on the {source} encoder ({mode}, draw {draw})")
                    return ctx.train(
                        join("heads", f"{name}_{mode}"),
                        build,
                        batches_fn(labelled, passes),
                        inputs={"encoder_sha256": encoder_sha256[source], "draw_seed": draw_seed},
                        batch_size=head_batch,
                        steps=c.finetune_steps,
                        checkpoint_every=c.finetune_steps,
                        seed=draw_seed,
                        verbose=0,
                    ).model

                if head_name == "svm":
                    # The frozen probe is the solved objective: nothing to train.
                    with ctx.strategy.scope():
                        head = build_head()
                else:
                    head = train_head(build_head, "frozen")
                accuracy.setdefault((source, head_name, "frozen"), []).append(_accuracy(head, data.test, 256))

                # Fine-tune: unfreeze the encoder, continue at a lower learning rate
                def unfreeze(head=head):
                    head.set_encoder_trainable(True)
                    head.compile(optimizer=keras.optimizers.Adam(c.learning_rate * c.finetune_lr_scale))
                    return head

                head = train_head(unfreeze, "fine-tuned")
                accuracy.setdefault((source, head_name, "fine-tuned"), []).append(_accuracy(head, data.test, 256))
    return accuracy, draws
