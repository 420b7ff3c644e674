"""Bad data: truncated and corrupt images, degenerate and out-of-image boxes, images without
boxes, malformed annotations; and a seeded fuzz test of the config loader and both dataset
loaders (a malformed file gives a ValueError/KeyError/FileNotFoundError naming it, never
another exception from deep inside)."""
import copy
import json
import logging
import random

import cv2
import numpy as np
import pytest
import yaml

from atss_core.config import cfg as default_cfg
from atss_core.data.datasets import COCODataset, PascalVOCDataset
from atss_core.data.datasets.image_io import UnreadableImageError, read_image_bgr
from tests.data.test_coco_dataset import write_coco
from tests.data.test_voc import OBJ, XML, write_voc

CLEAR_ERRORS = (ValueError, KeyError, FileNotFoundError)
DATASET_ERRORS = (ValueError, FileNotFoundError)  # a KeyError there would come from deep inside


def test_truncated_jpeg_is_refused_and_a_padded_one_reads(tmp_path):
    image = (np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "full.jpg"), image)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "padded.jpg").write_bytes(data + b"\x00" * 100)
    with pytest.raises(UnreadableImageError, match="cut.jpg is truncated"):
        read_image_bgr(str(tmp_path / "cut.jpg"))
    assert np.array_equal(read_image_bgr(str(tmp_path / "padded.jpg")), read_image_bgr(str(tmp_path / "full.jpg")))
    assert np.array_equal(read_image_bgr(str(tmp_path / "full.jpg")), cv2.imread(str(tmp_path / "full.jpg")))


def _jpeg_with_exif_thumbnail(image):
    """A JPEG whose APP1 (EXIF) segment holds a complete thumbnail JPEG, end marker included."""
    main = cv2.imencode(".jpg", image)[1].tobytes()
    thumbnail = cv2.imencode(".jpg", image[::8, ::8])[1].tobytes()
    body = b"Exif\x00\x00" + thumbnail
    app1 = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    return main[:2] + app1 + main[2:]


def test_jpeg_end_is_looked_for_after_the_main_image_header(tmp_path):
    """Data after a complete image (camera trailers) is fine; an EXIF thumbnail's end marker
    does not make a truncated image look complete."""
    image = (np.random.RandomState(1).rand(64, 96, 3) * 255).astype(np.uint8)
    complete = _jpeg_with_exif_thumbnail(image)
    (tmp_path / "trailer.jpg").write_bytes(complete + b"\x00\x00ftypmp42" + bytes(range(256)) * 40)
    assert read_image_bgr(str(tmp_path / "trailer.jpg")).shape == (64, 96, 3)
    (tmp_path / "cut.jpg").write_bytes(complete[: len(complete) - 200])
    with pytest.raises(UnreadableImageError, match="is truncated"):
        read_image_bgr(str(tmp_path / "cut.jpg"))


def test_training_skips_an_unreadable_image_with_a_counted_warning_and_evaluation_stops(tmp_path, caplog):
    ann, root = write_coco(tmp_path, corrupt=True)  # img2.jpg (index 2) is garbage
    training = COCODataset(ann, root, remove_images_without_annotations=False, skip_unreadable=True)
    with caplog.at_level(logging.WARNING):
        image, _, _ = training[2]
        training[2]
    assert image.shape == (30, 40, 3)  # the next readable image in dataset order: index 0
    assert "img2.jpg" in caplog.text and "2 unreadable image(s) skipped so far" in caplog.text
    evaluation = COCODataset(ann, root, remove_images_without_annotations=False)
    with pytest.raises(UnreadableImageError, match="could not decode image .*img2.jpg"):
        evaluation[2]


@pytest.mark.parametrize("exif_orientation", [False, True])
def test_an_image_of_another_size_than_annotated_is_skipped_in_training_and_named(tmp_path, caplog,
                                                                                   exif_orientation):
    """img1.jpg is stored 50 x 20 and annotated so, but its EXIF orientation (6) turns it to
    20 x 50: read turned, it no longer fits its boxes. Stored 20 x 50 without EXIF (annotated
    50 x 20), it is simply the wrong size."""
    from PIL import Image

    ann, root = write_coco(tmp_path)
    exif = Image.Exif()
    exif[0x0112] = 6
    if exif_orientation:
        Image.fromarray(np.zeros((20, 50, 3), np.uint8)).save(str(tmp_path / "images" / "img1.jpg"), exif=exif)
    else:
        cv2.imwrite(str(tmp_path / "images" / "img1.jpg"), np.zeros((50, 20, 3), np.uint8))
    training = COCODataset(ann, root, remove_images_without_annotations=False, skip_unreadable=True,
                           exif_orientation=exif_orientation)
    with caplog.at_level(logging.WARNING):
        image, _, _ = training[1]
    assert image.shape == (30, 30, 3)  # the next image in dataset order
    assert "img1.jpg: the annotation says 50x20 but the image is 20x50" in caplog.text
    evaluation = COCODataset(ann, root, remove_images_without_annotations=False, exif_orientation=exif_orientation)
    with pytest.raises(UnreadableImageError, match="20x50 once its EXIF orientation is applied" if exif_orientation
                       else "20x50$"):
        evaluation[1]


