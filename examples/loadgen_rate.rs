//! Open-loop, fixed-rate load on `POST /oauth/token` (used by `scripts/load.sh` for the latency
//! run at half the measured maximum; Debian ships wrk but not wrk2).
//!
//! ```sh
//! taskset -c 1 cargo run --release --example loadgen_rate -- --url http://127.0.0.1:18080 \
//!     --tokens target/loadtest/tokens-rate.txt --audience SA_ID --rate 2000 --duration 20
//! ```
//!
//! Request `i` is due at `start + i / rate`, whatever happened to the earlier ones (open loop: a
//! slow answer does not delay the next requests, so there is no coordinated omission). Requests
//! go out on at most `--connections` keep-alive connections (default 64, like the wrk run); a
//! due request waits for a free one. Every request carries the next token of the file; the run
//! needs `rate × duration` of them and refuses to start with fewer. Latency is reported two
//! ways: from the moment the request was due (what a caller arriving on schedule sees, waiting
//! for a connection included, like wrk2) and from the moment it got a connection. One thread (a
//! current-thread runtime), so `taskset -c 1` pins all of it.
//!
//! The last line is machine-readable: `RATE_RESULT key=value ...`, latencies in microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::time::Instant;

struct Args {
    url: String,
    tokens: String,
    audience: String,
    rate: f64,
    duration: f64,
    connections: usize,
    max_outstanding: usize,
}

const USAGE: &str = "usage: loadgen_rate --url http://HOST:PORT --tokens FILE --audience SA_ID \
--rate N --duration SECONDS [--connections N] [--max-outstanding N]";

