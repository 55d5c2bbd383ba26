//! Behaviour of the DSL operators, run through the TopologyTestDriver.

use std::time::Duration;

use sluice_streams::prelude::*;
use sluice_streams::{Change, StreamsError, TaskStats};

type R<T = ()> = Result<T, StreamsError>;

fn driver(builder: &StreamsBuilder) -> TopologyTestDriver {
    TopologyTestDriver::new(builder.build().expect("topology")).expect("driver")
}

// Stateless operators transform, drop and multiply records as their names say, keeping
// the timestamp of the record that caused them.
#[test]
fn stateless_operators() -> R {
    let b = StreamsBuilder::new();
    let s = b.stream("in", Consumed::with(Str, I64));
    s.filter(|_, v| *v % 2 == 0)
        .map(|k, v| (format!("{k}!"), v * 10))
        .to("even", Produced::with(Str, I64));
    s.filter_not(|_, v| *v % 2 == 0)
        .flat_map_values(|v| vec![v; 2])
        .select_key(|_, v| v.to_string())
        .to("odd", Produced::with(Str, I64));
    s.flat_map(|k, v| (0..v).map(move |i| (format!("{k}{i}"), i)))
        .map_values(|v| v + 1)
        .to("fan", Produced::with(Str, I64));
    let mut d = driver(&b);
    let input = TestInputTopic::new("in", Str, I64);
    input.pipe(&mut d, "a".into(), 2, 100)?;
    input.pipe(&mut d, "b".into(), 3, 200)?;
    let even = TestOutputTopic::new("even", Str, I64).read_records(&mut d)?;
    assert_eq!(even.len(), 1);
    assert_eq!(
        (even[0].key.as_str(), even[0].value, even[0].timestamp),
        ("a!", 20, 100)
    );
    let odd = TestOutputTopic::new("odd", Str, I64).read_key_values(&mut d)?;
    assert_eq!(odd, vec![("3".into(), 3), ("3".into(), 3)]);
    let fan = TestOutputTopic::new("fan", Str, I64).read_key_values(&mut d)?;
    assert_eq!(
        fan,
        vec![
            ("a0".into(), 1),
            ("a1".into(), 2),
            ("b0".into(), 1),
            ("b1".into(), 2),
            ("b2".into(), 3)
        ]
    );
    Ok(())
}