def test_degenerate_boxes_are_counted_and_dropped_and_boxes_beyond_the_image_clipped(tmp_path, caplog):
    ann, root = write_coco(tmp_path)
    data = json.loads((tmp_path / "ann.json").read_text())
    data["annotations"] += [
        {"id": 5, "image_id": 10, "category_id": 3, "bbox": [4, 4, -3, 6], "iscrowd": 0, "area": 1},
        {"id": 6, "image_id": 10, "category_id": 3, "bbox": [4, 4, 6, 0], "iscrowd": 0, "area": 1},
        {"id": 7, "image_id": 10, "category_id": 7, "bbox": [30, 20, 50, 50], "iscrowd": 0, "area": 2500},
    ]
    (tmp_path / "ann.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        dataset = COCODataset(ann, root, remove_images_without_annotations=True)
    # ids 4 (1x1), 5 and 6; the crowd box is not counted
    assert "3 box(es) of width or height <= 1 pixel (zero or negative included) are ignored" in caplog.text
    _, target, _ = dataset[0]
    assert target.bbox.tolist() == [[2.0, 3.0, 11.0, 7.0], [20.0, 10.0, 34.0, 24.0], [30.0, 20.0, 39.0, 29.0]]


def test_images_without_boxes_are_left_out_of_training_only(tmp_path, caplog):
    ann, root = write_coco(tmp_path)
    with caplog.at_level(logging.INFO):
        assert len(COCODataset(ann, root, remove_images_without_annotations=True)) == 1
    assert "2 of 3 images have no usable box" in caplog.text
    assert len(COCODataset(ann, root, remove_images_without_annotations=False)) == 3


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("images"), "'images' is missing or not a list"),
    (lambda d: d.update(categories={"id": 1}), "'categories' is missing or not a list"),
    (lambda d: d["images"][0].pop("width"), "an image entry lacks one of id, file_name, width, height"),
    (lambda d: d["annotations"][1].update(bbox=[1, 2, 3]), "annotation 2 has bbox [1, 2, 3]"),
    (lambda d: d["annotations"][1].update(bbox="1 2 3 4"), "annotation 2 has bbox '1 2 3 4'"),
    (lambda d: d["annotations"][1].update(bbox=[1, 2, float("nan"), 4]), "annotation 2 has bbox [1, 2, nan, 4]"),
    (lambda d: d["images"][1].update(height=0), "expected positive numbers"),
    (lambda d: d["annotations"][0].update(image_id=99), "annotation 1 refers to image_id 99"),
    (lambda d: d["annotations"][0].update(category_id=42),
     "annotation 1 has category_id 42, which is not among the categories [3, 7]"),
    (lambda d: d["annotations"][0].pop("category_id"), "an annotation lacks one of id, image_id, category_id, bbox"),
    (lambda d: d["categories"][0].pop("name"), "a category entry lacks its id or name"),
])
def test_malformed_coco_json_is_named(tmp_path, edit, message):
    ann, root = write_coco(tmp_path)
    data = json.loads((tmp_path / "ann.json").read_text())
    edit(data)
    (tmp_path / "ann.json").write_text(json.dumps(data))
    with pytest.raises(ValueError) as error:
        COCODataset(ann, root, remove_images_without_annotations=False)
    assert message in str(error.value) and "ann.json" in str(error.value)


@pytest.mark.parametrize("xml, message", [
    (XML.format(w=20, h=20, objects="<object><name>dog</name></object>"), "an <object> has no <bndbox>"),
    (XML.format(w=20, h=20, objects=OBJ.format(name="dog", difficult=0, box=(1, "x", 5, 5))),
     "<ymin> is 'x', not a number"),
    ("<annotation><object/></annotation>", "<size> is missing"),
    (XML.format(w=20, h=20, objects=OBJ.format(name="dog", difficult=0, box=(1, 1, "inf", 5))),
     "<xmax> is 'inf', not a number"),
    (XML.format(w="", h=20, objects=""), "<width> is missing in <size>"),
    (XML.format(w=20, h=20, objects=OBJ.format(name="", difficult=0, box=(1, 1, 5, 5))),
     "<name> is missing in <object>"),
    ("<annotation><size>", "could not parse VOC annotation"),
])
def test_malformed_voc_xml_is_named(tmp_path, xml, message):
    write_voc(tmp_path, {"a": (20, 20, [("dog", False, (1, 1, 5, 5))])})
    (tmp_path / "Annotations" / "a.xml").write_text(xml)
    with pytest.raises(ValueError) as error:
        PascalVOCDataset(str(tmp_path), "test")
    assert message in str(error.value) and "a.xml" in str(error.value)


