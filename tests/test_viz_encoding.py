"""The encoding picture writes the offsets minissd.boxes.encode computes, and decode gives the box back."""

import re

import numpy as np

from minissd.boxes import encode
from minissd.viz.encoding import encoding_figure


def test_the_numbers_in_the_picture_are_encode_s():
    gt, prior = (0.30, 0.25, 0.80, 0.70), (0.42, 0.52, 0.36, 0.30)
    figure, offsets = encoding_figure(gt, prior)
    expected = encode(np.array([gt]), np.array([prior]), (0.1, 0.2))[0]
    np.testing.assert_allclose(offsets, expected)
    text = "\n".join(t.get_text() for ax in figure.axes for t in ax.texts)
    written = [float(v) for v in re.findall(r"= ([+-]\d\.\d{3})$", text, flags=re.M)]
    np.testing.assert_allclose(written, expected, atol=5e-4)
    assert "decode(ĝ, d) = g: 0.30, 0.25, 0.80, 0.70" in text
    # hand arithmetic: g centre (0.55, 0.475), size (0.5, 0.45); d (0.42, 0.52, 0.36, 0.30)
    np.testing.assert_allclose(expected, [0.13 / 0.036, -0.045 / 0.030, np.log(0.5 / 0.36) / 0.2,
                                          np.log(0.45 / 0.30) / 0.2], rtol=1e-6)
