"""The learned dispatcher: a network that scores candidates with shared weights, its model files, `twin
train` on the job shop and on the dynamic job shop, the shipped job-shop model against the best rule on the
dev set, and the shipped line model against FIFO on due dates."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from envs.instances import load_instance
from envs.jobshop import JobShopEnv
from envs.spaces import N_CANDIDATE_FEATURES, N_LINE_FEATURES
from policies.evaluate import gap_pct, run_episode
from policies.learned import (CandidateNet, Ensemble, LearnedPolicy, ModelCard, ModelFileError, load_model,
                              save_model, shipped_model_path)
from policies.rules import make_rule

ROOT = Path(__file__).resolve().parents[1]
DEV = [f"ta{i:02d}" for i in range(1, 11)]


def random_observation(rng: np.random.Generator, n: int, legal: int) -> dict[str, np.ndarray]:
    mask = np.zeros(n, np.int8)
    mask[rng.choice(n, legal, replace=False)] = 1
    return {"candidates": rng.normal(size=(n, N_CANDIDATE_FEATURES)).astype(np.float32), "mask": mask,
            "line": rng.random(N_LINE_FEATURES).astype(np.float32)}


def test_scores_follow_the_candidates_whatever_their_order_and_number():
    """Shared weights: permuting the rows permutes the scores, so the same model serves any size."""
    torch.manual_seed(0)
    policy = LearnedPolicy(CandidateNet(32))
    rng = np.random.default_rng(1)
    for n in (6, 15, 100):
        obs = random_observation(rng, n, legal=max(2, n // 3))
        perm = rng.permutation(n)
        shuffled = {"candidates": obs["candidates"][perm], "mask": obs["mask"][perm], "line": obs["line"]}
        scores, again = policy.scores(obs)[0], policy.scores(shuffled)[0]
        np.testing.assert_allclose(again, scores[perm], rtol=1e-5, atol=1e-5)
        assert np.isneginf(scores[obs["mask"] == 0]).all() and np.isfinite(scores[obs["mask"] == 1]).all()


def test_greedy_and_sampled_actions_are_always_legal():
    policy = LearnedPolicy(CandidateNet(16), seed=3)
    rng = np.random.default_rng(2)
    batch = [random_observation(rng, 20, legal=3) for _ in range(50)]
    stacked = {k: np.stack([o[k] for o in batch]) for k in batch[0]}
    for deterministic in (True, False):
        actions, state = policy.predict(stacked, deterministic=deterministic)
        assert state is None and actions.shape == (50,)
        assert all(o["mask"][a] == 1 for o, a in zip(batch, actions))


def test_model_files_round_trip_and_foreign_files_fail_clearly(tmp_path):
    net = CandidateNet(16)
    path = tmp_path / "m.pt"
    save_model(net, path, ModelCard(training_command="twin train ...", seed=4, results={"gap": 1.5}))
    loaded, card = load_model(path)
    assert card.seed == 4 and card.results == {"gap": 1.5}
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)

    (tmp_path / "junk.pt").write_bytes(b"not a model")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with zipfile.ZipFile(tmp_path / "sb3.zip", "w") as z:
        z.writestr("data", "{}")
    cases = {"junk.pt": "not a readable YueTwin policy file", "foreign.pt": "not a YueTwin dispatcher model",
             "sb3.zip": "training checkpoint", "missing.pt": "no such policy file"}
    for name, message in cases.items():
        with pytest.raises(ModelFileError, match=message):
            load_model(tmp_path / name)


def test_an_ensemble_acts_on_its_members_mean_log_probability_and_round_trips(tmp_path):
    """The ensemble's scores, recomputed by hand from each member's scores: log-softmax over the legal rows,
    averaged; the file keeps every member's weights, and a file whose members are not weights fails."""
    torch.manual_seed(0)
    members = [CandidateNet(16) for _ in range(3)]
    obs = random_observation(np.random.default_rng(6), 12, legal=5)
    legal = obs["mask"] == 1
    by_hand = np.zeros(legal.sum())
    for member in members:
        z = LearnedPolicy(member).scores(obs)[0][legal].astype(np.float64)
        by_hand += (z - z.max() - np.log(np.exp(z - z.max()).sum())) / len(members)
    ensemble = LearnedPolicy(Ensemble(members))
    scores = ensemble.scores(obs)[0]
    np.testing.assert_allclose(scores[legal], by_hand, rtol=1e-5, atol=1e-5)
    assert np.isneginf(scores[~legal]).all()
    assert int(ensemble.predict(obs)[0]) == int(np.flatnonzero(legal)[np.argmax(by_hand)])

    save_model(ensemble.net, tmp_path / "e.pt", ModelCard(seed=1))
    loaded, _ = load_model(tmp_path / "e.pt")
    assert isinstance(loaded, Ensemble) and len(loaded.members) == 3
    for member, again in zip(members, loaded.members):
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(), again.state_dict().values()))
    data = torch.load(tmp_path / "e.pt", weights_only=True)
    torch.save({**data, "members": []}, tmp_path / "empty.pt")
    with pytest.raises(ModelFileError, match="members are not a non-empty list"):
        load_model(tmp_path / "empty.pt")


