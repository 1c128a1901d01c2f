"""The learned dispatcher: a network that scores every candidate with the same weights, so one model acts on
any number of candidates (a 6 x 6 job shop, a 100 x 20 one, or a line's queue) without retraining.

``CandidateNet`` encodes each candidate's features (``envs.spaces.CANDIDATE_FEATURES``) with a shared MLP,
pools the encodings of the legal candidates (mean and max), and scores each candidate from its own
encoding, the pooled context and the line features. The logits of the action distribution are those
scores; the critic reads the pooled context only. ``CandidatePolicy`` puts it inside sb3-contrib's
MaskablePPO; ``LearnedPolicy`` runs it on its own behind the ``policies.base.Policy`` protocol. An
``Ensemble`` of several such networks, fitted to the same imitation data from different initialisations,
acts on the mean of their log-probabilities.

Model files (``save_model`` / ``load_model``) hold one network's weights (``state_dict``) or an ensemble's
(``members``, a list of them), and only tensors and plain values, read with
``torch.load(weights_only=True)``: loading a model never runs pickle. (Training checkpoints for
``--resume`` are SB3 zip files, which do; ``twin`` loads those only from a path the user names.)
"""

from __future__ import annotations

import difflib
import functools
import math
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from envs.spaces import FEATURE, N_CANDIDATE_FEATURES, N_LINE_FEATURES

MODEL_FORMAT = "yuetwin-dispatcher"
MODEL_VERSION = 1
FEATURE_CLIP: dict[str, tuple[float, float]] = {"slack": (-10.0, 10.0), "waiting": (-math.inf, 30.0),
                                                "next_queue_work": (-math.inf, 30.0)}
"""The network sees these candidate features (time_scale units) clipped to (low, high). Far from its due
date a job's exact slack does not matter; waiting and next-queue work reach about 30 units in the
training envs (the dynamic job shop at 90 % utilisation, Taillard 50 x 20), while a line of lots
counted in panels (``scenarios/smt_line.yaml``) reaches hundreds: past the range it was trained on, the
network sees the range's edge rather than extrapolating."""
SHIPPED_MODELS: dict[str, str] = {"job_shop": "models/dispatcher.pt", "line": "models/line_dispatcher.pt",
                                  "smt_line": "models/smt_line_dispatcher.pt"}
"""The models that ship in the package (``policies/models/``), each with its model card beside it, by kind:
``job_shop`` (makespan, static job shop: ``policies.lookup``'s ``learned``), ``line`` (tardiness, the
generic model of lines with due dates: the ``learned_dispatch`` scheduling lever's default) and
``smt_line`` (tardiness, trained on ``scenarios/smt_line.yaml``'s own line, which its leading tier names)."""


class ModelFileError(ValueError):
    """A policy file that is missing, corrupt, or not a YueTwin dispatcher model."""