// split sends each record to the first matching branch; merge joins streams; peek sees
// every record; to_dynamic picks the topic per record.
#[test]
fn split_merge_peek_and_dynamic_topics() -> R {
    let b = StreamsBuilder::new();
    let words = b.stream("words", Consumed::with(Unit, Str));
    let branches = words
        .split()
        .branch(|_, w| w.len() < 4)
        .branch(|_, w| w.starts_with('x'))
        .default_branch();
    assert_eq!(branches.len(), 3);
    branches[0].to("short", Produced::with(Unit, Str));
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s2 = seen.clone();
    branches[1]
        .merge(&branches[2])
        .peek(move |_, _| {
            s2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .to_dynamic(|_, w| format!("len-{}", w.len()), Produced::with(Unit, Str));
    let mut d = driver(&b);
    let input = TestInputTopic::new("words", Unit, Str);
    for w in ["cat", "xylophone", "house", "ox", "xerox"] {
        input.pipe(&mut d, (), w.into(), 0)?;
    }
    let short = TestOutputTopic::new("short", Unit, Str).read_key_values(&mut d)?;
    assert_eq!(short, vec![((), "cat".into()), ((), "ox".into())]);
    assert_eq!(
        TestOutputTopic::new("len-9", Unit, Str).read_key_values(&mut d)?,
        vec![((), "xylophone".into())]
    );
    assert_eq!(
        TestOutputTopic::new("len-5", Unit, Str)
            .read_key_values(&mut d)?
            .len(),
        2
    );
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 3);
    Ok(())
}

// group_by repartitions through an internal topic; count, reduce and aggregate keep a
// running result per key in a named store and its changelog.
#[test]
fn grouped_aggregations() -> R {
    let b = StreamsBuilder::new();
    let sales = b.stream("sales", Consumed::with(Str, I64));
    let by_region = sales.group_by(
        |k, _| k.split('/').next().unwrap_or("").to_string(),
        Grouped::with(Str, I64).named("by-region"),
    );
    by_region
        .count_with(Materialized::named("counts"))
        .to_stream()
        .to("counts", Produced::with(Str, I64));
    by_region
        .reduce(|a, b| a.max(b), Materialized::named("max"))
        .to_stream()
        .to("max", Produced::with(Str, I64));
    by_region
        .aggregate(
            Vec::new,
            |_, v, mut all: Vec<i64>| {
                all.push(v);
                all
            },
            Materialized::with(Json::<Vec<i64>>::new())
                .name("all")
                .in_memory(),
        )
        .to_stream()
        .to("all", Produced::with(Str, Json::new()));
    let topology = b.build()?;
    let text = topology.describe();
    assert!(
        text.contains("test-driver") || text.contains("<application.id>-by-region-repartition"),
        "{text}"
    );
    let mut d = TopologyTestDriver::new(topology)?;
    let input = TestInputTopic::new("sales", Str, I64);
    input.pipe(&mut d, "eu/paris".into(), 5, 1)?;
    input.pipe(&mut d, "us/nyc".into(), 7, 2)?;
    input.pipe(&mut d, "eu/rome".into(), 9, 3)?;
    input.pipe(&mut d, "eu/oslo".into(), 1, 4)?;
    let counts = TestOutputTopic::new("counts", Str, I64).read_key_values(&mut d)?;
    assert_eq!(
        counts,
        vec![
            ("eu".into(), 1),
            ("us".into(), 1),
            ("eu".into(), 2),
            ("eu".into(), 3)
        ]
    );
    let max = TestOutputTopic::new("max", Str, I64).read_key_values(&mut d)?;
    assert_eq!(max.last(), Some(&("eu".into(), 9)));
    let all = TestOutputTopic::new("all", Str, Json::<Vec<i64>>::new()).read_key_values(&mut d)?;
    assert_eq!(all.last(), Some(&("eu".into(), vec![5, 9, 1])));
    assert_eq!(
        d.key_value_store("counts", Str, I64)?,
        vec![("eu".into(), 3), ("us".into(), 1)]
    );
    // Every store write went to the store's changelog.
    let changelog = d.read_raw(&d.changelog_topic("counts"));
    assert_eq!(changelog.len(), 4);
    assert_eq!(
        changelog.last().and_then(|r| r.value.clone()).as_deref(),
        Some(&3i64.to_be_bytes()[..])
    );
    Ok(())
}

// A table keeps the latest value per key (null deletes); a grouped table subtracts a
// row's old value from its old group before adding the new value to its new group.
#[test]
fn tables_and_table_aggregation() -> R {
    let b = StreamsBuilder::new();
    // user -> city
    let users = b.table(
        "users",
        Consumed::with(Str, Str),
        Materialized::named("users"),
    );
    users
        .group_by(|_, city| (city.clone(), 1i64), Grouped::with(Str, I64))
        .count()
        .to("users-per-city", Produced::with(Str, I64));
    users
        .filter(|_, city| city == "oslo")
        .to("oslo-users", Produced::with(Str, Str));
    users
        .map_values(|_, c| c.len() as i64)
        .to_change_stream()
        .to("len", Produced::with(Str, Nullable(I64)));
    let mut d = driver(&b);
    d.pipe_raw("users", Some("ann".into()), Some("oslo".into()), 1, vec![])?;
    d.pipe_raw("users", Some("bob".into()), Some("oslo".into()), 2, vec![])?;
    d.pipe_raw("users", Some("ann".into()), Some("rome".into()), 3, vec![])?;
    d.pipe_raw("users", Some("bob".into()), None, 4, vec![])?;
    let per_city = TestOutputTopic::new("users-per-city", Str, I64).read_key_values(&mut d)?;
    assert_eq!(
        per_city,
        vec![
            ("oslo".into(), 1),
            ("oslo".into(), 2),
            ("oslo".into(), 1),
            ("rome".into(), 1),
            ("oslo".into(), 0)
        ]
    );
    let oslo = TestOutputTopic::new("oslo-users", Str, Nullable(Str)).read_key_values(&mut d)?;
    assert_eq!(
        oslo,
        vec![
            ("ann".into(), Some("oslo".into())),
            ("bob".into(), Some("oslo".into())),
            ("ann".into(), None),
            ("bob".into(), None)
        ]
    );
    let len = TestOutputTopic::new("len", Str, Nullable(I64)).read_key_values(&mut d)?;
    assert_eq!(len.last(), Some(&("bob".into(), None)));
    assert_eq!(
        d.key_value_store("users", Str, Str)?,
        vec![("ann".into(), "rome".into())]
    );
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct View {
    user: String,
    page: String,
    ts: i64,
}

fn view(user: &str, page: &str, ts: i64) -> View {
    View {
        user: user.into(),
        page: page.into(),
        ts,
    }
}

// Tumbling windows with emit-on-close: each window's count is emitted once, when stream
// time passes its end plus the grace period; a record for a closed window is dropped
// and counted; event time comes from a field of the value.
#[test]
fn tumbling_windows_emit_final_and_drop_late() -> R {
    let b = StreamsBuilder::new();
    b.stream(
        "views",
        Consumed::with(Str, Json::<View>::new()).timestamp(|_, v: &View, _| v.ts),
    )
    .group_by(|_, v| v.page.clone(), Grouped::with(Str, Json::new()))
    .windowed_by(TimeWindows::of(Duration::from_secs(60)).grace(Duration::from_secs(10)))
    .emit_strategy(EmitStrategy::OnWindowClose)
    .count_with(Materialized::named("views-per-minute"))
    .to_stream()
    .map(|w: Windowed<String>, n| (format!("{}@{}", w.key, w.window.start), n))
    .to("counts", Produced::with(Str, I64));
    let config = StreamsConfig::new("views").idle_timeout(None);
    let mut d = TopologyTestDriver::with_config(b.build()?, config)?;
    let input = TestInputTopic::new("views", Str, Json::<View>::new());
    let out = TestOutputTopic::new("counts", Str, I64);
    input.pipe(&mut d, "u1".into(), view("u1", "/a", 1_000), 0)?;
    input.pipe(&mut d, "u2".into(), view("u2", "/a", 59_000), 0)?;
    input.pipe(&mut d, "u1".into(), view("u1", "/b", 30_000), 0)?;
    input.pipe(&mut d, "u3".into(), view("u3", "/a", 65_000), 0)?;
    // Window [0, 60s) is still within grace (closes at 70 s).
    assert!(out.read_key_values(&mut d)?.is_empty());
    input.pipe(&mut d, "u3".into(), view("u3", "/a", 69_000), 0)?;
    assert!(out.read_key_values(&mut d)?.is_empty());
    input.pipe(&mut d, "u4".into(), view("u4", "/c", 70_000), 0)?;
    let mut closed = out.read_key_values(&mut d)?;
    closed.sort();
    assert_eq!(closed, vec![("/a@0".into(), 2), ("/b@0".into(), 1)]);
    // Late: the first window closed.
    input.pipe(&mut d, "u5".into(), view("u5", "/a", 5_000), 0)?;
    assert_eq!(d.stats().dropped_late, 1);
    assert!(out.read_key_values(&mut d)?.is_empty());
    // The open windows are still in the store; the closed ones left it.
    let open = d.window_store("views-per-minute", Str, I64)?;
    assert_eq!(
        open,
        vec![("/a".into(), 60_000, 2), ("/c".into(), 60_000, 1)]
    );
    Ok(())
}

// Hopping windows with emit-on-update: every update of every overlapping window goes
// downstream as a change.
#[test]
fn hopping_windows_emit_updates() -> R {
    let b = StreamsBuilder::new();
    b.stream("clicks", Consumed::with(Str, Str))
        .group_by_key(Grouped::with(Str, Str))
        .windowed_by(TimeWindows::of(Duration::from_secs(10)).advance_by(Duration::from_secs(5)))
        .count()
        .to_stream()
        .map(|w, n| (format!("{}[{},{})", w.key, w.window.start, w.window.end), n))
        .to("out", Produced::with(Str, I64));
    let mut d = driver(&b);
    let input = TestInputTopic::new("clicks", Str, Str);
    input.pipe(&mut d, "k".into(), "x".into(), 7_000)?;
    input.pipe(&mut d, "k".into(), "x".into(), 12_000)?;
    let out = TestOutputTopic::new("out", Str, I64).read_key_values(&mut d)?;
    assert_eq!(
        out,
        vec![
            ("k[0,10000)".into(), 1),
            ("k[5000,15000)".into(), 1),
            ("k[5000,15000)".into(), 2),
            ("k[10000,20000)".into(), 1),
        ]
    );
    Ok(())
}

// Session windows merge records closer than the gap; with emit-on-update the sessions a
// merge replaces are deleted downstream; with emit-on-close each session is emitted once.
#[test]
fn session_windows_merge_and_close() -> R {
    for emit in [EmitStrategy::OnWindowUpdate, EmitStrategy::OnWindowClose] {
        let b = StreamsBuilder::new();
        b.stream("views", Consumed::with(Str, Str))
            .group_by_key(Grouped::with(Str, Str))
            .windowed_by(
                SessionWindows::with_inactivity_gap(Duration::from_secs(10))
                    .grace(Duration::from_secs(15)),
            )
            .emit_strategy(emit)
            .count_with(Materialized::named("sessions"))
            .to_change_stream()
            .map(|w, n| (format!("{}[{},{}]", w.key, w.window.start, w.window.end), n))
            .to("out", Produced::with(Str, Nullable(I64)));
        let config = StreamsConfig::new("s").idle_timeout(None);
        let mut d = TopologyTestDriver::with_config(b.build()?, config)?;
        let input = TestInputTopic::new("views", Str, Str);
        let output = TestOutputTopic::new("out", Str, Nullable(I64));
        input.pipe(&mut d, "u".into(), "p".into(), 0)?;
        input.pipe(&mut d, "u".into(), "p".into(), 20_000)?;
        // Bridges both sessions (within 10 s of each; within grace of the first).
        input.pipe(&mut d, "u".into(), "p".into(), 10_000)?;
        let out = output.read_key_values(&mut d)?;
        match emit {
            EmitStrategy::OnWindowUpdate => assert_eq!(
                out,
                vec![
                    ("u[0,0]".into(), Some(1)),
                    ("u[20000,20000]".into(), Some(1)),
                    ("u[0,0]".into(), None),
                    ("u[20000,20000]".into(), None),
                    ("u[0,20000]".into(), Some(3)),
                ]
            ),
            EmitStrategy::OnWindowClose => assert!(out.is_empty(), "{out:?}"),
        }
        assert_eq!(
            d.session_store("sessions", Str, I64)?,
            vec![(
                "u".into(),
                Window {
                    start: 0,
                    end: 20_000
                },
                3
            )]
        );
        // Another key's record moves stream time past end + gap + grace: the session closes.
        input.pipe(&mut d, "v".into(), "p".into(), 45_001)?;
        let out = output.read_key_values(&mut d)?;
        if emit == EmitStrategy::OnWindowClose {
            assert_eq!(out, vec![("u[0,20000]".into(), Some(3))]);
        }
        assert_eq!(d.session_store("sessions", Str, I64)?.len(), 1);
    }
    Ok(())
}

// When input goes quiet past the idle timeout, stream time follows the driver's wall
// clock, so a final window result still comes out without another record.
#[test]
fn idle_timeout_closes_windows_without_new_records() -> R {
    let b = StreamsBuilder::new();
    b.stream("in", Consumed::with(Str, Str))
        .group_by_key(Grouped::with(Str, Str))
        .windowed_by(TimeWindows::of(Duration::from_secs(60)))
        .emit_strategy(EmitStrategy::OnWindowClose)
        .count()
        .to_stream()
        .map(|w, n| (w.key, n))
        .to("out", Produced::with(Str, I64));
    let config = StreamsConfig::new("idle").idle_timeout(Some(Duration::from_secs(5)));
    let mut d = TopologyTestDriver::with_config(b.build()?, config)?;
    TestInputTopic::new("in", Str, Str).pipe(&mut d, "k".into(), "v".into(), 1_000)?;
    let out = TestOutputTopic::new("out", Str, I64);
    d.advance_wall_clock(Duration::from_secs(4))?;
    assert!(
        out.read_key_values(&mut d)?.is_empty(),
        "before the idle timeout nothing moves"
    );
    d.advance_wall_clock(Duration::from_secs(56))?;
    assert_eq!(out.read_key_values(&mut d)?, vec![("k".into(), 1)]);
    Ok(())
}

// A record the serdes cannot read stops the job naming topic, partition and offset, is
// skipped and counted, or goes to a dead-letter topic with its bytes and the reason.
#[test]
fn deserialization_handlers() -> R {
    let topology = || {
        let b = StreamsBuilder::new();
        b.stream("nums", Consumed::with(Str, I64))
            .to("ok", Produced::with(Str, I64));
        b.build().expect("topology")
    };
    let bad = |d: &mut TopologyTestDriver| {
        d.pipe_raw(
            "nums",
            Some("k".into()),
            Some((7i64).to_be_bytes().to_vec().into()),
            0,
            vec![],
        )?;
        d.pipe_raw("nums", Some("k".into()), Some("oops".into()), 0, vec![])
    };
    let mut d = TopologyTestDriver::new(topology())?;
    let err = bad(&mut d).unwrap_err().to_string();
    assert!(
        err.contains("nums-0 offset 1") && err.contains("value"),
        "{err}"
    );

    let config =
        StreamsConfig::new("t").deserialization_handler(DeserializationHandler::LogAndContinue);
    let mut d = TopologyTestDriver::with_config(topology(), config)?;
    bad(&mut d)?;
    assert_eq!(
        d.stats(),
        TaskStats {
            processed: 2,
            skipped_deserialization: 1,
            ..TaskStats::default()
        }
    );

    let config = StreamsConfig::new("t")
        .deserialization_handler(DeserializationHandler::DeadLetter("dlq".into()));
    let mut d = TopologyTestDriver::with_config(topology(), config)?;
    bad(&mut d)?;
    let dlq = d.read_raw("dlq");
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].value.as_deref(), Some(&b"oops"[..]));
    let header = |k: &str| {
        dlq[0]
            .headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value.clone())
    };
    assert_eq!(header("sluice.source.offset").as_deref(), Some(&b"1"[..]));
    assert!(
        String::from_utf8_lossy(&header("sluice.error").unwrap_or_default()).contains("expects 8")
    );
    assert_eq!(
        TestOutputTopic::new("ok", Str, I64).read_key_values(&mut d)?,
        vec![("k".into(), 7)]
    );
    Ok(())
}

