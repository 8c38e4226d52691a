"""Training runs: an 80/20 train/validation split, the best checkpoint on
validation, per-epoch metrics, and a run folder that resumes after an interrupt.

Run folder layout:
  config.json     the TrainConfig (a restart must match it)
  metrics.jsonl   one JSON line per finished epoch (accuracy, loss parts,
                  spikes per layer, synaptic ops, dynamic energy, density)
  last.pt         model, optimiser, epoch and every epoch's record, written
                  atomically each epoch: the commit point the other files
                  are made consistent with on resume
  best.pt         the model state with the best validation accuracy so far
  epochs/NNN.pt   every epoch's model (keep_epochs)
  .lock           held while a process trains here (a second one is refused)
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lavasparse.defaults import (BATCH_SIZE, COSTS, DEFAULT_COST, DEFAULT_DATASET, DEFAULT_ENCODING,
                                 DEVICE, EPOCHS, GENERIC_DEFAULTS, LR_SCHEDULE, MAX_RATE, SEED, STEPS, VAL_FRACTION,
                                 dataset_lr)
from lavasparse.fileio import atomic_path, folder_lock, remove_stale_temporaries, write_json, write_text

from .data import load_dataset, train_val_split
from .device import resolve_device
from .cost import inference_cost
from .energy_weights import EnergyWeights
from .encode import LATENCY_WINDOW, InputCode, batch_seed, encode_batch
from .loss import SparsityLoss, output_rates
from .model import NetConfig, SpikingNet, parse_arch
from .prune import PruneSchedule, apply_masks, current_masks, prune_to_density, surviving_density, synaptic_blocks
from .schedules import SCHEDULES, sigma
from .sparse_backward import gradient_cosine


@dataclass
class TrainConfig:
    """Everything a training run depends on. Units: ``steps`` time steps per
    sample; ``max_rate`` spikes per step for a white pixel (rate code);
    ``sigma0`` loss per unit of ``cost`` per sample: per hidden spike
    (``spikes``, Allred et al.), per synaptic op (``synops``) or per nJ of
    dynamic energy (``energy``, with the figures in ``energy``)."""

    # Defaults: lavasparse/defaults.py, the generic ones where a dataset has its
    # own (RunSettings resolves those and passes every field).
    name: str = "baseline"
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    net: NetConfig = field(default_factory=NetConfig)
    steps: int = STEPS
    max_rate: float = MAX_RATE
    epochs: int = EPOCHS
    batch_size: int = BATCH_SIZE
    lr: float = dataset_lr(DEFAULT_DATASET, DEFAULT_ENCODING)
    lr_schedule: str = LR_SCHEDULE   # 'cosine' (to 0 over the run) or 'constant'
    schedule: str = "baseline"
    sigma0: float = 0.0
    seed: int = SEED
    val_fraction: float = VAL_FRACTION
    true_rate: float = GENERIC_DEFAULTS["true_rate"]
    false_rate: float = GENERIC_DEFAULTS["false_rate"]
    train_limit: int | None = None   # use only the first N training images (tests, smoke runs)
    # Start from this checkpoint's weights (fine-tuning), not at random. A
    # relative path is taken from the run folder, so that a folder of runs
    # (a sweep) can move.
    init_from: str | None = None
    keep_epochs: bool = False        # also save every epoch's weights (epochs/NNN.pt), to pick one later
    device: str = DEVICE
    encoding: str = DEFAULT_ENCODING   # input code of images: one of encode.ENCODINGS
    latency_window: int = LATENCY_WINDOW   # the latency code's spikes fall in the first this many steps
    cost: str = DEFAULT_COST         # what sigma weighs: one of cost.COSTS
    # J per operation of the report's energy profile: the energy cost's
    # figures, and what the validation energy is measured with (None: not measured).
    energy: EnergyWeights | None = None
    # Target density of surviving synapses per synaptic layer (prune.py); None: no pruning.
    prune_density: tuple[float, ...] | None = None
    # Validation runs each image through this many independent encodings
    # (rate draws, latency dithers) and averages: on a small set (digits: 287
    # images) one draw makes the choice of network a coin toss.
    val_draws: int = GENERIC_DEFAULTS["val_draws"]
    # Knowledge distillation: a trained run folder (relative paths from this
    # run's folder, as init_from) whose output spike rates, on the same images
    # in its own input code, the class loss also aims at, with weight
    # ``distill``: target = (1 - distill) x the label's rates + distill x the
    # teacher's. A cheap network (latency code, energy cost) learns what the
    # dearer baseline learnt, errors and confusions included.
    teacher: str | None = None
    distill: float = 0.0

    def __post_init__(self):
        if isinstance(self.energy, dict):
            self.energy = EnergyWeights(**self.energy)
        if self.prune_density is not None:
            self.prune_density = tuple(float(d) for d in self.prune_density)
        self.input_code   # checks the encoding
        if self.cost not in COSTS:
            raise ValueError(f"unknown cost {self.cost!r}: expected one of {COSTS}")
        if self.cost == "energy" and self.energy is None:
            raise ValueError("cost 'energy' needs the energy profile's figures (TrainConfig.energy)")
        if isinstance(self.net, dict):
            self.net = NetConfig(**self.net)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}: expected one of {SCHEDULES}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}: expected 'cosine' or 'constant'")
        if self.schedule == "baseline" and self.sigma0:
            raise ValueError("the baseline schedule takes no sigma0")
        if not 0.0 <= self.distill <= 1.0:
            raise ValueError(f"distill must be in [0, 1], got {self.distill!r}")
        if self.distill > 0 and not self.teacher:
            raise ValueError("distill > 0 needs a teacher (a trained run folder)")
        if self.distill > 0 and self.net.readout != "spikes":
            raise ValueError(f"distillation learns output spike rates: a {self.net.readout} readout has none")

    @property
    def input_code(self) -> InputCode:
        return InputCode(self.encoding, self.max_rate, self.latency_window)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**d)


def eval_seed(seed: int) -> int:
    """Encoding seed for validation and test: fixed, so that every epoch and
    every engine sees the same spikes."""
    return batch_seed(seed, 0, 0)  # training epochs count from 1, so epoch 0 is free


@torch.no_grad()
def evaluate(model: SpikingNet, data, steps: int, code: InputCode, seed: int,
             batch_size: int = 256, device: torch.device | str = "cpu",
             energy: EnergyWeights | None = None, draws: int = 1) -> dict:
    """Accuracy and what ``model`` costs on ``data``, as the target will count it.

    The input spikes are drawn with ``seed`` (see ``encode_batch``), or with
    ``draws`` seeds from it, each image once per draw; each layer's spikes are
    cut to its target window, and the class is the output neuron with most
    spikes, or the highest final potential with a potential readout
    (``SpikingNet.scores``; lowest index on ties, as numpy's argmax). Returns accuracy
    (fraction, over all draws), predictions (N,) of the first draw, and per
    image averaged over the draws: layer_spikes and layer_synops (totals per
    layer over the set) and, with ``energy``, energy_dynamic_j (total over
    the set).
    """
    model.eval()
    preds, totals = [], np.zeros(model.num_spiking_layers)
    synops, joules = np.zeros(model.num_spiking_layers), 0.0
    for draw in range(draws):
        spikes_in = encode_batch(data, None, model.specs[0].in_shape, steps, seed + draw, code)
        for start in range(0, len(data), batch_size):
            x = spikes_in[start:start + batch_size].to(device)
            out = model.windowed(model(x), steps)
            preds.append(model.scores(out).cpu().numpy().argmax(axis=1))
            cost = inference_cost(model, x, out)
            totals += cost.spikes.sum(dim=0).cpu().double().numpy() / draws
            synops += cost.synops.sum(dim=0).cpu().double().numpy() / draws
            if energy is not None:
                joules += 1e-9 * float(cost.energy_nj(energy).double().sum()) / draws
    preds = np.concatenate(preds)
    result = {"accuracy": float((preds == np.tile(data.labels, draws)).mean()), "predictions": preds[:len(data)],
              "layer_spikes": totals, "layer_synops": synops}
    if energy is not None:
        result["energy_dynamic_j"] = joules
    return result


def train(config: TrainConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Train (or resume) the run in ``run_dir``; returns the best epoch's record.

    A run folder whose config.json differs from ``config`` is refused rather
    than silently mixed, and so is a folder another process is training in
    (FolderBusy). Temporary files a killed run left are removed first.
    """
    run_dir = Path(run_dir)
    with folder_lock(run_dir, "training run"):
        remove_stale_temporaries(run_dir)
        return _train(config, run_dir, progress)


@dataclass
class _Run:
    """What a training run carries from one epoch to the next."""
    model: SpikingNet
    optimizer: torch.optim.Optimizer
    lr_schedule: torch.optim.lr_scheduler.LRScheduler
    loss_fn: SparsityLoss
    teacher: Teacher | None
    pruning: PruneSchedule | None
    start_epoch: int = 1
    best: dict | None = None
    records: list[dict] = field(default_factory=list)
    masks: list | None = None
    gradient_cosine: list | None = None   # the sparse backward's, on the epoch's first batch


def _train(config: TrainConfig, run_dir: Path, progress: bool) -> dict:
    claim_run_folder(config, run_dir)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    train_set, val_set = _split_data(config)
    run = _build(config, run_dir, device)
    _resume(run, config, run_dir, device, progress)
    val_seed = eval_seed(config.seed)
    for epoch in range(run.start_epoch, config.epochs + 1):
        t0 = time.time()
        s = sigma(config.schedule, config.sigma0, epoch, config.epochs)
        if run.pruning and run.pruning.start <= epoch <= run.pruning.end:
            run.masks = prune_to_density(run.model, run.pruning.density_at(epoch))
        sums = _train_epoch(run, config, train_set, epoch, s, device, progress)
        run.lr_schedule.step()
        val = evaluate(run.model, val_set, config.steps, config.input_code, val_seed, device=device,
                       energy=config.energy, draws=config.val_draws)
        record = _epoch_record(run.model, epoch, s, sums / len(train_set), val, len(val_set), time.time() - t0)
        if run.model.backward_mode == "sparse":
            record["active_fraction"] = run.model.active_fractions()
            record["gradient_cosine"] = run.gradient_cosine
        _commit_epoch(run, config, run_dir, epoch, record)
        if progress:
            print(f"[{config.name}] epoch {epoch:3d}/{config.epochs}  sigma={s:.2e}  "
                  f"loss={record['train_loss']:.4f}  train={record['train_accuracy']:.3f}  "
                  f"val={record['val_accuracy']:.3f}  hidden spikes/sample={record['val_hidden_spikes']:.1f}  "
                  f"synops/sample={record['val_synops']:.0f}"
                  f"{'  *best' if run.best is record else ''}", flush=True)
    return run.best


def claim_run_folder(config: TrainConfig, run_dir: Path) -> None:
    """Write config.json, or check that the folder's is this run's (resuming)."""
    cfg_path = run_dir / "config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if _comparable(old, run_dir) != _comparable(config.to_dict(), run_dir):
            raise ValueError(f"{cfg_path}: the run folder holds another configuration; "
                             f"use a new folder or the same settings to resume")
    else:
        write_json(cfg_path, config.to_dict())


def _split_data(config: TrainConfig):
    """The training and validation sets (``val_fraction`` of the training set, by seed)."""
    train_full, _ = load_dataset(config.dataset, config.data_dir)
    if config.train_limit:
        train_full = train_full.subset(np.arange(min(config.train_limit, len(train_full))))
    sample_shape = tuple(train_full.shape) if hasattr(train_full, "shape") else tuple(train_full.images.shape[1:])
    in_shape = parse_arch(config.net.arch)[0].in_shape
    if int(np.prod(sample_shape)) != int(np.prod(in_shape)):
        raise ValueError(f"architecture {config.net.arch} takes {in_shape} inputs, but {config.dataset} samples "
                         f"are {sample_shape}")
    tr_idx, va_idx = train_val_split(len(train_full), config.val_fraction, config.seed)
    return train_full.subset(tr_idx), train_full.subset(va_idx)


def _build(config: TrainConfig, run_dir: Path, device) -> _Run:
    """The network (from ``init_from`` when given), its optimiser, learning
    rate schedule, loss, teacher and pruning schedule."""
    model = SpikingNet(config.net).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    # Stepped once per epoch; a decaying rate makes the last epochs, where the
    # best checkpoint usually lies, far less noisy.
    lr_sched = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
                if config.lr_schedule == "cosine" else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0))
    loss_fn = SparsityLoss(config.true_rate, config.false_rate, config.cost, config.energy, config.distill,
                           config.net.readout).to(device)
    # A teacher only where its rates enter the loss (distill > 0).
    teacher = Teacher.load(_init_path(config.teacher, run_dir), device) if config.teacher and config.distill > 0 else None
    pruning = PruneSchedule.for_run(config.prune_density, config.epochs) if config.prune_density else None
    if config.init_from:
        state = torch.load(_init_path(config.init_from, run_dir), map_location=device)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ValueError(f"{config.init_from}: does not fit architecture {config.net.arch} ({e})") from None
    return _Run(model, optimizer, lr_sched, loss_fn, teacher, pruning)


