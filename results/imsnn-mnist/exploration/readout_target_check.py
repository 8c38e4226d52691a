"""Can the target read the potential training sees? With the output block's
threshold at Lava's largest (vThMant (1 << 17) - 1, so it never spikes or
resets), SLAYER's own potential (neuron.dynamics, integer arithmetic) times
64 x 64 (SLAYER's weight scale, and Lava's 6-bit state shift) against the
emulator's voltage v of that layer (which the tests hold equal to Lava's),
on a random 64-24-10 network and random input spikes.

    PYTHONPATH=<checkout> python readout_target_check.py   (from this folder)
"""
import sys
import tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import numpy as np, torch
from conftest import make_net, random_spikes
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import read_network
from lavasparse.simulate.emulator import Emulator
from lavasparse.train.event_synapse import delayed

steps = 12
NET = Path(tempfile.mkdtemp()) / 'n.net'
net = make_net("64-24-10", steps=steps, weight_scale=4.0)
out = net.blocks[-1]
out.neuron._threshold = ((1 << 17) - 1) / 64   # vThMant (1 << 17) - 1, the largest Lava takes
export_netx(net, str(NET))
x = random_spikes((7, 64, steps), p=0.4, seed=4)
em = Emulator(read_network(str(NET))).run(x, batch_size=3, record_states=True)
print("emulator output spikes", int(em.spikes[-1].sum()), "hidden spikes", int(em.spikes[0].sum()))
with torch.no_grad():
    net.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    spikes = net(xt)
    hidden = spikes[0]
    L = net.num_spiking_layers
    T = steps + L - 1
    z = out.synapse(delayed(hidden, 1, T))
    _, v = out.neuron.dynamics(z)
v = (v * 64 * 64).numpy()[..., 1:1 + steps]   # the output layer's window
ev = em.voltages[-1]
print(v.shape, ev.shape, "max |v|", np.abs(ev).max())
print("equal:", np.array_equal(np.round(v).astype(np.int64), ev), "max diff", np.abs(v - ev).max())
print("argmax equal:", (v[..., -1].argmax(1) == ev[..., -1].argmax(1)).mean())



