"""SceneRenderer and camera helpers on the torch backend (CPU)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tolerances import assert_same_render

from gsenv.geometry import quat_multiply, quat_to_rotmat
from gsenv.splat.backdrop import Backdrop
from gsenv.splat.cameras import Cameras, look_at, opengl_pose_to_viewmat, sapien_pose_to_viewmat, scale_intrinsics
from gsenv.splat.gaussians import Gaussians
from gsenv.splat.renderer import SceneRenderer
from gsenv.splat.view_state import ViewState

F, W, H = 100.0, 32, 32
CX, CY = W / 2 + 0.25, H / 2 + 0.25  # off pixel boundaries: no argmax ties


def blob(offsets, colour, scale=0.02, opacity=0.9, sh=None) -> Gaussians:
    m = torch.tensor(offsets, dtype=torch.float32).reshape(-1, 3)
    n = len(m)
    q = torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)
    s = torch.full((n, 3), scale)
    o = torch.full((n,), opacity)
    if sh is not None:
        return Gaussians.from_activated(m, q, s, o, sh=sh)
    return Gaussians.from_activated(m, q, s, o, colors=torch.tensor([colour] * n, dtype=torch.float32))


def cams(B=1, C=1, vm=None, f=F, w=W, h=H) -> Cameras:
    K = torch.tensor([[f, 0, w / 2 + 0.25], [0, f, h / 2 + 0.25], [0, 0, 1.0]])
    return Cameras.shared(K, torch.eye(4) if vm is None else vm, w, h, B)


def pose(x, y, z, q=(1.0, 0, 0, 0), B=1):
    return torch.tensor([[x, y, z, *q]], dtype=torch.float32).repeat(B, 1)


def wall(z=3.0, colour=(0.0, 0.0, 1.0)) -> Gaussians:
    """An opaque grid of gaussians filling the view at depth z."""
    xs = torch.linspace(-0.6, 0.6, 25)
    g = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    m = torch.cat([g, torch.full((len(g), 1), z)], -1)
    return blob(m.tolist(), colour, scale=0.04, opacity=0.99)


def test_body_pixels_follow_the_pose():
    r = SceneRenderer(None, {"cube": blob([[0.1, 0.0, 0.0]], (1.0, 0.0, 0.0))}, backend="torch")
    qz90 = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))  # +90 deg about z
    for (x, y, z), q, off in [((0.0, 0.0, 2.0), (1.0, 0, 0, 0), (0.1, 0, 0)),
                              ((0.15, -0.05, 2.5), (1.0, 0, 0, 0), (0.1, 0, 0)),
                              ((-0.1, 0.05, 2.0), qz90, (0.0, 0.1, 0))]:
        out = r.render({"cube": pose(x, y, z, q)}, cams(), alpha=True, depth=True)
        wx, wy, wz = x + off[0], y + off[1], z + off[2]
        u, v = F * wx / wz + CX, F * wy / wz + CY  # camera maths: pinhole projection
        a = out.alpha[0, 0]
        iy, ix = divmod(int(a.argmax()), W)
        assert (ix, iy) == (int(u), int(v))
        assert out.depth[0, 0, iy, ix].item() == pytest.approx(wz, rel=1e-4)
        assert out.rgb.dtype == torch.uint8 and out.rgb.shape == (1, 1, H, W, 3)
        assert out.rgb[0, 0, iy, ix, 0] > 150 and out.rgb[0, 0, iy, ix, 2] == 0


def test_rotating_body_and_camera_together_keeps_the_image():
    g = torch.Generator().manual_seed(0)
    m = (torch.rand(80, 3, generator=g) - 0.5) * 0.3
    sh = torch.randn(80, 16, 3, generator=g) * 0.4
    body = Gaussians(m, torch.randn(80, 4, generator=g), torch.full((80, 3), math.log(0.03)),
                     torch.full((80,), 2.0), sh)
    r = SceneRenderer(None, {"obj": body}, backend="torch")
    vm = look_at(torch.tensor([0.3, -1.2, 0.5]), torch.zeros(3))
    base = r.render({"obj": pose(0, 0, 0)}, cams(vm=vm)).rgb
    # rotate the world by Q: body pose Q, camera world-to-camera V Q^-1
    q = torch.tensor([0.8, 0.2, -0.4, 0.3])
    q = q / q.norm()
    Q = torch.eye(4)
    Q[:3, :3] = quat_to_rotmat(q)
    Q[:3, 3] = torch.tensor([0.2, 0.1, -0.3])
    moved = r.render({"obj": torch.cat([Q[:3, 3], q])[None]}, cams(vm=vm @ torch.linalg.inv(Q))).rgb
    assert (base.int() - moved.int()).abs().max() <= 1
    assert base.float().mean() > 20
    # rotating the body alone changes the image (the test is not vacuous)
    only_body = r.render({"obj": torch.cat([torch.zeros(3), q])[None]}, cams(vm=vm)).rgb
    assert (base.int() - only_body.int()).abs().max() > 30


@pytest.mark.parametrize("cache", [True, False])
def test_depth_test_against_background(cache):
    r = SceneRenderer(wall(3.0), {"cube": blob([[0, 0, 0]], (1.0, 0.0, 0.0), scale=0.05, opacity=0.99)},
                      backend="torch", cache_background=cache)
    front = r.render({"cube": pose(0, 0, 2.0)}, cams(), body_alpha=True, depth=True)
    behind = r.render({"cube": pose(0, 0, 4.0)}, cams(), body_alpha=True, depth=True)
    c = (0, 0, H // 2, W // 2)
    assert front.rgb[c][0] > 200 and front.rgb[c][2] < 30  # red cube over the blue wall
    assert behind.rgb[c][0] < 30 and behind.rgb[c][2] > 200  # hidden by the wall
    assert front.depth[c].item() == pytest.approx(2.0, abs=0.05)
    assert behind.depth[c].item() == pytest.approx(3.0, abs=0.05)
    assert front.body_ids()[c].item() == 0 and behind.body_ids()[c].item() == -1
    assert front.body_ids()[0, 0, 2, 2].item() == -1  # the wall owns the corner


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.float() - b.float()) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _scene():
    g = torch.Generator().manual_seed(1)
    n = 300
    bg_m = torch.cat([(torch.rand(n, 2, generator=g) - 0.5) * 1.6, 2.5 + 0.3 * torch.rand(n, 1, generator=g)], -1)
    bg = Gaussians.from_activated(bg_m, torch.randn(n, 4, generator=g), torch.rand(n, 3, generator=g) * 0.08 + 0.02,
                                  torch.rand(n, generator=g) * 0.5 + 0.5, colors=torch.rand(n, 3, generator=g))
    bodies = {}
    for _i, name in enumerate(["link0", "link1", "cube"]):
        m = (torch.rand(60, 3, generator=g) - 0.5) * 0.15
        bodies[name] = Gaussians.from_activated(m, torch.randn(60, 4, generator=g),
                                                torch.rand(60, 3, generator=g) * 0.02 + 0.005,
                                                torch.rand(60, generator=g) * 0.5 + 0.5,
                                                colors=torch.rand(60, 3, generator=g))
    return bg, bodies


def _poses(B):
    t = torch.linspace(0, 1, B)[:, None]
    return {"link0": torch.cat([torch.stack([-0.3 + 0 * t[:, 0], 0.1 * t[:, 0], 1.5 + t[:, 0]], -1),
                                torch.tensor([[1.0, 0, 0, 0]]).repeat(B, 1)], -1),
            "link1": torch.cat([torch.stack([0.2 * t[:, 0], -0.2 + 0 * t[:, 0], 2.0 + 0 * t[:, 0]], -1),
                                torch.tensor([[0.9, 0.3, 0.1, 0.0]]).repeat(B, 1)], -1),
            "cube": torch.cat([torch.stack([0.3 + 0 * t[:, 0], 0.2 * t[:, 0], 2.6 + 0 * t[:, 0]], -1),
                               torch.tensor([[0.7, 0, 0.7, 0.0]]).repeat(B, 1)], -1)}


def test_batched_equals_one_by_one_and_cache_close_to_joint():
    bg, bodies = _scene()
    B, C = 3, 2
    vms = torch.stack([look_at(torch.tensor([0.1 * c, -0.1, 0.0]), torch.tensor([0.0, 0.0, 2.5])) for c in range(C)])
    K = torch.tensor([[40.0, 0, 20], [0, 40, 16], [0, 0, 1]]).repeat(C, 1, 1)
    cameras = Cameras.shared(K, vms, 40, 32, B)
    poses = _poses(B)
    cached = SceneRenderer(bg, bodies, backend="torch", backdrop=(0.2, 0.3, 0.4))
    joint = SceneRenderer(bg, bodies, backend="torch", backdrop=(0.2, 0.3, 0.4), cache_background=False)
    a = cached.render(poses, cameras, depth=True)
    b = joint.render(poses, cameras, depth=True)
    assert a.rgb.shape == (B, C, 32, 40, 3)
    assert _psnr(a.rgb, b.rgb) >= 35
    for i in range(B):
        for c in range(C):
            one = Cameras(cameras.Ks[i:i + 1, c:c + 1], cameras.viewmats[i:i + 1, c:c + 1], 40, 32)
            p1 = {k: v[i:i + 1] for k, v in poses.items()}
            # a 1 x 1 batch vs a 3 x 2 one: other matmul shapes, so equal up to float32 rounding (tolerances.py)
            assert_same_render(joint.render(p1, one).rgb[0, 0], b.rgb[i, c], (i, c))
            fresh = SceneRenderer(bg, bodies, backend="torch", backdrop=(0.2, 0.3, 0.4))
            assert_same_render(fresh.render(p1, one).rgb[0, 0], a.rgb[i, c], (i, c))


def test_background_kept_in_the_view_state_until_told_the_cameras_changed():
    bg, bodies = _scene()
    r = SceneRenderer(bg, bodies, backend="torch")
    views = ViewState()
    c1 = cams(B=2, vm=look_at(torch.tensor([0.0, -0.1, 0.0]), torch.tensor([0.0, 0.0, 2.5])), f=40.0)
    first = r.render(_poses(2), c1, views=views).rgb
    assert r.background_images_rendered == 1  # shared cameras: background rendered once per camera, not per env
    assert torch.equal(r.render(_poses(2), c1, views=views).rgb, first)
    assert r.background_images_rendered == 1  # kept
    # per-env cameras that differ, said so: the background is made again, per env, as a fresh render's
    vms = torch.stack([look_at(torch.tensor([0.1 * i, -0.1, 0.0]), torch.tensor([0.0, 0.0, 2.5])) for i in range(2)])
    c2 = Cameras(c1.Ks, vms[:, None], W, H)
    views.cameras_changed()
    got = r.render(_poses(2), c2, views=views).rgb
    assert r.background_images_rendered == 1 + 2  # one per env now
    assert torch.equal(got, SceneRenderer(bg, bodies, backend="torch").render(_poses(2), c2).rgb)
    # one env's camera moves, said so: that env's background alone is rendered again
    vms2 = vms.clone()
    vms2[1, 0, 3] += 0.05
    c3 = Cameras(c1.Ks, vms2[:, None], W, H)
    views.cameras_changed([1])
    got3 = r.render(_poses(2), c3, views=views).rgb
    assert r.background_images_rendered == 3 + 1
    assert torch.equal(got3, SceneRenderer(bg, bodies, backend="torch").render(_poses(2), c3).rgb)
    assert torch.equal(got3[0], got[0]) and not torch.equal(got3[1], got[1])
    # without a ViewState nothing is kept: each render makes its background
    assert torch.equal(r.render(_poses(2), c3).rgb, got3) and r.background_images_rendered == 4 + 2


def test_a_view_state_of_other_cameras_is_refused():
    bg, bodies = _scene()
    r, views = SceneRenderer(bg, bodies, backend="torch"), ViewState()
    r.render(_poses(2), cams(B=2), views=views)
    with pytest.raises(ValueError, match="cameras_changed"):
        r.render(_poses(3), cams(B=3), views=views)


def test_body_alpha_at_projected_points():
    bodies = {"a": blob([[0, 0, 0]], (1.0, 0, 0), scale=0.03), "b": blob([[0, 0, 0]], (0, 1.0, 0), scale=0.03)}
    r = SceneRenderer(None, bodies, backend="torch")
    poses = {"a": pose(-0.2, 0.0, 2.0), "b": pose(0.25, 0.1, 2.5)}
    out = r.render(poses, cams(), body_alpha=True)
    assert out.body_alpha.shape == (1, 1, H, W, 2)
    ids = out.body_ids()
    for k, (x, y, z) in enumerate([(-0.2, 0.0, 2.0), (0.25, 0.1, 2.5)]):
        u, v = int(F * x / z + CX), int(F * y / z + CY)
        assert ids[0, 0, v, u].item() == k
        assert out.body_alpha[0, 0, v, u, k].item() > 0.8 and out.body_alpha[0, 0, v, u, 1 - k].item() < 1e-3
    assert ids[0, 0, 0, 0].item() == -1


def test_backdrop_image_any_size_and_errors():
    img = torch.zeros(5, 7, 3, dtype=torch.uint8)
    img[..., 1] = 200
    r = SceneRenderer(None, {"cube": blob([[0, 0, 0]], (1.0, 0, 0))}, backend="torch", backdrop=img)
    out = r.render({"cube": pose(0, 0, -5.0)}, cams())  # behind the camera: only backdrop
    assert torch.all(out.rgb[..., 1] == 200) and torch.all(out.rgb[..., 0] == 0)
    with pytest.raises(ValueError, match="lacks \\['cube'\\]"):
        r.render({"other": pose(0, 0, 1)}, cams())
    with pytest.raises(ValueError, match="must be \\[B, 7\\]"):
        r.render({"cube": pose(0, 0, 1, B=2)}, cams(B=1))
    with pytest.raises(ValueError, match="backdrop must be"):
        SceneRenderer(None, {}, backdrop=(1.0, 0.0))
    with pytest.raises(ValueError, match="backend must be"):
        SceneRenderer(None, {}, backend="cuda")


def test_camera_conversions():
    # SAPIEN camera at the origin looking along +x (y left, z up)
    V = sapien_pose_to_viewmat(torch.eye(4))
    p = lambda x: (V @ torch.tensor([*x, 1.0]))[:3]  # noqa: E731
    assert torch.allclose(p((2.0, 0, 0)), torch.tensor([0.0, 0, 2]))
    assert torch.allclose(p((2.0, 1, 0)), torch.tensor([-1.0, 0, 2]))  # left -> negative x
    assert torch.allclose(p((2.0, 0, 1)), torch.tensor([0.0, -1, 2]))  # up -> negative y
    # OpenGL camera at the origin looking along -z (y up)
    V = opengl_pose_to_viewmat(torch.eye(4))
    assert torch.allclose(p((1.0, 1.0, -2.0)), torch.tensor([1.0, -1.0, 2.0]))
    # upstream's calibrated camera: a point ahead on its forward axis lands on the principal point
    R = torch.tensor([[0.68370109, -0.50239316, 0.52929587], [0.33318036, 0.86018832, 0.38609201],
                      [-0.64926404, -0.08762054, 0.75549905]])
    T = torch.eye(4)
    T[:3, :3], T[:3, 3] = R, torch.tensor([0.075, -0.161, 0.497])
    V = sapien_pose_to_viewmat(T)
    X = T[:3, 3] + 0.8 * R[:, 0]
    assert torch.allclose(p(X.tolist()), torch.tensor([0.0, 0.0, 0.8]), atol=1e-5)
    K = torch.tensor([[604.152161, 0, 316.670074], [0, 604.267212, 243.194473], [0, 0, 1]])
    K2 = scale_intrinsics(K, (640, 480), (320, 240))
    assert torch.allclose(K2, torch.tensor([[302.0760805, 0, 158.335037], [0, 302.133606, 121.5972365], [0, 0, 1]]))
    c = Cameras.shared(K, V, 640, 480, 2).scaled(224, 224)
    assert c.Ks.shape == (2, 1, 3, 3) and c.Ks[0, 0, 0, 0].item() == pytest.approx(604.152161 * 224 / 640)
    with pytest.raises(ValueError, match="Ks must be"):
        Cameras(torch.zeros(2, 1, 3, 3), torch.zeros(2, 2, 4, 4), 8, 8)
    # quaternion helper sanity: q ⊗ q^-1 = identity
    q = torch.tensor([0.5, 0.5, -0.5, 0.5])
    assert torch.allclose(quat_multiply(q, q * torch.tensor([1, -1, -1, -1.0])), torch.tensor([1.0, 0, 0, 0]))


@pytest.mark.parametrize("cache", [True, False])
def test_bodies_outside_every_view_are_culled_without_changing_the_image(cache):
    """A body no camera of any env can see is left out of rasterisation; the images stay identical."""
    near = blob([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]], (1.0, 0.0, 0.0))
    far_away = blob([[0.0, 0.0, 0.0], [0.0, 0.05, 0.0]], (0.0, 1.0, 0.0))
    poses2 = {"near": pose(0.0, 0.0, 2.0, B=2), "far": pose(3.0, 0.0, 2.0, B=2)}  # 3 m right at 2 m depth
    both = SceneRenderer(wall(), {"near": near, "far": far_away}, backend="torch", cache_background=cache)
    only_near = SceneRenderer(wall(), {"near": near}, backend="torch", cache_background=cache)
    a = both.render(poses2, cams(B=2), depth=True, body_alpha=True)
    b = only_near.render({"near": poses2["near"]}, cams(B=2), depth=True)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    cams2 = cams(B=2)
    kept = both.visible_bodies(both.stack_poses(poses2, 2, cams2.device), cams2)
    assert len(kept.splats) == 2 and kept.index.tolist() == [0, 0]  # "far" was left out
    assert a.body_alpha[..., 1].max() == 0 and a.body_alpha[..., 0].max() > 0.5
    # as soon as one env's camera can see it, it is rendered (for every env)
    poses2["far"] = torch.tensor([[3.0, 0.0, 2.0, 1, 0, 0, 0], [0.1, 0.0, 2.0, 1, 0, 0, 0]])
    c = both.render(poses2, cams(B=2), body_alpha=True)
    assert c.body_alpha[1, ..., 1].max() > 0.5 and c.body_alpha[0, ..., 1].max() == 0


def test_clusters_of_one_body_are_culled_separately():
    """A long body half in view: the gaussians of its far end are left out, the image is the same."""
    xs = torch.linspace(0.0, 3.0, 61)  # a 3 m rod along x, 5 cm apart: 61 cells
    rod = blob([[float(x), 0.0, 0.0] for x in xs], (1.0, 1.0, 0.0), scale=0.01)
    r = SceneRenderer(None, {"rod": rod}, backend="torch")
    p = {"rod": pose(-0.1, 0.0, 2.0)}
    c = cams()
    splats = r.visible_bodies(r.stack_poses(p, 1, c.device), c).splats
    half_width = (W - CX + 4) / F * 2.0  # the view's half width at 2 m, plus the margin
    assert 0 < len(splats) < len(rod) and splats.means[:, 0].max() - 0.1 <= half_width + 0.1
    whole = SceneRenderer(None, {"rod": rod}, backend="torch", cull=False)
    assert torch.equal(r.render(p, c).rgb, whole.render(p, c).rgb)


def test_a_body_reaching_into_the_view_is_kept():
    # centre 2 px outside the image's right edge, but 3-sigma of its gaussians reaches into it
    x_edge = (W - CX) / F * 2.0
    body = blob([[0.0, 0.0, 0.0]], (0.0, 1.0, 0.0), scale=0.03)
    r = SceneRenderer(None, {"b": body}, backend="torch")
    p = {"b": pose(x_edge + 2.0 / F * 2.0, 0.0, 2.0)}
    out = r.render(p, cams(), alpha=True)
    assert out.alpha[0, 0, :, -1].max() > 0.05
    assert r.visible_bodies(r.stack_poses(p, 1, torch.device("cpu")), cams()) is r.body_splats  # none left out


def test_cameras_changed_in_place_and_said_so_are_rendered_anew():
    """The view state keeps the background and the culling frusta until told the cameras changed: an
    in-place change of the same tensors, said so, re-renders the background and moves the frusta."""
    bg, bodies = _scene()
    c = cams(B=2)
    c = Cameras(c.Ks.clone(), c.viewmats.clone(), W, H)
    r, views = SceneRenderer(bg, bodies, backend="torch"), ViewState()
    before = r.render(_poses(2), c, views=views).rgb
    assert torch.equal(r.render(_poses(2), c, views=views).rgb, before)
    c.viewmats[..., 0, 3] += 0.15  # the camera moves 15 cm sideways: the same tensor, new values
    views.cameras_changed()
    after = r.render(_poses(2), c, views=views).rgb
    fresh = SceneRenderer(bg, bodies, backend="torch").render(_poses(2), Cameras(c.Ks, c.viewmats.clone(), W, H)).rgb
    assert not torch.equal(after, before) and torch.equal(after, fresh)



def test_visible_spheres_is_the_per_sphere_frustum_test():
    """The blocked matrix product against a plain loop over spheres, envs and cameras: several bodies
    of different cluster counts (one without any), poses per env, spheres on both sides of the planes."""
    from gsenv.geometry import pose_to_matrix
    from gsenv.splat.culling import BodyClusters, frustum_planes, sphere_blocks, visible_spheres

    g = torch.Generator().manual_seed(0)
    body_of = torch.tensor([0, 0, 0, 2, 2, 3, 3, 3, 3, 3])  # body 1 has no cluster
    centres = torch.randn(len(body_of), 3, generator=g) * 0.6
    radii = torch.rand(len(body_of), generator=g) * 0.2
    clusters = BodyClusters(torch.zeros(0, dtype=torch.long), body_of, centres, radii)
    B, C, NB = 3, 2, 5
    q = torch.nn.functional.normalize(torch.randn(B, NB, 4, generator=g), dim=-1)
    t = torch.randn(B, NB, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, 2.0])
    body_to_world = pose_to_matrix(torch.cat([t, q], -1))  # [B, NB, 4, 4]
    c = cams(B=B)
    Ks, vms = c.Ks.repeat(1, C, 1, 1), c.viewmats.repeat(1, C, 1, 1)
    vms[:, 1, 0, 3] += 0.8  # the second camera looks elsewhere
    planes = frustum_planes(Ks, vms, W, H, 0.01)  # [B, C, 5, 4]
    want = torch.zeros(len(body_of), dtype=torch.bool)
    for s in range(len(body_of)):
        x = body_to_world[:, body_of[s]] @ torch.cat([centres[s], torch.ones(1)])  # [B, 4] in the world
        dist = (planes @ x[:, None, :, None])[..., 0]  # [B, C, 5]
        want[s] = bool((dist > -radii[s]).all(-1).any())
    got = visible_spheres(sphere_blocks(clusters), body_to_world, planes)
    assert got.dtype == torch.bool and torch.equal(got, want)
    assert 0 < int(want.sum()) < len(want)  # some in view, some not: the test can tell


def test_a_16_bit_backdrop_shows_at_its_value_through_translucent_splats(tmp_path):
    """A 16-bit grey PNG at half grey behind a black translucent pane: each pixel is (1 - alpha) * 0.5,
    not white (16-bit samples are scaled by 65535, not taken as 0-255 values). Tolerance: one uint8
    step (the image's rounding)."""
    from png_files import write_png

    from gsenv.splat.backdrop import read_backdrop_image

    image = read_backdrop_image(write_png(tmp_path / "grey16.png", np.full((5, 7), 0x8000, np.uint16)))
    xs = torch.linspace(-0.6, 0.6, 25)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    pane = blob(torch.cat([grid, torch.full((len(grid), 1), 3.0)], -1).tolist(), (0.0, 0.0, 0.0), scale=0.04,
                opacity=0.15)
    r = SceneRenderer(None, {"pane": pane}, backend="torch", backdrop=image)
    out = r.render({"pane": pose(0, 0, 0)}, cams(), alpha=True)
    alpha = out.alpha[0, 0]
    assert 0.3 < alpha.mean() < 0.9  # the pane is there, and the backdrop shows through it
    want = (1 - alpha) * (0x8000 / 65535) * 255
    assert (out.rgb[0, 0].float() - want[..., None]).abs().max() <= 1.0


def test_backdrop_values_by_dtype():
    cpu = torch.device("cpu")
    assert torch.equal(Backdrop((0, 0, 0), cpu).at(2, 2), torch.zeros(3))  # a colour as ints
    white16 = torch.full((2, 2, 3), 0xFFFF, dtype=torch.uint16)
    assert torch.equal(Backdrop(white16, cpu).at(2, 2), torch.ones(2, 2, 3))
    with pytest.raises(ValueError, match=r"backdrop floats must lie in \[0, 1\]"):
        Backdrop(np.full((2, 2, 3), 255.0), cpu)
    with pytest.raises(ValueError, match="backdrop must be uint8, uint16 or float in"):
        Backdrop(np.zeros((2, 2, 3), np.int32), cpu)
