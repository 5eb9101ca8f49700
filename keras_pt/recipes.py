"""End-to-end recipes that the example binaries call.

`pretrain_finetune` is the main job: pre-train an autoencoder on unlabelled
images, then fine-tune MLP and SVM heads on a few labels, beside the same
heads on an untrained encoder.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_pt import data as data_lib
from keras_pt import distribute, training
from keras_pt.models.autoencoder import Autoencoder
from keras_pt.models.denoising_autoencoder import DenoisingAutoencoder
from keras_pt.models.mlp_classifier import MLPClassifier
from keras_pt.models.svm_classifier import SVMClassifier
from keras_pt.utils.image_grid import save_image_grid

HEADS = {"mlp": MLPClassifier, "svm": SVMClassifier}


@dataclasses.dataclass
class PretrainFinetuneResult:
    """What `pretrain_finetune` measured.

    Attributes:
        accuracy: dict mapping `(encoder, head, mode)` to test accuracy, with
            encoder in `("untrained", "pretrained")`, head in `("mlp", "svm")`
            and mode in `("frozen", "fine-tuned")`.
        reconstruction_loss: float. Test reconstruction loss after pre-training.
        mean_image_loss: float. The same loss for predicting the mean
            training image (the baseline a useful code must beat).
        seconds: float. Wall-clock time of the whole job.
        files: dict of the paths written (model, PNG grid, TensorBoard logs).
    """

    accuracy: dict
    reconstruction_loss: float
    mean_image_loss: float
    seconds: float
    files: dict

    def table(self):
        """The accuracy table as text, one row per head and mode."""
        lines = [
            f"{'head':<6}{'encoder mode':<14}{'untrained':>11}{'pretrained':>12}",
            "-" * 43,
        ]
        for head in HEADS:
            for mode in ("frozen", "fine-tuned"):
                untrained = self.accuracy[("untrained", head, mode)]
                pretrained = self.accuracy[("pretrained", head, mode)]
                lines.append(f"{head:<6}{mode:<14}{untrained:>11.3f}{pretrained:>12.3f}")
        return "\n".join(lines)


def _mean_image_loss(train, test, per_example_loss):
    mean = np.mean([x for x, _ in train.as_numpy_iterator()], axis=0)
    test_images = np.stack([x for x, _ in test.as_numpy_iterator()])
    guess = np.broadcast_to(mean, test_images.shape).astype(np.float32)
    return float(np.mean(per_example_loss(test_images, guess)))


def _reconstruction_loss(model, dataset, batch_size):
    # Evaluated on the host, outside the strategy: exact under every
    # strategy (Keras's evaluate shares fit's multi-worker failure).
    losses = [
        keras.ops.convert_to_numpy(model.per_example_loss(x, model(x)))
        for x in dataset.batch(batch_size)
    ]
    return float(np.mean(np.concatenate(losses)))


def _accuracy(model, dataset, batch_size):
    hits = [
        np.argmax(keras.ops.convert_to_numpy(model(x)), axis=-1) == y.numpy()
        for x, y in dataset.batch(batch_size)
    ]
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


def pretrain_finetune(
    dataset="digits",
    data_dir=None,
    strategy="auto",
    tpu=None,
    model_dir="runs/pretrain_finetune",
    architecture="dense",
    latent_dim=32,
    denoising=True,
    pretrain_epochs=40,
    finetune_steps=300,
    labels_per_class=10,
    batch_size=64,
    learning_rate=1e-3,
    svm_c=1.0,
    finetune_lr_scale=0.1,
    mixed_precision=None,
    scale_batch_size=False,
    checkpoint_every=None,
    seed=0,
    verbose=1,
):
    """Pre-trains an autoencoder, then fine-tunes MLP and SVM heads.

    Every phase runs through `keras_pt.training.train`, so it works under
    every strategy (including `multi_worker`), checkpoints into
    `model_dir/<phase>/checkpoints`, and resumes exactly when run again
    with the same `model_dir` (finished phases are restored, not retrained).

    Args:
        dataset: str. TFDS image data set. Defaults to the embedded `"digits"`.
        data_dir: str or None. TFDS data directory.
        strategy: str or `tf.distribute.Strategy`. A
            `keras_pt.distribute.get_strategy` name.
        tpu: str or None. TPU name or `grpc://` address for `"tpu"`/`"auto"`.
        model_dir: str. Where the autoencoder (`autoencoder.keras`), the
            reconstruction grid (`reconstructions.png`), TensorBoard logs
            (`logs/`) and the checkpoints of each phase go.
        architecture: str. `"dense"` or `"conv"` autoencoder.
        latent_dim: int. Size of the code the heads see.
        denoising: bool. Pre-train a `DenoisingAutoencoder`.
        pretrain_epochs: int. Epochs over the unlabelled training images.
        finetune_steps: int. Optimizer steps of the linear probe, and again
            of fine-tuning (the encoder unfrozen, after the probe).
        labels_per_class: int. Labelled training examples per class.
        batch_size: int. Global batch size of pre-training.
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
        seed: int. Seed of weights, noise, data order and the labelled subset.
        verbose: int. Keras verbosity (1: progress bars).

    Returns:
        A `PretrainFinetuneResult`.
    """
    start = time.time()
    keras.utils.set_random_seed(seed)
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = distribute.get_strategy(strategy, tpu=tpu)
    replicas = strategy.num_replicas_in_sync
    is_chief = distribute.is_chief(strategy)
    data = data_lib.load_image_dataset(dataset, data_dir=data_dir)
    os.makedirs(model_dir, exist_ok=True)
    log_dir = os.path.join(model_dir, "logs")

    def tensorboard(name):
        # One writer: the chief's (workers would write the same files).
        return [keras.callbacks.TensorBoard(os.path.join(log_dir, name))] if is_chief else []

    def new_autoencoder():
        kwargs = dict(image_shape=data.image_shape, latent_dim=latent_dim, architecture=architecture)
        if denoising:
            return DenoisingAutoencoder(seed=seed, **kwargs)
        return Autoencoder(**kwargs)

    def build_autoencoder():
        model = new_autoencoder()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        return model

    # The untrained baseline: the pre-trained model's initial weights.
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        untrained = new_autoencoder()
        untrained(np.zeros((1,) + data.image_shape, np.float32))

    # Pre-train the autoencoder on unlabelled images
    autoencoder = training.train(
        build_autoencoder,
        batches_fn(data_lib.unlabeled(data.train)),
        batch_size=batch_size,
        epochs=pretrain_epochs,
        strategy=strategy,
        scale_batch_size=scale_batch_size,
        scale_learning_rate=scale_batch_size,
        mixed_precision=mixed_precision,
        model_dir=os.path.join(model_dir, "pretrain"),
        checkpoint_every=checkpoint_every,
        callbacks=tensorboard("pretrain"),
        seed=seed,
        verbose=verbose,
    ).model
    model_path = os.path.join(model_dir, "autoencoder.keras")
    test_images = np.stack([x for x, _ in data.test.take(16).as_numpy_iterator()])
    reconstructions = keras.ops.convert_to_numpy(autoencoder(test_images)).astype(np.float32)
    grid = np.concatenate([test_images[:8], reconstructions[:8], test_images[8:], reconstructions[8:]])
    grid_path = os.path.join(model_dir, "reconstructions.png")
    if is_chief:
        autoencoder.save(model_path)
        save_image_grid(grid, grid_path, rows=4, columns=8)
    test_images_only = data_lib.unlabeled(data.test)
    reconstruction_loss = _reconstruction_loss(autoencoder, test_images_only, batch_size)
    mean_image_loss = _mean_image_loss(data.train, data.test, autoencoder.per_example_loss)

    # Fine-tune each head on a few labels, on both encoders, frozen and not
    labelled = data_lib.labeled_subset(
        data.train, labels_per_class, seed=seed, num_classes=data.num_classes
    )
    num_labelled = labels_per_class * data.num_classes
    head_batch = min(32, num_labelled - num_labelled % replicas)
    # An epoch of the heads is several passes over the few labels (about 50
    # steps), not a handful of steps.
    passes = max(1, (50 * head_batch) // num_labelled)
    accuracy = {}
    for source, trained in (("untrained", untrained), ("pretrained", autoencoder)):
        for head_name, head_cls in HEADS.items():
            name = f"{head_name}_{source}"

            def build_head(head_cls=head_cls, trained=trained, name=name, head_name=head_name):
                encoder = keras.models.clone_model(trained.encoder)
                encoder.set_weights(trained.encoder.get_weights())
                kwargs = {"C": svm_c} if head_name == "svm" else {}
                head = head_cls(encoder, data.num_classes, name=name, **kwargs)
                head.compile(optimizer=keras.optimizers.Adam(learning_rate))
                return head

            phases = (
                ("frozen", build_head),
                # Fine-tune: unfreeze the encoder, continue at a lower learning rate
                ("fine-tuned", None),
            )
            head = None
            for mode, build in phases:
                if build is None:

                    def build(head=head):
                        head.set_encoder_trainable(True)
                        head.compile(optimizer=keras.optimizers.Adam(learning_rate * finetune_lr_scale))
                        return head

                if verbose:
                    print(f"Training the {head_name} head on the {source} encoder ({mode})")
                head = training.train(
                    build,
                    batches_fn(labelled, passes),
                    batch_size=head_batch,
                    steps=finetune_steps,
                    strategy=strategy,
                    mixed_precision=mixed_precision,
                    model_dir=os.path.join(model_dir, "heads", f"{name}_{mode}"),
                    checkpoint_every=finetune_steps,
                    callbacks=tensorboard(name),
                    seed=seed,
                ).model
                accuracy[(source, head_name, mode)] = _accuracy(head, data.test, batch_size)
    return PretrainFinetuneResult(
        accuracy=accuracy,
        reconstruction_loss=reconstruction_loss,
        mean_image_loss=mean_image_loss,
        seconds=time.time() - start,
        files={"model": model_path, "reconstructions": grid_path, "logs": log_dir},
    )
