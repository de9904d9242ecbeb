"""precision="auto": chosen from what the CPU runs natively, confirmed by a cached probe."""

import time
from pathlib import Path

import pytest
import torch

from gan.device import CpuInfo, choose_precision, cpu_info, set_threads
from gan.train import Trainer

from conftest import TINY, tiny_train

AVX2 = CpuInfo("AVX2", native_bf16=False, amx=False, model="test avx2")
AMX = CpuInfo("AVX512", native_bf16=True, amx=True, model="test amx")
AVX512_BF16 = CpuInfo("AVX512", native_bf16=True, amx=False, model="test avx512")


def never(*a, **k):
    raise AssertionError("no probe expected")


def test_auto_is_fp32_without_native_bf16(tmp_path):
    c = choose_precision("auto", "cpu", info=AVX2, cache=tmp_path, measure=never)
    assert c.precision == "fp32" and c.warning is None
    assert c.reason == "fp32: this CPU (AVX2) has no native bf16 kernels"


def test_auto_is_bf16_where_native_and_measured_faster(tmp_path):
    calls = []
    fast = lambda: calls.append(1) or 1.8
    c = choose_precision("auto", "cpu", info=AMX, cache=tmp_path, measure=fast)
    assert c.precision == "bf16" and "measured 1.80x" in c.reason and "AMX" in c.reason
    # remembered per machine and torch version: the second start does not measure again
    c2 = choose_precision("auto", "cpu", info=AMX, cache=tmp_path, measure=never)
    assert c2 == c and calls == [1]
    # another CPU kind is measured on its own
    c3 = choose_precision("auto", "cpu", info=AVX512_BF16, cache=tmp_path, measure=lambda: 0.9)
    assert c3.precision == "fp32" and "measured only 0.90x" in c3.reason


def test_cpu_info_reads_amx_from_torch_cpu(monkeypatch):
    # torch 2.14 has the probe in torch.cpu only; reading torch._C._cpu labelled AMX machines AVX512-BF16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert cpu_info().amx and cpu_info().cpu_class == "AMX"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not cpu_info().amx and cpu_info().cpu_class != "AMX"


def test_probe_times_the_default_recipe_step_on_one_thread(monkeypatch):
    # two threads on two busy cores measured bf16 at 0.51x on an AMX Xeon (1.5x on one thread);
    # a tiny model measured 1.0-1.15x there: the probe runs the cpu recipe's shape on one thread
    import gan.train
    from gan.device import measure_bf16_speedup

    seen = []

    class Probe:
        def __init__(self, mcfg, tcfg, device):
            self.shape = (mcfg.image_size, mcfg.g_width, mcfg.d_width)
            self.slow = 0.002 if tcfg.precision == "fp32" else 0.001

        def step(self, real):
            seen.append((torch.get_num_threads(), self.shape, tuple(real.shape)))
            time.sleep(self.slow)

    monkeypatch.setattr(gan.train, "Trainer", Probe)
    torch.set_num_threads(2)
    try:
        assert 1.3 < measure_bf16_speedup() < 3.0
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(1)
    assert set(seen) == {(1, (64, 32, 32), (32, 3, 64, 64))}


def test_forced_bf16_warns_where_not_native(tmp_path):
    c = choose_precision("bf16", "cpu", info=AVX2, cache=tmp_path, measure=never)
    assert c.precision == "bf16"
    assert c.warning and "8-13x slower than fp32" in c.warning and "AVX2" in c.warning
    assert choose_precision("bf16", "cpu", info=AMX, cache=tmp_path, measure=never).warning is None
    assert choose_precision("fp32", "cpu", info=AMX, cache=tmp_path, measure=never).precision == "fp32"
    with pytest.raises(ValueError, match="choose auto, fp32 or bf16"):
        choose_precision("fp16", "cpu")


def test_unreadable_cache_is_measured_again(tmp_path):
    (tmp_path / "precision.json").write_text("{not json")
    c = choose_precision("auto", "cpu", info=AMX, cache=tmp_path, measure=lambda: 2.0)
    assert c.precision == "bf16"


