"""A deterministic, synthetic anime-style SR data set (no download): ``train``/``train_X4``/``test``/``test_X4``.

Each picture is drawn at twice its size with OpenCV and reduced with ``INTER_AREA`` (anti-aliased edges):
a sky gradient with cel-shaded clouds, hatched ground, flat-filled shapes with a darker shadow side and
outlines of varied width, often a simple character head (hair spikes, big eyes) and a speech bubble with
small ``cv2.putText`` text. LQ images are MATLAB bicubic x1/4 (:func:`common_data.data.bicubic.imresize`).
The same seed gives byte-identical PNG files.
"""
import os

import cv2
import numpy as np

from common_data.data.bicubic import imresize
from common_data.errors import UserError
from common_data.data.imageio import write_image

SUPERSAMPLE = 2
SCALE = 4
MARKER_NAME = "SYNTHETIC_DEMO_DATA.txt"
WORDS = ("SR", "HI!", "WOW", "GO!", "OK?", "ESRGAN", "ANIME", "x4", "YES", "NANI", "DEMO", "SUGOI")
SPLITS = {"train": 0, "test": 1}


def hsv_color(h, s, v):
    """RGB uint8 tuple from hue in degrees, saturation and value in [0, 1]."""
    px = np.uint8([[[int(h % 360) // 2, int(s * 255), int(v * 255)]]])
    return tuple(int(c) for c in cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0])


def cel_palette(rng):
    """(base, shadow, outline): a flat fill, its darker slightly bluer shadow and a near-black line colour."""
    h, s, v = rng.uniform(0, 360), rng.uniform(0.35, 0.85), rng.uniform(0.75, 1.0)
    return hsv_color(h, s, v), hsv_color(h + 12, min(1.0, s + 0.15), v * 0.68), hsv_color(h, 0.6, 0.18)


def sky(canvas, rng):
    """Vertical gradient from a deep top colour to a pale horizon colour."""
    n = canvas.shape[0]
    hue = rng.choice([210.0, 200.0, 25.0, 330.0, 260.0]) + rng.uniform(-10, 10)
    top = np.array(hsv_color(hue, rng.uniform(0.5, 0.8), rng.uniform(0.6, 0.85)), np.float32)
    bottom = np.array(hsv_color(hue + rng.uniform(-30, 30), rng.uniform(0.05, 0.3), 1.0), np.float32)
    t = np.linspace(0, 1, n, dtype=np.float32)[:, None, None] ** rng.uniform(0.6, 1.5)
    canvas[:] = np.round(top * (1 - t) + bottom * t).astype(np.uint8)


def shade(canvas, mask, palette, light, rng, outline_width):
    """Flat fill, a shadow on the side away from ``light``, then the outline."""
    base, shadow, line = palette
    canvas[mask > 0] = base
    size = np.sqrt(max(int(np.count_nonzero(mask)), 1))
    d = rng.uniform(0.12, 0.3) * size
    shifted = cv2.warpAffine(mask, np.float32([[1, 0, light[0] * d], [0, 1, light[1] * d]]), mask.shape[::-1])
    canvas[(mask > 0) & (shifted == 0)] = shadow
    if outline_width > 0:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, line, outline_width, cv2.LINE_AA)


def random_shape_mask(shape, rng):
    """A circle, ellipse, rounded box or convex polygon somewhere in the picture."""
    n = shape[0]
    mask = np.zeros(shape, np.uint8)
    c = (int(rng.uniform(0.1, 0.9) * n), int(rng.uniform(0.15, 0.95) * n))
    r = int(rng.uniform(0.07, 0.2) * n)
    kind = rng.integers(4)
    if kind == 0:
        cv2.circle(mask, c, r, 255, -1)
    elif kind == 1:
        axes = (r, int(r * rng.uniform(0.4, 0.9)))
        cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    elif kind == 2:
        w, h = r, int(r * rng.uniform(0.5, 1.2))
        cv2.rectangle(mask, (c[0] - w, c[1] - h), (c[0] + w, c[1] + h), 255, -1)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r // 2 | 1,) * 2))
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 7)))
        pts = np.stack([c[0] + r * np.cos(angles), c[1] + r * np.sin(angles)], 1).astype(np.int32)
        cv2.fillConvexPoly(mask, pts, 255)
    return mask


