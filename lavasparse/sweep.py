"""The paper's method as one command: for every schedule, the largest sigma_0
that keeps the baseline's validation accuracy (Allred et al.'s Table 1) and
the largest that loses under 1 point (Table 2), found by geometric bracketing
and bisection; each chosen network then evaluated on the test set on the
target.

Trials run through Ray Tune: locally (one trial per core, or several per
GPU), or on a running Ray cluster (``address``; the output folder must then
be on storage every node sees). A trial that dies is retried and resumes its
training from its last epoch. Each finished trial leaves ``result.json`` in
its folder, and the search replays from those, so a sweep stopped half-way
redoes nothing it finished.

Output folder:
  sweep.json                      the settings
  trials/baseline/, trials/<schedule>/<sigma0>/
                                  training run folders (+ result.json; the
                                  chosen ones also network.net, profile.json...)
  test_input.npy, test_labels.npy what the target sees
  tables.md, tables.json          Table 1 and Table 2 on the test set, on the target
  front.png                       validation accuracy against hidden spikes, all trials
"""
from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from matplotlib.figure import Figure

from lavasparse.defaults import (CPUS_PER_TRIAL, EXECUTORS, GPU_SHARE, MAX_TRIAL_FAILURES, PAPER_SCHEDULES,
                                 SWEEP_EXECUTOR)
from lavasparse.errors import CommandError
from lavasparse.fileio import atomic_path, write_json, write_npy, write_text
from lavasparse.pipeline import RunSettings
from lavasparse.provenance import dirty_note, provenance
from lavasparse.simulate.compare import test_set_words
from lavasparse.simulate.evaluate import KeptEvaluations
from lavasparse.simulate.target_result import TargetEvaluation
from lavasparse.train.selection import SearchPlan, cheapest_passing, eligible_epochs, largest_passing, pick_epoch
from lavasparse.train.trainer import TrainConfig, train

# Allred et al.'s Tables 1 and 2: their accuracy tolerance, iso-accuracy and under 1 point lost.
TABLES = {"table1": 0.0, "table2": 0.01}


# What a trial's result.json keeps of each epoch's record (metrics.jsonl).
EPOCH_KEYS = ("epoch", "sigma", "val_accuracy", "val_hidden_spikes", "val_synops", "val_energy_dynamic_j", "density")


class TrialsFailed(CommandError):
    """Some trials failed even after their retries."""


