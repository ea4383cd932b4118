"""A small W3C WebDriver client (standard library only) for the console's
browser tests: Debian's headless Chromium driven through chromedriver,
both on loopback.

    with Browser(artifacts_dir="build/test-artifacts/x") as b:
        b.get("http://127.0.0.1:8470/")
        b.type(b.wait_for("#token"), "rbk_...")
        b.click(b.find("button[type=submit]"))
        b.wait_until("return document.title === 'rbk console'")
        b.screenshot("after-login")

Elements are the driver's opaque id strings. Paths: RBK_CHROMEDRIVER and
RBK_CHROMIUM override the ones found on PATH (Debian: chromium-driver and
chromium).
"""
import base64, json, os, shutil, signal, socket, subprocess, tempfile, time, urllib.error, urllib.request

# The W3C key under which an element reference travels, in both directions.
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(RuntimeError):
    """An error the driver answered with: .error is the W3C error name
    ("no such element", "javascript error", ...)."""

    def __init__(self, error, message):
        # Chromedriver appends a multi-line stack and build info; the first
        # line is the part worth reading.
        first = ((message or "").strip().splitlines() or [""])[0]
        first = first.removeprefix(error + ": ")  # it often repeats the name
        super().__init__(f"{error}: {first}")
        self.error = error


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _pids_using(path):
    """Live Chromium processes whose command line names path: each one we
    started carries our temp dir in it (the crash handler too, through
    XDG_CONFIG_HOME); zombies have an empty command line."""
    pids, needle = [], path.encode()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                # By executable, not argv[0]: Chromium's children rewrite
                # their command line into one string. And only chromium,
                # chrome_crashpad_handler, chromedriver: a shell that merely
                # mentions the dir is none of ours to kill.
                if not os.path.basename(os.readlink(f"/proc/{p}/exe")).startswith("chrom"):
                    continue
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.append(int(p))
            except OSError:
                pass  # gone, or a zombie
    return pids


