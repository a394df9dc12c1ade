#!/usr/bin/env bash
# Writes a loopback nginx config from nginx/nginx.test.conf.template for the operations tests.
#
# usage: render-nginx-test-conf.sh PREFIX LISTEN_PORT GENERATION BACKEND_PORT...
#   PREFIX       an existing directory: gets nginx.conf, logs, the pid file and temp dirs
#   LISTEN_PORT  nginx listens on 127.0.0.1:LISTEN_PORT
#   GENERATION   any word, served at /nginx/config-generation (to see a reload take effect)
#   BACKEND_PORT one per backend replica on 127.0.0.1
# Then: nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/error.log [-t | -s reload | -s quit]
set -euo pipefail

if [[ $# -lt 4 ]]; then
    sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 1
fi
prefix="$(cd "$1" && pwd)"
listen_port="$2"
generation="$3"
shift 3
nginx_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../nginx" && pwd)"

servers=""
for port in "$@"; do
    [[ "$port" =~ ^[0-9]+$ ]] || { echo "render-nginx-test-conf: bad port '$port'" >&2; exit 1; }
    # Same passive-health parameters as production (nginx/nginx.conf).
    servers+="        server 127.0.0.1:${port} max_fails=3 fail_timeout=10s;"$'\n'
done

# As root, nginx's workers would run as `nobody`: they must be able to reach the prefix and write
# their temp files. As another user the `user` directive is meaningless and nginx warns, so omit it.
user_directive=""
if [[ "$(id -u)" == 0 ]]; then
    user_directive="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
fi
chmod 755 "$prefix"
mkdir -p "$prefix/tmp"
chmod 1777 "$prefix/tmp"

# Placeholders are replaced with awk (not sed) so that slashes in paths need no escaping.
awk -v prefix="$prefix" -v nginx_dir="$nginx_dir" -v port="$listen_port" -v gen="$generation" \
    -v servers="${servers%$'\n'}" -v user="$user_directive" '
    {
        gsub(/@PREFIX@/, prefix); gsub(/@NGINX_DIR@/, nginx_dir); gsub(/@PORT@/, port)
        gsub(/@GENERATION@/, gen); gsub(/@USER_DIRECTIVE@/, user)
        if ($0 ~ /@UPSTREAM_SERVERS@/) { print servers; next }
        print
    }' "$nginx_dir/nginx.test.conf.template" >"$prefix/nginx.conf.new"
mv -f "$prefix/nginx.conf.new" "$prefix/nginx.conf"
