"""The run context every recipe shares.

A recipe resolves its strategy, seeds and output folder once, here, and
hands them down: `RunContext` holds the strategy, writes only on the chief,
goes through `tf.io.gfile` for every path (so `gs://` and `ram://` model
folders work), records the settings that define the run in
`<model_dir>/settings.json` (a rerun with other settings is refused), puts a
SHA-256 beside every `.keras` file it writes and checks it when a recipe
loads its own earlier output, and runs every training phase through
`keras_pt.training.train` with one checkpoint folder per phase.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_pt import distribute, training

SETTINGS_FILENAME = "settings.json"
# Settings that change what a run prints or where it writes, never its result.
OUTPUT_ONLY = frozenset({"model_dir", "verbose", "checkpoint_every", "restart_from_healthy", "export"})


def _is_local(path):
    return "://" not in str(path)


def join(*parts):
    """`os.path.join` that keeps `gs://` and `ram://` prefixes intact."""
    return os.path.join(*[str(p) for p in parts])


def file_sha256(path):
    """The SHA-256 (hex) of a file, read through `tf.io.gfile`."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(model):
    """The SHA-256 (hex) of a model's weights, in order: what a phase was trained on."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def fingerprint(value):
    """A JSON-able stand-in for a setting's value.

    Numbers, strings, `None` and lists of them stand for themselves; a Keras
    model for the SHA-256 of its weights; arrays for the SHA-256 of their
    bytes; a `.keras` path for the SHA-256 of the file; other objects (a
    `tf.data.Dataset`, a `TextData`) for their type and name, which a rerun
    cannot check beyond that.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if value.endswith(".keras") and tf.io.gfile.exists(value):
            return {"path": value, "sha256": file_sha256(value)}
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, keras.Model):
        return {"model": type(value).__name__, "sha256": weights_sha256(value)}
    if isinstance(value, np.ndarray):
        return {"array": list(value.shape), "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value) and len(value) > 16:
            joined = "\n".join(value).encode("utf-8")
            return {"texts": len(value), "sha256": hashlib.sha256(joined).hexdigest()}
        return [fingerprint(v) for v in value]
    if isinstance(value, dict):
        return {str(k): fingerprint(v) for k, v in value.items()}
    name = getattr(value, "name", None)
    return {"object": type(value).__name__, "name": name if isinstance(name, str) else None}


def settings_of(config):
    """The result-defining settings of a recipe config: every field but the output-only ones."""
    return {
        field.name: fingerprint(getattr(config, field.name))
        for field in dataclasses.fields(config)
        if field.name not in OUTPUT_ONLY
    }


@dataclasses.dataclass
class RunConfig:
    """The settings every recipe takes (each recipe's config adds its own
    and sets its defaults): where the data and the outputs are, the
    strategy, the precision, the batch size, checkpoints, the seed and the
    verbosity. See a recipe's arguments for their meaning."""

    dataset: object = None
    data_dir: object = None
    strategy: object = "auto"
    tpu: object = None
    mixed_precision: object = None
    model_dir: str = "runs"
    batch_size: int = 32
    scale_batch_size: bool = False
    checkpoint_every: object = None
    restart_from_healthy: bool = False
    seed: int = 0
    verbose: int = 1


def resolve_config(config_class, config, overrides):
    """`config` (or the defaults) with keyword `overrides` applied.

    Raises:
        ValueError: for a keyword the recipe does not take.
    """
    if config is None:
        config = config_class()
    elif not isinstance(config, config_class):
        raise ValueError(f"config must be a {config_class.__name__}, got {type(config).__name__}.")
    names = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)} for {config_class.__name__}; it takes {', '.join(sorted(names))}."
        )
    return dataclasses.replace(config, **overrides)


def _differences(old, new):
    keys = sorted(set(old) | set(new))
    return [key for key in keys if old.get(key) != new.get(key)]


def _short(value):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