def test_twin_train_writes_model_log_checkpoint_and_resumes(tmp_path):
    twin = str(Path(sys.executable).with_name("twin"))
    args = [twin, "train", "--out", str(tmp_path / "m.pt"), "--steps", "2048", "--imitate", "4",
            "--sizes", "6x6", "--expert-time-limit", "0.5", "--eval-every", "1024"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "best validation gap_pct" in res.stdout
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [r["phase"] for r in rows] == ["imitation", "ppo", "ppo"]
    assert [int(r["steps"]) for r in rows] == [0, 1024, 2048]  # one PPO rollout: 4 envs x 512 steps
    assert {r["metric"] for r in rows} == {"gap_pct"}
    _, card = load_model(tmp_path / "m.pt")
    assert card.results["eval_metric"] == pytest.approx(min(float(r["eval_metric"]) for r in rows), abs=1e-3)

    res = subprocess.run(args + ["--resume", str(tmp_path / "m.ckpt")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and "no checkpoint file" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(args + ["--resume", str(tmp_path / "m.ckpt.zip")], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [int(r["steps"]) for r in rows][-2:] == [3072, 4096]  # continues where it stopped


def test_shipped_model_beats_the_best_rule_on_the_dev_set():
    """The model in the package, greedy, against non-delay MWKR (the best rule) on ta01-ta10."""
    assert shipped_model_path().is_file()
    learned = LearnedPolicy.load()
    gaps = {"learned": [], "mwkr": []}
    for name in DEV:
        bound = load_instance(name).upper_bound
        gaps["learned"].append(gap_pct(run_episode(JobShopEnv(name, schedule="active"), learned).makespan, bound))
        gaps["mwkr"].append(gap_pct(run_episode(JobShopEnv(name), make_rule("mwkr")).makespan, bound))
    assert np.mean(gaps["learned"]) <= np.mean(gaps["mwkr"]) - 3.0, gaps


@pytest.mark.parametrize("feature", ["slack", "waiting", "next_queue_work"])
def test_features_beyond_their_clip_do_not_change_the_scores(feature):
    """Past the range the network was trained on (FEATURE_CLIP), it sees the range's edge: a job far from
    its due date, or one that has waited for ages, scores as one at the edge; inside the range it differs."""
    from envs.spaces import FEATURE
    from policies.learned import FEATURE_CLIP

    policy = LearnedPolicy(CandidateNet(16))
    obs = random_observation(np.random.default_rng(5), 8, legal=8)
    far = {k: v.copy() for k, v in obs.items()}
    obs["candidates"][:, FEATURE[feature]] = FEATURE_CLIP[feature][1]
    far["candidates"][:, FEATURE[feature]] = 1e6
    np.testing.assert_array_equal(policy.scores(obs), policy.scores(far))
    far["candidates"][0, FEATURE[feature]] = 0.0
    assert policy.scores(far)[0, 0] != policy.scores(obs)[0, 0]


# ----------------------------------------------------------------------------------------- lines (due dates)
def test_total_tardiness_is_the_sum_over_the_jobs_of_their_lateness():
    """The training and benchmark metric against the line's own record of finished orders: once the
    dynamic job shop has emptied, total tardiness = sum of max(0, completion - due) over all jobs, which
    the KPIs report as mean tardiness x orders completed."""
    from envs.dispatch import DynamicJobShopEnv
    from policies.training import total_tardiness

    env = DynamicJobShopEnv(tightness=2.0)
    for seed, rule in ((0, "fifo"), (1, "atc")):
        kpis = run_episode(env, make_rule(rule), seed=seed).info["kpis"]
        total = total_tardiness(env, make_rule(rule), seed)  # the same episode again
        assert total == pytest.approx(env.line.tardiness_sum, rel=1e-9)
        assert total == pytest.approx(kpis["tardiness_mean"] * kpis["orders_completed"], rel=1e-6)
        assert total > 0  # at 90 % utilisation with tightness 2 some jobs are late


def test_each_tightness_counts_the_same_in_line_training(tmp_path):
    """Loose due dates leave less tardiness than tight ones, so PPO's rewards at tightness 3 are scaled up
    against those at 2 (by the teacher's tardiness ratio), and the validation score is % of the teacher's
    tardiness: the teacher itself scores exactly 100."""
    from rich.progress import Progress

    from policies.training import DYNAMIC_JOB_SHOP, TrainConfig, _line_task

    config = TrainConfig(out=tmp_path / "m.pt", env=DYNAMIC_JOB_SHOP, tightness=(2.0, 3.0), horizon=600,
                         eval_seeds=3)
    with Progress(disable=True) as progress:
        task = _line_task(config, progress)
    assert task.evaluate(make_rule(task.teacher)) == pytest.approx(100.0)
    tight, loose = task.evaluation["teacher_validation_tardiness_min"]
    assert tight > loose > 0
    scale = task.evaluation["reward_scale"]
    assert scale[1] > 1.0 > scale[0]
    assert [task.make_env(i).scale for i in range(2)] == pytest.approx(scale, rel=1e-4)


def test_paired_reward_is_the_teachers_tardiness_minus_the_agents_on_the_same_episode():
    """PPO's line reward: 0 until the end, then scale x (teacher's total - agent's) / time_scale on the same
    episode. Checked against separate runs of both rules from the root seed the wrapper draws; the teacher
    paired with itself earns exactly 0 (the same arrivals: common random numbers). The horizon (600 min)
    cuts the episode while jobs still arrive, and the paired episode ends terminated there: its reward is
    complete, so PPO must not bootstrap a continuation."""
    from envs.dispatch import DynamicJobShopEnv
    from policies.training import PairedWithTeacher, total_tardiness

    def paired() -> PairedWithTeacher:
        return PairedWithTeacher(DynamicJobShopEnv(2.0, horizon=600), DynamicJobShopEnv(2.0, horizon=600),
                                 make_rule("atc"), scale=1.5)

    root = int(np.random.default_rng(5).integers(2 ** 63))
    plain = DynamicJobShopEnv(2.0, horizon=600)
    atc, edd = (total_tardiness(plain, make_rule(name), root) for name in ("atc", "edd"))
    assert run_episode(plain, make_rule("edd"), seed=root).info["time"] == 600.0  # cut at the horizon
    assert edd != pytest.approx(atc)  # the rules differ on this episode, so the check below means something
    env = paired()
    observation, _ = env.reset(seed=5)
    rule, rewards, done = make_rule("edd"), [], False
    rule.reset(env.unwrapped)
    while not done:
        observation, reward, terminated, truncated, info = env.step(rule.predict(observation)[0])
        rewards.append(reward)
        done = terminated or truncated
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    assert terminated and not truncated
    assert info["teacher_tardiness"] == pytest.approx(atc, rel=1e-9)
    assert rewards[-1] == pytest.approx(1.5 * (atc - edd) / plain.time_scale, rel=1e-6)
    assert run_episode(paired(), make_rule("atc"), seed=5).total_reward == pytest.approx(0.0, abs=1e-9)


def test_twin_train_on_the_dynamic_job_shop_writes_model_log_checkpoint(tmp_path):
    twin = str(Path(sys.executable).with_name("twin"))
    args = [twin, "train", "--env", "yuetwin/DynamicJobShop-v0", "--out", str(tmp_path / "line.pt"), "--steps",
            "2048", "--imitate", "2", "--eval-every", "1024", "--eval-seeds", "2", "--horizon", "300"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "best validation tardiness_pct_of_teacher" in res.stdout
    rows = list(csv.DictReader((tmp_path / "line.csv").open()))
    assert [(r["phase"], int(r["steps"])) for r in rows] == [("imitation", 0), ("ppo", 1024), ("ppo", 2048)]
    assert {r["metric"] for r in rows} == {"tardiness_pct_of_teacher"}
    assert (tmp_path / "line.ckpt.zip").is_file()
    _, card = load_model(tmp_path / "line.pt")
    assert card.results["env"] == "yuetwin/DynamicJobShop-v0" and card.results["eval_seeds"] == [10_000, 10_001]
    trial = card.results["teacher_trial_tardiness_min"]
    assert card.results["teacher"] == min(trial, key=trial.get)  # the rule with the lowest training tardiness
    assert card.results["eval_metric"] == pytest.approx(min(float(r["eval_metric"]) for r in rows), abs=1e-3)


def test_dagger_episodes_follow_the_actor_and_record_the_experts_choices():
    """In DAgger's second round the network so far acts and the expert labels: the recorded observations are
    exactly those of the actor's own episode, the labels the choices a fresh expert makes there."""
    from envs.dispatch import DynamicJobShopEnv
    from policies.lookahead import Lookahead
    from policies.training import _record

    env = DynamicJobShopEnv(2.0, horizon=300)
    observations, labels = [], []
    _record(env, Lookahead(make_rule("atc")), 3, observations, labels, actor=make_rule("fifo"))
    fifo, expert = make_rule("fifo"), Lookahead(make_rule("atc"))
    observation, _ = env.reset(seed=3)
    expert.reset(env)
    fifo_actions, done = [], False
    for recorded, label in zip(observations, labels):
        np.testing.assert_array_equal(recorded["candidates"], observation["candidates"])
        assert label == int(expert.predict(observation)[0])
        fifo_actions.append(int(fifo.predict(observation)[0]))
        observation, _, terminated, truncated, _ = env.step(fifo_actions[-1])
        done = terminated or truncated
    assert done and labels != fifo_actions  # the expert would have chosen otherwise somewhere


def test_twin_train_imitates_the_lookahead_in_two_dagger_rounds_with_an_ensemble(tmp_path):
    twin = str(Path(sys.executable).with_name("twin"))
    args = [twin, "train", "--env", "yuetwin/DynamicJobShop-v0", "--out", str(tmp_path / "line.pt"), "--steps", "0",
            "--imitate", "4", "--lookahead", "--eval-seeds", "2", "--horizon", "300", "--members", "2"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((tmp_path / "line.csv").open()))
    assert [(r["phase"], int(r["steps"])) for r in rows] == [("imitation", 0)]
    net, card = load_model(tmp_path / "line.pt")
    assert (card.results["teacher"], card.results["expert"]) == ("atc", "lookahead(atc)")
    assert "imitation of 4 episodes of lookahead(atc) (DAgger, 2 rounds)" in card.budget
    assert "an ensemble of 2 networks" in card.budget
    first, second = (m.state_dict() for m in net.members)  # each from its own initialisation
    assert not torch.equal(first["encode.0.weight"], second["encode.0.weight"])


def test_smt_line_leading_tier_uses_the_model_trained_on_its_own_line():
    """The SMT scenario's leading tier names the shipped ``smt_line`` model, whose card says it was trained
    on that scenario's line; the lever loads exactly that file."""
    from envs.dispatch import learned_decider
    from twin.config import load_scenario
    from twin.config.tiers import level_levers

    root = Path(__file__).resolve().parents[1]
    scheduling = level_levers(load_scenario(root / "scenarios" / "smt_line.yaml").scenario, "leading").scheduling
    assert (scheduling.method, scheduling.model) == ("learned_dispatch", "smt_line")
    net, card = load_model(shipped_model_path("smt_line"))
    assert card.results["env"] == "yuetwin/Dispatch-v0" and "scenarios/smt_line.yaml" in card.training_command
    for a, b in zip(learned_decider("smt_line").policy.net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("extra, message", [
    (["--env", "yuetwin/DynamicJobShop-v0", "--sizes", "6x6"], "--sizes: applies to yuetwin/JobShop-v0 only"),
    (["--env", "yuetwin/Dispatch-v0"], "--scenario: yuetwin/Dispatch-v0 trains on a scenario's line"),
    (["--env", "yuetwin/DynamicJobShop-v0", "--tightness", "2,-1"], "--tightness: '-1' is not a positive number"),
    (["--tightness", "2"], "--tightness: applies to line envs"),
    (["--env", "yuetwin/DynamicJobshop-v0"], "Did you mean 'yuetwin/DynamicJobShop-v0'"),
    (["--lookahead"], "--lookahead: applies to yuetwin/DynamicJobShop-v0 only"),
    (["--members", "2"], "--members 2: an ensemble is fitted by imitation only"),
])
def test_twin_train_rejects_options_that_do_not_fit_the_env(tmp_path, extra, message):
    from typer.testing import CliRunner

    from twin.cli import app

    res = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "m.pt"), *extra])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output
    assert message in " ".join(res.output.split()), res.output
    assert not (tmp_path / "m.pt").exists()


def test_shipped_line_model_beats_fifo_on_due_dates_and_is_the_lever_default():
    """The line model (trained on tardiness) against FIFO, an independent weak baseline, on fixed test
    seeds of the dynamic job shop; ``learned_dispatch`` without ``model:`` uses it."""
    from envs.dispatch import DynamicJobShopEnv, learned_decider
    from policies.training import mean_tardiness

    line_model = LearnedPolicy.load(kind="line")
    env = DynamicJobShopEnv(tightness=2.0)
    seeds = range(5)
    assert mean_tardiness(env, line_model, seeds) < mean_tardiness(env, make_rule("fifo"), seeds)

    lever_net = learned_decider(None).policy.net
    for a, b in zip(lever_net.state_dict().values(), line_model.net.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="did you mean 'line'"):
        shipped_model_path("lines")


def test_the_generic_line_model_on_a_line_it_was_not_trained_on_warns(capsys):
    """The generic line model knows only the dynamic job shop (on the example lines it leaves orders later
    than FIFO): a leading tier that would use it elsewhere is loaded with a warning naming the way out (a
    model trained on the line); its own shop, and a line that names its own model, load without one."""
    from twin.cli import _load

    root = Path(__file__).resolve().parents[1] / "scenarios"
    _load(root / "machining_job_shop.yaml", [], ("basic", "leading"))
    warning = " ".join(capsys.readouterr().err.split())
    assert warning.startswith("warning:") and "generic line model" in warning
    assert f"--scenario {root / 'machining_job_shop.yaml'} --out MODEL.pt" in warning
    _load(root / "machining_job_shop.yaml", [], ("basic", "excellent"))  # no learned dispatcher
    _load(root / "dynamic_job_shop.yaml", [], ("leading",))
    _load(root / "smt_line.yaml", [], ("leading",))  # names the smt_line model, trained on its own line
    assert capsys.readouterr().err == ""
