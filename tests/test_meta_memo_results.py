"""MetaMemo answers tuples of fresh tensors and views of private bases as the call itself would."""

from __future__ import annotations

import torch
from torch import nn

from reslint.trace.meta_memo import MemoizedCalls, MetaMemo


def _layout(value):
    if value is None:
        return None
    return (tuple(value.shape), value.stride(), value.dtype, value.storage_offset(), value._is_view(), value.untyped_storage().nbytes())


def test_attention_layers_of_one_shape_run_once_and_answer_the_same_layouts():
    with torch.device("meta"):
        layers = [nn.MultiheadAttention(16, 2, batch_first=True) for _ in range(3)]
    x = torch.empty(2, 5, 16, device="meta")
    with torch.no_grad():
        plain = [layer(x, x, x) for layer in layers]
    memo = MetaMemo()
    with torch.no_grad(), MemoizedCalls(memo):
        answered = [layer(x, x, x) for layer in layers]
    assert memo.hits >= 2
    for ran, got in zip(plain, answered):
        assert [_layout(t) for t in got] == [_layout(t) for t in ran]
    assert answered[1][0].untyped_storage()._cdata != answered[2][0].untyped_storage()._cdata


def test_a_view_of_an_operand_is_never_answered_from_the_memo():
    x = torch.empty(4, 6, device="meta")
    memo = MetaMemo()
    with torch.no_grad(), MemoizedCalls(memo):
        first, second = torch.transpose(x, 0, 1), torch.transpose(x, 0, 1)
    assert memo.hits == 0
    assert second._base is x and first._base is x


def test_tuples_whose_items_share_storage_are_not_memoized():
    x = torch.empty(4, 6, device="meta")
    memo = MetaMemo()
    with torch.no_grad(), MemoizedCalls(memo):
        torch.split(x * 2, 2)
        parts = torch.split(x * 2, 2)
    assert parts[0].untyped_storage()._cdata == parts[1].untyped_storage()._cdata
