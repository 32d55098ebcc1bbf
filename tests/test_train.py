"""Training engine and `reluden fit`: the hand-written step against autograd and torch.optim, a 1-D fit
against its closed form, determinism, resume, divergence and device errors."""

import dataclasses
import json
import signal

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from relu_denoise import TrainingError, closed_form
from relu_denoise import metrics
from relu_denoise import train as train_package
from relu_denoise.geometry import distance_to_hull_2d
from relu_denoise.cli import app
from relu_denoise.errors import RecipeError
from relu_denoise.network import ShallowDenoiser
from relu_denoise.noise import NoiseSpec, offline_samples
from relu_denoise.recipe import ModelSpec, TrainSpec
from relu_denoise.train import fit_denoiser, load_checkpoint, resolve_device, resolve_dtype
from relu_denoise.train.engine import _Flat, _forward, _gradients, _Workspace

POINTS = np.array([[0.0], [1.0], [2.5]])   # three points on a line, gaps 1 and 1.5
RADIUS = 0.1
RECIPE = {"name": "three", "seed": 0, "data": {"kind": "points", "points": POINTS.tolist()},
          "noise": {"distribution": "sphere", "radius": RADIUS, "samples": 20},
          "model": {"width": 32}, "train": {"steps": 6000, "patience": 20}}   # no stop before step 4000


def _samples(seed=0):
    return offline_samples(POINTS, NoiseSpec(distribution="sphere", radius=RADIUS, samples=20),
                           rng=np.random.default_rng(seed))


def _fit(train=None, *, seed=0, data=None, **kw):
    return fit_denoiser(POINTS, _samples(seed) if data is None else data, ModelSpec(width=32), train or TrainSpec(),
                        seed=seed, **kw)


# ---------------------------------------------------------------- the step against oracles


@pytest.mark.parametrize("skip", [True, False])
def test_gradients_match_autograd(skip):
    g = torch.Generator().manual_seed(1)
    K, d, P, coef = 7, 3, 11, 0.3
    net = ShallowDenoiser(K, d, skip=skip, generator=g)
    with torch.no_grad():
        net.V.copy_(torch.randn(d, d, generator=g, dtype=torch.float64) if skip else torch.zeros(d, d))
        net.c.copy_(torch.randn(d, generator=g, dtype=torch.float64))
    Y = torch.randn(P, d, generator=g, dtype=torch.float64)                        # (P, d)
    G = torch.randn(P, d, generator=g, dtype=torch.float64)                        # (P, d)
    ((net(Y) * G).sum() + coef * net.weight_cost()).backward()
    p = _Flat.from_network(net)
    grad, ws = _Flat(torch.zeros_like(p.flat), K, d), _Workspace()
    Z, S, O = _forward(p, Y.T.contiguous(), ws)
    torch.testing.assert_close(O.T, net(Y), rtol=1e-12, atol=1e-12)
    _gradients(p, grad, Y.T.contiguous(), Z, S, G.T.contiguous(), coef, skip, ws)
    expected = {"At": net.a.grad.T, "w": net.w.grad, "b": net.b.grad[:, None], "c": net.c.grad[:, None],
                "V": net.V.grad if skip else torch.zeros(d, d, dtype=torch.float64)}
    for name, want in expected.items():
        torch.testing.assert_close(getattr(grad, name), want, rtol=1e-12, atol=1e-12, msg=name)


