"""A real rbk serve for the console's tests: started on a free loopback
port, with users made by `rbk user add`, spoken to over real HTTP.

    with Console(rbk, env) as c:
        tok = c.user('ann', 'operator')
        st, hdrs, body = c.req('GET', '/api/status', token=tok)
"""
import http.client, json, os, re, signal, ssl, subprocess, time


# The test lines tests/run counts.
def ok(name):
    print("ok " + name, flush=True)


def fail(name, why=""):
    print("FAIL " + name + (": " + str(why)[:600].replace("\n", " | ") if why else ""), flush=True)


def check(cond, name, why=""):
    (ok if cond else fail)(name, *([] if cond else [why]))
    return cond


class Console:
    def __init__(self, rbk, env, args=(), tls=None):
        self.rbk, self.env, self.args, self.tls = rbk, env, list(args), tls
        self.proc = None
        self.port = None
        self.log = ""

    def __enter__(self):
        argv = [self.rbk, "serve", "--listen", "127.0.0.1:0"] + self.args
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.out = open(os.path.join(self.env["TMP"], f"serve-{time.time_ns()}.log"), "w+")
        self.proc = subprocess.Popen(argv, env=self.env, stdout=self.out, stderr=subprocess.STDOUT)
        for _ in range(300):
            self.out.seek(0)
            m = re.search(r"listening on https?://127\.0\.0\.1:(\d+)", self.out.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.out.seek(0)
        raise RuntimeError("rbk serve did not start: " + self.out.read()[-2000:])

    def __exit__(self, *a):
        self.stop()

    def stop(self):
        """SIGTERM, as systemd stops it; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.seek(0)
        self.log = self.out.read()
        return self.proc.returncode if self.proc else None

    def cli(self, *args, input=None):
        return subprocess.run([self.rbk, *args], env=self.env, capture_output=True, text=True, input=input, timeout=120)

    def user(self, name, role):
        p = self.cli("user", "add", name, "--role", role)
        if p.returncode != 0:
            raise RuntimeError(f"rbk user add {name}: {p.stderr}")
        return p.stdout.strip()

    def conn(self):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            ctx.check_hostname = False
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=60, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def req(self, method, path, body=None, token=None, cookie=None, csrf=None, ctype="application/json",
            headers=None):
        """(status, headers as a dict of lower-case names, body as JSON when it is)"""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if cookie:
            h["Cookie"] = cookie
        if csrf:
            h["X-CSRF-Token"] = csrf
        data = None
        if body is not None:
            data = json.dumps(body) if not isinstance(body, (str, bytes)) else body
            if ctype:
                h["Content-Type"] = ctype
        c = self.conn()
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        hd = {}
        for k, v in r.getheaders():
            hd.setdefault(k.lower(), []).append(v)
        c.close()
        out = raw
        if (r.getheader("Content-Type") or "").startswith("application/json"):
            try:
                out = json.loads(raw)
            except ValueError:
                out = raw
        return r.status, hd, out

    def login(self, token):
        """(cookie header value, csrf token) of a new session."""
        st, h, body = self.req("POST", "/login", {"token": token})
        if st != 200:
            raise RuntimeError(f"login: {st} {body}")
        cookie = h["set-cookie"][0].split(";")[0]
        return cookie, body["csrf"]
