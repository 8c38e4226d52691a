"""ISI-modulated layers (netx types ``isi_dense`` and ``isi_conv``,
``lavasparse/layers/isi.py``) as Lava processes: an ``IsiGate`` per layer
(one counter and one row of payloads per input neuron) in front of Lava's
own fixed-point Dense or Conv, taking the gate's graded spikes, and the
layer's LIF neurons, in one netx-style block (``IsiDense``, ``IsiConv``).
``IsiNetwork`` is netx's ``hdf5.Network`` that also builds these blocks;
every other layer is netx's own.

Lava's fixed-point Conv (lava-nc 0.10.0, archived, never patched here)
ignores its ``weight_exp``: ``IsiConv`` shifts the conv's sum right by the
payloads' fraction bits in a ``RightShift`` process between the synapse and
the neurons (no latency), as a dense layer's exponent does.

netx 0.6.0 (archived, never patched here) skips a layer type it does not
know, so ``IsiNetwork`` shows it each ISI layer as a ``dense`` or ``conv``
one and builds the block in its ``create_dense`` or ``create_conv``. Lava is imported at the top:
import this module only where a run needs it, after
``lava_runner.import_lava``.
"""
from __future__ import annotations

import numpy as np
from lava.lib.dl import netx
from lava.lib.dl.netx.blocks.models import AbstractPyBlockModel
from lava.lib.dl.netx.blocks.process import AbstractBlock
from lava.lib.dl.netx.utils import optimize_weight_bits
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv.process import Conv as ConvSynapse
from lava.proc.dense.process import Dense as DenseSynapse

from lavasparse.layers.isi import ISI_CONV_NETX_TYPE, ISI_NETX_TYPE, message_bits

PAYLOAD_PRECISION = 24   # Loihi 2's graded spikes: up to 24 bits


class IsiGate(AbstractProcess):
    """Per input neuron i, a counter phi_i of the steps since i's last spike
    and a row of graded payloads ``payload[i, phi]`` (phi = 0 .. K; 0 beyond
    K). Each step: phi_i += 1; where i spikes, send payload[i, phi_i] and set
    phi_i = 0. The counters restart at ``counter_start`` on each sample's
    first step (Lava time t with t % reset_interval == reset_offset), when
    the gate's input window begins. It receives and sends in the same step."""

    def __init__(self, *, payload: np.ndarray, counter_start: int, reset_interval: int, reset_offset: int,
                 name: str | None = None):
        payload = np.asarray(payload, dtype=np.int32)   # (*shape, K + 1): a row per input neuron
        shape = payload.shape[:-1]
        super().__init__(shape=shape, counter_start=int(counter_start), reset_interval=int(reset_interval),
                         reset_offset=int(reset_offset), name=name)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.payload = Var(shape=payload.shape, init=payload)
        self.count = Var(shape=shape, init=np.full(shape, int(counter_start), dtype=np.int32))


