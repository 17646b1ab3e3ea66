"""The generalisation suite (rl4vla's out-of-distribution protocol, arXiv 2505.19789, as RLinf evaluates it): the
in-distribution pick-and-place task and 13 variants, each changed in one way. ``SUITE`` lists them in the
protocol's order; each is a gymnasium id ``GSEnv/PutCubeOnPlate<Variant>-v0`` (and RLinf's form
``GSEnv-PutCubeOnPlate<Variant>-v0``) made with ``gym.make(v.env_id, **v.make_kwargs)``.

The tasks are the pick-and-place family (gsenv.tasks.put_on_receptacle): a graspable from a pool of cubes and a
cylinder on a receptacle from a pool of plates, a bowl and a tray, each pool split into train and test.
``obj_set`` picks the split of what a variant holds out (rl4vla's meaning: obj_set="test" is the unseen values of
what the variant varies); the in-distribution row uses obj_set="train", every variant "test".

| category | name | what changes | obj_set splits |
|---|---|---|---|
| in-distribution | Main | nothing: train objects on train receptacles, training phrasings | both pools |
| vision | VisionImage | the wall and floor replaced by a background image (4 procedural images, packaged) | nothing |
| vision | VisionTexture03 / 05 | each object's colour shifted per channel by U(-s, s), s = 0.3 / 0.5 | nothing |
| vision | VisionWhole03 / 05 | the image's light, contrast, saturation, tint and hue, at strength s (below) | nothing |
| semantic | UnseenObjects | a test graspable (yellow, small orange, large cyan cube, purple cylinder) | graspables |
| semantic | UnseenReceptacles | the receptacle from the test split (bowl, tray) | receptacles |
| semantic | Instruct | four new phrasings of the instruction | nothing |
| semantic | MultiObject | 2-3 graspables on the table, the instruction names one | graspables |
| semantic | MultiReceptacle | 2 receptacles on the table, the instruction names one | receptacles |
| execution | Position | the object starts beyond the receptacle, at (0.58, 0.14) m +- 4 cm | nothing |
| execution | EEPose | the arm starts elsewhere (joint offsets of 0.1-0.45 rad) | nothing |
| execution | PositionChangeTo | the receptacle jumps once, at a seeded step in 5..20, to (0.70, -0.12) m | nothing |

Vision strength s maps onto gsenv's domain randomisation (gsenv.scene.randomization): "texture" is ``object_color``
= (-s, s) (the DC colour of every object's gaussians, per channel, per env); "whole scene" multiplies the image's
light, contrast and saturation by U(1-s, 1+s), each channel by a tint U(1-s/2, 1+s/2), and turns its hue by
U(-s/5, s/5) turns. VisionImage keeps only the table top of the static background (``background_heights``
TABLE_TOP_HEIGHTS), so one of the backdrop images, drawn per env, shows where the wall and the floor were. Every draw
is per env from its episode id (or reset seed): the same episode id, the same episode.

Importing this module is cheap (no torch): the registration reads the vision variants' keywords from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from gsenv.tasks.base import env_ids

__all__ = ["Variant", "SUITE", "CATEGORIES", "TASK_MODULE", "BACKDROPS", "texture", "whole_scene", "backdrop_images"]

CATEGORIES = ("in-distribution", "vision", "semantic", "execution")
TASK_MODULE = "gsenv.tasks.put_on_receptacle"
"""Where the suite's task classes live (each named as its task)."""
BACKDROPS = "ood_backdrops"
"""The packaged backdrop images' folder in gsenv.assets_manifest (made by scripts/make_ood_backdrops.py)."""


@dataclass(frozen=True)
class Variant:
    """One row of the suite: its category, task name, gymnasium id, what it changes and gym.make's keywords."""

    category: str
    name: str
    env_id: str
    change: str
    make_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def rlinf_env_id(self) -> str:
        """RLinf's form of the id: GSEnv-<name>-v0."""
        return env_ids(self.name)[1]


TABLE_TOP_HEIGHTS = (-0.03, 0.03)
"""VisionImage keeps the static background's gaussians this high above the robot base (m): the table top; the
wall, the floor and what stands beyond give way to the background image."""
VISUAL_KEYWORDS = ("domain_randomization", "background_heights")
"""The gym.make keywords a vision variant's registered ids carry (the id alone means the variant)."""


def backdrop_images() -> str:
    """The folder of the packaged backdrop images (VisionImage's)."""
    return str(resources.files("gsenv.assets_manifest").joinpath(BACKDROPS))


def texture(strength: float) -> dict[str, Any]:
    """Texture perturbation of strength s: every object's colour shifted by U(-s, s) per channel."""
    return {"object_color": (-strength, strength)}


def whole_scene(strength: float) -> dict[str, Any]:
    """Whole-scene perturbation of strength s: image light, contrast, saturation x U(1-s, 1+s), tint per channel
    x U(1-s/2, 1+s/2), hue U(-s/5, s/5) turns."""
    s = strength
    return {"light": (1 - s, 1 + s), "contrast": (1 - s, 1 + s), "saturation": (1 - s, 1 + s),
            "tint": (1 - s / 2, 1 + s / 2), "hue": (-s / 5, s / 5)}


def _row(category: str, variant: str, change: str, obj_set: str = "test", **kwargs: Any) -> Variant:
    name = f"PutCubeOnPlate{variant}"
    return Variant(category, name, env_ids(name)[0], change, {"obj_set": obj_set, **kwargs})


SUITE: tuple[Variant, ...] = (
    _row("in-distribution", "Main", "nothing: a train object on a train receptacle", obj_set="train"),
    _row("vision", "VisionImage", "the wall and the floor replaced by a background image",
         domain_randomization={"backdrop_images": backdrop_images()}, background_heights=TABLE_TOP_HEIGHTS),
    _row("vision", "VisionTexture03", "object colours shifted by up to 0.3 per channel",
         domain_randomization=texture(0.3)),
    _row("vision", "VisionTexture05", "object colours shifted by up to 0.5 per channel",
         domain_randomization=texture(0.5)),
    _row("vision", "VisionWhole03", "image light, contrast, saturation, tint and hue perturbed at strength 0.3",
         domain_randomization=whole_scene(0.3)),
    _row("vision", "VisionWhole05", "image light, contrast, saturation, tint and hue perturbed at strength 0.5",
         domain_randomization=whole_scene(0.5)),
    _row("semantic", "UnseenObjects", "the object from the unseen set (new colours, sizes, a cylinder)"),
    _row("semantic", "UnseenReceptacles", "the receptacle from the unseen set (a bowl, a tray)"),
    _row("semantic", "Instruct", "new phrasings of the instruction"),
    _row("semantic", "MultiObject", "2-3 objects on the table, the instruction names one"),
    _row("semantic", "MultiReceptacle", "2 receptacles on the table, the instruction names one"),
    _row("execution", "Position", "the object starts in another region (the far side of the receptacle)"),
    _row("execution", "EEPose", "the arm starts in another pose"),
    _row("execution", "PositionChangeTo", "the receptacle moves once, at a seeded step, during the episode"),
)
"""The in-distribution row, then the 13 variants in the protocol's order (rl4vla's)."""


def registration_kwargs(name: str) -> dict[str, Any]:
    """The keywords a suite task's registered ids pass to GSEnv besides its task: a vision variant's domain
    randomisation (so the id alone means the variant; gym.make's own keywords override it)."""
    for v in SUITE:
        if v.name == name:
            return {k: v.make_kwargs[k] for k in VISUAL_KEYWORDS if k in v.make_kwargs}
    return {}
