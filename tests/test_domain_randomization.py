"""Visual domain randomisation: the ranges and their errors, per-env draws (seeded, in range, partial
redraws), the renderer's per-env look (object colours, backdrops, image colour, camera offsets), and
GSEnv with it on and off (real physics workers, torch rendering on the CPU, tiny images)."""
from __future__ import annotations

import dataclasses
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from png_files import write_black_png, write_png
from tolerances import assert_same_render

import gsenv
from gsenv.scene.randomization import (
    DEFAULT_RANGES,
    DEFAULT_REASONS,
    DomainRandomization,
    RandomizedLook,
    draw_seed,
    load_backdrops,
)
from gsenv.splat.appearance import (
    NOISE_FRAMES,
    ImageJitter,
    Look,
    apply_image_jitter,
    noise_bank,
    noise_index,
    saturation_hue_matrix,
)
from gsenv.splat.backdrop import MAX_BACKDROP_PIXELS
from gsenv.splat.cameras import Cameras
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.renderer import SceneRenderer

H, W = 24, 32
FULL = dict(camera_translation=(-0.02, 0.02), camera_rotation=(-2.0, 2.0), focal_scale=(0.9, 1.1), light=(0.7, 1.3),
            tint=(0.9, 1.1), brightness=(-0.1, 0.1), contrast=(0.8, 1.2), saturation=(0.5, 1.5), hue=(-0.1, 0.1),
            gamma=(0.8, 1.2), noise_std=(0.01, 0.03), object_color=(-0.3, 0.3),
            backdrop_color=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
BODIES = ("fr3_link0", "cube", "plate")


# ----------------------------------------------------------------------------------------- the ranges
@pytest.mark.parametrize("bad, match", [
    ({"brightnes": (0, 0.1)}, "unknown domain_randomization key 'brightnes' .*did you mean 'brightness'"),
    ({"contrast": (1.2, 0.8)}, "low 1.2 is above high 0.8"),
    ({"gamma": (0.0, 1.0)}, r"'gamma' must lie in \(0.0, 4.0\]"),
    ({"hue": (-0.7, 0.0)}, r"'hue' must lie in \[-0.5, 0.5\]"),
    ({"noise_std": 0.1}, "must be a \\(low, high\\) pair"),
    ({"light": ("0.5", 1.0)}, "must be a \\(low, high\\) pair"),
    ({"light": (float("nan"), 1.0)}, "must be a \\(low, high\\) pair"),
    ({"backdrop_color": ((0, 0, 0), (1, 1, 2))}, "'backdrop_color' must be"),
    ({"backdrop_color": ((0, 0, 0), (1, 1, 1)), "backdrop_images": "."}, "not both"),
    ({"backdrop_images": "/nonexistent/folder"}, "not a directory"),
    ({"object_bodies": "cube"}, "list of body names"),
])
def test_bad_ranges_raise_one_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        DomainRandomization.from_any(bad)


def test_ranges_from_a_dict_or_a_dataclass_and_off():
    assert DomainRandomization.from_any(None) is None
    cfg = DomainRandomization.from_any({"light": [0.5, 1.5]})
    assert cfg.light == (0.5, 1.5) and cfg.contrast == (1.0, 1.0)
    assert DomainRandomization.from_any(cfg) is cfg
    import gsenv

    assert gsenv.DomainRandomization is DomainRandomization  # the public name
    with pytest.raises(ValueError, match="must be None, a dict"):
        DomainRandomization.from_any([("light", (0.5, 1.5))])
    with pytest.raises(ValueError, match=r"'object_bodies' \['mug'\] are not bodies"):
        RandomizedLook(DomainRandomization(object_bodies=("mug",)), 2, 1, BODIES, W, H, "cpu")


def test_the_default_preset_has_a_reason_for_each_range_and_leaves_the_rest_off():
    cfg = DomainRandomization.from_any("default")
    assert cfg == DomainRandomization.default()
    assert set(DEFAULT_REASONS) == set(DEFAULT_RANGES)
    off = DomainRandomization()
    for f in dataclasses.fields(DomainRandomization):
        want = DEFAULT_RANGES.get(f.name, getattr(off, f.name))
        assert getattr(cfg, f.name) == want, f.name
    # each range is a real range (low < high): the preset randomises what it names
    assert all(lo < hi for lo, hi in DEFAULT_RANGES.values())
    assert cfg.camera_translation == (-0.01, 0.01) and cfg.light == (0.7, 1.3) and cfg.moves_cameras


@pytest.mark.parametrize("bad, match", [
    (True, "domain_randomization=True is not accepted: pass domain_randomization='default'"),
    (False, "domain_randomization=False is not accepted: pass domain_randomization='default'"),
    ("defaults", "unknown domain_randomization preset 'defaults': the one preset is 'default'"),
])
def test_true_and_unknown_presets_point_to_default(bad, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        DomainRandomization.from_any(bad)


# ----------------------------------------------------------------------------------------- the draws
def test_draws_are_seeded_per_env_in_range_and_redrawn_only_where_reset():
    cfg = DomainRandomization.from_any(FULL)
    a = RandomizedLook(cfg, 3, 2, BODIES, W, H, "cpu")
    a.redraw([0, 1, 2], [5, 6, 7])
    va = a.snapshot()
    for key, rng in FULL.items():
        if key == "backdrop_color":
            lo, hi = torch.tensor(rng[0]), torch.tensor(rng[1])
            assert ((va[key] >= lo) & (va[key] <= hi)).all()
            continue
        vals = torch.cat([v.flatten() for v in va[key].values()]) if isinstance(va[key], dict) else va[key]
        assert ((vals >= rng[0]) & (vals <= rng[1])).all(), key
    assert va["camera_translation"].shape == (3, 2, 3) and va["object_color"]["cube"].shape == (3, 3)
    assert not torch.equal(va["light"][0], va["light"][1]) and not torch.equal(va["light"][1], va["light"][2])
    b = RandomizedLook(cfg, 3, 2, BODIES, W, H, "cpu")
    b.redraw([2, 0, 1], [7, 5, 6])  # the same seeds on the same envs, in another order
    vb = b.snapshot()
    for key in va:
        same = (all(torch.equal(va[key][k], vb[key][k]) for k in va[key]) if isinstance(va[key], dict)
                else torch.equal(va[key], vb[key]))
        assert same, key
    b.redraw([1], [99])  # a partial reset: env 1 alone draws again
    vc = b.snapshot()
    assert torch.equal(vc["light"][[0, 2]], va["light"][[0, 2]]) and not torch.equal(vc["light"][1], va["light"][1])
    assert draw_seed(3, None) == 3 and draw_seed(3, 3) != 3 and draw_seed(0, 3) == draw_seed(9, 3)


def test_an_episode_id_draws_apart_from_the_seed_of_that_number():
    """Episode k and seed k draw different looks (the salt added to an episode id once sat in the 32 bits
    torch's CPU generator drops, so both drew alike), seeds that differ only above bit 32 draw apart, and
    an episode's draw does not depend on the seed."""
    look = RandomizedLook(DomainRandomization.from_any(FULL), 4, 2, BODIES, W, H, "cpu")
    look.redraw([0, 1, 2, 3], [draw_seed(5, None), draw_seed(0, 5), draw_seed(5 + 2**32, None), draw_seed(7, 5)])
    light = look.snapshot()["light"]
    assert light[0] != light[1] and light[0] != light[2] and light[1] == light[3]
    assert all(0 <= draw_seed(s, k) < 2**32 for s, k in [(5, None), (2**40 + 1, None), (0, 2**40)])
    assert [draw_seed(s, None) for s in (0, 1, 2**32 - 1)] == [0, 1, 2**32 - 1]  # seeds' draws as before


def test_backdrop_images_from_a_folder_per_env(tmp_path):
    import imageio.v3 as iio

    red, blue = np.zeros((6, 8, 3), np.uint8), np.zeros((6, 8, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    iio.imwrite(tmp_path / "a.png", red)
    iio.imwrite(tmp_path / "b.png", blue)
    (tmp_path / "notes.txt").write_text("not an image")
    r = RandomizedLook(DomainRandomization(backdrop_images=str(tmp_path)), 6, 1, BODIES, W, H, "cpu")
    r.redraw(range(6), range(6))
    idx = r.snapshot()["backdrop_index"]
    back = r.look(torch.zeros(6, dtype=torch.int32)).backdrop
    assert back.shape == (6, H, W, 3) and set(idx.tolist()) == {0, 1}  # both images drawn, at the render size
    for b in range(6):
        assert torch.allclose(back[b, H // 2, W // 2], torch.eye(3)[[0, 2][int(idx[b])]])
    with pytest.raises(ValueError, match="has no .png/.jpg/.jpeg images"):
        DomainRandomization(backdrop_images=str(tmp_path / "empty") if (tmp_path / "empty").mkdir() is None else "")


def test_gym_make_refuses_bad_ranges_before_anything_starts():
    with pytest.raises(ValueError, match="unknown domain_randomization key 'tnt'"):
        gym.make(gsenv.registration.ENV_ID, num_envs=1, domain_randomization={"tnt": (0.9, 1.1)})


def test_turning_one_range_on_leaves_the_others_draws():
    one = RandomizedLook(DomainRandomization(light=(0.5, 1.5)), 2, 1, BODIES, W, H, "cpu")
    two = RandomizedLook(DomainRandomization(light=(0.5, 1.5), hue=(-0.2, 0.2)), 2, 1, BODIES, W, H, "cpu")
    for r in (one, two):
        r.redraw([0, 1], [1, 2])
    assert torch.equal(one.snapshot()["light"], two.snapshot()["light"])


# ----------------------------------------------------------------------------------------- the look
def _blob(centre, colour, n=30, scale=0.03):
    g = torch.Generator().manual_seed(0)
    m = torch.tensor(centre) + 0.03 * torch.randn(n, 3, generator=g)
    return Gaussians.from_activated(m, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), scale),
                                    torch.full((n,), 0.9), colors=torch.tensor([colour] * n))


def _renderer(**kw):
    bodies = {"fr3_link0": _blob([0.0, 0.0, 0.0], [0.2, 0.8, 0.2]), "cube": _blob([0.0, 0.0, 0.0], [0.8, 0.2, 0.2]),
              "plate": _blob([0.0, 0.0, 0.0], [0.2, 0.2, 0.8])}
    bg = _blob([0.0, 0.0, 3.0], [0.5, 0.5, 0.5], n=50, scale=0.08)
    return SceneRenderer(bg, bodies, backend="torch", backdrop=(0.1, 0.1, 0.1), **kw)


def _poses(B=2):
    p = {"fr3_link0": [-0.25, 0.0, 1.5], "cube": [0.0, 0.0, 1.5], "plate": [0.25, 0.0, 1.5]}
    return {k: torch.tensor([[*v, 1.0, 0, 0, 0]]).repeat(B, 1) for k, v in p.items()}


def _cams(B=2):
    K = torch.tensor([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]])
    return Cameras.shared(K, torch.eye(4), W, H, B)


@pytest.mark.parametrize("cache", [True, False])
def test_object_colour_shift_moves_only_that_body_in_that_env(cache):
    r = _renderer(cache_background=cache)
    base = r.render(_poses(), _cams(), body_alpha=True)
    shift = torch.zeros(2, 3, 3)
    shift[1, 1] = torch.tensor([-0.5, 0.5, 0.0])  # env 1's cube: less red, more green
    out = r.render(_poses(), _cams(), look=Look(body_color_shift=shift))
    ids = base.body_ids()
    cube = ids[1, 0] == 1
    diff = out.rgb.int() - base.rgb.int()
    assert torch.equal(out.rgb[0], base.rgb[0])  # env 0 unchanged
    assert (diff[1, 0][cube][:, 0] < -60).all() and (diff[1, 0][cube][:, 1] > 60).all()
    far = (base.body_alpha[1, 0, ..., 1] < 1e-3)  # pixels the cube does not touch
    assert (diff[1, 0][far] == 0).all()


def test_backdrop_per_env_and_image_jitter():
    r = SceneRenderer(None, {"cube": _blob([0.0, 0.0, 0.0], [0.8, 0.2, 0.2])}, backend="torch", backdrop=(0, 0, 0))
    poses = {"cube": torch.tensor([[0.0, 0.0, 1.5, 1.0, 0, 0, 0]]).repeat(2, 1)}
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 1.0]])
    out = r.render(poses, _cams(), alpha=True, look=Look(backdrop=colours))
    empty = out.alpha == 0
    for b in range(2):
        assert (out.rgb[b][empty[b]] == (colours[b] * 255).round().to(torch.uint8)).all()
    with pytest.raises(ValueError, match="look.backdrop must be"):
        r.render(poses, _cams(), look=Look(backdrop=torch.zeros(2, 4)))
    # the affine part: light x tint, brightness, contrast, saturation, hue
    x = torch.rand(2, 1, 4, 5, 3, generator=torch.Generator().manual_seed(1)) * 0.5
    one, zero = torch.ones(2), torch.zeros(2)
    ident = ImageJitter(gain=torch.ones(2, 3), brightness=zero, contrast=one,
                        color_matrix=saturation_hue_matrix(one, zero))
    assert torch.allclose(apply_image_jitter(x.clone(), ident), x, atol=1e-5)
    half = dataclasses.replace(ident, gain=torch.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 2.0]]))
    y = apply_image_jitter(x.clone(), half)
    assert torch.allclose(y[0], x[0] * 0.5, atol=1e-5) and torch.allclose(y[1, ..., 2], x[1, ..., 2] * 2, atol=1e-5)
    grey = dataclasses.replace(ident, color_matrix=saturation_hue_matrix(zero, zero))
    g = apply_image_jitter(x.clone(), grey)
    lum = (x * torch.tensor([0.299, 0.587, 0.114])).sum(-1)
    assert torch.allclose(g, lum[..., None].expand_as(g), atol=1e-5)
    flat = dataclasses.replace(ident, contrast=zero)  # contrast 0: every pixel the image's mean grey
    f = apply_image_jitter(x.clone(), flat)
    assert torch.allclose(f, lum.mean((2, 3))[:, :, None, None, None].expand_as(f), atol=1e-5)
    hue = saturation_hue_matrix(one, torch.full((2,), 0.5))  # half a turn: grey stays grey
    assert torch.allclose(hue @ torch.ones(3), torch.ones(2, 3), atol=1e-5)


