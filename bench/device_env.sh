# Source on a GPU machine whose python3 already has torch, torch-geometric, pandas, pyarrow and scikit-learn (the
# device image of bench/RESULTS.md): installs the rest of requirements.txt from wheels in .whl/ (py3.12, fetched
# beforehand with `pip download --python-version 3.12 --only-binary :all: -d .whl ...`; freesasa comes as an sdist and
# is built here) into /tmp/site, and unpacks each .devdata*/NAME.tar.xz into /tmp/data/NAME. Wheels in other .whl*/
# folders (e.g. .whl_mpl/ for matplotlib, which only the report jobs need) and archives in other .devdata*/ folders
# install too when carried: split them so that one call carries no more than the 64 MiB it needs.
set -e
if [ ! -f /tmp/site/.done ]; then
  python3 -m pip install --quiet --no-index --no-deps --target /tmp/site .whl*/*.whl
  PYTHONPATH=/tmp/site python3 -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w /tmp/wheels .whl/freesasa-*.tar.gz
  python3 -m pip install --quiet --no-index --no-deps --target /tmp/site /tmp/wheels/freesasa-*.whl
  touch /tmp/site/.done
fi
for archive in .devdata*/*.tar.xz; do
  [ -e "$archive" ] || continue  # none carried
  dest=/tmp/data/$(basename "$archive" .tar.xz)
  [ -d "$dest" ] || { mkdir -p "$dest.part" && tar -xJf "$archive" -C "$dest.part" && mv "$dest.part" "$dest"; }
done
export PYTHONPATH=/tmp/site:$PWD
export PATH=/tmp/site/bin:$PATH
set +e
