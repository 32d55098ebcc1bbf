"""Fits trained together (train/loop.py): every member ends bit for bit as the same fit alone, on any
thread count; what cannot be stepped together is refused or trained alone; sweeps group fits and keep
their numbers."""

import json
import os
import signal

import numpy as np
import pytest
import torch
import yaml

from relu_denoise import workflows
from relu_denoise.noise import NoiseSpec, offline_samples
from relu_denoise.recipe import ModelSpec, TrainSpec, parse_recipe
from relu_denoise.sweep import load_sweep, run_sweep
from relu_denoise.train import OfflineSamples, OnlineNoise, Trainer, fit_denoiser, groupable, load_checkpoint, train_members

TRIANGLE = np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]])
LINE = np.array([[0.0], [1.0], [2.5]])


def _members(points, noises, *, width=32, train=None, seeds=(0, 1)):
    """(points, samples, generator seed) for every noise spec x seed: same shape, different data."""
    out = []
    for noise in noises:
        for seed in seeds:
            out.append((points, offline_samples(points, noise, rng=np.random.default_rng(seed)), seed))
    return out, ModelSpec(width=width), train or TrainSpec(steps=600)


def _trainer(member, model, train):
    points, samples, seed = member
    return Trainer(points, OfflineSamples(samples), model, train, generator=torch.Generator().manual_seed(seed))


def _same(a, b) -> bool:
    return a.history == b.history and all(torch.equal(v, b.net.state_dict()[k]) for k, v in a.net.state_dict().items())


