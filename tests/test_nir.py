"""NIR both ways: our export read back into identical integers, read by
snnTorch (a reader nobody here wrote) with the target's spikes, and a
network trained in snnTorch brought onto the target."""
import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import surrogate
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir

from lavasparse.deploy.lava_runner import predict
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import read_network
from lavasparse.export.nir_export import export_nir
from lavasparse.export.nir_import import NirImportError, import_nir
from lavasparse.simulate.engines import run_target
from lavasparse.simulate.nir_reference import agreement, target_against_snntorch
from lavasparse.train.data import load_dataset
from lavasparse.train.encode import InputCode, encode_batch
from lavasparse.train.model import NetConfig, NeuronConfig, SpikingNet
from lavasparse.train.test_set import encode_test_set
from lavasparse.train.trainer import TrainConfig, load_trained, train
from conftest import QUICK_LR


def _integers(desc):
    """Every layer's kind, shapes, integer weights and neuron fields."""
    out = []
    for layer in desc.layers:
        n = layer.neuron
        out.append((type(layer).__name__, layer.shape, layer.in_shape, layer.origin,
                    None if layer.weight is None else layer.weight.tolist(),
                    None if n is None else (n.i_decay, n.v_decay, n.v_th_mant)))
    return out


@pytest.mark.parametrize("arch", ["64-32-10", "1x8x8-c4k3-p2-10", "1x16x16-c4k3s2p1-p2-16-10"])
def test_netx_to_nir_to_netx_gives_identical_integers(tmp_path, arch):
    torch.manual_seed(1)
    neurons = None
    if arch == "64-32-10":   # layers with their own thresholds and decays
        neurons = (NeuronConfig(threshold=2.0, current_decay=0.5, voltage_decay=0.1), NeuronConfig())
    original = export_netx(SpikingNet(NetConfig(arch=arch, layer_neurons=neurons)), tmp_path / "a.net")
    graph = export_nir(original, tmp_path / "a.nir")
    assert graph.metadata["dt"] > 0 and "Euler" in graph.metadata["discretisation"]
    back = import_nir(tmp_path / "a.nir", tmp_path / "run")
    assert not back.rescaled   # our own graph is on the chip's grid already
    a, b = _integers(original), _integers(back.description)
    assert len(a) == len(b) and any(row[4] for row in a)
    assert a == b


def _trained(tmp_path, arch, epochs):
    cfg = TrainConfig(name="t", net=NetConfig(arch=arch), steps=16, epochs=epochs, batch_size=32, device="cpu",
                      lr=QUICK_LR, true_rate=0.6, false_rate=0.04)
    train(cfg, tmp_path, progress=False)
    model, cfg = load_trained(tmp_path)
    return export_netx(model, tmp_path / "network.net"), cfg


def test_agreement_counts_matches_and_one_step_shifts():
    """Hand-made spikes (1 sample, 3 neurons, 5 steps, a non-spiking output
    last): a shared spike, a reader spike one step early, a target spike the
    reader lacks."""
    target = np.zeros((1, 3, 5), np.int8)
    reader = np.zeros((1, 3, 5), np.int8)
    target[0, 0, 1] = reader[0, 0, 1] = 1      # matched
    target[0, 1, 3], reader[0, 1, 2] = 1, 1    # the reader one step earlier
    target[0, 2, 4] = 1                        # only on the target
    out = np.zeros((1, 2, 5), np.int8)
    report = agreement(["h", "out"], [target, out], [reader, out])
    h = report.layers[0]
    assert (h.spikes_target, h.spikes_reference, h.both, h.either) == (3, 2, 1, 4)
    assert (h.reader_earlier, h.reader_later) == (1, 0)
    assert h.matched == pytest.approx(2 / 5) and h.shared == pytest.approx(1 / 4)
    assert report.hidden_matched == h.matched and report.layers[1].matched == 1.0
    swapped = agreement(["h", "out"], [reader, out], [target, out]).layers[0]
    assert (swapped.reader_earlier, swapped.reader_later) == (0, 1)


@pytest.mark.parametrize("arch,epochs", [("64-128-128-10", 5), ("1x8x8-c8k3-p2-64-10", 3)])
def test_snntorch_reads_our_export_as_the_target_runs_it(tmp_path, arch, epochs):
    """snnTorch's import_from_nir on our file: the same class for >= 99% of
    the digits test images and >= 99% of the hidden spikes at the same neuron
    and step, counted the strict way (both / either) and so also the usual
    way (matched: 2 * both / (target + reader))."""
    desc, cfg = _trained(tmp_path, arch, epochs)
    export_nir(desc, tmp_path / "network.nir")
    x, labels = encode_test_set("digits", None, arch, 16, 0, cfg.input_code)
    report = target_against_snntorch(desc, tmp_path / "network.nir", x, labels)
    assert len(report.layers) == len(desc.spiking_layers)
    assert all(layer.spikes_target > 0 for layer in report.layers)   # every layer spiked
    assert report.accuracy_target > 0.5
    assert report.prediction_match >= 0.99, report.table()
    assert report.hidden_shared >= 0.99, report.table()
    assert report.hidden_matched >= report.hidden_shared