def _resume(run: _Run, config: TrainConfig, run_dir: Path, device, progress: bool) -> None:
    """Carry on from last.pt when the folder has one (rebuilding the files a
    run killed after it left behind), else start the folder afresh."""
    last_path = run_dir / "last.pt"
    if last_path.exists():
        state = torch.load(last_path, map_location=device)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.lr_schedule.load_state_dict(state["lr_schedule"])
        run.start_epoch, run.best = state["epoch"] + 1, state["best"]
        run.records = _restore_run_folder(run_dir, state, config)
        if progress:
            print(f"[{config.name}] resuming at epoch {run.start_epoch} of {config.epochs}")
    else:
        _restore_run_folder(run_dir, None, config)
    if run.pruning and run.start_epoch > run.pruning.start:
        run.masks = current_masks(run.model)


def _train_epoch(run: _Run, config: TrainConfig, train_set, epoch: int, s: float, device,
                 progress: bool) -> np.ndarray:
    """One pass over the training set at cost weight ``s``; returns the sums
    over its samples of loss, class loss, cost and correct predictions."""
    model = run.model
    model.train()
    order = np.random.default_rng([config.seed, epoch]).permutation(len(train_set))
    sums = np.zeros(4)
    n_batches = (len(order) + config.batch_size - 1) // config.batch_size
    bar = tqdm(range(n_batches), desc=f"[{config.name}] epoch {epoch}/{config.epochs}",
               leave=False, disable=None if progress else True, unit="batch")
    for b in bar:
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        seed = batch_seed(config.seed, epoch, b)
        x = encode_batch(train_set, idx, model.specs[0].in_shape, config.steps, seed, config.input_code).to(device)
        y = torch.as_tensor(train_set.labels[idx], device=device)
        rates = run.teacher.rates(train_set, idx, seed, x, config) if run.teacher else None

        def batch_loss():
            out = model.windowed(model(x), config.steps)
            # The spike count alone (Allred et al.) needs no fan-out: skip it there.
            return out, (run.loss_fn(out, y, s, teacher_rates=rates) if config.cost == "spikes"
                         else run.loss_fn(out, y, s, model, x, teacher_rates=rates))

        if b == 0 and model.backward_mode == "sparse":   # how far the sparse gradient is from SLAYER's
            run.gradient_cosine = gradient_cosine(model, lambda: batch_loss()[1][0])
        out, (loss, l_class, count, _) = batch_loss()
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        if run.masks is not None:
            apply_masks(model, run.masks)
        correct = (model.scores(out).argmax(1) == y).float().sum().item()
        sums += [loss.item() * len(idx), l_class.item() * len(idx), count.item() * len(idx), correct]
        bar.set_postfix(loss=f"{sums[0] / max(1, (b + 1) * config.batch_size):.3f}")
    bar.close()
    return sums


