"""The ``lavasparse`` command: one verb per stage, and ``pipeline`` for all of them."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def _add_common_args(p: argparse.ArgumentParser) -> None:
    """What train, pipeline and sweep share: data, network, encoding, optimiser."""
    from lavasparse.train.data import DATASETS
    from lavasparse.train.encode import ENCODINGS

    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir", help="folder with the dataset's files in their published format "
                   "(not needed for digits)")
    p.add_argument("--download", action="store_true",
                   help="fetch the dataset's official files into --data-dir first (checksums verified)")
    p.add_argument("--arch", default=None, help="e.g. 784-500-10 or 1x28x28-c16k5-p2-c32k3-p2-10 "
                   "(default: one per dataset, see README)")
    p.add_argument("--weight-scale", type=float, default=None, help="SLAYER weight initialisation scale (default 1)")
    p.add_argument("--steps", type=int, default=None, help="time steps per sample (default 16)")
    p.add_argument("--max-rate", type=float, default=None, help="spikes per step of a white pixel, rate code (default 1)")
    p.add_argument("--encoding", default=None, choices=ENCODINGS,
                   help="input code of images: rate (Bernoulli, default) or latency (one spike per pixel, "
                        "brighter earlier); for pipeline and sweep, the baseline's")
    p.add_argument("--latency-window", type=int, default=None,
                   help="steps in which the latency code's spikes fall (default 8 for digits, else 4)")
    p.add_argument("--val-draws", type=int, default=None,
                   help="encodings of each validation image, averaged (default 8 for digits, else 1)")
    p.add_argument("--test-draws", type=int, default=None,
                   help="encodings of each test image the target runs, averaged (default 8 for digits, else 1)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 60)")
    p.add_argument("--batch-size", type=int, default=None, help="samples per optimiser step (default 32)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-2 for digits; else 1e-3 rate-coded, 3e-3 latency-coded)")
    p.add_argument("--true-rate", type=float, default=None,
                   help="output spikes per step the loss asks of the true class (default 0.85 for mnist, 0.3 else)")
    p.add_argument("--false-rate", type=float, default=None,
                   help="output spikes per step the loss asks of the other classes (default 0.05 for mnist, 0.02 else)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from lavasparse.train.schedules import SCHEDULES

    _add_common_args(p)
    p.add_argument("--schedule", default=None, choices=SCHEDULES)
    p.add_argument("--sigma0", type=float, default=None, nargs="+",
                   help="cost weight (per hidden spike, synaptic op or nJ); for pipeline, the spike-trained "
                        "candidates to choose from")


def _download_if_asked(a) -> None:
    if getattr(a, "download", False):
        from lavasparse.train.download import download

        if not a.data_dir:
            raise ValueError("--download needs --data-dir (where to put the files)")
        download(a.dataset, a.data_dir)


def _run_settings(a) -> dict:
    """RunSettings fields from the parsed arguments: those given (not None)
    override the dataclass defaults, which are the one place defaults live."""
    from dataclasses import fields

    from lavasparse.pipeline import RunSettings

    names = {f.name for f in fields(RunSettings)}
    return {k: v for k, v in vars(a).items() if k in names and v is not None}


def cmd_train(a) -> int:
    from lavasparse.pipeline import RunSettings
    from lavasparse.train.trainer import train

    if a.sigma0 and len(a.sigma0) > 1:
        raise ValueError("train takes one --sigma0")
    cfg = RunSettings(**_run_settings(a)).train_config(a.name or Path(a.out).name, a.schedule or "baseline",
                                                       a.sigma0[0] if a.sigma0 else 0.0, cost=a.cost,
                                                       prune_density=a.prune_density)
    _download_if_asked(a)
    best = train(cfg, a.out)
    print(json.dumps(best, indent=2))
    return 0


def _print_rows(rows: list[dict]) -> None:
    cols = ["name", "type", "shape", "neurons", "weights", "weight_bits", "weight_exponent", "sign_mode"]
    print("  ".join(f"{c:>15s}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r[c]) if r[c] is not None else '-':>15s}" for c in cols))


def cmd_export(a) -> int:
    from lavasparse.export.netx_export import export_netx
    from lavasparse.export.netx_format import describe
    from lavasparse.train.trainer import load_trained

    model, _ = load_trained(a.run, which=a.checkpoint)
    out = a.out or str(Path(a.run) / "network.net")
    desc = export_netx(model, out)
    print(f"wrote {out}")
    _print_rows(describe(desc))
    return 0


def cmd_check(a) -> int:
    from lavasparse.deploy.loihi2 import LOIHI2, ChipSpec
    from lavasparse.deploy.resources import check_network, format_report
    from lavasparse.export.netx_format import read_network
    from lavasparse.fileio import write_json

    spec = ChipSpec.from_json(a.chip) if a.chip else LOIHI2
    report = check_network(read_network(a.net, any_neuron=True), spec)
    print(format_report(report))
    if a.json:
        write_json(a.json, report.to_dict())
    return 0 if report.fits else 1


def _note_input_transform(desc, inputs) -> None:
    from lavasparse.deploy.lava_runner import input_transform_note

    note = input_transform_note(desc, inputs)
    if note:
        print(f"note: {note}", file=sys.stderr)


def cmd_deploy(a) -> int:
    import numpy as np

    from lavasparse.deploy.lava_runner import as_batch, load_input, load_labels, run_on_lava
    from lavasparse.deploy.resources import check_network
    from lavasparse.export.netx_format import read_network
    from lavasparse.fileio import write_npz

    desc = read_network(a.net)
    x = as_batch(load_input(a.input, a.layout), desc, origin=a.input)
    _note_input_transform(desc, x)
    labels = load_labels(a.labels, len(x)) if a.labels else None
    report = check_network(desc)
    if not report.fits:
        problems = "\n  - ".join(str(v) for v in report.violations)
        if not a.ignore_limits:
            raise ValueError(f"{a.net} does not fit Loihi 2 (lavasparse check says why):\n  - {problems}\n"
                             f"--ignore-limits runs it in the simulator anyway")
        print(f"warning: {a.net} does not fit Loihi 2; running anyway (--ignore-limits):\n  - {problems}",
              file=sys.stderr)
    run = run_on_lava(desc, x)
    print(f"{run.lava_steps} Lava steps in {run.seconds:.1f} s")
    for name, s in zip(run.layer_names, run.spikes):
        print(f"  {name:>12s}: {int((s != 0).sum())} spikes")
    if labels is not None:
        print(f"accuracy on the target: {100 * float((run.predictions == labels).mean()):.2f}%")
    if a.save:
        write_npz(a.save, predictions=run.predictions,
                  **{n: s.astype(np.int8) for n, s in zip(run.layer_names, run.spikes)})
        print(f"wrote {a.save}")
    return 0


def cmd_profile(a) -> int:
    from lavasparse.deploy.lava_runner import as_batch, load_input
    from lavasparse.export.netx_format import read_network
    from lavasparse.fileio import write_json
    from lavasparse.simulate.energy import EnergyProfile
    from lavasparse.simulate.engines import run_target
    from lavasparse.simulate.profile import profile_run

    table = EnergyProfile.load(a.energy_profile)
    desc = read_network(a.net)
    batch = as_batch(load_input(a.input, a.layout), desc, origin=a.input)
    _note_input_transform(desc, batch)
    run = run_target(desc, batch, a.engine, a.cross_check)
    prof = profile_run(desc, batch, run.spikes, table)
    prof["engine"] = run.engine
    prof["cross_checked_on_lava"] = run.cross_checked
    print(f"engine: {run.engine}" + (f" (first {run.cross_checked} samples identical on Lava)"
                                     if run.cross_checked else "") + f"; {run.seconds:.1f} s")
    if a.json:
        write_json(a.json, prof)
        print(f"wrote {a.json}")
    n = prof["samples"]
    print(f"per inference ({n} samples, {prof['steps']} steps; energy profile {table.name}"
          + (f", estimated figures: {', '.join(table.estimates)}" if table.estimates else "") + ")")
    print(f"{'layer':>12s} {'neurons':>8s} {'cores':>5s} {'density':>8s} {'spikes':>10s} {'spk/neur/step':>14s} "
          f"{'synops':>12s} {'dynamic (nJ)':>13s} {'static (nJ)':>12s} {'total (nJ)':>11s}")
    for r in prof["layers"]:
        density = "-" if r["density"] is None else f"{100 * r['density']:.1f}%"
        print(f"{r['name']:>12s} {r['neurons']:8d} {r['cores']:5d} {density:>8s} {r['spikes'] / n:10.1f} "
              f"{r['spikes_per_neuron_per_step']:14.4f} {r['synops'] / n:12.0f} {1e9 * r['energy_dynamic_j'] / n:13.3f} "
              f"{1e9 * r['energy_static_j'] / n:12.3f} {1e9 * r['energy_j'] / n:11.3f}")
    ps = prof["per_sample"]
    print(f"{'total':>12s} {sum(r['neurons'] for r in prof['layers']):8d} {prof['cores']:5d} {'':>8s} {ps['spikes']:10.1f} "
          f"{'':>14s} {ps['synops']:12.0f} {1e9 * ps['energy_dynamic_j']:13.3f} {1e9 * ps['energy_static_j']:12.3f} "
          f"{1e9 * ps['energy_j']:11.3f}")
    print(f"synaptic ops are {100 * ps['synops'] / ps['ann_macs']:.1f}% of the same network's ANN MACs "
          f"({ps['ann_macs']:,}); input spikes {prof['input_spikes'] / n:.1f} per inference")
    print(f"inference time {1e6 * ps['inference_time_s']:.2f} us; NeuroBench: " +
          ", ".join(f"{k} {v:.4g}" for k, v in prof["neurobench"].items()))
    return 0


def cmd_compare(a) -> int:
    """Compare training run folders on the test set, each in its own input code."""
    from lavasparse.deploy.lava_runner import load_input, load_labels
    from lavasparse.pipeline import run_test_input
    from lavasparse.simulate.evaluate import evaluate_on_target
    from lavasparse.simulate.compare import write_report

    if (a.input is None) != (a.labels is None):
        raise ValueError("--input and --labels go together")
    given, draws = None, 1
    if a.input:
        x = load_input(a.input, a.layout)
        given = (x, load_labels(a.labels, len(x)))
    runs = []
    for r in a.runs:
        if given:
            x, labels = given
        else:
            x, labels, draws = run_test_input(Path(r), a.test_limit, a.test_draws)
        runs.append(evaluate_on_target(Path(r), x, labels, a.engine, a.cross_check, energy_profile=a.energy_profile,
                                       input_origin=a.input))
    print(write_report(runs, a.out, test_draws=draws)[0].split("\n## Per layer")[0])
    return 0


def cmd_pipeline(a) -> int:
    from lavasparse.pipeline import PipelineConfig, run_pipeline

    d = PipelineConfig()
    cfg = PipelineConfig(**_run_settings(a), val_tolerance=a.val_tolerance, schedule=a.schedule or d.schedule,
                         sigma0=tuple(a.sigma0) if a.sigma0 is not None else d.sigma0,
                         energy_sigma0=tuple(a.energy_sigma0) if a.energy_sigma0 is not None else d.energy_sigma0,
                         energy_encoding=a.energy_encoding or d.energy_encoding,
                         energy_init=a.energy_init or d.energy_init, prune_density=a.prune_density,
                         code_baseline=a.code_baseline)
    _download_if_asked(a)
    run_pipeline(cfg, a.out)
    return 0


def cmd_sweep(a) -> int:
    from lavasparse.sweep import SweepConfig, run_sweep
    from lavasparse.train.selection import SearchPlan

    plan = SearchPlan(start=a.sigma0_start, factor=a.factor, bisect_steps=a.bisect_steps, low=a.sigma0_low)
    cfg = SweepConfig(**_run_settings(a), schedules=tuple(a.schedules), plan=plan,
                      cpus_per_trial=a.cpus_per_trial, gpus_per_trial=a.gpus_per_trial, executor=a.executor)
    _download_if_asked(a)
    run_sweep(cfg, a.out, address=a.address, command="lavasparse " + " ".join(sys.argv[1:]))
    return 0


def cmd_study(a) -> int:
    from lavasparse.study import StudyConfig, load_rows, run_study

    cfg = StudyConfig(**_run_settings(a), rows=load_rows(a.rows), cpus_per_trial=a.cpus_per_trial,
                      executor=a.executor)
    _download_if_asked(a)
    run_study(cfg, a.out, command="lavasparse " + " ".join(sys.argv[1:]))
    return 0


def _add_net_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="netx HDF5 network description (ours or anyone's)")
    p.add_argument("--input", required=True,
                   help=".npy of shape (neurons..., T) or (N, neurons..., T), in the file's (C, H, W) order")
    _add_layout_arg(p)


def _add_layout_arg(p: argparse.ArgumentParser) -> None:
    from lavasparse.deploy.lava_runner import LAYOUTS

    p.add_argument("--layout", default="chw", choices=LAYOUTS,
                   help="how --input holds a 3-d input: chw, our (C, H, W) order (default), or whc, Lava's "
                        "(W, H, C), as lava-dl's own example inputs are; flat inputs are the same in both")


def _add_energy_arg(p: argparse.ArgumentParser) -> None:
    from lavasparse.simulate.energy import DEFAULT_PROFILE

    p.add_argument("--energy-profile", default=DEFAULT_PROFILE,
                   help="energy profile: a name from simulate/profiles/ (loihi1-davies2018, loihi2-estimate) "
                        "or a .json path")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="emulator", choices=["emulator", "lava"],
                   help="who computes the target's spikes: the bit-exact batched emulator (default; a "
                        "full test set in seconds) or Lava's process simulator (one sample at a time)")
    p.add_argument("--cross-check", type=int, default=16, metavar="K",
                   help="with the emulator: run the first K samples through Lava too and stop on any "
                        "difference (default 16; 0 where Lava is not installed)")


def build_parser() -> argparse.ArgumentParser:
    from lavasparse.pipeline import INITS
    from lavasparse.train.energy_weights import COSTS
    from lavasparse.train.encode import ENCODINGS

    p = argparse.ArgumentParser(prog="lavasparse", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)

    t = sub.add_parser("train", help="train one SNN into a (resumable) run folder")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--name", help="run name (default: the folder's name)")
    _add_train_args(t)
    t.add_argument("--cost", default="spikes", choices=COSTS,
                   help="what --sigma0 weighs: hidden spikes (Allred et al., default), synaptic ops "
                        "(input layer included, synapses that export non-zero) or dynamic energy in nJ "
                        "(--energy-profile)")
    _add_prune_arg(t)
    _add_energy_arg(t)
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
    d.add_argument("--ignore-limits", action="store_true",
                   help="run a network that breaks Loihi 2's limits (lavasparse check) in the simulator anyway")
    d.set_defaults(fn=cmd_deploy)

    ck = sub.add_parser("check", help="map a netx network onto Loihi 2 cores; list every limit it breaks "
                        "(exit 1 if any)")
    ck.add_argument("net", help="netx HDF5 network description (ours or anyone's)")
    ck.add_argument("--json", help="write the report here")
    ck.add_argument("--chip", help="JSON chip table (default: Loihi 2, deploy/loihi2.py)")
    ck.set_defaults(fn=cmd_check)

    pr = sub.add_parser("profile", help="per-layer spikes, synops, neuron updates and energy on the target")
    _add_net_input_args(pr)
    pr.add_argument("--json", help="write the profile here")
    _add_energy_arg(pr)
    _add_engine_args(pr)
    pr.set_defaults(fn=cmd_profile)

    c = sub.add_parser("compare", help="report two or more training runs side by side")
    c.add_argument("runs", nargs="+", help="training run folders (the first is the reference)")
    c.add_argument("--input", help="test spikes .npy (N, neurons..., T) for every run (default: each run's "
                   "test set in its own input code)")
    c.add_argument("--labels", help="test labels .npy (with --input)")
    _add_layout_arg(c)
    c.add_argument("--test-limit", type=int, default=None, help="without --input: the first N test images")
    c.add_argument("--test-draws", type=int, default=None,
                   help="without --input: encodings of each test image (default: the dataset's, 8 for digits, else 1)")
    c.add_argument("--out", required=True, help="report folder")
    _add_engine_args(c)
    _add_energy_arg(c)
    c.set_defaults(fn=cmd_compare)

    pl = sub.add_parser("pipeline", help="train baseline + sparse, export, deploy on Lava, profile, compare")
    _add_run_args(pl)
    pl.add_argument("--val-tolerance", type=float, default=0.01,
                    help="a candidate must keep validation accuracy within this of the baseline's (0: iso); "
                         "the cheapest such is chosen")
    pl.add_argument("--energy-sigma0", type=float, nargs="*", default=None,
                    help="energy-trained candidates (sigma0 per nJ); none: skip them (default 3e-7 1e-6)")
    pl.add_argument("--no-code-baseline", dest="code_baseline", action="store_false",
                    help="do not train the baseline in the energy-trained networks' input code")
    pl.add_argument("--energy-encoding", default=None, choices=ENCODINGS,
                    help="input code of the energy-trained candidates (default latency)")
    pl.add_argument("--energy-init", default=None, choices=INITS,
                    help="train the energy-trained candidates from scratch (default) or fine-tune the baseline")
    _add_prune_arg(pl)
    _add_train_args(pl)
    pl.set_defaults(fn=cmd_pipeline)

    from lavasparse.sweep import PAPER_SCHEDULES
    from lavasparse.train.selection import SearchPlan

    sw = sub.add_parser("sweep", help="the paper's Tables 1 and 2: largest sigma0 per schedule, on the target")
    _add_run_args(sw)
    sw.add_argument("--schedules", nargs="+", default=list(PAPER_SCHEDULES), choices=PAPER_SCHEDULES)
    sw.add_argument("--sigma0-start", type=float, default=SearchPlan.start, help="first sigma0 tried")
    sw.add_argument("--factor", type=float, default=SearchPlan.factor, help="bracketing step (multiplier)")
    sw.add_argument("--sigma0-low", type=float, default=SearchPlan.low,
                    help="smallest sigma0 tried: below it a schedule is reported as 'none' (each step down costs a round)")
    sw.add_argument("--bisect-steps", type=int, default=SearchPlan.bisect_steps,
                    help="bisections of the bracket (log space)")
    sw.add_argument("--address", default=None,
                    help="an existing Ray cluster (e.g. ray://head:10001 or auto); default: Ray on this machine")
    sw.add_argument("--executor", default="ray", choices=["ray", "local"],
                    help="run trials through Ray Tune (default) or a local process pool (where Ray is missing)")
    sw.add_argument("--cpus-per-trial", type=int, default=1)
    sw.add_argument("--gpus-per-trial", type=float, default=None,
                    help="default 0.25 when a GPU is there (4 trials per GPU), else 0")
    _add_common_args(sw)
    sw.set_defaults(fn=cmd_sweep)

    st = sub.add_parser("study", help="train a table of networks from scratch (rows from a JSON file) and "
                        "measure each on the target")
    st.add_argument("--rows", required=True, help="JSON list of rows (see lavasparse/study.py)")
    st.add_argument("--out", required=True, help="output folder (resumable)")
    st.add_argument("--test-limit", type=int, default=None, help="use only the first N test samples")
    st.add_argument("--executor", default="local", choices=["ray", "local"])
    st.add_argument("--cpus-per-trial", type=int, default=1)
    _add_engine_args(st)
    _add_energy_arg(st)
    _add_common_args(st)
    st.set_defaults(fn=cmd_study)
    return p


def _densities(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected densities like 0.1 or 0.1,1.0, got {text!r}") from None


def _add_prune_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune-density", type=_densities, default=None, metavar="D[,D...]",
                   help="prune each synaptic layer to this share of surviving synapses (one value per "
                        "layer, comma-separated; quantisation-aware magnitude pruning while training)")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """What pipeline and sweep share beyond the training arguments (RunSettings)."""
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--test-limit", type=int, default=None, help="use only the first N test samples")
    _add_engine_args(p)
    _add_sparse_args(p)
    _add_energy_arg(p)


def _add_sparse_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sparse-init", default="baseline", choices=["baseline", "scratch"],
                   help="fine-tune the sparse net from the baseline (default) or train it from scratch")
    p.add_argument("--sparse-epochs", type=int, default=20, help="epochs of sparsity fine-tuning")


def main(argv: list[str] | None = None) -> int:
    from lavasparse.deploy.lava_guard import LavaStopTimeout
    from lavasparse.fileio import FolderBusy
    from lavasparse.simulate.engines import CrossCheckError
    from lavasparse.sweep import TrialsFailed

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, CrossCheckError, TrialsFailed, FolderBusy, LavaStopTimeout) as e:
        print(f"lavasparse {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # Ctrl-C, or SIGTERM / SIGHUP during a Lava run (lava_guard.LavaRunInterrupted):
        # one line and the shell's status for a death by that signal, 128 + its number.
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"lavasparse {args.verb}: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