def test_voc_degenerate_boxes_are_counted_and_missing_folder_named(tmp_path, caplog):
    write_voc(tmp_path, {"a": (20, 20, [("dog", False, (5, 5, 5, 9)), ("dog", False, (8, 2, 4, 9)),
                                         ("dog", False, (1, 1, 5, 5))])})
    with caplog.at_level(logging.WARNING):
        dataset = PascalVOCDataset(str(tmp_path), "test")
    assert "2 box(es) with xmax <= xmin or ymax <= ymin are ignored" in caplog.text
    assert len(dataset[0][1]) == 1
    with pytest.raises(FileNotFoundError, match="VOC dataset folder not found"):
        PascalVOCDataset(str(tmp_path / "nowhere"), "test")


# ---------------------------------------------------------------------------------------------
# fuzzing: seeded, bounded mutations of valid files

def _mutate(value, rng, depth=0):
    """One random structural change somewhere inside ``value`` (json-like data)."""
    junk = [None, "", "x", -1, 0, 1.5, [], {}, [1, 2], {"a": 1}, True, 1e30, float("nan")]
    if isinstance(value, (dict, list)) and value and (depth < 3 or rng.random() < 0.5):
        key = rng.choice(sorted(value, key=str)) if isinstance(value, dict) else rng.randrange(len(value))
        action = rng.random()
        if action < 0.3:
            value.pop(key)
        elif action < 0.6:
            value[key] = rng.choice(junk)
        else:
            value[key] = _mutate(value[key], rng, depth + 1)
        return value
    return rng.choice(junk)


def _mutated(valid, rng):
    data = copy.deepcopy(valid)
    for _ in range(rng.randint(1, 3)):
        data = _mutate(data, rng)
    return data


def test_fuzzed_coco_annotations_fail_with_a_clear_error_or_load(tmp_path):
    ann, root = write_coco(tmp_path)
    valid = json.loads((tmp_path / "ann.json").read_text())
    rng = random.Random(0)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(150):
        text = json.dumps(_mutated(valid, rng))
        if rng.random() < 0.15:
            text = text[: rng.randrange(len(text))]  # cut off
        (tmp_path / "ann.json").write_text(text)
        try:
            dataset = COCODataset(ann, root, remove_images_without_annotations=bool(case % 2))
            for index in range(len(dataset)):
                dataset.get_groundtruth(index)
            outcomes["loaded"] += 1
        except DATASET_ERRORS as error:
            assert "ann.json" in str(error), (case, text, error)
            outcomes["refused"] += 1
    assert outcomes["loaded"] > 5 and outcomes["refused"] > 50, outcomes


def test_fuzzed_voc_annotations_fail_with_a_clear_error_or_load(tmp_path):
    write_voc(tmp_path, {"a": (20, 20, [("dog", False, (1, 1, 5, 5)), ("cat", True, (2, 2, 9, 9))])})
    valid = (tmp_path / "Annotations" / "a.xml").read_text()
    rng = random.Random(1)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(150):
        text = valid
        for _ in range(rng.randint(1, 2)):
            start = rng.randrange(len(text))
            action = rng.random()
            if action < 0.4:  # delete a span
                text = text[:start] + text[start + rng.randint(1, 12):]
            elif action < 0.7:  # replace a character
                text = text[:start] + rng.choice("<>/ax1-. ") + text[start + 1:]
            else:  # duplicate a span
                span = text[start:start + rng.randint(1, 30)]
                text = text[:start] + span + text[start:]
        (tmp_path / "Annotations" / "a.xml").write_text(text)
        try:
            dataset = PascalVOCDataset(str(tmp_path), "test")
            dataset.get_groundtruth(0)
            outcomes["loaded"] += 1
        except DATASET_ERRORS as error:
            assert "a.xml" in str(error) or "classes" in str(error), (case, text, error)
            outcomes["refused"] += 1
    assert outcomes["loaded"] >= 3 and outcomes["refused"] > 50, outcomes


def test_fuzzed_config_files_fail_with_a_clear_error_or_load(tmp_path):
    valid = yaml.safe_load(open("configs/quickstart/atss_R_18_synthetic.yaml"))
    rng = random.Random(2)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(150):
        text = yaml.safe_dump(_mutated(valid, rng)) if rng.random() < 0.85 else yaml.safe_dump(valid)[: rng.randrange(200)] + ":\n ["
        path = tmp_path / "case.yaml"
        path.write_text(text)
        cfg = default_cfg.clone()
        try:
            cfg.merge_from_file(str(path))
            outcomes["loaded"] += 1
        except CLEAR_ERRORS as error:
            assert "case.yaml" in str(error), (case, text, error)
            outcomes["refused"] += 1
    assert outcomes["loaded"] > 5 and outcomes["refused"] > 50, outcomes
