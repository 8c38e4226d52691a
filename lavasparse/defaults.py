"""Every choice and default of lavasparse in one place, below every stage
(it imports nothing), so that building the command line or reading a file
never loads torch, and no two modules disagree on a default: the run-level
ones (steps, epochs, batch size, the neuron, ...), then what differs per
dataset (DATASET_DEFAULTS, GENERIC_DEFAULTS), each with its measurement."""
from __future__ import annotations

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "nmnist", "shd")
SCHEDULES = ("baseline", "constant", "linear", "quadratic", "alternating", "alternating_linear")
PAPER_SCHEDULES = SCHEDULES[1:]   # Allred et al.'s five; 'baseline' has no spike-count term
COSTS = ("spikes", "synops", "energy")   # train/cost.py: Allred et al.'s spike count, synaptic ops, dynamic energy
INITS = ("baseline", "scratch")   # a sparse run: fine-tuned from the baseline, or trained from scratch like it
ENGINES = ("lava", "emulator")    # who computes the target's spikes (simulate/engines.py)
LAYOUTS = ("chw", "whc")          # our (C, H, W) order, or Lava's and lava-dl's examples' (W, H, C)
DEFAULT_PROFILE = "loihi1-davies2018"   # energy profile, simulate/profiles/

ENCODINGS = ("rate", "latency")
SYNAPSES = ("cuba", "isi")       # a dense layer's synapse: SLAYER's, or ISI-modulated (Adams et al., IMSNN)
DEFAULT_SYNAPSE = "cuba"
ISI_RULES = ("bptt", "imsnn", "imsnnc")   # lavasparse/layers/isi_synapse.py: the ISI synapse's backward rules
# The backward pass of dense and conv blocks (train/sparse_backward.py): SLAYER's, or SSGD's (Perez-Nieves &
# Goodman), the surrogate gradient only where |v - theta| < ACTIVE_BAND * theta.
BACKWARDS = ("dense", "sparse")
DEFAULT_BACKWARD = "dense"
ACTIVE_BAND = 1.0
# What the output layer gives as the class (train/model.py, simulate/): its spike counts, or its final
# potential (Adams et al.'s readout: a non-spiking layer, softmax over the potential at the end of its window,
# cross-entropy in training). A potential readout is the same CUBA layer on the chip with the largest threshold
# Lava's 17-bit vth holds, so that it never spikes or resets; its potential is read at the end of each sample.
READOUTS = ("spikes", "potential")
DEFAULT_READOUT = "spikes"
READOUT_THRESHOLD_MANT = (1 << 17) - 1


def active_band_of(backward: str, band: float | None) -> float | None:
    """The band a run with ``backward`` trains with: None with SLAYER's
    backward (a band means nothing there, so it never tells two runs apart),
    else ``band`` or ACTIVE_BAND."""
    return None if backward == "dense" else ACTIVE_BAND if band is None else band

# What every training run starts from (RunSettings, TrainConfig, NetConfig and
# the loss take these; DATASET_DEFAULTS below, then GENERIC_DEFAULTS, fill in
# what differs per dataset).
DEFAULT_DATASET = "digits"   # bundled with scikit-learn: no download
STEPS = 16                   # time steps per sample
MAX_RATE = 1.0               # spikes per step of a white pixel, rate code
EPOCHS = 60
BATCH_SIZE = 32
WEIGHT_SCALE = 1.0           # SLAYER's weight initialisation scale
POOL_WEIGHT = 1.5            # every pool synapse: a single input spike crosses threshold
VAL_FRACTION = 0.2           # of the training set held out for validation
SPARSE_EPOCHS = 20           # fine-tuning epochs of a sparse run started from the baseline
# CUBA neuron, SLAYER units (state scale 1 << 6)
NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3.0}

