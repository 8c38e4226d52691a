"""Our NeuroBench-named metrics against the neurobench library itself, on the
same SLAYER model and the same input spikes.

A one-layer network, so that both count the same time steps: NeuroBench
hooks see every step SLAYER computes, and for deeper networks that includes
the steps outside each layer's window (SLAYER pads the input by L - 1 steps),
which lavasparse leaves out, as the target never sees them."""
import torch

import lava.lib.dl.slayer as slayer
from conftest import make_net, random_spikes
from lavasparse.export.netx_export import export_netx
from lavasparse.simulate.profile import footprint_bytes, profile_run

from neurobench.metrics.static import ConnectionSparsity, Footprint
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
from neurobench.models import TorchModel


def test_metrics_match_neurobench(tmp_path):
    net = make_net("64-10", weight_scale=2.0)
    # SLAYER quantises weights in its forward pass; NeuroBench reads the float
    # parameter. Store the quantised values so both see the exported zeros.
    with torch.no_grad():
        syn = net.blocks[0].synapse
        syn.weight.data = syn._pre_hook_fx(syn.weight).data
    desc = export_netx(net, tmp_path / "n.net")
    x = torch.as_tensor(random_spikes((5, 64, 12), p=0.3, seed=3), dtype=torch.float32)

    model = TorchModel(net)
    model.add_activation_module(slayer.neuron.cuba.Neuron)
    model.register_hooks()
    with torch.no_grad():
        preds = model(x)
    data = (x, torch.zeros(len(x)))
    ops = SynapticOperations()(model, preds, data)
    sparsity = ActivationSparsity()(model, preds, data)

    with torch.no_grad():
        spikes = [s.numpy() for s in net.windowed(net(x), 12)]
    ours = profile_run(desc, x.numpy().astype("int8"), spikes).neurobench
    assert spikes[0].sum() > 0 and ops["Effective_ACs"] > 0
    assert ours["Effective_ACs"] == ops["Effective_ACs"]
    assert ours["Dense"] == ops["Dense"]
    assert abs(ours["Activation_Sparsity"] - sparsity) < 1e-12
    assert round(ours["Connection_Sparsity"], 4) == ConnectionSparsity()(model)   # NeuroBench rounds to 4 places
    assert footprint_bytes(net) == Footprint()(model)
