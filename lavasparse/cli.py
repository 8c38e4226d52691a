"""The ``lavasparse`` command: one verb per stage, and ``pipeline`` for all of them."""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from lavasparse.defaults import (ACTIVE_BAND, BACKWARDS, BATCH_SIZE, BISECT_STEPS, COSTS, CPUS_PER_TRIAL, CROSS_CHECK,
                                 DATASET_DEFAULTS, DATASETS, DEFAULT_COST, DEFAULT_DATASET, DEFAULT_ENCODING,
                                 DEFAULT_ENGINE, DEFAULT_LAYOUT, DEFAULT_PROFILE, DEFAULT_READOUT, DEFAULT_SYNAPSE,
                                 DEVICE, ENCODINGS, ENERGY_ENCODING, ENERGY_INIT, ENERGY_SIGMA0, ENGINES, EPOCHS,
                                 EXECUTORS, GENERIC_DEFAULTS, GPU_SHARE, INITS, ISI, ISI_RULES, LAYOUTS, MAX_RATE,
                                 NEURON, NIR_DT, PAPER_SCHEDULES, READOUTS, SCHEDULES, SEED, SIGMA0_FACTOR, SIGMA0_LOW,
                                 SIGMA0_START, SPARSE_EPOCHS, SPARSE_INIT, STEPS, STUDY_EXECUTOR, SWEEP_EXECUTOR,
                                 SYNAPSES, VAL_TOLERANCE, WEIGHT_SCALE)
from lavasparse.errors import CommandError


def _per_dataset(key: str) -> str:
    """A run default as help text, from defaults.py: '0.6 for digits; 0.85 for mnist; else 0.3'."""
    def show(value) -> str:
        if isinstance(value, dict):   # one per input code
            return ", ".join(f"{v:g} {code}-coded" for code, v in value.items())
        return f"{value:g}"
    named = [f"{show(d[key])} for {name}" for name, d in DATASET_DEFAULTS.items() if key in d]
    return "; ".join(named + [f"else {show(GENERIC_DEFAULTS[key])}"])


def _add_common_args(p: argparse.ArgumentParser) -> None:
    """What train, pipeline and sweep share: data, network, encoding, optimiser."""
    p.add_argument("--dataset", default=DEFAULT_DATASET, choices=DATASETS)
    p.add_argument("--data-dir", help="folder with the dataset's files in their published format "
                   "(not needed for digits)")
    p.add_argument("--download", action="store_true",
                   help="fetch the dataset's official files into --data-dir first (checksums verified)")
    p.add_argument("--arch", default=None, help="e.g. 784-500-10 or 1x28x28-c16k5-p2-c32k3-p2-10 "
                   "(default: one per dataset, see README)")
    p.add_argument("--weight-scale", type=float, default=None, help=f"SLAYER weight initialisation scale (default {WEIGHT_SCALE:g})")
    p.add_argument("--steps", type=int, default=None, help=f"time steps per sample (default {STEPS})")
    p.add_argument("--max-rate", type=float, default=None, help=f"spikes per step of a white pixel, rate code (default {MAX_RATE:g})")
    p.add_argument("--encoding", default=None, choices=ENCODINGS,
                   help="input code of images: rate (Bernoulli, default) or latency (one spike per pixel, "
                        "brighter earlier); for pipeline and sweep, the baseline's")
    p.add_argument("--latency-window", type=int, default=None,
                   help=f"steps in which the latency code's spikes fall (default {_per_dataset('latency_window')})")
    p.add_argument("--val-draws", type=int, default=None,
                   help=f"encodings of each validation image, averaged (default {_per_dataset('val_draws')})")
    p.add_argument("--test-draws", type=int, default=None,
                   help=f"encodings of each test image the target runs, averaged (default {_per_dataset('test_draws')})")
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs (default {EPOCHS})")
    p.add_argument("--batch-size", type=int, default=None, help=f"samples per optimiser step (default {BATCH_SIZE})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default {_per_dataset('lr')})")
    p.add_argument("--true-rate", type=float, default=None,
                   help=f"output spikes per step the loss asks of the true class (default {_per_dataset('true_rate')})")
    p.add_argument("--false-rate", type=float, default=None,
                   help=f"output spikes per step the loss asks of the other classes "
                        f"(default {_per_dataset('false_rate')})")
    p.add_argument("--tau-grad", type=float, default=None,
                   help=f"the surrogate gradient's width, SLAYER's tau_grad: it falls by e over 100 x tau_grad "
                        f"thresholds (default {NEURON['tau_grad']:g})")
    p.add_argument("--readout", default=None, choices=READOUTS,
                   help=f"the class: the output layer's spike counts (spikes), or its potential at the end of the "
                        f"sample (potential: a layer that never spikes, softmax and cross-entropy in training, Adams "
                        f"et al.'s readout) (default {DEFAULT_READOUT})")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--device", default=DEVICE, help="auto, cpu, cuda or cuda:N")