def _epoch_record(model: SpikingNet, epoch: int, s: float, train_means: np.ndarray, val: dict, n_val: int,
                  seconds: float) -> dict:
    """The epoch's line of metrics.jsonl: training means per sample, and
    validation accuracy and cost per image (``evaluate``'s result)."""
    record = {
        "epoch": epoch, "sigma": s,
        "train_loss": train_means[0], "train_class_loss": train_means[1],
        "train_cost": train_means[2], "train_accuracy": train_means[3],
        "val_accuracy": val["accuracy"],
        "val_spikes_per_layer": (val["layer_spikes"] / n_val).tolist(),
        "val_hidden_spikes": float(val["layer_spikes"][:-1].sum() / n_val),
        "val_synops_per_layer": (val["layer_synops"] / n_val).tolist(),
        "val_synops": float(val["layer_synops"].sum() / n_val),
        "density": [surviving_density(b) for b in synaptic_blocks(model)],
        "seconds": seconds,
    }
    if "energy_dynamic_j" in val:
        record["val_energy_dynamic_j"] = val["energy_dynamic_j"] / n_val
    return record


def _commit_epoch(run: _Run, config: TrainConfig, run_dir: Path, epoch: int, record: dict) -> None:
    """Keep the epoch: last.pt first, as it is the epoch's commit point and
    holds what the other files are rebuilt from if the process dies after it
    (``_restore_run_folder``), then best.pt, metrics.jsonl and the rest."""
    if run.best is None or _better(record, run.best):
        run.best = record
    run.records.append(record)
    with atomic_path(run_dir / "last.pt") as tmp:
        torch.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                    "lr_schedule": run.lr_schedule.state_dict(), "epoch": epoch, "best": run.best,
                    "records": run.records}, tmp)
    _write_epoch_files(run_dir, run.model.state_dict(), epoch, run.best, run.records, config)