// describe() lists sub-topologies, with the repartition topic linking them.
#[test]
fn describe_shows_subtopologies() -> R {
    let b = StreamsBuilder::new();
    b.stream("text-input", Consumed::with(Unit, Str))
        .flat_map_values(|l: String| l.split(' ').map(String::from).collect::<Vec<_>>())
        .group_by(|_, w| w.clone(), Grouped::with(Str, Str).named("words"))
        .count_with(Materialized::named("counts"))
        .to_stream()
        .to("word-counts", Produced::with(Str, I64));
    let text = b.build()?.describe();
    assert!(
        text.contains("Sub-topology: 0") && text.contains("Sub-topology: 1"),
        "{text}"
    );
    assert!(
        text.contains("Sink: KSTREAM-SINK-0000000003 (topic: <application.id>-words-repartition)"),
        "{text}"
    );
    assert!(text.contains("(stores: [counts])"), "{text}");
    // Reading one topic from two sources is refused.
    let b = StreamsBuilder::new();
    let _ = b.stream("t", Consumed::with(Str, Str));
    let _ = b.stream("t", Consumed::with(Str, Str));
    assert!(
        b.build()
            .unwrap_err()
            .to_string()
            .contains("read by two sources")
    );
    let _ = Change::<i64> {
        old: None,
        new: None,
    };
    Ok(())
}

