"""An *arr-style cycle through the real PyPI qbittorrent-api client against our daemon's
qBittorrent Web API v2 (driven by tests/qbittorrent_api.rs, which checks the disk).

Logs in (and is refused with a wrong password), adds one torrent by magnet link (URL) and one
by .torrent file, watches them through torrents/info and sync/maindata deltas until both
downloads from the real seeders complete, reads files, properties and trackers, sets limits,
pauses, resumes, and deletes the file-added torrent with its data. Every step asserts on what
the client returns; the last line printed is a JSON summary for the Rust side.
"""

import argparse
import json
import sys
import time

import qbittorrentapi


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--magnet", required=True, help="magnet link of torrent A (names its peer)")
    p.add_argument("--magnet-hash", required=True)
    p.add_argument("--torrent", required=True, help=".torrent file of torrent B")
    p.add_argument("--torrent-hash", required=True)
    p.add_argument("--peer", required=True, help="host:port seeding torrent B")
    p.add_argument("--timeout", type=float, default=180)
    return p.parse_args()


def client(url, password):
    return qbittorrentapi.Client(
        host=url,
        username="admin",
        password=password,
        FORCE_SCHEME_FROM_HOST=True,
        REQUESTS_ARGS={"timeout": 30},
    )


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    a = parse()
    steps = []

    # A wrong password is refused (qBittorrent 4.6 answers "Fails.").
    wrong = client(a.url, a.password + "-wrong")
    try:
        wrong.auth_log_in()
        raise AssertionError("a wrong password logged in")
    except qbittorrentapi.LoginFailed:
        steps.append("wrong password refused")

    qbt = client(a.url, a.password)
    qbt.auth_log_in()
    check(qbt.is_logged_in, "not logged in after auth_log_in")
    check(qbt.app.version == "v4.6.7", f"app version {qbt.app.version!r}")
    check(qbt.app.web_api_version == "2.9.3", f"web API {qbt.app.web_api_version!r}")
    prefs = qbt.app.preferences
    check(prefs["save_path"] == qbt.app.default_save_path, f"save path {prefs['save_path']!r}")
    steps.append("logged in")

    # Categories, as an *arr tool sets them up: one per kind, each with its save path. An
    # add into a category that does not exist fails and adds nothing.
    qbt.torrents_create_category(name="tv", save_path="tv")
    qbt.torrents_create_category(name="movies", save_path="movies")
    cats = qbt.torrents_categories()
    check(set(cats) == {"tv", "movies"}, f"categories {cats!r}")
    check(cats["tv"]["savePath"].endswith("/tv"), f"tv save path {cats['tv']!r}")
    try:
        qbt.torrents_add(urls=a.magnet, category="nosuch")
        raise AssertionError("an add into a missing category was accepted")
    except qbittorrentapi.Conflict409Error:
        pass
    check(qbt.torrents_info() == [], "a refused add left a torrent behind")
    steps.append("categories")

    # Add by URL (a magnet link naming its peer) and by file, each into its category.
    r = qbt.torrents_add(urls=a.magnet, category="tv")
    check(r == "Ok.", f"add by magnet answered {r!r}")
    with open(a.torrent, "rb") as f:
        r = qbt.torrents_add(torrent_files=f.read(), category="movies", tags="arr,hd",
                             is_sequential_download=True)
    check(r == "Ok.", f"add by file answered {r!r}")
    # The same torrent again fails, as in qBittorrent.
    with open(a.torrent, "rb") as f:
        r = qbt.torrents_add(torrent_files=f.read(), category="movies")
    check(r == "Fails.", f"a duplicate add answered {r!r}")
    added = qbt.torrents_add_peers(peers=[a.peer], torrent_hashes=a.torrent_hash)
    check(a.torrent_hash in added, f"addPeers answered {added!r}")
    steps.append("added by magnet and by file")

    # Watch: sync/maindata (full, then deltas by rid) and torrents/info until both complete.
    full = qbt.sync_maindata()
    check(full["full_update"] is True, "the first maindata is not a full update")
    check(set(full["torrents"]) == {a.magnet_hash, a.torrent_hash}, f"maindata torrents {list(full['torrents'])}")
    rid = full["rid"]
    deltas = 0
    progress_seen = set()
    deadline = time.monotonic() + a.timeout
    while True:
        d = qbt.sync_maindata(rid=rid)
        check(d.get("full_update") is False, f"maindata with rid {rid} was a full update")
        check(d["rid"] > rid, "rid did not advance")
        rid = d["rid"]
        for h, t in d.get("torrents", {}).items():
            deltas += 1
            if "progress" in t:
                progress_seen.add(round(t["progress"], 3))
        infos = {t.hash: t for t in qbt.torrents_info()}
        if all(infos[h].progress >= 1.0 and infos[h].state in ("uploading", "stalledUP")
               for h in (a.magnet_hash, a.torrent_hash)):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"not complete in time: {[(t.name, t.state, t.progress) for t in infos.values()]}")
        time.sleep(0.5)
    check(deltas > 0, "no torrent delta between the full update and completion")
    steps.append("both complete")

    # Filters, sort, hashes.
    seeding = qbt.torrents_info(status_filter="seeding", sort="name")
    check({t.hash for t in seeding} == {a.magnet_hash, a.torrent_hash}, "seeding filter")
    check([t.name for t in seeding] == sorted(t.name for t in seeding), "sort by name")
    check(qbt.torrents_info(status_filter="downloading") == [], "downloading filter")
    one = qbt.torrents_info(torrent_hashes=a.torrent_hash)
    check(len(one) == 1 and one[0].hash == a.torrent_hash, "hashes filter")
    check([t.hash for t in qbt.torrents_info(category="tv")] == [a.magnet_hash], "category filter")
    check([t.hash for t in qbt.torrents_info(tag="hd")] == [a.torrent_hash], "tag filter")
    check(sorted(qbt.torrents_tags()) == ["arr", "hd"], f"tags {qbt.torrents_tags()!r}")
    b = one[0]
    check(b.category == "movies" and b.tags == "arr, hd" and b.seq_dl is True, f"B {b!r}")
    check(b.save_path.endswith("/movies"), f"B's save path {b.save_path!r}")
    qbt.torrents_remove_tags(tags="hd", torrent_hashes=a.torrent_hash)
    qbt.torrents_toggle_sequential_download(torrent_hashes=a.torrent_hash)
    b = qbt.torrents_info(torrent_hashes=a.torrent_hash)[0]
    check(b.tags == "arr" and b.seq_dl is False, f"B after untag and toggle {b!r}")

    # Files, properties, trackers of the file-added torrent.
    files = qbt.torrents_files(torrent_hash=a.torrent_hash)
    check(len(files) > 0 and all(f.progress == 1 for f in files), f"files {files!r}")
    props = qbt.torrents_properties(torrent_hash=a.torrent_hash)
    check(props.pieces_have == props.pieces_num > 0, f"properties {props!r}")
    check(props.save_path.endswith("/movies"), f"save_path {props.save_path!r}")
    trackers = qbt.torrents_trackers(torrent_hash=a.magnet_hash)
    check([t.url for t in trackers[:3]] == ["** [DHT] **", "** [PeX] **", "** [LSD] **"], f"trackers {trackers!r}")
    try:
        qbt.torrents_properties(torrent_hash="0" * 40)
        raise AssertionError("properties of an unknown hash answered")
    except qbittorrentapi.NotFound404Error:
        pass
    steps.append("files, properties, trackers")

    # Limits: per torrent and global.
    qbt.torrents_set_download_limit(limit=1_000_000, torrent_hashes=a.torrent_hash)
    qbt.torrents_set_upload_limit(limit=500_000, torrent_hashes=a.torrent_hash)
    check(qbt.torrents_download_limit(torrent_hashes=a.torrent_hash)[a.torrent_hash] == 1_000_000, "dl limit")
    check(qbt.torrents_upload_limit(torrent_hashes=a.torrent_hash)[a.torrent_hash] == 500_000, "up limit")
    check(qbt.torrents_properties(torrent_hash=a.torrent_hash).dl_limit == 1_000_000, "properties dl_limit")
    qbt.app_set_preferences({"dl_limit": 2_000_000, "max_ratio_enabled": True, "max_ratio": 5})
    prefs = qbt.app_preferences()
    check(prefs["dl_limit"] == 2_000_000 and prefs["max_ratio"] == 5, f"preferences {prefs!r}")
    check(qbt.transfer_info()["dl_rate_limit"] == 2_000_000, "transfer dl_rate_limit")
    try:
        qbt.app_set_preferences({"save_path": "/elsewhere"})
        raise AssertionError("save_path was changed")
    except qbittorrentapi.Conflict409Error:
        pass
    qbt.app_set_preferences({"dl_limit": 0, "max_ratio_enabled": False})
    steps.append("limits")

    # Re-check: every piece verifies again; then move B's data inside the root.
    qbt.torrents_recheck(torrent_hashes=a.magnet_hash)
    deadline = time.monotonic() + a.timeout
    while True:
        t = qbt.torrents_info(torrent_hashes=a.magnet_hash)[0]
        if t.progress >= 1.0 and t.state in ("uploading", "stalledUP"):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"re-check did not end: {t.state} {t.progress}")
        time.sleep(0.2)
    qbt.torrents_set_location(location="archive", torrent_hashes=a.torrent_hash)
    deadline = time.monotonic() + a.timeout
    while True:
        t = qbt.torrents_info(torrent_hashes=a.torrent_hash)[0]
        if t.save_path.endswith("/archive") and t.state != "moving":
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"not moved: {t.save_path} {t.state}")
        time.sleep(0.2)
    steps.append("re-checked and moved")

    # Pause and resume.
    qbt.torrents_pause(torrent_hashes=a.torrent_hash)
    check(qbt.torrents_info(torrent_hashes=a.torrent_hash)[0].state == "pausedUP", "paused")
    check({t.hash for t in qbt.torrents_info(status_filter="paused")} == {a.torrent_hash}, "paused filter")
    qbt.torrents_resume(torrent_hashes=a.torrent_hash)
    state = qbt.torrents_info(torrent_hashes=a.torrent_hash)[0].state
    check(state in ("uploading", "stalledUP", "checkingUP"), f"resumed: {state}")
    steps.append("paused and resumed")

    # Delete with data.
    qbt.torrents_delete(delete_files=True, torrent_hashes=a.torrent_hash)
    left = {t.hash for t in qbt.torrents_info()}
    check(left == {a.magnet_hash}, f"after delete: {left}")
    d = qbt.sync_maindata(rid=rid)
    check(a.torrent_hash in d.get("torrents_removed", []), f"maindata after delete: {d!r}")
    steps.append("deleted with data")

    qbt.auth_log_out()
    print(json.dumps({"steps": steps, "progress_seen": sorted(progress_seen)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
