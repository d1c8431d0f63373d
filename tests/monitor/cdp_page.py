"""Loads the monitor's page in headless Chromium over the DevTools protocol.

    cdp_page.py CHROMIUM URL SHOT.png PROFILE_DIR

Waits (in real time, up to 90 s) until the page's script has drawn its parts
from the monitor's pushes: the live plots, a metrics plot, the map and the
spike raster, with the state "running"; then takes a 1300x1800 screenshot
and prints every console message, uncaught exception and error/warning log
entry the page produced, one per line as "CONSOLE: ...". Prints "ready" or
"not ready: ..." last. Used by tests/monitor/test_monitor.c.
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

import websocket

chromium, url, shot, profile = sys.argv[1:5]
proc = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--remote-debugging-port=0", "--user-data-dir=" + profile, "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    port_file = os.path.join(profile, "DevToolsActivePort")
    for _ in range(900):
        if os.path.exists(port_file) and len(open(port_file).read().split()) >= 2:
            break
        time.sleep(0.1)
    port = int(open(port_file).read().split()[0])
    targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json" % port, timeout=30))
    page = next(t for t in targets if t["type"] == "page")
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
    events, next_id = [], [0]

    def call(method, **params):
        next_id[0] += 1
        ws.send(json.dumps({"id": next_id[0], "method": method, "params": params}))
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == next_id[0]:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m["result"]
            events.append(m)

    for domain in ("Runtime", "Log", "Page"):
        call(domain + ".enable")
    call("Emulation.setDeviceMetricsOverride", width=1300, height=1800, deviceScaleFactor=1, mobile=False)
    call("Page.navigate", url=url)
    probe = ("document.querySelectorAll('#live .uplot').length === 3 && "
             "document.querySelectorAll('#metrics .uplot').length > 0 && "
             "document.querySelector('#map canvas') && document.querySelector('#raster canvas') ? "
             "document.getElementById('state').textContent : 'waiting'")
    state, deadline = "waiting", time.time() + 90
    while time.time() < deadline:
        state = call("Runtime.evaluate", expression=probe, returnByValue=True)["result"].get("value")
        if state != "waiting":
            break
        time.sleep(0.25)
    time.sleep(1.0)  # a few more pushes: the plots get more than one point
    data = call("Page.captureScreenshot", format="png")["data"]
    with open(shot, "wb") as f:
        f.write(base64.b64decode(data))
    call("Runtime.evaluate", expression="1")  # collect the events that came meanwhile
    for e in events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled":
            print("CONSOLE: %s %s" % (p.get("type"), [a.get("value", a.get("description")) for a in p.get("args", [])]))
        elif e.get("method") == "Runtime.exceptionThrown":
            print("CONSOLE: exception %s" % p.get("exceptionDetails", {}).get("exception", {}).get("description"))
        elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            print("CONSOLE: log %s %s" % (p["entry"]["level"], p["entry"].get("text")))
    print("ready" if state == "running" else "not ready: the page's state is %r" % state)
finally:
    proc.kill()
    proc.wait()
