import pytest
import torch

from siteaug.device import pin_single_gpu, resolve_device


@pytest.mark.parametrize("visible, expected", [(None, "0"), ("3,5", "3"), ("2", "2"), (" 4 , 1", "4")])
def test_pin_single_gpu(visible, expected):
    environ = {"OTHER": "x"} if visible is None else {"OTHER": "x", "CUDA_VISIBLE_DEVICES": visible}
    assert pin_single_gpu(environ) == expected
    assert environ == {"OTHER": "x", "CUDA_VISIBLE_DEVICES": expected}


def test_resolve_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device(name)
