"""SSD's box encoding drawn: a ground-truth box, its default box, and the four offsets between them.

    g_hat_cx = (g_cx - d_cx) / (d_w v_c)     g_hat_w = log(g_w / d_w) / v_s
    g_hat_cy = (g_cy - d_cy) / (d_h v_c)     g_hat_h = log(g_h / d_h) / v_s

The numbers written in the picture are those of ``minissd.boxes.encode`` (and
``decode`` of them gives the ground truth back), so the picture cannot
disagree with the code.
"""

from __future__ import annotations

import numpy as np

from .canvas import PALETTE, _rgb, figure_and_axes


def encoding_figure(gt_box=(0.30, 0.25, 0.80, 0.70), default_box=(0.42, 0.52, 0.36, 0.30), variances=(0.1, 0.2)):
    """(Figure, offsets (4,)): the default box d (cxcywh) dashed, the ground truth g (xyxy) solid,
    the centre shift as an arrow, and g_hat = encode(g, d) written beside them."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from ..boxes import cxcywh_to_xyxy, decode, encode, xyxy_to_cxcywh

    gt = np.asarray(gt_box, dtype=np.float64).reshape(1, 4)  # (1, 4) xyxy
    prior = np.asarray(default_box, dtype=np.float64).reshape(1, 4)  # (1, 4) cxcywh
    offsets = encode(gt, prior, variances)[0]  # (4,)
    back = decode(offsets[None], prior, variances)[0]  # (4,) xyxy, equal to gt
    figure, axes = figure_and_axes(1, 2, figsize=(10, 4.2))
    ax, notes = axes[0]
    d_corners = cxcywh_to_xyxy(prior)[0]
    g_centre = xyxy_to_cxcywh(gt)[0]
    ax.add_patch(Rectangle(d_corners[:2], *(d_corners[2:] - d_corners[:2]), fill=False, edgecolor=PALETTE[2],
                           linestyle="--", linewidth=2))
    ax.add_patch(Rectangle(gt[0, :2], *(gt[0, 2:] - gt[0, :2]), fill=True, facecolor=(*_rgb(PALETTE[0]), 0.12),
                           edgecolor=PALETTE[0], linewidth=2.5))
    ax.plot(*prior[0, :2], "o", color=PALETTE[2])
    ax.plot(*g_centre[:2], "o", color=PALETTE[0])
    ax.add_patch(FancyArrowPatch(prior[0, :2], g_centre[:2], arrowstyle="-|>", mutation_scale=14, color="black"))
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("x (fraction of the image width)")
    ax.set_ylabel("y")
    v_c, v_s = variances
    text = "\n".join([
        "offsets the network learns (encode):",
        f"ĝ_cx = (g_cx − d_cx) / (d_w·{v_c:g}) = {offsets[0]:+.3f}",
        f"ĝ_cy = (g_cy − d_cy) / (d_h·{v_c:g}) = {offsets[1]:+.3f}",
        f"ĝ_w  = log(g_w / d_w) / {v_s:g} = {offsets[2]:+.3f}",
        f"ĝ_h  = log(g_h / d_h) / {v_s:g} = {offsets[3]:+.3f}",
        "",
        "decode(ĝ, d) = g: " + ", ".join(f"{v:.2f}" for v in back),
    ])
    notes.set_axis_off()
    notes.text(0.0, 0.5, text, transform=notes.transAxes, va="center", fontsize=10, family="monospace")
    ax.legend(handles=[Line2D([], [], color=PALETTE[2], linestyle="--", linewidth=2, label="default box d"),
                       Line2D([], [], color=PALETTE[0], linewidth=2.5, label="ground truth g"),
                       Line2D([], [], color="black", marker=">", label="centre shift")],
              loc="upper left", fontsize=8, frameon=False)
    ax.set_title("SSD's box encoding: what the loc head predicts")
    figure.tight_layout()
    return figure, offsets

