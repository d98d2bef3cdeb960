"""Shared fixtures: real data location, a small in-process Dask client."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path} (../shared/data is absent on this machine)")
    return path


@pytest.fixture(scope="session")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def assert_one_step_learns(model, terms: dict) -> None:
    """One optimiser step on ``terms`` (e.g. the losses of an image without objects) moves the
    weights and leaves them finite: such images train, they are not only accepted."""
    import torch

    assert terms and all(torch.isfinite(v) for v in terms.values()), terms
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=1e-2)
    opt.zero_grad()
    sum(terms.values()).backward()
    opt.step()
    moved = sum(int(not torch.equal(b, p.detach())) for b, p in zip(before, params, strict=True))
    assert moved > 0, "no weight changed"
    assert all(torch.isfinite(p).all() for p in params)
