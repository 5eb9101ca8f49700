"""The errors `train` stops with: a non-finite or exploded loss, preemption."""


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or Inf loss (or weight) and stopped.

    Attributes:
        step: int. The step (1-based count of train steps) that produced it.
        checkpoint: str or None. The last healthy checkpoint (its weights
            gave a checked loss at a later step), left intact; what
            `train(..., restart_from_healthy=True)` continues from.
    """

    def __init__(self, message, step=None, checkpoint=None):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


class DivergenceError(NonFiniteLossError):
    """The loss stayed finite but exploded: it exceeded `divergence_factor`
    times the best loss of the run so far. Same attributes as
    `NonFiniteLossError`."""


class TrainingPreempted(RuntimeError):
    """SIGTERM arrived; every worker saved a checkpoint and training stopped.

    Attributes:
        step: int. Steps done, saved in `checkpoint`.
        checkpoint: str or None. The checkpoint to resume from.
    """

    def __init__(self, message, step=None, checkpoint=None):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint
