"""Welding block pieces of a mesh: seam vertices become one, collapsed triangles go."""

import numpy as np
import zmesh

from pipeline.export.weld import weld


def _ball_pieces():
    """A ball meshed whole, and meshed as two blocks (x < 16, x >= 16) that share their seam."""
    z, y, x = np.mgrid[:32, :32, :32]
    ball = (((z - 15.5) ** 2 + (y - 15.5) ** 2 + (x - 15.5) ** 2) < 12**2).astype(np.uint32)
    whole = _mesh(ball, 0)
    left, right = _mesh(ball[:, :, :17], 0), _mesh(ball[:, :, 16:], 16)
    return whole, left, right


def _mesh(labels: np.ndarray, x0: int) -> zmesh.Mesh:
    mesher = zmesh.Mesher((1, 1, 1))
    mesher.mesh(np.asfortranarray(labels.transpose(2, 1, 0)), close=False)
    m = mesher.get(1, normals=False, voxel_centered=True)
    m.vertices = m.vertices + np.array([x0, 0, 0], np.float32)
    return m


def test_two_blocks_weld_into_the_whole_mesh():
    whole, left, right = _ball_pieces()
    rng = np.random.default_rng(0)
    noisy = right.vertices + rng.uniform(-1e-5, 1e-5, right.vertices.shape)  # float rounding
    vertices, faces = weld([(left.vertices, left.faces), (noisy, right.faces)])
    assert len(vertices) == len(whole.vertices)
    assert len(faces) == len(whole.faces)
    got = {tuple(sorted(map(tuple, np.round(vertices[f], 3)))) for f in faces}
    want = {tuple(sorted(map(tuple, np.round(whole.vertices[f], 3)))) for f in whole.faces}
    assert got == want
    unjoined = len(left.vertices) + len(right.vertices)
    assert unjoined > len(vertices)  # the seam was counted twice before


def test_collapsed_triangles_and_their_lone_vertices_are_dropped():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5], [5, 5, 5.0000001]], np.float32)
    f = np.array([[0, 1, 2], [3, 4, 0]], np.uint32)  # the second collapses: 3 and 4 coincide
    vertices, faces = weld([(v, f)])
    assert faces.tolist() == [[0, 1, 2]]
    assert vertices.tolist() == v[:3].tolist()
