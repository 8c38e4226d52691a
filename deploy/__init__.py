"""Deployment of netx HDF5 networks onto Lava processes, run in the Loihi 2 simulator."""
