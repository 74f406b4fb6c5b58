"""libtorrent seeding a torrent on 127.0.0.1 and announcing it to the DHT (run with /usr/bin/python3).

usage: lt_dht_seed.py TORRENT SAVE_DIR BOOTSTRAP_IP:PORT
stdout: LISTEN <port>, SEEDING (has every piece), DHT_ANNOUNCED (a DHT announce went out);
        runs until killed. Loopback addresses are allowed in the DHT; trackers, LSD, UPnP,
        NAT-PMP and uTP are off, so the DHT is the only way to find it.
"""
import sys
import time

import libtorrent as lt

torrent, save, bootstrap = sys.argv[1:4]
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": True,
    "dht_bootstrap_nodes": bootstrap,
    "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False,
    "dht_prefer_verified_node_ids": False,
    "dht_ignore_dark_internet": False,
    "dht_announce_interval": 5,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "alert_mask": lt.alert.category_t.all_categories,
})
for _ in range(200):
    if ses.listen_port():
        break
    time.sleep(0.05)
print("LISTEN", ses.listen_port(), flush=True)
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = save
atp.trackers = []
atp.flags = (lt.torrent_flags.default_flags | lt.torrent_flags.override_trackers) \
    & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
h = ses.add_torrent(atp)
seeding = announced = False
next_announce = 0
while True:
    for a in ses.pop_alerts():
        if type(a).__name__ == "dht_reply_alert" and not announced:
            announced = True
            print("DHT_ANNOUNCED", flush=True)
        print("alert:", type(a).__name__, a.message(), file=sys.stderr, flush=True)
    if h.status().is_seeding and not seeding:
        seeding = True
        print("SEEDING", flush=True)
    if seeding and time.time() > next_announce:
        # Announce often: the test's DHT is one node that may not have answered yet.
        next_announce = time.time() + 3
        h.force_dht_announce()
    time.sleep(0.1)
