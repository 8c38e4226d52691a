"""The ``lavasparse`` command: one verb per stage, and ``pipeline`` for all of them."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from lavasparse.train.schedules import SCHEDULES

    p.add_argument("--dataset", default="digits", choices=["digits", "mnist"])
    p.add_argument("--data-dir", help="folder with MNIST's IDX files (for --dataset mnist)")
    p.add_argument("--arch", default=None, help="e.g. 784-500-10 or 1x28x28-c16k5-p2-c32k3-p2-10 "
                   "(default: 64-128-10 for train, 64-128-128-10 for pipeline)")
    p.add_argument("--weight-scale", type=float, default=None, help="SLAYER weight initialisation scale")
    p.add_argument("--steps", type=int, default=16, help="time steps per sample")
    p.add_argument("--max-rate", type=float, default=None, help="spikes per step of a white pixel "
                   "(default 0.5 for train, 1.0 for pipeline)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", default=None, choices=SCHEDULES)
    p.add_argument("--sigma0", type=float, default=None, nargs="+",
                   help="spike-count loss weight (per hidden spike); for pipeline, candidates to choose from")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def cmd_train(a) -> int:
    from lavasparse.train.model import NetConfig
    from lavasparse.train.trainer import TrainConfig, train

    schedule = a.schedule or "baseline"
    if a.sigma0 and len(a.sigma0) > 1:
        raise ValueError("train takes one --sigma0")
    net = NetConfig(arch=a.arch or NetConfig.arch,
                    weight_scale=a.weight_scale if a.weight_scale is not None else NetConfig.weight_scale)
    cfg = TrainConfig(name=a.name or Path(a.out).name, dataset=a.dataset, data_dir=a.data_dir,
                      net=net, steps=a.steps, max_rate=a.max_rate if a.max_rate is not None else TrainConfig.max_rate,
                      epochs=a.epochs,
                      lr=a.lr, schedule=schedule, sigma0=a.sigma0[0] if a.sigma0 else 0.0, seed=a.seed,
                      train_limit=a.train_limit, device=a.device)
    best = train(cfg, a.out)
    print(json.dumps(best, indent=2))
    return 0


def _print_rows(rows: list[dict]) -> None:
    cols = ["name", "type", "shape", "neurons", "weights", "weight_bits", "weight_exponent", "sign_mode"]
    print("  ".join(f"{c:>15s}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r[c]) if r[c] is not None else '-':>15s}" for c in cols))


def cmd_export(a) -> int:
    from lavasparse.export.netx_export import describe, export_netx
    from lavasparse.train.trainer import load_trained

    model, _ = load_trained(a.run, which=a.checkpoint)
    out = a.out or str(Path(a.run) / "network.net")
    desc = export_netx(model, out)
    print(f"wrote {out}")
    _print_rows(describe(desc))
    return 0


def cmd_deploy(a) -> int:
    import numpy as np

    from lavasparse.deploy.lava_runner import run_on_lava
    from lavasparse.fileio import write_npz

    run = run_on_lava(a.net, np.load(a.input))
    print(f"{run.lava_steps} Lava steps in {run.seconds:.1f} s")
    for name, s in zip(run.layer_names, run.spikes):
        print(f"  {name:>12s}: {int((s != 0).sum())} spikes")
    if a.labels:
        labels = np.load(a.labels)
        print(f"accuracy on the target: {100 * float((run.predictions == labels).mean()):.2f}%")
    if a.save:
        write_npz(a.save, predictions=run.predictions,
                  **{n: s.astype(np.int8) for n, s in zip(run.layer_names, run.spikes)})
        print(f"wrote {a.save}")
    return 0


def cmd_profile(a) -> int:
    import numpy as np

    from lavasparse.deploy.lava_runner import as_batch
    from lavasparse.export.netx_format import read_network
    from lavasparse.fileio import write_json
    from lavasparse.simulate.energy import LOIHI, EnergyTable
    from lavasparse.simulate.engines import run_target
    from lavasparse.simulate.profile import profile_run

    table = EnergyTable.from_json(a.energy_table) if a.energy_table else LOIHI
    desc = read_network(a.net)
    batch = as_batch(np.load(a.input), desc)
    run = run_target(a.net, batch, a.engine, a.cross_check)
    prof = profile_run(desc, batch, run.spikes, table)
    prof["engine"] = run.engine
    prof["cross_checked_on_lava"] = run.cross_checked
    print(f"engine: {run.engine}" + (f" (first {run.cross_checked} samples identical on Lava)"
                                     if run.cross_checked else "") + f"; {run.seconds:.1f} s")
    if a.json:
        write_json(a.json, prof)
        print(f"wrote {a.json}")
    print(f"{'layer':>12s} {'neurons':>8s} {'spikes':>10s} {'spk/neur/step':>14s} {'synops':>12s} {'updates':>12s} {'energy (J)':>11s}")
    for r in prof["layers"]:
        print(f"{r['name']:>12s} {r['neurons']:8d} {r['spikes']:10d} {r['spikes_per_neuron_per_step']:14.4f} "
              f"{r['synops']:12d} {r['neuron_updates']:12d} {r['energy_j']:11.3e}")
    return 0


def cmd_compare(a) -> int:
    """Compare run folders that the pipeline (or evaluate) has filled."""
    from lavasparse.pipeline import evaluate_on_target
    from lavasparse.simulate.compare import write_report
    import numpy as np

    x, labels = np.load(a.input), np.load(a.labels)
    runs = [evaluate_on_target(Path(r), x, labels, a.engine, a.cross_check) for r in a.runs]
    print(write_report(runs, a.out).split("\n## Per layer")[0])
    return 0


def cmd_pipeline(a) -> int:
    from lavasparse.pipeline import PipelineConfig, run_pipeline

    d = PipelineConfig()
    cfg = PipelineConfig(dataset=a.dataset, data_dir=a.data_dir, arch=a.arch or d.arch,
                         weight_scale=a.weight_scale if a.weight_scale is not None else d.weight_scale,
                         steps=a.steps, max_rate=a.max_rate if a.max_rate is not None else d.max_rate,
                         epochs=a.epochs, lr=a.lr, seed=a.seed, sparse_init=a.sparse_init,
                         sparse_epochs=a.sparse_epochs, val_tolerance=a.val_tolerance,
                         engine=a.engine, cross_check=a.cross_check,
                         schedule=a.schedule or d.schedule,
                         sigma0=tuple(a.sigma0) if a.sigma0 else d.sigma0,
                         train_limit=a.train_limit, test_limit=a.test_limit, device=a.device)
    run_pipeline(cfg, a.out)
    return 0


def _add_net_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="netx HDF5 network description (ours or anyone's)")
    p.add_argument("--input", required=True,
                   help=".npy of shape (neurons..., T) or (N, neurons..., T), in the file's (C, H, W) order")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="lava", choices=["lava", "emulator"],
                   help="who computes the target's spikes: Lava's simulator or the bit-exact emulator")
    p.add_argument("--cross-check", type=int, default=0, metavar="K",
                   help="with --engine emulator: run the first K samples through Lava too and stop on any difference")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lavasparse", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)

    t = sub.add_parser("train", help="train one SNN into a (resumable) run folder")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--name", help="run name (default: the folder's name)")
    _add_train_args(t)
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("export", help="export a run's best model as netx HDF5")
    e.add_argument("run", help="training run folder")
    e.add_argument("--out", help="output file (default RUN/network.net)")
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.set_defaults(fn=cmd_export)

    d = sub.add_parser("deploy", help="run a netx HDF5 network on Lava (Loihi2SimCfg, fixed_pt)")
    _add_net_input_args(d)
    d.add_argument("--labels", help=".npy of N labels, to report accuracy on the target")
    d.add_argument("--save", help="write the per-layer spikes to this .npz")
    d.set_defaults(fn=cmd_deploy)

    pr = sub.add_parser("profile", help="per-layer spikes, synops, neuron updates and energy on the target")
    _add_net_input_args(pr)
    pr.add_argument("--json", help="write the profile here")
    pr.add_argument("--energy-table", help="JSON energy table (default: Loihi, Davies et al. 2018)")
    _add_engine_args(pr)
    pr.set_defaults(fn=cmd_profile)

    c = sub.add_parser("compare", help="report two or more training runs side by side")
    c.add_argument("runs", nargs="+", help="training run folders (the first is the reference)")
    c.add_argument("--input", required=True, help="test spikes .npy (N, neurons..., T)")
    c.add_argument("--labels", required=True, help="test labels .npy")
    c.add_argument("--out", required=True, help="report folder")
    _add_engine_args(c)
    c.set_defaults(fn=cmd_compare)

    pl = sub.add_parser("pipeline", help="train baseline + sparse, export, deploy on Lava, profile, compare")
    pl.add_argument("--out", required=True, help="output folder (resumable)")
    pl.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")
    _add_engine_args(pl)
    pl.add_argument("--sparse-init", default="baseline", choices=["baseline", "scratch"],
                    help="fine-tune the sparse net from the baseline (default) or train it from scratch")
    pl.add_argument("--sparse-epochs", type=int, default=20, help="epochs of sparsity fine-tuning")
    pl.add_argument("--val-tolerance", type=float, default=0.01,
                    help="sigma0 choice: largest within this validation accuracy of the baseline (0: iso)")
    _add_train_args(pl)
    pl.set_defaults(fn=cmd_pipeline)
    return p


def main(argv: list[str] | None = None) -> int:
    from lavasparse.simulate.engines import CrossCheckError

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, CrossCheckError) as e:
        print(f"lavasparse {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lavasparse {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
