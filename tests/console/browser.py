"""The console's pages in a real headless Chromium (docs/console.md): log
in with a token, launch a run from the generated form, watch its timeline
grow live, approve it through the form and check the record names the
person; hostile text in a runbook, its params, a step's output, a prompt
and a comment stays text. Screenshots go to ARTIFACTS. Prints ok/FAIL.

argv: RBK ARTIFACTS. Env as for api.py (RBK_PATH holds the console
fixtures)."""
import json, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from serve import Console, check, fail, ok
from webdriver import Browser

RBK, ARTIFACTS = sys.argv[1], sys.argv[2]
env = dict(os.environ)
os.makedirs(ARTIFACTS, exist_ok=True)


def show(c, run):
    p = c.cli("show", str(run), "--json")
    return json.loads(p.stdout) if p.stdout.strip() else {}


# Whether anything hostile ran or became markup: the payloads set
# window.__xss or carry class=pwn.
PWNED = """
const found = [...document.querySelectorAll('.pwn')].map(e => e.outerHTML);
return {xss: window.__xss || null, pwn: found, scripts: document.scripts.length};
"""

with Console(RBK, env) as c:
    token = c.user("ann", "operator")
    auditor = c.user("audrey", "auditor")
    with Browser(artifacts_dir=ARTIFACTS) as b:
        base = f"http://127.0.0.1:{c.port}/"
        # ---- login ----
        b.get(base)
        el = b.wait_for("#token")
        b.screenshot("01-login")
        b.type(el, "rbk_" + "9" * 64)
        b.click(b.find("#login button[type=submit]"))
        b.wait_until("return document.querySelector('#flash div.error') !== null")
        check(b.find("#nav") is not None and b.js("return document.getElementById('nav').hidden") is True,
              "a wrong token does not log in; the page says why")
        b.type(b.find("#token"), token)
        b.click(b.find("#login button[type=submit]"))
        b.wait_until("return document.getElementById('who').textContent.includes('ann')")
        cookies = b.cookies()
        sess = [k for k in cookies if k["name"] == "rbk_session"]
        check(sess and sess[0].get("httpOnly") and sess[0].get("sameSite") == "Strict"
              and b.js("return document.cookie") == "",
              "logging in with the token sets an HttpOnly, SameSite=Strict cookie the page's script cannot read",
              cookies)

        # ---- launch from the generated form ----
        b.get(base + "#/runbook/live")
        form = b.wait_for("#launch")
        types = b.js("return [...document.querySelectorAll('#launch [data-type]')].map(i => i.name + ':' + i.dataset.type + ':' + i.type)")
        check(types == ["pause:duration:text", "note:string:text"],
              "the launch form is generated from the runbook's param declarations", types)
        b.js("document.getElementById('flash').replaceChildren()")
        b.type(b.find("#p-pause"), "soon")
        b.click(b.find("#launch button[type=submit]"))
        err = b.wait_until("const e = document.querySelector('#flash div.error'); return e && e.textContent")
        check("pause" in err and b.js("return location.hash") == "#/runbook/live",
              "a param of the wrong type is refused with the CLI's message, and no run is made", err)
        b.screenshot("02-launch-refused")
        b.type(b.find("#p-pause"), "3s")
        b.type(b.find("#p-note"), "from the browser")
        b.click(b.find("#launch button[type=submit]"))
        b.wait_until("return /^#\\/run\\/\\d+$/.test(location.hash)", timeout=20)
        run = int(b.js("return location.hash.split('/')[2]"))
        check(show(c, run).get("actor") == "ann@console", "the launch is recorded as ann@console", show(c, run))

        # ---- the live timeline grows ----
        b.wait_for("#timeline tr")
        counts = []
        t0 = time.time()
        while time.time() - t0 < 25:
            n = b.js("return document.querySelectorAll('#timeline tr').length")
            if not counts or n != counts[-1]:
                counts.append(n)
            if b.js("return !!document.querySelector('#timeline tr[data-kind=approval_requested]')"):
                break
            time.sleep(0.2)
        n = b.js("return document.querySelectorAll('#timeline tr').length")
        if n != counts[-1]:
            counts.append(n)
        b.screenshot("03-run-live")
        kinds = b.js("return [...document.querySelectorAll('#timeline tr')].map(r => r.dataset.kind)")
        check(len(counts) >= 2 and counts == sorted(counts) and counts[-1] > counts[0] and "wait_started" in kinds and kinds[-1] in
              ("approval_requested", "run_status"),
              "the run page's timeline grows while the run executes, without a reload", (counts, kinds))
        b.wait_until("return document.getElementById('run-status') && document.getElementById('run-status').textContent === 'waiting'")
        b.wait_until("return document.getElementById('prompt') && document.getElementById('prompt').textContent !== ''")
        prompt = b.js("return document.getElementById('prompt').textContent")
        check(b.find("#approve") is not None and prompt == f"Finish run {run}?",
              "a waiting run shows its approval's question and form to an operator", prompt)

        # ---- approve through the form ----
        comment = "ok <img src=x class=pwn onerror=\"window.__xss='comment'\">"
        b.type(b.find("#comment"), comment)
        b.screenshot("04-approve-form")
        b.click(b.find("#approve"))
        try:
            b.wait_until("return !!document.querySelector('#timeline tr[data-kind=run_finished]')", timeout=40)
        except TimeoutError as e:
            b.screenshot("05-timeout")
            print("FAIL the run finishes after the approval: " + str(e)[:200] + " | status " + str(show(c, run).get("status"))
                  + " | flash " + str(b.js("return document.getElementById('flash').textContent"))
                  + " | kinds " + str(b.js("return [...document.querySelectorAll('#timeline tr')].map(r => r.dataset.kind)")))
            raise
        b.wait_until("return document.getElementById('live').textContent === 'ended'", timeout=20)
        b.screenshot("05-run-finished")
        rec = show(c, run)
        log = [json.loads(l) for l in c.cli("log", str(run), "--json").stdout.splitlines() if l.strip()]
        dec = [e for e in log if e["kind"] == "approval_decided"]
        check(rec.get("status") == "succeeded" and dec and dec[0]["data"]["by"] == "ann@console"
              and dec[0]["data"]["decision"] == "approved" and dec[0]["data"]["comment"] == comment,
              "approved through the form: the run finished, with ann@console as the approver and the comment kept",
              (rec.get("status"), dec))
        text = b.js("return document.getElementById('run-status').textContent")
        check(text == "succeeded", "the run page shows the outcome", text)
        st = b.js(PWNED)
        shown = b.js("return document.getElementById('timeline').textContent")
        check(not st["xss"] and not st["pwn"] and comment in shown and b.alert_text() is None,
              "the comment is shown as text, inert", (st, shown[-300:]))

        # ---- hostile text everywhere ----
        b.get(base + "#/runbooks")
        b.wait_for("#runbooks")
        b.get(base + "#/runbook/xss")
        b.wait_for("#launch")
        st = b.js(PWNED)
        title = b.js("return document.getElementById('rb-title').textContent")
        desc = b.js("return document.getElementById('rb-description').textContent")
        dflt = b.js("return document.getElementById('p-note').value")
        check(not st["xss"] and not st["pwn"] and "<img src=x" in title and "<script>" in desc and "<img" in dflt,
              "a runbook's title, description and param default are shown as text, inert", (st, title, desc, dflt))
        b.click(b.find("#launch button[type=submit]"))
        b.wait_until("return /^#\\/run\\/\\d+$/.test(location.hash)", timeout=20)
        xrun = int(b.js("return location.hash.split('/')[2]"))
        b.wait_until("return !!document.querySelector('#timeline tr[data-kind=approval_requested]')", timeout=40)
        time.sleep(0.5)
        b.screenshot("06-xss-run")
        st = b.js(PWNED)
        page = b.js("return document.getElementById('main').textContent")
        check(not st["xss"] and not st["pwn"] and "<svg class=pwn" in page and "<iframe class=pwn" in page
              and "window.__xss='param'" in page and b.alert_text() is None,
              "params, a step's output and an approval prompt are shown as text, inert", (st, page[-400:]))
        frame = b.js("const f = document.querySelector('iframe.report'); return f ? f.getAttribute('sandbox') : null")
        check(frame == "", "the run's report is shown in a frame sandboxed of all script", frame)
        b.get(base + "#/")
        b.wait_for("#runs")
        st = b.js(PWNED)
        check(not st["xss"] and not st["pwn"], "the active runs page stays inert with hostile runs in it", st)

        # ---- an operator has no audit page; logging out ends the session ----
        audit_hidden = b.js("return document.getElementById('nav-audit').hidden")
        b.click(b.find("#logout"))
        b.wait_for("#token")
        left = [k for k in b.cookies() if k["name"] == "rbk_session" and k.get("value")]
        check(audit_hidden is True and not left, "an operator sees no audit page; logout clears the session", left)

        # ---- an auditor verifies the chain ----
        b.type(b.find("#token"), auditor)
        b.click(b.find("#login button[type=submit]"))
        b.wait_until("return document.getElementById('who').textContent.includes('audrey')")
        b.get(base + "#/audit")
        try:
            b.wait_until("return document.querySelector('#verify .status') !== null", timeout=30)
        except TimeoutError:
            print("FAIL the audit page shows a verdict: " + str(b.js("return document.getElementById('main').textContent")))
            raise
        verdict = b.js("return document.querySelector('#verify').textContent")
        b.get(base + f"#/run/{xrun}")
        b.wait_for("#run-status")
        acts = b.find("#approve")
        b.screenshot("07-audit")
        check("The chain is intact." in verdict and acts is None,
              "an auditor verifies the chain from the audit page, and is offered no action on a waiting run",
              (verdict, acts))
    c.cli("abort", str(xrun))
shots = sorted(f for f in os.listdir(ARTIFACTS) if f.endswith(".png"))
check(len(shots) >= 7 and all(os.path.getsize(os.path.join(ARTIFACTS, f)) > 2000 for f in shots),
      f"screenshots kept in {ARTIFACTS}", shots)
