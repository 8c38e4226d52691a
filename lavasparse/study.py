"""A table of networks trained from scratch under one protocol, each measured
on the target: the evidence behind a claim such as "energy-trained, latency-
coded and pruned, the network costs 10x less than the rate-coded baseline at
the same accuracy".

Rows come from a JSON file, a list of ``Row`` fields::

  [{"name": "rate-baseline", "baseline": true},
   {"name": "latency-energy", "encoding": "latency", "cost": "energy",
    "schedule": "alternating", "sigma0": 3e-4, "prune_density": [0.25, 1.0]}]

Every row trains from scratch with the shared settings (``RunSettings``),
for the study's epochs unless the row names its own; trials run two at a
time on a 2-core machine (``TrialSettings``) and resume where they stopped; rows may be added to a study and only they
train. Each row is then judged by one epoch, chosen
on validation: the reference row (``baseline``) by its most accurate epoch,
every other row by its cheapest epoch (dynamic energy on validation) whose
validation accuracy is no lower than the reference's (iso-accuracy); a row
with no such epoch shows its most accurate one, marked as not iso-accurate.
That epoch runs the test set on the target (the emulator, cross-checked on
Lava), and ``tables.md``/``tables.json`` record the figures with the command,
commit and machine.

Output folder:
  study.json                   the settings and rows
  rows/<name>/                 training run folders (every epoch kept) + result.json
  rows/<name>/eval-epochNNN/   the chosen epoch on the target (network.net, profile.json, evaluation.json)
  test_input_<code>.npy, test_labels.npy
  tables.md, tables.json, energy_accuracy.png (energy on a log scale against test accuracy)
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lavasparse.defaults import DEFAULT_COST, DEFAULT_ENCODING, STUDY_EXECUTOR
from lavasparse.fileio import write_json, write_npy, write_text
from lavasparse.pipeline import RunSettings
from lavasparse.simulate.compare import plot_energy_accuracy, test_set_words
from lavasparse.simulate.evaluate import KeptEvaluations
from lavasparse.simulate.target_result import TargetEvaluation
from lavasparse.sweep import TrialSettings, _dirty_note, _provenance, _run_trials
from lavasparse.train.selection import cheapest_passing, eligible_epochs, most_accurate


@dataclass(frozen=True)
class Row:
    """One network of the table: its input code, cost, schedule and sigma_0
    (``train/``'s names), optional pruning, and whether it is the reference."""

    name: str
    encoding: str = DEFAULT_ENCODING
    cost: str = DEFAULT_COST
    schedule: str = "baseline"
    sigma0: float = 0.0
    prune_density: tuple[float, ...] | None = None
    baseline: bool = False
    epochs: int | None = None   # None: the study's; the learning rate's cosine runs over a row's own epochs

    def __post_init__(self):
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"row {self.name!r}: epochs must be a positive whole number, got {self.epochs!r}")

    def epochs_of(self, study_epochs: int) -> int:
        """The epochs this row trains for in a study of ``study_epochs``."""
        return self.epochs or study_epochs

    @classmethod
    def from_dict(cls, d: dict) -> "Row":
        d = dict(d)
        if d.get("prune_density") is not None:
            d["prune_density"] = tuple(d["prune_density"])
        return cls(**d)


@dataclass
class StudyConfig(RunSettings, TrialSettings):
    rows: tuple[Row, ...] = field(default_factory=tuple)
    executor: str = STUDY_EXECUTOR

    def __post_init__(self):
        super().__post_init__()
        self.check_executor()
        self.rows = tuple(r if isinstance(r, Row) else Row.from_dict(r) for r in self.rows)
        refs = [r.name for r in self.rows if r.baseline]
        if len(refs) != 1:
            raise ValueError(f"a study needs exactly one row with baseline: true, found {refs or 'none'}")
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"row names must differ: {names}")

    @property
    def reference(self) -> Row:
        return next(r for r in self.rows if r.baseline)


def load_rows(path: str | Path) -> tuple[Row, ...]:
    """The rows of a JSON file (a list of Row fields); errors name the file and row."""
    path = Path(path)
    try:
        items = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of rows")
    rows = []
    for i, item in enumerate(items):
        try:
            rows.append(Row.from_dict(item))
        except TypeError as e:
            raise ValueError(f"{path}: row {i}: {e}") from None
    return tuple(rows)


def _row_dir(out: Path, row: Row) -> Path:
    return out / "rows" / row.name


