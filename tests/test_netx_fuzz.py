"""Malformed netx files and input arrays (issue 11, items 3 and 5): the reader
refuses each with a NetFileError naming the file, the layer and the field,
never a traceback, a hang or a huge allocation; what Lava would hang on or
silently change is refused; input arrays are checked against what the run
takes."""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import make_net, random_spikes
from lavasparse.cli import main
from lavasparse.deploy.lava_runner import MAX_INPUT_CURRENT, check_input, load_input, load_labels
from lavasparse.deploy.resources import check_network
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import NetFileError, read_network
from lavasparse.layers.netx_fields import MAX_DATASET_VALUES, SHOWN_CHARS

ROOT = Path(__file__).resolve().parents[1]
FUZZ_CYCLES = 2           # cycles of the mutation kinds' shares (113 files each; the benchmark reads 10)
FUZZ_SEED = 11            # not the benchmark's 0: CI sees other files than the measured corpus


def _mutations_module():
    """benchmarks/netx_mutations.py, by its path (tests import no benchmark package)."""
    spec = importlib.util.spec_from_file_location("netx_mutations", ROOT / "benchmarks" / "netx_mutations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["netx_mutations"] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging: SIGALRM interrupts a blocking open() (of a FIFO, say)."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_mutated_lava_dl_networks_are_accepted_or_refused_by_name(tmp_path):
    """A seeded corpus mutated from lava-dl's four networks, each file read and
    checked in a child process (1 GiB more address space, 20 s): every one is
    accepted or refused with our error naming the file."""
    nm = _mutations_module()
    bases = nm.load_bases(tmp_path / "bases")
    items = nm.mutants(FUZZ_CYCLES * sum(nm.KINDS.values()), FUZZ_SEED)
    outcomes = nm.examine_all(items, tmp_path / "files", bases, timeout_s=20, memory_bytes=1 << 30, jobs=2)
    assert len(outcomes) == len(items)
    bad = [f"{o.mutant.name} ({o.mutant.what}): {o.outcome} {o.exc} [{o.stage}] {o.message[:200]}"
           for o in outcomes if o.outcome not in ("accepted", "refused")]
    assert not bad, "\n".join(bad)
    kinds = {o.mutant.kind for o in outcomes}
    assert kinds == set(nm.KINDS)
    # the corpus exercises both paths: files refused, and files the check accepts
    assert {o.outcome for o in outcomes} == {"accepted", "refused"}
    assert all(o.mutant.what for o in outcomes)


# ---- Focused cases -------------------------------------------------------------------------

def _conv_file(path, **override):
    """input (2, 6, 6) -> conv 4x3x3 -> (4, 4, 4); ``override`` replaces fields of layer 1."""
    fields = {"stride": np.array([1, 1]), "padding": np.array([0, 0]), "dilation": np.array([1, 1]),
              "groups": 1, "weight": np.full((4, 2, 3, 3), 2.0, np.float32), "shape": np.array([4, 4, 4])}
    fields.update(override)
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f["layer/0/shape"] = np.array([2, 6, 6])
        g = f.create_group("layer/1")
        g.create_dataset("type", (1,), "S10", [b"conv"])
        for k, v in fields.items():
            if v is not None:
                g[k] = v
        g.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
        for k, v in {"iDecay": 1024, "vDecay": 128, "vThMant": 80, "refDelay": 1}.items():
            g[f"neuron/{k}"] = v
    return path


def _dense_file(path, vth=80, **extra):
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f["layer/0/shape"] = np.array([8])
        g = f.create_group("layer/1")
        g.create_dataset("type", (1,), "S10", [b"dense"])
        g["shape"] = np.array([4])
        g["weight"] = np.full((4, 8), 10.0)
        g.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
        g["neuron/iDecay"], g["neuron/vDecay"], g["neuron/vThMant"] = 1024, 128, vth
        for k, v in extra.items():
            if k in g:
                del g[k]
            g[k] = v
    return path


def test_the_conv_file_helper_is_valid(tmp_path):
    layer = read_network(_conv_file(tmp_path / "ok.net")).layers[1]
    assert layer.kind == "conv" and layer.shape == (4, 4, 4) and layer.groups == 1


@pytest.mark.parametrize("override,match", [
    ({"padding": np.array([-1, -1]), "shape": np.array([4, 2, 2])}, r"layer/1/padding: -1 is outside 0\.\.127"),
    ({"padding": np.array([10000, 10000])}, r"layer/1/padding: 10000 is outside 0\.\.127 .*int8"),
    ({"stride": np.array([0, 0])}, r"layer/1/stride: 0 is outside 1\.\.127"),
    ({"dilation": np.array([0, 1])}, r"layer/1/dilation: 0 is outside 1\.\.127"),
    ({"groups": 3}, r"layer/1/weight: .*groups=3 does not map 2 input channels"),
    ({"groups": 2, "weight": np.full((3, 1, 3, 3), 2.0), "shape": np.array([3, 4, 4])}, r"groups=2 .*divide"),
    ({"groups": np.array([1])}, r"layer/1/groups: must be a scalar"),
    ({"stride": np.array([1.0, 1.0])}, r"layer/1/stride: stored as float64, must be stored as integers"),
    ({"stride": None}, r"layer/1/stride: missing \(netx 0.6.0 reads it for every conv layer\)"),
    ({"weight": np.full((4, 2, 3, 3), 2.5)}, r"layer/1/weight: 2.5 is not a whole number"),
    ({"weight": np.full((4, 2, 3, 3, 2), 2.0)}, r"layer/1/weight: conv weight must be"),
    ({"bias": np.zeros((4, 4, 4, 1))}, r"layer/1/bias: shape \(4, 4, 4, 1\) does not fit"),
    ({"bias": np.full(4, 40000.0)}, r"layer/1/bias: 40000.0 is outside -32,768\.\.32,767 .*int16"),
])
def test_conv_fields_lava_would_hang_on_or_change_are_refused(tmp_path, override, match):
    path = _conv_file(tmp_path / "c.net", **override)
    with pytest.raises(NetFileError, match=match) as e:
        read_network(path, any_neuron=True)
    assert str(e.value).startswith(str(path))
    assert main(["check", str(path)]) == 2


def test_conv_bias_per_neuron_in_lavas_order(tmp_path):
    """netx reads a per-neuron conv bias in Lava's (W, H, C) order; we hold it in (C, H, W)."""
    shape = (4, 4, 4)
    whc = np.arange(64).reshape(4, 4, 4)[::-1].copy()
    layer = read_network(_conv_file(tmp_path / "b.net", bias=whc)).layers[1]
    assert layer.bias.shape == shape and np.array_equal(layer.bias, whc.transpose(2, 1, 0))


@pytest.mark.parametrize("vth,match", [
    (0.25, r"layer/1/neuron/vThMant: stored as float64, must be stored as integers"),
    (80.0, r"layer/1/neuron/vThMant: stored as float64"),
    (0, r"layer/1/neuron/vThMant: 0 is outside 1\.\.33,554,431"),
    (1 << 40, r"layer/1/neuron/vThMant: 1099511627776 is outside"),
])
def test_thresholds_lava_cannot_shift_are_refused(tmp_path, vth, match):
    path = _dense_file(tmp_path / "t.net", vth=vth)
    with pytest.raises(NetFileError, match=match):
        read_network(path, any_neuron=True)


@pytest.mark.parametrize("field,value,match", [
    ("neuron/iDecay", 4097, r"neuron/iDecay: 4097 is outside 0\.\.4,096"),
    ("neuron/vDecay", np.float64(128), r"neuron/vDecay: stored as float64"),
    ("neuron/vDecay", np.arange(3), r"neuron/vDecay: 3 values \(3,\); netx takes one value or 4"),
    ("neuron/refDelay", 3, r"neuron/refDelay: 3; netx 0.6.0 ignores this field"),
    ("neuron/wgtExp", 2, r"neuron/wgtExp: 2; netx 0.6.0 ignores this field"),
    ("weight", np.full((4, 8), 1e30), r"layer/1/weight: 1e\+30 is outside -32,768\.\.32,768"),
    ("weight", np.zeros((4, 8)), r"layer/1/weight: all zero"),
    ("weight", np.full((4, 8), np.nan), r"layer/1/weight: 32 NaN or infinite values"),
    ("bias", np.zeros(3), r"layer/1/bias: shape \(3,\) does not fit"),
    ("delay", 2.5, r"layer/1/delay: 2.5 is not a whole number"),
])
def test_dense_fields_are_refused_naming_the_field(tmp_path, field, value, match):
    path = _dense_file(tmp_path / "d.net", **{field: value})
    with pytest.raises(NetFileError, match=match) as e:
        read_network(path)
    assert str(e.value).startswith(f"{path}: layer/1/")


def test_per_neuron_parameters_of_a_flat_layer_read(tmp_path):
    layer = read_network(_dense_file(tmp_path / "p.net", **{"neuron/vDecay": np.arange(4) * 100})).layers[1]
    assert np.array_equal(layer.neuron.v_decay, np.arange(4) * 100)


def test_delay_1e30_is_compared_before_any_cast(tmp_path):
    """netx clamps a delay of 1e30 to 62; check must say the file asks for 1e30."""
    path = _dense_file(tmp_path / "d.net", delay=np.float32(1e30))
    with pytest.warns(UserWarning, match="clamps"):
        desc = read_network(path)
    layer = desc.layers[1]
    assert layer.delay.max() == 62 and layer.delay.min() == 62
    assert layer.delay_in_file_max == int(np.float32(1e30))
    r = check_network(desc)
    hits = [v for v in r.violations if v.limit == "max_delay"]
    assert len(hits) == 1 and hits[0].value == pytest.approx(1e30, rel=1e-6) and not r.fits


def test_huge_declared_weight_is_refused_before_reading(tmp_path, monkeypatch):
    """A small file declaring a (1, 10**9) weight: refused from its declared
    shape, without reading it (no read of that dataset happens at all)."""
    path = _dense_file(tmp_path / "h.net")
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f.create_dataset("layer/1/weight", shape=(1, 10 ** 9), dtype=np.float32, chunks=(1, 1 << 16),
                         compression="gzip", fillvalue=1.0)
    assert path.stat().st_size < 100_000
    reads = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        reads.append(self.name)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    with pytest.raises(NetFileError, match=r"layer/1/weight: declares 1,000,000,000 values \(1, 1000000000\)"):
        read_network(path)
    assert reads and "/layer/1/weight" not in reads        # other fields were read; the weight was not
    # and a declared size past the bound is refused even where the shapes would fit
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"], f["layer/1/shape"]
        f["layer/1/shape"] = np.array([MAX_DATASET_VALUES // 8 + 1])
        f.create_dataset("layer/1/weight", shape=(MAX_DATASET_VALUES // 8 + 1, 8), dtype=np.float32,
                         chunks=(1024, 8), fillvalue=1.0)
    reads.clear()
    with pytest.raises(NetFileError, match="refusing to read more than"):
        read_network(path)
    assert "/layer/1/weight" not in reads


@pytest.mark.parametrize("maker,match", [
    (lambda p: os.mkfifo(p), "a FIFO"),
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: (os.mkfifo(p.with_suffix(".fifo")), p.symlink_to(p.with_suffix(".fifo"))), "a FIFO"),
    (lambda p: p.symlink_to("/dev/null"), "a character device"),
])
def test_paths_that_are_not_files_are_refused_up_front(tmp_path, maker, match):
    path = tmp_path / "net.net"
    maker(path)
    with _deadline(10):
        with pytest.raises(NetFileError, match=f"{path}: {match}"):
            read_network(path)
        assert main(["check", str(path)]) == 2


def test_links_are_not_followed(tmp_path):
    path = _dense_file(tmp_path / "l.net")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    cases = [
        ("neuron/vThMant", lambda g: h5py.ExternalLink(str(fifo), "/x"), "an external link to"),
        ("neuron/vThMant", lambda g: h5py.SoftLink("/layer/0/shape"), "a soft link to '/layer/0/shape'"),
        ("neuron", lambda g: g, "layer/1/neuron/type: 'dense' neurons are not modelled"),  # a hard-link loop
    ]
    for name, link, match in cases:
        with h5py.File(path, "a") as f:
            g = f["layer/1"]
            if name in g:
                del g[name]
            g[name] = link(g)
        with _deadline(10), pytest.raises(NetFileError, match=match):
            read_network(path)
        path = _dense_file(tmp_path / "l.net")
    with h5py.File(path, "a") as f:
        del f["layer/1/neuron/vThMant"]
        f["layer/1/neuron"].create_dataset("vThMant", shape=(1,), dtype=np.int64, external=[(str(fifo), 0, 8)])
    with _deadline(10), pytest.raises(NetFileError, match="vThMant: its data is stored in other files"):
        read_network(path)


def test_long_type_string_is_refused_and_cut_short(tmp_path):
    path = _dense_file(tmp_path / "s.net")
    for value, dtype in ((np.array(["dense" + "x" * 1_000_000], dtype=object), h5py.string_dtype()),
                         (np.array([b"d" * 1_000_000]), None)):
        with h5py.File(path, "a") as f:
            del f["layer/1/type"]
            f.create_dataset("layer/1/type", data=value, dtype=dtype)
        with pytest.raises(NetFileError, match=r"layer/1/type: a 1,00\d,\d+-byte string") as e:
            read_network(path)
        assert len(str(e.value)) < len(str(path)) + 3 * SHOWN_CHARS + 200


def test_damaged_files_are_refused_by_name(tmp_path):
    good = tmp_path / "g.net"
    export_netx(make_net("64-16-10"), good)
    data = good.read_bytes()
    for name, content in (("cut.net", data[: len(data) // 3]), ("empty.net", b""),
                          ("flipped.net", data[:100] + bytes(b ^ 0xFF for b in data[100:600]) + data[600:])):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(NetFileError) as e:
            read_network(path)
        assert str(e.value).startswith(str(path))


def test_emulator_refusals_name_the_file(tmp_path):
    from lavasparse.simulate.emulator import Emulator, UnsupportedNetwork

    path = _conv_file(tmp_path / "c.net", weight=np.full((4, 2, 3, 3), 254.0))
    x = np.full((1, 2, 6, 6, 2), 10000, np.int32)     # 18 taps x 254 x 10000 > 2**24
    with pytest.raises(UnsupportedNetwork, match=f"^{path}: layer conv1: conv sums"):
        Emulator(read_network(path), input_message_bits=16).run(x)


# ---- Input arrays --------------------------------------------------------------------------

@pytest.fixture
def dense_net(tmp_path):
    path = tmp_path / "n.net"
    export_netx(make_net("6-4-3"), path)
    return path, read_network(path)


@pytest.mark.parametrize("values,match", [
    (5, r"x.npy: 1 values outside 0\.\.1, the first 5 at \(0, 2, 1\): the values allowed for spikes"),
    (-1, r"x.npy: 1 values outside 0\.\.1, the first -1 at"),
    (0.5, r"x.npy: 0.5 at \(0, 2, 1\) is not a whole number"),
])
def test_spikes_must_be_zero_or_one(tmp_path, dense_net, values, match):
    path, desc = dense_net
    x = random_spikes((2, 6, 4), seed=1).astype(np.float64)
    x[0, 2, 1] = values
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match=match):
        check_input(load_input(tmp_path / "x.npy"), desc, origin=tmp_path / "x.npy")
    assert main(["profile", str(path), "--input", str(tmp_path / "x.npy"), "--cross-check", "0"]) == 2


def test_graded_payloads_must_fit_the_message_bits(dense_net):
    _, desc = dense_net
    x = np.zeros((1, 6, 3), np.int64)
    x[0, 0, 0] = 127
    assert check_input(x, desc, input_message_bits=8).values[0, 0, 0] == 127
    x[0, 0, 0] = 2 ** 32 + 50                 # int32 would make it 50
    with pytest.raises(ValueError, match=r"outside -128\.\.127, the first 4294967346 .*8 message bits"):
        check_input(x, desc, input_message_bits=8)
    with pytest.raises(ValueError, match=r"outside -2,147,483,648\.\.2,147,483,647"):
        check_input(x, desc, input_message_bits=32)
    with pytest.raises(ValueError, match="at most 32"):
        check_input(x, desc, input_message_bits=40)


def test_a_checked_batch_is_checked_and_copied_once(dense_net):
    """The runners take a checked batch as it is; checked for other message
    bits, it is checked again."""
    _, desc = dense_net
    x = np.zeros((2, 6, 3), np.int32)
    x[1, 2, 0] = 1
    batch = check_input(x, desc)
    assert np.shares_memory(batch.values, x)            # already int32: no copy
    assert check_input(batch, desc) is batch
    assert len(batch) == 2 and batch.head(1).values.shape == (1, 6, 3)
    x[0, 0, 0] = 5                                      # fine as a graded payload, not as a spike
    assert check_input(batch, desc, input_message_bits=8).message_bits == 8
    with pytest.raises(ValueError, match="outside 0..1"):
        check_input(check_input(x, desc, input_message_bits=8), desc)


def test_input_currents_must_fit_lavas_shift(tmp_path):
    path = tmp_path / "in.net"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f["layer/0/shape"] = np.array([3])
        for k, v in {"iDecay": 4096, "vDecay": 4096, "vThMant": 100}.items():
            f[f"layer/0/neuron/{k}"] = v
        f.create_dataset("layer/0/neuron/type", (1,), "S10", [b"CUBA"])
    desc = read_network(path)
    x = np.full((1, 3, 2), MAX_INPUT_CURRENT, np.int64)
    assert check_input(x, desc).values.max() == MAX_INPUT_CURRENT
    x[0, 1, 1] = 2 ** 32 + 50
    with pytest.raises(ValueError, match=r"the first 4294967346 at \(0, 1, 1\): .*input currents"):
        check_input(x, desc)


def test_input_files_refused_up_front(tmp_path, dense_net):
    path, desc = dense_net
    cases = {
        "empty_n.npy": (np.zeros((0, 6, 4)), r"no samples or no time steps"),
        "empty_t.npy": (np.zeros((2, 6, 0)), r"no samples or no time steps"),
        "text.npy": (np.array([["a"] * 4] * 6), r"holds <U1 values; expected numbers"),
        "objects.npy": (np.array([{"a": 1}, None], dtype=object), r"holds Python objects"),
        "complex.npy": (np.zeros((6, 4), np.complex64), r"holds complex64 values"),
    }
    for name, (array, match) in cases.items():
        np.save(tmp_path / name, array, allow_pickle=True)
        with pytest.raises(ValueError, match=f"{name}: .*{match}" if "samples" not in match else match):
            check_input(load_input(tmp_path / name), desc, origin=tmp_path / name)
    (tmp_path / "dir.npy").mkdir()
    os.mkfifo(tmp_path / "fifo.npy")
    (tmp_path / "pickle.npy").write_bytes(b"\x80\x04K\x01.")
    np.savez(tmp_path / "arch.npz", x=np.zeros((6, 4)))
    full = tmp_path / "full.npy"
    np.save(full, np.zeros((6, 400)))
    (tmp_path / "cut.npy").write_bytes(full.read_bytes()[:500])
    for name, match in (("dir.npy", "a directory"), ("fifo.npy", "a FIFO"), ("pickle.npy", "not a .npy array"),
                        ("arch.npz", "not a .npy array"), ("cut.npy", "truncated")):
        with _deadline(10), pytest.raises(ValueError, match=f"{name}: .*{match}"):
            load_input(tmp_path / name)
    np.save(tmp_path / "x.npy", random_spikes((2, 6, 4)))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y.npy: labels of shape \(3,\); expected \(2,\)"):
        load_labels(tmp_path / "y.npy", 2)
    with _deadline(30):
        assert main(["deploy", str(path), "--input", str(tmp_path / "fifo.npy")]) == 2


@pytest.mark.slow
def test_conv_bias_per_neuron_runs_as_in_lava(tmp_path):
    """A per-neuron conv bias, in Lava's (W, H, C) order as netx reads it,
    with W, H and C all different: the emulator's spikes are Lava's."""
    from lavasparse.deploy.lava_runner import run_on_lava
    from lavasparse.simulate.emulator import Emulator

    rng = np.random.default_rng(4)
    path = _conv_file(tmp_path / "b.net", shape=np.array([3, 4, 5]), weight=rng.integers(-20, 40, (3, 2, 3, 2)) * 2,
                      bias=rng.integers(-40, 60, (5, 4, 3)))
    desc = read_network(path)
    assert desc.layers[1].bias.shape == (3, 4, 5)
    x = random_spikes((3, 2, 6, 6, 6), p=0.5, seed=2)
    em = Emulator(desc).run(x)
    lava = run_on_lava(read_network(path), x, progress=False)
    assert lava.spikes[0].shape == em.spikes[0].shape and lava.spikes[0].sum() > 0
    assert np.array_equal(lava.spikes[0], em.spikes[0])