class CandidateNet(nn.Module):
    """Scores of each candidate (logits, one per row) and a pooled context for the critic.

    ``hidden`` is the width of every layer."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.hidden = hidden
        self.encode = nn.Sequential(nn.Linear(N_CANDIDATE_FEATURES, hidden), nn.ReLU(),
                                    nn.Linear(hidden, hidden), nn.ReLU())
        self.score = nn.Sequential(nn.Linear(3 * hidden + N_LINE_FEATURES, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.context = nn.Sequential(nn.Linear(2 * hidden + N_LINE_FEATURES, hidden), nn.ReLU())
        low = torch.full((N_CANDIDATE_FEATURES,), -math.inf)
        high = torch.full((N_CANDIDATE_FEATURES,), math.inf)
        for name, (lowest, highest) in FEATURE_CLIP.items():
            low[FEATURE[name]], high[FEATURE[name]] = lowest, highest
        self.register_buffer("low", low, persistent=False)  # not in model files: a constant of the code
        self.register_buffer("high", high, persistent=False)

    def forward(self, candidates: torch.Tensor, mask: torch.Tensor,
                line: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``candidates`` (B, N, F), ``mask`` (B, N) 0/1, ``line`` (B, L) → scores (B, N) with -inf on
        illegal rows, context (B, hidden)."""
        legal = mask > 0.5
        weight = legal.unsqueeze(-1).float()
        candidates = torch.clamp(candidates, self.low, self.high)
        h = self.encode(candidates)
        mean = (h * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        peak = h.masked_fill(~legal.unsqueeze(-1), -1e9).amax(1)
        peak = torch.where(legal.any(1, keepdim=True), peak, torch.zeros_like(peak))
        pooled = torch.cat([mean, peak], dim=-1)
        n = candidates.shape[1]
        scores = self.score(torch.cat([h, pooled.unsqueeze(1).expand(-1, n, -1),
                                       line.unsqueeze(1).expand(-1, n, -1)], dim=-1)).squeeze(-1)
        scores = scores.masked_fill(~legal, -torch.inf)
        return scores, self.context(torch.cat([pooled, line], dim=-1))


class Ensemble(nn.Module):
    """Several ``CandidateNet`` of the same width, each fitted to the same data from its own initialisation
    (``policies.training``, ``--members``). Its scores are the mean of the members' log-probabilities over
    the legal candidates: where one member's choice is an accident of its initialisation, the others
    outvote it (averaging lowers the variance of the fit, not its bias)."""

    def __init__(self, members: list[CandidateNet]):
        super().__init__()
        if len({m.hidden for m in members}) != 1:
            raise ValueError("the members of an ensemble must have the same hidden width")
        self.members = nn.ModuleList(members)
        self.hidden = members[0].hidden

    def forward(self, candidates: torch.Tensor, mask: torch.Tensor,
                line: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``CandidateNet.forward``: scores (B, N), -inf on illegal rows, and the members' mean context."""
        outputs = [member(candidates, mask, line) for member in self.members]
        log_p = torch.stack([torch.log_softmax(scores.clamp(min=-1e9), dim=-1) for scores, _ in outputs]).mean(0)
        return log_p.masked_fill(mask <= 0.5, -torch.inf), torch.stack([c for _, c in outputs]).mean(0)


Dispatcher = Union[CandidateNet, Ensemble]
"""What a model file holds and ``LearnedPolicy`` runs."""


@functools.lru_cache(maxsize=1)
def _sb3_classes() -> tuple[type, type, type]:
    """The SB3 pieces, built on first use so that rules and solvers never import SB3."""
    from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class CandidateExtractor(BaseFeaturesExtractor):
        """SB3 features: the candidate scores (N) followed by the context (hidden)."""

        def __init__(self, observation_space: Any, hidden: int = 64):
            n = observation_space["candidates"].shape[0]
            super().__init__(observation_space, features_dim=n + hidden)
            self.n = n
            self.net = CandidateNet(hidden)

        def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
            scores, context = self.net(obs["candidates"], obs["mask"], obs["line"])
            # masked rows: a finite floor, since SB3's masking sets its own -1e8 and adds nothing
            return torch.cat([scores.clamp(min=-1e8), context], dim=-1)

    class SplitLatent(nn.Module):
        """Actor latent = the scores (used as logits as they are); critic latent = the context."""

        def __init__(self, n: int, hidden: int):
            super().__init__()
            self.n = n
            self.latent_dim_pi = n
            self.latent_dim_vf = hidden

        def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.forward_actor(features), self.forward_critic(features)

        def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
            return features[:, :self.n]

        def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
            return features[:, self.n:]

    class CandidatePolicy(MaskableMultiInputActorCriticPolicy):
        """MaskablePPO policy whose logits are ``CandidateNet``'s per-candidate scores."""

        def __init__(self, *args: Any, **kwargs: Any):
            kwargs["features_extractor_class"] = CandidateExtractor
            kwargs.setdefault("features_extractor_kwargs", {"hidden": 64})
            kwargs["share_features_extractor"] = True
            super().__init__(*args, **kwargs)

        def _build_mlp_extractor(self) -> None:
            extractor = self.features_extractor
            self.mlp_extractor = SplitLatent(extractor.n, extractor.net.hidden)

        def _build(self, lr_schedule: Any) -> None:
            super()._build(lr_schedule)
            self.action_net = nn.Identity()  # the scores are the logits: no layer tied to N
            self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    return CandidateExtractor, SplitLatent, CandidatePolicy


def candidate_policy_class() -> type:
    """The MaskablePPO policy class (``policy=`` argument of ``MaskablePPO``)."""
    return _sb3_classes()[2]


def net_of(model: Any) -> CandidateNet:
    """The ``CandidateNet`` inside a MaskablePPO model built with ``candidate_policy_class()``."""
    return model.policy.features_extractor.net


@dataclass
class ModelCard:
    """What a model file says about itself: how it was trained and how well it did."""

    training_command: str = ""
    seed: int = 0
    budget: str = ""
    results: dict[str, Any] = field(default_factory=dict)


def save_model(net: Dispatcher, path: Path, card: ModelCard) -> None:
    """Write ``net`` (its ``state_dict``, or an ensemble's ``members``) and its card to ``path`` (tensors and
    plain values only)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def weights(member: CandidateNet) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in member.state_dict().items()}

    held = ({"members": [weights(m) for m in net.members]} if isinstance(net, Ensemble)
            else {"state_dict": weights(net)})
    torch.save({"format": MODEL_FORMAT, "version": MODEL_VERSION, "hidden": net.hidden, **held,
                "card": card.__dict__}, path)


def load_model(path: Union[str, Path]) -> tuple[Dispatcher, ModelCard]:
    """The network and card in ``path``; ModelFileError naming the file if it is not a YueTwin model."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such policy file")
    if zipfile.is_zipfile(path) and "data" in zipfile.ZipFile(path).namelist():
        raise ModelFileError(f"{path}: this is a stable-baselines3 training checkpoint, not a model file; "
                             "export one with `twin train ... --out MODEL.pt` (it writes both)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        raise ModelFileError(f"{path}: not a readable YueTwin policy file ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]})") from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path}: not a YueTwin dispatcher model (format {MODEL_FORMAT!r} expected)")
    if data.get("version") != MODEL_VERSION:
        raise ModelFileError(f"{path}: model format version {data.get('version')!r}, this YueTwin reads "
                             f"version {MODEL_VERSION}")
    weights = data["members"] if "members" in data else [data.get("state_dict")]
    if not isinstance(weights, list) or not weights:
        raise ModelFileError(f"{path}: the ensemble's members are not a non-empty list of weights")
    members = [CandidateNet(int(data["hidden"])) for _ in weights]
    try:
        for member, state in zip(members, weights):
            member.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"{path}: the weights do not fit the network ({str(exc).splitlines()[0]})") from None
    net = Ensemble(members) if "members" in data else members[0]
    net.eval()
    return net, ModelCard(**data.get("card", {}))


