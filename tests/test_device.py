"""GPU slot allocation, exercised on CPU with fake device lists and real file locks."""
import logging
import multiprocessing
import os
import time

import pytest
import torch

from siteaug.runtime.device import candidate_devices, gpu_slot, resolve_device


def test_scheduler_assignment_is_respected(tmp_path):
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "3,5"}
    with gpu_slot([0, 1], tmp_path, environ=env, torch_has_gpu=True) as card:
        assert card == "3" and env["CUDA_VISIBLE_DEVICES"] == "3"
    assert not list(tmp_path.iterdir())  # no locks taken: the scheduler owns the card


def test_candidates_come_from_visible_devices_then_config():
    assert candidate_devices([0, 1], {"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert candidate_devices([0, 1], {}) == ["0", "1"]
    assert candidate_devices(["a"], {"CUDA_VISIBLE_DEVICES": ""}) == []


def test_two_jobs_get_different_cards_and_release_them(tmp_path):
    first_env, second_env, third_env = {}, {}, {}
    with gpu_slot([0, 1], tmp_path, environ=first_env, torch_has_gpu=True) as first:
        with gpu_slot([0, 1], tmp_path, environ=second_env, torch_has_gpu=True) as second:
            assert {first, second} == {"0", "1"}
            assert first_env["CUDA_VISIBLE_DEVICES"] == first and second_env["CUDA_VISIBLE_DEVICES"] == second
            with pytest.raises(TimeoutError, match="no free GPU"):
                with gpu_slot([0, 1], tmp_path, environ=third_env, poll_seconds=0.05, timeout=0.2, torch_has_gpu=True):
                    pass
        with gpu_slot([0, 1], tmp_path, environ=third_env, timeout=1, torch_has_gpu=True) as third:
            assert third == second  # the released card is free again


def test_jobs_per_card_shares_a_card_first_slots_first(tmp_path):
    envs = [{} for _ in range(4)]
    with gpu_slot([0, 1], tmp_path, environ=envs[0], torch_has_gpu=True, jobs_per_card=2) as first:
        with gpu_slot([0, 1], tmp_path, environ=envs[1], torch_has_gpu=True, jobs_per_card=2) as second:
            assert {first, second} == {"0", "1"}  # every card's first slot before any second one
            with gpu_slot([0, 1], tmp_path, environ=envs[2], torch_has_gpu=True, jobs_per_card=2) as third:
                assert third == "0" and envs[2]["CUDA_VISIBLE_DEVICES"] == "0"
                # A workflow with one job per card waits for the card's first job, whoever holds it.
                with pytest.raises(TimeoutError, match="no free GPU"):
                    with gpu_slot([0], tmp_path, environ=envs[3], poll_seconds=0.05, timeout=0.2, torch_has_gpu=True):
                        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu0.1.lock", "gpu0.lock", "gpu1.lock"]
    with pytest.raises(ValueError, match="gpu.jobs_per_card must be at least 1"):
        with gpu_slot([0], tmp_path, environ={}, torch_has_gpu=True, jobs_per_card=0):
            pass


def test_the_config_section_sets_the_slot(tmp_path, monkeypatch):
    import siteaug.runtime.device as device

    asked = {}
    monkeypatch.setattr(device, "gpu_slot", lambda *args, **kwargs: asked.update(args=args, kwargs=kwargs))
    device.configured_gpu_slot({"devices": [0, 1], "lock_dir": str(tmp_path), "jobs_per_card": 2})
    assert asked == {"args": ([0, 1], str(tmp_path)), "kwargs": {"jobs_per_card": 2}}


def test_no_gpu_means_cpu(tmp_path):
    with gpu_slot([], tmp_path, environ={}, torch_has_gpu=True) as card:
        assert card is None


def _hold_forever(lock_dir, ready):
    with gpu_slot(["0"], lock_dir, environ={}, torch_has_gpu=True):
        ready.set()
        time.sleep(60)


def test_a_killed_job_frees_its_card(tmp_path):
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold_forever, args=(tmp_path, ready))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(TimeoutError):
            with gpu_slot(["0"], tmp_path, environ={}, poll_seconds=0.05, timeout=0.2, torch_has_gpu=True):
                pass
        os.kill(holder.pid, 9)
        holder.join(10)
        with gpu_slot(["0"], tmp_path, environ={}, timeout=2, torch_has_gpu=True) as card:
            assert card == "0"
    finally:
        if holder.is_alive():
            holder.kill()


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_a_cpu_build_of_torch_holds_no_card_and_says_nothing(tmp_path, caplog):
    env = {"CUDA_VISIBLE_DEVICES": "0"}
    with caplog.at_level(logging.INFO), gpu_slot(["0"], tmp_path, environ=env, torch_has_gpu=False) as card:
        assert card is None
    assert not list(tmp_path.iterdir()) and "GPU" not in caplog.text
    if torch.version.cuda is None and torch.version.hip is None:  # this torch: the default detects the CPU build
        with gpu_slot(["0"], tmp_path, environ={}) as card:
            assert card is None
