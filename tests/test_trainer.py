import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import lavasparse.train.trainer as trainer
from lavasparse.train.model import NetConfig
from lavasparse.train.trainer import TrainConfig, load_trained, train
from conftest import QUICK_LR


def small_config(**kw):
    return TrainConfig(**{"name": "t", "net": NetConfig(arch="64-32-10"), "steps": 8, "max_rate": 1.0, "epochs": 3,
                          "batch_size": 16, "train_limit": 400, "device": "cpu", "lr": QUICK_LR, **kw})


def test_training_learns_and_writes_run_folder(tmp_path):
    best = train(small_config(), tmp_path, progress=False)
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3]
    assert {"val_accuracy", "train_class_loss", "train_cost", "val_spikes_per_layer"} <= set(lines[0])
    assert best["val_accuracy"] == max(l["val_accuracy"] for l in lines)
    assert best["val_accuracy"] > 0.3  # ten classes: chance is 0.1
    model, cfg = load_trained(tmp_path)
    assert cfg == small_config()


def test_interrupted_run_resumes_to_the_same_model(tmp_path, monkeypatch):
    train(small_config(), tmp_path / "straight", progress=False)
    calls = {"n": 0}
    real = trainer.evaluate

    def dying_evaluate(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C during epoch 2
        return real(*a, **kw)

    monkeypatch.setattr(trainer, "evaluate", dying_evaluate)
    with pytest.raises(KeyboardInterrupt):
        train(small_config(), tmp_path / "cut", progress=False)
    monkeypatch.setattr(trainer, "evaluate", real)
    assert torch.load(tmp_path / "cut" / "last.pt")["epoch"] == 1
    train(small_config(), tmp_path / "cut", progress=False)
    epochs = [json.loads(l)["epoch"] for l in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    a = torch.load(tmp_path / "straight" / "last.pt")["model"]
    b = torch.load(tmp_path / "cut" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_folder_refuses_other_config(tmp_path):
    train(small_config(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="config.json"):
        train(small_config(lr=0.5), tmp_path, progress=False)


def test_fine_tuning_runs_move_with_their_folder(tmp_path, monkeypatch):
    """init_from relative to the run folder: a folder of runs, half-trained,
    resumes after a move (a sweep's trials point at its baseline this way)."""
    train(small_config(epochs=1), tmp_path / "a" / "base", progress=False)
    tuned = small_config(epochs=2, init_from="../base/best.pt", schedule="linear", sigma0=1e-4)
    real = trainer.evaluate
    calls = {"n": 0}

    def dying_evaluate(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(trainer, "evaluate", dying_evaluate)
    with pytest.raises(KeyboardInterrupt):
        train(tuned, tmp_path / "a" / "tuned", progress=False)
    monkeypatch.setattr(trainer, "evaluate", real)
    (tmp_path / "a").rename(tmp_path / "b")
    train(tuned, tmp_path / "b" / "tuned", progress=False)
    assert torch.load(tmp_path / "b" / "tuned" / "last.pt")["epoch"] == 2
    # The same file named by an absolute path is the same run; another file is not.
    train(small_config(epochs=2, init_from=str(tmp_path / "b" / "base" / "best.pt"), schedule="linear",
                       sigma0=1e-4), tmp_path / "b" / "tuned", progress=False)
    with pytest.raises(ValueError, match="config.json"):
        train(small_config(epochs=2, init_from="../tuned/best.pt", schedule="linear", sigma0=1e-4),
              tmp_path / "b" / "tuned", progress=False)


def test_sparsity_term_enters_the_loss():
    from lavasparse.train.loss import SparsityLoss, spike_count

    hidden = torch.ones(2, 4, 3, requires_grad=True)
    out = torch.zeros(2, 10, 3)
    total, l_class, count, _ = SparsityLoss()([hidden, out], torch.tensor([0, 1]), sigma=0.5)
    assert count.item() == 12 and spike_count([hidden]).item() == 12
    assert total.item() == pytest.approx(l_class.item() + 6)


def test_distilled_class_loss_is_spike_rate_towards_the_blend():
    """With the teacher's rates equal to the label's, any distill weight gives
    SLAYER's SpikeRate loss; with distill 1 the target is the teacher's alone."""
    from lavasparse.train.loss import SparsityLoss

    torch.manual_seed(0)
    hidden, out = torch.ones(3, 4, 8), (torch.rand(3, 10, 8) < 0.3).float()
    labels = torch.tensor([2, 0, 9])
    plain = SparsityLoss(0.3, 0.02)([hidden, out], labels, sigma=0.0)[1]
    label_rates = 0.02 + 0.28 * torch.nn.functional.one_hot(labels, 10).float()
    for weight in (0.25, 1.0):
        same = SparsityLoss(0.3, 0.02, distill=weight)([hidden, out], labels, 0.0, teacher_rates=label_rates)[1]
        assert same.item() == pytest.approx(plain.item(), rel=1e-6)
    teacher = torch.rand(3, 10)
    pure = SparsityLoss(0.3, 0.02, distill=1.0)([hidden, out], labels, 0.0, teacher_rates=teacher)[1]
    assert pure.item() == pytest.approx(((out.mean(-1) - teacher) ** 2).sum().item() / 3, rel=1e-6)
    with pytest.raises(ValueError, match="teacher"):
        SparsityLoss(0.3, 0.02, distill=0.5)([hidden, out], labels, 0.0)


def test_student_learns_from_a_teacher_in_another_code(tmp_path):
    """A latency-coded student distilled from a rate-coded teacher: trains,
    learns, and its folder (teacher named relative to it) resumes after a move."""
    train(small_config(epochs=2), tmp_path / "a" / "teacher", progress=False)
    student = small_config(epochs=2, encoding="latency", teacher="../teacher", distill=0.5)
    best = train(student, tmp_path / "a" / "student", progress=False)
    assert best["val_accuracy"] > 0.3
    (tmp_path / "a").rename(tmp_path / "b")
    train(student, tmp_path / "b" / "student", progress=False)   # finished: nothing to redo, nothing refused
    with pytest.raises(ValueError, match="teacher"):
        small_config(distill=0.5)


def test_a_folder_written_before_a_field_existed_resumes(tmp_path):
    """config.json without a field added later (here: teacher, distill) is the
    same run as the config with that field at its default."""
    train(small_config(epochs=1), tmp_path, progress=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    for key in ("teacher", "distill"):
        saved.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert train(small_config(epochs=1), tmp_path, progress=False)["epoch"] == 1


def test_train_package_does_not_import_lava_magma():
    code = ("import sys, lavasparse.train.trainer, lavasparse.train.model; "
            "bad = [m for m in sys.modules if m.startswith(('lava.magma', 'lava.lib.dl.netx', 'lava.proc'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_second_training_on_a_busy_folder_is_refused_by_name(tmp_path):
    """Two processes: this one holds the run folder's lock (as a running
    `train` does); `lavasparse train` on the same folder is refused, names the
    folder and the holder, and writes nothing."""
    import os

    from lavasparse.fileio import folder_lock

    run = tmp_path / "run"
    with folder_lock(run):
        r = subprocess.run([sys.executable, "-m", "lavasparse.cli", "train", "--out", str(run), "--epochs", "1",
                            "--train-limit", "64"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert str(run) in r.stderr and f"pid {os.getpid()}" in r.stderr
    assert not (run / "config.json").exists() and not (run / "metrics.jsonl").exists()
    # The lock goes with its holder: the folder trains now.
    train(small_config(epochs=1), run, progress=False)
    assert (run / "last.pt").exists()


def _dies_writing(name: str, epoch: int):
    """An atomic_path that raises KeyboardInterrupt (a kill) instead of
    writing ``name`` at ``epoch`` (counted by how often ``name`` was written)."""
    real = trainer.atomic_path
    seen = {"n": 0}

    def atomic_path(path):
        from pathlib import Path
        if Path(path).name == name:
            seen["n"] += 1
            if seen["n"] == epoch:
                raise KeyboardInterrupt(f"killed writing {name}")
        return real(path)
    return atomic_path


@pytest.mark.parametrize("name,nth", [("last.pt", 1), ("best.pt", 1), ("001.pt", 1), ("last.pt", 2),
                                      ("002.pt", 1), ("metrics.jsonl", 2)])
def test_a_crash_anywhere_in_an_epochs_writes_leaves_a_consistent_folder(tmp_path, monkeypatch, name, nth):
    """Killed while writing any of an epoch's files (the first epoch's too),
    the run resumes to the model of an uninterrupted run, with each epoch's
    metrics once, best.pt the best record's epoch, every epoch file, and no
    temporary file left."""
    cfg = small_config(keep_epochs=True)
    straight = train(cfg, tmp_path / "straight", progress=False)
    run = tmp_path / "cut"
    import lavasparse.fileio

    dying = _dies_writing(name, nth)
    monkeypatch.setattr(trainer, "atomic_path", dying)
    monkeypatch.setattr(lavasparse.fileio, "atomic_path", dying)   # write_text's, for metrics.jsonl
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress=False)
    monkeypatch.undo()
    (run / ".last.pt.stale.tmp").write_bytes(b"half a checkpoint")   # what a SIGKILL mid-write leaves
    (run / "epochs").mkdir(exist_ok=True)
    (run / "epochs" / ".003.pt.stale.tmp").write_bytes(b"")
    best = train(cfg, run, progress=False)
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3]
    assert best["epoch"] == straight["epoch"]
    assert torch.load(run / "best.pt")["epoch"] == best["epoch"]
    assert sorted(p.name for p in (run / "epochs").iterdir()) == ["001.pt", "002.pt", "003.pt"]
    assert not list(run.rglob("*.tmp"))
    a, b = torch.load(tmp_path / "straight" / "last.pt")["model"], torch.load(run / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_teacher_takes_the_student_spikes_only_in_its_own_code(tmp_path):
    """A teacher in the student's code, steps and input shape reads the
    student's input spikes (all-zero spikes give no output: they were used);
    in another code it encodes the images itself (the zeros are ignored)."""
    from dataclasses import replace

    from lavasparse.train.data import load_dataset
    from lavasparse.train.encode import encode_batch
    from lavasparse.train.trainer import Teacher

    train(small_config(epochs=1), tmp_path / "teacher", progress=False)
    teacher = Teacher.load(tmp_path / "teacher", "cpu")
    data, _ = load_dataset("digits", None)
    idx, seed, cfg = np.arange(32), 5, teacher.config
    x = encode_batch(data, idx, teacher.model.specs[0].in_shape, cfg.steps, seed, cfg.input_code)
    encoded = teacher.rates(data, idx, seed)
    assert encoded.shape == (32, 10) and encoded.sum() > 0
    assert torch.equal(teacher.rates(data, idx, seed, x, cfg), encoded)
    assert teacher.rates(data, idx, seed, torch.zeros_like(x), cfg).sum() == 0
    assert torch.equal(teacher.rates(data, idx, seed, torch.zeros_like(x), replace(cfg, encoding="latency")), encoded)
    assert torch.equal(teacher.rates(data, idx, seed, torch.zeros_like(x), replace(cfg, steps=cfg.steps + 1)), encoded)