def test_noise_is_a_function_of_key_and_frame():
    bank = noise_bank((1, 20, 30, 3), "cpu")
    assert bank.shape == (NOISE_FRAMES, 1, 20, 30, 3) and torch.equal(bank, noise_bank((1, 20, 30, 3), "cpu"))
    assert abs(float(bank.float().mean())) < 0.02 and abs(float(bank.float().std()) - 1.0) < 0.02
    keys = torch.arange(200, dtype=torch.int32)
    idx = noise_index(keys, torch.zeros(200, dtype=torch.int32), NOISE_FRAMES)
    assert ((idx >= 0) & (idx < NOISE_FRAMES)).all() and len(set(idx.tolist())) > NOISE_FRAMES // 2  # spread
    assert torch.equal(noise_index(keys[5:6], torch.zeros(1, dtype=torch.int32), NOISE_FRAMES), idx[5:6])
    later = noise_index(keys, torch.ones(200, dtype=torch.int32), NOISE_FRAMES)
    assert (later != idx).float().mean() > 0.8  # a new frame, (almost always) another noise image
    x = torch.full((2, 1, 20, 30, 3), 0.5)
    one, zero = torch.ones(2), torch.zeros(2)
    jit = ImageJitter(gain=torch.ones(2, 3), brightness=zero, contrast=one,
                      color_matrix=saturation_hue_matrix(one, zero),
                      noise_std=torch.tensor([0.0, 0.1]), noise_key=keys[:2], frame=torch.zeros(2, dtype=torch.int32),
                      noise_bank=bank)
    y = apply_image_jitter(x.clone(), jit)
    assert torch.allclose(y[0], x[0], atol=1e-6)  # std 0: no noise
    assert abs(float((y[1] - 0.5).std()) - 0.1) < 0.01


