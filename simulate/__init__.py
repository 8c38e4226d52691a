"""Profiling on the target: spikes, synaptic operations, neuron updates and energy per layer."""
