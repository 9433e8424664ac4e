"""Tests for unilog.media: snapshots at construction, lazy and correct encodings."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

from unilog.media import Histogram, Image, Media, Table, Text

REPO = pathlib.Path(__file__).resolve().parents[1]


def decode_png(data: bytes) -> np.ndarray:
    """Decode with Pillow, independently of unilog's own encoder."""
    PILImage = pytest.importorskip("PIL.Image")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with PILImage.open(io.BytesIO(data)) as img:
        img.load()
        return np.asarray(img)


def random_pixels(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# -- Image: pixels survive the PNG round trip ----------------------------------


@pytest.mark.parametrize(
    ("shape", "pil_mode"),
    [((7, 5), "L"), ((7, 5, 1), "L"), ((7, 5, 3), "RGB"), ((7, 5, 4), "RGBA")],
)
def test_png_round_trip_from_uint8_array(shape, pil_mode):
    pixels = random_pixels(*shape)
    image = Image(pixels)
    decoded = decode_png(image.png_bytes())
    assert decoded.shape[:2] == (7, 5)
    assert decoded.reshape(shape).tolist() == pixels.tolist()
    assert (image.width, image.height) == (5, 7)
    with pytest.importorskip("PIL.Image").open(io.BytesIO(image.png_bytes())) as img:
        assert img.mode == pil_mode


def test_chw_array_is_transposed():
    hwc = random_pixels(6, 9, 3)
    image = Image(np.ascontiguousarray(hwc.transpose(2, 0, 1)))  # 3x6x9: last dim is not 1/3/4
    assert decode_png(image.png_bytes()).tolist() == hwc.tolist()
    assert image.to_uint8().flags.c_contiguous


def test_float_array_is_scaled_and_clipped():
    data = np.array([[0.0, 0.5, 1.0], [-3.0, 7.0, np.nan]], dtype=np.float32)
    assert decode_png(Image(data).png_bytes()).tolist() == [[0, 128, 255], [0, 255, 0]]


def test_integer_array_is_clipped():
    data = np.array([[-5, 0, 100], [255, 256, 70000]], dtype=np.int64)
    assert Image(data).to_uint8()[:, :, 0].tolist() == [[0, 0, 100], [255, 255, 255]]
    assert Image(np.array([[-5, 100]], np.int8)).to_uint8()[:, :, 0].tolist() == [[0, 100]]


def test_bool_array_is_black_and_white():
    data = np.array([[True, False], [False, True]])
    assert decode_png(Image(data).png_bytes()).tolist() == [[255, 0], [0, 255]]


def test_to_uint8_is_cached_and_read_only():
    image = Image(random_pixels(4, 4, 3))
    first = image.to_uint8()
    assert first is image.to_uint8()
    assert first.dtype == np.uint8 and first.shape == (4, 4, 3)
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1
    assert image.png_bytes() is image.png_bytes()


def test_concurrent_first_use_computes_once():
    image = Image(random_pixels(64, 64, 3))
    results, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        results.append(image.png_bytes())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_numpy_snapshot_ignores_later_mutation():
    pixels = random_pixels(5, 5, 3)
    expected = pixels.copy()
    image = Image(pixels)
    pixels[:] = 0
    assert decode_png(image.png_bytes()).tolist() == expected.tolist()


def test_nested_list_input():
    assert Image([[0, 255], [255, 0]]).to_uint8()[:, :, 0].tolist() == [[0, 255], [255, 0]]


# -- Image: torch, PIL, matplotlib, files ---------------------------------------


def test_torch_chw_tensor():
    torch = pytest.importorskip("torch")
    hwc = random_pixels(6, 8, 3)
    tensor = torch.from_numpy(hwc).permute(2, 0, 1).float() / 255.0
    image = Image(tensor, caption="t")
    tensor.zero_()  # the HostCopy snapshot must not see this
    assert (image.width, image.height) == (8, 6)
    assert decode_png(image.png_bytes()).tolist() == hwc.tolist()
    assert image.to_json() == {"kind": "image", "caption": "t", "width": 8, "height": 6}


def test_torch_tensor_prefers_chw_when_ambiguous():
    torch = pytest.importorskip("torch")
    image = Image(torch.zeros(3, 10, 4))  # CHW for torch, HWC for numpy
    assert (image.width, image.height) == (4, 10)
    assert (Image(np.zeros((3, 10, 4))).width, Image(np.zeros((3, 10, 4))).height) == (10, 3)


def test_torch_hwc_uint8_and_bfloat16_tensors():
    torch = pytest.importorskip("torch")
    hwc = random_pixels(5, 7, 4)
    assert decode_png(Image(torch.from_numpy(hwc)).png_bytes()).tolist() == hwc.tolist()
    half = torch.full((2, 3), 1.0, dtype=torch.bfloat16)
    assert Image(half).to_uint8()[:, :, 0].tolist() == [[255] * 3] * 2


def test_pil_image_snapshot_ignores_later_mutation():
    PILImage = pytest.importorskip("PIL.Image")
    pil = PILImage.new("RGB", (4, 3), (10, 20, 30))
    image = Image(pil)
    pil.putpixel((0, 0), (255, 255, 255))
    assert (image.width, image.height) == (4, 3)
    assert decode_png(image.png_bytes()).tolist() == [[[10, 20, 30]] * 4] * 3


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("1", 1), ("RGBA", 4), ("P", 3)])
def test_pil_modes_map_to_gray_rgb_rgba(mode, channels):
    PILImage = pytest.importorskip("PIL.Image")
    assert Image(PILImage.new(mode, (2, 2))).to_uint8().shape == (2, 2, channels)