def test_a_network_trained_in_snntorch_keeps_its_accuracy_on_the_target(tmp_path):
    """Built and trained in snnTorch here, written by snnTorch's export_to_nir,
    imported by lavasparse (rescaled to 8-bit weights), run on the emulator
    with the first 16 samples cross-checked on Lava: within 1 point of
    snnTorch's own accuracy on the same input spikes."""
    torch.manual_seed(0)
    train_set, test = load_dataset("digits", None)
    steps, grad = 16, surrogate.fast_sigmoid()

    def synaptic(n):
        # per-neuron tensors: snnTorch's export writes a scalar as a 0-d array, whose type NIR refuses
        return snn.Synaptic(alpha=torch.full((n,), 0.75), beta=torch.full((n,), 0.95), threshold=torch.ones(n),
                            spike_grad=grad, init_hidden=True, reset_mechanism="zero", reset_delay=False)

    net = torch.nn.Sequential(torch.nn.Linear(64, 64, bias=False), synaptic(64),
                              torch.nn.Linear(64, 10, bias=False), synaptic(10))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)

    def run(x):
        snn_utils.reset(net)
        return torch.stack([net(x[..., t]) for t in range(x.shape[-1])], -1)

    for epoch in range(8):
        order = np.random.default_rng(epoch).permutation(len(train_set))
        for b in range(0, len(order), 64):
            idx = order[b:b + 64]
            x = encode_batch(train_set, idx, (64,), steps, 1000 * epoch + b, InputCode("rate"))
            loss = torch.nn.functional.cross_entropy(run(x).sum(-1), torch.as_tensor(train_set.labels[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    x = encode_batch(test, None, (64,), steps, 7, InputCode("rate"))
    with torch.no_grad():
        own = predict(run(x).numpy())
    snn_utils.reset(net)
    nir.write(tmp_path / "snn.nir", export_to_nir(net, torch.zeros(64)))

    imported = import_nir(tmp_path / "snn.nir", tmp_path / "run")
    assert imported.rescaled
    assert max(int(np.abs(l.weight).max()) for l in imported.description.spiking_layers) == 254
    target = run_target(imported.description, x.numpy().astype(np.int8), "emulator", cross_check=16, progress=False)
    assert target.cross_checked == 16
    acc_snntorch = float((own == test.labels).mean())
    acc_target = float((target.predictions == test.labels).mean())
    assert acc_snntorch > 0.8
    assert abs(acc_target - acc_snntorch) <= 0.01, (acc_target, acc_snntorch)


def _graph(**change):
    """A small valid chain Input -> Linear -> CubaLIF -> Output, with nodes replaced by ``change``."""
    n = 4
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Linear(weight=np.ones((n, 3))),
             "lif": nir.CubaLIF(tau_syn=np.full(n, 4e-4), tau_mem=np.full(n, 1e-3), r=np.full(n, 10.0),
                                v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=np.full(n, 4.0)),
             "output": nir.Output(output_type={"output": np.array([n])})}
    nodes.update(change)
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)


@pytest.mark.parametrize("change,named", [
    ({"lif": nir.CubaLIF(tau_syn=np.full(4, 4e-4), tau_mem=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4),
                         v_threshold=np.ones(4), v_reset=np.full(4, 0.5), w_in=np.full(4, 4.0))}, "'lif'/v_reset"),
    ({"lif": nir.CubaLIF(tau_syn=np.array([4e-4, 4e-4, 8e-4, 4e-4]), tau_mem=np.full(4, 1e-3), r=np.full(4, 10.0),
                         v_leak=np.zeros(4), v_threshold=np.ones(4), w_in=np.full(4, 4.0))}, "'lif'/tau_syn"),
    ({"fc": nir.Affine(weight=np.ones((4, 3)), bias=np.full(4, 0.1))}, "'fc'/bias"),
    ({"lif": nir.Threshold(threshold=np.ones(4))}, "'lif': a Threshold after synapse 'fc'"),
    ({"lif": nir.LIF(tau=np.full(4, 5e-5), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))}, "'lif'/tau"),
])
def test_every_refusal_names_the_node_and_the_field(tmp_path, change, named):
    nir.write(tmp_path / "g.nir", _graph(**change))
    with pytest.raises(NirImportError) as e:
        import_nir(tmp_path / "g.nir", tmp_path / "run")
    assert named in str(e.value) and "g.nir" in str(e.value)


