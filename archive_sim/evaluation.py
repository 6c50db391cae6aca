"""Quality of "the same picture" retrieval, scored against ground-truth groups.

Input: groups of items that depict the same picture (``GROUPS.json``), each item's
ranked list of other items (its "Liknande" list, as a reader sees it) and each
item's category. Output: for every category, every transform and all queries
together, hit@k (the share of queries with a member of their own group among the
first k) and the mean reciprocal rank of the first such member (0 when none is
listed). Every member of a group is a query; the other members are its answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KS = (1, 3, 5)
ALL = "all"


class GroupsError(ValueError):
    """A ground-truth file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Member:
    id: str
    transform: str = ""


@dataclass(frozen=True)
class Group:
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Score:
    queries: int
    hits: dict[int, float]
    mrr: float

    def as_dict(self) -> dict[str, Any]:
        return {"queries": self.queries, **{f"hit@{k}": round(v, 4) for k, v in self.hits.items()},
                "mrr": round(self.mrr, 4)}


@dataclass
class Evaluation:
    by_category: dict[str, Score]
    by_transform: dict[str, Score]
    missing: list[str] = field(default_factory=list)  # group members the build does not hold

    @property
    def overall(self) -> Score:
        return self.by_category[ALL]

    def as_dict(self) -> dict[str, Any]:
        return {"categories": {c: s.as_dict() for c, s in self.by_category.items()},
                "transforms": {t: s.as_dict() for t, s in self.by_transform.items()},
                "missing": self.missing}


def parse_groups(data: Any, origin: str) -> list[Group]:
    """Validate a GROUPS document: ``{"groups": [{"items": [id or {"id", "transform"}, ...]}, ...]}``."""
    if isinstance(data, dict):
        data = data.get("groups")
    if not isinstance(data, list):
        raise GroupsError(f"{origin}: expected {{\"groups\": [...]}} or a list of groups")
    groups: list[Group] = []
    seen: dict[str, int] = {}
    for g, raw in enumerate(data):
        items = raw.get("items") if isinstance(raw, dict) else raw
        if not isinstance(items, list):
            raise GroupsError(f"{origin}: groups[{g}].items: expected a list of item ids")
        members = []
        for m, entry in enumerate(items):
            if isinstance(entry, str):
                member = Member(entry)
            elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
                member = Member(entry["id"], str(entry.get("transform", "")))
            else:
                raise GroupsError(f"{origin}: groups[{g}].items[{m}]: expected an id or {{\"id\": ..., \"transform\": ...}}")
            if member.id in seen:
                raise GroupsError(f"{origin}: groups[{g}].items[{m}]: {member.id!r} is already in groups[{seen[member.id]}]")
            seen[member.id] = g
            members.append(member)
        if len(members) < 2:
            raise GroupsError(f"{origin}: groups[{g}]: a group needs at least two items")
        groups.append(Group(tuple(members)))
    return groups


def load_groups(path: Path) -> list[Group]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GroupsError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GroupsError(f"{path}: not a readable JSON file: {exc}") from None
    return parse_groups(data, str(path))


def first_relevant_rank(ranking: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant id in ``ranking``; None when there is none."""
    for rank, item_id in enumerate(ranking, start=1):
        if item_id in relevant:
            return rank
    return None


def _score(ranks: list[int | None], ks: Sequence[int]) -> Score:
    n = len(ranks)
    if n == 0:
        return Score(0, {k: 0.0 for k in ks}, 0.0)
    hits = {k: sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}
    mrr = sum(1.0 / r for r in ranks if r is not None) / n
    return Score(n, hits, mrr)


def evaluate(rankings: Mapping[str, Sequence[str]], groups: Sequence[Group], category_of: Mapping[str, str],
             ks: Sequence[int] = KS) -> Evaluation:
    """Score ``rankings`` (item id -> other ids, best first) against ``groups``.

    Members missing from ``category_of`` (not in the build) are neither queries nor
    answers, and are listed in ``missing``; a group left with one member is skipped.
    """
    per_category: dict[str, list[int | None]] = {}
    per_transform: dict[str, list[int | None]] = {}
    everything: list[int | None] = []
    missing: list[str] = []
    for group in groups:
        present = [m for m in group.members if m.id in category_of]
        missing += [m.id for m in group.members if m.id not in category_of]
        if len(present) < 2:
            continue
        ids = {m.id for m in present}
        for member in present:
            rank = first_relevant_rank(rankings.get(member.id, ()), ids - {member.id})
            everything.append(rank)
            per_category.setdefault(category_of[member.id], []).append(rank)
            per_transform.setdefault(member.transform or "-", []).append(rank)
    by_category = {c: _score(r, ks) for c, r in sorted(per_category.items())}
    by_category[ALL] = _score(everything, ks)
    by_transform = {t: _score(r, ks) for t, r in sorted(per_transform.items())}
    return Evaluation(by_category, by_transform, sorted(missing))


def format_table(scores: Mapping[str, Score], heading: str, ks: Sequence[int] = KS) -> str:
    """A plain-text table: one row per key, columns queries, hit@k..., MRR."""
    width = max([len(heading)] + [len(name) for name in scores])
    head = f"{heading:<{width}}  {'queries':>7}" + "".join(f"  {'hit@' + str(k):>6}" for k in ks) + f"  {'MRR':>6}"
    lines = [head, "-" * len(head)]
    for name, s in scores.items():
        lines.append(f"{name:<{width}}  {s.queries:>7}" + "".join(f"  {s.hits[k]:>6.3f}" for k in ks)
                     + f"  {s.mrr:>6.3f}")
    return "\n".join(lines)
