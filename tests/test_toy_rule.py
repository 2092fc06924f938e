"""Adding a rule touches its own file and the registry only (docs/extending.md).

A toy rule (scaled gradient descent, or sign-SGD) is declared here and registered by a
fixture; with nothing else changed it appears in ``localrnn rules`` and ``train --help``,
its ranges are enforced on the command line and in specs, it trains from the command line,
and it passes the shared battery.
"""

import json
from typing import Literal

import jax
import jax.numpy as jnp
import pytest
from pydantic import BaseModel, ConfigDict, Field

from localrnn.cli import main
from localrnn.experiments.spec import SpecError, parse_spec, plan
from localrnn.losses import global_loss
from localrnn.model import forward
from localrnn.rules import RULES, Hparam, Rule, RuleDef, register
from localrnn.rules._base import zero_state

from test_rule_battery import run_battery


class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    direction: Literal["gradient", "sign"] = Field(
        "gradient", description="step along the gradient, or along its sign (sign-SGD)")


def _build(options: ToyOptions, loss: str, record: bool) -> Rule:
    loss_fn = global_loss(loss)

    def step(params, state, batch, hparams):
        """``grads = scale * dE/dtheta`` (or ``scale * sign(dE/dtheta)``)."""
        x, y = batch
        e_val, grads = jax.value_and_grad(lambda p: loss_fn(forward(p, x), y))(params)
        if options.direction == "sign":
            grads = jax.tree.map(jnp.sign, grads)
        return jax.tree.map(lambda g: hparams["toy_scale"] * g, grads), state, {"loss": e_val}

    return Rule("toy", zero_state, step)


TOY = RuleDef(name="toy", summary="scaled gradient descent (a test rule)", options=ToyOptions,
              hparams={"toy_scale": Hparam(1.0, "factor on the update", low=0.0, high=10.0)},
              build=_build)


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    del RULES["toy"]


def _cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_listed_by_rules(toy, capsys):
    code, out, _ = _cli(["rules", "--json"], capsys)
    assert code == 0
    row = {r["name"]: r for r in json.loads(out)}["toy"]
    assert row["summary"] == TOY.summary
    assert row["settings"] == [
        {"name": "toy_scale", "kind": "hparam", "type": "float", "default": 1.0, "allowed": "[0, 10]",
         "help": "factor on the update"},
        {"name": "direction", "kind": "option", "type": "str", "default": "gradient",
         "allowed": ["gradient", "sign"], "help": "step along the gradient, or along its sign (sign-SGD)"}]


def test_flags_in_train_help(toy, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = _cli(["train", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "Options of rule toy" in text
    assert "--toy-scale <float> factor on the update; default 1.0; allowed [0, 10]" in text
    assert "--direction [gradient|sign] step along the gradient" in text


def test_cli_checks_its_range_and_its_owner(toy, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["train", "--task", "temporal-order", "--length", "10"]
    for args, line in [(["--rule", "toy", "--toy-scale", "11"], "error: --toy-scale: must be in [0, 10], got 11.0"),
                       (["--rule", "toy", "--direction", "up"],
                        "error: --direction: 'up' is not allowed; allowed: gradient, sign"),
                       (["--rule", "bptt", "--toy-scale", "1"],
                        "error: --toy-scale: rule 'bptt' does not take this option; its options: --reg-lambda")]:
        code, out, err = _cli(base + args, capsys)
        assert (code, out, err) == (2, "", line + "\n")
    assert list(tmp_path.iterdir()) == []


def test_trains_from_the_command_line(toy, capsys):
    code, out, _ = _cli(["train", "--task", "temporal-order", "--length", "10", "--rule", "toy",
                         "--toy-scale", "0.5", "--direction", "sign", "--lr", "0.01", "--hidden", "8",
                         "--max-iters", "20", "--val-every", "10", "--val-size", "100", "--json"], capsys)
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["iterations"] == 20
    assert summary["config"]["rule"] == "toy"
    assert summary["config"]["hparams"] == {"toy_scale": 0.5}
    assert summary["config"]["rule_options"] == {"direction": "sign"}


TOY_EXPERIMENT = {"name": "toy", "fixed": {"task": "temporal_order", "length": 10, "hidden": 8},
        "arms": [{"name": "Toy", "rule": "toy", "fixed": {"direction": "sign"},
                  "grid": {"toy_scale": [0.5, 1.0]}}]}


def test_spec_validation(toy):
    trials = plan(parse_spec(TOY_EXPERIMENT), "default")
    assert [(t.config.hparams, t.config.rule_options) for t in trials] == [
        ({"toy_scale": 0.5}, {"direction": "sign"}), ({"toy_scale": 1.0}, {"direction": "sign"})]
    bad = {**TOY_EXPERIMENT, "arms": [{**TOY_EXPERIMENT["arms"][0], "grid": {"toy_scale": [0.5, 20.0]}}]}
    with pytest.raises(SpecError, match=r"^spec: arms\[0\]\.grid\.toy_scale: must be in \[0, 10\], got 20.0$"):
        parse_spec(bad)
    bad = {**TOY_EXPERIMENT, "arms": [{**TOY_EXPERIMENT["arms"][0], "fixed": {"direction": "up"}}]}
    with pytest.raises(SpecError, match=r"^spec: arms\[0\]\.fixed\.direction: Input should be 'gradient' or"):
        parse_spec(bad)


def test_passes_the_shared_battery(toy):
    run_battery(toy)


def test_fixture_leaves_the_registry_as_it_was():
    assert "toy" not in RULES
