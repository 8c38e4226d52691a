import h5py
import numpy as np
import pytest
import torch

from conftest import make_net
from lavasparse.export.netx_export import export_netx
from lavasparse.export.netx_format import describe
from lavasparse.export.netx_format import NetFileError, read_network


def test_export_reads_back_with_input_layer(tmp_path):
    net = make_net("1x8x8-c4k3-p2-16-10")
    desc = export_netx(net, tmp_path / "n.net")
    kinds = [(l.name, l.kind, l.shape) for l in desc.layers]
    assert kinds == [("input0", "input", (1, 8, 8)), ("conv1", "conv", (4, 8, 8)),
                     ("pool2", "conv", (4, 4, 4)), ("flatten3", "flatten", (64,)),
                     ("dense4", "dense", (16,)), ("dense5", "dense", (10,))]
    pool = desc.layers[2]
    assert pool.groups == 4 and pool.stride == (2, 2) and pool.weight.shape == (4, 1, 2, 2)
    assert len(set(pool.weight.ravel().tolist())) == 1
    rows = describe(desc)
    dense = rows[4]
    assert dense["weight_bits"] is not None and 1 <= dense["weight_bits"] <= 8
    assert dense["weight_exponent"] <= 0


def test_export_refuses_nan_and_names_layer(tmp_path):
    net = make_net("64-16-10")
    with torch.no_grad():
        net.blocks[1].synapse.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="dense2"):
        export_netx(net, tmp_path / "n.net")
    assert not (tmp_path / "n.net").exists()
    assert not list(tmp_path.iterdir()), "no half-written or temporary file may stay behind"


def test_export_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "n.net"
    export_netx(make_net("64-16-10"), path)
    before = path.read_bytes()
    bad = make_net("64-16-10", seed=1)
    with torch.no_grad():
        bad.blocks[0].synapse.weight[1, 1] = float("inf")
    with pytest.raises(ValueError):
        export_netx(bad, path)
    assert path.read_bytes() == before


def _copy_without(src, dst, drop: str):
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name != drop:
                b.create_dataset(name, data=obj[()])
        a.visititems(visit)


@pytest.mark.parametrize("drop,field", [("layer/1/weight", "layer/1/weight"),
                                        ("layer/2/neuron/vThMant", "layer/2/neuron/vThMant"),
                                        ("layer/1/type", "layer/1/type"),
                                        ("layer/0/shape", "layer/0/shape")])
def test_bad_file_errors_name_file_and_field(tmp_path, drop, field):
    good = tmp_path / "good.net"
    export_netx(make_net("64-16-10"), good)
    bad = tmp_path / "bad.net"
    _copy_without(good, bad, drop)
    with pytest.raises(NetFileError, match=f"bad.net.*{field}"):
        read_network(bad)


def test_malformed_weight_shape_is_reported(tmp_path):
    path = tmp_path / "w.net"
    export_netx(make_net("64-16-10"), path)
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f["layer/1/weight"] = np.zeros((16, 63))
    with pytest.raises(NetFileError, match="layer/1/weight.*63"):
        read_network(path)


def test_not_hdf5_and_pool_layer(tmp_path):
    junk = tmp_path / "junk.net"
    junk.write_text("hello")
    with pytest.raises(NetFileError, match="junk.net.*not an HDF5"):
        read_network(junk)
    pooled = tmp_path / "pool.net"
    with h5py.File(pooled, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f["layer/0/shape"] = np.array([1, 4, 4])
        f.create_dataset("layer/1/type", (1,), "S10", [b"pool"])
    with pytest.raises(NetFileError, match="layer/1/type.*'pool'"):
        read_network(pooled)


def _edit(path, **datasets):
    """Replace or add datasets (key 'layer/1/delay' written as layer__1__delay)."""
    with h5py.File(path, "a") as f:
        for key, value in datasets.items():
            name = key.replace("__", "/")
            if name in f:
                del f[name]
            if value is not None:
                f[name] = value


@pytest.mark.parametrize("delay,expect", [
    (3, np.full((16, 64), 3)),                                   # one for all
    (np.arange(16) % 5, np.repeat((np.arange(16) % 5)[:, None], 64, 1)),   # per neuron
    (np.arange(64) % 7, np.repeat((np.arange(64) % 7)[None, :], 16, 0)),   # per input
])
def test_delays_broadcast_as_netx_does(tmp_path, delay, expect):
    path = tmp_path / "d.net"
    export_netx(make_net("64-16-10"), path)
    _edit(path, layer__1__delay=delay)
    assert np.array_equal(read_network(path).layers[1].delay, expect)


def test_delay_errors_and_clamp(tmp_path):
    path = tmp_path / "d.net"
    export_netx(make_net("64-16-10"), path)
    _edit(path, layer__1__delay=np.full(5, 2))
    with pytest.raises(NetFileError, match="layer/1/delay: shape"):
        read_network(path)
    _edit(path, layer__1__delay=-1)
    with pytest.raises(NetFileError, match="layer/1/delay: negative"):
        read_network(path)
    _edit(path, layer__1__delay=70)
    with pytest.warns(UserWarning, match="clamps"):
        assert read_network(path).layers[1].delay.max() == 62


def test_recurrent_layer_and_netx_quirks(tmp_path):
    path = tmp_path / "r.net"
    export_netx(make_net("64-16-10"), path)
    with h5py.File(path, "a") as f:
        del f["layer/1/type"]
        f.create_dataset("layer/1/type", (1,), "S10", [b"dense_rec"])
    with pytest.raises(NetFileError, match="layer/1/weight_rec: missing"):
        read_network(path)
    _edit(path, layer__1__weight_rec=np.ones((16, 16)))
    layer = read_network(path).layers[1]
    assert layer.recurrent and layer.name == "dense_rec1" and layer.weight_rec.shape == (16, 16)
    # netx gives the recurrent synapse the input synapse's delays: only a square layer can have them.
    _edit(path, layer__1__delay=1)
    with pytest.raises(NetFileError, match="layer/1/delay: netx applies one delay matrix"):
        read_network(path)
    _edit(path, layer__1__delay=None, layer__2__neuron__messageBits=8)
    with pytest.raises(NetFileError, match="layer/2/neuron/messageBits: netx 0.6.0 cannot read"):
        read_network(path)
    # A dense layer without a neuron gets netx's default integrator.
    with h5py.File(path, "a") as f:
        del f["layer/2/neuron"]
    assert read_network(path).layers[2].neuron.v_th_mant == 1 << 17


def test_dense_layers_are_flat_as_netx_builds_them():
    """lava-dl's pilotnet_lif stores its dense layers' shapes as (100, 1, 1),
    ...; netx builds them (100,), and so do we (Lava's spikes are (100, T))."""
    from pathlib import Path

    import lava.lib.dl.slayer as slayer   # lava.lib.dl is a namespace package: no __file__

    path = (Path(slayer.__file__).resolve().parents[4] / "tests" / "lava" / "lib" / "dl" / "netx" / "gts"
            / "pilotnet_lif" / "network.net")
    desc = read_network(path)
    assert [l.shape for l in desc.layers if l.kind == "dense"] == [(100,), (50,), (10,), (1,)]
    assert desc.layers[6].kind == "flatten" and desc.layers[6].shape == (2560,)
    conv4 = desc.layers[4]
    assert (conv4.shape, conv4.stride, conv4.padding) == ((64, 4, 22), (2, 1), (1, 0))   # (H, W) order