// Sliding windows: each record's window holds its key's records in the difference before
// it; a record that arrives out of order updates the later windows it falls into; with
// emit-on-close each window is emitted once, after its grace period.
#[test]
fn sliding_windows() -> R {
    for emit in [EmitStrategy::OnWindowUpdate, EmitStrategy::OnWindowClose] {
        let b = StreamsBuilder::new();
        b.stream("temps", Consumed::with(Str, I64))
            .group_by_key(Grouped::with(Str, I64))
            .windowed_by(SlidingWindows::with_time_difference_and_grace(
                Duration::from_secs(10),
                Duration::from_secs(5),
            ))
            .emit_strategy(emit)
            .reduce(|a, b| a.max(b), Materialized::named("max"))
            .to_stream()
            .map(|w, v| (format!("{}[{},{}]", w.key, w.window.start, w.window.end), v))
            .to("max", Produced::with(Str, I64));
        let config = StreamsConfig::new("sliding").idle_timeout(None);
        let mut d = TopologyTestDriver::with_config(b.build()?, config)?;
        let input = TestInputTopic::new("temps", Str, I64);
        let output = TestOutputTopic::new("max", Str, I64);
        input.pipe(&mut d, "k".into(), 5, 10_000)?;
        input.pipe(&mut d, "k".into(), 7, 25_000)?;
        // Out of order (22 s) but within grace: it gets its own window [12 s, 22 s] and
        // joins the later window ending at 25 s.
        input.pipe(&mut d, "k".into(), 9, 22_000)?;
        // Late: its window ended more than 5 s before stream time (25 s).
        input.pipe(&mut d, "k".into(), 1, 19_000)?;
        assert_eq!(d.stats().dropped_late, 1);
        let out = output.read_key_values(&mut d)?;
        match emit {
            EmitStrategy::OnWindowUpdate => assert_eq!(
                out,
                vec![
                    ("k[0,10000]".into(), 5),
                    ("k[15000,25000]".into(), 7),
                    ("k[12000,22000]".into(), 9),
                    ("k[15000,25000]".into(), 9),
                ]
            ),
            EmitStrategy::OnWindowClose => {
                assert_eq!(out, vec![("k[0,10000]".into(), 5)]);
                // Stream time 31 s closes the windows ending at 22 s and 25 s.
                input.pipe(&mut d, "other".into(), 0, 31_000)?;
                let out = output.read_key_values(&mut d)?;
                assert_eq!(
                    out,
                    vec![("k[12000,22000]".into(), 9), ("k[15000,25000]".into(), 9)]
                );
            }
        }
    }
    Ok(())
}
