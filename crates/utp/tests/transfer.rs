//! Two connections over a simulated link: byte-exact transfers on clean, lossy and reordering
//! links, across the sequence-number wrap, against hostile sequence and acknowledgement
//! numbers, and against a peer that never acknowledges.

mod sim;

use std::time::Duration;

use bt_utp::{encode, Config, Header, PacketType, State, UtpError};
use sim::{data, transfer, Link, Pair};

#[test]
fn clean_link_both_ways_byte_exact() {
    let mut p = Pair::new(1, 20_000, Link::clean(), Config::default(), 1);
    let (ab, ba) = (data(3 << 20, 1), data(700_000, 2));
    let (at_b, at_a) = transfer(&mut p, &ab, &ba, 200_000);
    assert!(at_b == ab && at_a == ba);
    assert_eq!(p.a.stats().retransmits, 0);
    assert!(p.a.rtt().is_some());
}

#[test]
fn lossy_reordering_link_byte_exact() {
    for (seed, loss) in [(3, 0.02), (4, 0.1), (5, 0.25)] {
        let mut p = Pair::new(100, 9, Link::lossy(loss), Config::default(), seed);
        let (ab, ba) = (data(600_000, seed), data(200_000, seed + 100));
        let (at_b, at_a) = transfer(&mut p, &ab, &ba, 2_000_000);
        assert!(at_b == ab, "A→B differs at loss {loss}");
        assert!(at_a == ba, "B→A differs at loss {loss}");
        let s = p.a.stats();
        assert!(
            s.retransmits > 0,
            "a lossy link needs retransmissions: {s:?}"
        );
    }
}

#[test]
fn sequence_numbers_wrap() {
    // Both sides start 40 packets below the wrap; 1 MB is ~750 packets each way.
    let mut p = Pair::new(0xffd8, 0xffd8, Link::lossy(0.05), Config::default(), 6);
    let (ab, ba) = (data(1_000_000, 7), data(1_000_000, 8));
    let (at_b, at_a) = transfer(&mut p, &ab, &ba, 2_000_000);
    assert!(at_b == ab && at_a == ba);
}

#[test]
fn close_ends_both_sides_cleanly() {
    let mut p = Pair::new(0xfffe, 5, Link::lossy(0.1), Config::default(), 9);
    let (ab, ba) = (data(50_000, 10), data(10_000, 11));
    transfer(&mut p, &ab, &ba, 1_000_000);
    p.a.close();
    p.b().close();
    for _ in 0..100_000 {
        if p.a.is_closed() && p.b().is_closed() {
            break;
        }
        assert!(p.step());
    }
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.a.error(), None);
    assert_eq!(p.b().error(), None);
    assert!(p.a.is_eof() && p.b().is_eof());
}

fn header(ty: PacketType, conn_id: u16, seq_nr: u16, ack_nr: u16) -> Header {
    Header {
        ty,
        conn_id,
        timestamp_us: 0,
        timestamp_diff_us: 0,
        wnd_size: 1 << 20,
        seq_nr,
        ack_nr,
    }
}

#[test]
fn bad_sequence_and_ack_numbers_are_dropped() {
    let cfg = Config::default();
    let mut p = Pair::new(500, 7000, Link::clean(), cfg.clone(), 12);
    let first = data(20_000, 13);
    transfer(&mut p, &first, &[], 10_000);
    let conn_id = p.b().recv_id();
    let next_seq = 500u16.wrapping_add(1 + 20_000u16.div_ceil(1344));
    let mut bytes = Vec::new();

    // Acknowledges a packet B never sent: dropped, its data not taken.
    encode(
        &header(PacketType::Data, conn_id, next_seq, 7000 + 5000),
        None,
        b"forged",
        &mut bytes,
    );
    p.inject_to_b(&bytes);
    assert_eq!(p.b().stats().bad_acks, 1);
    assert_eq!(p.b().readable(), 0);

    // Far past the reorder window (and half the sequence space away): dropped.
    for far in [cfg.max_reorder + 1, 0x7fff] {
        bytes.clear();
        encode(
            &header(PacketType::Data, conn_id, next_seq.wrapping_add(far), 6999),
            None,
            &[0xaa; 1000],
            &mut bytes,
        );
        p.inject_to_b(&bytes);
    }
    assert_eq!(p.b().stats().out_of_window, 1);
    assert_eq!(p.b().stats().duplicates, 1, "0x7fff back is an old packet");
    assert_eq!(p.b().readable(), 0);
    assert_eq!(p.b().buffered(), 0);

    // A FIN far ahead is no FIN, and old duplicates change nothing.
    bytes.clear();
    encode(
        &header(PacketType::Fin, conn_id, next_seq.wrapping_add(3000), 6999),
        None,
        &[],
        &mut bytes,
    );
    p.inject_to_b(&bytes);
    assert!(!p.b().is_eof());

    // The honest transfer goes on byte-exact.
    let second = data(300_000, 14);
    let (at_b, _) = transfer(&mut p, &second, &[], 100_000);
    assert!(at_b == second);
    assert!(!p.a.is_closed() && !p.b().is_closed());
}

#[test]
fn a_peer_that_never_acknowledges_is_given_up_with_bounded_memory() {
    let cfg = Config::default();
    let mut p = Pair::new(1, 2, Link::clean(), cfg.clone(), 15);
    transfer(&mut p, b"hello", b"", 1000);
    p.link.cut_to_a = true;
    let src = data(4 << 20, 16);
    let mut sent = 0;
    let mut steps = 0;
    while !p.a.is_closed() {
        sent += p.a.write(&src[sent..]);
        assert!(p.a.buffered() <= cfg.send_buffer + cfg.recv_buffer);
        assert!(p.step());
        steps += 1;
        assert!(steps < 1_000_000, "never gave up");
    }
    assert_eq!(p.a.error(), Some(&UtpError::TimedOut(cfg.data_retries)));
    assert!(sent < src.len(), "the send buffer bounded what was taken");
    assert_eq!(p.a.buffered(), 0, "a closed connection holds nothing");
    assert_eq!(p.a.stats().timeouts, u64::from(cfg.data_retries) + 1);
}

