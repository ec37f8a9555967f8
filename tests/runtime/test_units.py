import pytest

from trt_inpaint.runtime.units import format_bytes, parse_bytes


@pytest.mark.parametrize(
    "text, value",
    [("16GiB", 16 * 2**30), ("16 GB", 16 * 10**9), ("1.5G", int(1.5 * 2**30)), ("512MiB", 512 * 2**20),
     ("100", 100), (4096, 4096), ("unlimited", None)],
)  # fmt: skip
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "12 parsecs", "GiB", "-3", "1e3x"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_bytes(text)


def test_format_bytes():
    assert format_bytes(16 * 2**30) == "16.0 GiB"
    assert format_bytes(10) == "10 B"
    assert format_bytes(None) == "unlimited"
