"""Draw the real autograd graph of a tensor: walk grad_fn.next_functions back to the leaves (AccumulateGrad
holds the leaf tensor), lay nodes out in columns by distance from the output, and draw them with matplotlib.

Like micrograd's draw_dot (every leaf shows its data and grad) and torchviz (the actual grad_fn nodes),
but with no graphviz system package: pure Python + matplotlib, so `pip install` is enough.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.fonts import with_cjk
from zoo.pictures import fig_to_array, figure

MAX_NODES = 48
TITLE = "autograd graph: leaves (blue) -> grad_fn nodes (orange) -> output (green)"   # the catalogue's English
TRUNCATED = "(graph truncated)"


@dataclass
class Graph:
    """Nodes (key -> (kind, label)) and edges (src key -> dst key), forward direction: inputs to output."""
    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    truncated: bool = False


def short(t: torch.Tensor | None, mean: str = "mean") -> str:
    """A tensor in a few characters: its values when tiny, else shape and mean (`mean`: the word, in the
    visitor's language)."""
    if t is None:
        return "None"
    t = t.detach()
    if t.numel() <= 4:
        vals = [f"{v:.3g}" for v in t.reshape(-1).cpu().tolist()]
        return vals[0] if t.dim() == 0 else "[" + ", ".join(vals) + "]"
    average = t.float().mean().item() if t.is_floating_point() else float("nan")
    return f"{tuple(t.shape)} {mean} {average:.3g}"


def values(t: torch.Tensor | None, limit: int = 16, mean: str = "mean") -> str:
    """A tensor's values (3 significant digits) when it has at most `limit` elements, else short(t, mean)."""
    if t is None or t.numel() > limit or t.numel() <= 4:
        return short(t, mean)
    return "[" + ", ".join(f"{v:.3g}" for v in t.detach().reshape(-1).cpu().tolist()) + "]"


def build(root: torch.Tensor, names: dict, max_nodes: int = MAX_NODES, mean: str = "mean") -> Graph:
    """The autograd graph that produced `root`; `names` maps id(tensor) -> the user's name for it; `mean`: the word
    for a large tensor's mean in the nodes (the request's language)."""
    g = Graph()
    root_name = names.get(id(root), "output")
    root_grad = "1 (d out/d out)" if root.numel() == 1 else short(root.grad, mean)
    g.nodes["out"] = ("output", f"{root_name} {tuple(root.shape)}\ndata {short(root, mean)}\ngrad {root_grad}")
    if root.grad_fn is None:
        return g
    stack = [(root.grad_fn, "out")]
    while stack:
        fn, consumer = stack.pop()
        key = id(fn)
        g.edges.append((key, consumer))
        if key in g.nodes:
            continue
        if len(g.nodes) >= max_nodes:
            g.truncated = True
            g.edges.pop()
            continue
        leaf = getattr(fn, "variable", None)  # AccumulateGrad: the leaf tensor itself
        if isinstance(leaf, torch.Tensor):
            label = (f"{names.get(id(leaf), 'leaf')} {tuple(leaf.shape)}\ndata {short(leaf, mean)}\n"
                     f"grad {short(leaf.grad, mean)}")
            g.nodes[key] = ("leaf", label)
            continue
        g.nodes[key] = ("op", type(fn).__name__)
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                stack.append((nxt, key))
    return g


def layout(g: Graph) -> dict:
    """key -> (x, y): x = minus the longest distance to the output (inputs left, output right); within a
    column nodes are ordered by the mean height of the nodes they feed (fewer crossing edges)."""
    consumers: dict = {}
    for src, dst in g.edges:
        consumers.setdefault(src, set()).add(dst)
    depth = {"out": 0}
    for _ in range(len(g.nodes)):  # longest-path relaxation on a DAG
        changed = False
        for src, dsts in consumers.items():
            d = max(depth.get(x, 0) for x in dsts) + 1
            if depth.get(src, -1) < d:
                depth[src], changed = d, True
        if not changed:
            break
    columns: dict = {}
    for key in g.nodes:
        columns.setdefault(depth.get(key, 0), []).append(key)
    ncols = max(columns) + 1
    pos: dict = {}
    for col in sorted(columns):
        keys = columns[col]
        keys.sort(key=lambda k: -sum(pos[c][1] for c in consumers.get(k, ()) if c in pos)
                  / max(1, sum(1 for c in consumers.get(k, ()) if c in pos)))
        for i, key in enumerate(keys):
            pos[key] = (ncols - 1 - col, (len(keys) - 1) / 2 - i)
    return pos


def render(g: Graph, title: str = "", truncated: str = TRUNCATED) -> np.ndarray:
    """The graph as an RGB picture (matplotlib's Figure on the Agg canvas). title and truncated: the words above
    it in the visitor's language (the caller's t("sandbox.graph.title"), t("sandbox.graph.truncated"))."""
    pos = layout(g)
    ncols = int(max(x for x, _ in pos.values())) + 1
    nrows = max(sum(1 for x2, _ in pos.values() if x2 == x) for x, _ in pos.values())
    fig = figure(max(5.0, 2.5 * ncols), max(2.6, 1.0 * nrows + 1.0), dpi=100)
    ax = fig.subplots()
    colors = {"leaf": "#cfe8ff", "op": "#ffe6bf", "output": "#d4f5d0"}
    boxes = {}
    ax.set_xlim(-0.6, ncols - 0.4)
    ax.set_ylim(-(nrows / 2) - 0.1, nrows / 2 + 0.1)
    ax.axis("off")
    for key, (kind, label) in g.nodes.items():
        boxes[key] = ax.text(*pos[key], label, ha="center", va="center", fontsize=8, family=with_cjk("monospace"),
                             parse_math=False, zorder=3,
                             bbox=dict(boxstyle="round,pad=0.4", fc=colors[kind], ec="#555555"))
    note = "  " + truncated if g.truncated else ""
    ax.set_title((title or TITLE) + note, fontsize=9, parse_math=False)
    fig.tight_layout()
    fig.canvas.draw()  # now the boxes have sizes: arrows go from a box's right edge to the next's left edge
    inv = ax.transData.inverted()
    extent = {k: inv.transform(b.get_bbox_patch().get_window_extent()) for k, b in boxes.items()}
    for src, dst in set(g.edges):
        if src in boxes and dst in boxes:
            (_, _), (x0, _) = extent[src]
            (x1, _), (_, _) = extent[dst]
            ax.annotate("", xy=(x1, pos[dst][1]), xytext=(x0, pos[src][1]), zorder=1,
                        arrowprops=dict(arrowstyle="-|>", color="#444444", lw=1.0, shrinkA=0, shrinkB=0,
                                        mutation_scale=12))
    return fig_to_array(fig)
