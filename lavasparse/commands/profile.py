"""lavasparse profile: spikes, synaptic ops, neuron updates and energy per layer on the target."""
from __future__ import annotations

from dataclasses import replace

from lavasparse.deploy.lava_runner import check_input, load_input
from lavasparse.export.netx_format import read_network
from lavasparse.fileio import write_json
from lavasparse.simulate.energy import EnergyProfile
from lavasparse.simulate.engines import run_target
from lavasparse.simulate.profile import profile_run

from ._target import note_input_transform


def run(a) -> int:
    table = EnergyProfile.load(a.energy_profile)
    desc = read_network(a.net)
    batch = check_input(load_input(a.input, a.layout), desc, origin=a.input)
    note_input_transform(desc, batch.values)
    run = run_target(desc, batch, a.engine, a.cross_check)
    prof = replace(profile_run(desc, batch.values, run.spikes, table), engine=run.engine,
                   cross_checked_on_lava=run.cross_checked)
    print(f"engine: {run.engine}" + (f" (first {run.cross_checked} samples identical on Lava)"
                                     if run.cross_checked else "") + f"; {run.seconds:.1f} s")
    if a.json:
        write_json(a.json, prof.to_dict())
        print(f"wrote {a.json}")
    n = prof.samples
    print(f"per inference ({n} samples, {prof.steps} steps; energy profile {table.name}"
          + (f", estimated figures: {', '.join(table.estimates)}" if table.estimates else "") + ")")
    print(f"{'layer':>12s} {'neurons':>8s} {'cores':>5s} {'density':>8s} {'spikes':>10s} {'spk/neur/step':>14s} "
          f"{'synops':>12s} {'dynamic (nJ)':>13s} {'static (nJ)':>12s} {'total (nJ)':>11s}")
    for r in prof.layers:
        density = "-" if r.density is None else f"{100 * r.density:.1f}%"
        print(f"{r.name:>12s} {r.neurons:8d} {r.cores:5d} {density:>8s} {r.spikes / n:10.1f} "
              f"{r.spikes_per_neuron_per_step:14.4f} {r.synops / n:12.0f} {1e9 * r.energy_dynamic_j / n:13.3f} "
              f"{1e9 * r.energy_static_j / n:12.3f} {1e9 * r.energy_j / n:11.3f}")
    ps = prof.per_sample
    print(f"{'total':>12s} {sum(r.neurons for r in prof.layers):8d} {prof.cores:5d} {'':>8s} {ps.spikes:10.1f} "
          f"{'':>14s} {ps.synops:12.0f} {1e9 * ps.energy_dynamic_j:13.3f} {1e9 * ps.energy_static_j:12.3f} "
          f"{1e9 * ps.energy_j:11.3f}")
    print(f"synaptic ops are {100 * ps.synops / ps.ann_macs:.1f}% of the same network's ANN MACs "
          f"({ps.ann_macs:,}); input spikes {prof.input_spikes / n:.1f} per inference")
    print(f"inference time {1e6 * ps.inference_time_s:.2f} us; NeuroBench: " +
          ", ".join(f"{k} {v:.4g}" for k, v in prof.neurobench.items()))
    for note in prof.notes:
        print(f"note: {note}")
    return 0
