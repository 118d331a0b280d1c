#!/bin/sh
# A tiny web app for any stack with busybox: writes its page, then serves it on $PORT.
mkdir -p www
cat > www/index.html <<HTML
<h1>hello from a Procfile app</h1>
<p>running as uid $(id -u) in $PWD, greeting: ${GREETING:-none}</p>
HTML
exec httpd -f -v -p "$PORT" -h www