def test_without_a_writable_cache_the_probe_runs_once_per_process(monkeypatch):
    import gan.device as dev

    calls = []
    monkeypatch.setattr(dev, "measure_bf16_speedup", lambda: calls.append(1) or 1.6)
    monkeypatch.setattr(dev, "_MEASURED", {})
    for _ in range(3):  # one process asking again: each page build of the app, say
        assert choose_precision("auto", "cpu", info=AMX, cache=None).precision == "bf16"
    assert len(calls) == 1
    assert choose_precision("auto", "cpu", info=AVX512_BF16, cache=None).precision == "bf16"  # another machine key
    assert len(calls) == 2


def test_trainer_autocast_follows_the_choice(monkeypatch):
    import gan.train as gt

    for info, expect in ((AVX2, False), (AMX, True)):
        monkeypatch.setattr(gt, "choose_precision", lambda req, dev, info=info: choose_precision(
            req, dev, info=info, cache=None, measure=lambda: 2.0))  # fmt: skip
        tr = Trainer(TINY, tiny_train(precision="auto"), torch.device("cpu"))
        assert tr.autocast._enabled is expect and tr.precision.precision == ("bf16" if expect else "fp32")


def test_default_precision_is_auto_and_matches_this_cpu(tmp_path):
    from gan import TrainConfig

    assert TrainConfig().precision == "auto"
    info = cpu_info()
    if not info.native_bf16:
        assert choose_precision("auto", "cpu").precision == "fp32"


def test_set_threads(monkeypatch):
    from gan.device import available_cores

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
        assert set_threads(0) == available_cores() == torch.get_num_threads()
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(available_cores() * 2))  # torchrun, more ranks than cores
        assert set_threads(0) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own choice wins
        assert set_threads(0) == 3
    finally:
        torch.set_num_threads(before)


def test_thread_governor_gives_way_to_a_busy_core_and_comes_back():
    """ThreadGovernor: one thread fewer as soon as others keep a core busy; every thread again only
    after two calm readings; nothing changes between readings or where CPU time cannot be read."""
    import time as _time

    from gan.device import ThreadGovernor, cpu_seconds_used

    before = torch.get_num_threads()
    now, others = [0.0], [0.0]  # a fake clock, and CPU seconds used by other processes
    used = lambda: others[0] + _time.process_time()  # noqa: E731 - the machine's total includes ours
    try:
        torch.set_num_threads(2)
        g = ThreadGovernor(2, interval=0.5, used=used, clock=lambda: now[0])

        def after(dt, busy_cores):
            now[0] += dt
            others[0] += busy_cores * dt
            return g.step()

        assert after(1.0, 0.05) == 2  # a few polls: below the slack
        assert after(1.0, 0.8) == 1 and torch.get_num_threads() == 1 and 0.75 < g.others < 0.85
        assert after(0.2, 0.0) == 1  # not due: no reading
        assert after(1.0, 0.0) == 1  # one calm reading is not enough
        assert after(1.0, 0.0) == 2 and torch.get_num_threads() == 2
        assert after(1.0, 1.0) == 1 and after(1.0, 0.6) == 1  # busy again, and a calm-ish reading
        assert ThreadGovernor(8, used=used, clock=lambda: now[0]).want(2.5) == 5  # one fewer per busy core
        assert ThreadGovernor(1, used=used).want(5.0) == 1
        blind = ThreadGovernor(2, used=lambda: None, clock=lambda: now[0])
        now[0] += 5
        assert blind.step() == 2  # cannot read the machine's CPU time: every thread, as before
        if Path("/proc/stat").exists():
            assert cpu_seconds_used() > 0
    finally:
        torch.set_num_threads(before)


def test_available_cores_honours_a_container_quota(tmp_path):
    from gan.device import cgroup_cpu_quota

    assert cgroup_cpu_quota(tmp_path) is None  # no cgroup files
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None  # no limit
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == 2.0
