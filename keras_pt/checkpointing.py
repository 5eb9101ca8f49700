"""Atomic, verified checkpoints of a model's whole training state.

A checkpoint holds every variable a training run needs to continue exactly:
the model's variables (weights, batch-norm statistics and the states of its
`SeedGenerator`s, i.e. `model.variables`), the variables of every optimizer
the model holds (`model.optimizer` and any other optimizer attribute, e.g. a
GAN's `d_optimizer` and `g_optimizer`; iterations, learning rate, moments,
loss scale), and a JSON manifest with the step counter, the data position
and a SHA-256 of the arrays.

Layout under `directory`:

    ckpt-00000120/state.npz       the arrays, in `training_state` order
    ckpt-00000120/manifest.json   step, data position, names, shapes, SHA-256
    .tmp-ckpt-...                 a checkpoint being written (ignored)

A checkpoint is written into a `.tmp-` folder, flushed, and renamed into
place, so a process killed while saving leaves the previous checkpoints as
they were (on object stores such as `gs://`, which cannot rename folders,
the manifest is written last and marks the checkpoint complete). Loading
verifies the hash, names and shapes; an unreadable newest
checkpoint falls back to the one before it, with a warning, and is moved
aside (`ckpt-00000120.corrupt-1`) so that the next save writes that step
afresh instead of skipping an existing folder.
"""

import hashlib
import io
import json
import os
import re
import shutil
import uuid
import warnings

import keras
import numpy as np
import tensorflow as tf

FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8,})$")


def checkpoint_step(path):
    """The step of a checkpoint path (`.../ckpt-00000120` -> 120)."""
    return int(_NAME.match(os.path.basename(str(path).rstrip("/"))).group(1))


class CheckpointError(ValueError):
    """A checkpoint cannot be used (corrupt, or written by another run)."""


def find_optimizers(model):
    """Every optimizer a model holds: `model.optimizer`, then other attributes.

    Models with several optimizers keep them as attributes (a GAN's
    `d_optimizer` and `g_optimizer`); they are found by attribute name, in
    sorted order, so two processes list them alike.

    Returns:
        list of `(name, optimizer)`.
    """
    found, seen = [], set()
    candidates = [("optimizer", getattr(model, "optimizer", None))]
    candidates += sorted(
        (name, value) for name, value in vars(model).items() if isinstance(value, keras.optimizers.Optimizer)
    )
    for name, optimizer in candidates:
        name = name.lstrip("_")
        if isinstance(optimizer, keras.optimizers.Optimizer) and id(optimizer) not in seen:
            seen.add(id(optimizer))
            found.append((name, optimizer))
    return found


def training_state(model):
    """The `(name, variable)` pairs that a checkpoint saves, in a fixed order.

    The model's `variables` (weights, non-trainable statistics and
    `SeedGenerator` states), then each optimizer's `variables`. Metric
    variables are left out: they hold running means of the current epoch's
    logs, not training state.

    Raises:
        ValueError: if an optimizer has not been built (its slot variables
            do not exist yet, so they could be neither saved nor restored).
    """
    state = [(f"model/{i}/{v.path}", v) for i, v in enumerate(model.variables)]
    for name, optimizer in find_optimizers(model):
        if not optimizer.built:
            raise ValueError(
                f"optimizer {name!r} of {model.name} is not built, so its state "
                "cannot be checkpointed. Build it when compiling (e.g. "
                "`optimizer.build(model.trainable_variables)`), as GAN.compile "
                "does for its two optimizers."
            )
        state += [(f"{name}/{i}/{v.path}", v) for i, v in enumerate(optimizer.variables)]
    return state


def _is_remote(path):
    return "://" in path


