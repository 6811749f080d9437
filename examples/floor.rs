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
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, ParsedPublicKey};
use wif_gateway::testkit::{Jwt, KeyKind, TestKey};

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
    let rng = SystemRandom::new();

    // A caller token like the load's: RS256 over a realistic header and claims.
    let caller = TestKey::generate(KeyKind::Rs256, "loadgen-caller-key");
    let caller_input = Jwt::raw(
        br#"{"alg":"RS256","typ":"JWT","kid":"loadgen-caller-key"}"#,
        br#"{"iss":"http://127.0.0.1:18081","sub":"repo:loadtest/app-000123:ref:refs/heads/main","aud":"wif-loadtest","iat":1795386292,"nbf":1795386292,"exp":1795393492,"jti":"0123456789abcdef-0000000123"}"#,
    )
    .signing_input()
    .to_owned();
    let caller_sig = caller.signature(caller_input.as_bytes());
    // Parsed once, as the gateway keeps parsed keys in its JWKS cache.
    let verifier: ParsedPublicKey = caller.verifier();

    // The gateway's ES256 signing key and an access token's signing input.
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("EC key generation failed"))?;
    let signer =
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|e| anyhow::anyhow!("EC key: {e}"))?;
    let at_input = Jwt::raw(
        br#"{"alg":"ES256","typ":"at+jwt","kid":"xAuWPUvzr32f9Eaihu2tQToumP4vRhaVCH2dYAWaXuA"}"#,
        br#"{"iss":"http://127.0.0.1:18080","sub":"aje0loadsa0000000001","aud":"http://127.0.0.1:18080","iat":1795386292,"nbf":1795386292,"exp":1795389892,"jti":"7WNwZLy6MqKf-X3VMtSYUA","client_id":"aje0loadfed000000001","act":{"iss":"http://127.0.0.1:18081","sub":"repo:loadtest/app-000123:ref:refs/heads/main"}}"#,
    )
    .signing_input()
    .to_owned();

    let one = |verifier: &ParsedPublicKey| -> anyhow::Result<usize> {
        verifier
            .verify_sig(caller_input.as_bytes(), &caller_sig)
            .map_err(|_| anyhow::anyhow!("RS256 verification failed"))?;
        let sig = signer
            .sign(&rng, at_input.as_bytes())
            .map_err(|_| anyhow::anyhow!("ES256 signing failed"))?;
        Ok(sig.as_ref().len())
    };

    // Warm-up, then whole batches until the time is up.
    for _ in 0..200 {
        one(&verifier)?;
    }
    let budget = Duration::from_secs_f64(seconds);
    if let Some(n) = iterations {
        counted_iterations(n, || one(&verifier))?;
        println!("floor: {n} x (RS256 verify + ES256 sign)");
        return Ok(());
    }
    let start = Instant::now();
    let mut ops: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..100 {
            std::hint::black_box(one(&verifier)?);
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
