"""A libtorrent peer that finds its peers by Local Service Discovery only (tests/lsd.rs).

usage: lt_lsd.py seed|leech TORRENT SAVE_DIR LISTEN_IP
Listens on LISTEN_IP (a veth address in a network namespace, IPv4 or IPv6), with LSD on and the DHT,
trackers, UPnP, NAT-PMP and PEX off, and announces every 5 s (libtorrent's
local_service_announce_interval; 5 min by default). A seeder never dials out. Prints "LISTEN <port>", then "SEEDING"
once it has every piece (seed; runs until killed) or "DONE" when the download is complete
(leech; exit 0), "LSD_PEER <libtorrent's message, naming the peer>" for each announce it took from LSD, and
"PEER <ip:port> <source flags>" for each peer it is connected to (or "PEER <message>"
for an incoming connection, as it arrives); exit 1 after the timeout.
"""
import sys
import time

import libtorrent as lt

mode, torrent, save, listen_ip = sys.argv[1:5]
timeout = 120 if mode == "leech" else 600

ses = lt.session({
    "listen_interfaces": f"[{listen_ip}]:0" if ":" in listen_ip else f"{listen_ip}:0",
    "enable_dht": False,
    "enable_lsd": True,
    "local_service_announce_interval": 5,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    # A seeder waits to be dialled: a download then proves the leecher found it.
    "seeding_outgoing_connections": mode != "seed",
    "alert_mask": lt.alert.category_t.error_notification
    | lt.alert.category_t.peer_notification
    | lt.alert.category_t.status_notification,
})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = save
atp.trackers = []
atp.flags = (lt.torrent_flags.default_flags | lt.torrent_flags.override_trackers
             | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_pex) \
    & ~lt.torrent_flags.disable_lsd & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
h = ses.add_torrent(atp)
for _ in range(200):
    if ses.listen_port():
        break
    time.sleep(0.05)
print("LISTEN", ses.listen_port(), flush=True)

seen = set()
deadline = time.time() + timeout
announced_done = False
while time.time() < deadline:
    for a in ses.pop_alerts():
        if isinstance(a, (lt.listen_failed_alert, lt.lsd_error_alert)):
            print("ERROR", a.message(), flush=True)
        elif a.what() == "incoming_connection":
            # A connection may be over before the next get_peer_info(): say so at once.
            print("PEER", a.message(), flush=True)
        elif a.what() == "lsd_peer":
            # Not bound as a class of its own in python3-libtorrent 2.0, so no endpoint
            # field: its message names the peer.
            print("LSD_PEER", a.message(), flush=True)
    for p in h.get_peer_info():
        key = f"{p.ip[0]}:{p.ip[1]}"
        if key not in seen:
            seen.add(key)
            print("PEER", key, int(p.source), flush=True)
    s = h.status()
    if s.is_seeding and not announced_done:
        announced_done = True
        print("SEEDING" if mode == "seed" else "DONE", flush=True)
        if mode == "leech":
            sys.exit(0)
    time.sleep(0.1)
print("TIMEOUT", h.status().progress, flush=True)
sys.exit(1)
