"""FrechetDistance callback: scores the generator at the end of epochs."""

import keras


class FrechetDistance(keras.callbacks.Callback):
    """Adds `frechet_distance` and `kernel_distance` to the epoch logs.

    Put it before `TensorBoard`/`CSVLogger` in the callback list so that they
    record the distances too.

    Args:
        evaluator: `keras_pt.evaluation.GeneratorEvaluator`.
        every: int. Score every `every` epochs (and always after the last).
            Defaults to 1.
        verbose: bool. Print the distances. Defaults to True.

    Example:

    >>> gan.fit(data, epochs=5, callbacks=[FrechetDistance(evaluator)])  # doctest: +SKIP
    """

    def __init__(self, evaluator, every=1, verbose=True):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every must be >= 1; got {every}.")
        self.evaluator = evaluator
        self.every = int(every)
        self.verbose = verbose
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every and not last:
            return
        scores = self.evaluator(self.model.generator)
        self.history.append((epoch + 1, scores))
        if logs is not None:
            logs.update(scores)
        if self.verbose:
            print(
                f"epoch {epoch + 1}: frechet_distance={scores['frechet_distance']:.3f} "
                f"kernel_distance={scores['kernel_distance']:.4f}",
                flush=True,
            )
