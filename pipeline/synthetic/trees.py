"""Neurite skeletons for the synthetic volumes: smooth, branching random walks that avoid each
other, rasterised as thick seed tubes. Growing labels from these seeds (``synthetic.py``) gives
elongated objects that tile the volume, like densely labelled neuropil.

All walking happens in physical units of one xy voxel, so z is stretched by the anisotropy: a
neurite of a given real length spans fewer sections when sections are thick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

Shape = tuple[int, int, int]


@dataclass
class TreeParams:
    """How neurites are drawn. Lengths are in xy voxels."""

    radius: float = 6.0  # mean object radius; sets how many neurites fill the volume
    fill: float = 1.0  # skeleton length per volume, relative to one tube of ``radius`` per cell
    step: float = 0.7  # walk step; below one voxel so the rasterised centre line is connected
    turn: float = 0.06  # how fast the walking direction bends (radians per step, roughly)
    persistence: float = 0.95  # how long a bend keeps its sense (0: jagged, 1: circles)
    branch_prob: float = 0.004  # chance per step that a side branch starts
    gap: float = 2.0  # clearance kept between seed tubes, so neighbours do not touch
    min_length: float = 4.0  # shortest neurite kept, in radii (short stubs make round objects)
    seed_radius: float = 0.4  # seed tube radius relative to ``radius``: thick seeds, big objects
    radius_spread: float = 0.7  # log-normal spread of seed radii: varied calibres
    alignment: float = 0.0  # 0: neurites run every way; 1: all start along one random axis
    max_trees: int = 5000


Vec = tuple[float, float, float]


def _unit(v: Vec) -> Vec:
    n = max(math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), 1e-12)
    return v[0] / n, v[1] / n, v[2] / n


def _mix(a: Vec, b: Vec, wa: float, wb: float) -> Vec:
    return wa * a[0] + wb * b[0], wa * a[1] + wb * b[1], wa * a[2] + wb * b[2]


def _cross(a: Vec, b: Vec) -> Vec:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


@dataclass
class Walker:
    """One growing tip; plain-float vectors because the walk is a long scalar Python loop."""

    pos: Vec
    direction: Vec
    radius: float
    bend: Vec = (0.0, 0.0, 0.0)


@lru_cache(maxsize=64)
def ball_offsets(radius: float, anisotropy: float) -> np.ndarray:
    """Voxel offsets of an ellipsoid of physical ``radius`` (z squeezed by the anisotropy), always
    including the 6-neighbours so a rasterised line stays 6-connected."""
    rz = max(int(np.floor(radius / anisotropy)), 1)
    rxy = max(int(np.floor(radius)), 1)
    zz, yy, xx = np.mgrid[-rz : rz + 1, -rxy : rxy + 1, -rxy : rxy + 1]
    inside = (zz * anisotropy) ** 2 + yy**2 + xx**2 <= max(radius, 1.0) ** 2
    inside |= np.abs(zz) + np.abs(yy) + np.abs(xx) <= 1
    return np.stack([zz[inside], yy[inside], xx[inside]], axis=1)


def _paint(
    target: np.ndarray, points: np.ndarray, radius: float, value: int, anisotropy: float
) -> None:
    """Write ``value`` into free (zero) voxels of ``target`` within ``radius`` of the points, so
    earlier neurites keep their seeds where tubes come close."""
    if len(points) == 0:
        return
    shape = np.array(target.shape)
    centres = np.round(points / (anisotropy, 1.0, 1.0)).astype(np.int64)
    centres = np.clip(centres, -1, shape)  # the walk strays a little outside; keep it near
    flat = np.unique(np.ravel_multi_index((centres + 1).T, tuple(shape + 2)))
    centres = np.stack(np.unravel_index(flat, tuple(shape + 2)), axis=1) - 1
    vox = (centres[:, None, :] + ball_offsets(round(radius, 1), anisotropy)[None]).reshape(-1, 3)
    keep = np.all((vox >= 0) & (vox < shape), axis=1)
    idx = np.ravel_multi_index(vox[keep].T, target.shape)
    view = target.reshape(-1)
    view[idx[view[idx] == 0]] = value


class TreeGrower:
    """Grows neurites one after another into a seed volume; each avoids those already drawn."""

    def __init__(
        self, shape: Shape, anisotropy: float, params: TreeParams, rng: np.random.Generator
    ):
        self.shape = shape
        self.anisotropy = anisotropy
        self.p = params
        self.rng = rng
        self.extent = (shape[0] * anisotropy, float(shape[1]), float(shape[2]))
        self.seeds = np.zeros(shape, dtype=np.uint32)
        self.clearance = np.zeros(shape, dtype=np.uint32)
        self._normals: list[float] = []
        self.main_axis = self._random_unit()

    def _normal3(self) -> Vec:
        """Three standard normals, drawn from the generator in batches (per-call draws are slow)."""
        if len(self._normals) < 3:
            self._normals = self.rng.standard_normal(3 * 1024).tolist()
        n = self._normals
        return n.pop(), n.pop(), n.pop()

    def _random_unit(self) -> Vec:
        return _unit(self._normal3())

    def _blocked(self, pos: Vec) -> bool:
        z = round(pos[0] / self.anisotropy)
        y, x = round(pos[1]), round(pos[2])
        sz, sy, sx = self.shape
        if 0 <= z < sz and 0 <= y < sy and 0 <= x < sx:
            return bool(self.clearance[z, y, x])
        return False

    def _outside(self, pos: Vec) -> bool:
        margin = 2.0
        return any(c < -margin or c > e + margin for c, e in zip(pos, self.extent, strict=True))

    def _turn(self, w: Walker) -> Vec:
        """Smoothly bending direction: the bend is itself a slowly varying random vector."""
        keep = self.p.persistence
        w.bend = _mix(w.bend, self._normal3(), keep, math.sqrt(1 - keep * keep))
        return _unit(_mix(w.direction, w.bend, 1.0, self.p.turn))

    def _branch(self, w: Walker) -> Walker:
        side = _unit(_cross(w.direction, self._random_unit()))
        angle = self.rng.uniform(0.5, 1.2)
        direction = _unit(_mix(w.direction, side, math.cos(angle), math.sin(angle)))
        radius = max(w.radius * self.rng.uniform(0.5, 0.9), 1.0)
        return Walker(w.pos, direction, radius)

    def _walk(self, w: Walker, out: list[tuple[np.ndarray, float]], budget: int) -> int:
        """Walk until leaving the volume or meeting another neurite; returns the steps taken."""
        points: list[Vec] = []
        pending: list[Walker] = []
        step = self.p.step
        while len(points) < budget:
            for _ in range(4):  # a few tries to steer around an obstacle
                direction = self._turn(w)
                nxt = _mix(w.pos, direction, 1.0, step)
                if not self._blocked(nxt):
                    break
                w.bend = _mix(self._normal3(), w.bend, 3.0, 0.0)
            else:
                break
            w.pos, w.direction = nxt, direction
            if self._outside(nxt):
                break
            points.append(nxt)
            if self.rng.random() < self.p.branch_prob:
                pending.append(self._branch(w))
        out.append((np.array(points, dtype=float).reshape(-1, 3), w.radius))
        steps = len(points)
        for child in pending:
            steps += self._walk(child, out, budget - steps)
        return steps

    def _start_radius(self) -> float:
        p = self.p
        radius = self.rng.lognormal(math.log(p.radius * p.seed_radius), p.radius_spread)
        return float(min(max(radius, 1.0), 2.0 * p.radius))

    def _start_direction(self) -> Vec:
        sense = 1.0 if self.rng.random() < 0.5 else -1.0
        a = self.p.alignment
        return _unit(_mix(self.main_axis, self._random_unit(), a * sense, 1.0 - a))

    def grow_tree(self, label: int) -> float:
        """Start a neurite at a free point and walk both ways; returns its skeleton length, or 0
        when it was too short to keep (short stubs would make round objects)."""
        u = self.rng.uniform(0.0, 1.0, 3)
        start: Vec = (u[0] * self.extent[0], u[1] * self.extent[1], u[2] * self.extent[2])
        if self._blocked(start):
            return 0.0
        radius, direction = self._start_radius(), self._start_direction()
        segments: list[tuple[np.ndarray, float]] = [(np.array([start]), radius)]
        budget = int(4 * sum(self.extent) / self.p.step)
        for sense in (1.0, -1.0):
            walker = Walker(start, _mix(direction, direction, sense, 0.0), radius)
            self._walk(walker, segments, budget)
        length = sum(len(points) * self.p.step for points, _ in segments)
        if length < min(self.p.min_length * self.p.radius, 0.25 * sum(self.extent)):
            return 0.0
        for points, r in segments:
            _paint(self.seeds, points, r, label, self.anisotropy)
            _paint(self.clearance, points, r + self.p.gap, label, self.anisotropy)
        return length

    def grow(self) -> np.ndarray:
        """Add neurites until their total length fills the volume at the requested density (or
        no free starting point turns up any more)."""
        volume = self.extent[0] * self.extent[1] * self.extent[2]
        target = self.p.fill * volume / (math.pi * self.p.radius**2)
        total, label, misses = 0.0, 0, 0
        while total < target and label < self.p.max_trees and misses < 100:
            length = self.grow_tree(label + 1)
            misses = misses + 1 if length == 0.0 else 0
            if length:
                label += 1
                total += length
        if label == 0:  # a volume too small for any neurite: one object fills it
            self.seeds[...] = 1
        return self.seeds


def neurite_seeds(
    shape: Shape, anisotropy: float, params: TreeParams, rng: np.random.Generator
) -> np.ndarray:
    """Seed volume (uint32): each neurite's thick skeleton carries its own id, the rest is 0."""
    return TreeGrower(shape, anisotropy, params, rng).grow()