def clouds(canvas, rng, light, scale):
    n = canvas.shape[0]
    for _ in range(rng.integers(1, 4)):
        mask = np.zeros(canvas.shape[:2], np.uint8)
        cx, cy, r = rng.uniform(0, n), rng.uniform(0.05, 0.4) * n, rng.uniform(0.04, 0.08) * n
        for _ in range(rng.integers(3, 6)):
            cv2.circle(mask, (int(cx + rng.uniform(-2.2, 2.2) * r), int(cy + rng.uniform(-0.5, 0.4) * r)),
                       int(r * rng.uniform(0.6, 1.2)), 255, -1)
        palette = ((255, 255, 255), (206, 214, 238), (120, 130, 170))
        shade(canvas, mask, palette, light, rng, int(rng.integers(0, 2)) * scale)


def hatched_ground(canvas, rng, scale):
    """Ground below a wavy horizon, with parallel hatching lines clipped to it."""
    n = canvas.shape[0]
    base, shadow, line = cel_palette(rng)
    xs = np.linspace(0, n, 9)
    ys = n * rng.uniform(0.6, 0.8) + rng.uniform(-0.04, 0.04, xs.size) * n
    poly = np.concatenate([np.stack([xs, ys], 1), [[n, n], [0, n]]]).astype(np.int32)
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.fillPoly(mask, [poly], 255)
    canvas[mask > 0] = base
    hatch = np.zeros_like(mask)
    angle, spacing = rng.uniform(20, 70) * (1 if rng.random() < 0.5 else -1), int(rng.integers(4, 9)) * scale
    direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    normal = np.array([-direction[1], direction[0]])
    for k in range(-2 * n, 2 * n, spacing):
        p0, p1 = normal * k - direction * 2 * n + n / 2, normal * k + direction * 2 * n + n / 2
        cv2.line(hatch, tuple(p0.astype(int)), tuple(p1.astype(int)), 255, scale, cv2.LINE_AA)
    inside = (hatch > 0) & (mask > 0) & (np.arange(n)[:, None] > ys.mean() + 0.06 * n)
    canvas[inside] = shadow
    cv2.polylines(canvas, [poly[:-2]], False, line, 2 * scale, cv2.LINE_AA)


