"""What a layer kind is, in one place, below every stage: train, export,
deploy and simulate all import from here, and this package imports none of
them (numpy and h5py only, so that reading or checking a network never
loads torch).

A layer kind is one module: its ``Layer`` subclass (the netx layer: read,
emulate, count, place; see ``base``) and, if it is trained, its
``LayerSpec`` subclass (the SLAYER block: build, count, write), each listed
once below.
"""
from .base import ChipUse, Layer, LayerSpec, Synapse, UnsupportedNetwork, synaptic_ops
from .conv import ConvLayer, ConvSpec
from .dense import DenseLayer, DenseSpec
from .flatten import FlattenLayer, FlattenSpec
from .input import InputLayer
from .isi import IsiConfig, IsiConvLayer, IsiConvSpec, IsiDenseLayer, IsiDenseSpec, isi_arch
from .netx_fields import NetFileError
from .neuron import Neuron
from .pool import PoolSpec

# The layers a netx file may hold ...
LAYER_CLASSES = (InputLayer, DenseLayer, IsiDenseLayer, ConvLayer, IsiConvLayer, FlattenLayer)
# ... and those an architecture string may ask for (each by its token).
SPEC_CLASSES = (DenseSpec, IsiDenseSpec, ConvSpec, IsiConvSpec, PoolSpec, FlattenSpec)

# netx 'type' -> the class that reads it
KINDS = {netx_type: cls for cls in LAYER_CLASSES for netx_type in cls.netx_types}

__all__ = ["ChipUse", "ConvLayer", "ConvSpec", "DenseLayer", "DenseSpec", "FlattenLayer", "FlattenSpec", "InputLayer",
           "IsiConfig", "IsiConvLayer", "IsiConvSpec", "IsiDenseLayer", "IsiDenseSpec",
           "KINDS", "LAYER_CLASSES", "Layer", "LayerSpec", "NetFileError", "Neuron", "PoolSpec", "SPEC_CLASSES",
           "Synapse", "UnsupportedNetwork", "isi_arch", "synaptic_ops"]
