#!/usr/bin/env bash
# Throwaway S3-compatible server for tests: moto's server mode (`moto[server]` from PyPI,
# pinned in e2e/services/s3-requirements.txt; .ci/run installs it).
#
#   e2e/services/s3.sh start   # start (once) + print the export lines below
#   e2e/services/s3.sh stop    # stop it
#   e2e/services/s3.sh env     # print the export lines only
#
# Exports MCP_TEST_S3_ENDPOINT (http://127.0.0.1:PORT), MCP_TEST_S3_BUCKET, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY and AWS_REGION. Authentication is enforced like on AWS: the script
# creates an IAM user allowed s3:* and a bucket with that user's key, then turns moto's IAM
# checks on, so a wrong key id or secret gets InvalidAccessKeyId or SignatureDoesNotMatch.
#
# State lives in ${MCP_SERVICES_DIR:-/tmp/mcp-services}/s3 (pid, log, env); the server listens
# only on 127.0.0.1, on a free port (or ${MCP_S3_PORT}). Objects are kept in memory: a restart
# starts empty. Idempotent.
set -euo pipefail

BASE="${MCP_SERVICES_DIR:-/tmp/mcp-services}"
DIR="$BASE/s3"
PIDFILE="$DIR/moto.pid"
LOG="$DIR/moto.log"
ENVFILE="$DIR/env"
PYTHON="${PYTHON:-python3}"
BUCKET="${MCP_S3_BUCKET:-mcp-test}"
REGION=us-east-1

running() {
    [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && [[ -f $ENVFILE ]]
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    mkdir -p "$DIR"
    if running; then
        cat "$ENVFILE"
        return
    fi
    if [[ -f $PIDFILE ]]; then
        kill "$(cat "$PIDFILE")" 2>/dev/null || true
        rm -f "$PIDFILE"
    fi
    if ! "$PYTHON" -c 'import moto.server' 2>/dev/null; then
        echo "s3.sh: moto[server] is not installed for $PYTHON" \
            "(pip install -r e2e/services/s3-requirements.txt)" >&2
        exit 1
    fi
    local port endpoint
    port="${MCP_S3_PORT:-$(free_port)}"
    endpoint="http://127.0.0.1:$port"
    # Its own session, so that the caller's Ctrl-C does not reach it; `stop` ends it by pid.
    setsid "$PYTHON" -m moto.server -H 127.0.0.1 -p "$port" >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local i
    for i in $(seq 1 100); do
        if curl -fsS -o /dev/null "$endpoint/moto-api/data.json" 2>/dev/null; then
            break
        fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "s3.sh: moto server exited; log:" >&2
            cat "$LOG" >&2
            exit 1
        fi
        sleep 0.1
    done
    [[ $i -lt 100 ]] || {
        echo "s3.sh: moto server did not answer on $endpoint" >&2
        exit 1
    }
    # While IAM checks are off (moto's default) create the user, its key and the bucket;
    # then POST /moto-api/reset-auth 0 turns them on for every later request.
    if ! MCP_S3_ENDPOINT="$endpoint" MCP_S3_BUCKET="$BUCKET" MCP_S3_REGION="$REGION" \
        "$PYTHON" - >"$ENVFILE.tmp" <<'PY'; then
import json
import os
import shlex
import urllib.request

import boto3

endpoint = os.environ["MCP_S3_ENDPOINT"]
region = os.environ["MCP_S3_REGION"]
bucket = os.environ["MCP_S3_BUCKET"]
setup = dict(endpoint_url=endpoint, region_name=region,
             aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **setup)
iam.create_user(UserName="mcp-test")
iam.put_user_policy(
    UserName="mcp-test",
    PolicyName="s3",
    PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }),
)
key = iam.create_access_key(UserName="mcp-test")["AccessKey"]
urllib.request.urlopen(
    urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                           headers={"Content-Type": "text/plain"})
).read()
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                  aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
for name, value in [
    ("MCP_TEST_S3_ENDPOINT", endpoint),
    ("MCP_TEST_S3_BUCKET", bucket),
    ("AWS_ACCESS_KEY_ID", key["AccessKeyId"]),
    ("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"]),
    ("AWS_REGION", region),
]:
    print(f"export {name}={shlex.quote(value)}")
PY
        echo "s3.sh: setting up the user and bucket failed; moto log:" >&2
        tail -n 20 "$LOG" >&2
        stop >/dev/null
        exit 1
    fi
    mv "$ENVFILE.tmp" "$ENVFILE"
    cat "$ENVFILE"
}

stop() {
    if [[ -f $PIDFILE ]]; then
        local pid
        pid=$(cat "$PIDFILE")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$PIDFILE"
    fi
    rm -f "$ENVFILE"
    echo "s3 stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env)
        if running; then cat "$ENVFILE"; else
            echo "s3.sh: not running (start it first)" >&2
            exit 1
        fi
        ;;
    *)
        echo "usage: $0 start|stop|env" >&2
        exit 2
        ;;
esac
