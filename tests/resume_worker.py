"""A two-phase training run that the kill/resume test kills and restarts.

Phase "dae": a DenoisingAutoencoder (Adam, noise from its SeedGenerator)
pre-trains on the embedded digits. Phase "svm": an SVM head (Adam) trains on
its frozen encoder with 10 labels per class. Both go through
`keras_pt.training.train` with a `--model_dir`, so a restarted process
resumes where the checkpoints say.

Test-only hooks:
    --kill_at=PHASE:STEP       SIGKILL itself right after train step STEP.
    --kill_in_save=PHASE:STEP  SIGKILL itself while writing the checkpoint of
                               STEP (after the arrays, before the rename).

Writes `--out` (.npz of every model and optimizer variable of both phases)
and `--out`.json (the step each phase started from).
"""

import argparse
import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

DAE_STEPS, DAE_EVERY, DAE_BATCH = 30, 4, 64  # 22 steps per epoch
SVM_STEPS, SVM_EVERY, SVM_BATCH = 12, 3, 20  # 5 steps per epoch


def _point(text):
    if not text:
        return None, None
    phase, step = text.split(":")
    return phase, int(step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--kill_at", default="")
    parser.add_argument("--kill_in_save", default="")
    args = parser.parse_args()

    import keras
    import numpy as np

    import keras_pt
    from keras_pt import checkpointing, data, training

    kill_phase, kill_step = _point(args.kill_at)
    save_phase, save_step = _point(args.kill_in_save)
    current = {"phase": None}

    if save_phase:
        rename = os.rename

        def dying_rename(src, dst):
            if current["phase"] == save_phase and dst.endswith(f"ckpt-{save_step:08d}"):
                os.kill(os.getpid(), signal.SIGKILL)
            return rename(src, dst)

        checkpointing.os.rename = dying_rename

    class KillAt(keras.callbacks.Callback):
        started = set()

        def on_train_begin(self, logs=None):
            if current["phase"] not in self.started:
                self.started.add(current["phase"])
                step = int(self.model.optimizer.iterations)
                print(f"phase {current['phase']} starts at step {step}", flush=True)

        def on_train_batch_end(self, batch, logs=None):
            if current["phase"] == kill_phase and int(self.model.optimizer.iterations) == kill_step:
                os.kill(os.getpid(), signal.SIGKILL)

    digits = data.load_image_dataset("digits", data_dir=args.data_dir)
    images = data.unlabeled(digits.train)
    labelled = data.labeled_subset(digits.train, 10, seed=0, num_classes=10)

    def build_dae():
        model = keras_pt.DenoisingAutoencoder(image_shape=digits.image_shape, latent_dim=8, hidden_dims=(32,), seed=5)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        return model

    info = {}
    current["phase"] = "dae"
    dae = training.train(
        build_dae,
        lambda epoch, batch_size, seed: data.epoch_batches(images, batch_size, seed, epoch),
        batch_size=DAE_BATCH,
        steps=DAE_STEPS,
        strategy="default",
        model_dir=os.path.join(args.model_dir, "dae"),
        checkpoint_every=DAE_EVERY,
        callbacks=[KillAt()],
        seed=1,
    )
    info["dae_initial_step"] = dae.initial_step

    def build_svm():
        encoder = keras.models.clone_model(dae.model.encoder)
        encoder.set_weights(dae.model.encoder.get_weights())
        model = keras_pt.SVMClassifier(encoder, num_classes=10, C=1.0)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        return model

    current["phase"] = "svm"
    svm = training.train(
        build_svm,
        lambda epoch, batch_size, seed: data.epoch_batches(labelled, batch_size, seed, epoch),
        batch_size=SVM_BATCH,
        steps=SVM_STEPS,
        strategy="default",
        model_dir=os.path.join(args.model_dir, "svm"),
        checkpoint_every=SVM_EVERY,
        callbacks=[KillAt()],
        seed=2,
    )
    info["svm_initial_step"] = svm.initial_step

    arrays = {}
    for phase, result in (("dae", dae), ("svm", svm)):
        for i, (name, variable) in enumerate(checkpointing.training_state(result.model)):
            arrays[f"{phase}__{i}"] = np.asarray(variable)
    np.savez(args.out, **arrays)
    with open(args.out + ".json", "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    sys.exit(main())