class RunContext:
    """Strategy, seed, output folder and settings of one recipe run.

    Args:
        recipe: str. The recipe's name, recorded with the settings.
        config: the recipe's config dataclass. Its `model_dir`, `strategy`,
            `tpu`, `seed`, `mixed_precision`, `checkpoint_every`,
            `scale_batch_size`, `restart_from_healthy` and `verbose` fields
            (where present) set the context.

    Raises:
        ValueError: for an unwritable `model_dir`, an unknown strategy, or
            a `model_dir` holding a run with other settings.
    """

    def __init__(self, recipe, config):
        self.recipe = recipe
        self.config = config
        self.model_dir = str(config.model_dir).rstrip("/")
        self.seed = int(getattr(config, "seed", 0))
        self.verbose = int(getattr(config, "verbose", 0))
        self.mixed_precision = getattr(config, "mixed_precision", None)
        self.checkpoint_every = getattr(config, "checkpoint_every", None)
        self.scale_batch_size = bool(getattr(config, "scale_batch_size", False))
        self.restart_from_healthy = bool(getattr(config, "restart_from_healthy", False))
        strategy = getattr(config, "strategy", "auto")
        if not isinstance(strategy, tf.distribute.Strategy):
            strategy = distribute.get_strategy(strategy, tpu=getattr(config, "tpu", None))
        self.strategy = strategy
        self.is_chief = distribute.is_chief(strategy)
        keras.utils.set_random_seed(self.seed)
        self._check_writable()
        self.settings = dict(settings_of(config), recipe=recipe)
        self._check_settings()

    # === Paths ===

    def path(self, *parts):
        """A path under the model folder."""
        return join(self.model_dir, *parts)

    def _check_writable(self):
        probe = self.path(f".write-test-{os.getpid()}")
        try:
            tf.io.gfile.makedirs(self.model_dir)
            with tf.io.gfile.GFile(probe, "w") as f:
                f.write("")
            tf.io.gfile.remove(probe)
        except (tf.errors.OpError, OSError) as error:
            raise ValueError(
                f"cannot write to model_dir {self.model_dir!r} ({type(error).__name__}); "
                "choose a folder you can write to with --model_dir."
            ) from None

    # === Settings ===

    def _read_settings(self):
        """The settings file: recipe name -> that recipe's settings (recipes
        may share a folder: their phases' folders differ)."""
        path = self.path(SETTINGS_FILENAME)
        if not tf.io.gfile.exists(path):
            return {}
        with tf.io.gfile.GFile(path, "r") as f:
            return json.load(f)

    def _check_settings(self):
        old = self._read_settings().get(self.recipe)
        self._settings_written = False
        if old is None:
            return
        new = json.loads(json.dumps(self.settings))
        changed = _differences(old, new)
        if changed and not self.restart_from_healthy:
            lines = "; ".join(f"{key}: {_short(old.get(key))} -> {_short(new.get(key))}" for key in changed)
            raise ValueError(
                f"{self.model_dir!r} holds a {self.recipe} run with other settings ({lines}). A "
                "rerun with the same model_dir resumes that run; to run with these settings use "
                f"a new --model_dir, or delete {self.model_dir!r} to start over."
            )
        self._settings_written = not changed

    def _record_settings(self):
        # Written when the run first trains or saves, so that a run refused
        # for bad input leaves nothing that binds the folder.
        if not self._settings_written:
            settings = dict(self._read_settings(), **{self.recipe: self.settings})
            text = json.dumps(settings, indent=1, sort_keys=True) + "\n"
            self.write_text(self.path(SETTINGS_FILENAME), text)
            self._settings_written = True

    def phase_config(self, phase, **inputs):
        """The `config` a phase's checkpoints record: the run's settings, the
        phase and the fingerprints of what it is trained on (`inputs`)."""
        return dict(self.settings, phase=phase, **{k: fingerprint(v) for k, v in inputs.items()})

    # === Chief-only writes ===

    def write_text(self, path, text):
        """Writes a text file (chief only), whole or not at all: through a
        temporary file renamed over `path`."""
        if self.is_chief:
            temp = f"{path}.tmp-{os.getpid()}"
            with tf.io.gfile.GFile(temp, "w") as f:
                f.write(text)
            tf.io.gfile.rename(temp, path, overwrite=True)
        return path

    def save_model(self, model, path):
        """Saves `model` as a `.keras` file with its SHA-256 in `path + ".sha256"` (chief only)."""
        self._record_settings()
        if not self.is_chief:
            return path
        if _is_local(path):
            model.save(path)
        else:
            with tempfile.TemporaryDirectory() as temp:
                local = os.path.join(temp, os.path.basename(path))
                model.save(local)
                tf.io.gfile.copy(local, path, overwrite=True)
        self.write_text(path + ".sha256", file_sha256(path) + "\n")
        return path

    def tensorboard(self, name):
        """TensorBoard callbacks writing to `logs/<name>` (the chief's only)."""
        return [keras.callbacks.TensorBoard(self.path("logs", name))] if self.is_chief else []

    # === Training ===

    def train(self, phase, build_model, dataset_fn, inputs=None, callbacks=None, **kwargs):
        """`keras_pt.training.train` for one phase: its checkpoints in
        `<model_dir>/<phase>/`, TensorBoard logs in `logs/<phase>`, and the
        run's settings plus the fingerprints of `inputs` as its `config`."""
        self._record_settings()
        kwargs.setdefault("mixed_precision", self.mixed_precision)
        kwargs.setdefault("seed", self.seed)
        kwargs.setdefault("verbose", self.verbose)
        try:
            return training.train(
                build_model,
                dataset_fn,
                strategy=self.strategy,
                model_dir=self.path(phase),
                callbacks=self.tensorboard(phase) + list(callbacks or []),
                config=self.phase_config(phase, **(inputs or {})),
                restart_from_healthy=self.restart_from_healthy,
                **kwargs,
            )
        except training.NonFiniteLossError as error:
            raise type(error)(
                f"{error} From a recipe: call it again with restart_from_healthy=True and the "
                "new settings; from an example binary: run the same command again with the new "
                "settings (e.g. a lower --learning_rate) and --restart_from_healthy.",
                step=error.step,
                checkpoint=error.checkpoint,
            ) from None


