"""Maturity assessment: the item bank (``bank.yaml``, data), the scoring arithmetic, the MIIT tier an
enterprise may apply for, and the gaps that a simulation lever represents (the candidate upgrades).

Arithmetic (GB/T 39117 as commonly described; every number is data in the bank):

* a requirement scores 1 / 0.8 / 0.5 / 0 (the consultant's answer, else its evidence in the profile);
* at level L, a sub-domain scores the mean of its level-L requirements, a domain the mean of its
  sub-domains, and the level ``s_L`` the domain scores weighted by domain (weights renormalised over the
  domains with requirements at L);
* level L is reached when ``s_1 .. s_L`` are all >= the threshold (0.8): reached levels accumulate;
* the overall score ``S = s_1 + ... + s_k + s_(k+1)`` with k the highest level reached (``s_6 = 0``),
  and the maturity level is the band of S (0 below the first band).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.config.enterprise import EnterpriseProfile, LeverName, System
from twin.config.loader import ScenarioError, read_yaml, validation_problems
from twin.config.tiers import TIERS

BANK_PATH = Path(__file__).with_name("bank.yaml")
LEVELS = (1, 2, 3, 4, 5)
Rate = Literal["equipment_digitised_rate", "equipment_networked_rate"]
TierName = Literal["basic", "advanced", "excellent", "leading"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    zh: str
    en: str


class Evidence(_Model):
    """How the profile scores a requirement the consultant did not answer."""

    system: Optional[System] = None
    rate: Optional[Rate] = None
    min: float = Field(1.0, gt=0, le=1, description="Rate (fraction) that fully meets the requirement.")


class Requirement(_Model):
    id: str
    level: int = Field(ge=1, le=5)
    zh: str
    en: str
    evidence: Optional[Evidence] = None
    lever: Optional[LeverName] = None
    tier: Optional[TierName] = Field(None, description="Tier preset whose value of ``lever`` meets it.")

    @model_validator(mode="after")
    def _lever_needs_tier(self) -> "Requirement":
        if (self.lever is None) != (self.tier is None):
            raise ValueError(f"requirement {self.id}: give both lever and tier, or neither")
        return self


class SubDomain(_Model):
    id: str
    element: Text
    zh: str
    en: str
    domain: str
    requirements: list[Requirement] = Field(min_length=1)


class Domain(_Model):
    id: str
    zh: str
    en: str
    weight: float = Field(gt=0, le=1)


class Band(_Model):
    level: int = Field(ge=1, le=5)
    min: float
    max: float


class TierRule(_Model):
    name: TierName
    min_level: int = Field(ge=0, le=5)
    systems: list[System] = Field(default_factory=list)
    min_rates: dict[Rate, float] = Field(default_factory=dict)
    requirements: list[str] = Field(default_factory=list)


class ItemBank(_Model):
    to_check: str
    threshold: float = Field(gt=0, le=1)
    bands: list[Band]
    domains: list[Domain]
    subdomains: list[SubDomain]
    tiers: list[TierRule]
    calibration_tolerance: float = Field(gt=0, description="Relative mismatch (fraction) that is flagged.")

    @model_validator(mode="after")
    def _references(self) -> "ItemBank":
        domains = {d.id for d in self.domains}
        bad = [f"{s.id}.domain '{s.domain}'" for s in self.subdomains if s.domain not in domains]
        ids = [r.id for s in self.subdomains for r in s.requirements]
        bad += [f"requirement id '{i}' used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
        bad += [f"tiers[{t.name}].requirements '{r}'" for t in self.tiers for r in t.requirements if r not in ids]
        if [t.name for t in self.tiers] != list(TIERS):
            bad.append(f"tiers must be {', '.join(TIERS)} in that order")
        if bad:
            raise ValueError("unknown or duplicate: " + "; ".join(bad))
        return self

    def requirement_ids(self) -> list[str]:
        return [r.id for s in self.subdomains for r in s.requirements]


def load_bank(path: Path = BANK_PATH) -> ItemBank:
    """The item bank at ``path`` (default: the bundled ``bank.yaml``). Raises :class:`ScenarioError`."""
    data, lines = read_yaml(path)
    try:
        return ItemBank.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc, data, lines, str(path), root=ItemBank)) from None


@dataclass(frozen=True)
class ScoredRequirement:
    """One requirement's score and where it came from (``answer``, ``evidence`` or ``not_assessed``)."""

    requirement: Requirement
    subdomain: SubDomain
    score: float
    source: str


@dataclass(frozen=True)
class Candidate:
    """An upgrade to simulate: ``lever`` set as in tier preset ``tier``, because of ``requirements``."""

    lever: str
    tier: str
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Assessment:
    """The result of :func:`assess` (scores are fractions 0-1, S is 0-5)."""

    scored: list[ScoredRequirement]
    level_scores: dict[int, float]
    levels_reached: int
    score: float
    level: int
    subdomain_scores: dict[str, float]
    tier: Optional[str]
    next_tier: Optional[str]
    blockers: list[dict[str, Any]]
    """What blocks the next tier: see :func:`blocker_text`."""
    gaps: list[ScoredRequirement]
    candidates: list[Candidate]

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score, "level": self.level, "levels_reached": self.levels_reached,
            "level_scores": {str(k): v for k, v in self.level_scores.items()},
            "subdomain_scores": self.subdomain_scores, "tier": self.tier, "next_tier": self.next_tier,
            "blockers": self.blockers,
            "requirements": [{"id": s.requirement.id, "level": s.requirement.level, "subdomain": s.subdomain.id,
                              "score": s.score, "source": s.source} for s in self.scored],
            "gaps": [s.requirement.id for s in self.gaps],
            "candidates": [{"lever": c.lever, "tier": c.tier, "requirements": list(c.requirements)}
                           for c in self.candidates],
        }


