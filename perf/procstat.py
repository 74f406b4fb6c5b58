"""Shared by the perf scripts that drive a daemon: its HTTP API and what /proc says of a
process. Imported with `sys.path.insert(0, "perf")` from the repository root."""
import json
import os
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")


def call(api, method, path, body=None):
    """One API call with a JSON body (or none); the parsed answer, or None if empty."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def cpu_s(pid):
    """CPU seconds the process used so far (utime + stime)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def mem_kib(pid):
    """(VmRSS, RssAnon) of the process, KiB."""
    f = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(f["VmRSS"].split()[0]), int(f["RssAnon"].split()[0])
