"""lavasparse: train sparse SNNs with SLAYER, export to netx, deploy on Lava, profile on the target."""

__version__ = "0.1.0"
