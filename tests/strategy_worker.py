"""Trains the cases of tests/strategy_cases.py under each given strategy; writes .npz.

Run by tests/distribute/test_strategy_equivalence.py: one process for one device and
2 mirrored replicas (one after the other; the second run of a model class
reuses the first's traced code), one per MultiWorkerMirroredStrategy worker
(collectives are per process):

    python tests/strategy_worker.py --strategy=default,mirrored --out=one.npz,m.npz
    python tests/strategy_worker.py --strategy=mirrored --loop=custom --out=m.npz
    TF_CONFIG=... python tests/strategy_worker.py --strategy=multi_worker --out=w0.npz

For each case the .npz holds the initial and final weights (for
classifiers, those of the best epoch by validation accuracy), the logged
values after every step, and (on one device) the reference mean loss of the
first global batch at the initial weights. `--fit_canary` also tries plain
`model.fit` (keras#20585) and records the error message, if any;
`--steps_per_execution_canary` does the same for fit with
`steps_per_execution=2` under Mirrored (keras#19246), last, since a failed
collective may leave the process unusable. With
`--model_dir` every case checkpoints each step and resumes from there;
`--sigterm_at_step=K` sends this process SIGTERM after step K of the first
case (the preemption test).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", required=True, help="default, mirrored or multi_worker; several: a,b")
    parser.add_argument("--loop", default="auto", choices=["auto", "fit", "custom"])
    parser.add_argument("--cases", default="all")
    parser.add_argument("--out", required=True, help="one .npz per strategy, comma-separated")
    parser.add_argument("--fit_canary", action="store_true")
    parser.add_argument("--steps_per_execution_canary", action="store_true")
    parser.add_argument("--model_dir", default=None)
    parser.add_argument("--sigterm_at_step", type=int, default=0)
    args = parser.parse_args()
    strategies, outs = args.strategy.split(","), args.out.split(",")
    if len(strategies) != len(outs) or not set(strategies) <= {"default", "mirrored", "multi_worker"}:
        parser.error(f"--strategy of default, mirrored or multi_worker, one --out each; got {args.strategy} {args.out}")

    import tensorflow as tf

    if "mirrored" in strategies:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_pt import distribute

    for name, out in zip(strategies, outs, strict=True):
        devices = ["/cpu:0", "/cpu:1"] if name == "mirrored" else None
        run(args, distribute.get_strategy(name, devices=devices), out)


def run(args, strategy, out):
    """Trains the cases under `strategy`; writes `out` and `out`.json."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_pt import data, training
    from tests import strategy_cases

    names = list(strategy_cases.CASES) if args.cases == "all" else args.cases.split(",")

    class Recorder(keras.callbacks.Callback):
        def __init__(self, case, dataset_fn):
            super().__init__()
            self.case, self.dataset_fn = case, dataset_fn
            self.initial, self.reference, self.logs = None, np.nan, []

        def on_train_begin(self, logs=None):
            if self.initial is not None:
                return
            self.initial = [np.array(w) for w in self.model.get_weights()]
            if self.case.reference_loss and strategy.num_replicas_in_sync == 1:
                # Inside train(): TF's global seed is set, so this is the
                # first batch that training reads.
                first_batch = next(iter(self.dataset_fn(0, strategy_cases.BATCH_SIZE, 0)))
                self.reference = self.case.reference_loss(self.model, first_batch)

        def on_train_batch_end(self, batch, logs=None):
            self.logs.append([float(logs[k]) for k in self.case.loss_keys])
            if self.case is first_case and len(self.logs) == args.sigterm_at_step:
                import signal

                os.kill(os.getpid(), signal.SIGTERM)

    arrays, info = {}, {"num_replicas": strategy.num_replicas_in_sync}
    first_case = strategy_cases.CASES[names[0]]
    for name in names:
        case = strategy_cases.CASES[name]

        def dataset_fn(epoch, batch_size, seed, case=case):
            return data.epoch_batches(case.data(), batch_size, seed, epoch)

        recorder = Recorder(case, dataset_fn)
        validation = {}
        if case.classifier:
            # 32 examples in batches of 12: a short last batch too.
            validation = dict(
                validation_fn=training.classification_accuracy(case.data().batch(12)),
                early_stopping=training.EarlyStopping(monitor="val_accuracy", patience=strategy_cases.STEPS),
            )
        try:
            result = training.train(
                case.build,
                dataset_fn,
                batch_size=strategy_cases.BATCH_SIZE,
                steps=strategy_cases.STEPS,
                strategy=strategy,
                loop=args.loop,
                callbacks=[recorder],
                model_dir=os.path.join(args.model_dir, name) if args.model_dir else None,
                checkpoint_every=1 if args.model_dir else None,
                **validation,
            )
        except training.TrainingPreempted as error:
            info[f"{name}__preempted"] = error.step
            break
        info[f"{name}__initial_step"] = result.initial_step
        info[f"{name}__validation"] = [result.validation, result.best_epoch]
        if result.initial_step == 0:
            for i, w in enumerate(recorder.initial or []):
                arrays[f"{name}__initial__{i}"] = w
        for i, w in enumerate(result.model.get_weights()):
            arrays[f"{name}__final__{i}"] = np.asarray(w)
        # One row per step; steps done before a restart are NaN.
        skipped = np.full((result.initial_step, len(case.loss_keys)), np.nan)
        arrays[f"{name}__logs"] = np.concatenate(
            [skipped, np.asarray(recorder.logs, "float64").reshape(-1, len(case.loss_keys))]
        )
        arrays[f"{name}__reference"] = np.asarray(recorder.reference, "float64")

    if args.fit_canary:
        # keras#20585: plain fit under MultiWorkerMirroredStrategy.
        with strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.compile(loss="mse", optimizer="sgd")
        ones = tf.data.Dataset.from_tensors((tf.ones([8, 4]), tf.ones([8, 1]))).repeat(2)
        try:
            model.fit(ones, epochs=1, verbose=0)
            info["fit_canary"] = "ok"
        except Exception as error:  # noqa: BLE001 - recorded for the test
            info["fit_canary"] = f"{type(error).__name__}: {str(error)[:300]}"

    if args.steps_per_execution_canary and strategy.num_replicas_in_sync > 1:
        # keras#19246: fit with steps_per_execution > 1 under MirroredStrategy;
        # the strategy.run loop (loop="auto" picks it) gives the weights of
        # single steps.
        case = strategy_cases.CASES["autoencoder"]

        def build_multi_step():
            model = case.build()
            model.compile(optimizer=keras.optimizers.SGD(0.5), steps_per_execution=2)
            return model

        def dataset_fn(epoch, batch_size, seed):
            return data.epoch_batches(case.data(), batch_size, seed, epoch)

        kwargs = dict(batch_size=strategy_cases.BATCH_SIZE, steps=strategy_cases.STEPS, strategy=strategy)
        auto = training.train(build_multi_step, dataset_fn, **kwargs)
        for i, w in enumerate(auto.model.get_weights()):
            arrays[f"multi_step__final__{i}"] = np.asarray(w)
        try:
            training.train(build_multi_step, dataset_fn, loop="fit", **kwargs)
            info["steps_per_execution_canary"] = "ok"
        except Exception as error:  # noqa: BLE001 - recorded for the test
            info["steps_per_execution_canary"] = f"{type(error).__name__}: {str(error)[:300]}"

    np.savez(out, **arrays)
    with open(out + ".json", "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    sys.exit(main())