def shipped_model_path(kind: str = "job_shop") -> Path:
    """Path of the shipped model of ``kind`` (a key of ``SHIPPED_MODELS``); ValueError for another."""
    if kind not in SHIPPED_MODELS:
        close = difflib.get_close_matches(str(kind), SHIPPED_MODELS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"kind={kind!r} names no shipped model; {hint}choose one of {', '.join(SHIPPED_MODELS)}")
    return Path(str(resources.files("policies").joinpath(SHIPPED_MODELS[kind])))


class LearnedPolicy:
    """A trained ``CandidateNet`` (or ``Ensemble``) behind the Policy protocol. Greedy (``deterministic=True``)
    takes the highest score; otherwise it samples from the softmax of the scores with its own seeded
    Generator."""

    schedule = "active"
    """The job-shop schedule generation scheme it was trained in (``envs.jobshop``)."""

    def __init__(self, net: Dispatcher, name: str = "learned", seed: int = 0):
        # A decision scores a few dozen candidates: one torch thread is fastest, and more threads on a
        # busy machine made each decision ~40x slower (measured on the SMT line). This sets torch's
        # thread count for the process.
        torch.set_num_threads(1)
        self.net = net.eval()
        self.name = name
        self.rng = np.random.default_rng(seed)

    @classmethod
    def load(cls, path: Optional[Union[str, Path]] = None, seed: int = 0, kind: str = "job_shop") -> "LearnedPolicy":
        """The model file the user names, or (``path`` None) the shipped model of ``kind``
        (a key of ``SHIPPED_MODELS``)."""
        net, _ = load_model(shipped_model_path(kind) if path is None else path)
        return cls(net, "learned" if path is None else Path(path).stem, seed)

    def reset(self, env: Any) -> None:
        """Nothing to prepare: the network reads only the observation."""

    def scores(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """Scores (B, N) for a batch of observations (or one, returned as a batch of 1); -inf if illegal."""
        candidates = np.asarray(observation["candidates"], dtype=np.float32)
        batched = candidates.ndim == 3
        with torch.no_grad():
            cand = torch.from_numpy(candidates if batched else candidates[None])
            mask = torch.as_tensor(np.asarray(observation["mask"], dtype=np.float32))
            line = torch.as_tensor(np.asarray(observation["line"], dtype=np.float32))
            scores, _ = self.net(cand, mask if batched else mask[None], line if batched else line[None])
        return scores.numpy()

    def predict(self, observation: dict[str, np.ndarray], state: Optional[tuple] = None,
                episode_start: Optional[np.ndarray] = None,
                deterministic: bool = True) -> tuple[np.ndarray, Optional[tuple]]:
        """The chosen row(s): the best score, or a sample from the softmax of the scores."""
        scores = self.scores(observation)
        if deterministic:
            actions = scores.argmax(axis=1)
        else:
            z = scores - scores.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            actions = np.array([self.rng.choice(len(row), p=row) for row in p])
        batched = np.asarray(observation["candidates"]).ndim == 3
        return (actions if batched else actions[0]), None
