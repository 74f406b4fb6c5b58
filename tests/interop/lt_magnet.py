"""libtorrent on 127.0.0.1 for the magnet / ut_metadata interop tests (run with /usr/bin/python3).

usage: lt_magnet.py seed TORRENT SAVE_DIR [--dht BOOTSTRAP_IP:PORT]
           Seeds TORRENT from SAVE_DIR. Prints "LISTEN <port>", "MAGNET <uri>" (info hash only,
           as libtorrent writes it, minus trackers) and "SEEDING" once it has every piece; runs
           until killed. Serves metadata (ut_metadata) to anyone who asks. With --dht it runs
           libtorrent's DHT (loopback addresses allowed), bootstraps from that node and
           announces the torrent every 3 s once seeding.
       lt_magnet.py fetch MAGNET SAVE_DIR PEER_IP:PORT [--download] [--save-torrent FILE]
           Adds MAGNET, connects to PEER, prints "METADATA <size> <info-hash-hex> <name>" when
           the info dictionary arrived (and, with --save-torrent, writes it as a .torrent);
           with --download it goes on and prints "DONE" when complete. Exit 0 on success,
           1 after the timeout.
LSD, UPnP, NAT-PMP and trackers are off (the DHT too unless asked for): peers are connected
directly. uTP is off (our
client speaks TCP). Alerts go to stderr.
"""
import sys
import time

import libtorrent as lt

TIMEOUT = 120


def session(dht_bootstrap=None):
    dht = {
        "enable_dht": True,
        "dht_bootstrap_nodes": dht_bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
    } if dht_bootstrap else {"enable_dht": False}
    return lt.session({
        **dht,
        "listen_interfaces": "127.0.0.1:0",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.peer_notification
        | lt.alert.category_t.status_notification,
    })


def flags(dht=False):
    f = (lt.torrent_flags.default_flags | lt.torrent_flags.override_trackers
         | lt.torrent_flags.disable_lsd) \
        & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    return f if dht else f | lt.torrent_flags.disable_dht


def print_listen(ses):
    for _ in range(200):
        if ses.listen_port():
            break
        time.sleep(0.05)
    print("LISTEN", ses.listen_port(), flush=True)


def drain(ses):
    for a in ses.pop_alerts():
        print("alert:", a.message(), file=sys.stderr, flush=True)


def seed(torrent, save, dht_bootstrap):
    ses = session(dht_bootstrap)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    atp.trackers = []
    atp.flags = flags(dht_bootstrap is not None)
    h = ses.add_torrent(atp)
    print_listen(ses)
    magnet = "magnet:?xt=urn:btih:" + str(atp.ti.info_hashes().v1)
    print("MAGNET", magnet, flush=True)
    said = False
    next_announce = 0
    while True:
        drain(ses)
        if h.status().is_seeding and not said:
            said = True
            print("SEEDING", flush=True)
        if said and dht_bootstrap and time.time() > next_announce:
            # Often: the test's DHT is one node that may not have answered yet.
            next_announce = time.time() + 3
            h.force_dht_announce()
        time.sleep(0.1)


def fetch(magnet, save, peer, download, save_torrent):
    ses = session()
    atp = lt.parse_magnet_uri(magnet)
    atp.save_path = save
    atp.trackers = []
    atp.flags = flags()
    if not download:
        # Metadata only: no piece requests once the info dictionary is known.
        atp.flags |= lt.torrent_flags.upload_mode
    h = ses.add_torrent(atp)
    print_listen(ses)
    host, port = peer.rsplit(":", 1)
    endpoint = (host.strip("[]"), int(port))
    h.connect_peer(endpoint)
    start = last_connect = time.time()
    have_meta = False
    while time.time() - start < TIMEOUT:
        drain(ses)
        st = h.status()
        if st.has_metadata and not have_meta:
            have_meta = True
            ti = h.torrent_file()
            print("METADATA", len(ti.info_section()), str(ti.info_hashes().v1), ti.name(), flush=True)
            if save_torrent:
                with open(save_torrent, "wb") as f:
                    f.write(lt.bencode(lt.create_torrent(ti).generate()))
            if not download:
                sys.exit(0)
        if download and st.is_seeding:
            print("DONE", flush=True)
            sys.exit(0)
        if st.num_peers == 0 and time.time() - last_connect > 2:
            last_connect = time.time()
            h.connect_peer(endpoint)
        time.sleep(0.1)
    st = h.status()
    print("timeout; state", st.state, "has_metadata", st.has_metadata, "progress", st.progress,
          file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) >= 3 and argv[0] == "seed":
        rest = argv[3:]
        dht = rest[rest.index("--dht") + 1] if "--dht" in rest else None
        seed(argv[1], argv[2], dht)
    elif len(argv) >= 4 and argv[0] == "fetch":
        rest = argv[4:]
        save_torrent = None
        if "--save-torrent" in rest:
            i = rest.index("--save-torrent")
            save_torrent = rest[i + 1]
        fetch(argv[1], argv[2], argv[3], "--download" in rest, save_torrent)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