def _init_path(init_from: str, run_dir: Path) -> Path:
    return (run_dir / init_from).resolve()   # an absolute init_from stays as it is


def _comparable(config: dict, run_dir: Path) -> dict:
    """A config as a restart compares it: with the defaults of fields added
    since it was written, and init_from and teacher as the paths they name."""
    config = json.loads(json.dumps(TrainConfig.from_dict(config).to_dict()))
    for key in ("init_from", "teacher"):
        if config.get(key):
            config[key] = str(_init_path(config[key], run_dir))
    return config


def _better(record: dict, best: dict) -> bool:
    """Higher validation accuracy wins; on a tie, fewer hidden spikes."""
    if record["val_accuracy"] != best["val_accuracy"]:
        return record["val_accuracy"] > best["val_accuracy"]
    return record["val_hidden_spikes"] < best["val_hidden_spikes"]


def _write_epoch_files(run_dir: Path, model_state: dict, epoch: int, best: dict, records: list[dict],
                       config: TrainConfig) -> None:
    """What follows an epoch's last.pt: best.pt when this epoch is the best,
    epochs/NNN.pt with ``keep_epochs``, and metrics.jsonl."""
    if best["epoch"] == epoch:
        save_best(run_dir, model_state, epoch, config)
    if config.keep_epochs:
        _save_epoch(run_dir, model_state, epoch)
    _write_metrics(run_dir, records)