class Browser:
    def __init__(self, artifacts_dir=None):
        self.artifacts_dir = artifacts_dir
        self.driver = os.environ.get("RBK_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.chromium = os.environ.get("RBK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
        self.proc = self.session = self.port = None
        self.tmp = self.profile = self.log = None

    # ---- the driver and its session ----

    def __enter__(self):
        # One temp dir holds the profile, Chromium's config home and the
        # driver's log, so a single path finds (and removes) all of it.
        self.tmp = tempfile.mkdtemp(prefix="rbk-webdriver-")
        self.profile = os.path.join(self.tmp, "profile")
        self.log = os.path.join(self.tmp, "chromedriver.log")
        # Crashpad otherwise writes to ~/.config/chromium and detaches from
        # our process tree where nothing would name it as ours.
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.tmp, "config"))
        self.port = _free_port()
        try:
            self.proc = subprocess.Popen([self.driver, f"--port={self.port}", "--allowed-ips=127.0.0.1",
                                          f"--log-path={self.log}"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._wait_ready(20)
            # --no-sandbox: the tests run as root, where Chromium's sandbox
            # refuses to start. --disable-dev-shm-usage: containers' /dev/shm
            # is small. Timeouts: a hung page fails as a WebDriverError well
            # before our HTTP timeout. Prompts "ignore": an alert() a payload
            # opens stays open for alert_text() to see instead of being
            # dismissed by whichever command comes next.
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "unhandledPromptBehavior": "ignore",
                "timeouts": {"pageLoad": 30000, "script": 30000, "implicit": 0},
                "goog:chromeOptions": {"binary": self.chromium, "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", f"--user-data-dir={self.profile}"]}}}}
            try:
                self.session = self._call("POST", "/session", caps)["sessionId"]
            except WebDriverError as e:
                # "Chrome instance exited" says nothing more: point at the log.
                raise WebDriverError(e.error, f"{str(e).split(': ', 1)[1]} (log: {self.log})") from None
        except BaseException:
            self._shutdown(keep_log=True)
            raise
        return self

    def __exit__(self, *exc):
        self._shutdown(keep_log=False)

    def _wait_ready(self, timeout):
        deadline = time.time() + timeout
        while True:
            try:
                if (self._call("GET", "/status", timeout=2) or {}).get("ready"):
                    return
            except (OSError, ValueError, WebDriverError):
                pass  # not listening yet
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromedriver {self.driver} exited with {self.proc.returncode} (log: {self.log})")
            if time.time() > deadline:
                raise RuntimeError(f"chromedriver {self.driver} not ready after {timeout}s (log: {self.log})")
            time.sleep(0.1)

    def _shutdown(self, keep_log):
        if self.session:
            try:
                # Closing the session is what makes Chromium quit cleanly.
                self._call("DELETE", f"/session/{self.session}", timeout=20)
            except (OSError, ValueError, WebDriverError):
                pass
            self.session = None
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if not self.tmp:
            return
        # Chromium outlives a chromedriver that is stopped without the
        # session being closed (a failed start, a dead driver): give it a few
        # seconds to go on its own, then kill what is left, by pid.
        deadline = time.time() + 5
        while (pids := _pids_using(self.tmp)) and time.time() < deadline:
            time.sleep(0.1)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while _pids_using(self.tmp) and time.time() < deadline + 5:
            time.sleep(0.1)
        if self.artifacts_dir and os.path.exists(self.log):
            os.makedirs(self.artifacts_dir, exist_ok=True)
            shutil.copy(self.log, os.path.join(self.artifacts_dir, "chromedriver.log"))
        if keep_log:
            # A failed start names the log in its error: keep just that.
            for sub in ("profile", "config"):
                shutil.rmtree(os.path.join(self.tmp, sub), ignore_errors=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            # W3C errors come as 4xx/5xx with the same JSON shape.
            raw = e.read()
            try:
                json.loads(raw)
            except ValueError:
                raise WebDriverError(f"HTTP {e.code}", raw.decode(errors="replace")) from None
        v = json.loads(raw or b"{}").get("value")
        if isinstance(v, dict) and "error" in v:
            raise WebDriverError(v["error"], v.get("message"))
        return v

    def _s(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    # ---- pages and elements ----

    def get(self, url):
        """Navigate and wait for the load event."""
        self._s("POST", "/url", {"url": url})

    def url(self):
        return self._s("GET", "/url")

    def title(self):
        return self._s("GET", "/title")

    def find(self, css):
        """The first element matching css, or None."""
        try:
            return self._s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]
        except WebDriverError as e:
            if e.error == "no such element":
                return None
            raise

    def find_all(self, css):
        return [e[ELEMENT] for e in self._s("POST", "/elements", {"using": "css selector", "value": css})]

    def wait_for(self, css, timeout=10):
        """The first element matching css once there is one; TimeoutError
        naming the page and the start of its source otherwise."""
        deadline = time.time() + timeout
        while True:
            el = self.find(css)
            if el:
                return el
            if time.time() > deadline:
                src = " ".join((self._s("GET", "/source") or "").split())[:400]
                raise TimeoutError(f"no element '{css}' after {timeout}s at {self.url()}: {src}")
            time.sleep(0.1)

    def text(self, el):
        """The element's rendered text (innerText: hidden parts excluded)."""
        return self._s("GET", f"/element/{el}/text")

    def attr(self, el, name):
        """The attribute, or the property of that name when there is one
        (as W3C "Get Element Attribute" does: a typed input's value)."""
        return self._s("GET", f"/element/{el}/attribute/{name}")

    def click(self, el):
        self._s("POST", f"/element/{el}/click", {})

    def type(self, el, text):
        """Replace the field's content with text, typed as keystrokes."""
        self._s("POST", f"/element/{el}/clear", {})
        self._s("POST", f"/element/{el}/value", {"text": text})

    def select(self, el, value):
        # By script: WebDriver has no "select", and clicking an <option>
        # in headless mode is fragile. The change event is what pages act on.
        self.js("arguments[0].value = arguments[1];"
                "arguments[0].dispatchEvent(new Event('change', {bubbles: true}))", {ELEMENT: el}, value)

    def js(self, script, *args):
        """Run script as a function body (use `return`); an element id is
        passed as {ELEMENT: id}, and elements come back as such dicts."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_until(self, script, timeout=10, interval=0.1):
        """Poll js(script) until it is truthy; return that value."""
        deadline = time.time() + timeout
        while True:
            v = self.js(script)
            if v:
                return v
            if time.time() > deadline:
                raise TimeoutError(f"still false after {timeout}s at {self.url()}: {script}")
            time.sleep(interval)

    def screenshot(self, name):
        """Save the viewport as artifacts_dir/name.png; the path, or None
        when there is no artifacts_dir."""
        if not self.artifacts_dir:
            return None
        os.makedirs(self.artifacts_dir, exist_ok=True)
        path = os.path.join(self.artifacts_dir, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(self._s("GET", "/screenshot")))
        return path

    def cookies(self):
        """The page's cookies as W3C dicts (name, value, httpOnly, sameSite, ...)."""
        return self._s("GET", "/cookie")

    def alert_text(self):
        """The text of an open alert() (an XSS payload that ran), else None."""
        try:
            return self._s("GET", "/alert/text")
        except WebDriverError as e:
            if e.error == "no such alert":
                return None
            raise
