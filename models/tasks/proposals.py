"""Classical region proposals in the spirit of selective search (Uijlings et al. 2013).

An over-segmentation (Felzenszwalb's graph-based method, scikit-image) is merged greedily: the
two most similar adjacent regions are joined, again and again, until one region is left. Every
region of that hierarchy (initial and merged) gives a box. Similarity is a weighted sum of

- colour (here: intensity; EM is grayscale): histogram intersection of 25-bin histograms;
- texture: intersection of histograms of Gaussian-derivative responses (8 orientations x 10
  bins), the paper's SIFT-like measure;
- size: ``1 - (size_i + size_j) / size_image``, so small regions merge first everywhere;
- fill: ``1 - (box_ij - size_i - size_j) / size_image``, so regions that fit together merge.

Several hierarchies (Felzenszwalb scales x similarity sets) diversify the proposals; boxes are
ranked as in the paper (position in the hierarchy times a random number), duplicates dropped.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from models.errors import InputError

COLOUR_BINS = 25
TEXTURE_BINS = 10
ORIENTATIONS = 8
SIMILARITIES = {"CTSF": (1, 1, 1, 1), "TSF": (0, 1, 1, 1), "CSF": (1, 0, 1, 1), "F": (0, 0, 0, 1)}


def _histograms(values: np.ndarray, labels: np.ndarray, n: int, bins: int, lo: float, hi: float):
    """Per-region histograms (n, bins) of ``values``, L1-normalised."""
    b = np.clip(((values - lo) / (hi - lo + 1e-12) * bins).astype(np.int64), 0, bins - 1)
    h = (
        np.bincount((labels * bins + b).ravel(), minlength=n * bins)
        .reshape(n, bins)
        .astype(np.float64)
    )
    return h / np.maximum(h.sum(1, keepdims=True), 1)


def region_features(image: np.ndarray, labels: np.ndarray):
    """Sizes, boxes (x1, y1, x2, y2), colour and texture histograms of each region."""
    n = int(labels.max()) + 1
    sizes = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    boxes = np.zeros((n, 4), np.float64)
    for k, sl in enumerate(ndimage.find_objects(labels + 1)):
        boxes[k] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    img = image.astype(np.float64)
    colour = _histograms(img, labels, n, COLOUR_BINS, 0.0, 255.0)
    gy = ndimage.gaussian_filter(img, 1.0, order=(1, 0))
    gx = ndimage.gaussian_filter(img, 1.0, order=(0, 1))
    tex = []
    for k in range(ORIENTATIONS):
        theta = 2 * np.pi * k / ORIENTATIONS
        d = np.maximum(np.cos(theta) * gx + np.sin(theta) * gy, 0)  # one-sided, as 8 directions
        tex.append(_histograms(d, labels, n, TEXTURE_BINS, 0.0, float(d.max()) + 1e-9))
    texture = np.concatenate(tex, 1) / ORIENTATIONS
    return sizes, boxes, colour, texture


def adjacency(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (i < j) of regions that touch (4-neighbourhood)."""
    pairs = [
        np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
        np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1),
    ]
    p = np.concatenate(pairs)
    p = p[p[:, 0] != p[:, 1]]
    p = np.sort(p, 1)
    return {(int(a), int(b)) for a, b in np.unique(p, axis=0)}