def _add_synapse_args(p: argparse.ArgumentParser) -> None:
    """The dense and conv layers' synapse (train; a study's rows name their own)."""
    p.add_argument("--synapse", default=None, choices=SYNAPSES,
                   help=f"every dense and conv layer's synapse: SLAYER's (cuba) or ISI-modulated (isi, Adams et al.'s "
                        f"IMSNN) (default {DEFAULT_SYNAPSE})")
    p.add_argument("--isi-rule", default=None, choices=ISI_RULES,
                   help=f"the ISI synapses' backward rule: the plain gradient (bptt), the paper's (imsnn) or "
                        f"its ablation (imsnnc) (default {ISI['rule']})")


def _add_backward_args(p: argparse.ArgumentParser) -> None:
    """The hidden blocks' backward pass (train, pipeline, sweep; a study's rows name their own)."""
    p.add_argument("--backward", default=None, choices=BACKWARDS,
                   help="dense and conv blocks' backward pass: SLAYER's (dense, default) or sparse spiking gradient "
                        "descent, the surrogate gradient only near threshold (sparse; train/sparse_backward.py)")
    p.add_argument("--active-band", type=float, default=None, metavar="B",
                   help=f"with --backward sparse: neurons with |v - threshold| < B x threshold get a gradient "
                        f"(default {ACTIVE_BAND:g})")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    _add_common_args(p)
    _add_backward_args(p)
    p.add_argument("--schedule", default=None, choices=SCHEDULES)
    p.add_argument("--sigma0", type=float, default=None, nargs="+",
                   help="cost weight (per hidden spike, synaptic op or nJ); for pipeline, the spike-trained "
                        "candidates to choose from")


def _add_net_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="netx HDF5 network description (ours or anyone's)")
    p.add_argument("--input", required=True,
                   help=".npy of shape (neurons..., T) or (N, neurons..., T), in the file's (C, H, W) order")
    _add_layout_arg(p)


def _add_layout_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default=DEFAULT_LAYOUT, choices=LAYOUTS,
                   help="how --input holds a 3-d input: chw, our (C, H, W) order (default), or whc, Lava's "
                        "(W, H, C), as lava-dl's own example inputs are; flat inputs are the same in both")


