#!/usr/bin/env python3
"""Serve the files of DIR as they are (text/plain) on 127.0.0.1, for a raw Prometheus
metrics page: the sandbox server answers JSON only.  static.py DIR  (port -> DIR/port)"""
import os, sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


d = sys.argv[1]
srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=d))
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.replace(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
srv.serve_forever()
