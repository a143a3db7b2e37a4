"""The tie rules of the contract, on hand-made scores."""

import torch

from fastav_export.contract.selection import select_fine, select_global_topk


def test_global_topk_keeps_the_largest_and_breaks_ties_by_lower_position():
    importance = torch.tensor([[9.0, 1.0, 5.0, 5.0, 5.0, 0.0, 7.0]])
    candidates = torch.tensor([False, True, True, True, True, True, False])
    kept = select_global_topk(importance, candidates, budget=2)
    assert kept.tolist() == [[0, 2, 3, 6]]  # 5.0 at positions 2, 3, 4: the lower two win
    assert select_global_topk(importance, candidates, budget=0).tolist() == [[0, 6]]
    assert select_global_topk(importance, candidates, budget=50).tolist() == [list(range(7))]


def test_all_equal_scores_keep_the_first_candidates():
    kept = select_global_topk(torch.ones(2, 6), torch.tensor([True] * 5 + [False]), budget=3)
    assert kept.tolist() == [[0, 1, 2, 5]] * 2


def test_fine_drop_removes_the_lowest_and_the_higher_position_first():
    scores = torch.tensor([[0.1, 0.3, 0.2, 0.2, 0.9, 0.0]])
    is_candidate = torch.tensor([[False, True, True, True, True, False]])
    assert select_fine(scores, is_candidate, 1).tolist() == [[0, 1, 2, 4, 5]]  # tie at 0.2: drop position 3
    assert select_fine(scores, is_candidate, 2).tolist() == [[0, 1, 4, 5]]
    assert select_fine(scores, is_candidate, 0).tolist() == [[0, 1, 2, 3, 4, 5]]
    # Protected tokens survive even with the lowest scores.
    assert 5 in select_fine(scores, is_candidate, 4)[0].tolist()


def test_rows_select_independently():
    scores = torch.tensor([[0.5, 0.1, 0.9, 0.3], [0.5, 0.9, 0.1, 0.3]])
    is_candidate = torch.tensor([[False, True, True, False]] * 2)
    assert select_fine(scores, is_candidate, 1).tolist() == [[0, 2, 3], [0, 1, 3]]
