"""Region adjacency of a label block in one compiled pass (numba): the voxel count of every
label in the owned corner and, for every pair of labels that touch across a face, the number of
faces, the sum and a histogram of the boundary value on them (the larger value of the two
voxels). Labels and pairs are counted in hash tables (``hashmap``), with the last label and pair
of each direction remembered, since neighbouring voxels mostly repeat them; this replaces three
boolean passes per axis and two np.unique sorts of every contact.

Two kinds of values, one kernel: a boundary map (the value of a face is the larger boundary
value of its two voxels) or affinities (the value of the face between x and x + e_d is
``1 - affinity`` of that face, read from the nearest-neighbour channel of axis d at x or at
x + e_d, as the channel's offset says: see :func:`face_channels`). With affinities, count, sum
and histogram of an edge are exactly the affinity statistics across the contact.

The scan stops before a table could overflow and returns where it stopped; the Python wrapper
grows the tables and resumes, so no array is reallocated inside the loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from pipeline.seg.hashmap import grow, new_table, slot_of


@numba.njit(cache=True, nogil=True, inline="always")
def _node(lab, keys, used, index, node_lab, n_nodes):
    """Index of label ``lab`` in the node table (inserted when new). Returns (index, count)."""
    s = slot_of(keys, used, np.uint64(lab))
    if used[s]:
        return index[s], n_nodes
    keys[s] = np.uint64(lab)
    used[s] = 1
    index[s] = n_nodes
    node_lab[n_nodes] = lab
    return n_nodes, n_nodes + 1


@numba.njit(cache=True, nogil=True)
def _room(n_nodes, n_edges, row, node_slots, edge_slots, edge_rows):
    """Whether one more row of ``row`` voxels fits: each voxel adds at most 4 labels and 3
    pairs, and the hash tables stay at most half full."""
    return n_nodes + 4 * row <= node_slots // 2 and n_edges + 3 * row <= min(
        edge_slots // 2, edge_rows
    )


@numba.njit(cache=True, nogil=True)
def _scan(
    labels,
    values,
    affs,
    chan,
    shift,
    owned,
    nbins,
    start,
    nkeys,
    nused,
    nindex,
    node_lab,
    sizes,
    ekeys,
    eused,
    eindex,
    eu,
    ev,
    count,
    total,
    hist,
    n_nodes,
    n_edges,
):
    nz, ny, nx = labels.shape
    oz, oy, ox = owned
    for i in range(start, oz * oy):
        z = i // oy
        y = i - z * oy
        if not _room(n_nodes, n_edges, ox, nkeys.size, ekeys.size, eu.size):
            return i, n_nodes, n_edges  # a row might overflow a table: grow them, resume here
        last = labels[z, y, 0]
        ia, n_nodes = _node(last, nkeys, nused, nindex, node_lab, n_nodes)
        pair_key = np.uint64(0xFFFFFFFFFFFFFFFF)
        pair_e = -1
        for x in range(ox):
            a = labels[z, y, x]
            if a != last:
                last = a
                ia, n_nodes = _node(a, nkeys, nused, nindex, node_lab, n_nodes)
            sizes[ia] += 1
            va = values[z, y, x]
            for d in range(3):
                if d == 0:
                    if x + 1 >= nx:
                        continue
                    b = labels[z, y, x + 1]
                    if b == a:
                        continue
                    vb = values[z, y, x + 1]
                elif d == 1:
                    if y + 1 >= ny:
                        continue
                    b = labels[z, y + 1, x]
                    if b == a:
                        continue
                    vb = values[z, y + 1, x]
                else:
                    if z + 1 >= nz:
                        continue
                    b = labels[z + 1, y, x]
                    if b == a:
                        continue
                    vb = values[z + 1, y, x]
                ib, n_nodes = _node(b, nkeys, nused, nindex, node_lab, n_nodes)
                if a < b:
                    key = (np.uint64(ia) << np.uint64(32)) | np.uint64(ib)
                else:
                    key = (np.uint64(ib) << np.uint64(32)) | np.uint64(ia)
                if key == pair_key:
                    e = pair_e
                else:
                    s = slot_of(ekeys, eused, key)
                    if eused[s]:
                        e = eindex[s]
                    else:
                        e = n_edges
                        n_edges += 1
                        ekeys[s] = key
                        eused[s] = 1
                        eindex[s] = e
                        if a < b:
                            eu[e] = ia
                            ev[e] = ib
                        else:
                            eu[e] = ib
                            ev[e] = ia
                    pair_key = key
                    pair_e = e
                if affs is None:  # a boundary map: the larger value of the two voxels
                    val = np.float64(max(va, vb))
                else:  # affinities: 1 - the affinity of this face (numba prunes the other mode)
                    sh = shift[d]
                    if d == 0:
                        val = 1.0 - np.float64(affs[chan[0], z, y, x + sh])
                    elif d == 1:
                        val = 1.0 - np.float64(affs[chan[1], z, y + sh, x])
                    else:
                        val = 1.0 - np.float64(affs[chan[2], z + sh, y, x])
                count[e] += 1
                total[e] += val
                if nbins > 0:
                    k = np.int64(val * nbins)
                    hist[e, min(max(k, 0), nbins - 1)] += 1
    return oz * oy, n_nodes, n_edges


def _grown(a: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


def face_channels(offsets: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    """For the axes z, y, x: (channel, shift) of the nearest-neighbour affinity of the face
    between x and x + e_d. Channel c at voxel p is the affinity between p and p + offsets[c]
    (``models.volumetric.targets.affinities``), so an offset -e_d holds that face at x + e_d
    (shift 1) and +e_d at x (shift 0)."""
    out = []
    for d in range(3):
        found = None
        for c, o in enumerate(offsets):
            o = [int(v) for v in o]
            if sum(abs(v) for v in o) == 1 and abs(o[d]) == 1:
                found = (c, 1 if o[d] < 0 else 0)
                break
        if found is None:
            raise ValueError(
                f"offsets {list(offsets)} have no nearest-neighbour offset on axis {d}"
            )
        out.append(found)
    return tuple(out)


def _kernel_values(labels, values, faces):
    """(boundary map, affinities or None, chan, shift), chan and shift in the kernel's axis
    order x, y, z. Boundary maps pass None for the affinities: numba compiles the kernel once
    per mode and prunes the affinity branches for boundary maps, so they pay nothing for them
    (affinities pass an unused boundary map)."""
    vals = np.asarray(values, np.float32)
    if faces is None:
        if vals.shape != labels.shape:
            raise ValueError(f"boundary values {vals.shape} do not match labels {labels.shape}")
        return vals, None, None, None
    if vals.ndim != 4 or vals.shape[1:] != labels.shape:
        raise ValueError(f"affinities {vals.shape} do not match labels {labels.shape}")
    chan = np.array([faces[2][0], faces[1][0], faces[0][0]], np.int64)
    shift = np.array([faces[2][1], faces[1][1], faces[0][1]], np.int64)
    if chan.min() < 0 or chan.max() >= vals.shape[0]:
        raise ValueError(f"face channels {faces} outside the {vals.shape[0]} affinity channels")
    return vals[0], vals, chan, shift  # a boundary map the kernel reads but does not use


def block_contacts(
    labels: np.ndarray,
    values: np.ndarray,
    nbins: int = 32,
    owned: Sequence[int] | None = None,
    faces: Sequence[tuple[int, int]] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Node and edge statistics of a 3D label array (see the module docstring).

    ``values``: a boundary map of the labels' shape (``faces`` None), or affinities (C, *shape)
    in [0, 1] with ``faces`` = (channel, shift) per axis z, y, x (:func:`face_channels`).
    ``owned``: the corner ``[0, owned)`` whose voxels this call counts; pairs (x, x + e_d) are
    taken for x in it, x + e_d possibly one voxel beyond. Returns (nodes, edges): nodes ``id``
    (the labels present in the owned corner, sorted) and ``size``; edges ``u < v`` (label
    values), ``count``, ``sum`` (float64) and ``hist`` ((E, nbins) uint32 of the values binned on
    [0, 1], when ``nbins`` > 0), sorted by (u, v). Label 0 is a label like any other."""
    if labels.ndim != 3:
        raise ValueError(f"labels must be 3D, got shape {labels.shape}")
    owned = tuple(labels.shape) if owned is None else tuple(int(o) for o in owned)
    owned = tuple(min(o, s) for o, s in zip(owned, labels.shape, strict=True))
    vals, affs, chan, shift = _kernel_values(labels, values, faces)
    row = owned[2]
    ncap = ecap = 1024
    while ncap // 2 < 4 * row + 4:
        ncap *= 2
    while ecap // 2 < 3 * row + 3:
        ecap *= 2
    nkeys, nused, nindex = new_table(ncap)
    node_lab = np.zeros(ncap // 2, labels.dtype)
    sizes = np.zeros(ncap // 2, np.int64)
    ekeys, eused, eindex = new_table(ecap)
    eu = np.zeros(ecap // 2, np.int64)
    ev = np.zeros(ecap // 2, np.int64)
    count = np.zeros(ecap // 2, np.int64)
    total = np.zeros(ecap // 2, np.float64)
    hist = np.zeros((ecap // 2, max(nbins, 1)), np.uint32)
    pos, n_nodes, n_edges = 0, 0, 0
    while True:
        pos, n_nodes, n_edges = _scan(
            labels, vals, affs, chan, shift, owned, int(nbins), pos, nkeys, nused, nindex, node_lab, sizes,
            ekeys, eused, eindex, eu, ev, count, total, hist, n_nodes, n_edges,
        )  # fmt: skip
        if pos >= owned[0] * owned[1]:
            break
        if n_nodes + 4 * row > nkeys.size // 2:
            nkeys, nused, nindex = grow(nkeys, nused, nindex)
            node_lab, sizes = _grown(node_lab, nkeys.size // 2), _grown(sizes, nkeys.size // 2)
        if n_edges + 3 * row > ekeys.size // 2:
            ekeys, eused, eindex = grow(ekeys, eused, eindex)
            rows = ekeys.size // 2
            eu, ev = _grown(eu, rows), _grown(ev, rows)
            count, total, hist = _grown(count, rows), _grown(total, rows), _grown(hist, rows)
    node_lab, sizes = node_lab[:n_nodes], sizes[:n_nodes]
    present = sizes > 0
    order = np.argsort(node_lab[present], kind="stable")
    nodes = {"id": node_lab[present][order], "size": sizes[present][order]}
    u, v = node_lab[eu[:n_edges]], node_lab[ev[:n_edges]]
    order = np.lexsort((v, u))
    edges = {
        "u": u[order],
        "v": v[order],
        "count": count[:n_edges][order],
        "sum": total[:n_edges][order],
    }
    if nbins:
        edges["hist"] = hist[:n_edges][order]
    return nodes, edges
