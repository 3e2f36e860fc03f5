//! Ring transit: the cost of moving forwarded publishes from one shard to another along the
//! server's own path (`RingLinks::send` → glommio channel mesh → the peer's receive stream),
//! with two executors on two threads.
//!
//! * `ring_transit/pipelined/N`: batches of N publishes sent back to back; time per batch
//!   (throughput, with the receiver draining concurrently). Compare N = 1 and N = 64 to see
//!   what batching per read chunk saves.
//! * `ring_transit/round_trip`: one barrier batch out, one ack back, as the PING→PONG barrier
//!   does; includes waking an idle peer each way.
//!
//! Run: `cargo bench --bench ring_transit`. Indicative on a 2-core machine: the two executors
//! compete with the benchmark's own thread and anything else running.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_lite::StreamExt;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use shards::ring::{Forward, RingBatch, RingCounters, RingItem, RingLinks, RingMsg, Span};

/// A batch of `items` forwarded 128-byte publishes sharing one blob.
fn batch(blob: &Bytes, items: usize) -> RingMsg {
    let items = (0..items)
        .map(|i| {
            RingItem::Publish(Forward {
                subject: Span { start: 0, len: 8 },
                reply: None,
                header_len: None,
                body: Span {
                    start: (i * 128) as u32,
                    len: 128,
                },
                queues: Vec::new(),
                blob: None,
            })
        })
        .collect();
    Box::new(RingBatch {
        blob: blob.clone(),
        items,
        parsed_at: Instant::now(),
        sent_at: Instant::now(),
    })
}

fn control(item: RingItem) -> RingMsg {
    Box::new(RingBatch {
        blob: Bytes::new(),
        items: vec![item],
        parsed_at: Instant::now(),
        sent_at: Instant::now(),
    })
}

#[derive(Clone, Copy)]
enum Mode {
    Pipelined { items: usize },
    RoundTrip,
}

/// Runs `iters` transfers between two fresh executors; returns shard 0's elapsed time.
fn run(iters: u64, mode: Mode) -> Duration {
    let mesh = MeshBuilder::<RingMsg, _>::full(2, 1024);
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2))
        .on_all_shards(move || async move {
            let (senders, mut receivers) = mesh.join().await.expect("join the mesh");
            let me = senders.peer_id();
            let peer = 1 - me;
            let (_, mut rx) = receivers
                .streams()
                .into_iter()
                .find(|(from, _)| *from == peer)
                .expect("a stream from the peer");
            let links = Rc::new(RingLinks::new(senders, RingCounters::new(2), 1 << 20, 16));
            let fwd = Rc::clone(&links);
            glommio::spawn_local(async move { fwd.forward(peer).await }).detach();
            let blob = Bytes::from(vec![b'x'; 128 * 64]);
            if me == 0 {
                let start = Instant::now();
                match mode {
                    Mode::Pipelined { items } => {
                        for _ in 0..iters {
                            links.send(peer, batch(&blob, items));
                            if !links.has_room() {
                                links.wait_for_room().await;
                            }
                        }
                        // The peer acknowledges once it has received every batch.
                        rx.next().await;
                    }
                    Mode::RoundTrip => {
                        for i in 0..iters {
                            links.send(peer, control(RingItem::Barrier(i)));
                            rx.next().await;
                        }
                    }
                }
                let elapsed = start.elapsed();
                links.close();
                elapsed
            } else {
                match mode {
                    Mode::Pipelined { .. } => {
                        for _ in 0..iters {
                            rx.next().await;
                        }
                        links.send(peer, control(RingItem::BarrierAck(0)));
                    }
                    Mode::RoundTrip => {
                        for _ in 0..iters {
                            if let Some(b) = rx.next().await {
                                if let Some(RingItem::Barrier(i)) = b.items.first() {
                                    links.send(peer, control(RingItem::BarrierAck(*i)));
                                }
                            }
                        }
                    }
                }
                // Let the forwarder hand over the last batch before the executor ends.
                while !links.has_room() {
                    links.wait_for_room().await;
                }
                glommio::timer::sleep(Duration::from_millis(1)).await;
                Duration::ZERO
            }
        })
        .expect("start two executors");
    handles
        .join_all()
        .into_iter()
        .map(|r| r.expect("executor finished"))
        .max()
        .unwrap_or_default()
}

fn ring_transit(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_transit");
    g.sample_size(20);
    for items in [1usize, 64] {
        g.throughput(Throughput::Elements(items as u64));
        g.bench_with_input(BenchmarkId::new("pipelined", items), &items, |b, &items| {
            b.iter_custom(|iters| run(iters, Mode::Pipelined { items }))
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("round_trip", |b| {
        b.iter_custom(|iters| run(iters, Mode::RoundTrip))
    });
    g.finish();
}

criterion_group!(benches, ring_transit);
criterion_main!(benches);
