"""A small W3C WebDriver client (standard library only) for the console's
browser tests: Debian's headless Chromium driven through chromedriver,
both on loopback.

    with Browser(artifacts_dir="build/test-artifacts/x") as b:
        b.get("http://127.0.0.1:8470/")
        b.type(b.wait_for("#token"), "rbk_...")
        b.click(b.find("button[type=submit]"))
        b.wait_until("return document.title === 'rbk console'")
        b.screenshot("after-login")
"""
import base64, json, os, shutil, socket, subprocess, tempfile, time, urllib.error, urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(RuntimeError):
    def __init__(self, error, message):
        super().__init__(f"{error}: {(message or '').splitlines()[0] if message else ''}")
        self.error = error


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Browser:
    def __init__(self, artifacts_dir=None):
        self.artifacts_dir = artifacts_dir
        self.driver = os.environ.get("RBK_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.chromium = os.environ.get("RBK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
        self.proc = self.session = None
        self.profile = self.log = None

    # ---- the driver and its session ----

    def __enter__(self):
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="rbk-chromium-")
        self.log = os.path.join(self.profile, "chromedriver.log")
        self.proc = subprocess.Popen([self.driver, f"--port={self.port}", "--allowed-ips=127.0.0.1",
                                      f"--log-path={self.log}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self._stop_driver()
                raise RuntimeError(f"chromedriver did not become ready (log: {self.log})")
            time.sleep(0.1)
        # --no-sandbox: the tests run as root, where Chromium's sandbox cannot.
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": self.chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", f"--user-data-dir={os.path.join(self.profile, 'profile')}"]}}}}
        try:
            v = self._call("POST", "/session", caps)
        except Exception:
            self._stop_driver()
            raise
        self.session = v["sessionId"]
        return self

    def __exit__(self, *exc):
        if self.session:
            try:
                self._call("DELETE", f"/session/{self.session}")
            except (OSError, WebDriverError):
                pass
            self.session = None
        self._stop_driver()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    def _stop_driver(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
        v = json.loads(raw or b"{}").get("value")
        if isinstance(v, dict) and "error" in v:
            raise WebDriverError(v["error"], v.get("message"))
        return v

    def _s(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    # ---- pages and elements ----

    def get(self, url):
        self._s("POST", "/url", {"url": url})

    def url(self):
        return self._s("GET", "/url")

    def title(self):
        return self._s("GET", "/title")

    def find(self, css):
        try:
            return self._s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]
        except WebDriverError as e:
            if e.error == "no such element":
                return None
            raise

    def find_all(self, css):
        return [e[ELEMENT] for e in self._s("POST", "/elements", {"using": "css selector", "value": css})]

    def wait_for(self, css, timeout=10):
        deadline = time.time() + timeout
        while True:
            el = self.find(css)
            if el:
                return el
            if time.time() > deadline:
                src = (self._s("GET", "/source") or "")[:400]
                raise TimeoutError(f"no element '{css}' after {timeout}s at {self.url()}: {src}")
            time.sleep(0.1)

    def text(self, el):
        return self._s("GET", f"/element/{el}/text")

    def attr(self, el, name):
        return self._s("GET", f"/element/{el}/attribute/{name}")

    def click(self, el):
        self._s("POST", f"/element/{el}/click", {})

    def type(self, el, text):
        self._s("POST", f"/element/{el}/clear", {})
        self._s("POST", f"/element/{el}/value", {"text": text})

    def select(self, el, value):
        self.js("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))",
                {ELEMENT: el}, value)

    def js(self, script, *args):
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_until(self, script, timeout=10, interval=0.1):
        deadline = time.time() + timeout
        while True:
            v = self.js(script)
            if v:
                return v
            if time.time() > deadline:
                raise TimeoutError(f"still false after {timeout}s at {self.url()}: {script}")
            time.sleep(interval)

    def screenshot(self, name):
        if not self.artifacts_dir:
            return None
        os.makedirs(self.artifacts_dir, exist_ok=True)
        path = os.path.join(self.artifacts_dir, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(self._s("GET", "/screenshot")))
        return path

    def cookies(self):
        return self._s("GET", "/cookie")

    def alert_text(self):
        """The text of an open alert() (an XSS payload that ran), else None."""
        try:
            return self._s("GET", "/alert/text")
        except WebDriverError as e:
            if e.error == "no such alert":
                return None
            raise
