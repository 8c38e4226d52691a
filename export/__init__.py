"""Export of trained SLAYER networks to netx HDF5, and the reader/validator of that format."""
