"""The engine on the sample photos, in both tiers: where garments land, what stays untouched,
sizes, determinism and variations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_shapes import TROUSERS, product_photo
from PIL import Image, ImageDraw
from tryon_local import Body, Engine, GarmentUnusable, PersonNotFound

RED = (200, 58, 52)  # the sample T-shirt


@pytest.fixture(scope="module")
def trousers() -> Image.Image:
    return product_photo(TROUSERS, box=(0.3, 0.04, 0.4, 0.92), colour=(40, 150, 60))[0]


def _px(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _torso(body: Body) -> tuple[slice, slice]:
    """The middle of the chest and belly: surely under any top."""
    (lx, ly), (rx, ry) = body.shoulders
    hip_y = (body.hips[0][1] + body.hips[1][1]) / 2
    top = (ly + ry) / 2
    rows = slice(round(top + 0.25 * (hip_y - top)), round(hip_y - 0.15 * (hip_y - top)))
    span = rx - lx
    return rows, slice(round(lx + 0.3 * span), round(rx - 0.3 * span))


def _changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.abs(_px(after) - _px(before)).sum(axis=2) > 40


def test_output_has_the_person_size(engine: Engine, person, garment) -> None:
    out = engine.render(person, [garment])
    assert out.size == person.size
    assert out.mode == "RGB"


def test_tiers_find_the_sample_person(pose_engine: Engine, base_engine: Engine, person) -> None:
    posed = pose_engine.locate(person)
    assert posed.tier == "pose"
    assert posed.silhouette is not None and posed.arms is not None
    based = base_engine.locate(person)
    assert based.tier == "base" and "face" in based.found
    for body in (posed, based):
        (lx, ly), (rx, _) = body.shoulders
        assert body.face is not None and body.face[1] < ly  # face above the shoulders
        assert lx < person.width / 2 < rx
        assert body.hips[0][1] > ly and body.ankles[0][1] > body.hips[0][1]


def test_top_recolours_the_torso_and_spares_face_and_background(
    engine: Engine, person, garment
) -> None:
    body = engine.locate(person)
    out = engine.render(person, [garment], "tops")
    rows, cols = _torso(body)
    before, after = _px(person)[rows, cols], _px(out)[rows, cols]
    assert np.abs(after.mean(axis=(0, 1)) - RED).max() < 45
    assert np.abs(before.mean(axis=(0, 1)) - RED).max() > 80
    # the garment keeps the person's light: not one flat colour
    assert after[..., 0].std() > 1.0

    assert body.face is not None
    x, y, w, h = (round(v) for v in body.face)
    face = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))
    assert np.abs(_px(out)[face] - _px(person)[face]).max() < 8
    corners = (slice(0, 60), slice(0, 120))
    assert np.abs(_px(out)[corners] - _px(person)[corners]).max() < 2
    changed = _changed(person, out)
    assert changed.mean() < 0.25  # a garment, not a repaint


def test_bottoms_land_lower_than_tops(engine: Engine, person, garment, trousers) -> None:
    body = engine.locate(person)
    top = _changed(person, engine.render(person, [garment], "tops"))
    low = _changed(person, engine.render(person, [trousers], "bottoms"))
    top_y = np.flatnonzero(top.any(axis=1)).mean()
    low_y = np.flatnonzero(low.any(axis=1)).mean()
    assert low_y > top_y + 0.5 * body.torso_length
    hip_y = (body.hips[0][1] + body.hips[1][1]) / 2
    assert np.flatnonzero(low.any(axis=1))[0] > hip_y - 0.5 * body.torso_length


def test_one_piece_covers_torso_and_legs(engine: Engine, person) -> None:
    dress = product_photo(
        [(0.3, 0.0), (0.7, 0.0), (0.75, 0.35), (1.0, 1.0), (0.0, 1.0), (0.25, 0.35)],
        box=(0.25, 0.04, 0.5, 0.92),
        colour=(120, 40, 140),
    )[0]
    body = engine.locate(person)
    changed = _changed(person, engine.render(person, [dress], "one-pieces"))
    rows = np.flatnonzero(changed.any(axis=1))
    hip_y = (body.hips[0][1] + body.hips[1][1]) / 2
    assert rows[0] < body.shoulders[0][1] and rows[-1] > hip_y + 0.5 * body.leg_length


def test_auto_wears_the_sample_shirt_as_a_top(engine: Engine, person, garment) -> None:
    auto = engine.render(person, [garment], "auto")
    tops = engine.render(person, [garment], "tops")
    assert np.array_equal(_px(auto), _px(tops))


def test_outfit_of_top_and_bottoms(engine: Engine, person, garment, trousers) -> None:
    body = engine.locate(person)
    out = _px(engine.render(person, [trousers, garment]))
    rows, cols = _torso(body)
    assert np.abs(out[rows, cols].mean(axis=(0, 1)) - RED).max() < 45
    (kx, ky), _ = body.knees
    thigh = out[round(ky) - 20 : round(ky), round(kx) - 5 : round(kx) + 5]
    assert thigh[..., 1].mean() > thigh[..., 0].mean() + 30  # green trousers at the knee


def test_forearms_stay_in_front(pose_engine: Engine, person, trousers) -> None:
    body = pose_engine.locate(person)
    assert body.arms is not None
    out = pose_engine.render(person, [trousers], "bottoms")
    arms = body.arms > 0.95
    assert arms.sum() > 100
    assert np.abs(_px(out)[arms] - _px(person)[arms]).max(axis=1).mean() < 10


def test_same_seed_same_pixels(engine: Engine, person, garment) -> None:
    for seed in (None, 7):
        first = engine.render(person, [garment], seed=seed)
        again = engine.render(person, [garment], seed=seed)
        assert np.array_equal(_px(first), _px(again))


def test_variations_are_distinct_and_reproducible(engine: Engine, person, garment) -> None:
    images = engine.variations(person, [garment], seed=3, n=3)
    pixels = [_px(image).tobytes() for image in images]
    assert len(set(pixels)) == 3
    assert [_px(i).tobytes() for i in engine.variations(person, [garment], seed=3, n=3)] == pixels
    other = engine.variations(person, [garment], seed=4, n=3)
    assert _px(other[0]).tobytes() != pixels[0]
    # seed=None: the first image is the plain fit
    plain = engine.variations(person, [garment], n=2)
    assert np.array_equal(_px(plain[0]), _px(engine.render(person, [garment])))


def test_without_a_face_the_silhouette_places_the_garment(
    base_engine: Engine, person, garment
) -> None:
    faceless = person.copy()
    body = base_engine.locate(person)
    assert body.face is not None
    x, y, w, h = body.face
    ImageDraw.Draw(faceless).ellipse((x - 4, y - 4, x + w + 4, y + h + 4), fill=(210, 160, 130))
    located = base_engine.locate(faceless)
    assert "face" not in located.found and "proportions" in located.found
    out = base_engine.render(faceless, [garment], "tops")
    rows, cols = _torso(located)
    assert np.abs(_px(out)[rows, cols].mean(axis=(0, 1)) - RED).max() < 60


def test_other_image_modes(base_engine: Engine, person, garment) -> None:
    out = base_engine.render(person.convert("RGBA"), [garment.convert("L").convert("RGB")])
    assert out.size == person.size and out.mode == "RGB"


def test_no_person_is_rejected(engine: Engine, garment) -> None:
    blank = Image.new("RGB", (600, 800), (228, 226, 222))
    with pytest.raises(PersonNotFound, match="no person"):
        engine.render(blank, [garment])


def test_garment_count_and_combinations(base_engine: Engine, person, garment) -> None:
    with pytest.raises(GarmentUnusable):
        base_engine.render(person, [])
    with pytest.raises(GarmentUnusable, match="at most 2"):
        base_engine.render(person, [garment] * 3)
    with pytest.raises(GarmentUnusable, match="one-piece"):
        base_engine.render(person, [garment, garment], "one-pieces")
    with pytest.raises(ValueError, match="category"):
        base_engine.render(person, [garment], "hats")  # type: ignore[arg-type]


def test_pose_can_be_required(pose_engine: Engine) -> None:
    assert pose_engine.tier == "pose"
    assert Engine(use_pose=False).tier == "base"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(96, 1100), height=st.integers(128, 1400), tier=st.booleans())
def test_any_person_size_gives_the_same_size(
    width: int, height: int, tier: bool, pose_engine: Engine, base_engine: Engine, person, garment
) -> None:
    engine = pose_engine if tier else base_engine
    resized = person.resize((width, height))
    assert engine.render(resized, [garment]).size == (width, height)


def test_shared_engine_is_thread_safe_and_deterministic(pose_engine: Engine, person, garment):
    from concurrent.futures import ThreadPoolExecutor

    expected = _px(pose_engine.render(person, [garment], seed=5)).tobytes()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(pose_engine.render, person, [garment], "auto", 5) for _ in range(3)]
        results = [_px(f.result()).tobytes() for f in futures]
    assert results == [expected] * 3


def test_any_integer_seed(base_engine: Engine, person, garment) -> None:
    for seed in (-1, 0, 2**70):
        assert base_engine.render(person, [garment], seed=seed).size == person.size


def test_a_broken_mediapipe_falls_back_to_the_base_tier(
    monkeypatch: pytest.MonkeyPatch, person, garment
) -> None:
    import tryon_local.pose

    def broken() -> None:
        raise ImportError("libGL.so.1: cannot open shared object file")

    monkeypatch.setattr(tryon_local.pose, "_import_mediapipe", broken)
    auto = Engine()
    assert auto.tier == "pose"
    assert auto.render(person, [garment]).size == person.size
    assert auto.tier == "base"
    with pytest.raises(ImportError, match="libGL"):
        Engine(use_pose=True).locate(person)