def _spec(config: StudyConfig, out: Path, row: Row) -> dict:
    train = config.train_config(row.name, row.schedule, row.sigma0, None, row.encoding, row.cost, row.prune_density)
    train.keep_epochs = True   # each row is judged by an epoch chosen on validation
    train.epochs = row.epochs_of(config.epochs)
    return {"run_dir": str(_row_dir(out, row)), "train": train.to_dict(), "threads": config.cpus_per_trial}


def choose_epoch(row: Row, epochs: list[dict], reference_accuracy: float | None) -> dict:
    """The epoch a row is judged by (see the module doc), with ``iso``: whether
    it keeps the reference's validation accuracy."""
    if row.baseline:
        best = max(epochs, key=lambda e: (e["val_accuracy"], -e["epoch"]))
        return {**best, "iso": True}
    cands = eligible_epochs(epochs) if row.sigma0 > 0 else epochs
    pick = cheapest_passing(cands, reference_accuracy, 0.0, "val_energy_dynamic_j")
    if pick is not None:
        return {**pick, "iso": True}
    return {**most_accurate(cands), "iso": False}


def run_study(config: StudyConfig, out: str | Path, command: str | None = None, progress: bool = True) -> dict:
    """Train every row (resumable), evaluate each chosen epoch on the target,
    write tables.md and tables.json; returns the JSON document."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps(asdict(config)))
    saved = out / "study.json"
    if saved.exists():
        old = json.loads(saved.read_text())
        same = {k: v for k, v in old.items() if k != "rows"} == {k: v for k, v in settings.items() if k != "rows"}
        kept = {r.name: r for r in config.rows}
        # as Rows: a study saved before a Row field existed holds that field's default
        if not same or any(kept.get(r["name"], row) != row for r in old["rows"] for row in [Row.from_dict(r)]):
            raise ValueError(f"{saved}: this folder holds a study with other settings or rows; use a new folder, "
                             f"or the same settings (rows may be added) to resume")
    write_json(saved, settings)
    t0 = time.time()
    provenance = _provenance()   # the code that trains is the code checked out now
    todo = [r for r in config.rows if not (_row_dir(out, r) / "result.json").exists()]
    if todo:
        if progress:
            print(f"== training {len(todo)} rows ({config.executor}, {config.cpus_per_trial} core(s) each): "
                  + ", ".join(r.name for r in todo), flush=True)
        _run_trials([_spec(config, out, r) for r in todo], config, out, None, 0)
    results = {r.name: json.loads((_row_dir(out, r) / "result.json").read_text()) for r in config.rows}

    ref = config.reference
    ref_pick = choose_epoch(ref, results[ref.name]["epochs"], None)
    inputs, labels = {}, None
    for enc in sorted({r.encoding for r in config.rows}):
        inputs[enc], labels = config.test_input(enc)
        write_npy(out / f"test_input_{enc}.npy", inputs[enc])
    write_npy(out / "test_labels.npy", labels)

    kept = {enc: KeptEvaluations(x, labels, config.engine, config.cross_check, config.energy_profile, progress)
            for enc, x in inputs.items()}
    rows = []
    for row in config.rows:
        pick = ref_pick if row.baseline else choose_epoch(row, results[row.name]["epochs"], ref_pick["val_accuracy"])
        epoch = pick["epoch"]
        ev = kept[row.encoding].get(_row_dir(out, row), f"epochs/{epoch:03d}",
                                    _row_dir(out, row) / f"eval-epoch{epoch:03d}", f"{row.name}, epoch {epoch}")
        rows.append({**_table_row(row, pick, ev), "epochs_trained": row.epochs_of(config.epochs),
                     "trained_at_commit": results[row.name].get("commit")})
    base = next(r for r in rows if r["baseline"])
    for r in rows:
        r["energy_reduction_x"] = base["energy_per_sample_j"] / r["energy_per_sample_j"]
        r["energy_dynamic_reduction_x"] = base["energy_dynamic_per_sample_j"] / r["energy_dynamic_per_sample_j"]
    doc = {"dataset": config.dataset, "arch": config.arch, "epochs": config.epochs,
           "test_samples": int(len(labels)), "test_draws": config.test_draws, "energy_profile": config.energy_profile,
           "rule": "reference: most accurate epoch on validation; other rows: the epoch with the least dynamic "
                   "energy on validation among those with validation accuracy >= the reference's (iso)",
           "command": command, **provenance, "seconds": time.time() - t0,
           "train_seconds_total": sum(r.get("train_seconds", 0.0) for r in results.values()),
           "settings": settings, "rows": rows}
    write_json(out / "tables.json", doc)
    plot_energy_accuracy([{**r, "accuracy_target": r["test_accuracy_target"]} for r in rows],
                         out / "energy_accuracy.png", log_energy=True)
    md = tables_markdown(doc)
    write_text(out / "tables.md", md)
    if progress:
        print(md)
    return doc


def _table_row(row: Row, pick: dict, ev: TargetEvaluation) -> dict:
    p = ev.profile
    ps = p.per_sample
    first = next(l for l in p.layers if l.density is not None)
    return {"name": row.name, "baseline": row.baseline, "encoding": row.encoding,
            "cost": row.cost if row.sigma0 > 0 else None, "schedule": row.schedule, "sigma0": row.sigma0,
            "prune_density": list(row.prune_density) if row.prune_density else None,
            "epoch": pick["epoch"], "iso_accuracy": pick["iso"], "val_accuracy": pick["val_accuracy"],
            "test_accuracy_target": ev.accuracy_target, "test_accuracy_float": ev.accuracy_float,
            "hidden_spikes_per_sample": p.hidden_spikes_per_sample,
            "input_spikes_per_sample": p.input_spikes / p.samples,
            "synops_per_sample": ps.synops, "ann_macs": ps.ann_macs,
            "synops_fraction_of_ann_macs": ps.synops / ps.ann_macs,
            "energy_per_sample_j": ps.energy_j, "energy_dynamic_per_sample_j": ps.energy_dynamic_j,
            "energy_static_per_sample_j": ps.energy_static_j,
            "first_layer_density": first.density, "density_per_layer": [l.density for l in p.layers],
            "engine": ev.engine, "cross_checked_on_lava": ev.agreement.cross_checked_on_lava,
            "identical_to_slayer": ev.agreement.identical_spikes}


def tables_markdown(doc: dict) -> str:
    base = next(r for r in doc["rows"] if r["baseline"])
    lines = [f"# {doc['dataset']} {doc['arch']}: what each network costs on the target", "",
             f"Every row trained from scratch with the same settings, for {doc['epochs']} epochs unless its "
             f"epoch column says otherwise (chosen epoch / epochs trained); test set "
             f"{test_set_words(doc['test_samples'], doc.get('test_draws', 1))} on the target (engine per row, identical to SLAYER spike for spike "
             f"where marked). Energy profile `{doc['energy_profile']}`. Rule: {doc['rule']}. "
             f"ANN MACs of this architecture: {base['ann_macs']:,}.", "",
             f"Command: `{doc['command']}`  ", f"Commit: {doc['commit']}{_dirty_note(doc['dirty'])}  ",
             f"Machine: {doc['machine']}; training time summed over rows "
             f"{doc['train_seconds_total'] / 60:.0f} min (rows run in parallel)", "",
             "| row | input | cost | sigma_0 | prune | epoch | iso | val. acc. | test acc. (target) | input spikes "
             "| hidden spikes | synops | synops / ANN MACs | layer-1 density | dynamic (nJ) | static (nJ) "
             "| energy (nJ) | vs baseline |",
             "|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        prune = ",".join(f"{d:g}" for d in r["prune_density"]) if r["prune_density"] else "-"
        lines.append(
            f"| {r['name']}{' (reference)' if r['baseline'] else ''} | {r['encoding']} | {r['cost'] or '-'} "
            f"| {r['sigma0']:.3g} | {prune} | {r['epoch']}{_of_epochs(r, doc['epochs'])} | {'yes' if r['iso_accuracy'] else 'NO'} "
            f"| {100 * r['val_accuracy']:.2f}% | {100 * r['test_accuracy_target']:.2f}% "
            f"| {r['input_spikes_per_sample']:.1f} | {r['hidden_spikes_per_sample']:.1f} "
            f"| {r['synops_per_sample']:,.0f} | {100 * r['synops_fraction_of_ann_macs']:.1f}% "
            f"| {100 * r['first_layer_density']:.1f}% | {1e9 * r['energy_dynamic_per_sample_j']:,.1f} "
            f"| {1e9 * r['energy_static_per_sample_j']:,.1f} | {1e9 * r['energy_per_sample_j']:,.1f} "
            f"| {'-' if r['baseline'] else _times_less(r['energy_reduction_x'])} |")
    lines += ["", "![energy against accuracy](energy_accuracy.png)"]
    return "\n".join(lines) + "\n"


def _of_epochs(row: dict, study_epochs: int) -> str:
    """' of 12' where a row trained for other epochs than the study's."""
    trained = row.get("epochs_trained", study_epochs)
    return f" of {trained}" if trained != study_epochs else ""


def _times_less(x: float) -> str:
    """'14.2x less', or for a dearer row '7.5% more' (not '0.9x less')."""
    return f"{x:.1f}x less" if x >= 1 else f"{100 * (1 / x - 1):.1f}% more"