DEFAULT_ENCODING = "rate"     # the baseline's input code (train/encode.py)
DEFAULT_COST = "spikes"       # what sigma weighs (train/cost.py): Allred et al.'s spike count
LR_SCHEDULE = "cosine"        # 'cosine' (to 0 over the run) or 'constant'
SEED = 0
DEVICE = "auto"               # training: CUDA when there, else the CPU
SPARSE_INIT = "baseline"      # a sparse run fine-tuned from the baseline (see RunSettings.sparse_init)
# ISI-modulated synapses (lavasparse/layers/isi.py): the backward rule, and
# the ranges, in steps, from which each presynaptic neuron's Gaussian mean
# and width are drawn (uniformly) once. The paper's ranges were lost in its
# text; its own demonstration uses means of 10 and 15 steps and width 5 for
# inputs with an ISI of 10 steps. payload_fraction_bits: G is sent as a
# graded spike of round(G * 2^bits) (0 .. 64: 7 message bits), and training
# computes with that value.
ISI = {"rule": "imsnn", "mu": (1.0, 16.0), "width": (2.0, 8.0), "payload_fraction_bits": 6}
DEFAULT_ENGINE = "emulator"   # who computes the target's spikes: bit-exact and batched
CROSS_CHECK = 16              # with the emulator: samples also run on Lava, stopping on a difference
DEFAULT_LAYOUT = "chw"        # how an input array given by a user is read (LAYOUTS)

# The pipeline (lavasparse/pipeline.py): the spike-trained family's schedule
# and sigma_0 candidates; the energy-trained family's, its input code and
# start; the accuracy rule, in validation accuracy below the baseline's.
PIPELINE_SCHEDULE = "linear"
PIPELINE_SIGMA0 = (3e-6, 1e-5, 3e-5)
# On digits the energy cost costs accuracy out of proportion to what it
# saves beyond the latency code (Adam gives a weight whose class gradient
# is small a full step towards zero). Latency code from scratch, 60
# epochs, test accuracy over 8 encodings of the test set (seeds 0, 1, 2):
# no cost 96.5/96.4/95.7% at 573/493/504 nJ of dynamic energy; linear
# sigma_0 1e-6 per nJ 94.6/94.1/94.9% at 472/480/456 nJ; the rate-coded
# baseline 96.3/94.6/95.7% at about 1,300 nJ. Hence small candidates, and
# the latency-coded baseline beside them.
ENERGY_SIGMA0 = (3e-7, 1e-6)
ENERGY_ENCODING = "latency"
# A rate-trained baseline does not carry over to the latency code: on
# digits, fine-tuned from it 93.9% test accuracy, from scratch 96.5%.
ENERGY_INIT = "scratch"
VAL_TOLERANCE = 0.01

# Trials of a sweep or study (lavasparse/sweep.py TrialSettings).
EXECUTORS = ("ray", "local")   # Ray Tune (this machine or a cluster), or a process pool here
SWEEP_EXECUTOR = "ray"
STUDY_EXECUTOR = "local"
CPUS_PER_TRIAL = 1
MAX_TRIAL_FAILURES = 2         # retries of a trial that dies
GPU_SHARE = 0.25               # of a GPU per trial by default: a small SNN leaves most of it idle
# The sigma_0 search (train/selection.py SearchPlan): from SIGMA0_START,
# multiply or divide by SIGMA0_FACTOR until the outcome flips, within
# [SIGMA0_LOW, SIGMA0_HIGH], then BISECT_STEPS halvings of the bracket.
SIGMA0_START = 1e-5
SIGMA0_FACTOR = 10.0
BISECT_STEPS = 3
SIGMA0_LOW = 1e-8
SIGMA0_HIGH = 1.0

# Pixels at or below this value send no spike in the latency code: MNIST's
# anti-aliased stroke edges are faint, and each of their spikes would cost the
# first layer's whole fan-out.
LATENCY_THRESHOLD = 0.1
# The latency code's spikes all fall in the first LATENCY_WINDOW steps, so the
# network has the rest to integrate them: with CUBA neurons a spike's weight
# in the sum falls with its lateness, and late spikes have little time left to
# act. MNIST, nearly black and white, learns well with 4 (96.3% validation
# after 6 epochs on 12,000 images, rate 95.6%); digits' 17 grey levels want
# more (DATASET_DEFAULTS below).
LATENCY_WINDOW = 4


# NIR (export/nir_export.py, export/nir_import.py). NIR is continuous-time
# and stores no time step: a reader discretises with its own. snnTorch's
# reader and writer hard-code 1e-4 s (forward Euler), so that is ours: a
# decay of a per step is a time constant of dt / a. We write it into the
# graph's metadata, and read it from there on import when it is present.
NIR_DT = 1e-4   # seconds per time step
# Import rescales each layer's weights and threshold together (the same
# network) so that the largest weight uses the 8-bit signed weights (SLAYER
# writes even integers: -256..254) and the threshold stays within Lava's
# unsigned 17-bit vth (deploy/loihi2.py).
NIR_MAX_WEIGHT = 254
NIR_MAX_THRESHOLD_MANT = (1 << 17) - 1


