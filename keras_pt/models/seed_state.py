"""Saving a model's random-stream state with its weights."""


class SeedStateMixin:
    """Saves `self.seed_generator`'s state in `.keras` files beside the
    weights, so a reloaded model continues the same random stream (masks,
    noise, latents, crops) instead of restarting it. Files written without
    the state load as before. Mix in before `keras.Model`."""

    _SEED_STATE_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_STATE_KEY] = self.seed_generator.state.numpy()

    def load_own_variables(self, store):
        keys = [k for k in store.keys() if k != self._SEED_STATE_KEY]
        if self._SEED_STATE_KEY in store.keys():
            self.seed_generator.state.assign(store[self._SEED_STATE_KEY])
        super().load_own_variables({k: store[k] for k in keys})
