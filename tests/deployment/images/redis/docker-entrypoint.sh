#!/usr/bin/env bash
# The official redis image's entrypoint, the parts the stand-in keeps (see Containerfile).
set -euo pipefail
if [[ "${1:-}" == -* || "${1:-}" == *.conf ]]; then set -- redis-server "$@"; fi
if [[ "${1:-}" == redis-server ]]; then
    if [[ "$(id -u)" == 0 ]]; then
        chown -R redis:redis /data
        exec setpriv --reuid=redis --regid=redis --init-groups "$BASH_SOURCE" "$@"
    fi
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