def test_jitter_to_uint8_is_the_jitter_rounded_and_fused_needs_cuda():
    from gsenv.splat.appearance import jitter_to_uint8
    from gsenv.splat.compositing import to_uint8

    rl = RandomizedLook(DomainRandomization.from_any(FULL), 3, 1, BODIES, W, H, "cpu")
    rl.redraw(range(3), range(3))
    jit = rl.look(torch.arange(3, dtype=torch.int32)).image
    x = torch.rand(3, 1, H, W, 3, generator=torch.Generator().manual_seed(2))
    out = jitter_to_uint8(x, jit)
    assert out.dtype == torch.uint8 and torch.equal(out, to_uint8(apply_image_jitter(x.clone(), jit)))
    assert not torch.equal(out, to_uint8(x))
    with pytest.raises(RuntimeError, match=r"fused=True\) needs CUDA images and triton"):
        jitter_to_uint8(x, jit, fused=True)


def test_without_triton_the_fused_jitter_is_absent_and_that_is_said_once(monkeypatch, caplog):
    import sys

    from gsenv.splat import appearance

    monkeypatch.setattr(appearance, "_FUSED", {})
    monkeypatch.setitem(sys.modules, "triton", None)  # what a machine without triton looks like
    monkeypatch.delitem(sys.modules, "gsenv.splat.jitter_kernel", raising=False)
    with caplog.at_level("WARNING", logger="gsenv.splat.appearance"):
        assert appearance._fused_kernel() is None and appearance._fused_kernel() is None
    said = [r.getMessage() for r in caplog.records if "one fused kernel" in r.getMessage()]
    assert len(said) == 1 and "triton does not import" in said[0] and "agree to one level" in said[0]