def _add_energy_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--energy-profile", default=DEFAULT_PROFILE,
                   help="energy profile: a name from simulate/profiles/ (loihi1-davies2018, loihi2-estimate) "
                        "or a .json path")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINES,
                   help="who computes the target's spikes: the bit-exact batched emulator (default; a "
                        "full test set in seconds) or Lava's process simulator (one sample at a time)")
    p.add_argument("--cross-check", type=int, default=CROSS_CHECK, metavar="K",
                   help="with the emulator: run the first K samples through Lava too and stop on any "
                        f"difference (default {CROSS_CHECK}; 0 where Lava is not installed)")


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per verb, each declared by its own function below."""
    p = argparse.ArgumentParser(prog="lavasparse", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)
    for add in (_add_train, _add_export, _add_import, _add_deploy, _add_check, _add_profile, _add_compare, _add_pipeline,
                _add_sweep, _add_study):
        add(sub)
    return p


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="train one SNN into a (resumable) run folder")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--name", help="run name (default: the folder's name)")
    _add_train_args(t)
    _add_synapse_args(t)
    t.add_argument("--cost", default=DEFAULT_COST, choices=COSTS,
                   help="what --sigma0 weighs: hidden spikes (Allred et al., default), synaptic ops "
                        "(input layer included, synapses that export non-zero) or dynamic energy in nJ "
                        "(--energy-profile)")
    _add_prune_arg(t)
    _add_energy_arg(t)
    t.add_argument("--init-from", metavar="RUN",
                   help="fine-tune: start from this run folder's best weights and its network (architecture, "
                        "each layer's neuron; a run `lavasparse import` wrote included), or from a checkpoint "
                        "(.pt) of --arch; by default for --sparse-epochs at 0.3 x the learning rate")
    t.add_argument("--sparse-epochs", type=int, default=None,
                   help=f"with --init-from and no --epochs: epochs of fine-tuning (default {SPARSE_EPOCHS})")


def _add_export(sub) -> None:
    e = sub.add_parser("export", help="export a run's best model as netx HDF5, or a run or netx file as NIR")
    e.add_argument("run", help="training run folder, or (with --format nir) a netx file")
    e.add_argument("--format", default="netx", choices=["netx", "nir"],
                   help="netx HDF5 (default) or NIR (netx file written first for a run)")
    e.add_argument("--out", help="output file (default RUN/network.net, RUN/network.nir, or the netx file's "
                                 "name with .nir)")
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.add_argument("--dt", type=float, default=NIR_DT,
                   help=f"NIR: seconds per time step, written into the graph (default {NIR_DT:g}, snnTorch's)")


def _add_import(sub) -> None:
    i = sub.add_parser("import", help="a NIR graph as a run folder and netx file, with a fidelity report")
    i.set_defaults(module="import_nir")
    i.add_argument("nir", help="NIR file (snnTorch, Norse, Rockpool, ours)")
    i.add_argument("--out", required=True, help="run folder to write (config.json, best.pt, network.net)")
    i.add_argument("--dataset", default=DEFAULT_DATASET, choices=DATASETS,
                   help="the data the network takes: the run's config (fine-tuning) and the fidelity report")
    i.add_argument("--data-dir", help="folder with the dataset's files (not needed for digits)")
    i.add_argument("--steps", type=int, default=STEPS, help=f"time steps per sample (default {STEPS})")
    i.add_argument("--encoding", default=DEFAULT_ENCODING, choices=ENCODINGS, help="input code of images")
    i.add_argument("--dt", type=float, default=None,
                   help=f"seconds per step the graph was made for (default: its metadata, else {NIR_DT:g})")
    i.add_argument("--rescale", default=None, action=argparse.BooleanOptionalAction,
                   help="scale each layer's weights and threshold to the 8-bit weights (default: unless "
                        "lavasparse wrote the graph)")
    i.add_argument("--fidelity-samples", type=int, default=360,
                   help="test images for the fidelity report (snnTorch's reading of the file against the "
                        "target); 0: none")


def _add_deploy(sub) -> None:
    d = sub.add_parser("deploy", help="run a netx HDF5 network on Lava (Loihi2SimCfg, fixed_pt)")
    _add_net_input_args(d)
    d.add_argument("--labels", help=".npy of N labels, to report accuracy on the target")
    d.add_argument("--save",
                   help="write the per-layer spikes (and a potential readout's final potentials) to this .npz")
    d.add_argument("--ignore-limits", action="store_true",
                   help="run a network that breaks Loihi 2's limits (lavasparse check) in the simulator anyway")


def _add_check(sub) -> None:
    ck = sub.add_parser("check", help="map a netx network onto Loihi 2 cores; list every limit it breaks "
                        "(exit 1 if any)")
    ck.add_argument("net", help="netx HDF5 network description (ours or anyone's)")
    ck.add_argument("--json", help="write the report here")
    ck.add_argument("--chip", help="JSON chip table (default: Loihi 2, deploy/loihi2.py)")


def _add_profile(sub) -> None:
    pr = sub.add_parser("profile", help="per-layer spikes, synops, neuron updates and energy on the target")
    _add_net_input_args(pr)
    pr.add_argument("--json", help="write the profile here")
    _add_energy_arg(pr)
    _add_engine_args(pr)


def _add_compare(sub) -> None:
    c = sub.add_parser("compare", help="report two or more training runs side by side")
    c.add_argument("runs", nargs="+", help="training run folders (the first is the reference)")
    c.add_argument("--input", help="test spikes .npy (N, neurons..., T) for every run (default: each run's "
                   "test set in its own input code)")
    c.add_argument("--labels", help="test labels .npy (with --input)")
    _add_layout_arg(c)
    c.add_argument("--test-limit", type=int, default=None, help="without --input: the first N test images")
    c.add_argument("--test-draws", type=int, default=None,
                   help=f"without --input: encodings of each test image (default {_per_dataset('test_draws')})")
    c.add_argument("--out", required=True, help="report folder")
    _add_engine_args(c)
    _add_energy_arg(c)


def _add_pipeline(sub) -> None:
    pl = sub.add_parser("pipeline", help="train baseline + sparse, export, deploy on Lava, profile, compare")
    _add_run_args(pl)
    pl.add_argument("--val-tolerance", type=float, default=VAL_TOLERANCE,
                    help="a candidate must keep validation accuracy within this of the baseline's (0: iso); "
                         "the cheapest such is chosen")
    pl.add_argument("--energy-sigma0", type=float, nargs="*", default=None,
                    help="energy-trained candidates (sigma0 per nJ); none: skip them (default "
                         + " ".join(f"{v:g}".replace("e-0", "e-") for v in ENERGY_SIGMA0) + ")")
    pl.add_argument("--no-code-baseline", dest="code_baseline", action="store_false",
                    help="do not train the baseline in the energy-trained networks' input code")
    pl.add_argument("--energy-encoding", default=None, choices=ENCODINGS,
                    help=f"input code of the energy-trained candidates (default {ENERGY_ENCODING})")
    pl.add_argument("--energy-init", default=None, choices=INITS,
                    help="train the energy-trained candidates from scratch or fine-tune the baseline "
                         f"(default {ENERGY_INIT})")
    pl.add_argument("--distill", type=float, default=None, metavar="W",
                    help="networks trained from scratch in another input code also learn the baseline's output "
                         "spike rates, with weight W in [0, 1] (knowledge distillation; 0: off)")
    _add_prune_arg(pl)
    _add_train_args(pl)


def _add_sweep(sub) -> None:
    sw = sub.add_parser("sweep", help="the paper's Tables 1 and 2: largest sigma0 per schedule, on the target")
    _add_run_args(sw)
    sw.add_argument("--schedules", nargs="+", default=list(PAPER_SCHEDULES), choices=PAPER_SCHEDULES)
    sw.add_argument("--sigma0-start", type=float, default=SIGMA0_START, help="first sigma0 tried")
    sw.add_argument("--factor", type=float, default=SIGMA0_FACTOR, help="bracketing step (multiplier)")
    sw.add_argument("--sigma0-low", type=float, default=SIGMA0_LOW,
                    help="smallest sigma0 tried: below it a schedule is reported as 'none' (each step down costs a round)")
    sw.add_argument("--bisect-steps", type=int, default=BISECT_STEPS,
                    help="bisections of the bracket (log space)")
    sw.add_argument("--address", default=None,
                    help="an existing Ray cluster (e.g. ray://head:10001 or auto); default: Ray on this machine")
    sw.add_argument("--executor", default=SWEEP_EXECUTOR, choices=EXECUTORS,
                    help="run trials through Ray Tune (default) or a local process pool (where Ray is missing)")
    sw.add_argument("--cpus-per-trial", type=int, default=CPUS_PER_TRIAL)
    sw.add_argument("--gpus-per-trial", type=float, default=None,
                    help=f"default {GPU_SHARE:g} when a GPU is there ({round(1 / GPU_SHARE)} trials per GPU), else 0")
    _add_common_args(sw)
    _add_backward_args(sw)


def _add_study(sub) -> None:
    st = sub.add_parser("study", help="train a table of networks from scratch (rows from a JSON file) and "
                        "measure each on the target")
    st.add_argument("--rows", required=True, help="JSON list of rows (see lavasparse/study.py)")
    st.add_argument("--out", required=True, help="output folder (resumable)")
    st.add_argument("--test-limit", type=int, default=None, help="use only the first N test samples")
    st.add_argument("--executor", default=STUDY_EXECUTOR, choices=EXECUTORS)
    st.add_argument("--cpus-per-trial", type=int, default=CPUS_PER_TRIAL)
    st.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                    help="train every row once per seed and show the mean and spread (default: --seed only)")
    _add_engine_args(st)
    _add_energy_arg(st)
    _add_common_args(st)

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
    p.add_argument("--sparse-init", default=SPARSE_INIT, choices=INITS,
                   help="fine-tune the sparse net from the baseline (default) or train it from scratch")
    p.add_argument("--sparse-epochs", type=int, default=SPARSE_EPOCHS, help="epochs of sparsity fine-tuning")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The chosen verb's module alone: each imports the stages it uses, so
        # that check and deploy never load torch (lavasparse/commands/).
        verb = importlib.import_module(f"lavasparse.commands.{getattr(args, 'module', args.verb)}")
        return verb.run(args)
    except (ValueError, FileNotFoundError, CommandError) as e:
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
