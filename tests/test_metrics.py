import torch

from alexnet.metrics import TopKMeter, topk_correct


def test_topk_on_hand_made_logits():
    logits = torch.tensor([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0],    # target 1: top-1
                           [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],    # target 4: rank 4 -> top-5 only
                           [0.5, 0.4, 0.3, 0.2, 0.1, 0.0]])   # target 5: rank 5 -> neither
    c = topk_correct(logits, torch.tensor([1, 4, 5]))
    assert c[1].tolist() == [True, False, False]
    assert c[5].tolist() == [True, True, False]


def test_ties_count_against_the_prediction():
    logits = torch.zeros(2, 6)  # constant output: all tied
    c = topk_correct(logits, torch.tensor([0, 3]))
    assert c[1].tolist() == [False, False] and c[5].tolist() == [False, False]
    logits = torch.tensor([[1.0, 1.0, 0.0]])   # target tied with one other class at the top
    c = topk_correct(logits, torch.tensor([0]), ks=(1, 2))
    assert c[1].tolist() == [False] and c[2].tolist() == [True]


def test_fewer_than_five_classes():
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    c = topk_correct(logits, torch.tensor([0]))
    assert c[1].tolist() == [False] and c[5].tolist() == [True]  # top-5 of 3 classes = top-3


def test_meter_accumulates():
    m = TopKMeter(num_classes=3)
    m.update(torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0]]), torch.tensor([0, 2]), loss=1.0)
    m.update(torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([2]), loss=4.0)
    assert m.n == 3 and abs(m.loss - 2.0) < 1e-12
    assert abs(m.error(1) - 1 / 3) < 1e-12 and m.error(5) == 0.0
    assert m.per_class_accuracy() == [1.0, None, 0.5]
    m2 = TopKMeter()
    m2.load_state(m.state() * 2)
    assert m2.n == 6 and m2.error(1) == m.error(1)
