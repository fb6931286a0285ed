"""Draw one image of a synthetic person: body, clothes and belongings, then camera effects.

The person is drawn with a handful of vectorised numpy primitives (ellipses, convex polygons,
tapered limbs), each evaluated only inside its bounding box, so one 128x64 image takes about a
millisecond. Clothes colours and patterns cover most of the body, so identity stays recognisable
across viewpoints; each attribute that carries a PA-100K label has a visible drawing (straps of a
backpack from the front, the bag itself from behind, a logo on the chest, a brim for a hat...).
"""

from __future__ import annotations

import math

import numpy as np

from plipbench.data.synth import parts as P
from plipbench.data.synth.canvas import Canvas, garment_pattern
from plipbench.data.synth.identity import Identity
from plipbench.data.synth.scenes import CameraLook, camera_effects, render_background, sample_look
from plipbench.data.synth.vocab import COLOURS, HAIR_COLOURS, SKIN_TONES

_BUILD_W = {"slim": 0.88, "average": 1.0, "heavy": 1.2}
_HEIGHT_S = {"short": 0.94, "average": 1.0, "tall": 1.04}


def _rgb(name: str) -> np.ndarray:
    return np.asarray(COLOURS[name], dtype=np.float32)


def render_person(
    identity: Identity,
    view: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (128, 64),
    *,
    look: CameraLook | None = None,
    junk: bool = False,
    parts: bool = False,
    heavy_occluder: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render ``identity`` seen from ``view`` ("front" | "side" | "back") as an (H, W, 3) uint8 image.

    ``parts=True`` also returns the (H, W, 2) uint8 part map: LIP labels, PASCAL-Person-Part labels
    (:mod:`plipbench.data.synth.parts`). The image is the same either way.

    ``rng`` drives everything that varies between images (walking phase, scale and crop jitter,
    occlusion, blur, noise); ``look`` is the camera (scene, lighting, colour cast), drawn from
    ``rng`` when omitted. ``junk=True`` draws a badly framed crop (a Market-1501 style "-1" image).
    ``heavy_occluder=True`` puts a large occluder in front of the person (an occluded-ReID query).
    """
    h, w = size
    look = look if look is not None else sample_look(rng)
    img = render_background(look, rng, h, w)
    labels = np.zeros((h, w, 2), dtype=np.uint8) if parts else None
    cv = Canvas(img, labels)
    i = identity
    child = i.age == "child"
    scale = float(rng.uniform(0.82, 0.95)) * _HEIGHT_S[i.height] * (0.97 if child else 1.0)
    if junk:
        scale *= float(rng.uniform(1.4, 2.2))
    u = h * scale
    top = (
        (h - u) / 2
        + float(rng.uniform(-0.04, 0.04)) * h
        + (float(rng.uniform(-0.6, -0.2)) * u if junk else 0.0)
    )
    cx = w / 2 + float(rng.uniform(-0.08, 0.08)) * w + (float(rng.uniform(-0.4, 0.4)) * w if junk else 0.0)
    bw = _BUILD_W[i.build]
    fem = i.gender == "female"
    head_h = 0.17 if child else 0.125
    sy = top + (head_h + 0.035) * u  # shoulder line
    hip = top + (0.54 if child else 0.52) * u
    knee = top + 0.75 * u
    ankle = top + 0.955 * u
    sw = 0.115 * u * bw * (0.92 if fem else 1.0) * (0.9 if child else 1.0)
    hw = 0.085 * u * bw * (1.08 if fem else 1.0)
    ar, lr = 0.028 * u * bw, 0.038 * u * bw
    if i.age == "elderly" and view == "side":
        sy += 0.01 * u
    phase = float(rng.uniform(0, 2 * math.pi))
    d = 1 if rng.random() < 0.5 else -1  # side view: facing right (+1) or left (-1)
    side = view == "side"
    if side:
        sw, hw = 0.06 * u * bw, 0.06 * u * bw

    skin = np.asarray(SKIN_TONES[i.skin], dtype=np.float32)
    hair = np.asarray(HAIR_COLOURS[i.hair_colour], dtype=np.float32)
    up1, up2 = _rgb(i.upper_colour), _rgb(i.upper_colour2)
    lo1 = _rgb(i.lower_colour)
    lo2 = _rgb("white") if i.lower_colour not in ("white", "beige", "yellow") else _rgb("black")
    upper_fill = garment_pattern(i.upper_pattern, up1, up2, u, cx - sw, sy)
    lower_fill = garment_pattern(i.lower_pattern, lo1, lo2, u, cx - hw, hip)
    shoe = _rgb(i.shoes_colour)
    bag = _rgb(i.bag_colour)
    head_cx, head_cy = cx + (0.01 * u * d if side else 0.0), top + head_h * u / 2
    hrx, hry = (0.055 if child else 0.048) * u, head_h * u / 2

    # legs: hip joint -> knee -> ankle; the stride shows as swing angles in side view
    swing = 0.38 * math.sin(phase)
    legs = []
    for k, sgn in enumerate((-1, 1)):
        if side:
            a = swing * (1 if k else -1)
            hx = cx
            kx, ky = hx + math.sin(a) * (knee - hip) * d, hip + math.cos(a) * (knee - hip)
            b = a - 0.25 * max(0.0, -math.sin(phase + k * math.pi))
            axx, ay = kx + math.sin(b) * (ankle - knee) * d, ky + math.cos(b) * (ankle - knee)
        else:
            spread = 0.02 * u * (1 + 0.5 * math.sin(phase + k * math.pi))
            hx = cx + sgn * hw * 0.5
            kx, ky = hx + sgn * spread * 0.5, knee
            axx, ay = hx + sgn * spread, ankle - 0.015 * u * max(0.0, math.sin(phase + k * math.pi))
        legs.append((hx, hip, kx, ky, axx, ay, 0.8 if (side and k == 0) else 1.0))

    bare_legs = i.lower_type in ("skirt", "dress", "shorts")

    def leg_skin(k: int) -> int:
        return P.LEFT_LEG if P.limb_side(view, k, d) == "left" else P.RIGHT_LEG

    def shoe_label(k: int) -> int:
        return P.LEFT_SHOE if P.limb_side(view, k, d) == "left" else P.RIGHT_SHOE

    def arm_skin(k: int) -> int:
        return P.LEFT_ARM if P.limb_side(view, k, d) == "left" else P.RIGHT_ARM

    for k, (hx, hy, kx, ky, axx, ay, shade) in enumerate(legs):
        leg = skin * shade if bare_legs else (lower_fill if shade == 1.0 else lo1 * shade)
        leg_part = leg_skin(k) if bare_legs else P.PANTS
        cv.label = (leg_part, P.P_UPPER_LEG)
        cv.limb(hx, hy, kx, ky, lr, lr * 0.85, leg)
        cv.label = (leg_part, P.P_LOWER_LEG)
        cv.limb(kx, ky, axx, ay, lr * 0.85, lr * 0.65, leg)
        if i.lower_type == "shorts":
            cv.label = (P.PANTS, P.P_UPPER_LEG)
            cv.limb(hx, hy, hx + (kx - hx) * 0.7, hy + (ky - hy) * 0.7, lr * 1.05, lr * 0.95, lo1 * shade)
        if i.lower_pattern == "stripe" and not bare_legs and not side:
            off = (1 if hx > cx else -1) * lr * 0.7
            cv.label = P.KEEP
            cv.limb(hx + off, hy, axx + off * 0.8, ay, 0.3 * lr, 0.3 * lr, lo2)
        if i.shoes_type == "boots":
            cv.label = (shoe_label(k), P.P_LOWER_LEG)
            cv.limb(kx + (axx - kx) * 0.5, ky + (ay - ky) * 0.5, axx, ay, lr * 0.8, lr * 0.75, shoe * shade)
        if i.shoes_type == "sandals":
            cv.label = (leg_skin(k), P.P_LOWER_LEG)
            cv.ellipse(axx + (0.02 * u * d if side else 0), ay + 0.02 * u, 0.035 * u, 0.018 * u, skin * shade)
            cv.label = (shoe_label(k), P.P_LOWER_LEG)
            cv.limb(axx - 0.02 * u, ay + 0.015 * u, axx + 0.02 * u, ay + 0.015 * u, 1.0, 1.0, shoe * shade)
        else:
            cv.label = (shoe_label(k), P.P_LOWER_LEG)
            cv.ellipse(
                axx + (0.02 * u * d if side else 0),
                ay + 0.02 * u,
                0.04 * u if side else 0.032 * u,
                0.022 * u,
                shoe * shade,
            )
    if i.lower_type in ("trousers", "jeans", "shorts"):  # seat / crotch block
        cv.label = (P.PANTS, P.P_UPPER_LEG)
        cv.trapezoid(hip - 0.02 * u, hip + 0.06 * u, cx - hw, cx + hw, cx - hw, cx + hw, lower_fill)
    if i.lower_type in ("skirt", "dress"):
        hem = hip + (0.2 if i.lower_type == "skirt" else 0.22) * u
        flare = 0.05 * u
        fill = lower_fill if i.lower_type == "skirt" else upper_fill
        cv.label = (P.SKIRT if i.lower_type == "skirt" else P.DRESS, P.P_UPPER_LEG)
        cv.trapezoid(hip - 0.03 * u, hem, cx - hw, cx + hw, cx - hw - flare, cx + hw + flare, fill)

    # belongings behind the body (side view backpack), long hair behind shoulders (front view)
    if i.bag == "backpack" and side:
        bx = cx - d * (sw + 0.06 * u)
        cv.label = (P.BG, P.BG)
        cv.trapezoid(
            sy + 0.02 * u, hip - 0.02 * u, bx - 0.05 * u, bx + 0.05 * u, bx - 0.05 * u, bx + 0.05 * u, bag
        )
    long_hair = i.hair_style in ("long", "medium") and i.headwear != "beanie"
    if long_hair and view == "front":
        drop = (0.13 if i.hair_style == "long" else 0.06) * u
        cv.label = (P.HAIR, P.P_HEAD)
        cv.trapezoid(
            head_cy,
            sy + drop,
            head_cx - hrx * 1.15,
            head_cx + hrx * 1.15,
            head_cx - hrx * 1.15,
            head_cx + hrx * 1.15,
            hair,
        )

    # arms (far arm before the torso in side view)
    arm_swing = -0.3 * math.sin(phase)
    holding = i.held_object != "none" and view != "back"
    arms = []
    for k, sgn in enumerate((-1, 1)):
        if side:
            a = arm_swing * (1 if k else -1)
            shx = cx
            ex, ey = shx + math.sin(a) * 0.17 * u * d, sy + math.cos(a) * 0.17 * u
            if holding and k == 1:
                hx2, hy2 = ex + 0.12 * u * d, ey - 0.02 * u
            else:
                hx2, hy2 = ex + math.sin(a * 1.3) * 0.16 * u * d, ey + math.cos(a * 1.3) * 0.16 * u
        else:
            shx = cx + sgn * (sw - ar * 0.6)
            ex, ey = shx + sgn * 0.03 * u, sy + 0.17 * u
            if holding:
                hx2, hy2 = cx + sgn * 0.04 * u, ey + 0.04 * u
            else:
                hx2, hy2 = ex + sgn * 0.01 * u, ey + 0.16 * u + 0.01 * u * math.sin(phase) * sgn
        arms.append((shx, sy + ar * 0.5, ex, ey, hx2, hy2, 0.8 if (side and k == 0) else 1.0))

    sleeve_upper = i.upper_sleeves in ("short", "long")
    sleeve_lower = i.upper_sleeves == "long"
    garment = P.COAT if i.upper_type in ("jacket", "coat") else P.DRESS if i.lower_type == "dress" else P.UPPER

    def draw_arm(arm) -> None:
        shx, shy, ex, ey, hx2, hy2, shade = arm
        k = 0 if arm is arms[0] else 1
        cv.label = (garment if sleeve_upper else arm_skin(k), P.P_UPPER_ARM)
        cv.limb(shx, shy, ex, ey, ar, ar * 0.9, (up1 if sleeve_upper else skin) * shade)
        cv.label = (garment if sleeve_lower else arm_skin(k), P.P_LOWER_ARM)
        cv.limb(ex, ey, hx2, hy2, ar * 0.9, ar * 0.75, (up1 if sleeve_lower else skin) * shade)
        if i.upper_sleeves == "short":
            cv.label = (garment, P.P_UPPER_ARM)
            cv.limb(shx, shy, shx + (ex - shx) * 0.5, shy + (ey - shy) * 0.5, ar * 1.05, ar, up1 * shade)
        cv.label = (arm_skin(k), P.P_LOWER_ARM)
        cv.ellipse(hx2, hy2, ar * 0.9, ar, skin * shade)

    if side:
        draw_arm(arms[0])
    # neck and torso
    cv.label = (P.FACE, P.P_HEAD)
    cv.limb(head_cx, head_cy + hry * 0.5, cx, sy + 0.01 * u, 0.025 * u, 0.028 * u, skin)
    coat = i.upper_type == "coat"
    waist_y = (knee + 0.02 * u) if coat else (hip + 0.03 * u)
    waist_w = (hw * 1.2) if coat else hw * 0.95
    if i.upper_type == "tank top":  # bare shoulders: arm skin, the image's left and right arm
        image_left, image_right = (arm_skin(1), arm_skin(1)) if side else (arm_skin(0), arm_skin(1))
        cv.label = lambda yy, xx: np.where(
            (xx < cx)[..., None], np.uint8([image_left, P.P_TORSO]), np.uint8([image_right, P.P_TORSO])
        )
        cv.ellipse(cx, sy + 0.02 * u, sw, 0.035 * u, skin)
        top_w = sw * 0.65
    else:
        top_w = sw
    cv.label = lambda yy, xx: np.where(
        (yy <= hip + 0.03 * u)[..., None], np.uint8([garment, P.P_TORSO]), np.uint8([garment, P.P_UPPER_LEG])
    )  # a coat below the hip covers the upper legs
    cv.trapezoid(sy, waist_y, cx - top_w, cx + top_w, cx - waist_w, cx + waist_w, upper_fill)
    cv.label = P.KEEP  # zip line and logo: decorations of the garment
    if i.upper_type in ("jacket", "coat") and view == "front":  # open front showing a zip line
        cv.limb(cx, sy + 0.02 * u, cx, waist_y, 0.006 * u + 0.4, 0.006 * u + 0.4, up1 * 0.55)
    if i.upper_pattern == "logo" and view != "back":
        lx = cx + (0.02 * u * d if side else 0.0)
        cv.ellipse(lx, sy + 0.11 * u, 0.045 * u * (0.6 if side else 1.0), 0.04 * u, up2)
        cv.ellipse(lx, sy + 0.11 * u, 0.018 * u * (0.6 if side else 1.0), 0.016 * u, up1)

    # bags on the body: background, as in LIP
    cv.label = (P.BG, P.BG)
    if i.bag == "backpack":
        if view == "back":
            cv.trapezoid(
                sy + 0.03 * u,
                hip - 0.01 * u,
                cx - sw * 0.8,
                cx + sw * 0.8,
                cx - sw * 0.75,
                cx + sw * 0.75,
                bag,
            )
            cv.trapezoid(
                sy + 0.06 * u,
                sy + 0.13 * u,
                cx - sw * 0.6,
                cx + sw * 0.6,
                cx - sw * 0.6,
                cx + sw * 0.6,
                bag * 0.7,
            )
        else:
            for sgn in (-1, 1) if view == "front" else (1,):
                x = cx + sgn * sw * 0.55 if view == "front" else cx
                cv.limb(
                    x,
                    sy,
                    x + (0 if side else sgn * 0.01 * u),
                    sy + 0.2 * u,
                    0.018 * u + 0.5,
                    0.018 * u + 0.5,
                    bag * 0.85,
                )
    elif i.bag == "shoulder bag":
        s = 1 if view != "back" else -1
        cv.limb(
            cx - s * sw * 0.8,
            sy + 0.01 * u,
            cx + s * hw * 1.1,
            hip - 0.02 * u,
            0.012 * u + 0.4,
            0.012 * u + 0.4,
            bag * 0.8,
        )
        bx = cx + s * (hw * 1.2) if not side else cx + d * 0.01 * u
        cv.trapezoid(
            hip - 0.05 * u, hip + 0.05 * u, bx - 0.06 * u, bx + 0.06 * u, bx - 0.06 * u, bx + 0.06 * u, bag
        )

    if side:
        draw_arm(arms[1])
    elif not holding or view == "back":
        draw_arm(arms[0])
        draw_arm(arms[1])
    if i.bag == "handbag":
        cv.label = (P.BG, P.BG)
        shx, shy, ex, ey, hx2, hy2, _ = arms[1]
        if holding and not side:
            hx2, hy2 = cx + sw + ar, sy + 0.33 * u
        cv.limb(hx2, hy2, hx2, hy2 + 0.05 * u, 0.006 * u + 0.4, 0.006 * u + 0.4, bag * 0.7)
        cv.trapezoid(
            hy2 + 0.04 * u,
            hy2 + 0.12 * u,
            hx2 - 0.055 * u,
            hx2 + 0.055 * u,
            hx2 - 0.065 * u,
            hx2 + 0.065 * u,
            bag,
        )
    if holding:  # the object in front of the body, then the hands over it
        ox = cx + (0.14 * u * d if side else 0.0)
        oy = arms[0][5] - 0.01 * u
        oh = {"phone": 0.05, "cup": 0.05, "box": 0.1, "folder": 0.12}[i.held_object] * u
        ow = {"phone": 0.03, "cup": 0.035, "box": 0.11, "folder": 0.09}[i.held_object] * u
        if not side:
            draw_arm(arms[0])
            draw_arm(arms[1])
        cv.label = (P.BG, P.BG)
        cv.trapezoid(oy - oh / 2, oy + oh / 2, ox - ow, ox + ow, ox - ow, ox + ow, _rgb(i.held_colour))

    # head, hair, glasses, headwear
    bald = i.hair_style == "bald"
    if view == "back":
        cv.label = (P.FACE if bald else P.HAIR, P.P_HEAD)
        cv.ellipse(head_cx, head_cy, hrx, hry, skin if bald else hair)
        if long_hair:
            drop = (0.14 if i.hair_style == "long" else 0.06) * u
            cv.label = (P.HAIR, P.P_HEAD)
            cv.trapezoid(
                head_cy,
                sy + drop,
                head_cx - hrx,
                head_cx + hrx,
                head_cx - hrx * 0.9,
                head_cx + hrx * 0.9,
                hair,
            )
    else:
        if not bald:
            cv.label = (P.HAIR, P.P_HEAD)
            cv.ellipse(
                head_cx - (0.012 * u * d if side else 0), head_cy - 0.006 * u, hrx * 1.08, hry * 1.05, hair
            )
        cv.label = (P.FACE, P.P_HEAD)
        cv.ellipse(
            head_cx + (0.006 * u * d if side else 0),
            head_cy + (0.012 * u if not bald else 0),
            hrx * (0.8 if side else 0.92),
            hry * (0.82 if not bald else 1.0),
            skin,
        )
        if side:
            if not bald:
                cv.label = (P.HAIR, P.P_HEAD)
                cv.ellipse(head_cx - 0.02 * u * d, head_cy, hrx * 0.6, hry * 0.75, hair)
            cv.label = (P.FACE, P.P_HEAD)
            cv.ellipse(head_cx + hrx * 0.85 * d, head_cy + 0.01 * u, 0.01 * u, 0.012 * u, skin)  # nose
        eye_y = head_cy + 0.008 * u
        cv.label = P.KEEP  # eyes, and glasses that are not sunglasses, are part of the face
        eyes = [head_cx + hrx * 0.5 * d] if side else [head_cx - hrx * 0.38, head_cx + hrx * 0.38]
        for ex_ in eyes:
            cv.ellipse(ex_, eye_y, max(0.6, 0.008 * u), max(0.6, 0.008 * u), np.float32([30, 25, 25]))
        if i.glasses != "none":
            dark = i.glasses == "sunglasses"
            cv.label = (P.SUNGLASSES, P.P_HEAD) if dark else P.KEEP
            gx0, gx1 = (
                (head_cx, head_cx + hrx * 0.9 * d) if side else (head_cx - hrx * 0.75, head_cx + hrx * 0.75)
            )
            cv.limb(
                min(gx0, gx1),
                eye_y,
                max(gx0, gx1),
                eye_y,
                (0.014 if dark else 0.006) * u + 0.4,
                (0.014 if dark else 0.006) * u + 0.4,
                np.float32([15, 15, 20]),
            )
            if not dark:
                for ex_ in eyes:
                    cv.ellipse(ex_, eye_y, 0.016 * u, 0.013 * u, np.float32([20, 20, 25]))
    if i.hair_style == "ponytail" and view != "front" and i.headwear != "beanie":
        px = head_cx - (hrx * 1.1 * d if side else 0)
        cv.label = (P.HAIR, P.P_HEAD)
        cv.limb(
            px, head_cy, px - (0.02 * u * d if side else 0), head_cy + 0.12 * u, 0.018 * u, 0.012 * u, hair
        )
    hat = _rgb(i.headwear_colour)
    cv.label = (P.HAT, P.P_HEAD)
    if i.headwear == "cap":
        cv.ellipse(head_cx, head_cy - hry * 0.1, hrx * 1.08, hry * 0.95, hat, ymax=head_cy - hry * 0.2)
        if view == "front":
            cv.ellipse(head_cx, head_cy - hry * 0.25, hrx * 1.05, hry * 0.2, hat * 0.8)
        elif side:
            cv.limb(
                head_cx,
                head_cy - hry * 0.25,
                head_cx + hrx * 1.7 * d,
                head_cy - hry * 0.2,
                0.012 * u,
                0.01 * u,
                hat * 0.8,
            )
    elif i.headwear == "beanie":
        cv.ellipse(head_cx, head_cy - hry * 0.05, hrx * 1.1, hry * 1.05, hat, ymax=head_cy - hry * 0.05)
    elif i.headwear == "sun hat":
        cv.ellipse(head_cx, head_cy - hry * 0.25, hrx * 1.9, hry * 0.22, hat * 0.9)
        cv.ellipse(head_cx, head_cy - hry * 0.45, hrx * 1.0, hry * 0.6, hat, ymax=head_cy - hry * 0.3)

    camera_effects(img, look, rng, cv, heavy_occluder=heavy_occluder)
    out = np.clip(img, 0, 255).astype(np.uint8)
    return (out, labels) if parts else out


def partial_view(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A partial-ReID query from a rendered (H, W, 3) uint8 image: only part of the body is kept (the top 40-65 %,
    or in 3 of 10 images the left or right 55-80 %), stretched back to (H, W), as Partial-REID crops away the
    occluded part."""
    from PIL import Image

    h, w = img.shape[:2]
    if rng.random() < 0.7:
        crop = img[: max(2, int(h * rng.uniform(0.4, 0.65)))]
    else:
        keep = max(2, int(w * rng.uniform(0.55, 0.8)))
        crop = img[:, :keep] if rng.random() < 0.5 else img[:, w - keep :]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((w, h), Image.BILINEAR))
