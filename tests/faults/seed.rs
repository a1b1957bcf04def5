//! The run's seed: `FTGO_FAULT_SEED` when set (to re-run a failing run), else drawn from the
//! clock; printed either way. The workload and the fault schedule follow from it.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// The environment variable that fixes the seed.
pub const SEED_ENV: &str = "FTGO_FAULT_SEED";

/// The seed of this run, printed with how to re-run it.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var(SEED_ENV) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={text:?} is not an unsigned integer")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    eprintln!(
        "{test}: seed {seed} (re-run: {SEED_ENV}={seed} cargo test -p ftgo-tests --test emulated {test})"
    );
    seed
}

/// A generator for the workload of `seed`, separate from the fault schedule's draws.
pub fn rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