def test_weight_decay_method_is_torch_adam_with_coupled_weight_decay():
    """The engine's weight-decay method = the paper's code: Adam(weight_decay on a and w) on MSELoss."""
    steps, lam, lr = 25, 1e-2, 1e-2
    fit = _fit(TrainSpec(method="weight-decay", steps=steps, lr=lr, weight_decay=lam, check_every=1000))
    net = ShallowDenoiser(32, 1, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam([{"params": [net.a, net.w], "weight_decay": lam},
                            {"params": [net.b, net.V, net.c], "weight_decay": 0.0}], lr=lr)
    S = _samples()
    Y, X = torch.as_tensor(S.reshape(-1, 1)), torch.as_tensor(np.repeat(POINTS, 20, axis=0))
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(Y), X).backward()
        opt.step()
    grid = np.linspace(-1, 3.5, 50)[:, None]
    np.testing.assert_allclose(fit.net.predict(grid), net.predict(grid), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- fits


def test_three_point_fit_reaches_the_closed_form():
    fit = _fit()
    form = closed_form(POINTS, rho=RADIUS)
    assert fit.stats.converged and fit.stats.stop_reason == "converged"
    assert fit.stats.cost / form.cost_formula == pytest.approx(1.0, abs=0.02)
    assert fit.stats.max_residual_rel <= 0.01
    S = _samples()
    worst = np.abs(fit.net.predict(S.reshape(-1, 1)) - np.repeat(POINTS, 20, axis=0)).max()
    assert worst == pytest.approx(fit.stats.max_residual, rel=1e-6)   # stats describe the returned net
    assert metrics.function_gap(fit.net, form, POINTS, scale=RADIUS) <= 0.05
    assert fit.history["step"][0] == 0 and fit.history["step"][-1] == fit.stats.steps


def test_online_fit_reaches_the_closed_form():
    fit = _fit(data=NoiseSpec(distribution="sphere", radius=RADIUS, samples=20, mode="online"))
    form = closed_form(POINTS, rho=RADIUS)
    assert fit.stats.mode == "online" and fit.stats.max_residual_rel <= 0.01
    assert fit.stats.cost / form.cost_formula == pytest.approx(1.0, abs=0.03)
    assert metrics.function_gap(fit.net, form, POINTS, scale=RADIUS) <= 0.05


@pytest.mark.parametrize("sigma", [0.001, 0.01])
def test_many_close_points_at_low_noise_reach_the_closed_form(sigma):
    """A small DEFAULT_RECIPE: 8 points 1/7 apart, Gaussian offline noise far below the gap. The identity
    (free through V) misses each constraint by only ~sigma; before residuals were penalised in noise units
    and the output layer solved exactly, training stayed near it (cost ratio 0.0 at sigma 0.001, 0.72 with
    residual 17% of the gap at 0.01, 20k steps)."""
    X = np.linspace(0.0, 1.0, 8)[:, None]                                          # (N, 1)
    S = X[:, None, :] + sigma * np.random.default_rng(0).standard_normal((8, 20, 1))   # (N, M, 1)
    fit = fit_denoiser(X, S, ModelSpec(width=32), TrainSpec(), seed=0)
    form = closed_form(X, samples=S)                                               # theory.md 1: empirical rho
    assert fit.stats.converged and fit.stats.max_residual_rel <= 0.01
    assert fit.stats.cost / form.cost_formula == pytest.approx(1.0, abs=0.02)
    assert fit.stats.steps <= 10000


def test_same_seed_same_weights_and_another_seed_differs():
    train = TrainSpec(steps=300)
    one, two, other = _fit(train), _fit(train), _fit(train, seed=1)
    for k, v in one.net.state_dict().items():
        assert torch.equal(v, two.net.state_dict()[k]), k
    assert one.history == {k: v for k, v in two.history.items()}
    assert not torch.equal(one.net.w, other.net.w)


def test_float32_keeps_its_dtype():
    fit = _fit(TrainSpec(steps=200, dtype="float32"))
    assert fit.net.w.dtype == torch.float32 and fit.stats.dtype == "float32"


def test_divergence_raises_after_saving_the_last_good_state(tmp_path):
    with pytest.raises(TrainingError, match="diverged at step 100") as info:
        _fit(TrainSpec(lr=1e300), checkpoint=tmp_path / "ck.pt")
    assert info.value.reason == "diverged" and info.value.history["step"] == [0]
    state = torch.load(tmp_path / "ck.pt", weights_only=False)
    assert state["step"] == 0 and torch.isfinite(state["theta"]).all()


def test_a_crash_resumes_from_the_periodic_checkpoint_to_the_same_weights(tmp_path):
    train = TrainSpec(checkpoint_every=500, patience=20)                 # no stop before 40 checks: past the crash
    whole = _fit(train)

    def crash(rec):
        if rec["step"] == 1200:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        _fit(train, callback=crash, checkpoint=tmp_path / "ck.pt")
    state = load_checkpoint(tmp_path / "ck.pt")
    assert state["step"] == 1000
    resumed = _fit(train, resume=state)
    assert resumed.history == whole.history
    for k, v in whole.net.state_dict().items():
        assert torch.equal(v, resumed.net.state_dict()[k]), k


# ---------------------------------------------------------------- probe set and gap


def test_function_gap_of_a_closed_form_with_itself_is_zero_and_sees_a_shift():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]])
    form = closed_form(X, rho=0.15)
    assert metrics.function_gap(form.network, form, X) == 0.0
    shifted = form.network
    with torch.no_grad():
        shifted.c += torch.tensor([0.0, 0.1], dtype=torch.float64)
    assert metrics.function_gap(shifted, form, X) == pytest.approx(0.1 / np.sqrt(10))


