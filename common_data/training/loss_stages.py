"""Loss stages (PPON, traiNNer): which loss terms are active from which iteration on, decided once for both backends.

``model.loss_stages`` is a list of ``{from_iter: N, losses: [term, ...]}``, the first from iteration 1, each later
one from a larger iteration; a stage lasts until the next one begins. Terms name the model's criteria:

  pixel             pixel_criterion   (l_pix)
  edge              edge_criterion    (l_edge)
  perceptual        perceptual_criterion (l_percep, l_style)
  gan               gan_criterion: the generator's adversarial term (l_g_gan) and the discriminator's training
  feature_matching  feature_matching_weight (l_g_fm; the discriminator runs, it is trained only with gan)

e.g. PPON's three stages: ``[{from_iter: 1, losses: [pixel]}, {from_iter: 100000, losses: [pixel, edge]},
{from_iter: 200000, losses: [perceptual, gan]}]``. The stage is a function of the iteration alone, so a resumed
run is in the stage of the iteration it continues at. Every configured criterion must be on in some stage.
"""
from common_data.errors import ConfigError

TERMS = {"pixel": "pixel_criterion", "edge": "edge_criterion", "perceptual": "perceptual_criterion",
         "gan": "gan_criterion", "feature_matching": "feature_matching_weight"}
WHERE = "model.loss_stages"
EXAMPLE = "[{from_iter: 1, losses: [pixel]}, {from_iter: 5000, losses: [pixel, perceptual, gan]}]"


class LossStages:
    """Validated stages: ``index_at(it)``, ``terms(index)``, ``describe(index)``."""

    def __init__(self, starts, terms):
        self.starts, self._terms = list(starts), [frozenset(t) for t in terms]

    @classmethod
    def from_config(cls, spec, configured):
        """``spec`` (the config's list) checked against ``configured`` (the terms this model has criteria for);
        None / [] -> None (every configured term always on). Errors are one-line ConfigErrors naming the stage."""
        if spec is None or (isinstance(spec, (list, tuple)) and not spec):
            return None
        if not isinstance(spec, (list, tuple)):
            raise ConfigError(f"{WHERE} must be a list of {{from_iter, losses}} stages, e.g. {EXAMPLE}; got {spec!r}")
        starts, terms = [], []
        for i, stage in enumerate(spec):
            where = f"{WHERE}[{i}]"
            if not isinstance(stage, dict) or set(stage) != {"from_iter", "losses"}:
                raise ConfigError(f"{where} must be a mapping with exactly from_iter and losses, e.g. "
                                  f"{{from_iter: 1, losses: [pixel]}}; got {stage!r}")
            start, losses = stage["from_iter"], stage["losses"]
            if isinstance(start, bool) or not isinstance(start, int) or start < 1:
                raise ConfigError(f"{where}.from_iter must be an iteration number >= 1, got {start!r}")
            if i == 0 and start != 1:
                raise ConfigError(f"{where}.from_iter must be 1 (the first stage starts training), got {start}")
            if starts and start <= starts[-1]:
                raise ConfigError(f"{where}.from_iter {start} must be larger than the stage before's "
                                  f"({starts[-1]}): list the stages in the order they begin")
            if isinstance(losses, str) or not isinstance(losses, (list, tuple)) or not losses:
                raise ConfigError(f"{where}.losses must be a non-empty list of terms ({', '.join(TERMS)}), "
                                  f"got {losses!r}")
            for term in losses:
                if term not in TERMS:
                    raise ConfigError(f"{where}.losses: unknown term {term!r}; the terms are {', '.join(TERMS)}")
                if term not in configured:
                    raise ConfigError(f"{where}.losses: {term} is on but the model has no {TERMS[term]}; add "
                                      f"model.{TERMS[term]} or drop {term} from the stage")
            starts.append(start)
            terms.append(losses)
        unused = [t for t in configured if not any(t in s for s in terms)]
        if unused:
            raise ConfigError(f"{WHERE}: model.{TERMS[unused[0]]} is configured but no stage turns {unused[0]} on; "
                              f"add it to a stage's losses or remove the criterion")
        return cls(starts, terms)

    def index_at(self, iteration):
        """The index of the stage iteration ``iteration`` (1-based) trains in."""
        index = 0
        for i, start in enumerate(self.starts):
            if iteration >= start:
                index = i
        return index

    def terms(self, index):
        return self._terms[index]

    def describe(self, index):
        """e.g. 'loss stage 2/3 (from iteration 5000): pixel, perceptual, gan'."""
        names = [t for t in TERMS if t in self._terms[index]]
        return f"loss stage {index + 1}/{len(self.starts)} (from iteration {self.starts[index]}): {', '.join(names)}"