fn parse_args() -> anyhow::Result<Args> {
    let mut url = None;
    let mut tokens = None;
    let mut audience = None;
    let mut rate = None;
    let mut duration = None;
    let mut connections = 64;
    let mut max_outstanding = 100_000;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--tokens" => tokens = Some(value()?),
            "--audience" => audience = Some(value()?),
            "--rate" => rate = Some(value()?.parse::<f64>().context("--rate")?),
            "--duration" => duration = Some(value()?.parse::<f64>().context("--duration")?),
            "--connections" => connections = value()?.parse().context("--connections")?,
            "--max-outstanding" => {
                max_outstanding = value()?.parse().context("--max-outstanding")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let a = Args {
        url: url.context("--url is required")?,
        tokens: tokens.context("--tokens is required")?,
        audience: audience.context("--audience is required")?,
        rate: rate.context("--rate is required")?,
        duration: duration.context("--duration is required")?,
        connections,
        max_outstanding,
    };
    if !(a.rate > 0.0 && a.duration > 0.0) || a.connections == 0 {
        bail!("--rate, --duration and --connections must be positive");
    }
    Ok(a)
}

/// What became of one request.
enum Outcome {
    Answered {
        status: u16,
        from_due_us: u64,
        from_sent_us: u64,
    },
    Failed(String),
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    runtime.block_on(run(a))
}

async fn run(a: Args) -> anyhow::Result<()> {
    let count = (a.rate * a.duration).round() as usize;
    let text = std::fs::read_to_string(&a.tokens).with_context(|| a.tokens.clone())?;
    let tokens: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if tokens.len() < count {
        bail!(
            "{} holds {} tokens; {count} are needed for {} req/s over {} s (no token is sent twice)",
            a.tokens,
            tokens.len(),
            a.rate,
            a.duration
        );
    }
    let endpoint = format!("{}/oauth/token", a.url.trim_end_matches('/'));
    let prefix = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:access_token&audience={}&subject_token=",
        a.audience
    );
    let suffix = "&subject_token_type=urn:ietf:params:oauth:token-type:id_token";
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(a.connections)
        .pool_idle_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .context("HTTP client")?;

    // One connection opened before the clock starts.
    let warm = client.get(format!("{}/healthz", a.url.trim_end_matches('/')));
    warm.send().await.context("GET /healthz")?;

    // Requests spawned and not finished (waiting for a connection or on one).
    let outstanding = Arc::new(AtomicUsize::new(0));
    let mut peak_outstanding = 0usize;
    let pool = Arc::new(tokio::sync::Semaphore::new(a.connections));
    let mut dropped = 0usize;
    let mut handles = Vec::with_capacity(count);
    let period = 1.0 / a.rate;
    let start = Instant::now() + Duration::from_millis(20);
    let mut late_sends = 0usize;
    for (i, token) in tokens.iter().take(count).enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 * period);
        // The timer has a 1 ms grain: sleep to within 1 ms of the due time, then yield (letting
        // the answers in flight be read) until it comes.
        if Instant::now() + Duration::from_millis(2) < due {
            tokio::time::sleep_until(due - Duration::from_millis(1)).await;
        }
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
        if Instant::now() - due > Duration::from_millis(5) {
            late_sends += 1;
        }
        let current = outstanding.load(Ordering::Relaxed);
        if current >= a.max_outstanding {
            dropped += 1;
            continue;
        }
        peak_outstanding = peak_outstanding.max(current + 1);
        outstanding.fetch_add(1, Ordering::Relaxed);
        let body = format!("{prefix}{token}{suffix}");
        let request = client
            .post(&endpoint)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        let outstanding = outstanding.clone();
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            // Semaphores are fair: requests get connections in the order they fell due.
            let permit = pool.acquire_owned().await;
            let sent = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(_) => {
                            let done = Instant::now();
                            Outcome::Answered {
                                status,
                                from_due_us: (done - due).as_micros() as u64,
                                from_sent_us: (done - sent).as_micros() as u64,
                            }
                        }
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }
                Err(e) => Outcome::Failed(e.to_string()),
            };
            drop(permit);
            outstanding.fetch_sub(1, Ordering::Relaxed);
            outcome
        }));
    }
    let send_phase = start.elapsed().as_secs_f64();
    let mut from_due = Vec::with_capacity(count);
    let mut from_sent = Vec::with_capacity(count);
    let mut statuses: std::collections::BTreeMap<u16, usize> = Default::default();
    let mut failures = 0usize;
    let mut first_failure = None;
    for h in handles {
        match h.await {
            Ok(Outcome::Answered {
                status,
                from_due_us,
                from_sent_us,
            }) => {
                *statuses.entry(status).or_default() += 1;
                from_due.push(from_due_us);
                from_sent.push(from_sent_us);
            }
            Ok(Outcome::Failed(e)) => {
                failures += 1;
                first_failure.get_or_insert(e);
            }
            Err(e) => {
                failures += 1;
                first_failure.get_or_insert(e.to_string());
            }
        }
    }
    let total = start.elapsed().as_secs_f64();
    from_due.sort_unstable();
    from_sent.sort_unstable();
    let ok: usize = statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let answered: usize = statuses.values().sum();
    let non2xx = answered - ok;
    let status_list: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    let sent = count - dropped;
    println!(
        "fixed rate: target {:.0} req/s for {:.0} s: sent {sent} in {send_phase:.2} s ({:.0} req/s), {ok} exchanges ok ({:.0}/s over {total:.2} s), non-2xx {non2xx}, failed {failures}, not sent (over {} outstanding) {dropped}, scheduled >5 ms late {late_sends}, peak outstanding {peak_outstanding} on {} connections",
        a.rate,
        a.duration,
        sent as f64 / send_phase,
        ok as f64 / total,
        a.max_outstanding,
        a.connections,
    );
    println!("status counts: {}", status_list.join(" "));
    if let Some(e) = &first_failure {
        println!("first failure: {e}");
    }
    println!(
        "latency from due time:  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(percentile(&from_due, 50.0)),
        ms(percentile(&from_due, 90.0)),
        ms(percentile(&from_due, 99.0)),
        ms(percentile(&from_due, 99.9)),
        ms(from_due.last().copied().unwrap_or(0)),
    );
    println!(
        "latency from connection: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(percentile(&from_sent, 50.0)),
        ms(percentile(&from_sent, 90.0)),
        ms(percentile(&from_sent, 99.0)),
        ms(percentile(&from_sent, 99.9)),
        ms(from_sent.last().copied().unwrap_or(0)),
    );
    println!(
        "RATE_RESULT target_rps={:.0} achieved_rps={:.1} sent={sent} ok={ok} non2xx={non2xx} failed={failures} dropped={dropped} late={late_sends} peak_outstanding={peak_outstanding} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} sent_p50_us={} sent_p99_us={} sent_max_us={} statuses={}",
        a.rate,
        ok as f64 / send_phase,
        percentile(&from_due, 50.0),
        percentile(&from_due, 90.0),
        percentile(&from_due, 99.0),
        percentile(&from_due, 99.9),
        from_due.last().copied().unwrap_or(0),
        percentile(&from_sent, 50.0),
        percentile(&from_sent, 99.0),
        from_sent.last().copied().unwrap_or(0),
        status_list.join(","),
    );
    Ok(())
}
