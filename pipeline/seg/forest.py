"""A disjoint-set forest inside compiled kernels: an int array of parent pointers, where a
node that is its own parent is the root of its set. Shared by the numba kernels that join
labels (the watershed's seed plateaus, small fragments into their neighbours); big graphs
outside kernels use ``unionfind``."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def find_root(parent, node):
    """The root of ``node``'s set, halving the path on the way (every node visited then points
    to its grandparent)."""
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node
