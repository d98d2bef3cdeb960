"""``petaseg proofread``: the edit log from the command line, on the segment stage's own tables
(``init`` finds the graph and the fragments from the lookup table's location)."""

from __future__ import annotations

import json

import numpy as np

from pipeline.lut import load_lut
from tests.support.export_data import neurons_and_fragments, write_zarr
from workflows.cli.app import main


def test_cli_init_merge_split_undo_redo_log_export(tmp_path, client, capsys):
    from pipeline.io.tables import lut_root
    from pipeline.stages.graph import run_graph
    from pipeline.stages.segment import run_segment

    neurons, fragments, boundary = neurons_and_fragments(seed=2)
    frag_url = write_zarr(tmp_path / "in.zarr" / "fragments", fragments, chunks=(16, 24, 24))
    bnd_url = write_zarr(tmp_path / "in.zarr" / "boundary", boundary, chunks=(16, 24, 24))
    root = str(tmp_path / "tables")
    run_graph(frag_url, bnd_url, root, block_shape=(16, 24, 24), client=client, progress=False)
    # merge scores: the mean boundary of each edge (a one-step stand-in for agglomeration)
    from pipeline.io.tables import block_table, iter_block_tables, read_json, write_table

    n_blocks = read_json(f"{root}/graph/meta.json")["num_blocks"]
    for b, t in iter_block_tables(root, "graph/edges", n_blocks, ["u", "v", "count", "sum"]):
        score = t["sum"] / t["count"]
        write_table(
            block_table(root, "agglomeration/scores", b), {"u": t["u"], "v": t["v"], "score": score}
        )
    run_segment(root, [0.95])  # everything joins: one segment holding all neurons
    lut = lut_root(root, 0.95)
    log = str(tmp_path / "edits.sqlite")

    assert main(["proofread", "init", log, "--lut", lut]) == 0
    out = capsys.readouterr().out
    assert "version 0" in out and "1 segments" in out and frag_url in out
    seg = int(load_lut(lut).segment[0])

    def centre(neuron):
        z, y, x = np.argwhere(neurons == neuron).mean(0).astype(int)
        while neurons[z, y, x] != neuron:  # fall back to any voxel of a non-convex neuron
            z, y, x = np.argwhere(neurons == neuron)[0]
        return f"{(z + 0.5) * 10},{(y + 0.5) * 10},{(x + 0.5) * 10}"

    args = ["proofread", "split", log, str(seg), "--source", centre(1), "--sink", centre(2)]
    assert main([*args, "--author", "dee", "--reason", "two cells", "--json"]) == 0
    split = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert split["op"] == "split" and split["version"] == 1
    new = split["segments"][1]
    assert main(["proofread", "merge", log, str(seg), str(new)]) == 0
    assert main(["proofread", "undo", log]) == 0
    assert main(["proofread", "redo", log]) == 0
    assert main(["proofread", "undo", log]) == 0
    capsys.readouterr()
    assert main(["proofread", "log", log, "--json"]) == 0
    edits = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [e["op"] for e in edits] == ["split", "merge", "undo", "redo", "undo"]
    assert edits[0]["author"] == "dee" and edits[0]["reason"] == "two cells"
    # the head (version 5) is the state after the split; export it and version 0
    for version, n_segments in ((5, 2), (0, 1)):
        out_dir = str(tmp_path / f"v{version}")
        cmd = ["proofread", "export", log, "--output", out_dir, "--version", str(version), "--json"]
        assert main(cmd) == 0
        info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert info["segments"] == n_segments
        assert len(np.unique(load_lut(out_dir).segment)) == n_segments
    # a version relabelled into a segmentation (the command starts its own cluster)
    seg_url = str(tmp_path / "out.zarr" / "proofread")
    cmd = ["proofread", "export", log, "--output", str(tmp_path / "v5r"), "--version", "5"]
    assert main([*cmd, "--relabel", seg_url, "--cluster", "threads:1", "--json"]) == 0
    from pipeline.io.volume import open_volume

    relabelled = open_volume(seg_url).read()
    assert len(np.unique(relabelled[fragments > 0])) == 2
    capsys.readouterr()
    # user errors exit 2 with the input named
    assert main(["proofread", "merge", log, str(seg), "999999999"]) == 2
    assert "unknown segment id 999999999" in capsys.readouterr().err
    assert main(["proofread", "split", log, str(seg), "--source", "1,2", "--sink", "1,2,3"]) == 2
    assert "expected Z,Y,X" in capsys.readouterr().err
