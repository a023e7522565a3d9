"""pytest plugin for bench/RESULTS.md's test-suite timelines: ``-p pytest_timeline`` with bench/ on PYTHONPATH writes each test's
start and end (seconds since the plugin loaded) to /tmp/timeline.tsv."""
import time
_T0 = time.time()
_out = open("/tmp/timeline.tsv", "w", buffering=1)
def pytest_runtest_setup(item):
    _out.write(f"{time.time() - _T0:.1f}\tsetup\t{item.nodeid}\n")
def pytest_runtest_teardown(item):
    _out.write(f"{time.time() - _T0:.1f}\tend\t{item.nodeid}\n")
