"""Consultant diagnostics: scoring arithmetic against hand-computed cases, tier rules, gap-to-lever
mapping, profile errors, the roadmap simulation (a week, 2 replications) and the report (HTML and PDF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from twin.cli import app
from twin.config.enterprise import EnterpriseProfile
from twin.config.loader import ScenarioError
from twin.diagnose.assessment import assess, blocker_text, load_bank
from twin.diagnose.profile import load_profile
from twin.diagnose.report import build_blocks, to_html, to_pdf
from twin.diagnose.roadmap import COMBINED, simulate_roadmap

ROOT = Path(__file__).resolve().parents[1]
FOSHAN = ROOT / "scenarios" / "enterprises" / "foshan_appliance.yaml"
DONGGUAN = ROOT / "scenarios" / "enterprises" / "dongguan_ems.yaml"
WEEK = ["run.warmup=1440", "run.length=10080"]

TINY_BANK = {
    "to_check": "test bank",
    "threshold": 0.8,
    "bands": [{"level": 1, "min": 0.8, "max": 1.8}, {"level": 2, "min": 1.8, "max": 2.8},
              {"level": 3, "min": 2.8, "max": 3.8}, {"level": 4, "min": 3.8, "max": 4.8},
              {"level": 5, "min": 4.8, "max": 5.0}],
    "domains": [{"id": "A", "zh": "甲", "en": "A", "weight": 0.25}, {"id": "B", "zh": "乙", "en": "B", "weight": 0.75}],
    "subdomains": [
        {"id": "a1", "element": {"zh": "人员", "en": "People"}, "zh": "a1", "en": "a1", "domain": "A",
         "requirements": [{"id": "a1.1", "level": 1, "zh": "x", "en": "x"},
                          {"id": "a1.2", "level": 2, "zh": "x", "en": "x", "lever": "scheduling", "tier": "advanced"}]},
        {"id": "b1", "element": {"zh": "制造", "en": "Mfg"}, "zh": "b1", "en": "b1", "domain": "B",
         "requirements": [{"id": "b1.1", "level": 1, "zh": "x", "en": "x"},
                          {"id": "b1.2", "level": 2, "zh": "x", "en": "x", "evidence": {"system": "MES"}},
                          {"id": "b1.3", "level": 3, "zh": "x", "en": "x", "lever": "maintenance", "tier": "excellent"}]},
        {"id": "b2", "element": {"zh": "制造", "en": "Mfg"}, "zh": "b2", "en": "b2", "domain": "B",
         "requirements": [{"id": "b2.1", "level": 1, "zh": "x", "en": "x",
                           "evidence": {"rate": "equipment_networked_rate", "min": 0.8}}]},
    ],
    "tiers": [{"name": "basic", "min_level": 2, "systems": ["MES"]},
              {"name": "advanced", "min_level": 2, "systems": ["MES", "ERP"]},
              {"name": "excellent", "min_level": 3}, {"name": "leading", "min_level": 4}],
    "calibration_tolerance": 0.2,
}


@pytest.fixture(scope="module")
def tiny_bank(tmp_path_factory):
    path = tmp_path_factory.mktemp("bank") / "bank.yaml"
    path.write_text(yaml.safe_dump(TINY_BANK, allow_unicode=True), encoding="utf-8")
    return load_bank(path)


def _profile(networked: float, **extra) -> EnterpriseProfile:
    return EnterpriseProfile(name="Test Co", industry="家电", employees=10, products=["fan"],
                             lines=[{"name": "l1", "scenario": "x.yaml"}], systems=["MES"],
                             equipment_digitised_rate=0.5, equipment_networked_rate=networked,
                             answers={"a1.1": 1, "a1.2": 0.8, "b1.1": 0.8, "b1.3": 0.5}, **extra)


def test_scoring_matches_hand_computation_below_level_one(tiny_bank):
    # b2.1: networked 0.5 >= 0.8 / 2 -> 0.5. s1 = 0.25 * 1 + 0.75 * mean(0.8, 0.5) = 0.7375 < 0.8.
    result = assess(_profile(0.5), tiny_bank)
    assert result.level_scores[1] == pytest.approx(0.7375)
    assert result.levels_reached == 0
    assert result.score == pytest.approx(0.7375)  # S = s1 only: level 1 was not reached
    assert result.level == 0
    assert result.tier is None and result.next_tier == "basic"
    assert [blocker_text(b, "en") for b in result.blockers] == ["maturity level 0 < 2 needed"]
    assert [blocker_text(b, "zh") for b in result.blockers] == ["成熟度等级 0 低于所需的 2"]


def test_scoring_matches_hand_computation_level_two(tiny_bank):
    # b2.1 = 1: s1 = 0.25 + 0.75 * 0.9 = 0.925; s2 = 0.25 * 0.8 + 0.75 * 1 (MES in place) = 0.95;
    # s3 = 0.5 (only domain B has level-3 requirements: weights renormalised); S = 0.925 + 0.95 + 0.5.
    result = assess(_profile(0.8), tiny_bank)
    assert result.level_scores == pytest.approx({1: 0.925, 2: 0.95, 3: 0.5, 4: 0.0, 5: 0.0})
    assert result.levels_reached == 2
    assert result.score == pytest.approx(2.375)
    assert result.level == 2
    assert result.tier == "basic" and result.next_tier == "advanced"
    assert [blocker_text(b, "en") for b in result.blockers] == ["no ERP in place"]
    assert result.subdomain_scores == pytest.approx({"a1": 0.9, "b1": (0.8 + 1 + 0.5) / 3, "b2": 1.0})


def test_answers_override_evidence_and_unanswered_scores_zero(tiny_bank):
    profile = _profile(0.8).model_copy(update={"answers": {"b1.2": 0.5}})
    scored = {s.requirement.id: (s.score, s.source) for s in assess(profile, tiny_bank).scored}
    assert scored["b1.2"] == (0.5, "answer")
    assert scored["b2.1"] == (1.0, "evidence")
    assert scored["a1.1"] == (0.0, "not_assessed")


def test_gaps_map_to_levers(tiny_bank):
    result = assess(_profile(0.8), tiny_bank)
    assert [g.requirement.id for g in result.gaps] == ["b1.3"]  # a1.2 scores 0.8: met
    assert [(c.lever, c.tier, c.requirements) for c in result.candidates] == [("maintenance", "excellent", ("b1.3",))]


def test_profile_lever_names_are_the_simulation_levers():
    from typing import get_args

    from twin.config.enterprise import LeverName
    from twin.config.levers import LEVER_NAMES

    assert set(get_args(LeverName)) == set(LEVER_NAMES)


def test_bundled_bank_weights_and_tiers():
    bank = load_bank()
    assert sum(d.weight for d in bank.domains) == pytest.approx(1.0)
    assert "check" in bank.to_check
    foshan = assess(load_profile(FOSHAN, bank).profile, bank)
    dongguan = assess(load_profile(DONGGUAN, bank).profile, bank)
    assert foshan.tier is None and foshan.next_tier == "basic"
    assert dongguan.tier == "advanced" and "no APS in place" in [blocker_text(b, "en") for b in dongguan.blockers]
    # no APS -> the scheduling lever at the tier whose preset is an optimised plan
    assert ("scheduling", "excellent") in [(c.lever, c.tier) for c in dongguan.candidates]


def test_profile_errors_name_file_line_field_and_fix(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: X\nindustry: 家用电器\nemployees: 5\nproducts: [a]\nindusty: 家电\n"
                   "lines:\n  - {name: l1, scenario: missing.yaml}\n"
                   "equipment_digitised_rate: 1.5\nequipment_networked_rate: 0.5\n"
                   "answers: {planing.2: 1}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_profile(bad, load_bank())
    text = str(info.value)
    assert f"{bad}:2: industry: got '家用电器'." in text and "Allowed:" in text
    assert f"{bad}:5: industy: unknown field 'industy'. Did you mean 'industry'?" in text
    assert f"{bad}:8: equipment_digitised_rate: got 1.5" in text
    bad.write_text("name: X\nindustry: 家电\nemployees: 5\nproducts: [a]\n"
                   "lines:\n  - {name: l1, scenario: missing.yaml}\n"
                   "equipment_digitised_rate: 1\nequipment_networked_rate: 0.5\n"
                   "answers: {planing.2: 1, planning.1: 0.7}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_profile(bad, load_bank())
    text = str(info.value)
    assert "got 0.7; a requirement is scored 1, 0.8, 0.5 or 0" in text
    bad.write_text(bad.read_text(encoding="utf-8").replace(", planning.1: 0.7", ""), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_profile(bad, load_bank())
    text = str(info.value)
    assert "no requirement 'planing.2' in the item bank. Did you mean 'planning.2'?" in text
    assert f"{bad}:6: lines[l1].scenario: scenario file 'missing.yaml' not found" in text
    result = CliRunner().invoke(app, ["diagnose", "assess", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.fixture(scope="module")
def foshan_roadmap():
    bank = load_bank()
    loaded = load_profile(FOSHAN, bank)
    assessment = assess(loaded.profile, bank)
    roadmap = simulate_roadmap(loaded, assessment, bank.calibration_tolerance, replications=2, seed=7, overrides=WEEK)
    return loaded, bank, assessment, roadmap


def test_roadmap_vouchers_ranking_and_calibration(foshan_roadmap):
    loaded, _, _, roadmap = foshan_roadmap
    options = {o["variant"]: o for o in roadmap.options()}
    # metering changes what is known, not how the line runs: not simulated
    assert "energy@advanced" in roadmap.not_represented and "energy@advanced" not in options
    # advanced preset: scheduling 600 000 CNY; the 算力券 of 200 000 offsets it
    assert options["scheduling@advanced"]["investment"] == pytest.approx(400_000)
    assert options["maintenance@advanced"]["investment"] == pytest.approx(100_000 - 50_000)
    assert options[COMBINED]["investment"] == pytest.approx(sum(o["investment"] for n, o in options.items() if n != COMBINED))
    paybacks = [o["payback_years"] for o in roadmap.by_payback()]
    finite = [p for p in paybacks if p is not None]
    assert finite == sorted(finite) and paybacks[: len(finite)] == finite
    gains = [o["throughput_gain"]["mean"] for o in roadmap.by_gain()]
    assert gains == sorted(gains, reverse=True)
    lead_times = [o["lead_time_change"]["mean"] for o in roadmap.by_gain("lead_time_change")]
    assert lead_times == sorted(lead_times)
    current = roadmap.current()
    reported = loaded.profile.lines[0].reported
    checks = {c["kpi"]: c for c in roadmap.calibration}
    simulated = current["throughput_per_hour"]["mean"]
    assert checks["output_per_hour"]["mismatch"] == pytest.approx(abs(simulated - reported.output_per_hour)
                                                                  / reported.output_per_hour)
    assert checks["defect_rate"]["simulated"] == pytest.approx(1 - current["first_pass_yield"]["mean"])
    assert all(c["flagged"] == (c["mismatch"] > 0.2) for c in roadmap.calibration)
    # physical limit: the good output cannot exceed what was released (no variant creates parts)
    for pair in roadmap.pairs.values():
        for reps in pair.replications.values():
            assert all(r.line["throughput_per_hour"] <= r.line["exit_rate_per_hour"] + 1e-9 for r in reps)


def test_report_html_and_pdf(foshan_roadmap, tmp_path):
    import pypdfium2 as pdfium

    loaded, bank, assessment, roadmap = foshan_roadmap
    page = to_html(build_blocks(loaded.profile, assessment, bank, roadmap, "en"), "en")
    assert "Foshan Example Appliances" in page and "scheduling@advanced" in page
    assert page.count("data:image/png;base64,") == 2  # radar and gain chart, inlined
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(to_pdf(build_blocks(loaded.profile, assessment, bank, roadmap, "zh")))
    document = pdfium.PdfDocument(str(pdf))
    try:
        text = "".join("".join(document[i].get_textpage().get_text_range().split()) for i in range(len(document)))
        assert "智能制造诊断报告" in text and "S=1.75" in text and "scheduling@advanced" in text
        pixels = np.asarray(document[0].render(scale=1).to_pil().convert("L"))
        assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # ink on the page, not blank
    finally:
        document.close()


def test_cli_report_rejects_bad_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["diagnose", "report", str(FOSHAN), "--out", str(tmp_path / "r.html"), "--lang", "de"])
    assert result.exit_code == 2 and "--lang: got 'de'" in result.output
    result = runner.invoke(app, ["diagnose", "report", str(FOSHAN), "--out", str(tmp_path / "r.docx")])
    assert result.exit_code == 2 and ".html or .pdf" in result.output
    result = runner.invoke(app, ["diagnose", "report", str(FOSHAN), "--out", str(tmp_path / "r.html"),
                                 "--hide", "revenu"])
    assert result.exit_code == 2 and "--hide: no part 'revenu'. Did you mean 'revenue'?" in result.output


def test_report_leaves_out_what_the_consultant_hides(tmp_path):
    bank = load_bank()
    profile = load_profile(FOSHAN, bank).profile
    assessment = assess(profile, bank)
    shown = to_html(build_blocks(profile, assessment, bank, None, "en"), "en")
    hidden = to_html(build_blocks(profile, assessment, bank, None, "en",
                                  frozenset({"revenue", "employees", "vouchers", "gaps"})), "en")
    for secret in ("<td>650</td>", "<td>820</td>", "compute voucher", "<td>planning.2</td>"):
        assert secret in shown and secret not in hidden


def test_init_questionnaire_resumes(tmp_path):
    profile = tmp_path / "new.yaml"
    runner = CliRunner()
    first = runner.invoke(app, ["diagnose", "init", str(profile)], input="Test Co\n家用电器\n家电\n佛山\n")
    assert first.exit_code != 0  # input ended: interrupted
    assert "Did you mean" in first.output or "unknown industry" in first.output
    saved = yaml.safe_load(profile.read_text(encoding="utf-8"))
    assert saved == {"name": "Test Co", "industry": "家电", "city": "佛山"}
    questions = sum(1 for s in load_bank().subdomains for r in s.requirements if r.evidence is None)
    rest = ["120", "fan, heater", "l1", str(ROOT / "scenarios" / "tiny.yaml"), "ERP, MES", "0.7", "1.2", "0.6"]
    second = runner.invoke(app, ["diagnose", "init", str(profile)], input="\n".join(rest + ["1"] * questions) + "\n")
    assert second.exit_code == 0, second.output
    assert "give a fraction from 0 to 1" in second.output  # 1.2 was refused and asked again
    done = load_profile(profile, load_bank()).profile
    assert done.employees == 120 and done.equipment_networked_rate == 0.6 and len(done.answers) == questions


def test_store_keeps_lists_exports_and_deletes_per_enterprise(tmp_path):
    import json

    store = tmp_path / "s.duckdb"
    runner = CliRunner()
    for profile in (FOSHAN, DONGGUAN):
        result = runner.invoke(app, ["diagnose", "assess", str(profile), "--store", str(store)])
        assert result.exit_code == 0, result.output
    report = tmp_path / "r.html"
    result = runner.invoke(app, ["diagnose", "report", str(FOSHAN), "--out", str(report), "--no-simulate",
                                 "--lang", "en", "--store", str(store)])
    assert result.exit_code == 0, result.output
    foshan = load_profile(FOSHAN, load_bank()).profile.name
    dongguan = load_profile(DONGGUAN, load_bank()).profile.name
    export = tmp_path / "foshan.json"
    assert runner.invoke(app, ["diagnose", "export", foshan, "--out", str(export), "--store", str(store)]).exit_code == 0
    records = json.loads(export.read_text(encoding="utf-8"))["records"]
    assert [r["kind"] for r in records] == ["profile", "assessment", "profile", "assessment", "report"]
    assert {r["enterprise"] for r in records} == {foshan}  # nothing of the other enterprise
    assert records[0]["data"] == FOSHAN.read_text(encoding="utf-8")
    result = runner.invoke(app, ["diagnose", "delete", foshan, "--yes", "--store", str(store)])
    assert result.exit_code == 0 and "deleted 5 records" in result.output
    from twin.store import ResultStore

    assert [e["enterprise"] for e in ResultStore(store).enterprises()] == [dongguan]
    result = runner.invoke(app, ["diagnose", "export", foshan[:6], "--out", str(export), "--store", str(store)])
    assert result.exit_code == 2 and "no enterprise" in result.output


def test_dashboard_page_shows_the_kept_assessment_and_roadmap(foshan_roadmap, tmp_path):
    import json

    from dashboards import harness
    from dashboards.app import create_app
    from twin.store import ResultStore

    if harness.browser_missing():
        pytest.skip(f"headless browser tests: {harness.browser_missing()}")
    from selenium.webdriver.common.by import By

    loaded, _, assessment, roadmap = foshan_roadmap
    store = tmp_path / "s.duckdb"
    db = ResultStore(store)
    name = loaded.profile.name
    db.add_enterprise_record(name, "assessment", json.dumps(assessment.to_json(), ensure_ascii=False))
    db.add_enterprise_record(name, "roadmap", json.dumps(roadmap.to_json(), ensure_ascii=False))
    with harness.serve(create_app(store)) as url, harness.chromium() as driver:
        harness.open_page(driver, f"{url}/enterprise", "#enterprise-roadmap")
        score = driver.find_element(By.ID, "enterprise-score").text
        assert f"S = {assessment.score:.2f}" in score and "maturity level 1" in score
        rows = [tr.get_attribute("data-key") for tr in
                driver.find_elements(By.CSS_SELECTOR, "#enterprise-roadmap tbody tr")]
        assert rows == [o["variant"] for o in roadmap.by_payback()]
        assert driver.find_elements(By.CSS_SELECTOR, "#enterprise-radar .main-svg")
