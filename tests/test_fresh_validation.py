"""Fresh validation (``validation = "fresh"``, the TPTT code's protocol): a new set of val_size
samples at every validation, keyed by the iteration, so a run stays reproducible and resumable."""

import jax.numpy as jnp
import numpy as np

from localrnn.config import TrainConfig
from localrnn.tasks import get_task, validation_batch
from localrnn.train import evaluate_params, initial_params, train_one


def _cfg(**kw):
    d = dict(task="random_permutation", length=6, rule="readout", hidden=8, batch=10, val_size=1500,
             val_every=20, max_iters=100, patience=0, lr=0.1, dtype="float64")
    d.update(kw)
    return TrainConfig(**d)


def _literal_errors(params, task, length, size, seed, draw):
    """Error count by a plain numpy forward over the chunks of the set ``draw`` selects."""
    p = [np.asarray(a) for a in params]
    wrong, n = 0, 0
    for i in range(-(-size // 1000)):
        x, y = (np.asarray(a) for a in validation_batch(task, length, seed, i, jnp.float64, draw))
        h = np.zeros((x.shape[1], p[1].shape[0]))
        for t in range(length):
            h = np.tanh(h @ p[1] + x[t] @ p[0] + p[2])
        out = h @ p[3] + p[4]
        take = min(1000, size - n)
        wrong += int(np.sum(np.argmax(out[:take], 1) != np.argmax(y[:take], 1)))
        n += take
    return wrong


def test_each_draw_is_its_own_set_and_the_fixed_set_is_unchanged():
    cfg, task = _cfg(), get_task("random_permutation")
    p = initial_params(cfg)
    fixed = np.asarray(validation_batch(task, 6, cfg.val_seed, 0, jnp.float64)[0])
    a = np.asarray(validation_batch(task, 6, cfg.val_seed, 0, jnp.float64, 20)[0])
    b = np.asarray(validation_batch(task, 6, cfg.val_seed, 0, jnp.float64, 40)[0])
    assert not np.array_equal(a, b) and not np.array_equal(a, fixed)
    np.testing.assert_array_equal(a, np.asarray(validation_batch(task, 6, cfg.val_seed, 0, jnp.float64, 20)[0]))
    for draw in (None, 20, 40):
        errors, _ = evaluate_params(p, task, 6, 1500, cfg.val_seed, jnp.float64,
                                    draw=None if draw is None else jnp.asarray(draw))
        assert int(errors) == _literal_errors(p, task, 6, 1500, cfg.val_seed, draw)


def test_fresh_validation_trains_alike_and_validates_on_new_samples(tmp_path):
    fixed, fresh = train_one(_cfg()), train_one(_cfg(validation="fresh"))
    # validation does not touch training: same losses and weights, other validation errors
    assert [h["train_loss"] for h in fixed.history] == [h["train_loss"] for h in fresh.history]
    np.testing.assert_array_equal(np.asarray(fixed.params.Why), np.asarray(fresh.params.Why))
    task, last = get_task("random_permutation"), fresh.history[-1]
    assert last["iteration"] == fresh.iterations == 100
    assert last["val_errors"] == _literal_errors(fresh.params, task, 6, 1500, fresh.config.val_seed, 100)
    assert fixed.history[-1]["val_errors"] == _literal_errors(fixed.params, task, 6, 1500,
                                                              fixed.config.val_seed, None)
    assert [h["val_errors"] for h in fixed.history] != [h["val_errors"] for h in fresh.history]
    assert fresh.config.run_id() != fixed.config.run_id()
    assert fresh.config.structure_key() != fixed.config.structure_key()
    # reproducible and resumable: the draw is keyed by the iteration
    path = str(tmp_path / "run.ckpt")
    part = train_one(_cfg(validation="fresh"), checkpoint=path, stop_after=40)
    assert part.status == "interrupted"
    resumed = train_one(_cfg(validation="fresh"), checkpoint=path, resume=True)
    assert resumed.history == fresh.history


def test_a_fixed_config_keeps_the_id_it_had_before_the_option():
    """Stored studies resume: ``validation`` enters a config's id only when it is not the default."""
    cfg = _cfg()
    assert "validation" not in cfg.structure_key()
    assert cfg.run_id() == TrainConfig(**{k: v for k, v in cfg.model_dump().items() if k != "validation"}).run_id()
    assert "validation" in _cfg(validation="fresh").structure_key()
