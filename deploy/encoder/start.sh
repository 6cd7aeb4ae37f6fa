#!/bin/sh
# Writes MLServer's settings for one model folder ($MODEL_DIR, served as $MODEL_NAME) and
# starts it: REST on 8080, gRPC on 8081, metrics on 8082.
set -eu
dir=$(mktemp -d)
mkdir -p "$dir/$MODEL_NAME"
printf '{"http_port": 8080, "grpc_port": 8081, "metrics_port": 8082, "parallel_workers": 0}\n' > "$dir/settings.json"
printf '{"name": "%s", "implementation": "stylize_encoder.StylizeTextEncoder", "parameters": {"uri": "%s"}}\n' \
    "$MODEL_NAME" "$MODEL_DIR" > "$dir/$MODEL_NAME/model-settings.json"
exec mlserver start "$dir"
