"""Sweeps: named sets of runs and book pages, executed as notebooks through papermill on Dask.

A sweep has two stages:

1. every distinct run config executes `notebooks/train_and_evaluate.ipynb` (the only notebook that
   trains) into `<out>/generated/runs/<run_id>.ipynb`;
2. the analysis notebooks (`phases`, `phase_diagram`, ...), which only read finished runs, execute
   into `<out>/generated/<page>.ipynb`. A page whose runs failed is reported and skipped.

Both stages run on a Dask cluster: a local one (one single-threaded worker process per core; two
single-threaded workers beat one two-threaded process on this kind of machine) or an existing
one at `--scheduler tcp://HOST:PORT`, which must see the same file system (data root, notebooks,
output folder) at the same paths. Each notebook executes in its own papermill subprocess, so the
data root reaches the kernel through an explicit environment and no worker state leaks between
tasks. The book's `_toc.yml` is written from the sweep definition: it is derived, never edited.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bumpdiff_core.config import ConfigError, profile_config
from bumpdiff_core.sweeps import scaling

TRAIN_NOTEBOOK = "train_and_evaluate"

# seeds looked at while tuning the quick profile and the thresholds: no verdict reads them when an
# untuned seed is there (`pick_seeds`)
TUNED_SEEDS = frozenset({0, 1, 2})

# analysis pages in book order: notebook name -> page title
PAGE_TITLES = {
    "findings": "What reproduced",
    "data": "Data",
    "phases": "The three phases",
    "phase_diagram": "Phase diagram",
    "imbalanced": "Imbalanced data",
    "efficiency": "Can x and y be learned separately?",
    "appendix": "Appendix",
}
FINDINGS_PAGES = ("findings", "data", "phases", "phase_diagram", "imbalanced", "efficiency")


# ---------------------------------------------------------------------------------------------
# definitions
# ---------------------------------------------------------------------------------------------

def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class RunSpec:
    """One run: a profile plus the overrides that differ from it (canonical, so equal configs
    have equal specs and notebook parameters)."""
    profile: str
    overrides: tuple  # sorted (field, value) pairs

    @classmethod
    def make(cls, profile: str, overrides: dict | None = None) -> "RunSpec":
        config = profile_config(profile, overrides)  # validates: a bad sweep fails before any work
        default = profile_config(profile).to_dict()
        changed = {k: v for k, v in config.to_dict().items() if v != default[k]}
        return cls(profile, tuple(sorted((k, _jsonable(v)) for k, v in changed.items())))

    @property
    def overrides_dict(self) -> dict:
        return {k: v for k, v in self.overrides}

    @property
    def config(self):
        return profile_config(self.profile, self.overrides_dict)

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def title(self) -> str:
        """A short human name for the table of contents."""
        o = self.overrides_dict
        parts = []
        if "increment_x" in o or "increment_y" in o:
            dx, dy = self.config.increment_x, self.config.increment_y
            parts.append(f"increment {dx:g}" if dx == dy else f"dx {dx:g}, dy {dy:g}")
        if "seed" in o:
            parts.append(f"seed {o['seed']}")
        c = self.config
        if c.design != "grid" or c.conditioning != "global":
            # latin rungs depend on K (1 ≤ r ≤ K - 2): its label keeps the run's own K
            parts.append(design_label(c.replace(increment_x=1.0, increment_y=1.0, seed=0) if c.design == "latin"
                                      else c.replace(increment_x=1.0, increment_y=1.0, seed=0, image_size=16)))
        # the checkpoint schedule changes what is evaluated, not what is learned: left out of the name
        named = {"increment_x", "increment_y", "seed", "design", "design_count", "design_lines", "holdout_size", "design_rungs",
                 "conditioning", "checkpoint_dense_every", "checkpoint_dense_until", "checkpoint_log_count"}
        parts += [f"{k}={v}" for k, v in self.overrides if k not in named]
        return f"{self.profile}: " + (", ".join(parts) if parts else "default")


# The roles a run plays in a sweep, declared once (the Sweep methods below build them). Pages and
# claims name the roles they read; a page's inputs, and so its freshness, follow from those.
ROLES = ("default", "main", "increments", "pairs", "controls", "efficiency")
# the claims read every role (`results.tables.verdict_inputs`): a page that judges them reads all
ALL_ROLES = ("main", "increments", "pairs", "controls", "efficiency")
PAGE_ROLES = {
    "findings": ALL_ROLES,
    "data": (),
    "phases": ("default",),
    "phase_diagram": ("increments",),
    "imbalanced": ALL_ROLES,        # its Fig. 5 verdict is judged with every input, as on the findings page
    "efficiency": ("efficiency", "pairs", "controls"),
    "appendix": ("default",),
}


@dataclass(frozen=True)
class Page:
    name: str            # notebooks/<name>.ipynb -> <out>/generated/<name>.ipynb
    title: str
    parameters: dict
    needs: tuple         # RunSpecs this page reads: the runs of its roles
    roles: tuple = ()    # the roles it reads (PAGE_ROLES)


@dataclass(frozen=True)
class Sweep:
    """A named set of runs and book pages: the main configuration per seed (`main_seeds`), Fig. 4
    increments and Fig. 5 pairs per seed (`figure_seeds`), and efficiency runs (`efficiency`: one
    run per override dict, on top of the sweep's overrides; their seeds are in the dicts).
    `seeds` is shorthand for both seed lists (sweeps written before they were split)."""
    name: str
    profile: str
    overrides: dict = field(default_factory=dict)
    main_seeds: tuple = (0,)
    figure_seeds: tuple = (0,)
    increments: tuple = ()       # Fig. 4: one run per increment and figure seed, increment_x = increment_y
    pairs: tuple = ()            # Fig. 5: (increment_x, increment_y), one run per pair and figure seed
    efficiency: tuple = ()       # compositional generalization / data-scaling references: override dicts
    search: object = None        # data efficiency: a scaling.RungSearch, its rungs proposed as runs finish (run_sweep)
    pages: tuple = ()            # analysis pages (keys of PAGE_TITLES), in book order
    book: bool = False           # write the book's _toc.yml into `out`
    description: str = ""
    seeds: tuple | None = None

    def __post_init__(self):
        if self.seeds is not None:
            object.__setattr__(self, "main_seeds", tuple(self.seeds))
            object.__setattr__(self, "figure_seeds", tuple(self.seeds))

    def _spec(self, **changes) -> RunSpec:
        return RunSpec.make(self.profile, {**self.overrides, **changes})

    def main_runs(self) -> list[RunSpec]:
        return [self._spec(seed=s) for s in self.main_seeds]

    def increment_runs(self, seeds=None) -> list[RunSpec]:
        return [self._spec(increment_x=inc, increment_y=inc, seed=s)
                for inc in self.increments for s in (self.figure_seeds if seeds is None else seeds)]

    def pair_runs(self) -> list[RunSpec]:
        return [self._spec(increment_x=dx, increment_y=dy, seed=s) for dx, dy in self.pairs for s in self.figure_seeds]

    def efficiency_runs(self) -> list[RunSpec]:
        return [self._spec(**changes) for changes in self.efficiency]

    def control_runs(self) -> list[RunSpec]:
        """Fig. 5's positive control: the separable model on every imbalanced pair and figure seed
        (the same designs and seeds as `pair_runs`, the dense schedule)."""
        return [self._spec(conditioning="separable", increment_x=dx, increment_y=dy, seed=s)
                for dx, dy in self.pairs for s in self.figure_seeds]

    def reference_runs(self) -> list[RunSpec]:
        """A scaling sweep's full-grid reference per K (`scaling.RungSearch.reference_runs`)."""
        return [self._spec(**changes) for changes in self.search.reference_runs()] if self.search else []

    def search_spec(self, key) -> RunSpec:
        """The run of one rung-search key (K, model, seed, rung, factor) or ("reference", K)."""
        if key[0] == "reference":
            return self._spec(**scaling.reference_overrides(key[1], self.search.seeds[0], self.search.step_base))
        return self._spec(**self.search.overrides(key))

    def search_candidates(self) -> list[tuple]:
        """[(key, RunSpec)] of every run the rung search could ask for (none without a search)."""
        return [(key, self.search_spec(key)) for key in self.search.candidates()] if self.search else []

    def main_run(self) -> RunSpec:
        """The default run: the sweep's profile and overrides, nothing changed."""
        return self._spec()

    def role_runs(self, role: str) -> list[RunSpec]:
        """The runs that play `role` (one of `ROLES`) in this sweep."""
        if role not in ROLES:
            raise ConfigError("role", f"must be one of {', '.join(ROLES)}; got {role!r}")
        return {"default": lambda: [self.main_run()], "main": self.main_runs, "increments": self.increment_runs, "pairs": self.pair_runs,
                "controls": self.control_runs, "efficiency": self.efficiency_runs}[role]()

    def page_specs(self) -> list[Page]:
        # an analysis page takes the sweep's name and asks `get_sweep(name)` for its runs
        # (results.view.SweepView), so the same notebook runs by hand with `sweep = "book-quick"`;
        # what it reads is the union of the roles `PAGE_ROLES` declares for it
        unknown = [p for p in self.pages if p not in PAGE_ROLES]
        if unknown:
            raise ConfigError("pages", f"must be among {', '.join(PAGE_ROLES)}; got {unknown}")
        pages = []
        for name in self.pages:
            needs: dict[str, RunSpec] = {}
            for role in PAGE_ROLES[name]:
                for spec in self.role_runs(role):
                    needs.setdefault(spec.run_id, spec)
            params = {"profile": self.profile} if name == "data" else {"sweep": self.name}
            pages.append(Page(name, PAGE_TITLES[name], params, tuple(needs.values()), PAGE_ROLES[name]))
        return pages

    def runs(self) -> list[RunSpec]:
        """Every distinct run (by run id) the sweep needs whatever the results, in a stable order
        (a search's rungs, chosen as results come in, are not among them; its references are)."""
        seen: dict[str, RunSpec] = {}
        candidates = (self.main_runs() + self.increment_runs() + self.pair_runs() + self.control_runs()
                      + self.efficiency_runs() + self.reference_runs())
        candidates += [spec for page in self.page_specs() for spec in page.needs]
        for spec in candidates:
            seen.setdefault(spec.run_id, spec)
        return list(seen.values())


def design_label(config) -> str:
    """A short name of a run's training set and model: 'lines k=2 · global', 'random 60 · separable',
    'lines k=2 · global + coord' (coordinate channels),
    'holdout 6 · global', 'grid dx 0.1, dy 1 · separable' (+ ', K=24' off 16×16, ', seed 1' off 0)."""
    c = config
    what = {"grid": "grid", "random": f"random {c.design_count}", "lines": f"lines k={c.design_lines}",
            "holdout": f"holdout {c.holdout_size}", "latin": f"latin r={c.design_rungs}"}[c.design]
    if (c.increment_x, c.increment_y) != (1.0, 1.0):
        what += f" dx {c.increment_x:g}, dy {c.increment_y:g}"
    model = c.conditioning + (" + coord" if getattr(c, "coord_channels", False) else "")
    extra = (f", K={c.image_size}" if c.image_size != 16 else "") + (f", seed {c.seed}" if c.seed else "")
    return f"{what} · {model}{extra}"


ALL_PAGES = tuple(PAGE_TITLES)
# Efficiency runs read only the last checkpoint's unseen accuracy (every far-unseen position of the
# position map) and a curve: 6 checkpoints (every 300 steps) instead of the 17 of the dense schedule
FEW_CHECKPOINTS = dict(checkpoint_dense_every=300, checkpoint_dense_until=1500, checkpoint_log_count=0)
# the `lines` claim: the global model, the separable model (positive control) and the global model
# with coordinate channels (it separates "factorized" from "has coordinates"), each on the untuned
# seeds 3, 4, 5 (no verdict reads seed 0)
LINES_MODELS = (dict(conditioning="global"), dict(conditioning="separable"), dict(conditioning="global", coord_channels=True))
LINES_SEEDS = (3, 4, 5)
LINES_EFFICIENCY = tuple(dict(FEW_CHECKPOINTS, design="lines", design_lines=2, seed=s, **m)
                         for m in LINES_MODELS for s in LINES_SEEDS)
# shown on the efficiency page, judged by no claim: only in the full book
SHOWN_EFFICIENCY = tuple([dict(FEW_CHECKPOINTS, design="random", design_count=60, conditioning=m, seed=3)
                          for m in ("global", "separable")] + [dict(FEW_CHECKPOINTS, design="holdout", holdout_size=6, seed=3)])
TINY_EFFICIENCY = tuple(dict(design="lines", design_lines=2, conditioning=m) for m in ("global", "separable"))
# Fig. 5: x learned against dy at dx = 0.1 (the separable model on the same designs is the control)
FIG5_PAIRS = ((0.1, 0.1), (0.1, 0.5), (0.1, 1.0))
# Fig. 4 states no trend (no verdict): three increments in the default book, six in the full one
BOOK = dict(increments=(0.1, 0.5, 1.0), pairs=FIG5_PAIRS, pages=ALL_PAGES, book=True)
SWEEPS: dict[str, Sweep] = {s.name: s for s in [
    # seed 0 was used to tune the quick profile; 3-5 played no part (the verdicts use those)
    # the default book: the phases page shows seed 0; the verdicts read seeds 3-5; Fig. 4 and Fig. 5 on
    # seed 3 only (the Fig. 5 verdict then says undecided: too few seeds)
    Sweep("book-quick", "quick", main_seeds=(0, 3, 4, 5), figure_seeds=(3,), efficiency=LINES_EFFICIENCY, **BOOK,
          description="the book: the quick run with 4 seeds, Fig. 4 increments, Fig. 5 dy designs, the `lines` test"),
    Sweep("book-full", "quick", main_seeds=(0, 1, 2, 3, 4, 5), figure_seeds=(3, 4, 5),
          efficiency=LINES_EFFICIENCY + SHOWN_EFFICIENCY, **dict(BOOK, increments=(0.1, 0.2, 0.25, 0.5, 0.75, 1.0)),
          description="the book with 6 main seeds and 3 untuned seeds for every Fig. 4 / Fig. 5 / `lines` run"),
    Sweep("book-tiny", "tiny", increments=(0.5, 1.0), pairs=((0.5, 1.0),), efficiency=TINY_EFFICIENCY,
          pages=ALL_PAGES, book=True, description="the book at test scale (seconds per run)"),
    Sweep("seeds-quick", "quick", main_seeds=(0, 1, 2, 3, 4, 5),
          description="the default quick run with six seeds (transition steps, mean +- sd)"),
    # the title question: nested Latin-square rungs (sweeps/scaling.py), rung search per (K, model, seed)
    Sweep("scaling", "quick", main_seeds=(), figure_seeds=(), search=scaling.RungSearch(),
          description="data efficiency: M50(K) ∝ K^γ per model, K = 8..20, seeds 3, 4 (sweeps/scaling.py)"),
    Sweep("scaling-full", "quick", main_seeds=(), figure_seeds=(),
          search=scaling.RungSearch(scaling.FULL_SIZES, scaling.FULL_SEEDS),
          description="data efficiency at K = 8..32, seeds 3-5 (a cluster: --scheduler)"),
    Sweep("scaling-tiny", "tiny", main_seeds=(), figure_seeds=(),
          search=scaling.RungSearch((8, 12, 16), (3,), ("global", "separable"), step_base=40),
          description="the scaling sweep at test scale (seconds per run)"),
]}


def get_sweep(name) -> Sweep:
    if isinstance(name, Sweep):
        return name
    if name not in SWEEPS:
        raise ConfigError("sweep", f"must be one of {', '.join(SWEEPS)}; got {name!r}")
    return SWEEPS[name]


# ---------------------------------------------------------------------------------------------
# the table of contents, derived from the sweep
# ---------------------------------------------------------------------------------------------

def toc_yaml(sweep: Sweep) -> str:
    q = json.dumps  # a JSON string is a valid YAML scalar
    lines = [f"# Generated by `bumpdiff sweep {sweep.name}` from bumpdiff_core/sweeps/definitions.py: do not edit.",
             "format: jb-book", "root: intro", "parts:"]

    def part(caption, entries):
        if entries:
            lines.append(f"- caption: {q(caption)}")
            lines.append("  chapters:")
            for file, title in entries:
                lines.append(f"  - file: {file}")
                if title:
                    lines.append(f"    title: {q(title)}")

    pages = {p.name: p for p in sweep.page_specs()}
    part("The findings", [(f"generated/{n}", pages[n].title) for n in FINDINGS_PAGES if n in pages])
    part("Details", [(f"generated/{n}", pages[n].title) for n in pages if n not in FINDINGS_PAGES]
         + [("methods", None), ("reproduce", None)])
    part("Runs", [(f"generated/runs/{s.run_id}", f"Run {s.run_id[:8]} ({s.title})") for s in sweep.runs()])
    return "\n".join(lines) + "\n"


def pick_seeds(seeds, tuned_seeds=TUNED_SEEDS) -> tuple[tuple, tuple, str]:
    """(used, left out, note): the untuned seeds when there are any, else all (said so)."""
    seeds = sorted(seeds)
    untuned = [s for s in seeds if s not in set(tuned_seeds)]
    if untuned:
        left = [s for s in seeds if s in set(tuned_seeds)]
        note = (f"verdicts on untuned seeds {', '.join(map(str, untuned))}"
                + (f" (tuned seeds {', '.join(map(str, left))} left out)" if left else ""))
        return tuple(untuned), tuple(left), note
    note = (f"no untuned seed available: verdicts on tuned seeds {', '.join(map(str, seeds))} "
            "(the profile was tuned on them; read them as such)") if seeds else "no runs"
    return tuple(seeds), (), note
