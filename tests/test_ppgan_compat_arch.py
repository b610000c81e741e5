"""Our Paddle networks against the reference project, ppgan 2.1.0: its classes load our .pdparams 1:1 and agree."""
import numpy as np
import paddle

from paddle_impl.archs.discriminator_arch import VGGDiscriminator128
from paddle_impl.archs.rrdbnet_arch import RRDBNet
from ppgan_compat import import_ppgan


def save_and_load(net, tmp_path):
    path = str(tmp_path / 'net.pdparams')
    paddle.save(net.state_dict(), path)
    return paddle.load(path)


def load_strict(ref, state):
    """Load ``state`` into the ppgan network; return (missing, unexpected) keys."""
    ref_keys, our_keys = set(ref.state_dict()), set(state)
    ref.set_state_dict(state)
    return sorted(ref_keys - our_keys), sorted(our_keys - ref_keys)


def rand(*shape, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).random(shape, dtype=np.float32))


def test_ppgan_rrdbnet_loads_our_weights_and_gives_the_same_output(tmp_path):
    rrdb_net = import_ppgan('ppgan.models.generators.rrdb_net')
    ours = RRDBNet(in_nc=3, out_nc=3, nf=8, nb=2, gc=4)
    ref = rrdb_net.RRDBNet(in_nc=3, out_nc=3, nf=8, nb=2, gc=4)
    state = save_and_load(ours, tmp_path)
    assert load_strict(ref, state) == ([], [])
    for k, v in ref.state_dict().items():  # really loaded, not left at ppgan's own init
        np.testing.assert_array_equal(v.numpy(), state[k].numpy())
    x = rand(1, 3, 12, 10)
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)


def test_our_rrdbnet_loads_ppgan_weights(tmp_path):
    rrdb_net = import_ppgan('ppgan.models.generators.rrdb_net')
    ref = rrdb_net.RRDBNet(in_nc=3, out_nc=3, nf=8, nb=1, gc=4)
    ours = RRDBNet(nf=8, nb=1, gc=4)
    assert load_strict(ours, save_and_load(ref, tmp_path)) == ([], [])
    x = rand(1, 3, 9, 11, seed=1)
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)


def test_ppgan_vgg_discriminator_loads_our_weights_and_agrees(tmp_path):
    vgg_discriminator = import_ppgan('ppgan.models.discriminators.vgg_discriminator')
    ours = VGGDiscriminator128(in_channels=3, num_feat=4)
    for name, layer in ours.named_sublayers():
        if name.startswith('bn'):  # non-trivial running statistics, so the eval-mode outputs test them
            n = layer._mean.shape[0]
            layer._mean.set_value(rand(n, seed=len(name)) * 0.1)
            layer._variance.set_value(rand(n, seed=len(name) + 1) + 0.5)
    ref = vgg_discriminator.VGGDiscriminator128(in_channels=3, num_feat=4)
    state = save_and_load(ours, tmp_path)
    assert load_strict(ref, state) == ([], [])
    ours.eval()
    ref.eval()
    x = rand(2, 3, 128, 128, seed=2)
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)