@dataclass
class TrialSettings:
    """How trials run: cores and GPU share per trial, retries, executor."""

    cpus_per_trial: int = CPUS_PER_TRIAL
    gpus_per_trial: float | None = None   # None: GPU_SHARE when CUDA is there, else 0
    max_failures: int = MAX_TRIAL_FAILURES   # retries of a trial that dies
    # 'ray': Ray Tune (this machine, or a cluster); 'local': a process pool on
    # this machine, for where Ray does not install (same retries and resume).
    executor: str = SWEEP_EXECUTOR

    def check_executor(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")


@dataclass
class SweepConfig(RunSettings, TrialSettings):
    schedules: tuple[str, ...] = PAPER_SCHEDULES
    plan: SearchPlan = field(default_factory=SearchPlan)

    def __post_init__(self):
        super().__post_init__()
        self.check_executor()
        self.schedules = tuple(self.schedules)
        if isinstance(self.plan, dict):
            self.plan = SearchPlan(**self.plan)
        bad = [s for s in self.schedules if s not in PAPER_SCHEDULES]
        if bad:
            raise ValueError(f"unknown schedules {bad}: expected some of {PAPER_SCHEDULES}")


def _trial_dir(out: Path, schedule: str, sigma0: float) -> Path:
    return out / "trials" / ("baseline" if schedule == "baseline" else f"{schedule}/{sigma0:.3g}")


def run_trial(spec: dict) -> dict:
    """Train one (schedule, sigma_0) into its folder and write result.json.
    Runs inside a Ray worker; resumes a half-trained folder."""
    torch.set_num_threads(max(1, int(spec.get("threads", 1))))
    config = TrainConfig.from_dict(spec["train"])
    run_dir = Path(spec["run_dir"])
    t0 = time.time()
    commit = provenance()["commit"]   # the code this stretch trains with, before a later commit moves HEAD
    best = train(config, run_dir, progress=False)
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    result = {"schedule": config.schedule, "sigma0": config.sigma0, "best_epoch": best["epoch"],
              "val_accuracy": best["val_accuracy"], "val_hidden_spikes": best["val_hidden_spikes"],
              "epochs": [{k: e[k] for k in EPOCH_KEYS if k in e} for e in log],
              "train_seconds": time.time() - t0, "host": platform.node(), "commit": commit}
    write_json(run_dir / "result.json", result)
    return result


def _ray_trainable(config: dict) -> None:
    from ray import tune   # Ray: only where a sweep runs on it (--executor ray); it takes seconds to import

    tune.report(run_trial(config["spec"]))


def _machine_cpus() -> int:
    """CPUs this process may use (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _uses_gpu(config) -> bool:
    return torch.cuda.is_available() and config.device != "cpu"


def _run_trials(specs: list[dict], config: TrialSettings, out: Path, address: str | None, round_no: int) -> None:
    """Run the trials in ``specs``; each writes its result.json. Each trial
    takes the CPU threads of the hungriest spec (the round's specs share one)."""
    threads = max(s["threads"] for s in specs)
    if config.executor == "local":
        return _run_trials_locally(specs, config, threads)
    return _run_trials_on_ray(specs, config, out, address, round_no, threads)


def _run_trials_locally(specs: list[dict], config: TrialSettings, threads: int) -> None:
    """A process pool: one trial per ``cpus_per_trial`` cores, or on a GPU
    1 / ``gpus_per_trial`` trials at once (a small SNN leaves most of a GPU
    idle); each retried up to ``max_failures`` times."""
    workers = max(1, _machine_cpus() // threads)
    if _uses_gpu(config):
        workers = min(workers, max(1, int(1 / (config.gpus_per_trial or GPU_SHARE))))
    pending = {i: 0 for i in range(len(specs))}
    # spawn: a fresh interpreter per worker (torch and fork do not mix)
    with ProcessPoolExecutor(max_workers=min(workers, len(specs)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        while pending:
            futures = {i: pool.submit(run_trial, specs[i]) for i in pending}
            for i, fut in futures.items():
                try:
                    fut.result()
                    del pending[i]
                except Exception as e:   # noqa: BLE001 - retried, then reported with the trial's folder
                    pending[i] += 1
                    if pending[i] > config.max_failures:
                        raise TrialsFailed(f"trial {specs[i]['run_dir']} failed after {config.max_failures} "
                                           f"retries: {e}") from e


def _run_trials_on_ray(specs: list[dict], config: TrialSettings, out: Path, address: str | None,
                       round_no: int, threads: int) -> None:
    # Ray's newer console output prints a table per round even at verbose=0;
    # our own round lines say what runs.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray             # Ray: only where a sweep runs on it (--executor ray); it takes seconds to import
    from ray import tune

    if not ray.is_initialized():
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.init(address=address, **kw) if address else ray.init(**kw)
    gpus = config.gpus_per_trial
    if gpus is None:
        gpus = GPU_SHARE if ray.cluster_resources().get("GPU", 0) > 0 and config.device != "cpu" else 0.0
    cpus = min(threads, int(ray.cluster_resources().get("CPU", 1)))
    trainable = tune.with_resources(_ray_trainable, {"cpu": cpus, "gpu": gpus})
    tuner = tune.Tuner(
        trainable,
        param_space={"spec": tune.grid_search(specs)},
        run_config=tune.RunConfig(name=f"round{round_no:02d}", storage_path=str((out / "ray").resolve()),
                                  verbose=0, failure_config=tune.FailureConfig(max_failures=config.max_failures)),
    )
    results = tuner.fit()
    failed = [r for r in results if r.error]
    if failed:
        raise TrialsFailed(f"{len(failed)} trial(s) failed after {config.max_failures} retries; first: "
                           f"{failed[0].config['spec']['run_dir']}: {failed[0].error}")


def _load_results(out: Path) -> dict[tuple[str, float], dict]:
    found = {}
    for path in (out / "trials").rglob("result.json"):
        r = json.loads(path.read_text())
        found[(r["schedule"], float(f"{r['sigma0']:.3g}"))] = r
    return found


def _spec(config: SweepConfig, out: Path, schedule: str, sigma0: float, threads: int | None = None) -> dict:
    run_dir = _trial_dir(out, schedule, sigma0)
    init = None
    if schedule != "baseline" and config.sparse_init == "baseline":
        # relative to the trial's folder: the sweep's folder can move (see TrainConfig.init_from)
        init = os.path.relpath(_trial_dir(out, "baseline", 0.0) / "best.pt", run_dir)
    name = "baseline" if schedule == "baseline" else f"{schedule}-{sigma0:.3g}"
    train = config.train_config(name, schedule, 0.0 if schedule == "baseline" else sigma0, init)
    train.keep_epochs = schedule != "baseline"   # the epoch is chosen on validation, per table
    return {"run_dir": str(run_dir), "train": train.to_dict(), "threads": threads or config.cpus_per_trial}


def search(config: SweepConfig, out: Path, address: str | None = None, progress: bool = True) -> dict:
    """Run rounds of trials until every (schedule, table) search is done.
    Returns {'baseline': result, 'chosen': {table: {schedule: sigma0 | None}}, 'trials': [...]}."""
    results = _load_results(out)
    round_no = 0
    if ("baseline", 0.0) not in results:
        if progress:
            print("== round 0: baseline", flush=True)
        # The baseline trains alone, so on this machine it takes every core
        # (on a cluster, one trial's share: its node is not known here).
        threads = config.cpus_per_trial if address else max(config.cpus_per_trial, _machine_cpus())
        _run_trials([_spec(config, out, "baseline", 0.0, threads)], config, out, address, round_no)
        results = _load_results(out)
    base = results[("baseline", 0.0)]
    while True:
        needed, chosen = set(), {t: {} for t in TABLES}
        for table, tol in TABLES.items():
            for schedule in config.schedules:
                passes = {s0: pick_epoch(r["epochs"], base["val_accuracy"], tol) is not None
                          for (sch, s0), r in results.items() if sch == schedule}
                state, s0 = largest_passing(passes, config.plan)
                if state == "need":
                    needed.add((schedule, s0))
                else:
                    chosen[table][schedule] = s0
        if not needed:
            break
        round_no += 1
        if progress:
            print(f"== round {round_no}: " + ", ".join(f"{s} {v:.3g}" for s, v in sorted(needed)), flush=True)
        _run_trials([_spec(config, out, s, v) for s, v in sorted(needed)], config, out, address, round_no)
        results = _load_results(out)
    return {"baseline": base, "chosen": chosen, "trials": sorted(results.values(), key=lambda r: (r["schedule"], r["sigma0"]))}


def run_sweep(config: SweepConfig, out: str | Path, address: str | None = None, command: str | None = None,
              progress: bool = True) -> dict:
    """The whole sweep into ``out`` (resumable); returns the tables as written to tables.json."""
    out = Path(out).resolve()   # trials run in Ray's own working directories
    out.mkdir(parents=True, exist_ok=True)
    _claim_sweep_folder(config, out)
    t0 = time.time()
    # Taken now: the code that runs is the code checked out at the start
    # (trial processes import it afresh each round, so do not edit it meanwhile).
    origin = provenance()
    found = search(config, out, address, progress)

    test_input, labels = config.test_input()
    write_npy(out / "test_input.npy", test_input)
    write_npy(out / "test_labels.npy", labels)
    kept = KeptEvaluations(test_input, labels, config.engine, config.cross_check, config.energy_profile, progress)
    tables = _SweepTables(config, found, out, kept).build()
    doc = {"dataset": config.dataset, "arch": config.arch, "test_samples": int(len(labels)),
           "test_draws": config.test_draws,
           "rules": {"table1": "largest sigma_0 with validation accuracy >= the baseline's (iso-accuracy)",
                     "table2": "largest sigma_0 losing under 1 point of validation accuracy"},
           "search": asdict(config.plan), "sparse_init": config.sparse_init,
           "command": command, **origin, "seconds": time.time() - t0,
           "train_seconds_total": sum(t.get("train_seconds", 0.0) for t in found["trials"]),
           "table1": tables["table1"], "table2": tables["table2"],
           "table1_cheapest": tables["table1_cheapest"], "table2_cheapest": tables["table2_cheapest"],
           "trials": found["trials"]}
    write_json(out / "tables.json", doc)
    md = tables_markdown(doc)
    write_text(out / "tables.md", md)
    plot_front(found["trials"], found["baseline"], tables, out / "front.png")
    if progress:
        print(md)
    return doc


def _claim_sweep_folder(config: SweepConfig, out: Path) -> None:
    """Write sweep.json, or check that the folder's is this sweep's (resuming)."""
    settings = json.loads(json.dumps(asdict(config)))
    old = out / "sweep.json"
    if old.exists() and not _same_settings(json.loads(old.read_text()), settings):
        raise ValueError(f"{old}: this folder holds a sweep with other settings; use a new folder "
                         f"or the same settings to resume")
    write_json(old, settings)


class _SweepTables:
    """Allred et al.'s Tables 1 and 2 from a finished search (``found``): per
    schedule, the chosen sigma_0's run at its epoch, on the target, beside
    the baseline, and the cheapest passing epoch of any trial."""

    def __init__(self, config: SweepConfig, found: dict, out: Path, kept: KeptEvaluations):
        self.config, self.found, self.out, self.kept = config, found, out, kept
        self.base = found["baseline"]
        self.trials = {(r["schedule"], float(f"{r['sigma0']:.3g}")): r for r in found["trials"]}
        self.base_eval = self.on_target("baseline", 0.0)

    def build(self) -> dict:
        tables = {}
        for table, tol in TABLES.items():
            tables[table] = [self.row("baseline", 0.0, tol)] + [self.row(s, self.found["chosen"][table][s], tol)
                                                                for s in self.config.schedules]
            tables[f"{table}_cheapest"] = self.cheapest(tol)
        return tables

    def on_target(self, schedule: str, sigma0: float, epoch: int | None = None) -> TargetEvaluation:
        run_dir = _trial_dir(self.out, schedule, sigma0)
        which, where = ("best", run_dir) if epoch is None else (f"epochs/{epoch:03d}", run_dir / f"eval-epoch{epoch:03d}")
        return self.kept.get(run_dir, which, where, str(where.relative_to(self.out)))

    def row(self, schedule: str, sigma0: float | None, tol: float, pick: dict | None = None) -> dict:
        if sigma0 is None:
            return {"schedule": schedule, "sigma0": None, "epochs": None, "val_accuracy": None,
                    "test_accuracy_target": None, "test_accuracy_float": None, "hidden_spikes_per_sample": None,
                    "hidden_spike_reduction": None, "synops_per_sample": None, "energy_per_sample_j": None,
                    "note": f"no sigma_0 >= {self.config.plan.low:g} passed"}
        if schedule == "baseline":
            t = self.trials[("baseline", 0.0)]
            epoch, val, ev = t["best_epoch"], t["val_accuracy"], self.base_eval
        else:
            t = self.trials[(schedule, sigma0)]
            pick = pick or pick_epoch(t["epochs"], self.base["val_accuracy"], tol)
            epoch, val, ev = pick["epoch"], pick["val_accuracy"], self.on_target(schedule, sigma0, pick["epoch"])
        p = ev.profile
        base_spikes = self.base_eval.profile.hidden_spikes_per_sample
        return {"schedule": schedule, "sigma0": sigma0, "epochs": epoch, "val_accuracy": val,
                "test_accuracy_target": ev.accuracy_target, "test_accuracy_float": ev.accuracy_float,
                "hidden_spikes_per_sample": p.hidden_spikes_per_sample,
                "hidden_spike_reduction": 1 - p.hidden_spikes_per_sample / base_spikes if base_spikes else None,
                "synops_per_sample": p.per_sample.synops, "energy_per_sample_j": p.per_sample.energy_j,
                "val_energy_dynamic_j": pick.get("val_energy_dynamic_j") if pick else None,
                "engine": ev.engine, "cross_checked_on_lava": ev.agreement.cross_checked_on_lava,
                "identical_to_slayer": ev.agreement.identical_to_slayer}

    def cheapest(self, tol: float) -> dict | None:
        """Beside the paper's rule: the cheapest epoch of any trial (dynamic
        energy on validation) that keeps the table's accuracy."""
        cands = [{**e, "schedule": t["schedule"], "sigma0": float(f"{t['sigma0']:.3g}")}
                 for t in self.found["trials"] if t["schedule"] != "baseline"
                 for e in eligible_epochs(t["epochs"]) if "val_energy_dynamic_j" in e]
        pick = cheapest_passing(cands, self.base["val_accuracy"], tol, "val_energy_dynamic_j")
        return None if pick is None else {**self.row(pick["schedule"], pick["sigma0"], tol, pick), "rule": "cheapest"}


# Settings added after sweep folders were first written, with the value that
# those sweeps ran with, so that they still resume.
_SETTINGS_BEFORE_THEY_EXISTED = {"batch_size": 32, "true_rate": 0.3, "false_rate": 0.02, "readout": "spikes"}


def _same_settings(old: dict, new: dict) -> bool:
    """Whether a folder's sweep.json describes the sweep ``new``."""
    return old.keys() <= new.keys() and all(
        old.get(k, _SETTINGS_BEFORE_THEY_EXISTED.get(k)) == v for k, v in new.items())


def tables_markdown(doc: dict) -> str:
    lines = [f"# Sparsity sweep: {doc['dataset']}, {doc['arch']}", "",
             f"Test set: {test_set_words(doc['test_samples'], doc.get('test_draws', 1))}, on the target (engine per row). "
             f"Sparse networks: {'fine-tuned from the baseline' if doc['sparse_init'] == 'baseline' else 'trained from scratch'}; "
             f"sigma_0 by geometric bracketing (x{doc['search']['factor']:g} from {doc['search']['start']:g}) "
             f"and {doc['search']['bisect_steps']} bisection steps, on validation (80/20 split); each trial is "
             f"judged by its epoch with the fewest hidden spikes among those that keep the table's accuracy, "
             f"and that epoch runs the test set. 'none': no sigma_0 down to {doc['search']['low']:g} kept it.", "",
             f"Command: `{doc['command']}`  ", f"Commit: {doc['commit']}{dirty_note(doc['dirty'])}  ",
             f"Machine: {doc['machine']}; this invocation {doc['seconds'] / 60:.1f} min; "
             f"{len(doc['trials'])} trials, training time summed over them "
             f"{doc.get('train_seconds_total', 0.0) / 60:.1f} min (trials run in parallel)", ""]
    for table, title in (("table1", "Table 1: iso-accuracy (validation accuracy no lower than the baseline's)"),
                         ("table2", "Table 2: under 1 point of validation accuracy lost")):
        lines += [f"## {title}", "",
                  "| schedule | sigma_0 | epoch | val. acc. | test acc. (target) | hidden spikes/sample | reduction | synops/sample | energy/sample (nJ) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in doc[table]:
            if r["sigma0"] is None:
                lines.append(f"| {r['schedule']} | none | - | - | - | - | - | - | - |")
                continue
            lines.append(_table_line(r, r["schedule"]))
        cheap = doc.get(f"{table}_cheapest")
        if cheap is not None:
            lines.append(_table_line(cheap, f"cheapest passing: {cheap['schedule']}"))
        lines.append("")
    lines.append("'cheapest passing': beside the paper's largest-sigma_0 rule, the epoch of any trial with the "
                 "least dynamic energy on validation among those that keep the table's accuracy.")
    return "\n".join(lines)


def _table_line(r: dict, label: str) -> str:
    red = "" if r["schedule"] == "baseline" else f"{100 * r['hidden_spike_reduction']:.1f}%"
    return (f"| {label} | {r['sigma0']:.3g} | {r['epochs']} | {100 * r['val_accuracy']:.2f}% "
            f"| {100 * r['test_accuracy_target']:.2f}% | {r['hidden_spikes_per_sample']:.1f} | {red} "
            f"| {r['synops_per_sample']:.0f} | {1e9 * r['energy_per_sample_j']:.2f} |")


def plot_front(trials: list[dict], baseline: dict, tables: dict, path: Path) -> None:
    """Validation accuracy against hidden spikes per sample: every epoch of
    every trial (faint, by schedule), the rows the tables chose, the baseline."""
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    schedules = sorted({t["schedule"] for t in trials} - {"baseline"})
    colors = {s: f"C{i}" for i, s in enumerate(schedules)}
    for t in trials:
        if t["schedule"] == "baseline":
            continue
        ax.scatter([e["val_hidden_spikes"] for e in t["epochs"]], [100 * e["val_accuracy"] for e in t["epochs"]],
                   s=6, alpha=0.25, color=colors[t["schedule"]])
    for table, marker in (("table1", "s"), ("table2", "D")):
        for r in tables[table][1:]:
            if r["sigma0"] is not None:
                t = next(t for t in trials if t["schedule"] == r["schedule"] and f"{t['sigma0']:.3g}" == f"{r['sigma0']:.3g}")
                e = next(e for e in t["epochs"] if e["epoch"] == r["epochs"])
                ax.scatter([e["val_hidden_spikes"]], [100 * e["val_accuracy"]], marker=marker, s=60,
                           color=colors[r["schedule"]], edgecolor="black", zorder=4)
    for s in schedules:
        ax.scatter([], [], color=colors[s], label=s)
    ax.scatter([], [], marker="s", color="white", edgecolor="black", label="chosen, Table 1 (iso)")
    ax.scatter([], [], marker="D", color="white", edgecolor="black", label="chosen, Table 2 (< 1 point)")
    ax.scatter([baseline["val_hidden_spikes"]], [100 * baseline["val_accuracy"]], marker="*", s=250,
               color="black", label="baseline", zorder=5)
    ax.axhline(100 * baseline["val_accuracy"], color="black", lw=0.5, ls="--")
    ax.axhline(100 * baseline["val_accuracy"] - 1, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("hidden spikes per validation sample")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("every epoch of every trial (dashed: baseline; dotted: 1 point below)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
