"""libtorrent on 127.0.0.1 for the magnet / ut_metadata interop tests (run with /usr/bin/python3).

usage: lt_magnet.py seed TORRENT SAVE_DIR
           Seeds TORRENT from SAVE_DIR. Prints "LISTEN <port>", "MAGNET <uri>" (info hash only,
           as libtorrent writes it, minus trackers) and "SEEDING" once it has every piece; runs
           until killed. Serves metadata (ut_metadata) to anyone who asks.
       lt_magnet.py fetch MAGNET SAVE_DIR PEER_IP:PORT [--download] [--save-torrent FILE]
           Adds MAGNET, connects to PEER, prints "METADATA <size> <info-hash-hex> <name>" when
           the info dictionary arrived (and, with --save-torrent, writes it as a .torrent);
           with --download it goes on and prints "DONE" when complete. Exit 0 on success,
           1 after the timeout.
DHT, LSD, UPnP, NAT-PMP and trackers are off: peers are connected directly. uTP is off (our
client speaks TCP). Alerts go to stderr.
"""
import sys
import time

import libtorrent as lt

TIMEOUT = 120


def session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
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


def flags():
    return (lt.torrent_flags.default_flags | lt.torrent_flags.override_trackers
            | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd) \
        & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused


def print_listen(ses):
    for _ in range(200):
        if ses.listen_port():
            break
        time.sleep(0.05)
    print("LISTEN", ses.listen_port(), flush=True)


def drain(ses):
    for a in ses.pop_alerts():
        print("alert:", a.message(), file=sys.stderr, flush=True)


def seed(torrent, save):
    ses = session()
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    atp.trackers = []
    atp.flags = flags()
    h = ses.add_torrent(atp)
    print_listen(ses)
    magnet = "magnet:?xt=urn:btih:" + str(atp.ti.info_hashes().v1)
    print("MAGNET", magnet, flush=True)
    said = False
    while True:
        drain(ses)
        if h.status().is_seeding and not said:
            said = True
            print("SEEDING", flush=True)
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
        seed(argv[1], argv[2])
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
