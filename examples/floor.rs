//! The single-core raw floor of one token exchange: one RS256 verification (the caller token,
//! key parsed once, as the gateway keeps issuers' keys) plus one ES256 signature (the minted
//! access token, the default signing algorithm). No HTTP, no parsing, no JSON: the crypto alone.
//!
//! ```sh
//! taskset -c 0 cargo run --release --example floor -- [--seconds 3] [--iterations N]
//! ```
//!
//! With `--iterations N` it runs exactly N operations after the warm-up instead of running for a
//! time (`scripts/callgrind.sh` counts the instructions of two such runs).
//!
//! Prints a human line and a machine line `FLOOR ops_per_sec=N …` that `scripts/load.sh` reads.
//! The gateway's exchanges/s divided by this is how close it gets to the crypto's cost.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

#[path = "common/crypto_floor.rs"]
mod crypto_floor;
use crypto_floor::CryptoFloor;

fn main() -> anyhow::Result<()> {
    let mut seconds = 3.0_f64;
    let mut iterations: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .context("--seconds needs a value")?
                    .parse()
                    .context("--seconds")?;
            }
            "--iterations" => {
                iterations = Some(
                    args.next()
                        .context("--iterations needs a value")?
                        .parse()
                        .context("--iterations")?,
                );
            }
            "-h" | "--help" => {
                println!("usage: floor [--seconds S] [--iterations N]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    let floor = CryptoFloor::new()?;
    let one = || floor.once();

    // Warm-up, then whole batches until the time is up.
    for _ in 0..200 {
        one()?;
    }
    let budget = Duration::from_secs_f64(seconds);
    if let Some(n) = iterations {
        counted_iterations(n, one)?;
        println!("floor: {n} x (RS256 verify + ES256 sign)");
        return Ok(());
    }
    let start = Instant::now();
    let mut ops: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..100 {
            std::hint::black_box(one()?);
        }
        ops += 100;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = ops as f64 / elapsed;
    println!(
        "floor: {ops} x (RS256 verify + ES256 sign) in {elapsed:.2} s = {rate:.0} ops/s ({:.1} us/op)",
        1e6 / rate
    );
    println!("FLOOR ops_per_sec={rate:.0} us_per_op={:.2}", 1e6 / rate);
    Ok(())
}

/// Runs `op` `n` times. A function of its own so that callgrind can count it alone
/// (`--toggle-collect='*counted_iterations*'`): key generation at start-up takes a random time.
#[inline(never)]
fn counted_iterations(n: u64, op: impl Fn() -> anyhow::Result<usize>) -> anyhow::Result<()> {
    for _ in 0..n {
        std::hint::black_box(op()?);
    }
    Ok(())
}