def character_head(canvas, rng, light, scale):
    """Skin-coloured head with spiky hair, two big eyes with highlights and a small mouth."""
    n = canvas.shape[0]
    cx, cy, r = int(rng.uniform(0.3, 0.7) * n), int(rng.uniform(0.45, 0.65) * n), int(rng.uniform(0.16, 0.24) * n)
    line = (40, 28, 30)
    face = np.zeros(canvas.shape[:2], np.uint8)
    cv2.ellipse(face, (cx, cy), (r, int(r * 1.1)), 0, 0, 360, 255, -1)
    skin = hsv_color(rng.uniform(18, 30), rng.uniform(0.12, 0.28), 1.0)
    shade(canvas, face, (skin, hsv_color(12, 0.35, 0.88), line), light, rng, 2 * scale)
    hair = np.zeros_like(face)
    cv2.ellipse(hair, (cx, cy - r // 4), (int(r * 1.08), int(r * 0.95)), 0, 180, 360, 255, -1)
    for _ in range(int(rng.integers(3, 6))):  # bangs falling over the forehead
        x = cx + rng.uniform(-0.8, 0.8) * r
        tip = (x + rng.uniform(-0.2, 0.2) * r, cy - r * rng.uniform(0.05, 0.3))
        pts = np.array([[x - 0.3 * r, cy - 0.6 * r], [x + 0.3 * r, cy - 0.6 * r], tip], np.int32)
        cv2.fillConvexPoly(hair, pts, 255)
    for _ in range(int(rng.integers(3, 7))):  # spikes sticking out of the crown
        a = rng.uniform(np.pi * 1.05, np.pi * 1.95)
        base = np.array([cx, cy - r // 4]) + 0.8 * r * np.array([np.cos(a), np.sin(a)])
        tip = base + rng.uniform(0.35, 0.6) * r * np.array([np.cos(a), np.sin(a)])
        side = 0.22 * r * np.array([-np.sin(a), np.cos(a)])
        cv2.fillConvexPoly(hair, np.array([base - side, base + side, tip], np.int32), 255)
    shade(canvas, hair, cel_palette(rng), light, rng, 2 * scale)
    iris = hsv_color(rng.uniform(0, 360), rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.85))
    for side in (-1, 1):
        ex, ey = cx + side * int(0.42 * r), cy + int(0.15 * r)
        ax = (int(0.2 * r), int(0.28 * r))
        cv2.ellipse(canvas, (ex, ey), ax, 0, 0, 360, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.ellipse(canvas, (ex, ey + ax[1] // 6), (int(ax[0] * 0.75), int(ax[1] * 0.8)), 0, 0, 360, iris, -1,
                    cv2.LINE_AA)
        cv2.ellipse(canvas, (ex, ey + ax[1] // 6), (int(ax[0] * 0.35), int(ax[1] * 0.4)), 0, 0, 360, line, -1,
                    cv2.LINE_AA)
        cv2.circle(canvas, (ex - ax[0] // 3, ey - ax[1] // 5), max(ax[0] // 4, 1), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.ellipse(canvas, (ex, ey), ax, 0, 190, 350, line, 3 * scale, cv2.LINE_AA)
    cv2.ellipse(canvas, (cx, cy + int(0.6 * r)), (int(0.12 * r), int(0.06 * r)), 0, 0, 180, line, scale, cv2.LINE_AA)


def speech_bubble(canvas, rng, scale):
    n = canvas.shape[0]
    word = str(rng.choice(WORDS))
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.3, 0.45) * n / 192
    thickness = max(1, int(round(font_scale * 2)))
    (tw, th), _ = cv2.getTextSize(word, font, font_scale, thickness)
    cx = int(rng.uniform(tw * 0.7 + 4, n - tw * 0.7 - 4)) if n > 1.4 * tw + 8 else n // 2
    cy = int(rng.uniform(0.08, 0.3) * n) + th
    axes = (int(tw * 0.7) + 2 * scale, int(th * 1.2) + 2 * scale)
    cv2.ellipse(canvas, (cx, cy), axes, 0, 0, 360, (255, 255, 255), -1, cv2.LINE_AA)
    cv2.ellipse(canvas, (cx, cy), axes, 0, 0, 360, (20, 20, 20), scale, cv2.LINE_AA)
    cv2.putText(canvas, word, (cx - tw // 2, cy + th // 2), font, font_scale, (20, 20, 20), thickness, cv2.LINE_AA)


def render_image(rng, size):
    """One RGB uint8 ``size x size`` picture."""
    s = SUPERSAMPLE
    n = size * s
    canvas = np.zeros((n, n, 3), np.uint8)
    angle = rng.uniform(0, 2 * np.pi)
    light = (float(np.cos(angle)), float(np.sin(angle)))
    sky(canvas, rng)
    clouds(canvas, rng, light, s)
    hatched_ground(canvas, rng, s)
    for _ in range(rng.integers(2, 6)):
        shade(canvas, random_shape_mask(canvas.shape[:2], rng), cel_palette(rng), light, rng,
              int(rng.integers(1, 5)) * s)
    if rng.random() < 0.6:
        character_head(canvas, rng, light, s)
    if rng.random() < 0.7:
        speech_bubble(canvas, rng, s)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def image_rng(seed, split, index):
    return np.random.default_rng([int(seed), SPLITS[split], int(index)])


def demo_layout(output, num_train, num_test):
    """``{folder: [paths]}`` of the set these arguments make under ``output``."""
    layout = {}
    for split, count in (("train", num_train), ("test", num_test)):
        for folder in (split, f"{split}_X{SCALE}"):
            if count:
                layout[os.path.join(output, folder)] = [os.path.join(output, folder, f"{split}_{i:04d}.png")
                                                        for i in range(count)]
    return layout


def holds_demo_set(output, num_train, num_test, seed, size):
    """True when ``output`` holds exactly the set of these arguments: their marker and file names, nothing else."""
    layout = demo_layout(output, num_train, num_test)
    try:
        with open(os.path.join(output, MARKER_NAME), encoding="utf-8", newline="") as f:
            if f.read() != marker_text(num_train, num_test, seed, size):
                return False
        if sorted(os.listdir(output)) != sorted([MARKER_NAME] + [os.path.basename(d) for d in layout]):
            return False
        return all(sorted(os.listdir(d)) == sorted(os.path.basename(p) for p in ps) for d, ps in layout.items())
    except (OSError, UnicodeDecodeError):
        return False


def make_demo_data(output, num_train=16, num_test=4, seed=0, size=192, force=False):
    """Write the set under ``output``; returns ``{folder: [paths]}``.

    A folder that already holds exactly this set is kept as it is; another non-empty folder is refused unless
    ``force`` (then the set is written into it, overwriting same-named files)."""
    if size < 32 or size % SCALE:
        raise UserError(f"--size {size} must be a multiple of {SCALE} and at least 32")
    if num_train < 0 or num_test < 0 or num_train + num_test == 0:
        raise UserError(f"--num-train {num_train} / --num-test {num_test}: need at least one image, none negative")
    output = os.fspath(output)
    if os.path.exists(output) and not os.path.isdir(output):
        raise UserError(f"--output {output} is a file, not a folder; choose a folder for the demo set")
    layout = demo_layout(output, num_train, num_test)
    if not force and os.path.isdir(output) and os.listdir(output):
        if holds_demo_set(output, num_train, num_test, seed, size):
            return layout
        raise UserError(f"--output {output} is not empty and does not hold this demo set; choose an empty or new "
                        "folder, or add --force to write the demo set into it")
    for split, count in (("train", num_train), ("test", num_test)):
        gt_dir, lq_dir = os.path.join(output, split), os.path.join(output, f"{split}_X{SCALE}")
        for i in range(count):
            gt = render_image(image_rng(seed, split, i), size)
            name = f"{split}_{i:04d}.png"
            write_image(os.path.join(gt_dir, name), gt)
            write_image(os.path.join(lq_dir, name), imresize(gt, 1 / SCALE))
    write_marker(output, num_train, num_test, seed, size)
    return layout


def write_marker(output, num_train, num_test, seed, size):
    with open(os.path.join(output, MARKER_NAME), "w", encoding="utf-8", newline="\n") as f:
        f.write(marker_text(num_train, num_test, seed, size))


def marker_text(num_train, num_test, seed, size):
    return (
        "SYNTHETIC DEMO DATA - not real anime frames; do not report results on it.\n"
        f"Made by: python tools/make_demo_data.py --output <this folder> --num-train {num_train} --num-test {num_test} "
        f"--seed {seed} --size {size}\n"
        "Content: procedural cel-shaded pictures drawn with OpenCV at 2x and reduced with INTER_AREA: sky gradients,\n"
        "clouds, hatched ground, flat shapes with a darker shadow side and outlines of varied width, simple\n"
        "character heads, speech bubbles with cv2.putText text.\n"
        f"Layout (PaddleGAN animeSR): train/, train_X{SCALE}/, test/, test_X{SCALE}/ with the same file names;\n"
        f"GT {size}x{size} PNG, LQ = MATLAB bicubic x1/{SCALE} (common_data.data.bicubic.imresize) "
        f"{size // SCALE}x{size // SCALE} PNG.\n"
        "The same arguments give byte-identical files.\n"
    )
