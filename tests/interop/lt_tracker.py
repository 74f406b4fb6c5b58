"""A libtorrent peer that finds its peers only through trackers (tests/trackers.rs).

usage: lt_tracker.py seed|leech TORRENT SAVE_DIR TRACKER_URL [TRACKER_URL...]
Each URL is its own tier and libtorrent announces to all of them. Prints "LISTEN <port>",
"ANNOUNCED <url>" after each successful announce, "TRACKER_ERROR <url> <message>" on errors,
"SEEDING" once it has every piece (seed: runs until killed) or "DONE" (leech: exit 0); exit 1
after the timeout. DHT, LSD, UPnP, NAT-PMP and PEX are off and no peer is given by hand.
"""
import sys
import time

import libtorrent as lt

mode, torrent, save, urls = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
timeout = 120 if mode == "leech" else 600

ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "announce_to_all_tiers": True,
    "announce_to_all_trackers": True,
    # Trackers on 127.0.0.1 are what the tests use.
    "ssrf_mitigation": False,
    "alert_mask": lt.alert.category_t.error_notification
    | lt.alert.category_t.tracker_notification
    | lt.alert.category_t.status_notification,
})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = save
atp.trackers = urls
atp.tracker_tiers = list(range(len(urls)))
atp.flags = (lt.torrent_flags.default_flags | lt.torrent_flags.override_trackers
             | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
             | lt.torrent_flags.disable_pex) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
h = ses.add_torrent(atp)
for _ in range(200):
    if ses.listen_port():
        break
    time.sleep(0.05)
print("LISTEN", ses.listen_port(), flush=True)

start = time.time()
last_announce = start
said_seeding = False
while time.time() - start < timeout:
    for a in ses.pop_alerts():
        if isinstance(a, lt.tracker_reply_alert):
            print("ANNOUNCED", a.tracker_url(), a.num_peers, flush=True)
        elif isinstance(a, lt.tracker_error_alert):
            print("TRACKER_ERROR", a.tracker_url(), a.message(), flush=True)
        else:
            print("alert:", a.message(), file=sys.stderr, flush=True)
    st = h.status()
    if st.is_seeding and mode == "leech":
        print("DONE", flush=True)
        sys.exit(0)
    if st.is_seeding and not said_seeding:
        said_seeding = True
        print("SEEDING", flush=True)
    # A leecher without peers asks again soon (the tracker may not have had the seeder yet).
    if mode == "leech" and st.num_peers == 0 and time.time() - last_announce > 2:
        last_announce = time.time()
        h.force_reannounce()
    time.sleep(0.1)
print("timeout; state", h.status().state, "progress", h.status().progress, file=sys.stderr)
sys.exit(1)