def test_matplotlib_figure_becomes_png():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.plot([0, 1], [1, 0])
    image = Image(fig, caption="plot")
    ax.plot([0, 1], [0, 1])  # reusing the figure must not change the logged image
    plt.close(fig)
    data = image.png_bytes()
    assert decode_png(data).shape[:2] == (50, 100)
    assert (image.width, image.height) == (100, 50)
    assert image.to_uint8().shape[:2] == (50, 100)


def test_png_and_jpeg_files(tmp_path):
    PILImage = pytest.importorskip("PIL.Image")
    pixels = random_pixels(9, 11, 3)
    PILImage.fromarray(pixels).save(tmp_path / "a.png")
    PILImage.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)

    png = Image(tmp_path / "a.png")
    assert png.png_bytes() == (tmp_path / "a.png").read_bytes()
    assert png.to_uint8().tolist() == pixels.tolist()

    jpeg = Image(str(tmp_path / "a.jpg"))
    assert (jpeg.width, jpeg.height) == (11, 9)
    assert decode_png(jpeg.png_bytes()).shape == (9, 11, 3)


def test_file_that_is_not_an_image(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        Image(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        Image(tmp_path / "missing.png")


@pytest.mark.parametrize("shape", [(4,), (2, 3, 5, 3), (5, 6, 7), (0, 4, 3)])
def test_bad_shapes_name_the_shape_and_accepted_ones(shape):
    with pytest.raises(ValueError, match=r"\(.*\)") as info:
        Image(np.zeros(shape))
    assert str(tuple(shape)) in str(info.value)
    if shape != (0, 4, 3):
        assert "HxW, HxWxC or CxHxW" in str(info.value)


def test_bad_types_name_the_type():
    with pytest.raises(TypeError, match="builtins.object.*PIL image"):
        Image(object())
    with pytest.raises(TypeError, match="dtype"):
        Image(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="caption"):
        Image(np.zeros((2, 2)), caption=3)


# -- Histogram ------------------------------------------------------------------


def test_histogram_matches_numpy():
    values = np.random.default_rng(1).normal(size=(10, 100))
    hist = Histogram(values, num_bins=20)
    counts, edges = np.histogram(values.ravel(), bins=20)
    assert hist.counts.tolist() == counts.tolist()
    assert np.allclose(hist.edges, edges)
    assert len(hist.counts) == 20 and len(hist.edges) == 21
    assert hist.values.shape == (1000,)


def test_histogram_snapshot_and_lists():
    values = np.arange(10.0)
    hist = Histogram(values, num_bins=2)
    values[:] = 100.0
    assert hist.counts.tolist() == [5, 5]
    assert Histogram([1, 2, 3, 4], num_bins=2).counts.tolist() == [2, 2]


def test_histogram_ignores_and_counts_nonfinite():
    hist = Histogram([1.0, np.nan, 2.0, np.inf, -np.inf, 3.0], num_bins=3)
    assert hist.counts.tolist() == [1, 1, 1]
    assert hist.values.tolist() == [1.0, 2.0, 3.0]
    info = hist.to_json()
    assert info["nonfinite"] == 3 and info["count"] == 3 and info["num_bins"] == 3
    assert (info["min"], info["max"]) == (1.0, 3.0)


def test_histogram_of_a_range_wider_than_float64():
    hist = Histogram([-1e308, 0.0, 1e308], num_bins=4)
    assert hist.counts.tolist() == [1, 0, 1, 1]
    assert (hist.edges[0], hist.edges[-1]) == (-1e308, 1e308)
    assert np.isfinite(hist.edges).all()


def test_histogram_of_constant_and_empty_values():
    assert Histogram([5.0, 5.0], num_bins=2).edges.tolist() == [4.5, 5.0, 5.5]
    empty = Histogram([np.nan], num_bins=2)
    assert empty.counts.tolist() == [0, 0]
    assert empty.to_json()["nonfinite"] == 1


def test_histogram_from_np_histogram():
    counts, edges = np.histogram([1, 2, 2, 3, 3, 3], bins=3)
    hist = Histogram(np_histogram=(counts, edges))
    counts[:] = 0  # snapshot
    assert hist.num_bins == 3
    assert hist.counts.tolist() == [1, 2, 3]
    assert hist.edges.tolist() == edges.tolist()
    assert hist.values is None


def test_histogram_torch_tensor():
    torch = pytest.importorskip("torch")
    tensor = torch.tensor([[0.0, 1.0], [2.0, float("nan")]])
    hist = Histogram(tensor, num_bins=2)
    tensor.fill_(5.0)
    assert hist.counts.tolist() == [1, 2]
    assert hist.to_json()["nonfinite"] == 1


def test_histogram_save(tmp_path):
    path = Histogram([0, 1, 1], num_bins=2).save(tmp_path / "deep" / "dir" / "h")
    assert path == tmp_path / "deep" / "dir" / "h.json"
    assert json.loads(path.read_text()) == {
        "kind": "histogram",
        "counts": [1, 2],
        "edges": [0.0, 0.5, 1.0],
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "exactly one"),
        ({"values": [1], "np_histogram": ([1], [0, 1])}, ValueError, "exactly one"),
        ({"values": [1], "num_bins": 0}, ValueError, "1 to 512"),
        ({"values": [1], "num_bins": 513}, ValueError, "1 to 512"),
        ({"values": [1], "num_bins": 2.0}, ValueError, "num_bins"),
        ({"values": ["a", "b"]}, TypeError, "numbers"),
        ({"np_histogram": ([1, 2], [0, 1])}, ValueError, "one more edge"),
        ({"np_histogram": [1, 2, 3]}, TypeError, "counts, edges"),
    ],
)
def test_histogram_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        Histogram(**kwargs)


