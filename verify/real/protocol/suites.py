"""The named suites of ``ftstab real --suite NAME``: tasks × encoders × training sizes × methods.

Every suite fine-tunes with :class:`verify.real.protocol.config.ProtocolConfig` under plain training
and each method of :data:`METHODS` (the registry's stabilisers, with MiniLM's counterparts of SURT,
re-initialisation and LNSR), and tunes a head on the frozen encoder's cached features with exact
leave-one-out (every left-out set), whose rows get the synthetic head grids' corollaries.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.real.configs import RealConfig
from verify.real.data.registry import TEXT_TASKS, load_task
from verify.real.data.text_dataset import TEXT_KIND
from verify.real.plan import select_stabilisers
from verify.real.protocol.config import ProtocolConfig, protocol_name
from verify.real.source import DatasetRequest, RealSource
from verify.run.task import Task, canonical_params

# Plain training and the methods of the paper's table: MMR, MHLoss, SURT (each encoder's own
# contrastive objective), L2-SP, Mixout, layer-wise lr decay, re-initialised top block, small lr x long.
METHODS = "none,mmr,mhloss,surt,l2sp,mixout,llrd,reinit_top,small_lr_long"
HEAD_METHODS = "none"
HEAD_STEPS = 300


@dataclass(frozen=True)
class Suite:
    """One suite. ``steps`` maps shots per class to optimiser steps (before a method's schedule)."""

    name: str
    encoders: tuple[str, ...]
    tasks: tuple[str, ...]
    steps: dict[int, int]
    n_seeds: int
    methods: str = METHODS
    lrs: tuple[float, ...] = (1e-4,)
    batch_size: int = 8
    max_length: int = 64
    test_per_class: int = 30
    head: bool = True


SUITES: dict[str, Suite] = {suite.name: suite for suite in (
    Suite("real-smoke", encoders=("minilm-l3",), tasks=("sms-spam", "trec-coarse"), steps={2: 2},
          n_seeds=2, methods="none,llrd", test_per_class=3),
    Suite("paper-small", encoders=("minilm-l3",), tasks=tuple(TEXT_TASKS), steps={4: 30}, n_seeds=5),
    Suite("paper", encoders=("minilm-l3", "minilm-l6"), tasks=tuple(TEXT_TASKS),
          steps={4: 30, 16: 60, 48: 120}, n_seeds=10, lrs=(2e-5, 1e-4), test_per_class=50),
)}


def suite(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"suite must be one of {sorted(SUITES)}, got {name!r}")
    return SUITES[name]


def full_config(suite: Suite, encoder: str, lr: float, n_steps: int) -> ProtocolConfig:
    fields: dict[str, Any] = {"encoder": encoder, "n_steps": n_steps, "lr": lr, "batch_size": suite.batch_size,
              "max_length": suite.max_length}
    return ProtocolConfig(name=protocol_name(fields), **fields)


def head_config(suite: Suite, encoder: str, n_classes: int) -> RealConfig:
    """SGD on a linear head over the frozen encoder's features: binary tasks with the logistic loss
    on one weight vector (the synthetic head grids' setting, where Theorem H's margin applies),
    several classes with softmax cross-entropy."""
    loss = "logistic" if n_classes == 2 else "softmax"
    return RealConfig(name=f"real_head_{encoder.replace('-', '_')}_{loss}_sgd8_T{HEAD_STEPS}_lrscale1"
                           f"_looall_L{suite.max_length}", setting="head", kinds=(TEXT_KIND,),
                      n_steps=HEAD_STEPS, lr_scale=1.0, batch_size=8, max_left_out=None,
                      n_checkpoints=6, loss=loss, encoder=encoder)


def plan_suite(suite: Suite, *, cache_dir: Path) -> tuple[RealSource, list[Task]]:
    """The suite's datasets and tasks (validated: bad sizes fail here, before anything runs)."""
    full_methods = select_stabilisers(suite.methods, "full", TEXT_KIND)
    head_methods = select_stabilisers(HEAD_METHODS, "head", TEXT_KIND)
    requests = tuple(DatasetRequest(task, shots, 0, suite.test_per_class)
                     for task in suite.tasks for shots in suite.steps)
    source = RealSource(requests, cache_dir)
    source.validate()
    seeds = tuple(range(suite.n_seeds))
    heads, full = [], []
    for encoder in suite.encoders:
        for request in requests:
            if suite.head:
                config = head_config(suite, encoder, len(load_task(request.task)[0].class_names))
                heads += [Task(request.dataset_id(), config, name, canonical_params(params), seeds)
                          for name, params in head_methods]
    # Method-major (plain first, then each method on every task): a run stopped part-way has
    # complete comparisons against plain for the methods it finished.
    for name, params in full_methods:
        for encoder in suite.encoders:
            for lr in suite.lrs:
                for request in requests:
                    protocol = full_config(suite, encoder, lr, suite.steps[request.shots])
                    full.append(Task(request.dataset_id(), protocol, name, canonical_params(params), seeds))
    tasks = heads + full
    return source, tasks