CASES = {
    "2-D sphere, full batches": (TRIANGLE, [NoiseSpec(distribution="sphere", radius=r, samples=10) for r in (0.05, 0.15)],
                                 TrainSpec(steps=600)),
    "1-D (d = 1 products)": (LINE, [NoiseSpec(distribution="sphere", radius=r, samples=20) for r in (0.05, 0.1)],
                             TrainSpec(steps=600)),
    "2-D gaussian, minibatches": (TRIANGLE, [NoiseSpec(distribution="gaussian", sigma=s, samples=12)
                                             for s in (0.02, 0.04)], TrainSpec(steps=600, batch=4)),
    "penalty method": (TRIANGLE, [NoiseSpec(distribution="sphere", radius=0.1, samples=10)],
                       TrainSpec(steps=400, method="penalty")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_fit_trained_with_others_ends_exactly_as_alone(case):
    points, noises, train = CASES[case]
    members, model, train = _members(points, noises, train=train)
    alone = [train_members([_trainer(m, model, train)])[0] for m in members]
    together = train_members([_trainer(m, model, train) for m in members])
    assert [r.stats.steps for r in together] == [r.stats.steps for r in alone]
    for a, b in zip(alone, together):
        assert _same(a, b)
        assert b.stats.trained_with == len(members)


def test_the_checks_do_not_depend_on_the_thread_count():
    """The output layer's Gram products are summed over all samples; on 2 threads they once rounded unlike 1."""
    members, model, _ = _members(TRIANGLE, [NoiseSpec(distribution="sphere", radius=0.05, samples=10)], seeds=(0,))
    runs = [train_members([_trainer(members[0], model, TrainSpec(steps=100, threads=n))])[0] for n in (1, 2)]
    assert _same(runs[0], runs[1])


def test_members_stop_by_their_own_rule():
    """A member that converges leaves the group; the others go on (different step counts, same as alone)."""
    members, model, train = _members(TRIANGLE, [NoiseSpec(distribution="sphere", radius=0.1, samples=10)],
                                     train=TrainSpec(steps=3000, tol=0.25))
    together = train_members([_trainer(m, model, train) for m in members])
    steps = [r.stats.steps for r in together]
    assert len(set(steps)) > 1, steps
    assert any(r.stats.stop_reason == "converged" for r in together)


def test_what_cannot_step_together_is_refused_with_the_reason():
    members, model, train = _members(TRIANGLE, [NoiseSpec(distribution="sphere", radius=0.1, samples=10)])
    other = _trainer((TRIANGLE, offline_samples(TRIANGLE, NoiseSpec(distribution="sphere", radius=0.1, samples=12),
                                                rng=np.random.default_rng(0)), 0), model, train)
    assert "shapes differ" in groupable([_trainer(members[0], model, train), other])
    wd = TrainSpec(steps=10, method="weight-decay")
    assert "weight-decay" in groupable([_trainer(m, model, wd) for m in members])
    online = Trainer(TRIANGLE, OnlineNoise(NoiseSpec(distribution="sphere", radius=0.1, samples=10, mode="online")), model,
                     train, generator=torch.Generator().manual_seed(0))
    assert "online" in groupable([online, online])
    with pytest.raises(ValueError, match="cannot train these fits together"):
        train_members([_trainer(members[0], model, train), other])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_fits_are_trained_one_at_a_time():
    members, model, train = _members(TRIANGLE, [NoiseSpec(distribution="sphere", radius=0.1, samples=10)])
    gpu = [Trainer(p, OfflineSamples(s), model, train, generator=torch.Generator().manual_seed(seed), device="cuda")
           for p, s, seed in members]
    assert "round differently" in groupable(gpu)


def test_ctrl_c_interrupts_every_member_and_each_resumes_alone_to_the_same_end(tmp_path):
    members, model, train = _members(TRIANGLE, [NoiseSpec(distribution="sphere", radius=0.1, samples=10)],
                                     train=TrainSpec(steps=700, checkpoint_every=100))
    alone = [fit_denoiser(points, samples, model, train, seed=seed) for points, samples, seed in members]

    def ctrl_c(record):
        if record["step"] == 300:
            os.kill(os.getpid(), signal.SIGINT)

    paths = [tmp_path / f"m{i}.pt" for i in range(len(members))]
    ended = train_members([_trainer(m, model, train) for m in members], callbacks=[ctrl_c, None],
                         checkpoints=paths)
    assert [getattr(e, "reason", None) for e in ended] == ["interrupted", "interrupted"]
    for member, path, reference in zip(members, paths, alone):
        state = load_checkpoint(path)
        assert 300 <= state["step"] < 700
        resumed = fit_denoiser(member[0], member[1], model, train,
                               seed=member[2], resume=state)
        assert _same(resumed, reference)


# ---------------------------------------------------------------- workflows and sweeps


RECIPE = {"name": "tri", "seed": 0, "data": {"kind": "points", "points": TRIANGLE.tolist()},
          "noise": {"distribution": "sphere", "radius": 0.05, "samples": 10},
          "model": {"width": 32}, "train": {"steps": 6000}}


def test_the_grouped_workflow_writes_the_runs_a_fit_writes(tmp_path):
    jobs = [(parse_recipe(RECIPE, [f"noise.radius={r}", f"seed={s}"]), tmp_path, tmp_path / f"g{r}-{s}")
            for r in (0.05, 0.1) for s in (0, 1)]
    jobs.append((parse_recipe(RECIPE, ["noise.samples=12"]), tmp_path, tmp_path / "other-shape"))
    jobs.append((parse_recipe(RECIPE, ["noise.radius=0.9"]), tmp_path, tmp_path / "overlap"))   # refused
    grouped = workflows.fit_many_workflow(jobs, device="cpu", figures=False)
    for (recipe, base, out), outcome in zip(jobs[:5], grouped):
        alone = workflows.fit_workflow(recipe, base, out=str(out) + "-alone", device="cpu", figures=False)
        assert outcome.result["cost"] == alone.result["cost"] and outcome.status == alone.status
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in alone.run.path.iterdir())
    assert "overlap" in str(grouped[-1]) and not (tmp_path / "overlap").exists()


def test_a_batched_sweep_gives_the_table_of_one_fit_at_a_time(tmp_path):
    (tmp_path / "tri.yaml").write_text(yaml.safe_dump(RECIPE))
    sweep = {"name": "b", "command": "fit", "recipe": "tri.yaml", "device": "cpu",
             "grid": {"noise.radius": [0.05, 0.1], "seed": "0:2"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    numbers = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "run_dir")} for r in rows]  # noqa: E731
    batched = run_sweep(load_sweep(tmp_path / "s.yaml", out=tmp_path / "a"), jobs=1)
    alone = run_sweep(load_sweep(tmp_path / "s.yaml", out=tmp_path / "b", batch=False), jobs=1)
    assert batched.ok and len(batched.rows) == 4
    assert numbers(batched.rows) == numbers(alone.rows)
    info = [json.loads((tmp_path / "a" / r["run_dir"].split("/")[-1] / "sweep_point.json").read_text())
            for r in batched.rows]
    assert [i["trained_with"] for i in info] == [4, 4, 4, 4]