# What a dataset gets where a setting is not given. Architectures: the papers'
# nets (Allred et al.: LeNet on CIFAR-10; Adams et al.: 784-500-10 on MNIST),
# small ones where the papers have none. Training settings, measured here:
# - lr (one value, or one per encoding): with MNIST's 784 inputs rate-coded at
#   full rate 1e-2 silences the output layer for good in the first epoch
#   (validation at chance), and so does 3e-3 at batch 128; 1e-3 learns. The
#   latency code sends about a tenth of the input spikes and wants a larger
#   step: on 12,000 MNIST images (6 epochs, batch 64) latency reached 96.3%
#   validation accuracy at 3e-3 against 94.3% at 1e-3, where rate had 95.6%
#   at 1e-3, 95.1% at 2e-3 and 84.9% at 3e-3. Digits the same way (60 epochs
#   from scratch, test set, 8 draws, mean over seeds 0 to 7; results/digits-
#   pipeline-seeds/exploration/variants9.py): rate 96.93% at 5e-4, 97.53% at
#   1e-3, 97.37% at 3e-3, 97.01% at 5e-3, 96.93% at 1e-2 (97.32% against
#   96.85% on seeds 8 to 15 for 1e-3 against 1e-2); latency 96.17% at 3e-3,
#   96.68% at 1e-2, 96.19% at 2e-2.
# - val_draws: encodings of each validation image (see TrainConfig.val_draws).
# - test_draws: encodings of each test image the target runs; accuracy and
#   cost are averaged over them. A rate- or dither-coded network's accuracy
#   on one draw carries the code's noise: on digits (360 test images), seeds
#   0 to 4, a network's accuracy on one draw and on 8 differ by up to 0.8
#   points (0.45 on average), as much as the differences the pipeline reports.
# - latency_window: digits' 17 grey levels lose in a window of 4 steps: from
#   scratch (60 epochs, latency code, 8 draws of the test set) 94.5% test
#   accuracy with 4, 96.5% with 8, where the rate-coded net has 96.3%.
# - true_rate, false_rate: the output spikes per step the loss asks of the true
#   class and the others. 0.3/0.02 give the true class about 5 spikes in 16
#   steps, and ties for the most spikes (argmax takes the lowest index) cost
#   accuracy. On MNIST 3% of validation images tie and validation accuracy
#   stalls near 95%; 0.85/0.05 reached 96.7% after 3 epochs, where 0.3/0.02
#   had 93.0% (batch 64, lr 1e-3, weight scale 2). On digits (seeds 5 to 7),
#   the latency-coded networks lost 1.2 to 2.0% of test images to ties at
#   0.3/0.02 (the rate-coded baseline 0.8 to 1.3%); at 0.6/0.04 (seeds 0 to 7, 60 epochs)
#   the rate-coded baseline gained on validation on 6 of 8 seeds (+0.6 points
#   on average) and on test on all 8 (95.8% to 97.0% on average, 8 draws),
#   the latency-coded network 96.4% on test, up from 95.7%.
DATASET_DEFAULTS = {
    "digits": {"arch": "64-128-128-10", "lr": {"rate": 1e-3, "latency": 1e-2}, "val_draws": 8, "test_draws": 8,
               "latency_window": 8, "true_rate": 0.6, "false_rate": 0.04},
    "mnist": {"arch": "784-500-10", "true_rate": 0.85, "false_rate": 0.05},
    "fashion-mnist": {"arch": "1x28x28-c16k5-p2-c32k3-p2-128-10"},
    "cifar10": {"arch": "3x32x32-c6k5p0-p2-c16k5p0-p2-120-84-10"},   # LeNet-5 shape
    "nmnist": {"arch": "2x34x34-512-10"},
    "shd": {"arch": "700-256-20"},
}
GENERIC_DEFAULTS = {"lr": {"rate": 1e-3, "latency": 3e-3}, "true_rate": 0.3, "false_rate": 0.02, "val_draws": 1,
                    "test_draws": 1,
                    "latency_window": LATENCY_WINDOW}


def dataset_lr(dataset: str, encoding: str) -> float:
    """The learning rate a run on ``dataset`` in input code ``encoding``
    takes when none is given: DATASET_DEFAULTS, then GENERIC_DEFAULTS, each
    one value or one per encoding."""
    lr = DATASET_DEFAULTS[dataset].get("lr", GENERIC_DEFAULTS["lr"])
    return lr[encoding] if isinstance(lr, dict) else lr