def score_requirement(requirement: Requirement, profile: EnterpriseProfile) -> tuple[float, str]:
    """A requirement's score (1, 0.8, 0.5 or 0) and its source: the answer, else the evidence."""
    if requirement.id in profile.answers:
        return profile.answers[requirement.id], "answer"
    evidence = requirement.evidence
    if evidence is None:
        return 0.0, "not_assessed"
    if evidence.system is not None:
        return (1.0 if evidence.system in profile.systems else 0.0), "evidence"
    rate = getattr(profile, evidence.rate) if evidence.rate else 0.0
    return (1.0 if rate >= evidence.min else 0.5 if rate >= evidence.min / 2 else 0.0), "evidence"


def level_score(bank: ItemBank, scores: dict[str, float], level: int) -> Optional[float]:
    """``s_L``: the domain-weighted score of the level-``level`` requirements (None if it has none)."""
    by_domain: dict[str, list[float]] = {}
    for sub in bank.subdomains:
        at_level = [scores[r.id] for r in sub.requirements if r.level == level]
        if at_level:
            by_domain.setdefault(sub.domain, []).append(mean(at_level))
    weights = {d.id: d.weight for d in bank.domains if d.id in by_domain}
    if not weights:
        return None
    return sum(weights[d] * mean(values) for d, values in by_domain.items()) / sum(weights.values())


def overall(bank: ItemBank, level_scores: dict[int, float]) -> tuple[int, float, int]:
    """(levels reached, overall score S, maturity level from the bands) from the level scores."""
    reached = 0
    for level in LEVELS:
        if level_scores[level] >= bank.threshold:
            reached = level
        else:
            break
    score = sum(level_scores[level] for level in LEVELS[: reached + 1])
    band = next((b.level for b in bank.bands if b.min <= score < b.max or (b.level == 5 and score >= b.min)), 0)
    return reached, score, band


BLOCKER_TEXT = {
    "level": {"en": "maturity level {have:g} < {need:g} needed", "zh": "成熟度等级 {have:g} 低于所需的 {need:g}"},
    "system": {"en": "no {subject} in place", "zh": "尚未部署 {subject}"},
    "rate": {"en": "{subject} {have:.0%} < {need:.0%}", "zh": "{subject} 为 {have:.0%}，低于 {need:.0%}"},
    "requirement": {"en": "requirement {subject} scores {have:g} < {need:g}",
                    "zh": "要求 {subject} 得分 {have:g}，低于 {need:g}"},
}
"""What blocks a tier, per kind of condition, in English and Chinese."""


def blocker_text(blocker: dict[str, Any], lang: str) -> str:
    """A blocker (``kind``, ``subject``, ``have``, ``need``) as a sentence in ``lang`` (zh or en)."""
    return BLOCKER_TEXT[blocker["kind"]][lang].format(**blocker)


def _tier_blockers(rule: TierRule, profile: EnterpriseProfile, level: int, scores: dict[str, float],
                   threshold: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if level < rule.min_level:
        out.append({"kind": "level", "subject": "level", "have": level, "need": rule.min_level})
    out += [{"kind": "system", "subject": s, "have": 0, "need": 1} for s in rule.systems if s not in profile.systems]
    out += [{"kind": "rate", "subject": rate, "have": getattr(profile, rate), "need": need}
            for rate, need in rule.min_rates.items() if getattr(profile, rate) < need]
    out += [{"kind": "requirement", "subject": r, "have": scores[r], "need": threshold}
            for r in rule.requirements if scores[r] < threshold]
    return out


def assess(profile: EnterpriseProfile, bank: ItemBank) -> Assessment:
    """Score ``profile`` against ``bank``: levels, S, tier, blockers of the next tier, gaps and candidates."""
    scored = [ScoredRequirement(r, sub, *score_requirement(r, profile)) for sub in bank.subdomains
              for r in sub.requirements]
    scores = {s.requirement.id: s.score for s in scored}
    level_scores = {level: level_score(bank, scores, level) or 0.0 for level in LEVELS}
    reached, score, level = overall(bank, level_scores)
    tier, next_tier, blockers = None, None, []
    for rule in bank.tiers:
        problems = _tier_blockers(rule, profile, level, scores, bank.threshold)
        if problems:
            next_tier, blockers = rule.name, problems
            break
        tier = rule.name
    gaps = [s for s in scored if s.score < bank.threshold]
    first_gap: dict[str, ScoredRequirement] = {}
    for gap in sorted(gaps, key=lambda s: s.requirement.level):
        if gap.requirement.lever is not None:
            first_gap.setdefault(gap.requirement.lever, gap)
    candidates = [Candidate(lever, gap.requirement.tier or "",
                            tuple(g.requirement.id for g in gaps if g.requirement.lever == lever
                                  and g.requirement.tier == gap.requirement.tier))
                  for lever, gap in first_gap.items()]
    subdomain_scores = {sub.id: mean(scores[r.id] for r in sub.requirements) for sub in bank.subdomains}
    return Assessment(scored, level_scores, reached, score, level, subdomain_scores, tier, next_tier, blockers,
                      gaps, candidates)


__all__ = ["Assessment", "Candidate", "ItemBank", "blocker_text", "assess", "level_score", "load_bank", "overall",
           "score_requirement"]