def hierarchical_grouping(
    image: np.ndarray, labels: np.ndarray, weights: Sequence[float] = (1, 1, 1, 1)
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy merging of the regions of ``labels``; returns every region's box and its
    position in the hierarchy (1 = the last merge, the whole image; larger = earlier)."""
    wc, wt, ws, wf = weights
    sizes, boxes, colour, texture = region_features(image, labels)
    size_im = float(labels.size)
    n0 = len(sizes)
    sizes, boxes = list(sizes), list(boxes)
    colour, texture = list(colour), list(texture)
    neighbours: dict[int, set[int]] = {i: set() for i in range(n0)}
    for a, b in adjacency(labels):
        neighbours[a].add(b)
        neighbours[b].add(a)

    def sim(i: int, j: int) -> float:
        s = 0.0
        if wc:
            s += wc * np.minimum(colour[i], colour[j]).sum()
        if wt:
            s += wt * np.minimum(texture[i], texture[j]).sum()
        if ws:
            s += ws * (1.0 - (sizes[i] + sizes[j]) / size_im)
        if wf:
            bi, bj = boxes[i], boxes[j]
            bb = (max(bi[2], bj[2]) - min(bi[0], bj[0])) * (max(bi[3], bj[3]) - min(bi[1], bj[1]))
            s += wf * (1.0 - (bb - sizes[i] - sizes[j]) / size_im)
        return s

    heap = [(-sim(a, b), a, b) for a in neighbours for b in neighbours[a] if a < b]
    heapq.heapify(heap)
    alive = set(range(n0))
    created = []  # order of creation of merged regions
    while heap:
        _, a, b = heapq.heappop(heap)
        if a not in alive or b not in alive:
            continue
        t = len(sizes)
        sa, sb = sizes[a], sizes[b]
        sizes.append(sa + sb)
        ba, bb = boxes[a], boxes[b]
        boxes.append(
            np.array([min(ba[0], bb[0]), min(ba[1], bb[1]), max(ba[2], bb[2]), max(ba[3], bb[3])])
        )
        colour.append((colour[a] * sa + colour[b] * sb) / (sa + sb))
        texture.append((texture[a] * sa + texture[b] * sb) / (sa + sb))
        nb = (neighbours.pop(a) | neighbours.pop(b)) - {a, b}
        alive -= {a, b}
        neighbours[t] = nb
        for c in nb:
            neighbours[c] -= {a, b}
            neighbours[c].add(t)
            heapq.heappush(heap, (-sim(t, c), min(t, c), max(t, c)))
        alive.add(t)
        created.append(t)
    # position: the last region created is 1, earlier merges larger, initial regions largest
    position = np.empty(len(sizes), np.float64)
    for rank, t in enumerate(reversed(created), start=1):
        position[t] = rank
    position[:n0] = len(created) + 1
    return np.asarray(boxes, np.float32), position


def selective_search(
    image: np.ndarray,
    scales: Sequence[float] = (100, 300),
    similarities: Sequence[str] = ("CTSF", "TSF"),
    sigma: float = 1.5,
    min_size: int = 30,
    seed: int = 0,
) -> torch.Tensor:
    """Ranked, de-duplicated proposal boxes (x1, y1, x2, y2; pixel edges) of a 2D image.

    The defaults smooth more (``sigma`` 1.5) and merge tiny segments (``min_size`` 30) compared
    with the paper's 0.8 / 10 for photographs: EM noise otherwise shatters the image into
    thousands of initial regions (about 12,000 boxes per 512 x 512 section, 20 s)."""
    from skimage.segmentation import felzenszwalb

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        raise InputError(
            "selective_search takes a grayscale (H, W) image; convert RGB to gray first"
        )
    if image.ndim != 2:
        raise InputError(f"selective_search takes a 2D image, got shape {image.shape}")
    if image.dtype != np.uint8:
        lo, hi = float(image.min()), float(image.max())
        image = ((image - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)
    for s in similarities:
        if s not in SIMILARITIES:
            raise InputError(f"similarity {s!r} is unknown; use some of {sorted(SIMILARITIES)}")
    rng = np.random.default_rng(seed)
    all_boxes, all_rank = [], []
    for k in scales:
        labels = felzenszwalb(image, scale=k, sigma=sigma, min_size=min_size).astype(np.int64)
        for s in similarities:
            boxes, position = hierarchical_grouping(image, labels, SIMILARITIES[s])
            all_boxes.append(boxes)
            all_rank.append(position * rng.random(len(position)))
    boxes = np.concatenate(all_boxes)
    order = np.argsort(np.concatenate(all_rank), kind="stable")
    boxes = boxes[order]
    _, first = np.unique(boxes, axis=0, return_index=True)
    return torch.from_numpy(boxes[np.sort(first)])
