"""Memory limit and usage read from cgroup v2, cgroup v1, or the machine (fake cgroup trees in tmp_path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from minimarket.platform import resources

MiB = 1024 * 1024
V1_NO_LIMIT = "9223372036854771712"  # what cgroup v1 writes in memory.limit_in_bytes when unlimited


@pytest.fixture
def cgroups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Empty v2 and v1 roots (no files: no cgroup at all), laid out like the real /sys/fs/cgroup."""
    v2 = tmp_path / "cgroup"
    v1 = v2 / "memory"
    v1.mkdir(parents=True)
    monkeypatch.setattr(resources, "CGROUP_V2", v2)
    monkeypatch.setattr(resources, "CGROUP_V1", v1)
    return v2, v1


def write(path: Path, text: str) -> None:
    path.write_text(text + "\n")  # the kernel ends every value with a newline


def test_the_machine_memory_is_what_sysconf_reports():
    machine = resources.machine_memory_bytes()
    assert machine == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert machine > 64 * MiB


def test_without_cgroup_files_the_machine_and_the_process_are_reported(cgroups):
    assert resources.cgroup_limit_bytes() is None
    assert resources.memory_limit_bytes() == resources.machine_memory_bytes()
    usage = resources.memory_usage_bytes()
    assert usage == pytest.approx(resources.process_rss_bytes(), rel=0.2)
    assert 1 * MiB < usage < resources.machine_memory_bytes()


def test_cgroup_v2_max_means_no_limit(cgroups):
    v2, _ = cgroups
    write(v2 / "memory.max", "max")
    write(v2 / "memory.current", str(7 * MiB))  # the cgroup's usage counts only when it is limited
    assert resources.cgroup_limit_bytes() is None
    assert resources.memory_limit_bytes() == resources.machine_memory_bytes()
    assert resources.memory_usage_bytes() != 7 * MiB
    assert resources.memory_usage_bytes() == pytest.approx(resources.process_rss_bytes(), rel=0.2)


def test_cgroup_v2_number_is_the_limit_and_memory_current_the_usage(cgroups):
    v2, v1 = cgroups
    write(v2 / "memory.max", str(512 * MiB))
    write(v2 / "memory.current", str(123 * MiB + 4096))
    write(v1 / "memory.limit_in_bytes", str(64 * MiB))  # v2 wins when both exist
    write(v1 / "memory.usage_in_bytes", str(3 * MiB))
    assert resources.cgroup_limit_bytes() == 512 * MiB
    assert resources.memory_limit_bytes() == 512 * MiB
    assert resources.memory_usage_bytes() == 123 * MiB + 4096


def test_cgroup_v2_limit_without_memory_current_falls_back_to_the_process(cgroups):
    v2, _ = cgroups
    write(v2 / "memory.max", str(512 * MiB))
    assert resources.memory_limit_bytes() == 512 * MiB
    assert resources.memory_usage_bytes() == pytest.approx(resources.process_rss_bytes(), rel=0.2)


def test_cgroup_v1_huge_number_means_no_limit(cgroups):
    _, v1 = cgroups
    write(v1 / "memory.limit_in_bytes", V1_NO_LIMIT)
    write(v1 / "memory.usage_in_bytes", str(5 * MiB))
    assert resources.cgroup_limit_bytes() is None
    assert resources.memory_limit_bytes() == resources.machine_memory_bytes()
    assert resources.memory_usage_bytes() == pytest.approx(resources.process_rss_bytes(), rel=0.2)


def test_cgroup_v1_number_is_the_limit_and_usage_in_bytes_the_usage(cgroups):
    _, v1 = cgroups
    write(v1 / "memory.limit_in_bytes", str(256 * MiB))
    write(v1 / "memory.usage_in_bytes", str(99 * MiB))
    assert resources.cgroup_limit_bytes() == 256 * MiB
    assert resources.memory_limit_bytes() == 256 * MiB
    assert resources.memory_usage_bytes() == 99 * MiB


@pytest.mark.parametrize("garbage", ["", "unlimited", "-1", "12.5", "0x100"])
def test_unreadable_values_are_ignored(cgroups, garbage):
    v2, v1 = cgroups
    write(v2 / "memory.max", garbage)
    write(v1 / "memory.limit_in_bytes", garbage)
    assert resources.cgroup_limit_bytes() is None
    assert resources.memory_limit_bytes() == resources.machine_memory_bytes()


def test_a_directory_where_a_file_should_be_is_not_a_crash(cgroups):
    v2, v1 = cgroups
    (v2 / "memory.max").mkdir()
    write(v1 / "memory.limit_in_bytes", str(128 * MiB))
    assert resources.cgroup_limit_bytes() == 128 * MiB  # v2 unreadable, v1 still read


def test_process_rss_is_the_resident_pages_of_proc_self_statm():
    if not Path("/proc/self/statm").exists():
        pytest.skip("no /proc on this system")
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    rss = resources.process_rss_bytes()
    assert rss == pytest.approx(resident_pages * os.sysconf("SC_PAGE_SIZE"), rel=0.2)
    assert rss > 1 * MiB  # this interpreter has pytest, SQLAlchemy and FastAPI loaded


def test_reclaimable_page_cache_is_not_counted_as_pressure(cgroups):
    v2, v1 = cgroups
    write(v2 / "memory.max", str(512 * MiB))
    write(v2 / "memory.current", str(450 * MiB))  # 88 % with the cache…
    (v2 / "memory.stat").write_text(f"anon {200 * MiB}\nfile {250 * MiB}\ninactive_file {150 * MiB}\n")
    assert resources.memory_usage_bytes() == 300 * MiB  # …59 % of working set


def test_cgroup_v1_working_set_leaves_out_total_inactive_file(cgroups):
    _, v1 = cgroups
    write(v1 / "memory.limit_in_bytes", str(256 * MiB))
    write(v1 / "memory.usage_in_bytes", str(200 * MiB))
    (v1 / "memory.stat").write_text(f"cache {90 * MiB}\ninactive_file {1}\ntotal_inactive_file {80 * MiB}\n")
    assert resources.memory_usage_bytes() == 120 * MiB
