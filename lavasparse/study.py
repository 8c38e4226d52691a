"""A table of networks trained from scratch under one protocol, each measured
on the target: the evidence behind a claim such as "energy-trained, latency-
coded and pruned, the network costs 10x less than the rate-coded baseline at
the same accuracy".

Rows come from a JSON file, a list of ``Row`` fields::

  [{"name": "rate-baseline", "baseline": true},
   {"name": "latency-energy", "encoding": "latency", "cost": "energy",
    "schedule": "alternating", "sigma0": 3e-4, "prune_density": [0.25, 1.0]},
   {"name": "imsnn", "synapse": "isi", "isi_rule": "imsnn"}]

With ``seeds`` (``--seeds 0 1 2 3 4``) every row trains once per seed, each
seed's rows are judged against the same seed's reference, and the tables show
the mean and spread over seeds (one run's figures do not hold on another
machine); the test input is the same for every seed (``seed``'s).

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
  rows/<name>/seed<k>/...      the same per seed, with ``seeds``
  test_input_<code>.npy, test_labels.npy
  tables.md, tables.json, energy_accuracy.png (energy on a log scale against test accuracy)
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from lavasparse.defaults import (BACKWARDS, DEFAULT_BACKWARD, DEFAULT_COST, DEFAULT_ENCODING, DEFAULT_SYNAPSE,
                                 ISI, ISI_RULES, STUDY_EXECUTOR, SYNAPSES, active_band_of)
from lavasparse.fileio import write_json, write_npy, write_text
from lavasparse.pipeline import RunSettings
from lavasparse.simulate.compare import plot_energy_accuracy, test_set_words
from lavasparse.simulate.evaluate import KeptEvaluations
from lavasparse.simulate.target_result import TargetEvaluation
from lavasparse.provenance import dirty_note, provenance
from lavasparse.sweep import TrialSettings, _run_trials
from lavasparse.train.selection import cheapest_passing, eligible_epochs, most_accurate


@dataclass(frozen=True)
class Row:
    """One network of the table: its input code, cost, schedule and sigma_0
    (``train/``'s names), optional pruning, its dense and conv layers' synapse (SLAYER's
    ``cuba`` or ISI-modulated ``isi`` with its backward rule,
    ``layers/isi.py``), and whether it is the reference."""

    name: str
    encoding: str = DEFAULT_ENCODING
    cost: str = DEFAULT_COST
    schedule: str = "baseline"
    sigma0: float = 0.0
    prune_density: tuple[float, ...] | None = None
    baseline: bool = False
    epochs: int | None = None   # None: the study's; the learning rate's cosine runs over a row's own epochs
    synapse: str = DEFAULT_SYNAPSE
    isi_rule: str = ISI["rule"]
    backward: str = DEFAULT_BACKWARD   # SLAYER's backward, or 'sparse' (train/sparse_backward.py)
    active_band: float | None = None   # the sparse backward's band; None: ACTIVE_BAND (none with SLAYER's)
    tau_grad: float | None = None      # the surrogate's width; None: the study's

    @property
    def model(self) -> str:
        """The network's kind in Adams et al.'s terms: 'snn' (SLAYER's synapse),
        'imsnn', 'imsnnc' or 'isi-bptt' (ISI-modulated, by backward rule)."""
        if self.synapse != "isi":
            return "snn"
        return "isi-bptt" if self.isi_rule == "bptt" else self.isi_rule

    def __post_init__(self):
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"row {self.name!r}: epochs must be a positive whole number, got {self.epochs!r}")
        if self.synapse not in SYNAPSES:
            raise ValueError(f"row {self.name!r}: unknown synapse {self.synapse!r}: expected one of {SYNAPSES}")
        if self.isi_rule not in ISI_RULES:
            raise ValueError(f"row {self.name!r}: unknown ISI rule {self.isi_rule!r}: expected one of {ISI_RULES}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"row {self.name!r}: unknown backward {self.backward!r}: expected one of {BACKWARDS}")
        object.__setattr__(self, "active_band", active_band_of(self.backward, self.active_band))   # frozen

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
    seeds: tuple[int, ...] = ()    # empty: one run per row, with ``seed``

    def __post_init__(self):
        super().__post_init__()
        self.check_executor()
        self.rows = tuple(r if isinstance(r, Row) else Row.from_dict(r) for r in self.rows)
        self.seeds = tuple(int(s) for s in self.seeds)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must differ: {list(self.seeds)}")

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


def _seeds(config: StudyConfig) -> tuple[int | None, ...]:
    """The seeds each row trains with; None: the study's one ``seed``, in the row's own folder."""
    return config.seeds or (None,)


def _row_dir(out: Path, row: Row, seed: int | None = None) -> Path:
    """A row's run folder: rows/<name>, or rows/<name>/seed<k> with seeds;
    a study that gains seeds keeps its one run in rows/<name> for the seed
    it trained with."""
    folder = out / "rows" / row.name
    if seed is None:
        return folder
    single = folder / "config.json"
    if single.exists() and json.loads(single.read_text()).get("seed") == seed:
        return folder
    return folder / f"seed{seed}"


def _spec(config: StudyConfig, out: Path, row: Row, seed: int | None) -> dict:
    settings = replace(config, synapse=row.synapse, isi_rule=row.isi_rule, backward=row.backward,
                       active_band=row.active_band, tau_grad=config.tau_grad if row.tau_grad is None else row.tau_grad,
                       seed=config.seed if seed is None else seed)
    train = settings.train_config(row.name, row.schedule, row.sigma0, None, row.encoding, row.cost, row.prune_density)
    train.keep_epochs = True   # each row is judged by an epoch chosen on validation
    train.epochs = row.epochs_of(config.epochs)
    return {"run_dir": str(_row_dir(out, row, seed)), "train": train.to_dict(), "threads": config.cpus_per_trial}


def _trial_name(row: Row, seed: int | None) -> str:
    return row.name if seed is None else f"{row.name} seed {seed}"


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


def _settings_of(saved: dict) -> dict:
    """A study.json's settings but its rows and seeds, as this code reads
    them: fields it lacks at their defaults, each setting canonical."""
    names = {f.name for f in fields(StudyConfig)} - {"rows", "seeds"}
    settings = {k: v for k, v in saved.items() if k in names}
    config = StudyConfig(**settings, rows=saved["rows"])   # the rows only to build it: compared apart
    return json.loads(json.dumps({k: v for k, v in asdict(config).items() if k in names}))


def run_study(config: StudyConfig, out: str | Path, command: str | None = None, progress: bool = True) -> dict:
    """Train every row (resumable), evaluate each chosen epoch on the target,
    write tables.md and tables.json; returns the JSON document."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps(asdict(config)))
    saved = out / "study.json"
    if saved.exists():
        old = json.loads(saved.read_text())
        # rows and seeds may be added (or a table made of some of them); every other setting must match,
        # a setting saved before it existed holding its default
        same = _settings_of(old) == _settings_of(settings)
        kept = {r.name: r for r in config.rows}
        # as Rows: a study saved before a Row field existed holds that field's default
        if not same or any(kept.get(r["name"], row) != row for r in old["rows"] for row in [Row.from_dict(r)]):
            raise ValueError(f"{saved}: this folder holds a study with other settings or rows; use a new folder, "
                             f"or the same settings (rows and seeds may be added) to resume")
    write_json(saved, settings)
    t0 = time.time()
    origin = provenance()   # the code that trains is the code checked out now
    # seed by seed: a study stopped early has every row on its first seeds
    trials = [(r, seed) for seed in _seeds(config) for r in config.rows]
    todo = [(r, seed) for r, seed in trials if not (_row_dir(out, r, seed) / "result.json").exists()]
    if todo:
        if progress:
            print(f"== training {len(todo)} runs ({config.executor}, {config.cpus_per_trial} core(s) each): "
                  + ", ".join(_trial_name(r, seed) for r, seed in todo), flush=True)
        _run_trials([_spec(config, out, r, seed) for r, seed in todo], config, out, None, 0)
    results = {(r.name, seed): json.loads((_row_dir(out, r, seed) / "result.json").read_text()) for r, seed in trials}

    inputs, labels = {}, None
    for enc in sorted({r.encoding for r in config.rows}):
        inputs[enc], labels = config.test_input(enc)
        write_npy(out / f"test_input_{enc}.npy", inputs[enc])
    write_npy(out / "test_labels.npy", labels)

    kept = {enc: KeptEvaluations(x, labels, config.engine, config.cross_check, config.energy_profile, progress)
            for enc, x in inputs.items()}
    ref = config.reference
    runs: dict[str, list[dict]] = {r.name: [] for r in config.rows}
    for seed in _seeds(config):
        ref_pick = choose_epoch(ref, results[(ref.name, seed)]["epochs"], None)
        seed_rows = []
        for row in config.rows:
            result = results[(row.name, seed)]
            pick = ref_pick if row.baseline else choose_epoch(row, result["epochs"], ref_pick["val_accuracy"])
            epoch, folder = pick["epoch"], _row_dir(out, row, seed)
            ev = kept[row.encoding].get(folder, f"epochs/{epoch:03d}", folder / f"eval-epoch{epoch:03d}",
                                        f"{_trial_name(row, seed)}, epoch {epoch}")
            epochs = row.epochs_of(config.epochs)
            seed_rows.append({**_table_row(config, row, pick, ev), **_training_figures(folder),
                              "seed": config.seed if seed is None else seed, "epochs": epochs,
                              "trained_at_commit": result.get("commit")})
        base = next(r for r in seed_rows if r["baseline"])   # each seed against its own reference
        for r in seed_rows:
            r["energy_reduction_x"] = base["energy_per_sample_j"] / r["energy_per_sample_j"]
            r["energy_dynamic_reduction_x"] = base["energy_dynamic_per_sample_j"] / r["energy_dynamic_per_sample_j"]
            runs[r["name"]].append(r)
    rows = [over_seeds(runs[r.name]) for r in config.rows]
    doc = {"dataset": config.dataset, "arch": config.arch, "epochs": config.epochs, "steps": config.steps,
           "seeds": [r["seed"] for r in runs[ref.name]],
           "test_samples": int(len(labels)), "test_draws": config.test_draws, "energy_profile": config.energy_profile,
           "rule": "reference: most accurate epoch on validation; other rows: the epoch with the least dynamic "
                   "energy on validation among those with validation accuracy >= the reference's (iso)"
                   + (", each seed against the same seed's reference; figures are means over seeds"
                      if len(config.seeds) > 1 else ""),
           "command": command, **origin, "seconds": time.time() - t0,
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


def _table_row(config: StudyConfig, row: Row, pick: dict, ev: TargetEvaluation) -> dict:
    p = ev.profile
    ps = p.per_sample
    first = next(l for l in p.layers if l.density is not None)
    return {"name": row.name, "model": row.model, "baseline": row.baseline, "encoding": row.encoding,
            "arch": replace(config, synapse=row.synapse).net_config().arch, "steps": config.steps,
            "synapse": row.synapse, "isi_rule": row.isi_rule if row.synapse == "isi" else None,
            "backward": row.backward, "active_band": row.active_band, "readout": config.readout,
            "tau_grad": config.tau_grad if row.tau_grad is None else row.tau_grad,
            "cost": row.cost if row.sigma0 > 0 else None, "schedule": row.schedule, "sigma0": row.sigma0,
            "prune_density": list(row.prune_density) if row.prune_density else None,
            "epoch": pick["epoch"], "iso_accuracy": pick["iso"], "val_accuracy": pick["val_accuracy"],
            "test_accuracy_target": ev.accuracy_target, "test_accuracy_float": ev.accuracy_float,
            "hidden_spikes_per_sample": p.hidden_spikes_per_sample,
            # Adams et al.'s measure: spikes per neuron of each hidden layer, per sample
            "spikes_per_neuron": [l.spikes / (p.samples * l.neurons) for l in p.layers[:-1]],
            "input_spikes_per_sample": p.input_spikes / p.samples,
            "synops_per_sample": ps.synops, "ann_macs": ps.ann_macs,
            "synops_fraction_of_ann_macs": ps.synops / ps.ann_macs,
            "energy_per_sample_j": ps.energy_j, "energy_dynamic_per_sample_j": ps.energy_dynamic_j,
            "energy_static_per_sample_j": ps.energy_static_j,
            "first_layer_density": first.density, "density_per_layer": [l.density for l in p.layers],
            "engine": ev.engine, "cross_checked_on_lava": ev.agreement.cross_checked_on_lava,
            "identical_to_slayer": ev.agreement.identical_to_slayer}


def _training_figures(folder: Path) -> dict:
    """How the run trained, from its metrics.jsonl: seconds per epoch (with
    the others running beside it), and with the sparse backward each hidden
    layer's active fraction and gradient cosine, averaged over the epochs
    that have one."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    figures = {"train_seconds_per_epoch": statistics.fmean(r["seconds"] for r in records)}
    for key in ("active_fraction", "gradient_cosine"):
        layers = [r[key] for r in records if r.get(key)]
        if layers and all(len(v) == len(layers[0]) for v in layers):
            columns = [[v for v in column if v is not None] for column in zip(*layers)]
            figures[key] = [statistics.fmean(c) for c in columns if c]   # hidden layers (the output has none)
    return figures


# The figures whose spread over seeds the tables show.
SPREAD = ("val_accuracy", "test_accuracy_target", "hidden_spikes_per_sample", "synops_per_sample",
          "energy_per_sample_j", "energy_reduction_x")


def over_seeds(runs: list[dict]) -> dict:
    """One table row from a row's runs on each seed (``_table_row``'s dicts
    with ``seed``): numbers are means (lists of numbers element-wise),
    ``epoch`` the list of chosen epochs, a flag true only where it is on
    every seed (``iso_accuracy``: ``iso_seeds`` counts them), ``spread`` the
    standard deviation, min and max of ``SPREAD``, ``per_seed`` every run.
    Ratios (``energy_reduction_x``) are means of each seed's ratio, not the
    ratio of the means."""
    row = {"seeds": [r["seed"] for r in runs]}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if key == "seed":
            continue
        if key == "epoch":
            row[key] = values if len(runs) > 1 else first
        elif key == "iso_accuracy":
            row[key] = all(values)
            row["iso_seeds"] = sum(bool(v) for v in values)
        elif all(v == first for v in values):   # names, settings, anything the seeds agree on
            row[key] = first
        elif all(isinstance(v, bool) for v in values):   # a flag: true only where true on every seed
            row[key] = False
        elif all(isinstance(v, (int, float)) for v in values):
            row[key] = statistics.fmean(values)
        elif isinstance(first, list) and all(isinstance(v, list) and len(v) == len(first) for v in values) \
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for v in values for x in v):
            row[key] = [statistics.fmean(column) for column in zip(*values)]
        else:
            row[key] = values
    if len(runs) > 1:
        row["spread"] = {k: {"std": statistics.stdev(vals), "min": min(vals), "max": max(vals)}
                         for k in SPREAD if k in runs[0] for vals in [[r[k] for r in runs]]}
        row["per_seed"] = runs
    return row


def _readout_words(doc: dict) -> str:
    """How the class is read, where it is not the output spike counts."""
    if doc.get("settings", {}).get("readout", "spikes") == "spikes":
        return ""
    return ("Readout: the output layer's potential at the end of each sample (a layer that never spikes; "
            "cross-entropy over the potentials in training). ")


def tables_markdown(doc: dict) -> str:
    base = next(r for r in doc["rows"] if r["baseline"])
    seeds = doc.get("seeds") or []
    over = (f"Figures are means over seeds {', '.join(map(str, seeds))} (± their standard deviation; "
            "each seed judged against its own reference; `iso` counts the seeds that kept it; 'vs baseline' is "
            "the mean of each seed's ratio). ") if len(seeds) > 1 else ""
    lines = [f"# {doc['dataset']} {doc['arch']}: what each network costs on the target", "",
             f"Every row trained from scratch with the same settings, for {doc['epochs']} epochs unless its "
             f"epoch column says otherwise (chosen epoch / epochs trained); test set "
             f"{test_set_words(doc['test_samples'], doc.get('test_draws', 1))} on the target (engine per row, "
             f"identical to SLAYER spike for spike (and in the readout's final potentials) where marked). "
             f"Energy profile `{doc['energy_profile']}`. {_readout_words(doc)}Rule: {doc['rule']}. {over}"
             f"ANN MACs of this architecture: {base['ann_macs']:,}.", "",
             f"Command: `{doc['command']}`  ", f"Commit: {doc['commit']}{dirty_note(doc['dirty'])}  ",
             f"Machine: {doc['machine']}; training time summed over rows "
             f"{doc['train_seconds_total'] / 60:.0f} min (rows run in parallel)", "",
             "| row | model | input | cost | sigma_0 | prune | epoch | iso | val. acc. | test acc. (target) "
             "| input spikes | hidden spikes | spikes per hidden neuron | synops | synops / ANN MACs | layer-1 density "
             "| dynamic (nJ) | static (nJ) | energy (nJ) | vs baseline |",
             "|---|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        prune = ",".join(f"{d:g}" for d in r["prune_density"]) if r["prune_density"] else "-"
        iso = ("yes" if r["iso_accuracy"] else "NO") + (f" ({r['iso_seeds']}/{len(r['seeds'])})"
                                                         if len(r.get("seeds", [])) > 1 else "")
        epoch = r["epoch"] if isinstance(r["epoch"], int) else ",".join(map(str, r["epoch"]))
        per_neuron = ", ".join(f"{v:.3f}" for v in r.get("spikes_per_neuron", []))
        lines.append(
            f"| {r['name']}{' (reference)' if r['baseline'] else ''} | {r.get('model', 'snn')} | {r['encoding']} "
            f"| {r['cost'] or '-'} | {r['sigma0']:.3g} | {prune} | {epoch}{_of_epochs(r, doc['epochs'])} | {iso} "
            f"| {_pm(r, 'val_accuracy', 100, '.2f', '%')} | {_pm(r, 'test_accuracy_target', 100, '.2f', '%')} "
            f"| {r['input_spikes_per_sample']:.1f} | {_pm(r, 'hidden_spikes_per_sample', 1, '.1f')} | {per_neuron} "
            f"| {_pm(r, 'synops_per_sample', 1, ',.0f')} | {100 * r['synops_fraction_of_ann_macs']:.1f}% "
            f"| {100 * r['first_layer_density']:.1f}% | {1e9 * r['energy_dynamic_per_sample_j']:,.1f} "
            f"| {1e9 * r['energy_static_per_sample_j']:,.1f} | {_pm(r, 'energy_per_sample_j', 1e9, ',.1f')} "
            f"| {'-' if r['baseline'] else _times_less(r['energy_reduction_x'])} |")
    trained = [r for r in doc["rows"] if "train_seconds_per_epoch" in r]
    if any(r.get("backward", "dense") != "dense" or r.get("tau_grad") != trained[0].get("tau_grad") for r in trained):
        lines += ["", "How each row trained (the sparse backward's figures per hidden layer, averaged over epochs; "
                  "seconds per epoch with other trainings running beside it):", "",
                  "| row | backward | active band (thresholds) | surrogate tau_grad | active fraction | "
                  "gradient cosine (sparse vs SLAYER's) | s per epoch |", "|---|---|---:|---:|---|---|---:|"]
        for r in trained:
            band = f"{r['active_band']:g}" if r.get("active_band") is not None else "-"
            active = ", ".join(f"{100 * v:.2f}%" for v in r.get("active_fraction", [])) or "-"
            cosine = ", ".join(f"{v:.3f}" for v in r.get("gradient_cosine", [])) or "-"
            tau = f"{r['tau_grad']:g}" if r.get("tau_grad") is not None else "-"
            lines.append(f"| {r['name']} | {r.get('backward', 'dense')} | {band} | {tau} "
                         f"| {active} | {cosine} | {r['train_seconds_per_epoch']:.1f} |")
    lines += ["", "![energy against accuracy](energy_accuracy.png)"]
    return "\n".join(lines) + "\n"


def _pm(row: dict, key: str, scale: float, fmt: str, unit: str = "") -> str:
    """A table cell: the row's figure, '± std' over seeds where it has a spread."""
    text = f"{scale * row[key]:{fmt}}{unit}"
    spread = row.get("spread", {}).get(key)
    return text if spread is None else f"{text} ± {scale * spread['std']:{fmt}}"


def _of_epochs(row: dict, study_epochs: int) -> str:
    """' of 12' where a row trained for other epochs than the study's."""
    trained = row.get("epochs", row.get("epochs_trained", study_epochs))   # epochs_trained: tables before 2026-11-24
    return f" of {trained}" if trained != study_epochs else ""


def _times_less(x: float) -> str:
    """'14.2x less', or for a dearer row '7.5% more' (not '0.9x less')."""
    return f"{x:.1f}x less" if x >= 1 else f"{100 * (1 / x - 1):.1f}% more"
