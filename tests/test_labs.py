"""The training labs: `twin lab list|start|check|solution|gather`, every lab's checker against hand-known
truth, and every lab's notebook and solution executed so the labs never rot."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

from twin.cli import app
from twin.labs import LAB_NUMBERS, get_lab, start_lab, starter_files, write_solution

runner = CliRunner()


def twin(*args: str) -> tuple[int, str]:
    """Run ``twin ARGS`` in-process: exit code and stdout + stderr."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _set_answer(folder: Path, bottleneck: str, utilization: float) -> None:
    (folder / "answer.yaml").write_text(f"bottleneck: {bottleneck}\nbottleneck_utilization: {utilization}\n",
                                        encoding="utf-8")


# ------------------------------------------------------------------------------------------ framework
def test_list_gives_one_lab_a_line_starting_with_its_number_in_both_languages():
    for lang in ("en", "zh"):
        code, output = twin("lab", "list", "--lang", lang)
        assert code == 0
        lines = output.strip().splitlines()
        assert [int(line.split()[0]) for line in lines] == list(LAB_NUMBERS)
    assert "找出产线瓶颈" in output and "分钟" in output


@pytest.mark.parametrize("args, needle", [
    (("lab", "list", "--lang", "fr"), "--lang 'fr': use one of en, zh"),
    (("lab", "check", "99", "."), "lab 99: no such lab"),
    (("lab", "check", "1", "no/such/folder"), "twin lab start 1 no/such/folder"),
    (("lab", "gather", "no/such/folder"), "no/such/folder: no such folder"),
    (("lab", "check", "1", ".", "--result", "out.txt"), "--result out.txt: use a file name ending in .json"),
])
def test_bad_input_exits_2_naming_the_field_and_the_fix(args, needle):
    code, output = twin(*args)
    assert code == 2
    assert needle in output and "Traceback" not in output


def test_start_copies_instructions_starter_and_notebook_and_never_overwrites(tmp_path):
    folder = tmp_path / "alice"
    code, output = twin("lab", "start", "1", str(folder), "--lang", "zh")
    assert code == 0 and "twin lab check 1" in output
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["answer.yaml", "instructions.en.md", "instructions.zh.md", "lab1.ipynb", "line.yaml"]
    assert not (folder / "solution").exists() and not (folder / "__init__.py").exists()
    (folder / "answer.yaml").write_text("bottleneck: cut\n", encoding="utf-8")
    code, output = twin("lab", "start", "1", str(folder))
    assert code == 2 and "--force" in output
    assert (folder / "answer.yaml").read_text(encoding="utf-8") == "bottleneck: cut\n"


def test_every_lab_ships_bilingual_instructions_with_measured_times_and_a_solution():
    for number in LAB_NUMBERS:
        lab = get_lab(number)
        names = {p.name for p in starter_files(number)}
        assert {"instructions.en.md", "instructions.zh.md", f"lab{number}.ipynb"} <= names
        en = (lab.folder / "instructions.en.md").read_text(encoding="utf-8")
        zh = (lab.folder / "instructions.zh.md").read_text(encoding="utf-8")
        assert f"{lab.minutes} minutes" in en and f"{lab.minutes} 分钟" in zh
        assert "measured" in en and "实测" in zh
        assert re.search(r"[\u4e00-\u9fff]", zh) and f"twin lab check {number}" in en + zh
        assert (lab.folder / "solution").is_dir()