def _write(path, data):
    if _is_remote(path):
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
        return
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _fsync_dir(path):
    if _is_remote(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path):
    if _is_remote(path):
        tf.io.gfile.rmtree(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


class Checkpointer:
    """Saves and restores a list of variables atomically, keeping the last few.

    Args:
        directory: str. Folder of the checkpoints (local or `gs://`).
        state: list of `(name, variable)`, e.g. `training_state(model)`.
        keep: int. Complete checkpoints to keep (the newest). Defaults to 3.
        is_writer: bool. Whether this process writes. Under
            MultiWorkerMirroredStrategy only the chief writes; every worker
            reads. Defaults to True.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> ckpt = Checkpointer("/tmp/doc_ckpt", [(v.path, v) for v in model.variables])
    >>> path = ckpt.save(step=1)
    >>> ckpt.restore()["step"]
    1
    """

    def __init__(self, directory, state, keep=3, is_writer=True):
        if int(keep) < 1:
            raise ValueError(f"keep must be at least 1, got {keep}.")
        self.directory = str(directory)
        self.state = list(state)
        self.keep = int(keep)
        self.is_writer = bool(is_writer)

    # === Listing ===

    def complete_checkpoints(self):
        """Paths of the checkpoints in `directory`, oldest first (by step)."""
        if not tf.io.gfile.isdir(self.directory):
            return []
        found = []
        for name in tf.io.gfile.listdir(self.directory):
            match = _NAME.match(name.rstrip("/"))
            if match:
                found.append((int(match.group(1)), os.path.join(self.directory, name.rstrip("/"))))
        return [path for _, path in sorted(found)]

    # === Saving ===

    def save(self, step, metadata=None):
        """Writes a checkpoint of the current values at `step`; returns its path.

        The arrays and the manifest go to a temporary folder that is renamed
        into place when complete. Older checkpoints beyond `keep` are
        deleted afterwards. Non-writers return the path without writing.

        Raises:
            FloatingPointError: if a floating-point variable holds NaN or
                Inf (a checkpoint is never overwritten by broken weights).
        """
        step = int(step)
        final = os.path.join(self.directory, f"ckpt-{step:08d}")
        arrays = [np.asarray(keras.ops.convert_to_numpy(v)) for _, v in self.state]
        for (name, _), array in zip(self.state, arrays):
            if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
                raise FloatingPointError(
                    f"variable {name} holds NaN or Inf at step {step}; the checkpoint was not written."
                )
        if not self.is_writer:
            return final
        tf.io.gfile.makedirs(self.directory)
        if tf.io.gfile.exists(final):
            return final  # the same step was saved before this restart
        buffer = io.BytesIO()
        np.savez(buffer, **{f"a{i}": a for i, a in enumerate(arrays)})
        payload = buffer.getvalue()
        manifest = {
            "format": FORMAT_VERSION,
            "step": step,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "names": [name for name, _ in self.state],
            "shapes": [list(a.shape) for a in arrays],
            "dtypes": [str(a.dtype) for a in arrays],
            **(metadata or {}),
        }
        manifest_bytes = json.dumps(manifest, indent=1).encode()
        if _is_remote(final):
            # Object stores cannot rename folders: the manifest, written
            # last, marks the checkpoint complete.
            tf.io.gfile.makedirs(final)
            _write(os.path.join(final, "state.npz"), payload)
            _write(os.path.join(final, "manifest.json"), manifest_bytes)
        else:
            temp = os.path.join(self.directory, f".tmp-ckpt-{step:08d}-{uuid.uuid4().hex[:8]}")
            os.makedirs(temp)
            _write(os.path.join(temp, "state.npz"), payload)
            _write(os.path.join(temp, "manifest.json"), manifest_bytes)
            _fsync_dir(temp)
            os.rename(temp, final)
            _fsync_dir(self.directory)
        self._prune()
        return final

    def _prune(self):
        complete = self.complete_checkpoints()
        for path in complete[: max(0, len(complete) - self.keep)]:
            _remove_tree(path)

    def set_aside(self, path, label):
        """Renames checkpoint `path` to `<path>.<label>-<n>` (a new `n`).

        Set-aside folders are no longer listed, restored or pruned; the next
        save at that step writes a fresh checkpoint. Returns the new path
        (None for non-writers, which leave the folder to the chief).
        """
        if not self.is_writer:
            return None
        n = 1
        while tf.io.gfile.exists(f"{path}.{label}-{n}"):
            n += 1
        target = f"{path}.{label}-{n}"
        if _is_remote(path):
            try:
                tf.io.gfile.rename(path, target)
            except tf.errors.OpError:
                _remove_tree(path)  # stores that cannot rename folders
                return None
        else:
            os.rename(path, target)
            _fsync_dir(self.directory)
        return target

    def remove_partial(self):
        """Deletes `.tmp-` folders left by a process killed while saving."""
        if not self.is_writer or not tf.io.gfile.isdir(self.directory):
            return
        for name in tf.io.gfile.listdir(self.directory):
            if name.startswith(".tmp-ckpt-"):
                _remove_tree(os.path.join(self.directory, name.rstrip("/")))

    # === Restoring ===

    def read(self, path):
        """Reads and verifies one checkpoint; returns `(manifest, arrays)`.

        Raises:
            CheckpointError: if it is incomplete, truncated or corrupt.
        """
        try:
            manifest = json.loads(_read(os.path.join(path, "manifest.json")))
            payload = _read(os.path.join(path, "state.npz"))
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise CheckpointError(f"cannot read {path}: {error}") from error
        if hashlib.sha256(payload).hexdigest() != manifest.get("sha256"):
            raise CheckpointError(f"{path}/state.npz does not match the SHA-256 in its manifest (truncated or corrupt)")
        try:
            with np.load(io.BytesIO(payload)) as data:
                arrays = [data[f"a{i}"] for i in range(len(manifest["names"]))]
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(f"cannot load the arrays of {path}: {error}") from error
        return manifest, arrays

    def _check_matches(self, path, manifest, arrays):
        # Variables match by position, shape and dtype: their paths carry
        # layer names that Keras uniquifies per process ("dense_3"), so the
        # saved names are only shown in the error message.
        expected = [(tuple(v.shape), keras.backend.standardize_dtype(v.dtype)) for _, v in self.state]
        saved = [(tuple(a.shape), str(a.dtype)) for a in arrays]
        if expected == saved:
            return
        mismatch = next(
            (i for i, (a, b) in enumerate(zip(expected, saved)) if a != b),
            min(len(expected), len(saved)),
        )
        names = manifest.get("names", [])
        raise ValueError(
            f"checkpoint {path} was written by a different model or optimizer: "
            f"it holds {len(saved)} variables, this model has {len(expected)}; "
            f"the first difference is at #{mismatch} (saved "
            f"{names[mismatch] if mismatch < len(names) else 'nothing'} "
            f"{saved[mismatch] if mismatch < len(saved) else ''}, expected "
            f"{self.state[mismatch][0] if mismatch < len(self.state) else 'nothing'} "
            f"{expected[mismatch] if mismatch < len(expected) else ''}). Resume "
            "with the same model and optimizer settings, or use a new model_dir."
        )

    def restore(self, before_step=None, check=None):
        """Loads the newest readable checkpoint into the variables.

        An unreadable checkpoint (truncated, corrupt, incomplete) is skipped
        and the one before it is tried. Once one loads, each skipped one is
        moved aside (`set_aside(path, "corrupt")`) with a `RuntimeWarning`
        naming it, so the next save at its step writes a fresh checkpoint.

        Args:
            before_step: int or None. Only consider checkpoints of earlier
                steps (a restart from before a divergence).
            check: callable `(manifest) -> None` or None. Called with the
                manifest (with `"path"`) of the checkpoint about to be
                loaded, before any variable is assigned; it may raise to
                refuse it.

        Returns:
            The manifest dict of the loaded checkpoint (with `"path"`), or
            None when `directory` holds no checkpoint (before `before_step`).

        Raises:
            CheckpointError: if checkpoints exist but none can be read (never
                a silent restart from scratch).
            ValueError: if a checkpoint was written for other variables.
        """
        complete = self.complete_checkpoints()
        if before_step is not None:
            complete = [p for p in complete if checkpoint_step(p) < int(before_step)]
        unreadable = []
        for path in reversed(complete):
            try:
                manifest, arrays = self.read(path)
            except CheckpointError as error:
                unreadable.append((path, error))
                continue
            manifest["path"] = path
            manifest["skipped"] = [str(error) for _, error in unreadable]
            if check is not None:
                check(manifest)
            self._check_matches(path, manifest, arrays)
            for bad, error in unreadable:
                aside = self.set_aside(bad, "corrupt")
                moved = f"; moved it to {aside} so this step is saved afresh" if aside else ""
                warnings.warn(
                    f"skipping unreadable checkpoint {bad} ({error}); falling "
                    f"back to the previous checkpoint, {path}{moved}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            for (_, variable), array in zip(self.state, arrays):
                variable.assign(array)
            return manifest
        for bad, error in unreadable:
            warnings.warn(f"skipping unreadable checkpoint {bad} ({error}).", RuntimeWarning, stacklevel=2)
        if complete:
            problems = [str(error) for _, error in unreadable]
            raise CheckpointError(
                f"none of the {len(complete)} checkpoints in {self.directory} can "
                f"be read ({'; '.join(problems)}). Delete or move the folder to "
                "start again from scratch."
            )
        return None