@implements(proc=IsiGate, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIsiGateModel(PyLoihiProcessModel):
    """The gate in integers, as the file and the emulator define it."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=PAYLOAD_PRECISION)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=PAYLOAD_PRECISION)
    payload: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=PAYLOAD_PRECISION)
    count: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=PAYLOAD_PRECISION)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = proc_params["reset_offset"] % self.reset_interval
        self.counter_start = proc_params["counter_start"]

    def run_spk(self):
        if self.time_step % self.reset_interval == self.reset_offset:
            self.count[:] = self.counter_start
        spiking = self.s_in.recv() != 0
        longest = self.payload.shape[-1]
        # phi past the table sends 0; holding the count there keeps it from wrapping
        np.minimum(self.count + 1, longest, out=self.count)
        at = np.take_along_axis(self.payload, np.minimum(self.count, longest - 1)[..., None], -1)[..., 0]
        sent = np.where(self.count < longest, at, 0)
        self.count[spiking] = 0
        self.s_out.send(np.where(spiking, sent, 0).astype(np.int32))


def _gate(kwargs: dict, payload: np.ndarray) -> IsiGate:
    """The block's gate, from its keyword arguments (taken out of them)."""
    return IsiGate(payload=payload, counter_start=kwargs.pop("counter_start"),
                   reset_interval=kwargs.pop("gate_reset_interval"), reset_offset=kwargs.pop("gate_reset_offset"))


def _wire(block: AbstractBlock, *stages) -> None:
    """inp -> gate -> each stage (its (in port, out port)) -> neuron -> out;
    then netx's own clean-up of the block's parameters."""
    block.inp = InPort(shape=block.gate.s_in.shape)
    block.out = OutPort(shape=block.neuron.s_out.shape)
    block.inp.connect(block.gate.s_in)
    sending = block.gate.s_out
    for receiving, out in stages:
        sending.connect(receiving)
        sending = out
    sending.connect(block.neuron.a_in)
    block.neuron.s_out.connect(block.out)
    block._clean()


class IsiDense(AbstractBlock):
    """netx-style block of an ``isi_dense`` layer: gate -> Dense (graded
    input, ``num_message_bits`` the payloads' bits, weight_exp the heights'
    exponent minus ``payload_fraction_bits``) -> LIF neurons."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        payload = np.asarray(kwargs.pop("payload"))
        self.gate = _gate(kwargs, payload)
        self.synapse = DenseSynapse(weights=kwargs.pop("weight"),
                                    weight_exp=kwargs.pop("weight_exponent") - kwargs.pop("payload_fraction_bits"),
                                    num_weight_bits=kwargs.pop("num_weight_bits"),
                                    num_message_bits=message_bits(payload))
        self.neuron = self._neuron(kwargs.pop("bias", None))
        _wire(self, (self.synapse.s_in, self.synapse.a_out))


@implements(proc=IsiDense, protocol=LoihiProtocol)
class PyIsiDenseModel(AbstractPyBlockModel):
    pass


class RightShift(AbstractProcess):
    """a_out = a_in >> bits (arithmetic: a floor), sent in the step it arrives."""

    def __init__(self, *, shape: tuple[int, ...], bits: int, name: str | None = None):
        super().__init__(shape=shape, bits=int(bits), name=name)
        self.a_in = InPort(shape=shape)
        self.a_out = OutPort(shape=shape)


@implements(proc=RightShift, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRightShiftModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self):
        self.a_out.send(np.right_shift(np.asarray(self.a_in.recv()).astype(np.int64),
                                       self.proc_params["bits"]).astype(np.int32))


class IsiConv(AbstractBlock):
    """netx-style block of an ``isi_conv`` layer: gate (a row of payloads per
    input channel, for each of its neurons) -> Conv (graded input) ->
    RightShift (the payloads' fraction bits) -> LIF neurons."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        input_shape = tuple(kwargs.pop("input_shape"))             # (x, y, channels)
        payload = np.asarray(kwargs.pop("payload"))                # (channels, K + 1)
        self.gate = _gate(kwargs, np.broadcast_to(payload[None, None], (*input_shape[:2], *payload.shape)))
        self.synapse = ConvSynapse(input_shape=input_shape, weight=kwargs.pop("weight"), stride=kwargs.pop("stride"),
                                   padding=kwargs.pop("padding"), dilation=kwargs.pop("dilation"),
                                   groups=kwargs.pop("groups"),
                                   num_message_bits=message_bits(payload))
        self.shift = RightShift(shape=self.synapse.a_out.shape, bits=kwargs.pop("payload_fraction_bits"))
        self.neuron = self._neuron(kwargs.pop("bias", None))
        _wire(self, (self.synapse.s_in, self.synapse.a_out), (self.shift.a_in, self.shift.a_out))


@implements(proc=IsiConv, protocol=LoihiProtocol)
class PyIsiConvModel(AbstractPyBlockModel):
    pass


class _Renamed:
    """An ISI layer's NetDict as netx's ``_create`` reads it: of type dense or conv."""

    def __init__(self, config, netx_type: str):
        self.config, self.netx_type = config, netx_type

    def __getitem__(self, key):
        return self.netx_type if key == "type" else self.config[key]

    def keys(self):
        return self.config.keys()


class _Layers:
    def __init__(self, layers):
        self.layers = layers

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        config = self.layers[i]
        renamed = {ISI_NETX_TYPE: "dense", ISI_CONV_NETX_TYPE: "conv"}.get(config["type"])
        return _Renamed(config, renamed) if renamed else config


class _NetConfig:
    def __init__(self, config):
        self.config = config

    def __getitem__(self, key):
        return _Layers(self.config["layer"]) if key == "layer" else self.config[key]


class IsiNetwork(netx.hdf5.Network):
    """netx's ``hdf5.Network``, with ``isi_dense`` and ``isi_conv`` layers
    built as ``IsiDense`` and ``IsiConv`` blocks. Their ``create_dense`` and
    ``create_conv`` read the file as netx 0.6.0's own do (copied from it, as
    it is archived: kept to what those layers need)."""

    def _create(self):
        plain = self.net_config
        self.net_config = _NetConfig(plain)
        try:
            return super()._create()
        finally:
            self.net_config = plain

    @staticmethod
    def create_dense(layer_config, input_message_bits=0, reset_interval=None, reset_offset=0, spike_exp=6,
                     sparse_synapse=False, rec=False):
        if not isinstance(layer_config, _Renamed):
            return netx.hdf5.Network.create_dense(layer_config, input_message_bits, reset_interval, reset_offset,
                                                  spike_exp, sparse_synapse, rec)
        config = _isi_config(layer_config, input_message_bits, reset_interval)
        shape = (int(np.prod(config["shape"])),)
        neuron_params = netx.hdf5.Network.get_neuron_params(config["neuron"], reset_interval=reset_interval,
                                                           reset_offset=reset_offset, spike_exp=spike_exp)
        weight = config["weight"]
        if weight.ndim == 1:
            weight = weight.reshape(shape[0], -1)
        weight, bits, exponent, sign_mode = optimize_weight_bits(weight)
        params = {"shape": shape, "neuron_params": neuron_params, "weight": weight, "num_weight_bits": bits,
                  "weight_exponent": exponent, "sign_mode": sign_mode, "input_message_bits": input_message_bits,
                  **_gate_params(config, reset_interval, reset_offset)}
        if "bias" in config.keys():
            params["bias"] = config["bias"]
        return IsiDense(**params), netx.hdf5.Network._table_str(type_str="IsiDense", width=1, height=1,
                                                                  channel=shape[0], delay=False)


    @staticmethod
    def create_conv(layer_config, input_shape, input_message_bits=0, reset_interval=None, reset_offset=0,
                    spike_exp=6):
        if not isinstance(layer_config, _Renamed):
            return netx.hdf5.Network.create_conv(layer_config, input_shape, input_message_bits, reset_interval,
                                                 reset_offset, spike_exp)
        config = _isi_config(layer_config, input_message_bits, reset_interval)
        # netx's own create_conv's reading of the file (Lava's (x, y, z) order, flipped kernels)
        expand = lambda x: np.array([x, x]) if np.isscalar(x) else x[::-1]   # noqa: E731
        shape = tuple(config["shape"][::-1])
        weight = config["weight"][:, :, ::-1, ::-1]
        weight = weight.reshape(weight.shape[:4]).transpose((0, 3, 2, 1))
        params = {"input_shape": input_shape, "shape": shape,
                  "neuron_params": netx.hdf5.Network.get_neuron_params(config["neuron"], reset_interval=reset_interval,
                                                                       reset_offset=reset_offset, spike_exp=spike_exp),
                  "weight": weight, "stride": expand(config["stride"]), "padding": expand(config["padding"]),
                  "dilation": expand(config["dilation"]), "groups": config["groups"],
                  "input_message_bits": input_message_bits, **_gate_params(config, reset_interval, reset_offset)}
        if "bias" in config.keys():
            params["bias"] = config["bias"]
        return IsiConv(**params), netx.hdf5.Network._table_str(type_str="IsiConv", width=shape[0], height=shape[1],
                                                                 channel=shape[2], delay=False)


def _isi_config(layer_config: _Renamed, input_message_bits: int, reset_interval):
    config = layer_config.config
    where = f"{config.f.file.filename}: {config.f.name.lstrip('/')}"
    if reset_interval is None:
        raise ValueError(f"{where}: an ISI layer needs a reset interval: its gates restart with each sample")
    if input_message_bits:
        raise ValueError(f"{where}: an ISI layer's gates count binary spikes; its input is graded")
    return config


def _gate_params(config, reset_interval: int, reset_offset: int) -> dict:
    isi = config.f["isi"]
    return {"payload": isi["payload"][()], "payload_fraction_bits": int(isi["payload_fraction_bits"][()]),
            "counter_start": int(isi["counter_start"][()]),
            # the gates restart where their input's window starts: one step before the neurons
            "gate_reset_interval": reset_interval, "gate_reset_offset": reset_offset - 1}


@implements(proc=IsiNetwork, protocol=LoihiProtocol)
class PyIsiNetworkModel(AbstractPyBlockModel):
    pass


# Lava finds a model beside its process; the runner also names them, as it does netx's RecurrentDense's.
PROCESS_MODELS = {IsiGate: PyIsiGateModel, IsiDense: PyIsiDenseModel, RightShift: PyRightShiftModel,
                  IsiConv: PyIsiConvModel, IsiNetwork: PyIsiNetworkModel}
