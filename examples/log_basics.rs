//! The embedded log in one program: create a topic, produce keyed records, consume them
//! as a group, commit, close, reopen, and resume where the group left off.
//!
//! ```sh
//! cargo run --example log_basics                 # in a temporary directory
//! cargo run --example log_basics -- --data-dir d # in ./d (kept)
//! ```

use std::time::Duration;

use sluice::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let temp = tempfile::tempdir()?;
    let dir = match (args.next().as_deref(), args.next()) {
        (Some("--data-dir"), Some(dir)) => std::path::PathBuf::from(dir),
        _ => temp.path().to_path_buf(),
    };

    let log = Log::open(&dir)?;
    log.ensure_topic(NewTopic::new("orders", 3).config("retention.ms", "604800000"))?;

    // Keyed records: every order of one customer lands in the same partition.
    let producer = log.producer(ProducerConfig::default())?;
    for i in 0..30 {
        let customer = format!("customer-{}", i % 5);
        producer.send(
            ProducerRecord::to("orders")
                .key(customer)
                .value(format!("order-{i}")),
        )?;
    }
    producer.flush()?;
    drop(producer);

    // A group consumer reads the first 10 records and commits its position.
    let group = ConsumerConfig::default()
        .group("billing")
        .enable_auto_commit(false)
        .max_poll_records(10);
    let mut consumer = log.consumer(group.clone());
    consumer.subscribe(&["orders"])?;
    let first = consumer.poll(Duration::from_secs(1))?;
    consumer.commit()?;
    println!("first poll: {} records", first.len());
    consumer.close()?;
    log.close()?;

    // After reopening, the group resumes after what it committed.
    let log = Log::open(&dir)?;
    let mut consumer = log.consumer(group);
    consumer.subscribe(&["orders"])?;
    let mut rest = 0;
    loop {
        let batch = consumer.poll(Duration::from_millis(200))?;
        if batch.is_empty() {
            break;
        }
        rest += batch.len();
    }
    consumer.commit()?;
    println!("after reopen: {rest} more records");
    println!("total: {}", first.len() + rest);
    consumer.close()?;
    log.close()?;
    Ok(())
}
