"""Training of spiking networks with SLAYER and an explicit spike-count loss.

Nothing here imports ``lava.magma`` or netx: training must also run where only
SLAYER imports (the GPU machine's Python 3.12 with a newer torch).
"""