#[test]
fn a_syn_nobody_answers_times_out() {
    let cfg = Config::default();
    let mut link = Link::clean();
    link.cut_to_b = true;
    let mut p = Pair::new(1, 2, link, cfg.clone(), 17);
    while !p.a.is_closed() {
        assert!(p.step());
    }
    assert_eq!(p.a.error(), Some(&UtpError::TimedOut(cfg.syn_retries)));
    assert_eq!(p.sent_to_b, u64::from(cfg.syn_retries) + 1);
}

#[test]
fn a_closed_window_stops_the_sender_until_read() {
    let cfg = Config {
        recv_buffer: 64 * 1024,
        ..Config::default()
    };
    let mut p = Pair::new(1, 2, Link::clean(), cfg.clone(), 18);
    transfer(&mut p, b"x", b"", 1000);
    let src = data(1 << 20, 19);
    let mut sent = 0;
    // B does not read: A may send no more than B's buffer holds.
    for _ in 0..5_000 {
        sent += p.a.write(&src[sent..]);
        if !p.step() {
            break;
        }
    }
    assert!(p.b().readable() <= cfg.recv_buffer);
    assert!(
        p.b().readable() > cfg.recv_buffer / 2,
        "the window was used"
    );
    // Reading reopens it; the rest arrives byte-exact.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    for _ in 0..1_000_000 {
        sent += p.a.write(&src[sent..]);
        let n = p.b().read(&mut buf);
        got.extend_from_slice(&buf[..n]);
        if got.len() == src.len() {
            break;
        }
        p.step();
    }
    assert!(
        got == src,
        "got {} of {}; A {:?} {:?}, B {:?}",
        got.len(),
        src.len(),
        p.a.state(),
        p.a.error().cloned(),
        p.b().state()
    );
}

#[test]
fn reset_closes_the_connection() {
    let mut p = Pair::new(1, 2, Link::clean(), Config::default(), 20);
    transfer(&mut p, b"hi", b"", 1000);
    p.b().abort();
    assert_eq!(p.b().error(), Some(&UtpError::Aborted));
    for _ in 0..100 {
        if p.a.is_closed() {
            break;
        }
        p.step();
    }
    assert_eq!(p.a.error(), Some(&UtpError::Reset));
    let _ = Duration::ZERO;
}

#[test]
fn ledbat_keeps_the_bottleneck_queue_near_its_target() {
    // 1 MB/s with a 2 MB buffer: a loss-driven sender would fill it (2 s of queue); LEDBAT
    // backs off at 100 ms of queuing delay.
    let rate = 1_000_000;
    let mut p = Pair::new(
        1,
        2,
        Link::bottleneck(rate, 2_000_000),
        Config::default(),
        21,
    );
    let src = data(8_000_000, 22);
    let (at_b, _) = transfer(&mut p, &src, &[], 5_000_000);
    assert!(at_b == src);
    let start = p.queue_delays[0].0;
    let elapsed = p.now - start;
    // Past the first seconds (slow start may overshoot once), the queue stays short.
    let settled: Vec<Duration> = p
        .queue_delays
        .iter()
        .filter(|(t, _)| *t - start > Duration::from_secs(3))
        .map(|(_, d)| *d)
        .collect();
    let worst = settled.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_millis(250),
        "queuing delay reached {worst:?} (LEDBAT targets 100 ms)"
    );
    // And the link stays used: at least 3/4 of its rate on average.
    let used = src.len() as f64 / elapsed.as_secs_f64();
    assert!(used > 0.75 * rate as f64, "only {used:.0} B/s of {rate}");
    assert_eq!(p.queue_drops, 0, "the queue never overflowed");
}

#[test]
fn many_seeds_with_loss_reordering_and_duplicates() {
    // Sixty links, each with its own loss (up to 30 %), jitter, duplication and starting
    // sequence numbers: the bytes arrive exact every time and both sides close cleanly.
    for seed in 100..160u64 {
        let mut link = Link::lossy((seed % 7) as f64 * 0.05);
        link.jitter = Duration::from_millis(seed % 25);
        link.duplicate = (seed % 3) as f64 * 0.1;
        let a_seq = (seed as u16).wrapping_mul(7919);
        let b_seq = 0xffffu16.wrapping_sub(seed as u16);
        // A SYN and its answer both get through a 30 % loss link only half the time: more
        // tries than the default 3 retransmissions, and a half-open B that waits as long as
        // A's first packets may take, so the handshake is not what fails here.
        let cfg = Config {
            syn_retries: 12,
            handshake_timeout: Duration::from_secs(300),
            ..Config::default()
        };
        let mut p = Pair::new(a_seq, b_seq, link, cfg, seed);
        let (ab, ba) = (data(120_000, seed), data(40_000, seed + 1000));
        let (at_b, at_a) = transfer(&mut p, &ab, &ba, 2_000_000);
        assert!(at_b == ab && at_a == ba, "seed {seed}: bytes differ");
        p.a.close();
        p.b().close();
        for _ in 0..200_000 {
            if p.a.is_closed() && p.b().is_closed() {
                break;
            }
            assert!(p.step());
        }
        assert_eq!(
            (p.a.error().cloned(), p.b().error().cloned()),
            (None, None),
            "seed {seed}: unclean close"
        );
    }
}
