import time
_T0 = time.time()
_out = open("/tmp/timeline.tsv", "w", buffering=1)
def pytest_runtest_setup(item):
    _out.write(f"{time.time() - _T0:.1f}\tsetup\t{item.nodeid}\n")
def pytest_runtest_teardown(item):
    _out.write(f"{time.time() - _T0:.1f}\tend\t{item.nodeid}\n")
