//! Micro-benchmarks of the per-message hot path: parsing (whole and split input),
//! subject matching (literal, `*`, `>`, with 10k subscriptions), and MSG encoding.
//! Run: `cargo bench --bench hot_path` (criterion; HTML off, numbers on stdout).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shards::protocol::msg::encode_msg_line;
use shards::protocol::{Parsed, Parser};
use shards::subject::Sublist;

/// `count` PUBs of `size` bytes each, back to back, as a publisher's stream.
fn pub_stream(count: usize, size: usize, headers: bool) -> Vec<u8> {
    let payload = vec![b'x'; size];
    let mut out = Vec::new();
    for i in 0..count {
        if headers {
            let hdr = b"NATS/1.0\r\nX-Seq: 1\r\n\r\n";
            out.extend_from_slice(
                format!(
                    "HPUB bench.{} {} {}\r\n",
                    i % 8,
                    hdr.len(),
                    hdr.len() + size
                )
                .as_bytes(),
            );
            out.extend_from_slice(hdr);
        } else {
            out.extend_from_slice(format!("PUB bench.{} {size}\r\n", i % 8).as_bytes());
        }
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses `stream` delivered in pieces of `piece` bytes, as a connection would.
fn parse_all(stream: &[u8], piece: usize) -> usize {
    let mut parser = Parser::new(4096, 1 << 20);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut ops = 0;
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        while let Ok(Parsed::Op { consumed, .. }) = parser.parse(&buf[pos..]) {
            pos += consumed;
            ops += 1;
        }
        buf.drain(..pos);
    }
    ops
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for &size in &[16usize, 128, 1024] {
        let stream = pub_stream(1000, size, false);
        g.throughput(Throughput::Elements(1000));
        g.bench_with_input(
            BenchmarkId::new("PUB whole 64KiB reads", size),
            &stream,
            |b, s| b.iter(|| assert_eq!(parse_all(black_box(s), 64 * 1024), 1000)),
        );
        g.bench_with_input(
            BenchmarkId::new("PUB split 7-byte reads", size),
            &stream,
            |b, s| b.iter(|| assert_eq!(parse_all(black_box(s), 7), 1000)),
        );
        let hstream = pub_stream(1000, size, true);
        g.bench_with_input(
            BenchmarkId::new("HPUB whole 64KiB reads", size),
            &hstream,
            |b, s| b.iter(|| assert_eq!(parse_all(black_box(s), 64 * 1024), 1000)),
        );
    }
    let subs: Vec<u8> = (0..1000)
        .flat_map(|i| format!("SUB bench.{i}.* q {i}\r\n").into_bytes())
        .collect();
    g.bench_function("SUB x1000", |b| {
        b.iter(|| assert_eq!(parse_all(black_box(&subs), 64 * 1024), 1000))
    });
    g.finish();
}

fn matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("match");
    // 10k subscriptions: literals, one-token wildcards and tail wildcards.
    let mut list: Sublist<u32> = Sublist::new(0);
    for i in 0..10_000u32 {
        let subject = match i % 10 {
            0 => format!("feed.{}.*", i % 100),
            1 => format!("feed.{}.>", i % 100),
            _ => format!("feed.{}.{}", i % 100, i),
        };
        list.insert(subject.as_bytes(), None, i);
    }
    for (name, subject) in [
        ("literal hit", "feed.42.4242"),
        ("literal miss", "other.1.2"),
        ("wildcards only", "feed.7.nobody"),
    ] {
        g.bench_function(BenchmarkId::new("10k subs, uncached", name), |b| {
            b.iter(|| black_box(list.matches(black_box(subject.as_bytes()))))
        });
    }
    let mut cached: Sublist<u32> = Sublist::new(4096);
    for i in 0..10_000u32 {
        cached.insert(format!("feed.{}.{}", i % 100, i).as_bytes(), None, i);
    }
    g.bench_function("10k subs, cached hit", |b| {
        b.iter(|| black_box(cached.matches(black_box(b"feed.42.4242"))))
    });
    g.finish();
}

fn encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(64 * 1024);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("MSG line x1000", |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                encode_msg_line(&mut out, b"feed.42.4242", b"17", None, None, 128);
            }
            black_box(out.len())
        })
    });
    g.bench_function("HMSG line with reply x1000", |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                encode_msg_line(
                    &mut out,
                    b"feed.42.4242",
                    b"17",
                    Some(b"_INBOX.abc.1"),
                    Some(22),
                    150,
                );
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, parser, matching, encoding);
criterion_main!(benches);
