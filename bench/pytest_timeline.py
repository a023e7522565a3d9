"""pytest plugin for bench/RESULTS.md's test-suite timelines: ``-p pytest_timeline`` with bench/ on PYTHONPATH writes each
test's start and end to /tmp/timeline.tsv: seconds since the plugin loaded, then the CPU seconds so far of the pytest
process itself, of its finished (waited-for) child processes and their descendants, and of the whole machine
(/proc/stat, every process: the background runs too), then the event and the test."""
import os
import resource
import time

_T0 = time.time()
_TICK = os.sysconf("SC_CLK_TCK")
_out = open("/tmp/timeline.tsv", "w", buffering=1)


def _cpu(who) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu() -> float:
    with open("/proc/stat") as stat:
        user, nice, system = (int(v) for v in stat.readline().split()[1:4])
    return (user + nice + system) / _TICK


def _write(event, item):
    _out.write(f"{time.time() - _T0:.1f}\t{_cpu(resource.RUSAGE_SELF):.1f}\t{_cpu(resource.RUSAGE_CHILDREN):.1f}\t"
               f"{_machine_cpu():.1f}\t{event}\t{item.nodeid}\n")


def pytest_runtest_setup(item):
    _write("setup", item)


def pytest_runtest_teardown(item):
    _write("end", item)
