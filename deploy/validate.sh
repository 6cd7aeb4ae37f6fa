#!/usr/bin/env bash
# Checks deploy/ without a cluster or a container engine:
#   - the Kubernetes manifests against the API schemas (kubernetes-validate from PyPI,
#     strict: unknown fields are errors), for Kubernetes 1.30 and the tool's newest;
#   - the relay StatefulSet's choice of source by pod ordinal, run in a shell;
#   - the encoder's start script and runtime for syntax.
# Needs: pip install kubernetes-validate (tools' .venv-tools has it).
set -euo pipefail
cd "$(dirname "$0")/.."
validate=${KUBERNETES_VALIDATE:-.venv-tools/bin/kubernetes-validate}
command -v "$validate" >/dev/null || { echo "validate.sh: no $validate (pip install kubernetes-validate)" >&2; exit 1; }
for version in 1.30.0 ""; do
    "$validate" --strict --quiet ${version:+-k "$version"} deploy/k8s/*.yaml
done
# The relay's source line: pod stylize-relay-1 reads line 2 of the ConfigMap's list.
sources=$(mktemp)
printf 'rtsp://a/0\nrtsp://b/1\n' > "$sources"
got=$(HOSTNAME=stylize-relay-1 sh -c 'i=${HOSTNAME##*-}; sed -n "$((i + 1))p" "$1"' _ "$sources")
rm -f "$sources"
[ "$got" = "rtsp://b/1" ] || { echo "validate.sh: pod 1 got source '$got'" >&2; exit 1; }
sh -n deploy/encoder/start.sh
python3 -m py_compile deploy/encoder/stylize_encoder.py
echo "deploy/: manifests valid (strict, Kubernetes 1.30 and latest), relay source selection and scripts OK"