# -- Text -----------------------------------------------------------------------


def test_text(tmp_path):
    text = Text("héllo\nworld")
    assert text.text == "héllo\nworld"
    path = text.save(tmp_path / "notes.v2")
    assert path.name == "notes.v2.txt"
    assert path.read_bytes() == "héllo\nworld".encode()
    assert text.to_json() == {"kind": "text", "length": 11}
    with pytest.raises(TypeError, match="bytes"):
        Text(b"raw")


# -- Table ----------------------------------------------------------------------


def test_table_from_rows_converts_cells():
    table = Table(["a", "b"], [[np.int64(1), np.float32(0.5)], (None, np.bool_(True))])
    assert table.rows == [[1, 0.5], [None, True]]
    assert type(table.rows[0][0]) is int and type(table.rows[1][1]) is bool
    assert Table(["x"], [[{"k": 1}]]).rows == [["{'k': 1}"]]


def test_table_snapshot_and_default_columns():
    row = [1, 2]
    table = Table(data=[row])
    row.append(3)
    assert table.columns == ["c0", "c1"]
    assert table.rows == [[1, 2]]
    assert Table(columns=["a"]).rows == []


def test_table_from_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "name": ["x", None],
            "n": [1, 2],
            "f": [0.5, float("nan")],
            "t": pd.to_datetime(["2024-01-02", None]),
        },
        index=[10, 20],
    )
    table = Table(dataframe=df)
    df.loc[10, "n"] = 99
    assert table.columns == ["name", "n", "f", "t"]
    assert table.rows == [["x", 1, 0.5, "2024-01-02 00:00:00"], [None, 2, None, None]]
    assert type(table.rows[0][1]) is int
    assert table.to_json() == {"kind": "table", "columns": ["name", "n", "f", "t"], "num_rows": 2}
    assert Table(dataframe=pd.DataFrame({0: [1]})).columns == ["0"]