# ------------------------------------------------------------------------------------------ class mode
def test_class_mode_check_writes_results_and_gather_builds_the_table_and_csv(tmp_path):
    results = tmp_path / "results"
    write_solution(1, tmp_path / "wang")
    start_lab(1, tmp_path / "li")
    code, output = twin("lab", "check", "1", str(tmp_path / "wang"), "--student", "王小明",
                        "--result", str(results / "wang.json"))
    assert code == 0 and "3 of 3 items right" in output
    code, output = twin("lab", "check", "1", str(tmp_path / "li"), "--result", str(results / "li.json"),
                        "--lang", "zh")
    assert code == 1 and "✗" in output and "提示" in output
    (results / "notes.json").write_text('{"not": "a result"}', encoding="utf-8")
    (results / "broken.json").write_text("{", encoding="utf-8")
    code, output = twin("lab", "gather", str(results), "--csv", str(tmp_path / "class.csv"))
    assert code == 0 and "broken.json" in output and "王小明" in output
    with (tmp_path / "class.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["student"], r["lab"], r["passed"]) for r in rows] == [("li", "1", "False"), ("王小明", "1", "True")]
    assert rows[0]["failed_items"] == "line bottleneck utilization" and float(rows[1]["score"]) == 1.0
    data = json.loads((results / "li.json").read_text(encoding="utf-8"))
    assert data["passed"] is False and all(re.search(r"[\u4e00-\u9fff]", i["message"]) for i in data["items"])
    code, output = twin("lab", "gather", str(tmp_path / "wang"))
    assert code == 2 and "no result files" in output


# ------------------------------------------------------------------------------------------ lab 1
# paint: 1/5 per min x 4.4 min / 1 server = 0.88 > weld: 1/5 x 7.0 / 2 = 0.70 > cut 0.60 > pack 0.50.
@pytest.mark.parametrize("bottleneck, utilization, verdict", [
    ("paint", 0.88, {"line": True, "bottleneck": True, "utilization": True}),
    ("weld", 0.88, {"line": True, "bottleneck": False, "utilization": True}),
    ("paint", 0.70, {"line": True, "bottleneck": True, "utilization": False}),
    ("pint", 1.4, {"line": True, "bottleneck": False, "utilization": False}),
])
def test_lab1_checker_accepts_the_hand_computed_bottleneck_only(tmp_path, bottleneck, utilization, verdict):
    write_solution(1, tmp_path)
    _set_answer(tmp_path, bottleneck, utilization)
    report = get_lab(1).check(tmp_path)
    assert {f.name: f.ok for f in report} == verdict
    for finding in report:
        assert finding.ok or (finding.hint and finding.hint["zh"] and finding.hint["en"])
    if bottleneck == "pint":
        assert "Did you mean 'paint'?" in report[1].message["en"]


def test_lab1_checker_names_what_differs_from_the_table(tmp_path):
    write_solution(1, tmp_path)
    line = (tmp_path / "line.yaml").read_text(encoding="utf-8")
    (tmp_path / "line.yaml").write_text(line.replace("servers: 2", "servers: 1"), encoding="utf-8")
    report = get_lab(1).check(tmp_path)
    assert not report[0].ok and "stations[weld].servers is 1, the table says 2" in report[0].message["en"]
    (tmp_path / "line.yaml").write_text(line.replace("time: 2.5", "time: banana"), encoding="utf-8")
    report = get_lab(1).check(tmp_path)
    assert [f.ok for f in report] == [False, False, False]
    assert "twin validate line.yaml" in report[0].hint["en"]


# ------------------------------------------------------------------------------------------ every lab
@pytest.mark.parametrize("number", LAB_NUMBERS)
def test_solution_passes_the_cli_check_and_the_notebook_runs_top_to_bottom(tmp_path, number):
    write_solution(number, tmp_path)
    code, output = twin("lab", "solution", str(number), str(tmp_path / "again"))
    assert code == 0 and (tmp_path / "again" / f"lab{number}.ipynb").is_file()
    code, output = twin("lab", "check", str(number), str(tmp_path))
    assert code == 0, output
    notebook = nbformat.read(tmp_path / f"lab{number}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "passed / 通过: True" in printed


# ------------------------------------------------------------------------------------------ lab 3
@pytest.mark.parametrize("rule, verdict", [
    ("atc", {"rule": True, "target": True, "reported": True}),
    ("mwkr", {"rule": True, "target": False, "reported": True}),
    ("atd", {"rule": False, "target": False, "reported": False}),
])
def test_lab3_checker_measures_the_rule_on_the_env_not_the_answer(tmp_path, rule, verdict):
    from envs.dispatch import DynamicJobShopEnv
    from policies.rules import make_rule
    from policies.training import mean_tardiness

    from twin.labs.lab3 import HELD_OUT_SEEDS, TARGET_TARDINESS

    write_solution(3, tmp_path)
    truth = mean_tardiness(DynamicJobShopEnv(), make_rule("atc" if rule == "atd" else rule), HELD_OUT_SEEDS)
    (tmp_path / "answer.yaml").write_text(f"rule: {rule}\nrule_tardiness: {truth:.1f}\n", encoding="utf-8")
    report = get_lab(3).check(tmp_path)
    assert {f.name: f.ok for f in report} == verdict
    if rule == "mwkr":  # most work remaining ignores due dates: far above the target
        assert truth > 2 * TARGET_TARDINESS and "edd, cr, atc" in report[1].hint["en"]
    if rule == "atd":
        assert "Did you mean 'atc'?" in report[0].message["en"]


# ------------------------------------------------------------------------------------------ lab 6
def _move_in_file(folder: Path, magazine: tuple[float, float], stack: tuple[float, float]) -> None:
    cell = (folder / "cell.yaml").read_text(encoding="utf-8")
    cell = cell.replace("center: [0.0, -0.55, 0.4]", f"center: [{magazine[0]}, {magazine[1]}, 0.4]")
    (folder / "cell.yaml").write_text(cell.replace("position: [0.0, -0.55, 0.91]",
                                                   f"position: [{stack[0]}, {stack[1]}, 0.91]"), encoding="utf-8")


# The magazine is 0.30 x 0.20 m; the bag table spans x 0.17-0.33, y -0.58 to -0.42; the unit x 0.40-0.70,
# y -0.25 to 0.55 (hand-computed from the half sizes): at (0.3, -0.35) the magazine reaches y -0.45, into
# the bag table; the pose moved alone leaves the magazine; (0, -0.35) folds the elbow past its 120° limit.
@pytest.mark.parametrize("magazine, stack, verdict, needle", [
    ((0.0, -0.55), (0.0, -0.55), {"layout": True, "reach": True, "cycle_time": False, "reported": False}, "too slow"),
    ((0.3, -0.35), (0.3, -0.35), {"layout": False, "reach": True, "cycle_time": False, "reported": False},
     "pad_magazine overlaps bag_table"),
    ((0.0, -0.55), (0.55, -0.35), {"layout": False, "reach": True, "cycle_time": False, "reported": False},
     "move both by the same amount"),
    ((0.0, -0.35), (0.0, -0.35), {"layout": True, "reach": False, "cycle_time": False, "reported": False},
     "lbr_iiwa_link_4"),
])
def test_lab6_checker_needs_an_allowed_reachable_layout_below_the_target(tmp_path, magazine, stack, verdict, needle):
    start_lab(6, tmp_path)
    _move_in_file(tmp_path, magazine, stack)
    report = get_lab(6).check(tmp_path)
    assert {f.name: f.ok for f in report} == verdict
    assert any(needle in f.message["en"] for f in report)
    assert all(f.ok or (f.hint["en"] and f.hint["zh"]) for f in report)


def test_lab6_solution_cycle_is_the_fresh_physics_and_beats_the_starter(tmp_path):
    from lines.robot_cell import cycle_time

    from twin.labs.lab6 import STARTER, STATION, TARGET_CYCLE_S
    from twin.robot_cli import robot_config_for

    write_solution(6, tmp_path)
    solved = cycle_time(robot_config_for(tmp_path / "cell.yaml", STATION), cache=None)
    starter = cycle_time(robot_config_for(STARTER, STATION), cache=None)
    assert solved.cycle_time_s < TARGET_CYCLE_S < starter.cycle_time_s
    reported = float((tmp_path / "answer.yaml").read_text(encoding="utf-8").split("cycle_time_s:")[1])
    assert reported == pytest.approx(solved.cycle_time_s, abs=0.05)
    # the cycle is its tasks plus the way home, each task its motion plus 0.3 s of vacuum build-up and 0.2 s
    # of venting (the gripper of cell.yaml)
    assert solved.cycle_time_s == pytest.approx(sum(t.cycle_time_s for t in solved.tasks) + solved.return_s)
    assert all(t.cycle_time_s == pytest.approx(t.motion_s + 0.5) for t in solved.tasks)


# ------------------------------------------------------------------------------------------ lab 2
def _set_buffers(folder: Path, insert: int, test: int, pack: int) -> None:
    lines = (folder / "line.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    budget = iter((insert, test, pack))
    (folder / "line.yaml").write_text("".join(f"    buffer: {next(budget)}           # BUDGET\n" if "# BUDGET" in line
                                              and "buffer:" in line else line for line in lines), encoding="utf-8")


def _engine_line(folder: Path) -> dict:
    from twin.config import load_scenario
    from twin.experiment import run_experiment

    return {k: v.mean for k, v in run_experiment(load_scenario(folder / "line.yaml").scenario).line().items()}


def test_lab2_littles_law_in_the_engine_and_the_unit_slip_fails(tmp_path):
    start_lab(2, tmp_path)
    _set_buffers(tmp_path, 1, 3, 2)
    truth = _engine_line(tmp_path)
    # physical limits: no more than the orders (60 / 1.3 per hour) nor the slowest station (60 / 1.25 per hour)
    assert truth["throughput_per_hour"] < 60 / 1.3 < 60 / 1.25
    by_hand = truth["throughput_per_hour"] / 60 * truth["lead_time_mean"]
    assert by_hand == pytest.approx(truth["wip_mean"], rel=0.01)  # Little's law holds in the engine
    for wip, verdict in ((by_hand, True), (by_hand * 60, False)):
        (tmp_path / "answer.yaml").write_text(f"throughput_per_hour: {truth['throughput_per_hour']:.1f}\n"
                                              f"lead_time_min: {truth['lead_time_mean']:.1f}\nwip: {wip:.2f}\n",
                                              encoding="utf-8")
        report = get_lab(2).check(tmp_path)
        assert {f.name: f.ok for f in report} == {"buffers": True, "throughput": True, "measured": True,
                                                  "littles_law": verdict}
    assert "/ 60" in report[3].hint["en"] and "/ 60" in report[3].hint["zh"]


@pytest.mark.parametrize("edit, needle", [
    (lambda folder: _set_buffers(folder, 3, 3, 1), "use 7 places; the budget is 6"),
    (lambda folder: _set_buffers(folder, 0, 0, 6), "too low"),
    (lambda folder: (folder / "line.yaml").write_text((folder / "line.yaml").read_text(encoding="utf-8")
                                                      .replace("mean: 1.25", "mean: 0.9"), encoding="utf-8"),
     "not products.motor.routing.2.time"),
])
def test_lab2_checker_refuses_over_budget_or_changed_lines_and_low_throughput(tmp_path, edit, needle):
    start_lab(2, tmp_path)
    edit(tmp_path)
    report = get_lab(2).check(tmp_path)
    assert not report[1].ok and any(needle in f.message["en"] for f in report)
    assert [f.name for f in report if not f.ok][-2:] == ["measured", "littles_law"]  # the TODOs


# ------------------------------------------------------------------------------------------ lab 5
def _train(folder: Path, imitate: int) -> None:
    code, output = twin("train", "--out", str(folder / "model.pt"), "--steps", "256", "--imitate", str(imitate),
                        "--sizes", "6x6,8x8", "--eval-every", "256")
    assert code == 0, output


def test_lab5_a_small_imitation_budget_beats_mwkr_by_a_hand_computed_gap(tmp_path):
    from envs.jobshop import JobShopEnv
    from policies.evaluate import run_episode
    from policies.learned import LearnedPolicy
    from policies.rules import make_rule

    from twin.labs.lab5 import HELD_OUT_SEEDS, HELD_OUT_SIZES, TARGET_GAP_PCT

    start_lab(5, tmp_path)
    _train(tmp_path, imitate=20)
    learned, mwkr = LearnedPolicy.load(tmp_path / "model.pt"), make_rule("mwkr")
    gaps = []
    for n_jobs, n_machines in HELD_OUT_SIZES:
        env = JobShopEnv(instance=None, n_jobs=n_jobs, n_machines=n_machines, schedule="active")
        for seed in HELD_OUT_SEEDS:
            ours, rule = run_episode(env, learned, seed=seed).makespan, run_episode(env, mwkr, seed=seed).makespan
            gaps.append(100 * (ours - rule) / rule)
    by_hand = sum(gaps) / len(gaps)
    assert by_hand <= TARGET_GAP_PCT
    (tmp_path / "answer.yaml").write_text(f"gap_vs_mwkr_pct: {by_hand + 1.0:.2f}\n", encoding="utf-8")
    assert [f.ok for f in get_lab(5).check(tmp_path)] == [True, True, False]
    (tmp_path / "answer.yaml").write_text(f"gap_vs_mwkr_pct: {by_hand:.2f}\n", encoding="utf-8")
    code, output = twin("lab", "check", "5", str(tmp_path))
    assert code == 0 and "3 of 3 items right" in output


def test_lab5_ppo_alone_on_a_tiny_budget_misses_and_a_checkpoint_is_no_model(tmp_path):
    start_lab(5, tmp_path)
    _train(tmp_path, imitate=0)
    report = get_lab(5).check(tmp_path)
    assert [f.ok for f in report] == [True, False, False]
    assert "--imitate" in report[1].hint["en"] and "--imitate" in report[1].hint["zh"]
    (tmp_path / "model.ckpt.zip").replace(tmp_path / "model.pt")
    report = get_lab(5).check(tmp_path)
    assert [f.ok for f in report] == [False, False, False] and "checkpoint" in report[0].message["en"]


# ------------------------------------------------------------------------------------------ lab 4
def test_lab4_lever_payback_is_the_hand_formula_and_wrong_or_misspelt_levers_fail(tmp_path):
    from twin.labs.lab4 import compare_tiers

    result = compare_tiers()
    lever_payback = lambda result, lever: result.lever_payback("basic->advanced", lever)  # noqa: E731
    shares = result.attribution["basic->advanced"]["kpis"]["throughput_per_hour"]["shares"]
    # by hand, with the advanced preset's costs (twin/tiers/advanced.yaml; basic costs nothing), 24/7 x 50
    # weeks and the line's margin of 120 CNY per valve
    hours, margin = 168 * 50, 120
    assert lever_payback(result, "maintenance") == pytest.approx(100_000 / (shares["maintenance"] * hours * margin
                                                                            - 120_000))
    assert lever_payback(result, "scheduling") == pytest.approx(600_000 / (shares["scheduling"] * hours * margin
                                                                          - 80_000))
    # the levers' throughput shares add up to the step's paired throughput change (Shapley efficiency)
    assert sum(shares.values()) == pytest.approx(result.attribution["basic->advanced"]["kpis"]
                                                 ["throughput_per_hour"]["total"])
    step = result.economics("advanced")["payback_years"]
    for lever, verdict, needle in (("scheduling", [True, False, False], "not the lever that pays back first"),
                                   ("maintenence", [True, False, False], "Did you mean 'maintenance'?")):
        (tmp_path / "answer.yaml").write_text(f"step_payback_years: {step:.2f}\nbest_lever: {lever}\n"
                                              f"best_lever_payback_years: {lever_payback(result, 'scheduling'):.2f}\n",
                                              encoding="utf-8")
        report = get_lab(4).check(tmp_path)
        assert [f.ok for f in report] == verdict and needle in report[1].message["en"]
        assert "168" in report[1].hint["en"] and "168" in report[1].hint["zh"]
