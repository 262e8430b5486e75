"""Notebook 00 (KL and ELBO): the full-covariance KL's test tells right from wrong.

Each planted body of ``kl_full`` is named for the mistake it makes; the test cell, hidden tests
included, must fail it, and pass the correct alternatives.
"""
from __future__ import annotations

import pytest

from autograder.solutions import load_solution
from planted import assert_graded

AID = "00_kl_elbo"
KL_FULL = "def kl_full(m1, S1, m2, S2):\n    d = m1.shape[-1]\n    diff = (m2 - m1).unsqueeze(-1)\n{}\n"
KL_FULLS = {
    "through a Cholesky factor": (True, """
    L = torch.linalg.cholesky(S2)
    trace = torch.cholesky_solve(S1, L).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = torch.cholesky_solve(diff, L).mul(diff).sum((-2, -1))
    logdet = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1) - torch.linalg.slogdet(S1)[1]
    return 0.5 * (trace + maha - d + logdet)"""),
    "through explicit inverses": (True, """
    inv = torch.linalg.inv(S2)
    return 0.5 * ((inv @ S1).diagonal(dim1=-2, dim2=-1).sum(-1) + (diff.transpose(-1, -2) @ inv @ diff).reshape(-1)
                  - d + torch.logdet(S2) - torch.logdet(S1))"""),
    "trace of S1^-1 S2 (the arguments swapped)": (False, """
    trace = torch.linalg.solve(S1, S2).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])"""),
    "log-determinant ratio upside down": (False, """
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S1)[1] - torch.linalg.slogdet(S2)[1])"""),
    "Mahalanobis term with the first covariance": (False, """
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S1, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])"""),
    "forgets the -d": (False, """
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])"""),
    "diagonals only": (False, """
    v1, v2 = S1.diagonal(dim1=-2, dim2=-1), S2.diagonal(dim1=-2, dim2=-1)
    return 0.5 * (v1 / v2 + diff.squeeze(-1) ** 2 / v2 - 1 + v2.log() - v1.log()).sum(-1)"""),
}


@pytest.fixture(scope="module")
def functions():
    return load_solution(AID, until="kl_full")


@pytest.mark.parametrize("name", KL_FULLS)
def test_kl_full_cell(functions, name):
    right, body = KL_FULLS[name]
    assert_graded(AID, functions, "test_kl_full", KL_FULL.format(body), right)