def test_table_markdown_escapes_pipes_and_newlines():
    table = Table(["a|b", "c"], [["x|y", "line1\nline2"], [None, 3]])
    assert table.to_markdown() == (
        "| a\\|b | c |\n| --- | --- |\n| x\\|y | line1<br>line2 |\n|  | 3 |\n"
    )


def test_table_csv_round_trip(tmp_path):
    rows = [['has "quotes", commas', 1, 2.5], ["multi\nline", True, None]]
    table = Table(["text", "i", "f"], rows)
    path = table.save(tmp_path / "t")
    assert path.suffix == ".csv"
    with path.open(newline="", encoding="utf-8") as f:
        read = list(csv.reader(f))
    assert read == [
        ["text", "i", "f"],
        ['has "quotes", commas', "1", "2.5"],
        ["multi\nline", "True", ""],
    ]
    assert path.read_text(encoding="utf-8") == table.to_csv_text()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "needs columns"),
        ({"columns": ["a", "b"], "data": [[1, 2], [3]]}, ValueError, "row 1 has 1 cells"),
        ({"columns": ["a"], "data": [5]}, TypeError, "row 0"),
        ({"columns": ["a"], "data": ["ab"]}, TypeError, "row 0"),
        ({"columns": "ab", "data": []}, TypeError, "single string"),
        ({"columns": ["a"], "dataframe": object()}, ValueError, "not both"),
        ({"dataframe": {"a": [1]}}, TypeError, "pandas DataFrame"),
    ],
)
def test_table_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        Table(**kwargs)


# -- common behaviour -------------------------------------------------------------


@pytest.mark.parametrize(
    "media",
    [
        Image(np.zeros((2, 2))),
        Histogram([1.0, 2.0]),
        Text("t"),
        Table(["a"], [[1]]),
    ],
    ids=lambda m: type(m).__name__,
)
def test_save_creates_parents_and_appends_suffix(tmp_path, media):
    target = tmp_path / "a" / "b" / "step.10"
    path = media.save(str(target))
    assert isinstance(media, Media)
    assert path == tmp_path / "a" / "b" / f"step.10{media.suffix}"
    assert path.is_file() and path.stat().st_size > 0
    info = media.to_json()
    assert info["kind"] == media.kind
    json.dumps(info)


def test_kinds_match_the_backend_contract():
    from unilog.backend import MEDIA_KINDS

    assert {cls.kind for cls in (Image, Histogram, Text, Table)} == MEDIA_KINDS


def test_all_is_sorted_and_complete():
    import unilog.media

    assert unilog.media.__all__ == sorted(unilog.media.__all__)
    assert set(unilog.media.__all__) == {"Histogram", "Image", "Media", "Table", "Text"}


def test_import_pulls_in_no_heavy_dependency():
    heavy = ["numpy", "torch", "PIL", "matplotlib", "pandas"]
    code = (
        "import sys, unilog.media\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