def save_best(run_dir: Path, model_state: dict, epoch: int, config: TrainConfig) -> None:
    """best.pt, atomically: the weights, their epoch and the run's config."""
    with atomic_path(run_dir / "best.pt") as tmp:
        torch.save({"model": model_state, "epoch": epoch, "config": config.to_dict()}, tmp)


def _save_epoch(run_dir: Path, model_state: dict, epoch: int) -> None:
    with atomic_path(run_dir / "epochs" / f"{epoch:03d}.pt") as tmp:
        torch.save({"model": model_state, "epoch": epoch}, tmp)


def _write_metrics(run_dir: Path, records: list[dict]) -> None:
    """metrics.jsonl whole, atomically, from ``records``: its lines are always
    the committed epochs, once each."""
    write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))


def _restore_run_folder(run_dir: Path, state: dict | None, config: TrainConfig) -> list[dict]:
    """Make the run folder agree with its last checkpoint ``state`` (None: no
    epoch committed) after a crash anywhere in an epoch's writes; returns the
    committed epochs' records.

    - metrics.jsonl: exactly the committed epochs (a crash used to leave
      an epoch's line twice, or a line for an epoch that was then retrained);
    - best.pt, epochs/NNN.pt: rewritten from last.pt when the process died
      after last.pt but before them; epoch files past the checkpoint removed.
    A last.pt written before records were kept in it: metrics.jsonl is cut
    to its epochs instead."""
    last_epoch = state["epoch"] if state else 0
    for f in sorted((run_dir / "epochs").glob("*.pt")):
        if f.stem.isdigit() and int(f.stem) > last_epoch:
            f.unlink()
    if state is None:
        for f in (run_dir / "metrics.jsonl", run_dir / "best.pt"):
            f.unlink(missing_ok=True)
        return []
    records = state.get("records")
    if records is None:
        metrics = run_dir / "metrics.jsonl"
        logged = [json.loads(ln) for ln in (metrics.read_text().splitlines() if metrics.exists() else []) if ln]
        by_epoch = {r["epoch"]: r for r in logged}
        records = [by_epoch[e] for e in sorted(by_epoch) if e <= last_epoch]
    _write_metrics(run_dir, records)
    best_path = run_dir / "best.pt"
    if state["best"]["epoch"] == last_epoch and not (
            best_path.exists() and torch.load(best_path, map_location="cpu")["epoch"] == last_epoch):
        save_best(run_dir, state["model"], last_epoch, config)
    if config.keep_epochs and not (run_dir / "epochs" / f"{last_epoch:03d}.pt").exists():
        _save_epoch(run_dir, state["model"], last_epoch)
    return records