def load_model(path, what="model", strategy=None):
    """Loads a `.keras` file a recipe wrote, refusing a missing or damaged one.

    Checks the SHA-256 beside the file (`RunContext.save_model` writes it)
    when there is one, and turns Keras's errors for a truncated or foreign
    file into a `ValueError` that names the file.
    """
    if not tf.io.gfile.exists(path):
        raise ValueError(f"no {what} at {path!r}; pass the path of a .keras file.")
    checksum = path + ".sha256"
    if tf.io.gfile.exists(checksum):
        with tf.io.gfile.GFile(checksum, "r") as f:
            expected = f.read().strip()
        if expected != file_sha256(path):
            raise ValueError(
                f"the {what} file {path!r} does not match its SHA-256 ({checksum}): it was "
                "changed or damaged after it was written; write it again (rerun the recipe "
                "that made it in a new model_dir)."
            )
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    try:
        with scope, tempfile.TemporaryDirectory() as temp:
            local = path
            if not _is_local(path):
                local = os.path.join(temp, os.path.basename(path))
                tf.io.gfile.copy(path, local, overwrite=True)
            return keras.saving.load_model(local)
    except Exception as error:  # Keras raises many kinds for a damaged zip
        raise ValueError(
            f"cannot load the {what} file {path!r}: it is not a complete .keras file "
            f"written by keras_pt ({type(error).__name__}: {str(error)[:200]})."
        ) from None


def local_copy(model):
    """The model rebuilt under the default strategy (call it outside any
    strategy scope), with the same weights and state (saved and loaded
    through a temporary `.keras` file).

    Keras's `evaluate` fails under `MultiWorkerMirroredStrategy`; a recipe
    evaluates this copy instead, on every worker alike, with no
    cross-replica traffic.
    """
    with tempfile.TemporaryDirectory() as temp:
        path = os.path.join(temp, "model.keras")
        model.save(path)
        return keras.saving.load_model(path)
