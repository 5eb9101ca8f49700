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

from keras_pt import data as data_lib
from keras_pt import distribute
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


def pretrain_finetune(
    dataset="digits",
    data_dir=None,
    strategy="auto",
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
    seed=0,
    verbose=1,
):
    """Pre-trains an autoencoder, then fine-tunes MLP and SVM heads.

    Args:
        dataset: str. TFDS image data set. Defaults to the embedded `"digits"`.
        data_dir: str or None. TFDS data directory.
        strategy: str. A `keras_pt.distribute.get_strategy` name.
        model_dir: str. Where the autoencoder (`autoencoder.keras`), the
            reconstruction grid (`reconstructions.png`) and TensorBoard logs
            (`logs/`) go.
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
        seed: int. Seed of weights, noise and the labelled subset.
        verbose: int. Keras verbosity (1: progress bars).

    Returns:
        A `PretrainFinetuneResult`.
    """
    start = time.time()
    keras.utils.set_random_seed(seed)
    strategy = distribute.get_strategy(strategy)
    data = data_lib.load_image_dataset(dataset, data_dir=data_dir)
    os.makedirs(model_dir, exist_ok=True)
    log_dir = os.path.join(model_dir, "logs")

    def new_autoencoder():
        kwargs = dict(image_shape=data.image_shape, latent_dim=latent_dim, architecture=architecture)
        if denoising:
            return DenoisingAutoencoder(seed=seed, **kwargs)
        return Autoencoder(**kwargs)

    # Pre-train the autoencoder on unlabelled images
    with strategy.scope():
        untrained = new_autoencoder()
        untrained(np.zeros((1,) + data.image_shape, np.float32))
        autoencoder = new_autoencoder()
        autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate))
    autoencoder.fit(
        data_lib.batch(data_lib.unlabeled(data.train), batch_size, shuffle_seed=seed),
        validation_data=data_lib.batch(data_lib.unlabeled(data.test), batch_size),
        epochs=pretrain_epochs,
        callbacks=[keras.callbacks.TensorBoard(os.path.join(log_dir, "pretrain"))],
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )
    model_path = os.path.join(model_dir, "autoencoder.keras")
    autoencoder.save(model_path)
    test_images = np.stack([x for x, _ in data.test.take(16).as_numpy_iterator()])
    reconstructions = keras.ops.convert_to_numpy(autoencoder(test_images))
    grid = np.concatenate([test_images[:8], reconstructions[:8], test_images[8:], reconstructions[8:]])
    grid_path = save_image_grid(grid, os.path.join(model_dir, "reconstructions.png"), rows=4, columns=8)
    reconstruction_loss = float(
        autoencoder.evaluate(data.test.batch(batch_size), verbose=0, return_dict=True)["loss"]
    )
    mean_image_loss = _mean_image_loss(data.train, data.test, autoencoder.per_example_loss)

    # Fine-tune each head on a few labels, on both encoders, frozen and not
    labelled = data_lib.labeled_subset(
        data.train, labels_per_class, seed=seed, num_classes=data.num_classes
    )
    num_labelled = labels_per_class * data.num_classes
    head_batch = min(32, num_labelled - num_labelled % strategy.num_replicas_in_sync)
    steps_per_epoch = num_labelled // head_batch
    train_heads = data_lib.batch(labelled, head_batch, shuffle_seed=seed)
    test_heads = data.test.batch(batch_size)
    epochs = max(1, finetune_steps // steps_per_epoch)
    accuracy = {}
    for source, trained in (("untrained", untrained), ("pretrained", autoencoder)):
        for head_name, head_cls in HEADS.items():
            with strategy.scope():
                encoder = keras.models.clone_model(trained.encoder)
                encoder.set_weights(trained.encoder.get_weights())
                kwargs = {"C": svm_c} if head_name == "svm" else {}
                head = head_cls(
                    encoder, data.num_classes, name=f"{head_name}_{source}", **kwargs
                )
                head.compile(optimizer=keras.optimizers.Adam(learning_rate))
            # Linear probe: train the head on the frozen encoder
            if verbose:
                print(f"Training the {head_name} head on the frozen {source} encoder")
            tensorboard = keras.callbacks.TensorBoard(os.path.join(log_dir, head.name))
            head.fit(train_heads, epochs=epochs, callbacks=[tensorboard], shuffle=False, verbose=0)
            accuracy[(source, head_name, "frozen")] = float(
                head.evaluate(test_heads, verbose=0, return_dict=True)["accuracy"]
            )
            # Fine-tune: unfreeze the encoder, continue at a lower learning rate
            if verbose:
                print(f"Fine-tuning the {head_name} head with the {source} encoder")
            with strategy.scope():
                head.set_encoder_trainable(True)
                head.compile(optimizer=keras.optimizers.Adam(learning_rate * finetune_lr_scale))
            head.fit(train_heads, epochs=epochs, callbacks=[tensorboard], shuffle=False, verbose=0)
            accuracy[(source, head_name, "fine-tuned")] = float(
                head.evaluate(test_heads, verbose=0, return_dict=True)["accuracy"]
            )
    return PretrainFinetuneResult(
        accuracy=accuracy,
        reconstruction_loss=reconstruction_loss,
        mean_image_loss=mean_image_loss,
        seconds=time.time() - start,
        files={"model": model_path, "reconstructions": grid_path, "logs": log_dir},
    )