@dataclass
class Teacher:
    """A trained network whose output spike rates a student's class loss aims
    at (TrainConfig.teacher): it sees each batch's images in its own input
    code and steps."""

    model: SpikingNet
    config: TrainConfig
    device: torch.device | str

    @classmethod
    def load(cls, run_dir: Path, device) -> "Teacher":
        model, config = load_trained(run_dir, "best", device)
        if model.readout != "spikes":
            raise ValueError(f"{run_dir}: a {model.readout} readout has no output spike rates to distil")
        return cls(model, config, device)

    @torch.no_grad()
    def rates(self, data, index: np.ndarray, seed: int, student_x: torch.Tensor | None = None,
              student: TrainConfig | None = None) -> torch.Tensor:
        """Output spikes per step of each output neuron, (batch, classes), for
        samples ``index`` encoded with ``seed``. Where the student (its config
        ``student``, its input ``student_x``) encodes them as the teacher
        would (the same code, steps and input shape), its spikes are reused."""
        in_shape = self.model.specs[0].in_shape
        if (student_x is not None and student is not None and student.input_code == self.config.input_code
                and student.steps == self.config.steps and tuple(student_x.shape[1:-1]) == tuple(in_shape)):
            x = student_x
        else:
            x = encode_batch(data, index, in_shape, self.config.steps, seed, self.config.input_code).to(self.device)
        return output_rates(self.model.windowed(self.model(x), self.config.steps)[-1])


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The config of a training run folder (its config.json)."""
    cfg_path = Path(run_dir) / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{run_dir}: no config.json (not a training run folder)")
    return TrainConfig.from_dict(json.loads(cfg_path.read_text()))


def run_checkpoint(run_dir: str | Path, which: str = "best") -> tuple[TrainConfig, Path]:
    """A run folder's config and the path of its ``which`` checkpoint, which must exist."""
    config = load_run_config(run_dir)
    ckpt = Path(run_dir) / f"{which}.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt}: no checkpoint (has the run finished an epoch?)")
    return config, ckpt


def load_trained(run_dir: str | Path, which: str = "best", device: str = "cpu") -> tuple[SpikingNet, TrainConfig]:
    """The model of a run folder and its config: ``which`` is 'best', 'last',
    or 'epochs/NNN' (with ``keep_epochs``)."""
    config, ckpt = run_checkpoint(run_dir, which)
    model = SpikingNet(config.net)
    model.load_state_dict(torch.load(ckpt, map_location=device)["model"])
    return model.to(device).eval(), config