# ----------------------------------------------------------------------------------------- GSEnv
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return str(tmp_path_factory.mktemp("assets"))


def _make(assets, **kw):
    return gym.make(gsenv.registration.ENV_ID, num_envs=2, obs_mode="rgb", image_size=(H, W), scene_density=0.02,
                    asset_root=assets, num_workers=1, render_backend="torch", device="cpu", **kw)


def _rgb(obs):
    return obs["sensor_data"]["3rd_view_camera"]["rgb"].clone()


def test_env_randomised_reproducible_per_env_and_off_is_the_plain_render(assets):
    from gsenv.scene.camera_rig import bundle_cameras
    from gsenv.scene.rendering import make_renderer

    env = _make(assets, domain_randomization=FULL)
    try:
        u = env.unwrapped
        obs, _ = env.reset(seed=3)
        img, vals = _rgb(obs), u.domain_randomization_values()
        assert not torch.equal(vals["camera_translation"][0], vals["camera_translation"][1])
        assert not torch.equal(img[0], img[1])
        obs, _ = env.reset(seed=3)  # the same seed: the same draws and images
        assert torch.equal(_rgb(obs), img) and torch.equal(u.domain_randomization_values()["hue"], vals["hue"])
        # the cameras carry the offsets: env 0's viewmat differs from the bundle's
        plain = bundle_cameras(u.scene, None, 2, "cpu", image_size=(H, W))
        assert not torch.allclose(u.cameras.viewmats, plain.viewmats)
        obs, *_ = env.step(torch.zeros(2, 7))
        obs, _ = env.reset(seed=[11], options={"env_idx": [1]})  # env 1 alone draws again
        now = u.domain_randomization_values()
        assert now["light"][0] == vals["light"][0] and now["light"][1] != vals["light"][1]
        obs, _ = env.reset(seed=[4, 3])  # env 1 with env 0's earlier seed: env 0's earlier draw and image
        assert torch.equal(u.domain_randomization_values()["hue"][1], vals["hue"][0])
        # the same draws rendered in another row of the batch: equal up to float32 rounding (tolerances.py)
        assert_same_render(_rgb(obs)[1], img[0])
        obs, _ = env.reset(seed=0, options={"episode_id": [5, 5]})  # the same episode id: the same draw
        e = u.domain_randomization_values()
        assert torch.equal(e["light"][0], e["light"][1])
        assert_same_render(_rgb(obs)[0], _rgb(obs)[1])  # two rows of one batch: see tolerances.py
    finally:
        env.close()
    env = _make(assets)  # off: exactly the renderer's plain image of the bundle's cameras
    try:
        u = env.unwrapped
        obs, _ = env.reset(seed=3)
        assert u.domain_randomization_values() is None
        ref = make_renderer(u.scene, "torch", "cpu").render(u.get_body_poses(),
                                                            bundle_cameras(u.scene, None, 2, "cpu", image_size=(H, W)))
        assert torch.equal(_rgb(obs), ref.rgb[:, 0])
    finally:
        env.close()


