"""Lava processes and models for layer kinds netx 0.6.0 does not build
(``isi``: ISI-modulated layers). A package of their own, because Lava's
compiler imports every module in a process's folder when it looks for the
process's models; here that folder holds only these. Imported where a run
needs them (Lava imports only on Python 3.10)."""