def test_a_branch_is_refused_by_name(tmp_path):
    g = _graph()
    g.edges.append(("fc", "output"))
    nir.write(tmp_path / "g.nir", g)
    with pytest.raises(NirImportError, match="node 'fc': 2 outgoing edges"):
        import_nir(tmp_path / "g.nir", tmp_path / "run")


def test_cli_exports_a_netx_file_as_nir_and_imports_it(tmp_path, capsys):
    from lavasparse.cli import main

    desc = export_netx(SpikingNet(NetConfig(arch="64-16-10")), tmp_path / "n.net")
    assert main(["export", str(desc.path), "--format", "nir", "--out", str(tmp_path / "n.nir")]) == 0
    assert main(["import", str(tmp_path / "n.nir"), "--out", str(tmp_path / "run"), "--fidelity-samples", "0"]) == 0
    assert _integers(desc) == _integers(read_network(tmp_path / "run" / "network.net"))
    assert "wrote" in capsys.readouterr().out
    # a run's checkpoint as NIR leaves the run's own netx file alone
    kept = (tmp_path / "run" / "network.net").read_bytes()
    assert main(["export", str(tmp_path / "run"), "--format", "nir", "--out", str(tmp_path / "again.nir")]) == 0
    assert (tmp_path / "run" / "network.net").read_bytes() == kept
    meta = nir.read(tmp_path / "again.nir").metadata
    assert (meta["run"], meta["checkpoint"]) == (str(tmp_path / "run"), "best") and "netx_file" not in meta
    # importing into a folder that holds another run is refused, before anything is written
    other = export_netx(SpikingNet(NetConfig(arch="64-8-10")), tmp_path / "o.net")
    main(["export", str(other.path), "--format", "nir", "--out", str(tmp_path / "o.nir")])
    capsys.readouterr()
    assert main(["import", str(tmp_path / "o.nir"), "--out", str(tmp_path / "run"), "--fidelity-samples", "0"]) != 0
    assert "holds another configuration" in capsys.readouterr().err
    assert (tmp_path / "run" / "network.net").read_bytes() == kept


def test_train_fine_tunes_an_imported_network_with_its_own_neurons(tmp_path, capsys):
    """lavasparse train --init-from an imported run: the layers keep their own
    thresholds and decays, training starts from the imported weights (at a
    learning rate of 0, the best checkpoint is the imported one) and a real
    fine-tune with the spike cost exports with the imported neurons."""
    from lavasparse.cli import main

    torch.manual_seed(2)
    neurons = (NeuronConfig(threshold=2.0, current_decay=0.5, voltage_decay=0.1), NeuronConfig())
    desc = export_netx(SpikingNet(NetConfig(arch="64-16-10", layer_neurons=neurons)), tmp_path / "n.net")
    export_nir(desc, tmp_path / "n.nir")
    imported = tmp_path / "imported"
    assert main(["import", str(tmp_path / "n.nir"), "--out", str(imported), "--steps", "8",
                 "--fidelity-samples", "0"]) == 0
    common = ["--init-from", str(imported), "--train-limit", "64", "--batch-size", "32", "--device", "cpu"]
    assert main(["train", "--out", str(tmp_path / "still"), "--epochs", "1", "--lr", "0", *common]) == 0
    still, cfg = load_trained(tmp_path / "still")
    assert cfg.steps == 8 and cfg.net.layer_neurons == load_trained(imported)[1].net.layer_neurons
    before = torch.load(imported / "best.pt")["model"]
    after = still.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

    assert main(["train", "--out", str(tmp_path / "tuned"), "--epochs", "1", "--schedule", "linear",
                 "--sigma0", "1e-4", *common]) == 0
    tuned, cfg = load_trained(tmp_path / "tuned")
    assert cfg.init_from == str((imported / "best.pt").resolve()) and cfg.lr > 0
    moved = [not torch.equal(before[k], v) for k, v in tuned.state_dict().items() if k.endswith("weight")]
    assert moved and any(moved)
    out = export_netx(tuned, tmp_path / "tuned.net")
    assert [row[5] for row in _integers(out)] == [row[5] for row in _integers(desc)]   # each layer's neuron
    assert main(["train", "--out", str(tmp_path / "bad"), "--arch", "64-32-10", *common]) == 2
    assert "is a 64-16-10 network" in capsys.readouterr().err
