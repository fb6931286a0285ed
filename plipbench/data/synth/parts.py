"""Part labels of the synthetic pedestrians, for the human parsing twins.

Every drawing primitive of :func:`plipbench.data.synth.render.render_person` also paints a label pair into a
(H, W, 2) uint8 map when asked (``parts=True``): channel 0 is the LIP label set (20 classes, SCHP's
``utils/miou.py`` names; CIHP uses the same set), channel 1 PASCAL-Person-Part's 7 classes. The painter's order
of the drawing gives occlusion for free: a bag in front of the torso, an arm in front of the coat, a pole in
front of the person all overwrite what they cover. Bags and held objects are background, as in LIP (no bag
class), and so are the occluders and passers-by of the camera effects.

Conventions (choices where the datasets' documentation is silent; recorded in every manifest):
- **left / right are the person's anatomical sides**: in a front view the person's left arm is on the image's
  right; in a back view on the image's left; in a side view the far limbs are the side turned away from the
  camera.
- The neck is Face (LIP) and Head (PASCAL); a bare foot is leg skin (LIP) and lower leg (PASCAL); hands belong
  to the arms; glasses (not sunglasses) are part of the face; a coat below the hip is Coat (LIP) and upper leg
  (PASCAL); a skirt or the skirt of a dress covers the upper legs (PASCAL).
"""

from __future__ import annotations

from plipbench.data.readers.parsing import LIP_CLASSES as LIP_LABELS
from plipbench.data.readers.parsing import PASCAL_CLASSES as PASCAL_LABELS

__all__ = ["LIP_LABELS", "PASCAL_LABELS", "limb_side"]

BG, HAT, HAIR, SUNGLASSES, UPPER, DRESS, COAT, PANTS, SKIRT, FACE = 0, 1, 2, 4, 5, 6, 7, 9, 12, 13
LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG, LEFT_SHOE, RIGHT_SHOE = 14, 15, 16, 17, 18, 19
P_HEAD, P_TORSO, P_UPPER_ARM, P_LOWER_ARM, P_UPPER_LEG, P_LOWER_LEG = 1, 2, 3, 4, 5, 6

KEEP = None  # a decoration (stripe, zip, logo, eyes) keeps the labels under it

CONVENTIONS = {
    "left_right": "anatomical (the person's own left and right)",
    "bags_and_held_objects": "background (LIP has no bag class)",
    "neck": "Face / Head",
    "occluders": "background",
}


def limb_side(view: str, k: int, facing: int) -> str:
    """``"left"`` or ``"right"``: the person's side of limb ``k`` (0 = drawn first) in ``view``.

    Front and back views draw limb 0 on the image's left: the person's right when they face the camera, their
    left when they face away. A side view draws the far limb first: the person's left when facing the image's
    right (``facing=+1``), their right when facing left.
    """
    if view == "front":
        return "right" if k == 0 else "left"
    if view == "back":
        return "left" if k == 0 else "right"
    far = "left" if facing > 0 else "right"
    near = "right" if far == "left" else "left"
    return far if k == 0 else near