def test_probe_points_stay_near_the_hull():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]])
    Y = metrics.probe_points(X)
    assert len(Y) > 1000
    assert distance_to_hull_2d(Y, X).max() <= 0.1 * np.sqrt(10) + 1e-12
    assert distance_to_hull_2d(np.array([[0.5, 0.1], [0.5, -1.0]]), X) == pytest.approx([0.0, 1.0])


# ---------------------------------------------------------------- devices


@pytest.mark.parametrize("name,message", [
    ("tpu", "--device 'tpu': expected auto, cpu, cuda, cuda:N or mps"),
    ("cuda:x", "expected auto, cpu, cuda, cuda:N or mps"),
    pytest.param("cuda", "CUDA is not available", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="GPU")),
    pytest.param("cuda:99", "CUDA", marks=pytest.mark.skipif(torch.cuda.device_count() > 8, reason="many GPUs")),
])
def test_bad_devices_raise_one_line_recipe_errors(name, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(")) as info:
        resolve_device(name)
    assert "\n" not in str(info.value)


def test_devices_normalise():
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_dtype("float32", torch.device("cpu")) == torch.float32
    with pytest.raises(RecipeError, match="MPS does not support float64"):
        resolve_dtype("float64", torch.device("mps"))


# ---------------------------------------------------------------- the command


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_bad_device_is_a_one_line_error(recipe_file, tmp_path):
    out = tmp_path / "run"
    result = _invoke("fit", recipe_file, "--device", "tpu", "--out", out, "--quiet")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: --device 'tpu': expected auto, cpu, cuda, cuda:N or mps"]
    assert not out.exists()


def test_cli_divergence_exits_1_with_reason_and_checkpoint(recipe_file, tmp_path):
    out = tmp_path / "run"
    result = _invoke("fit", recipe_file, "--set", "train.lr=1e300", "--out", out, "--quiet", "--json")
    assert result.exit_code == 1
    assert "diverged at step" in result.output and "lower train.lr" in result.output
    assert "Traceback" not in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "diverged at step" in manifest["reason"]
    assert (out / "checkpoint.pt").is_file() and (out / "history.csv").is_file()
    assert not (out / "result.json").exists()


def test_cli_fit_writes_the_run_and_resume_equals_an_uninterrupted_run(recipe_file, tmp_path, monkeypatch):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    done = CliRunner().invoke(app, ["fit", str(recipe_file), "--out", str(whole), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads((whole / "result.json").read_text())
    assert json.loads(done.stdout) == result                                       # --json prints result.json
    for key in ("cost", "train_mse", "max_residual", "steps", "seconds", "device", "dtype", "closed_form_cost",
                "cost_ratio", "function_gap"):
        assert key in result, key
    assert result["status"] == "ok" and result["device"] == "cpu" and result["dtype"] == "float64"
    assert abs(result["cost_ratio"] - 1) <= 0.02 and result["function_gap"] <= 0.05
    for name in ("model.pt", "history.csv", "fit.png", "training.png", "recipe.yaml", "manifest.json"):
        assert (whole / name).is_file(), name
    net, meta = ShallowDenoiser.load(whole / "model.pt")
    assert meta["recipe"]["name"] == "three" and float(net.path_cost().detach()) == pytest.approx(result["cost"])

    original = train_package.fit_many

    def interrupted(jobs):                                                        # Ctrl-C at step 1000
        def with_ctrl_c(job):
            def on_check(rec):
                if rec["step"] == 1000:
                    signal.raise_signal(signal.SIGINT)
                return job.callback(rec) if job.callback else None
            return dataclasses.replace(job, callback=on_check)
        return original([with_ctrl_c(job) for job in jobs])

    monkeypatch.setattr(train_package, "fit_many", interrupted)
    stopped = _invoke("fit", recipe_file, "--out", parts, "--quiet")
    assert stopped.exit_code == 1 and "interrupted at step 1001" in stopped.output
    assert json.loads((parts / "manifest.json").read_text())["status"] == "interrupted"
    assert not (parts / "result.json").exists()
    monkeypatch.setattr(train_package, "fit_many", original)
    resumed = _invoke("fit", "--resume", parts, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    a, _ = ShallowDenoiser.load(whole / "model.pt")
    b, _ = ShallowDenoiser.load(parts / "model.pt")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    again = json.loads((parts / "result.json").read_text())
    same = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "run_dir")}   # noqa: E731
    assert same(again) == same(result)
    assert (parts / "history.csv").read_text() == (whole / "history.csv").read_text()


def test_cli_resume_refuses_a_new_recipe(recipe_file, tmp_path):
    result = _invoke("fit", recipe_file, "--resume", tmp_path, "--quiet")
    assert result.exit_code == 2 and "--resume continues a run as it was" in result.output


# ---------------------------------------------------------------- exact interpolants, tolerance, width, threads


def _cloud_problem(N=6, M=30, d=2, radius=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = np.stack([np.arange(N, dtype=float), rng.uniform(-0.2, 0.2, N)], 1)[:, :d]          # (N, d), 1 apart
    return X, offline_samples(X, NoiseSpec(distribution="sphere", radius=radius, samples=M), rng=rng)


def test_snapped_boundaries_cut_no_cloud_and_cloud_features_equal_the_samples():
    """_snap_boundaries: after it every unit has each cloud on one side, and units that cut none stay put;
    _cloud_features: N (d + 1) virtual samples with the same Gram matrix and right-hand side as the N M samples."""
    from relu_denoise.train.engine import _cloud_features, _snap_boundaries
    X, S = _cloud_problem()
    N, M, d = S.shape
    net = ShallowDenoiser(40, d, generator=torch.Generator().manual_seed(3))
    p = _Flat.from_network(net)
    Yt = torch.as_tensor(S.reshape(-1, d)).T.contiguous()                        # (d, N M)
    Xt = torch.as_tensor(np.repeat(X, M, axis=0)).T.contiguous()
    Z0 = torch.addmm(p.b, p.w, Yt).view(40, N, M)
    q = _snap_boundaries(p, Yt, N, M)
    Z = torch.addmm(q.b, q.w, Yt).view(40, N, M)
    cut0 = ((Z0.amin(2) < 0) & (Z0.amax(2) > 0)).any(1)
    assert cut0.any()
    assert not ((Z.amin(2) < -1e-12) & (Z.amax(2) > 1e-12)).any()
    assert torch.equal(q.b[~cut0], p.b[~cut0]) and torch.equal(q.w, p.w)
    F, T = _cloud_features(q, Yt, Xt, N, M, skip=True)                            # (K+d+1, N(d+1)), (d, N(d+1))
    S_ = torch.relu(torch.addmm(q.b, q.w, Yt))
    Fs = torch.cat([S_, Yt, torch.ones_like(Yt[:1])])                            # (K+d+1, N M)
    torch.testing.assert_close(F @ F.T, Fs @ Fs.T, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(F @ T.T, Fs @ Xt.T, rtol=1e-10, atol=1e-9)


def test_fits_are_exact_interpolants_within_tol_of_the_noise_and_report_the_affine_map():
    """The tolerance is tol x min(ell, noise radius): here ell = 1 and the noise radius 0.1, so 10 times stricter than against ell.
    The returned network interpolates every sample (docs/training.md 1, 9.4); the stats carry the width used
    (model.width unset: chosen from N) and the residual of the best affine map, which is far above tol."""
    fit = fit_denoiser(POINTS, _samples(), ModelSpec(), TrainSpec(polish=False), seed=0)   # the trainer's own net
    s = fit.stats
    assert s.converged and s.tol_unit == pytest.approx(RADIUS) and s.ell == 1.0
    assert s.noise_radius == pytest.approx(RADIUS) and s.max_residual <= 0.01 * RADIUS
    assert s.max_residual_rel == pytest.approx(s.max_residual / RADIUS)
    assert s.width == train_package.choose_width(3, 1) == fit.net.width
    assert s.affine_residual > 0.1 and s.affine_residual_rel == pytest.approx(s.affine_residual / RADIUS)
    S = _samples()
    worst = np.abs(fit.net.predict(S.reshape(-1, 1)) - np.repeat(POINTS, 20, axis=0)).max()
    assert worst <= 1e-8 and worst == pytest.approx(s.max_residual, abs=1e-12)
    assert fit.stats.cost / closed_form(POINTS, rho=RADIUS).cost_formula == pytest.approx(1.0, abs=0.02)


def test_choose_width_grows_with_the_points_and_a_recipe_width_is_kept():
    assert train_package.choose_width(3, 2) == 64
    assert train_package.choose_width(100, 2) == 800 and train_package.choose_width(300, 16) == 2400
    fit = _fit(TrainSpec(steps=100, polish=False))              # the trainer's net (a polish keeps fewer units)
    assert fit.stats.width == 32 == fit.net.width


def test_minibatches_of_constraints_reach_the_closed_form():
    """train.batch: 5 of each point's 20 samples per step, every sample keeping its multiplier."""
    fit = _fit(TrainSpec(batch=5))
    form = closed_form(POINTS, rho=RADIUS)
    assert fit.stats.converged and fit.stats.max_residual_rel <= 0.01
    assert fit.stats.cost / form.cost_formula == pytest.approx(1.0, abs=0.02)


def test_results_do_not_depend_on_the_thread_count():
    """Forced 1 or 2 threads (train.threads): the same weights and history, so the measured rule may switch."""
    X, S = _cloud_problem(N=8, M=64)
    runs = [fit_denoiser(X, S, ModelSpec(width=128), TrainSpec(steps=400, threads=n),
                         seed=0) for n in (1, 2)]
    assert [r.stats.threads for r in runs] == [1, 2]
    assert runs[0].history == runs[1].history
    for k, v in runs[0].net.state_dict().items():
        assert torch.equal(v, runs[1].net.state_dict()[k]), k


@pytest.fixture
def two_threads():
    """The rule measures only where the process has more than one thread (not so under OMP_NUM_THREADS=1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_thread_rule_keeps_one_thread_unless_more_are_faster_and_measures_again_when_the_load_changes(two_threads):
    cpu = torch.device("cpu")
    assert train_package.ThreadRule(cpu, 3, work=1e9).next() == 3                   # forced
    assert train_package.ThreadRule(cpu, None, work=1e3).next() == 1                # small step: one thread
    assert not train_package.ThreadRule(torch.device("meta"), None, work=1e9).active

    def simulate(rule, seconds, steps):                                            # seconds[n]: time of a step
        for step in range(steps):
            n = rule.next()
            rule.record(step, n, seconds[n])

    busy = train_package.ThreadRule(cpu, None, work=1e9)
    busy.most = 2
    busy._start_trial()
    simulate(busy, {1: 1.0, 2: 10.0}, 40)                                           # another job holds a core
    assert busy.current == 1 and busy.decisions[-1][1] == 1
    idle = train_package.ThreadRule(cpu, None, work=1e9)
    idle.most = 2
    idle._start_trial()
    simulate(idle, {1: 1.0, 2: 0.6}, 40)
    assert idle.current == 2
    simulate(idle, {1: 1.0, 2: 3.0}, 60)                                            # the machine got busy
    assert idle.current == 1 and len(idle.decisions) >= 2


def test_a_checkpoint_written_at_the_stopping_check_resumes_to_the_same_end(tmp_path):
    """Killed after training stopped but before the run was written (figures, polish): the last checkpoint is
    the stopping check's, and resuming from it stops there again instead of training on."""
    path = tmp_path / "c.pt"
    spec = TrainSpec(checkpoint_every=100, tol=0.05)
    done = _fit(spec, checkpoint=path)
    assert done.stats.stop_reason == "converged" and done.stats.steps < spec.steps
    state = load_checkpoint(path)
    assert state["step"] == done.stats.steps and state["stopped"] == "converged"
    again = _fit(spec, resume=state)
    assert again.stats.steps == done.stats.steps and again.stats.stop_reason == "converged"
    assert again.history == done.history
    for k, v in done.net.state_dict().items():
        assert torch.equal(v, again.net.state_dict()[k]), k