def test_env_with_the_default_preset_draws_in_its_ranges(assets):
    env = _make(assets, domain_randomization="default")
    try:
        u = env.unwrapped
        obs, _ = env.reset(seed=1)
        vals = u.domain_randomization_values()
        for key, (lo, hi) in DEFAULT_RANGES.items():
            v = vals[key]
            assert float(v.min()) >= lo and float(v.max()) <= hi, key
            assert float(v.max()) > float(v.min()) or v.numel() == 1, key  # drawn, not fixed
        assert float(vals["hue"].abs().max()) == 0.0 and float(vals["noise_std"].max()) == 0.0  # off in the preset
        assert _rgb(obs).shape == (2, H, W, 3)
    finally:
        env.close()
    with pytest.raises(ValueError, match="pass domain_randomization='default'"):
        _make(assets, domain_randomization=True)


def test_backdrop_images_by_bit_depth_and_channel_layout(tmp_path):
    """16-bit grey (a quarter grey, not blown out to white), 16-bit colour, grey + alpha and RGBA: each
    read as its colour, alpha dropped. Tolerances: 8-bit samples are exact multiples of 1/255; a
    16-bit one is exact to float32 (the render-size resize of a constant image is the constant)."""
    h, w = 6, 8
    grey16 = np.full((h, w), 0x4000, np.uint16)
    rgb16 = np.broadcast_to(np.array([0xFFFF, 0x8000, 0x0000], np.uint16), (h, w, 3))
    grey_alpha = np.broadcast_to(np.array([51, 0], np.uint8), (h, w, 2))  # fully transparent: alpha is dropped
    rgba = np.broadcast_to(np.array([0, 102, 255, 128], np.uint8), (h, w, 4))
    for name, image in (("a_grey16", grey16), ("b_rgb16", rgb16), ("c_grey_alpha", grey_alpha), ("d_rgba", rgba)):
        write_png(tmp_path / f"{name}.png", image)
    back = load_backdrops(tmp_path, W, H, "cpu")  # [4, H, W, 3], in file-name order
    want = torch.tensor([[0x4000 / 65535] * 3, [1.0, 128 / 255, 0.0], [51 / 255] * 3, [0.0, 102 / 255, 1.0]])
    assert back.shape == (4, H, W, 3)
    assert torch.allclose(back, want[:, None, None, :].expand(4, H, W, 3), atol=1e-6)


def test_a_broken_or_huge_backdrop_image_is_refused_naming_the_file(tmp_path):
    good = write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    broken = tmp_path / "b.png"
    broken.write_bytes(good.read_bytes()[:40])  # cut off inside the image data
    with pytest.raises(ValueError, match=f"^backdrop image {re.escape(str(broken))} cannot be read"):
        load_backdrops(tmp_path, W, H, "cpu")
    broken.unlink()
    huge = write_black_png(tmp_path / "c.png", 12000, 12000)  # 140 KB on disk; 144 million pixels
    with pytest.raises(ValueError, match=f"^backdrop image {re.escape(str(huge))} is 12000x12000 pixels, more than "
                                         f"the {MAX_BACKDROP_PIXELS} allowed"):
        load_backdrops(tmp_path, W, H, "cpu")
